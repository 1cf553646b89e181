"""A run's or the shipped model's weights as ONNX or LiteRT, so that it runs without TensorFlow or Keras.

The exported model takes the live pipeline's crops as they are, grey 48x48
uint8 faces (n, 48, 48), and gives the probabilities over the classes; the
contract beside it (``<file>.json``: classes in order, release, whether to
equalize, input and output, source, sha256) is what a user of the file needs
and what ``fer_lib.live`` reads. Conversion is Keras' own ``model.export``
(tf2onnx for ONNX, TensorFlow's LiteRT converter), checked against Keras'
predictions before the file is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from fer_lib import fer2013, models, paper
from fer_lib.live.classify import FACES_INPUT, contract_path, load_classifier, read_metadata
from fer_lib.paths import MODEL_B, shipped_models

#: Formats by the names ``fer-lib export --format`` takes, with the file suffix each needs.
FORMATS = {"onnx": ".onnx", "litert": ".tflite"}
#: The largest probability difference from Keras that an export may have (float32 round-off is about 1e-6).
PARITY_TOLERANCE = 1e-4


def source_model(source: str | os.PathLike | None, release: str | None = None) -> tuple[keras.Model, dict]:
    """The Keras model and what it is (classes, release, origin) for a run folder (``Run.chosen``'s weights), a
    model file, a shipped model's name, or None for the shipped Model B. A model file needs its metadata beside
    it, or ``release``."""
    source = MODEL_B if source is None else source
    if isinstance(source, str) and source in shipped_models():
        path = models.shipped_path(source)
        meta = models.pretrained_metadata(path)
        return models.load_pretrained(path), {**meta, "source": f"the shipped model (fer_lib/weights/{path.name})"}
    path = Path(source)
    if path.is_dir():
        from fer_lib import runs

        run = runs.load_run(path)
        model, epoch = run.chosen()
        meta = {"model": f"model_{run.config.model}", "release": run.manifest["data"]["release"],
                "epochs_trained": run.epochs_done, "epoch": epoch, "source": f"run folder {path.as_posix()}"}
    elif path.is_file():
        model, meta = models.load_model(path), {**read_metadata(path), "source": path.name}
    else:
        raise ValueError(f"{path}: neither a run folder nor a model file")
    meta["release"] = release or meta.get("release")
    if meta["release"] is None:
        raise ValueError(f"{path}: no metadata says which FER-2013 release the model was trained on; "
                         "give it with --release csv or --release folder")
    return model, meta


def faces_model(model: keras.Model) -> keras.Model:
    """``model`` behind the crops' own format: uint8 faces (n, 48, 48) in, probabilities out."""
    faces = keras.Input(models.INPUT_SHAPE[:2], dtype="uint8", name=FACES_INPUT)
    pixels = keras.layers.Reshape(models.INPUT_SHAPE, name="channel")(faces)
    return keras.Model(faces, model(keras.ops.cast(pixels, "float32")), name=f"{model.name}_faces")


def predict_exported(path: str | os.PathLike, faces: np.ndarray) -> np.ndarray:
    """Probabilities of an exported model for uint8 faces (n, 48, 48): ONNX through onnxruntime, as the live
    pipeline runs it, LiteRT through TensorFlow's interpreter."""
    path = Path(path)
    if path.suffix == FORMATS["onnx"]:
        return load_classifier(path).predict_proba(faces)
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to the ai-edge-litert package
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(str(path))
    (inputs,), (output,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inputs["index"], faces.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs["index"], np.ascontiguousarray(faces, np.uint8))
    interpreter.invoke()
    return interpreter.get_tensor(output["index"])


def parity(path: str | os.PathLike, model: keras.Model, faces: np.ndarray) -> float:
    """The largest probability difference between an exported model and the Keras model on ``faces``."""
    expected = model.predict(models.as_model_input(faces), batch_size=256, verbose=0)
    return float(np.abs(predict_exported(path, faces) - expected).max())


def export(source: str | os.PathLike | None, out: str | os.PathLike, format: str = "onnx",
           release: str | None = None) -> dict:
    """Write ``source`` (see ``source_model``) to ``out`` in ``format`` with its contract beside it, after
    checking it against Keras on seeded random faces; returns the contract."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {format!r}")
    out = Path(out)
    if out.suffix != FORMATS[format]:
        raise ValueError(f"{out}: a {format} file must end in {FORMATS[format]}")
    model, meta = source_model(source, release)
    classes = list(meta.get("classes", paper.CLASSES))
    out.parent.mkdir(parents=True, exist_ok=True)
    side = fer2013.IMAGE_SIZE
    signature = [keras.InputSpec(shape=(None, side, side), dtype="uint8", name=FACES_INPUT)]
    faces_model(model).export(str(out), format=format, verbose=False, input_signature=signature)
    contract = {
        "format": format,
        "classes": classes,
        "release": meta["release"],
        "equalize": fer2013.is_equalized(meta["release"]),
        "input": {"name": FACES_INPUT, "dtype": "uint8", "shape": [None, side, side],
                  "values": f"grey levels 0-255 of a face crop resized to {side}x{side} (cv2.INTER_AREA), "
                            "histogram-equalized (cv2.equalizeHist) when equalize is true; not scaled"},
        "output": {"dtype": "float32", "shape": [None, len(classes)],
                   "values": "probabilities over classes, in that order"},
        "source": {key: meta[key] for key in ("source", "model", "epochs_trained", "sha256") if key in meta},
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    contract_path(out).write_text(json.dumps(contract, indent=1))
    faces = np.random.default_rng(0).integers(0, 256, (64, side, side), dtype=np.uint8)
    difference = parity(out, model, faces)
    if difference > PARITY_TOLERANCE:
        out.unlink()
        contract_path(out).unlink()
        raise ValueError(f"{out}: the {format} model's probabilities differ from Keras' by up to {difference:.2e} "
                         f"(more than {PARITY_TOLERANCE}); the file was removed")
    return contract
