"""Where things live: the checkout, the user cache, the shared data beside it, the runs, the shipped weights.

A module without dependencies, so that every layer (the data, the models, the live
application without TensorFlow) finds the same places.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where run folders go, from the working folder: results/<profile>/model_<a|b>, results/study/<cell>/seed<k>.
RESULTS_DIR = "results"
#: The model files the package ships (Model B as Keras and ONNX, with their metadata).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def repository_root() -> Path:
    """The checkout this package lives in (meaningful for editable installs)."""
    return Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Where caches (and a user's own copy of the data) live: FER_LIB_CACHE or ~/.cache/fer_lib."""
    if os.environ.get("FER_LIB_CACHE"):
        return Path(os.environ["FER_LIB_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fer_lib"


def shared_dir() -> Path:
    """The read-only data folder that sits beside a checkout (``../shared``)."""
    return repository_root().parent / "shared"

