"""The expression of each face: the CNN through TensorFlow (a Keras model) or through onnxruntime (an
ONNX file), so that the live application also runs where TensorFlow is not installed.

A model is a shipped model's name (``model_b``; ``paths.LIVE_MODEL`` by default)
or a model file. Either way the classifier knows the FER-2013 release its model
was trained on, because that decides how crops are prepared
(``fer2013.is_equalized``). A model file says so in the JSON beside it:
``model_b.json`` as ``fer-lib ship`` writes it for a Keras file, ``<file>.json``
(``model_b.onnx.json``) as ``fer-lib export`` writes it. A file without one is
refused unless the release is given.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fer_lib import fer2013, paper
from fer_lib.paths import LIVE_MODEL, WEIGHTS_DIR, shipped_file, shipped_models

#: The exported models' input: the 48x48 grey crops as they are, uint8; the model scales them.
FACES_INPUT = "faces"


def contract_path(model_path: str | os.PathLike) -> Path:
    """Where ``fer-lib export`` writes a model's contract (classes, release, input): ``<file>.json``."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


def read_metadata(model_path: str | os.PathLike) -> dict:
    """The JSON beside a model file (its export contract, else ``fer-lib ship``'s metadata); {} without one."""
    path = Path(model_path)
    for candidate in (contract_path(path), path.with_suffix(".json")):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{candidate}: not valid JSON ({err})") from err
    return {}


def tensorflow_available() -> bool:
    """Whether the Keras models can run here (TensorFlow imports)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


class FaceClassifier:
    """Probabilities over ``classes`` for 48x48 grey crops, from a Keras model or an onnxruntime session.

    A Keras model is called through one ``tf.function`` (batch size left open):
    an eager call on one face costs 12-22 ms of Python overhead, the traced one
    a few milliseconds with the same probabilities as ``model.predict``. An
    ONNX session (``fer-lib export``) takes the uint8 crops as they are.
    ``release`` is the FER-2013 release the model was trained on.
    """

    def __init__(self, model, *, release: str, classes: Sequence[str] = paper.CLASSES) -> None:
        self.equalize = fer2013.is_equalized(release)
        self.model, self.release, self.classes = model, release, tuple(classes)
        onnx = hasattr(model, "get_inputs") and hasattr(model, "run")
        self._predict = _onnx_predictor(model, len(self.classes)) if onnx else _keras_predictor(model, self.classes)

    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for faces (n, 48, 48) uint8."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self._predict(faces)


def _keras_predictor(model, classes: tuple[str, ...]) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    from fer_lib import models

    expected = (None, *models.INPUT_SHAPE)
    if tuple(model.input_shape) != expected:
        raise ValueError(f"the model must take {expected} grey faces, but takes {model.input_shape}")
    if tuple(model.output_shape) != (None, len(classes)):
        raise ValueError(f"the model gives {model.output_shape[1:]} outputs for {len(classes)} classes {classes}")
    call = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(expected, tf.float32)])
    return lambda faces: call(models.as_model_input(faces)).numpy()


def _onnx_predictor(session, n_classes: int) -> Callable[[np.ndarray], np.ndarray]:
    (inputs,), (output,) = session.get_inputs(), session.get_outputs()
    side = fer2013.IMAGE_SIZE
    if inputs.type != "tensor(uint8)" or list(inputs.shape[1:]) != [side, side]:
        raise ValueError(f"the ONNX model must take uint8 grey faces (n, {side}, {side}) as fer-lib export writes "
                         f"them, but takes {inputs.type} {inputs.shape}")
    if output.shape[1:] != [n_classes]:
        raise ValueError(f"the ONNX model gives {output.shape[1:]} outputs for {n_classes} classes")
    return lambda faces: session.run([output.name], {inputs.name: np.ascontiguousarray(faces, np.uint8)})[0]


def model_file(model: str | os.PathLike | None = None) -> Path:
    """The file of a model given by a shipped model's name (``LIVE_MODEL`` for None) or by its path.

    A shipped model is its ONNX copy wherever onnxruntime is installed: the
    same probabilities (the export's parity test), for a third of the Keras
    call's time on one face (``benchmarks/realtime_speed.py``); its Keras file
    where only TensorFlow is.
    """
    model = LIVE_MODEL if model is None else model
    if isinstance(model, str) and model in shipped_models():
        onnx = shipped_file(model, ".onnx")
        if onnx.is_file() and (importlib.util.find_spec("onnxruntime") or not tensorflow_available()):
            return onnx
        return shipped_file(model)
    return Path(model)


def load_classifier(model: str | os.PathLike | None = None, *, release: str | None = None) -> FaceClassifier:
    """A shipped model by its name (the live default for None) or a saved model: ``.onnx`` through
    onnxruntime, else a Keras file (``model_file``).

    Classes and release come from the JSON beside the file; ``release``
    overrides, and is required for a file without one.
    """
    path = model_file(model)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file (a shipped model's name is one of "
                         f"{', '.join(shipped_models())})")
    meta = read_metadata(path)
    release = release or meta.get("release")
    if release is None:
        raise ValueError(f"{path}: no metadata beside it says which FER-2013 release the model was trained on, which "
                         "decides whether faces are histogram-equalized; give it: release='csv' or 'folder' "
                         "(--release on the command line)")
    network = _onnx_session(path, meta) if path.suffix == ".onnx" else _keras_model(path)
    return FaceClassifier(network, release=release, classes=meta.get("classes", paper.CLASSES))


def _onnx_session(path: Path, meta: dict):
    try:
        import onnxruntime
    except ImportError as err:
        raise ValueError(f"{path}: an ONNX model needs onnxruntime: pip install 'fer_lib[live]'") from err
    if "sha256" in meta and hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
        raise ValueError(f"{path}: its sha256 does not match {contract_path(path).name}: the file is damaged or "
                         "was replaced")
    # onnxruntime's threads spin between runs by default: on a few cores shared with a browser (the webcam
    # widget) that took as much CPU as the face search and classification themselves; blocking halves it
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own types for a bad file
        raise ValueError(f"{path}: cannot be loaded as an ONNX model ({type(err).__name__}: {err})") from err


def _keras_model(path: Path):
    if not tensorflow_available():
        raise ValueError(f"{path}: a Keras model needs TensorFlow, which is not installed here; use the ONNX "
                         "model (fer-lib export makes one) or install fer_lib in full")
    from fer_lib import models

    return models.load_pretrained(path) if path.resolve().parent == WEIGHTS_DIR else models.load_model(path)
