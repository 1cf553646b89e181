"""The real-time chapter's experiments: FER-2013 faces of known extent placed in camera-sized frames (how the
cascade frames them, ``recrop``), and a synthetic clip for demonstrations and tests without a camera."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_lib import fer2013
from fer_lib.live.detect import FaceDetector, prepare_faces
from fer_lib.live.frames import to_bgr, to_uint8


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
    if faces.ndim != 3 or faces.shape[1:] != (fer2013.IMAGE_SIZE, fer2013.IMAGE_SIZE):
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

