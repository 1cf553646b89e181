"""The scene simulator: the camera's geometry, determinism, the lighting models and the webcam's artefacts, on a
real face (scikit-image's astronaut, reduced to a 48x48 grey image as FER-2013 stores faces)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_lib.live import scenes


@pytest.fixture(scope="module")
def face48(astronaut_face) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(astronaut_face, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)


def test_a_distance_gives_the_pinhole_face_width():
    camera = scenes.Camera(640, 480, 60.0)
    assert camera.focal_px == pytest.approx(320 / math.tan(math.radians(30)))
    assert camera.face_px(30) == round(camera.focal_px * 14 / 30) == 259
    assert camera.face_px(150) == 52  # the furthest distance studied is still above the classifier's 48 px
    assert camera.face_px(60) == pytest.approx(camera.face_px(30) / 2, abs=1)
    assert camera.distance_cm(camera.face_px(90)) == pytest.approx(90, rel=0.01)
    assert scenes.Camera(hfov_deg=90).face_px(60) < camera.face_px(60)  # a wider lens makes faces smaller


@pytest.mark.parametrize("bad, message", [
    ({"hfov_deg": 180}, "field of view"), ({"width": 20}, "at least 48x48"),
])
def test_a_camera_outside_reason_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        scenes.Camera(**bad)


def test_a_rendered_face_has_the_size_its_distance_gives(face48):
    for distance in scenes.DISTANCES_CM:
        scene = scenes.render([face48], distance, "bright", scenes.scene_rng(0, distance))
        assert scene.frame.shape == scene.empty.shape == (480, 640) and scene.frame.dtype == np.uint8
        (box,) = scene.boxes
        assert box[2] == box[3] == scenes.WEBCAM.face_px(distance)


def test_scenes_repeat_with_their_seed_and_differ_without_it(face48):
    first = scenes.render([face48], 60, "dim", scenes.scene_rng(3, 1, 60))
    again = scenes.render([face48], 60, "dim", scenes.scene_rng(3, 1, 60))
    other = scenes.render([face48], 60, "dim", scenes.scene_rng(4, 1, 60))
    assert np.array_equal(first.frame, again.frame) and np.array_equal(first.empty, again.empty)
    assert np.array_equal(first.boxes, again.boxes)
    assert not np.array_equal(first.frame, other.frame)


def _face_and_room(face48, lighting: str) -> tuple[np.ndarray, float]:
    """The face's pixels and the mean of the room's in one scene (the same room and place in every light)."""
    scene = scenes.render([face48], 60, lighting, scenes.scene_rng(0), positions=[(260, 180)])
    x, y, w, h = scene.boxes[0]
    return scene.frame[y : y + h, x : x + w].astype(float), float(scene.empty.mean())


def test_the_lighting_models_do_what_they_say(face48):
    bright, bright_room = _face_and_room(face48, "bright")
    dim, dim_room = _face_and_room(face48, "dim")
    camera, camera_room = _face_and_room(face48, "camera")
    backlit, backlit_room = _face_and_room(face48, "backlight")
    side, _ = _face_and_room(face48, "side")
    assert dim.mean() == pytest.approx(0.3 * bright.mean(), rel=0.15) and dim_room < 0.4 * bright_room
    # the camera's light: the face's centre brighter than in daylight, the room behind darker
    centre = slice(20, -20)
    assert camera[centre, centre].mean() > 1.1 * bright[centre, centre].mean() and camera_room < bright_room
    assert backlit_room > bright_room and backlit.mean() < 0.6 * bright.mean()  # a bright window, a dark face
    halves = side[:, : side.shape[1] // 2].mean(), side[:, side.shape[1] // 2 :].mean()
    assert max(halves) > 1.5 * min(halves)  # one side of the face in shadow
    with pytest.raises(ValueError, match="unknown lighting"):
        scenes.render([face48], 60, "moonlight", scenes.scene_rng(0))


def test_the_webcam_adds_blur_noise_and_jpeg():
    flat = np.full((480, 640), 128.0)
    shot = scenes.webcam(flat, noise=4.0, rng=scenes.scene_rng(0))
    assert shot.dtype == np.uint8 and abs(shot.mean() - 128) < 1 and 1.0 < shot.std() < 6.0


def test_several_faces_and_a_face_cut_by_the_edge(face48):
    rng = scenes.scene_rng(0)
    three = scenes.render([face48] * 3, 120, "bright", rng)
    boxes = three.boxes
    assert len(boxes) == 3 and all(boxes[i, 0] + boxes[i, 2] <= boxes[i + 1, 0] for i in range(2))
    side = scenes.WEBCAM.face_px(60)
    cut = scenes.render([face48], 60, "bright", rng, positions=[(640 - side // 2, 100)])
    assert cut.boxes.tolist() == [[640 - side // 2, 100, side // 2, side]]
    gone = scenes.render([face48], 60, "bright", rng, positions=[(700, 100)])
    assert gone.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="do not fit"):
        scenes.render([face48] * 3, 30, "bright", rng)
    with pytest.raises(ValueError, match="48x48"):
        scenes.render([np.zeros((10, 10), np.uint8)], 60, "bright", rng)
