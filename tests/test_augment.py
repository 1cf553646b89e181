"""Augmentation: valid ranges, the identity, determinism per (seed, epoch), and what each transform does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lib.augment import Augmentation, augment, epoch_images, mirrored


@pytest.fixture
def faces() -> np.ndarray:
    """Asymmetric test images: a bright block left of centre on a gradient."""
    rng = np.random.default_rng(0)
    images = np.tile(np.linspace(40, 200, 48, dtype=np.float32), (16, 48, 1))
    images[:, 16:32, 8:20] = 250
    return np.clip(images + rng.normal(0, 3, images.shape), 0, 255).astype(np.uint8)


def test_nothing_changes_without_augmentation(faces):
    assert epoch_images(faces, Augmentation.none(), seed=0, epoch=1) is faces
    np.testing.assert_array_equal(augment(faces, Augmentation.none(), np.random.default_rng(0)), faces)


def test_an_epoch_is_a_function_of_seed_and_epoch(faces):
    aug = Augmentation()
    one = epoch_images(faces, aug, seed=0, epoch=3)
    np.testing.assert_array_equal(one, epoch_images(faces, aug, seed=0, epoch=3))
    assert not np.array_equal(one, epoch_images(faces, aug, seed=0, epoch=4))
    assert not np.array_equal(one, epoch_images(faces, aug, seed=1, epoch=3))
    assert one.dtype == np.uint8 and one.shape == faces.shape


def test_a_certain_flip_is_the_mirror_image(faces):
    flip_only = Augmentation(0, 0, 0, 1.0, 0, 0, 0)
    np.testing.assert_array_equal(augment(faces, flip_only, np.random.default_rng(0)), mirrored(faces))


def test_shift_moves_the_block(faces):
    shift_only = Augmentation(max_shift=4, max_rotation=0, max_zoom=0, flip=0, max_brightness=0, max_contrast=0,
                              equalize=0)
    moved = augment(faces, shift_only, np.random.default_rng(1)).astype(float)
    columns = (moved > 245).any(axis=1).argmax(axis=1)  # the block's first bright column per image
    assert np.abs(columns - 8).max() <= 4 and len(set(columns)) > 1


def test_tone_changes_brightness_and_equalization_matches_opencv(faces):
    always_equalize = Augmentation(0, 0, 0, 0, 0, 0, 1.0)
    np.testing.assert_array_equal(augment(faces, always_equalize, np.random.default_rng(0)),
                                  np.stack([cv2.equalizeHist(f) for f in faces]))
    brighter = Augmentation(0, 0, 0, 0, 0.3, 0, 0)
    means = augment(faces, brighter, np.random.default_rng(0)).mean(axis=(1, 2)) - faces.mean(axis=(1, 2))
    assert means.std() > 5


@pytest.mark.parametrize("bad", [{"flip": 1.5}, {"equalize": -0.1}, {"max_shift": -1}, {"max_zoom": 1.0}])
def test_out_of_range_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Augmentation(**bad)


def test_bad_images_are_refused(faces):
    with pytest.raises(ValueError, match="uint8 grey images"):
        augment(faces.astype(np.float32), Augmentation(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="square"):
        augment(faces[:, :, :40], Augmentation(), np.random.default_rng(0))
