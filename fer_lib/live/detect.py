"""Where the faces are: the paper's motion gate (frame differencing), Viola-Jones face detection with
OpenCV's own Haar cascade, and the 48x48 crops the classifier takes."""

from __future__ import annotations

import os
from typing import Protocol

import cv2
import numpy as np

from fer_lib import fer2013

CASCADE = "haarcascade_frontalface_default.xml"
#: Defaults: a grey-level change that is motion, the smallest face searched for in camera pixels, and the
#: overlapping hits a face needs. 40 px finds faces 48 px wide, about 1.5 m from a 640x480 webcam
#: (``scenes.Camera``); the simulated live study (chapter 8) chose 40 and 4 over the former 80 and 5:
#: OpenCV's own 3 found a little more but also a false face on scikit-image's astronaut photograph.
MOTION_THRESHOLD = 25
MIN_FACE_SIZE = 40
MIN_NEIGHBORS = 4


class MotionGate:
    """The paper's frame differencing: is the frame different from the one detection last ran on?

    Comparing with the last *detected* frame rather than the previous one
    catches slow movement, which changes little between consecutive frames
    but adds up. The comparison runs on a small blurred copy, so camera noise
    and JPEG artefacts do not count as motion.
    """

    def __init__(self, threshold: int = MOTION_THRESHOLD, min_area: float = 0.002, width: int = 160) -> None:
        if not 0 < threshold < 256:
            raise ValueError(f"motion threshold must be a grey-level difference in 1-255, got {threshold}")
        if not 0.0 <= min_area <= 1.0:
            raise ValueError(f"motion min_area must be a fraction of the frame in [0, 1], got {min_area}")
        if width < 8:
            raise ValueError(f"motion width must be at least 8 pixels, got {width}")
        self.threshold, self.min_area, self.width = threshold, min_area, width
        self._reference: np.ndarray | None = None
        self.region: tuple[int, int, int, int] | None = None

    def reset(self) -> None:
        self._reference, self.region = None, None

    def _small(self, gray: np.ndarray) -> np.ndarray:
        h, w = gray.shape
        scale = min(1.0, self.width / w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.GaussianBlur(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), (5, 5), 0)

    def changed(self, gray: np.ndarray) -> bool:
        """True on the first frame, after a size change, or where enough pixels changed; then
        this frame becomes the reference and ``region`` the box around the changed pixels
        (x0, y0, x1, y1 in the frame's pixels), None where the whole frame is new."""
        small = self._small(gray)
        self.region: tuple[int, int, int, int] | None = None
        if self._reference is not None and self._reference.shape == small.shape:
            moving = cv2.absdiff(small, self._reference) > self.threshold
            if np.count_nonzero(moving) < self.min_area * moving.size:
                return False
            ys, xs = np.nonzero(moving)
            fx, fy = gray.shape[1] / small.shape[1], gray.shape[0] / small.shape[0]
            self.region = (int(xs.min() * fx), int(ys.min() * fy), int(np.ceil((xs.max() + 1) * fx)),
                           int(np.ceil((ys.max() + 1) * fy)))
        self._reference = small
        return True


class Detector(Protocol):
    """What the pipeline needs of a face detector: ``FaceDetector`` here, ``blazeface.BlazeFaceDetector``."""

    min_size: int

    def detect(self, gray: np.ndarray, scale: float = 1.0, region: tuple[int, int, int, int] | None = None,
               min_size: int | None = None) -> np.ndarray: ...


class FaceDetector:
    """Viola-Jones with OpenCV's frontal-face Haar cascade, searching only for faces of ``min_size`` pixels or more.

    The cascade's work is in its smallest windows, so the minimum face size
    decides the speed: on a 640x480 frame, 48 pixels took three times as long
    as 80. The search runs on a copy shrunk until ``min_size`` is the cascade's
    own 24-pixel window (the cascade would shrink the frame to that scale
    anyway) and the boxes are scaled back; the live pipeline also limits it to
    where the frame moved (``region``), which pays for the small default minimum.

    The shrunk copy costs small faces, though: OpenCV's cascade steps its
    window two pixels at a time below twice its size, so on the copy a face
    under 80 pixels is tried at every other position. Where that search finds
    nothing, ``dense_retry`` searches again at the camera's own resolution, with
    one more overlapping hit required against the false faces that the denser
    search meets; the simulated live study (chapter 8) measured the gain on faces
    of 52-65 pixels (1.2-1.5 m away). A frame with a face found pays nothing more.
    """

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = MIN_NEIGHBORS, min_size: int = MIN_FACE_SIZE,
        cascade: str = CASCADE, dense_retry: bool = True,
    ) -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be above 1, got {scale_factor}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be non-negative, got {min_neighbors}")
        path = os.path.join(cv2.data.haarcascades, cascade)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ValueError(f"cannot load the Haar cascade {path}")
        self.window = min(self._cascade.getOriginalWindowSize())
        if min_size < self.window:
            raise ValueError(f"min_size must be at least the cascade's window, {self.window} pixels, got {min_size}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.dense_retry = dense_retry
        self.scale = self.window / min_size

    def detect(self, gray: np.ndarray, scale: float = 1.0, region: tuple[int, int, int, int] | None = None,
               min_size: int | None = None) -> np.ndarray:
        """Boxes (n, 4) as x, y, width, height in the frame's pixels, left to right.

        ``scale`` is camera pixels per frame pixel, for a frame sent smaller than
        the camera's (the webcam widget's): ``min_size`` stays in camera pixels,
        so the same faces are found without enlarging the frame first.
        ``region`` (x0, y0, x1, y1, frame pixels) limits the search to that box
        widened by a minimum face on each side, and ``min_size`` raises the
        minimum for this search: the live pipeline passes where the frame moved,
        or where a face it found moved, so small faces cost little where little moves.
        """
        min_size = max(self.min_size, min_size or 0)
        h, w = gray.shape
        x0 = y0 = 0
        if region is not None:
            pad = int(np.ceil(min_size / scale))
            x0, y0 = max(0, int(region[0]) - pad), max(0, int(region[1]) - pad)
            gray = gray[y0 : min(h, int(region[3]) + pad), x0 : min(w, int(region[2]) + pad)]
        boxes = self._search(gray, scale, min_size)
        if len(boxes) == 0 and self.dense_retry:
            boxes = self._search(gray, scale, min_size, dense=True)
        boxes[:, :2] += (x0, y0)
        return boxes

    def _search(self, gray: np.ndarray, scale: float, min_size: int, dense: bool = False) -> np.ndarray:
        h, w = gray.shape
        shrink = scale if dense else min(1.0, self.window / min_size * scale)
        small_size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
        small = gray if shrink == 1.0 else cv2.resize(
            gray, small_size, interpolation=cv2.INTER_AREA if shrink < 1.0 else cv2.INTER_LINEAR)
        window = max(self.window, round(min_size / scale * shrink))
        if min(small.shape) < window:
            return np.zeros((0, 4), dtype=int)
        found = self._cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors + int(dense), minSize=(window, window)
        )
        if len(found) == 0:
            return np.zeros((0, 4), dtype=int)
        boxes = np.round(np.asarray(found, dtype=float) / shrink).astype(int)
        boxes[:, 2] = np.minimum(boxes[:, 2], w - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], h - boxes[:, 1])
        return boxes[np.argsort(boxes[:, 0], kind="stable")]


#: Grey-level mean and mean per-image spread of the CSV release's five-class Training images: the target of
#: ``exposure`` in ``prepare_faces`` (a real-data test checks them against the data).
TRAINING_EXPOSURE = (128.3, 54.1)


def normalize_exposure(crops: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Each crop's grey values moved linearly to ``mean`` and ``std``: a camera's exposure correction,
    which keeps the histogram's shape (unlike equalization, the folder release's preparation)."""
    x = crops.astype(np.float32)
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    spread = x.std(axis=(1, 2), keepdims=True)
    return np.clip(centred * (std / np.maximum(spread, 1.0)) + mean, 0, 255).round().astype(np.uint8)


def prepare_faces(gray: np.ndarray, boxes: np.ndarray, equalize: bool,
                  exposure: tuple[float, float] | None = None) -> np.ndarray:
    """Face crops (n, 48, 48) uint8, as the model's training images were made.

    The crop is the Haar box itself, with no margin: on FER-2013 faces placed in
    larger frames, the median box is the image's own extent (``experiment.recrop``
    measures it; the book's chapter 2 shows it). ``equalize`` is
    ``fer2013.is_equalized`` of the release the model was trained on; a model of the
    other release gets ``exposure`` (mean, spread) instead, if given: its crops'
    grey values are moved linearly to the training images' (``TRAINING_EXPOSURE``),
    which the live study found to help in every light.
    """
    size = (fer2013.IMAGE_SIZE, fer2013.IMAGE_SIZE)
    crops = np.zeros((len(boxes), *size), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        crops[i] = cv2.resize(gray[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
    if equalize:
        return np.stack([cv2.equalizeHist(c) for c in crops]) if len(crops) else crops
    return normalize_exposure(crops, *exposure) if exposure is not None and len(crops) else crops
