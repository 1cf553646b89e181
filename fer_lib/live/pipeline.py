"""The paper's live application (Section II.D) as one object: a frame in, the faces and their expressions out.

Frame (BGR, BGRA or grey; any size; uint8, uint16, bool or float in 0-1) ->
motion gate by frame differencing (no detection while nothing moves; the last
result is kept) -> Viola-Jones face detection with OpenCV's own Haar cascade,
run on a downscaled copy -> each face cropped, grey, 48x48, prepared as the
model's training images were -> the CNN -> label and probabilities, optionally
smoothed per face across frames -> the red box and the label drawn on the frame.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_lib import paper
from fer_lib.live.classify import FaceClassifier, load_classifier
from fer_lib.live.detect import (
    MIN_FACE_SIZE,
    MIN_NEIGHBORS,
    MOTION_THRESHOLD,
    TRAINING_EXPOSURE,
    Detector,
    FaceDetector,
    MotionGate,
    prepare_faces,
)
from fer_lib.live.frames import Detection, draw_detections, to_bgr, to_gray, to_uint8

#: Where only found faces moved, each is looked for around itself at this share of its width or more:
#: a face does not shrink faster than that between two frames.
TRACK_MIN_SIZE = 0.7
#: FrameResult.status values.
DETECTED = "detected"  # detection ran on this frame
STILL = "still"  # the motion gate saw no change: the previous detections are kept
NO_FRAME = "no-frame"  # None or an empty array, as a closed camera gives


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline found in one frame, and how long each stage took."""

    index: int  # frames seen since the pipeline was made or reset
    status: str  # DETECTED, STILL or NO_FRAME
    detections: tuple[Detection, ...]
    shape: tuple[int, int]  # the camera's (height, width); (0, 0) without a frame
    timings: dict[str, float]  # milliseconds per stage that ran

    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.detections]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _distinct(boxes: np.ndarray, max_iou: float = 0.5) -> np.ndarray:
    """The boxes left to right, without any that overlaps one kept before it by more than ``max_iou``."""
    kept: list[np.ndarray] = []
    for box in boxes[np.argsort(boxes[:, 0], kind="stable")]:
        if all(_iou(box, k) <= max_iou for k in kept):
            kept.append(box)
    return np.asarray(kept, dtype=int).reshape(-1, 4)


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


class Pipeline:
    """Frames in, faces with expressions out; see the module's docstring for the stages.

    ``model`` (a Keras model, or an onnxruntime session of ``fer-lib export``'s)
    takes 48x48 grey faces and gives probabilities over ``classes``;
    ``release`` is the FER-2013 release it was trained on, which decides whether
    crops are histogram-equalized. ``motion_threshold`` None turns the motion
    gate off (every frame is searched). With ``search_moving`` the detector
    searches only around what moved since the last search and around the
    faces found then (a new face always moves into view), for faces of about
    their size where only found faces moved (see ``_find``); False searches
    the whole of every frame. ``dense_retry`` searches again, more densely,
    where the cascade found nothing (``detect.FaceDetector``). ``detector``
    replaces the Haar cascade with any object of the same ``detect`` method
    (``blazeface.BlazeFaceDetector``).
    ``exposure`` moves a crop's grey values linearly to the training images'
    mean and spread, for a model of the release that is not equalized (an
    equalized release's crops are equalized, which normalizes them already).
    """

    def __init__(
        self,
        model,
        *,
        release: str,
        classes: Sequence[str] = paper.CLASSES,
        motion_threshold: int | None = MOTION_THRESHOLD,
        motion_area: float = 0.002,
        scale_factor: float = 1.1,
        min_neighbors: int = MIN_NEIGHBORS,
        min_face_size: int = MIN_FACE_SIZE,
        smoothing: float = 0.0,
        search_moving: bool = True,
        dense_retry: bool = True,
        detector: Detector | None = None,
        exposure: bool = False,
    ) -> None:
        self.classifier = FaceClassifier(model, release=release, classes=classes)
        self.detector = detector or FaceDetector(scale_factor, min_neighbors, min_face_size, dense_retry=dense_retry)
        self.search_moving = search_moving
        self.exposure = TRAINING_EXPOSURE if exposure and not self.classifier.equalize else None
        self.gate = None if motion_threshold is None else MotionGate(motion_threshold, motion_area)
        self.tracker = FaceTracker(smoothing)
        self.reset()

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, *, release: str | None = None, **settings) -> Pipeline:
        """The pipeline with a shipped model by its name (``"model_b"``; the live default,
        ``paths.LIVE_MODEL``, for None) or a saved model file (``.keras`` or ``.onnx``).

        Classes and release come from the JSON beside the model file; see
        ``classify.load_classifier``. Without TensorFlow it runs on onnxruntime.
        """
        classifier = load_classifier(model, release=release)
        return cls(classifier.model, release=classifier.release, classes=classifier.classes, **settings)

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

    def process(self, frame, scale: float = 1.0) -> FrameResult:
        """Find the faces in one frame and their expressions. ``None`` or an empty array
        (a closed camera) gives a NO_FRAME result, and the frame after it is searched afresh.

        ``scale`` is the camera's size over the frame's, for a frame sent smaller
        than the camera took it: the minimum face size, the boxes and the shape
        are in camera pixels, without enlarging the frame.
        """
        if not 0.1 <= scale <= 100:
            raise ValueError(f"scale must be the camera's size over the frame's, in [0.1, 100], got {scale}")
        index, self._index = self._index, self._index + 1
        if frame is None or np.size(frame) == 0:
            self._forget()
            return FrameResult(index, NO_FRAME, (), (0, 0), {})
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        gray = to_gray(to_uint8(frame, f"frame {index}"))
        shape = (round(gray.shape[0] * scale), round(gray.shape[1] * scale))
        clock = _lap(timings, "convert", clock)
        if self.gate is not None:
            moved = self.gate.changed(gray)
            clock = _lap(timings, "motion", clock)
            if not moved:
                return FrameResult(index, STILL, self._last, shape, timings)
        boxes = self._find(gray, scale)
        clock = _lap(timings, "detection", clock)
        crops = prepare_faces(gray, boxes, self.classifier.equalize, self.exposure)
        probabilities = self.classifier.predict_proba(crops)
        boxes = np.round(boxes * scale).astype(int)
        ids, probabilities = self.tracker.update(boxes, probabilities)
        self._last = tuple(self._detection(box, p, tid) for box, p, tid in zip(boxes, probabilities, ids, strict=True))
        _lap(timings, "classification", clock)
        return FrameResult(index, DETECTED, self._last, shape, timings)

    def _find(self, gray: np.ndarray, scale: float) -> np.ndarray:
        """The detector's boxes, searched where it pays (``search_moving``): where the frame moved is
        around faces found before, look around each of them for a face of ``TRACK_MIN_SIZE`` of its size or
        more; else search the moved region and the last faces."""
        region = self.gate.region if self.search_moving and self.gate is not None else None
        if region is None:
            return self.detector.detect(gray, scale)
        known = [np.asarray(d.box, dtype=float) / scale for d in self._last]
        around = [(x - w / 2, y - h / 2, x + 1.5 * w, y + 1.5 * h) for x, y, w, h in known]
        if any(a[0] <= region[0] and a[1] <= region[1] and a[2] >= region[2] and a[3] >= region[3] for a in around):
            found = [self.detector.detect(gray, scale, a, min_size=round(TRACK_MIN_SIZE * box[2] * scale))
                     for a, box in zip(around, known, strict=True)]
            return _distinct(np.concatenate(found))
        corners = [region, *((x, y, x + w, y + h) for x, y, w, h in known)]
        return self.detector.detect(gray, scale, tuple(f(c[k] for c in corners)
                                                       for k, f in enumerate((min, min, max, max))))

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
