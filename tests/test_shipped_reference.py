"""Every shipped model gives the same probabilities wherever it is installed: its Keras file and its ONNX file,
on 32 real PrivateTest faces, against the Keras file's probabilities committed in tests/data, written in the
locked environment (Python 3.11). The compatibility lane (``python3 tasks.py compat``) runs this test on the
newest releases that pyproject.toml allows, on Python 3.12, where a changed default in Keras, TensorFlow or
onnxruntime would show up here rather than in a user's labels.

After ``fer-lib ship`` or ``fer-lib export`` replaces a model file, write the reference again:
``.venv/bin/python tests/test_shipped_reference.py NAME`` (``model_b``).
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from fer_lib import data, fer2013
from fer_lib.live import classify
from fer_lib.paths import shipped_file, shipped_models

RUNTIMES = {".keras": "tensorflow", ".onnx": "onnxruntime"}
TOLERANCE = 1e-4
N_FACES, SEED = 32, 2022


def reference_file(name: str) -> Path:
    return Path(__file__).resolve().parent / "data" / f"shipped_{name}_reference.json"


def model_files(name: str) -> tuple[Path, ...]:
    return tuple(shipped_file(name, suffix) for suffix in RUNTIMES)


def _digests(name: str) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in model_files(name)}


def _validation_rows(fer: fer2013.FER2013) -> list[int]:
    """The five-class PrivateTest faces' rows in the challenge CSV."""
    return [int(i.removeprefix("row ")) for i in fer.split("val").ids]


def choose_rows(fer: fer2013.FER2013) -> list[int]:
    """32 five-class PrivateTest faces, drawn with a fixed seed."""
    return sorted(int(r) for r in np.random.default_rng(SEED).choice(_validation_rows(fer), N_FACES, replace=False))


def reference_faces(fer: fer2013.FER2013, rows: list[int]) -> np.ndarray:
    """The faces of ``rows`` (48x48 uint8), checked to be five-class PrivateTest rows of the challenge CSV."""
    if (fer.release != fer2013.RELEASE_CSV or list(fer.ids[rows]) != [f"row {r}" for r in rows]
            or not set(rows) <= set(_validation_rows(fer))):
        raise ValueError(f"{fer.source}: the reference's faces are PrivateTest rows of the challenge CSV, "
                         "which this release does not hold as such")
    return fer.images[rows]


def write_reference(name: str) -> None:
    """The Keras file's probabilities on the chosen faces, with the versions and model checksums they came from."""
    fer = data.load_fer2013(progress=False)
    rows = choose_rows(fer)
    probabilities = classify.load_classifier(shipped_file(name)).predict_proba(reference_faces(fer, rows))
    versions = {package: metadata.version(package) for package in ("tensorflow", "keras", "numpy")}
    path = reference_file(name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({
        "about": f"{name}'s Keras probabilities on FER-2013 PrivateTest faces (rows of the challenge CSV); "
                 "written by tests/test_shipped_reference.py",
        "written_with": {"python": platform.python_version(), **versions},
        "models_sha256": _digests(name),
        "rows": rows,
        "probabilities": probabilities.tolist(),
    }, indent=1) + "\n")
    print(f"{path}: {len(rows)} faces")


def test_every_shipped_model_comes_whole():
    """Keras file and metadata (what makes it shipped), ONNX copy and contract, card, scores and reference."""
    from fer_lib import card

    assert "model_b" in shipped_models(), "the reproduction chapters need the shipped Model B"
    for name in shipped_models():
        onnx = shipped_file(name, ".onnx")
        assert onnx.is_file() and classify.contract_path(onnx).is_file(), f"fer-lib export {name} --out {onnx}"
        assert card.card_file(name).is_file() and card.scores_file(name).is_file(), f"python -m fer_lib.card {name}"
        assert reference_file(name).is_file(), f"python tests/test_shipped_reference.py {name}"


@pytest.mark.realdata
@pytest.mark.parametrize("model_file", [path for name in shipped_models() for path in model_files(name)],
                         ids=lambda path: path.name)
def test_shipped_model_gives_the_committed_probabilities(model_file, real_csv_data):
    pytest.importorskip(RUNTIMES[model_file.suffix])
    name = model_file.stem
    reference = json.loads(reference_file(name).read_text())
    assert reference["models_sha256"] == _digests(name), \
        f"a shipped model file changed since the reference was written: python tests/test_shipped_reference.py {name}"
    faces = reference_faces(real_csv_data, reference["rows"])
    assert len(faces) == N_FACES
    probabilities = classify.load_classifier(model_file).predict_proba(faces)
    difference = float(np.abs(probabilities - np.asarray(reference["probabilities"])).max())
    print(f"\n{model_file.name} vs the reference on {N_FACES} PrivateTest faces: largest difference {difference:.1e}")
    assert difference <= TOLERANCE


if __name__ == "__main__":
    import sys

    for shipped in sys.argv[1:] or shipped_models():
        write_reference(shipped)
