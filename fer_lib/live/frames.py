"""Frames in and out: any camera's or file's array as uint8 grey for the pipeline, and the faces it
found (:class:`Detection`) drawn as the paper's red boxes on a colour copy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

#: The box and label colour, BGR: the paper's "red Bounding Box".
RED = (0, 0, 255)


class FrameError(ValueError):
    """A frame that is not an image; the message names the frame and what is wrong."""


@dataclass(frozen=True)
class Detection:
    """One face: its box in the camera's pixels, the expression, and a track id stable across frames."""

    box: tuple[int, int, int, int]  # x, y, width, height
    label: str
    probabilities: dict[str, float]  # class -> probability, in the model's class order
    track: int

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


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
