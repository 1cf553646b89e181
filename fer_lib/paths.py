"""Where things live: the checkout, the user cache, the shared data beside it, the runs, the shipped weights.

A module without dependencies, so that every layer (the data, the models, the live
application without TensorFlow) finds the same places.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where run folders go, from the working folder: results/<profile>/model_<a|b>, results/study/<cell>/seed<k>.
RESULTS_DIR = "results"
#: The model files the package ships: ``<name>.keras`` and ``<name>.onnx``, each with its JSON beside it.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The paper's Model B, shipped for the reproduction chapters, which must keep using it whatever the live default.
MODEL_B = "model_b"
#: The shipped model that the live pipeline, the widget and ``fer-lib annotate``/``webcam`` use unless told:
#: Model C (chapter 9), more accurate than Model B on both releases and in the simulated webcam, within the speed
#: goals (a test holds it to that on the committed peer table and benchmark).
LIVE_MODEL = "model_c"


def repository_root() -> Path:
    """The checkout this package lives in (meaningful for editable installs)."""
    return Path(__file__).resolve().parents[1]


def checkout_relative(path: str | os.PathLike) -> str:
    """A file as a manifest names it: from the checkout (or the folder that holds the package) where it lies
    below, as ``fer_lib/weights/model_b.keras``; else its absolute path."""
    path, root = Path(path).resolve(), repository_root()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def cache_dir() -> Path:
    """Where caches (and a user's own copy of the data) live: FER_LIB_CACHE or ~/.cache/fer_lib."""
    if os.environ.get("FER_LIB_CACHE"):
        return Path(os.environ["FER_LIB_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fer_lib"


def shared_dir() -> Path:
    """The read-only data folder that sits beside a checkout (``../shared``)."""
    return repository_root().parent / "shared"


def shipped_models() -> tuple[str, ...]:
    """The names of the models the package ships: those with a Keras file and its metadata in WEIGHTS_DIR."""
    return tuple(sorted(p.stem for p in WEIGHTS_DIR.glob("*.keras") if p.with_suffix(".json").is_file()))


def shipped_file(name: str, suffix: str = ".keras") -> Path:
    """A shipped model's file by the model's name (``model_b``) and the file's suffix (``.keras``, ``.onnx``)."""
    if name not in shipped_models():
        raise ValueError(f"{name!r} is not a shipped model: the package ships {', '.join(shipped_models())} "
                         f"(in {WEIGHTS_DIR}); `fer-lib ship RUN --name NAME` adds one")
    return WEIGHTS_DIR / f"{name}{suffix}"
