"""Fixtures of the live application's tests: real photographs and the shipped model on onnxruntime, which
loads in a fraction of a second and needs no TensorFlow; tests of the Keras path ask for ``keras_model``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from fer_lib.live import classify
from fer_lib.live.experiment import synthetic_clip
from fer_lib.live.pipeline import Pipeline, _iou
from fer_lib.paths import MODEL_B, shipped_file

#: The astronaut's face in scikit-image's 512x512 photograph (x, y, width, height), checked by eye.
ASTRONAUT_FACE = (173, 67, 103, 103)


@pytest.fixture(scope="session")
def model():
    """The shipped Model B as an onnxruntime session."""
    return classify.load_classifier(shipped_file(MODEL_B, ".onnx")).model


@pytest.fixture(scope="module")
def keras_model():
    """An untrained Model B in Keras (imports TensorFlow: several seconds)."""
    from fer_lib import models

    return models.model_b()


@pytest.fixture
def pipeline(model):
    return Pipeline(model, release="csv")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def astronaut_box() -> tuple[int, int, int, int]:
    return ASTRONAUT_FACE


@pytest.fixture(scope="session")
def astronaut_face(astronaut) -> np.ndarray:
    x, y, w, h = ASTRONAUT_FACE
    return astronaut[y : y + h, x : x + w]


@pytest.fixture(scope="session")
def iou():
    """Overlap of two (x, y, width, height) boxes, as the tracker measures it."""
    return lambda a, b: _iou(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="session")
def write_clip():
    """A synthetic 640x480 clip of one face, saved as MJPEG at 10 frames per second: its path."""
    def write(path, face, moving: int, still: int):
        frames, _ = synthetic_clip([face], moving=moving, still=still, face_size=160)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
        for frame in frames:
            writer.write(frame)
        writer.release()
        return path

    return write
