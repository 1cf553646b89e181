"""The paper's live application (Section II.D) as one object: a frame in, the faces and their expressions out.

Frame (BGR, BGRA or grey; any size; uint8, uint16, bool or float in 0-1) ->
motion gate by frame differencing (no detection while nothing moves; the last
result is kept) -> Viola-Jones face detection with OpenCV's own Haar cascade,
run on a downscaled copy -> each face cropped, grey, 48x48, prepared as the
model's training images were -> the CNN -> label and probabilities, optionally
smoothed per face across frames -> the red box and the label drawn on the frame.

Also here: the loop behind ``fer-lib webcam`` and the file annotation behind
``fer-lib annotate``, so that the command line stays thin.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_lib import data as fer_data
from fer_lib import paper

CASCADE = "haarcascade_frontalface_default.xml"
#: The box and label colour, BGR: the paper's "red Bounding Box".
RED = (0, 0, 255)
IMAGE_SUFFIXES = (*fer_data.IMAGE_SUFFIXES, ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIX = ".mp4"
DETECTIONS_CSV = "detections.csv"
#: Defaults: a grey-level change that is motion, and the smallest face searched for, in pixels.
MOTION_THRESHOLD = 25
MIN_FACE_SIZE = 80
#: Matplotlib backends that open a desktop window.
DESKTOP_BACKENDS = ("tkagg", "tkcairo", "qtagg", "qtcairo", "qt5agg", "qt5cairo", "gtk3agg", "gtk3cairo",
                    "gtk4agg", "gtk4cairo", "macosx", "wx", "wxagg", "wxcairo")

#: FrameResult.status values.
DETECTED = "detected"  # detection ran on this frame
STILL = "still"  # the motion gate saw no change: the previous detections are kept
NO_FRAME = "no-frame"  # None or an empty array, as a closed camera gives


class FrameError(ValueError):
    """A frame that is not an image; the message names the frame and what is wrong."""


class DeviceError(ValueError):
    """No camera or no display. A ValueError, so the command line reports it like other bad input."""


@dataclass(frozen=True)
class Detection:
    """One face: its box in the frame's pixels, the expression, and a track id stable across frames."""

    box: tuple[int, int, int, int]  # x, y, width, height
    label: str
    probabilities: dict[str, float]  # class -> probability, in the model's class order
    track: int

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline found in one frame, and how long each stage took."""

    index: int  # frames seen since the pipeline was made or reset
    status: str  # DETECTED, STILL or NO_FRAME
    detections: tuple[Detection, ...]
    shape: tuple[int, int]  # the frame's (height, width); (0, 0) without a frame
    timings: dict[str, float]  # milliseconds per stage that ran

    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.detections]


# --- Frames ---------------------------------------------------------------------
def to_uint8(frame, where: str = "frame") -> np.ndarray:
    """Any image array as uint8 with 1, 3 or 4 channels (or none), so odd cameras and files work alike.

    uint8 is kept; bool is 0/255; uint16 is scaled down (>> 8); other integers
    are clipped to 0-255; floats are taken as 0-1 (scikit-image's convention),
    with NaN as 0.
    """
    array = np.asarray(frame)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise FrameError(f"{where}: shape {array.shape} is not an image: expected (H, W) or (H, W, 1, 3 or 4 channels)")
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if kind in "iu":
        return np.clip(array, 0, 255).astype(np.uint8)
    if kind == "f":
        return (np.clip(np.nan_to_num(array, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise FrameError(f"{where}: dtype {array.dtype} is not an image type (uint8, uint16, bool, integers or floats)")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grey uint8 (H, W) from a uint8 image with 0, 1, 3 (BGR) or 4 (BGRA) channels."""
    if image.ndim == 2:
        return image
    codes = {1: None, 3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}
    code = codes[image.shape[2]]
    return image[:, :, 0] if code is None else cv2.cvtColor(image, code)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR uint8 copy to draw on, whatever the channels of the uint8 input."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if image.shape[2] == 4 else image.copy()


# --- Stages ---------------------------------------------------------------------
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

    def reset(self) -> None:
        self._reference = None

    def _small(self, gray: np.ndarray) -> np.ndarray:
        h, w = gray.shape
        scale = min(1.0, self.width / w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.GaussianBlur(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), (5, 5), 0)

    def changed(self, gray: np.ndarray) -> bool:
        """True on the first frame, after a size change, or where enough pixels changed; then
        this frame becomes the reference."""
        small = self._small(gray)
        if self._reference is not None and self._reference.shape == small.shape:
            moving = cv2.absdiff(small, self._reference) > self.threshold
            if np.count_nonzero(moving) < self.min_area * moving.size:
                return False
        self._reference = small
        return True


class FaceDetector:
    """Viola-Jones with OpenCV's frontal-face Haar cascade, searching only for faces of ``min_size`` pixels or more.

    The cascade's work is in its smallest windows, so the minimum face size
    decides the speed: on a 640x480 frame, 48 pixels took three times as long
    as 80. The search runs on a copy shrunk until ``min_size`` is the cascade's
    own 24-pixel window (the cascade would shrink the frame to that scale
    anyway) and the boxes are scaled back. The default 80 pixels is a face
    about 80 cm from a common 640x480 webcam; the paper tested at 30 and 60 cm.
    """

    def __init__(
        self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = MIN_FACE_SIZE, cascade: str = CASCADE
    ) -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be above 1, got {scale_factor}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be non-negative, got {min_neighbors}")
        path = os.path.join(cv2.data.haarcascades, cascade)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ValueError(f"cannot load the Haar cascade {path}")
        window = min(self._cascade.getOriginalWindowSize())
        if min_size < window:
            raise ValueError(f"min_size must be at least the cascade's window, {window} pixels, got {min_size}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.scale = window / min_size

    def detect(self, gray: np.ndarray) -> np.ndarray:
        """Boxes (n, 4) as x, y, width, height in the frame's pixels, left to right."""
        h, w = gray.shape
        small_size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        small = cv2.resize(gray, small_size, interpolation=cv2.INTER_AREA)
        window = round(self.min_size * self.scale)
        found = self._cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(window, window)
        )
        if len(found) == 0:
            return np.zeros((0, 4), dtype=int)
        boxes = np.round(np.asarray(found, dtype=float) / self.scale).astype(int)
        boxes[:, 2] = np.minimum(boxes[:, 2], w - boxes[:, 0])
        boxes[:, 3] = np.minimum(boxes[:, 3], h - boxes[:, 1])
        return boxes[np.argsort(boxes[:, 0], kind="stable")]


def prepare_faces(gray: np.ndarray, boxes: np.ndarray, equalize: bool) -> np.ndarray:
    """Face crops (n, 48, 48) uint8, as the model's training images were made.

    The crop is the Haar box itself, with no margin: on FER-2013 faces placed in
    larger frames, the median box is the image's own extent (``recrop`` measures
    it; the book's chapter 2 shows it). ``equalize`` is for models trained on the folder release,
    whose images were histogram-equalized; the CSV release's were not.
    """
    size = (fer_data.IMAGE_SIZE, fer_data.IMAGE_SIZE)
    crops = np.zeros((len(boxes), *size), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        crop = cv2.resize(gray[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
        crops[i] = cv2.equalizeHist(crop) if equalize else crop
    return crops


def frame_around(face: np.ndarray, scale: int, size: tuple[int, int] = (640, 480), grey: int = 128) -> np.ndarray:
    """A grey camera-sized frame with ``face`` enlarged ``scale`` times in its middle: a
    face whose true extent is known, to check the live pipeline's crop against."""
    left, top, side, _ = centred_box(face.shape[0] * scale, size)
    frame = np.full(size[::-1], grey, np.uint8)
    frame[top:top + side, left:left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    return frame


def centred_box(side: int, size: tuple[int, int] = (640, 480)) -> tuple[int, int, int, int]:
    """Where ``frame_around`` puts a face of ``side`` pixels in a frame of ``size`` (width, height):
    x, y, width, height, as the detector's boxes."""
    width, height = size
    if side > min(width, height):
        raise ValueError(f"a {side}-pixel face does not fit in a {width}x{height} frame")
    return (width - side) // 2, (height - side) // 2, side, side


def recrop(faces: np.ndarray, scale: int = 4, detector: FaceDetector | None = None,
           progress: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Each 48x48 face enlarged in a camera-sized frame (``frame_around``) and found again by the
    live detector: how the cascade's box frames a face whose true extent is known.

    Returns one row per face, with the number of boxes found and, where exactly one was, the
    box's side over the face's (``size_ratio``), the distance between their centres as a share
    of the face's side (``offset``) and the crop's mean absolute difference from the face in
    grey levels (``difference``); ``resampling`` is that difference for a crop of the face's
    true extent, the part that enlarging and shrinking alone cause. Also returns the crops
    (n, 48, 48) of the faces found once, zeros elsewhere.
    """
    faces = np.asarray(faces)
    if faces.ndim != 3 or faces.shape[1:] != (fer_data.IMAGE_SIZE, fer_data.IMAGE_SIZE):
        raise ValueError(f"faces must be (n, 48, 48) grey images, got shape {faces.shape}")
    detector = detector or FaceDetector()
    rows, crops = [], np.zeros_like(faces, dtype=np.uint8)
    for i, face in enumerate(tqdm(faces, desc="recrop", unit="face", disable=not progress)):
        frame = frame_around(face, scale)
        truth = np.array([centred_box(face.shape[0] * scale)])
        side = truth[0, 2]
        boxes = detector.detect(frame)
        row = {"boxes": len(boxes), "size_ratio": np.nan, "offset": np.nan, "difference": np.nan,
               "resampling": _mean_difference(prepare_faces(frame, truth, equalize=False)[0], face)}
        if len(boxes) == 1:
            x, y, w, h = boxes[0]
            crops[i] = prepare_faces(frame, boxes, equalize=False)[0]
            centre = truth[0, :2] + side / 2
            row |= {"size_ratio": (w + h) / 2 / side,
                    "offset": float(np.hypot(*(np.array([x + w / 2, y + h / 2]) - centre)) / side),
                    "difference": _mean_difference(crops[i], face)}
        rows.append(row)
    return pd.DataFrame(rows), crops


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


class FaceClassifier:
    """A Keras model of faces, called through one compiled graph.

    Calling a Keras model eagerly on one 48x48 face costs 12-22 ms of Python
    overhead; the same call traced once by ``tf.function`` (batch size left
    open, so one trace serves any number of faces) takes a few milliseconds
    and gives the same probabilities as ``model.predict``.
    """

    def __init__(self, model, classes: Sequence[str] = paper.CLASSES, release: str = fer_data.RELEASE_CSV) -> None:
        import tensorflow as tf

        expected = (None, fer_data.IMAGE_SIZE, fer_data.IMAGE_SIZE, 1)
        if tuple(model.input_shape) != expected:
            raise ValueError(f"the model must take {expected} grey faces, but takes {model.input_shape}")
        if tuple(model.output_shape) != (None, len(classes)):
            raise ValueError(f"the model gives {model.output_shape[1:]} outputs for {len(classes)} classes {classes}")
        if release not in (fer_data.RELEASE_CSV, fer_data.RELEASE_FOLDER):
            releases = (fer_data.RELEASE_CSV, fer_data.RELEASE_FOLDER)
            raise ValueError(f"release must be one of {releases}, got {release!r}")
        self.model, self.classes, self.release = model, tuple(classes), release
        spec = tf.TensorSpec(expected, tf.float32)
        self._predict = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    @property
    def equalize(self) -> bool:
        return self.release == fer_data.RELEASE_FOLDER

    def predict_proba(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for faces (n, 48, 48) uint8."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self._predict(faces.astype(np.float32)[..., None]).numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Keeps a face's identity across frames (by box overlap) and smooths its probabilities.

    ``smoothing`` is the weight of the past in an exponential moving average:
    0 shows every frame's own probabilities, 0.7 steadies a flickering label
    at the price of about three frames of lag.
    """

    def __init__(self, smoothing: float = 0.0, min_iou: float = 0.3) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing, self.min_iou = smoothing, min_iou
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (box, probabilities)
        self._next_id = 0

    def _match(self, boxes: np.ndarray) -> list[int | None]:
        """Each box's track id, greedily by overlap; None for a new face."""
        pairs = sorted(
            ((_iou(box, old), i, tid) for i, box in enumerate(boxes) for tid, (old, _) in self._tracks.items()),
            reverse=True,
        )
        matched: list[int | None] = [None] * len(boxes)
        taken = set()
        for overlap, i, tid in pairs:
            if overlap >= self.min_iou and matched[i] is None and tid not in taken:
                matched[i] = tid
                taken.add(tid)
        return matched

    def update(self, boxes: np.ndarray, probabilities: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Track ids and smoothed probabilities; faces not seen in this frame are forgotten."""
        ids, smoothed, tracks = [], probabilities.copy(), {}
        for i, tid in enumerate(self._match(boxes)):
            if tid is None:
                tid, self._next_id = self._next_id, self._next_id + 1
            else:
                smoothed[i] = self.smoothing * self._tracks[tid][1] + (1.0 - self.smoothing) * probabilities[i]
            tracks[tid] = (boxes[i], smoothed[i])
            ids.append(tid)
        self._tracks = tracks
        return ids, smoothed


# --- Drawing ----------------------------------------------------------------------
def draw_detections(image: np.ndarray, detections: Iterable[Detection]) -> np.ndarray:
    """The paper's red box around each face, with its label and confidence above it (in place)."""
    thickness = max(2, round(min(image.shape[:2]) / 240))
    font_scale = max(0.5, min(image.shape[:2]) / 800)
    for d in detections:
        x, y, w, h = d.box
        cv2.rectangle(image, (x, y), (x + w, y + h), RED, thickness)
        text = f"{d.label} {d.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y - th - base - 4 if y - th - base - 4 >= 0 else y + h  # above the box, or below it at the top edge
        cv2.rectangle(image, (x, top), (x + tw + 6, top + th + base + 4), RED, cv2.FILLED)
        cv2.putText(image, text, (x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image


def draw_text(image: np.ndarray, text: str) -> np.ndarray:
    """A status line (frames per second) in the top-left corner (in place)."""
    cv2.putText(image, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(image, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return image


# --- The pipeline -------------------------------------------------------------------
class Pipeline:
    """Frames in, faces with expressions out; see the module's docstring for the stages.

    ``model`` takes raw 0-255 grey faces (n, 48, 48, 1) and gives probabilities
    over ``classes``; ``release`` is the FER-2013 release it was trained on,
    which decides whether crops are histogram-equalized. ``motion_threshold``
    None turns the motion gate off (every frame is searched).
    """

    def __init__(
        self,
        model,
        *,
        classes: Sequence[str] = paper.CLASSES,
        release: str = fer_data.RELEASE_CSV,
        motion_threshold: int | None = MOTION_THRESHOLD,
        motion_area: float = 0.002,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = MIN_FACE_SIZE,
        smoothing: float = 0.0,
    ) -> None:
        self.classifier = FaceClassifier(model, classes, release)
        self.detector = FaceDetector(scale_factor, min_neighbors, min_face_size)
        self.gate = None if motion_threshold is None else MotionGate(motion_threshold, motion_area)
        self.tracker = FaceTracker(smoothing)
        self.reset()

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, release: str | None = None, **settings) -> Pipeline:
        """The pipeline with the shipped Model B (``path`` None) or a saved Keras model.

        Classes and release come from the model's metadata (the ``.json`` of the
        same name, as the shipped model has), so that crops are prepared as its
        training images were; ``release`` overrides. A model without metadata
        is taken to be trained on the CSV release in ``paper.CLASSES`` order.
        """
        import keras

        from fer_lib import models

        if path is None:
            model, meta = models.load_pretrained(), models.pretrained_metadata()
        else:
            path = Path(path)
            if not path.is_file():
                raise ValueError(f"{path}: no such model file")
            meta = models.pretrained_metadata(path) if path.with_suffix(".json").is_file() else {}
            try:
                model = keras.models.load_model(path, compile=False)
            except Exception as err:  # Keras raises many types for a bad archive
                raise ValueError(f"{path}: cannot be loaded as a Keras model ({type(err).__name__}: {err})") from err
        release = release or meta.get("release", fer_data.RELEASE_CSV)
        return cls(model, classes=meta.get("classes", paper.CLASSES), release=release, **settings)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    def reset(self) -> None:
        """Forget every earlier frame and count from 0 again: for a new scene or source."""
        self._index = 0
        self._forget()

    def _forget(self) -> None:
        """Drop the kept detections, tracks and motion reference: the next frame is searched afresh."""
        self._last: tuple[Detection, ...] = ()
        self.tracker.reset()
        if self.gate is not None:
            self.gate.reset()

    def process(self, frame) -> FrameResult:
        """Find the faces in one frame and their expressions. ``None`` or an empty array
        (a closed camera) gives a NO_FRAME result, and the frame after it is searched afresh."""
        index, self._index = self._index, self._index + 1
        if frame is None or np.size(frame) == 0:
            self._forget()
            return FrameResult(index, NO_FRAME, (), (0, 0), {})
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        gray = to_gray(to_uint8(frame, f"frame {index}"))
        clock = _lap(timings, "convert", clock)
        if self.gate is not None:
            moved = self.gate.changed(gray)
            clock = _lap(timings, "motion", clock)
            if not moved:
                return FrameResult(index, STILL, self._last, gray.shape, timings)
        boxes = self.detector.detect(gray)
        clock = _lap(timings, "detection", clock)
        probabilities = self.classifier.predict_proba(prepare_faces(gray, boxes, self.classifier.equalize))
        ids, probabilities = self.tracker.update(boxes, probabilities)
        self._last = tuple(self._detection(box, p, tid) for box, p, tid in zip(boxes, probabilities, ids, strict=True))
        _lap(timings, "classification", clock)
        return FrameResult(index, DETECTED, self._last, gray.shape, timings)

    def _detection(self, box: np.ndarray, probabilities: np.ndarray, track: int) -> Detection:
        scores = {c: float(p) for c, p in zip(self.classes, probabilities, strict=True)}
        label = self.classes[int(np.argmax(probabilities))]
        return Detection(tuple(int(v) for v in box), label, scores, track)

    def annotate(self, frame) -> tuple[np.ndarray | None, FrameResult]:
        """``process`` plus the drawing: a BGR copy of the frame with the boxes (None for no frame)."""
        result = self.process(frame)
        if result.status == NO_FRAME:
            return None, result
        clock = time.perf_counter()
        image = draw_detections(to_bgr(to_uint8(frame)), result.detections)
        timings = dict(result.timings)
        _lap(timings, "drawing", clock)
        return image, dataclasses.replace(result, timings=timings)


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    """Record the milliseconds since ``since`` under ``stage``; return the new start."""
    now = time.perf_counter()
    timings[stage] = (now - since) * 1000.0
    return now


# --- A clip where there is no camera -----------------------------------------------------
def synthetic_clip(faces: Sequence[np.ndarray], *, moving: int = 10, still: int = 10, face_size: int = 144,
                   shape: tuple[int, int] = (480, 640), step: int = 6) -> tuple[list[np.ndarray], np.ndarray]:
    """A BGR clip of ``faces`` in a row, sliding to and fro by ``step`` pixels a frame for ``moving`` frames,
    then still for ``still``.

    For demonstrations and tests without a camera: the still stretch is what
    the motion gate should skip. Each face (grey or BGR, any size) is scaled to
    ``face_size`` and framed by its own edge pixels, stretched outwards, so that
    the cascade sees a head rather than a pasted square. Returns the frames and
    the true boxes, (frames, faces, 4) as x, y, width, height.
    """
    height, width = shape
    slot = width // max(1, len(faces))
    margin = face_size // 4
    travel = slot - face_size - 2 * margin  # room to move within each face's share of the width
    if moving < 1 or still < 0 or step < 0 or travel < step or height < face_size + 2 * margin:
        raise ValueError(f"{len(faces)} faces of {face_size} pixels have no room to move by {step} in a "
                         f"{width}x{height} frame (or moving < 1, still < 0)")
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (height, width, 3), dtype=np.uint8), (0, 0), 25)
    tiles = [
        cv2.copyMakeBorder(cv2.resize(to_bgr(to_uint8(face)), (face_size, face_size), interpolation=cv2.INTER_CUBIC),
                           margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        for face in faces
    ]
    travel = travel - travel % step if step else 0  # turn on a multiple of step: no two moving frames alike
    frames, boxes = [], []
    for i in range(moving + still):
        swing = step * min(i, moving - 1) % (2 * travel) if travel else 0
        shift = min(swing, 2 * travel - swing)
        frame = background.copy()
        placed = []
        for k, tile in enumerate(tiles):
            x, y = k * slot + shift, (height - tile.shape[0]) // 2
            frame[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
            placed.append((x + margin, y + margin, face_size, face_size))
        frames.append(frame)
        boxes.append(placed)
    return frames, np.asarray(boxes, dtype=int).reshape(len(frames), len(faces), 4)


# --- Files: fer-lib annotate ----------------------------------------------------------
class DetectionLog:
    """The CSV of detections: one row per face, and one empty row for a frame without any."""

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._file = open(path, "w", newline="")  # noqa: SIM115 (closed by close())
        self._writer = csv.writer(self._file)
        self._writer.writerow(["source", "frame", "status", "track", "x", "y", "width", "height", "label",
                               *(f"p_{c}" for c in self.classes)])

    def write(self, source: str, result: FrameResult) -> None:
        for d in result.detections:
            self._writer.writerow([source, result.index, result.status, d.track, *d.box, d.label,
                                   *(f"{d.probabilities[c]:.6f}" for c in self.classes)])
        if not result.detections:
            self._writer.writerow([source, result.index, result.status, *[""] * (6 + len(self.classes))])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> DetectionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _images_in(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    return [path] if path.suffix.lower() in IMAGE_SUFFIXES else []


def annotate_path(pipeline: Pipeline, source: str | os.PathLike, out: str | os.PathLike,
                  progress: bool = True) -> Path:
    """Annotate an image, a folder of images or a video into the folder ``out``.

    Images keep their names; a video becomes ``<name>_annotated.mp4``. Every
    image is its own scene (the motion gate is reset between them); a video
    runs through the pipeline as a live camera would. Returns the CSV's path.
    """
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ValueError(f"{source}: no such file or folder")
    out.mkdir(parents=True, exist_ok=True)
    images = _images_in(source)
    with DetectionLog(out / DETECTIONS_CSV, pipeline.classes) as log:
        if images:
            _annotate_images(pipeline, images, out, log, progress)
        else:
            _annotate_video(pipeline, source, out / f"{source.stem}_annotated{VIDEO_SUFFIX}", log, progress)
    return out / DETECTIONS_CSV


def _annotate_images(pipeline: Pipeline, images: list[Path], out: Path, log: DetectionLog, progress: bool) -> None:
    for path in tqdm(images, desc="annotate", unit="image", disable=not progress or len(images) < 10):
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise ValueError(f"{path}: cannot be read as an image")
        pipeline.reset()
        image, result = pipeline.annotate(frame)
        log.write(path.name, result)
        if not cv2.imwrite(str(out / path.name), image):
            raise ValueError(f"{out / path.name}: cannot be written")


def video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """Frames until the video ends or the camera closes."""
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield frame


def _annotate_video(pipeline: Pipeline, source: Path, target: Path, log: DetectionLog, progress: bool) -> None:
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise ValueError(f"{source}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video OpenCV can read")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        writer = None
        pipeline.reset()
        for frame in tqdm(video_frames(capture), total=total, desc=f"annotate {source.name}", unit="frame",
                          disable=not progress):
            image, result = pipeline.annotate(frame)
            if writer is None:
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, image.shape[1::-1])
            writer.write(image)
            log.write(source.name, result)
        if writer is None:
            raise ValueError(f"{source}: the video has no frames")
        writer.release()
    finally:
        capture.release()


# --- The camera: fer-lib webcam -------------------------------------------------------
class FpsMeter:
    """Frames per second over the last ``window`` frames: steady enough to read, quick to follow changes."""

    def __init__(self, window: int = 30) -> None:
        self._times: list[float] = []
        self.window = window

    def tick(self) -> float:
        self._times = [*self._times[-(self.window - 1):], time.perf_counter()]
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def open_camera(source: int | str = 0) -> cv2.VideoCapture:
    """An opened camera (by index) or video file, or a DeviceError saying there is none."""
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise DeviceError(f"cannot open camera {source!r}: no such camera, it is busy, or access was refused")
    return capture


def run_camera(pipeline: Pipeline, capture: cv2.VideoCapture, show: Callable[[np.ndarray], bool],
               max_frames: int | None = None) -> int:
    """Annotate frames from ``capture`` with the frame rate written on them, and hand each to ``show``
    until it returns False, the camera closes or ``max_frames`` have run. Returns the frames shown."""
    meter, shown = FpsMeter(), 0
    for frame in video_frames(capture):
        image, _ = pipeline.annotate(frame)
        if not show(draw_text(image, f"{meter.tick():.1f} fps")):
            break
        shown += 1
        if max_frames is not None and shown >= max_frames:
            break
    return shown


class Window:
    """A desktop window through Matplotlib (the project's OpenCV wheel is headless, without windows).

    Closing the window or pressing q or Escape ends the loop.
    """

    def __init__(self, title: str = "fer-lib webcam") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise DeviceError("no display: DISPLAY and WAYLAND_DISPLAY are unset (run it on a desktop, "
                              "or use 'fer-lib annotate' on a recorded video)")
        import matplotlib.pyplot as plt

        if plt.get_backend().lower() not in DESKTOP_BACKENDS:
            raise DeviceError(f"no desktop Matplotlib backend (got {plt.get_backend()!r}): "
                              "install Tk (python3-tk) or Qt (PyQt6) to get a window")
        self._plt = plt
        self._figure, ax = plt.subplots(num=title)
        ax.set_axis_off()
        self._image = None
        self._ax = ax
        self._open = True
        self._figure.canvas.mpl_connect("close_event", self._close)
        self._figure.canvas.mpl_connect("key_press_event", self._key)

    def _close(self, _event) -> None:
        self._open = False

    def _key(self, event) -> None:
        if event.key in ("q", "escape"):
            self._plt.close(self._figure)

    def __call__(self, image: np.ndarray) -> bool:
        rgb = image[:, :, ::-1]
        if self._image is None or self._image.get_array().shape != rgb.shape:
            self._image = self._ax.imshow(rgb)
            self._figure.tight_layout()
        else:
            self._image.set_data(rgb)
        self._plt.pause(0.001)
        return self._open
