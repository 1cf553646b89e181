"""Data augmentation for the model beyond the paper (chapter 9).

The paper's conclusion names augmentation as its next step ("synthetic samples by
translation and rotation"). Every transform here is one a webcam face really goes
through: a face box that is off by a few pixels or a little too large, a tilted head,
a mirror image, another exposure, and histogram equalization, which is what the
Kaggle folder release applied to every image, so that both public releases and
equalized webcam crops are in the training distribution.

Augmentation runs in NumPy and OpenCV on whole epochs, drawn from a generator seeded
by ``(seed, epoch)``: a resumed run draws the same images as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """How far each transform may go. All zero (``Augmentation.none()``) changes nothing."""

    #: the largest shift, in pixels, along each axis
    max_shift: float = 4.0
    #: the largest rotation, in degrees, either way
    max_rotation: float = 10.0
    #: the largest change of scale, as a fraction (0.1: 90% to 110%)
    max_zoom: float = 0.1
    #: the probability of a horizontal mirror image
    flip: float = 0.5
    #: the largest brightness change, as a fraction of the grey range (0.2: +-51 grey levels)
    max_brightness: float = 0.2
    #: the largest contrast change, as a factor around each image's mean (0.2: 0.8 to 1.2)
    max_contrast: float = 0.2
    #: the probability of histogram equalization (the folder release's processing)
    equalize: float = 0.3

    def __post_init__(self) -> None:
        for name in ("max_shift", "max_rotation", "max_zoom", "max_brightness", "max_contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("flip", "equalize"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        if self.max_zoom >= 1:
            raise ValueError(f"max_zoom must be below 1, got {self.max_zoom}")

    @classmethod
    def none(cls) -> Augmentation:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def is_identity(self) -> bool:
        return self == Augmentation.none()


def _affine_matrices(n: int, size: int, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """(n, 2, 3) matrices: rotation and zoom about the centre, mirror, then shift."""
    angle = np.deg2rad(rng.uniform(-aug.max_rotation, aug.max_rotation, n))
    zoom = rng.uniform(1 - aug.max_zoom, 1 + aug.max_zoom, n)
    mirror = np.where(rng.random(n) < aug.flip, -1.0, 1.0)
    shift = rng.uniform(-aug.max_shift, aug.max_shift, (n, 2))
    cos, sin = zoom * np.cos(angle), zoom * np.sin(angle)
    linear = np.stack([np.stack([cos * mirror, -sin], -1), np.stack([sin * mirror, cos], -1)], 1)  # (n, 2, 2)
    centre = np.full(2, (size - 1) / 2)
    offset = centre - linear @ centre + shift
    return np.concatenate([linear, offset[..., None]], axis=2)


def augment(images: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Randomly transformed copies of grey ``images`` (n, h, w), uint8 in and out.

    Geometry first (borders filled by reflection, as a real face continues past its
    box), then tone: equalization on a share of the images, then brightness and contrast.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 grey images of shape (n, h, w), got {images.dtype} {images.shape}")
    n, h, w = images.shape
    if h != w:
        raise ValueError(f"expected square images, got {h}x{w}")
    out = np.empty_like(images)
    matrices = _affine_matrices(n, h, aug, rng)
    equalize = rng.random(n) < aug.equalize
    for i in range(n):
        out[i] = cv2.warpAffine(images[i], matrices[i], (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT_101)
        if equalize[i]:
            out[i] = cv2.equalizeHist(out[i])
    contrast = rng.uniform(1 - aug.max_contrast, 1 + aug.max_contrast, (n, 1, 1))
    brightness = 255.0 * rng.uniform(-aug.max_brightness, aug.max_brightness, (n, 1, 1))
    mean = out.mean(axis=(1, 2), keepdims=True)
    toned = (out - mean) * contrast + mean + brightness
    return np.clip(np.rint(toned), 0, 255).astype(np.uint8)


def epoch_images(images: np.ndarray, aug: Augmentation, seed: int, epoch: int) -> np.ndarray:
    """One epoch's augmented training images: a function of (seed, epoch) alone, so a
    resumed run sees the same images as one that never stopped."""
    if aug.is_identity():
        return images
    return augment(images, aug, np.random.default_rng([seed, epoch, 1]))


def mirrored(images: np.ndarray) -> np.ndarray:
    """Left-right mirror images, the test-time augmentation (a face's expression is symmetric
    enough that the mirror is another view of the same face)."""
    return np.asarray(images)[..., ::-1]
