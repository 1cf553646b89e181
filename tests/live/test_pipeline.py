"""The live pipeline on real faces (scikit-image's astronaut and synthetic clips of it), with every odd input it
must survive; run on the shipped model through onnxruntime, and on Keras where a test says so."""

from __future__ import annotations

import importlib.util
import shutil

import cv2
import numpy as np
import pytest

from fer_lib import fer2013, paper
from fer_lib.live import classify, frames
from fer_lib.live.detect import MotionGate, prepare_faces
from fer_lib.live.experiment import synthetic_clip
from fer_lib.live.pipeline import DETECTED, NO_FRAME, STILL, Pipeline
from fer_lib.paths import LIVE_MODEL, MODEL_B, shipped_file, shipped_models


# --- Real faces ---------------------------------------------------------------------
def test_finds_the_astronauts_face(pipeline, astronaut, astronaut_box, iou):
    result = pipeline.process(astronaut)
    assert result.status == DETECTED and result.shape == (512, 512)
    (face,) = result.detections
    assert iou(face.box, astronaut_box) > 0.7
    assert face.label in paper.CLASSES and face.label == max(face.probabilities, key=face.probabilities.get)
    assert list(face.probabilities) == list(paper.CLASSES)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(result.timings) == {"convert", "motion", "detection", "classification"}


def test_a_smaller_copy_with_its_scale_gives_the_cameras_boxes(model, astronaut, iou):
    """What the webcam widget sends: half the camera's size, and the scale 2 instead of enlarging it again."""
    (full,) = Pipeline(model, release="csv").process(astronaut).detections
    half = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    result = Pipeline(model, release="csv").process(half, scale=2.0)
    (face,) = result.detections
    assert result.shape == (512, 512) and iou(face.box, full.box) > 0.8
    # the minimum face size stays in camera pixels: a 103-pixel face is below a 120-pixel minimum at any scale
    assert Pipeline(model, release="csv", min_face_size=120).process(half, scale=2.0).detections == ()
    with pytest.raises(ValueError, match="scale must be"):
        Pipeline(model, release="csv").process(half, scale=0)


def test_several_faces_left_to_right(pipeline, astronaut_face, iou):
    clip, boxes = synthetic_clip([astronaut_face] * 3, moving=1, still=0, face_size=128)
    result = pipeline.process(clip[0])
    assert len(result.detections) == 3
    for detection, truth in zip(result.detections, boxes[0], strict=True):
        assert iou(detection.box, truth) > 0.5
    assert len({d.track for d in result.detections}) == 3


def test_no_face(pipeline):
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    result = pipeline.process(frame)
    assert result.status == DETECTED and result.detections == ()


def test_faces_below_the_minimum_size_are_ignored(model, astronaut_face):
    clip, _ = synthetic_clip([astronaut_face], moving=1, still=0, face_size=60)
    assert Pipeline(model, release="csv", min_face_size=80).process(clip[0]).detections == ()
    assert len(Pipeline(model, release="csv").process(clip[0]).detections) == 1  # the default finds 48 px faces
    small, _ = synthetic_clip([astronaut_face], moving=1, still=0, face_size=30)
    assert Pipeline(model, release="csv").process(small[0]).detections == ()


# --- The motion gate and smoothing ------------------------------------------------------
def test_motion_gate_skips_still_frames_and_keeps_the_last_result(pipeline, astronaut_face):
    clip, _ = synthetic_clip([astronaut_face], moving=5, still=4, face_size=160)
    results = [pipeline.process(f) for f in clip]
    assert [r.status for r in results] == [DETECTED] * 5 + [STILL] * 4
    assert all(r.detections == results[4].detections for r in results[5:])
    assert all("detection" not in r.timings for r in results[5:])
    assert [r.index for r in results] == list(range(9))


def test_motion_gate_off_searches_every_frame(model, astronaut_face):
    clip, _ = synthetic_clip([astronaut_face], moving=2, still=3, face_size=160)
    pipeline = Pipeline(model, release="csv", motion_threshold=None)
    assert {pipeline.process(f).status for f in clip} == {DETECTED}


def test_slow_motion_adds_up(astronaut_face):
    """One-pixel steps are each below the gate's area, but their sum since the last detection is not."""
    gate = MotionGate(min_area=0.002)
    clip, _ = synthetic_clip([astronaut_face], moving=40, still=0, face_size=160, step=1)
    changed = [gate.changed(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)) for f in clip]
    assert changed[0] and not all(changed[1:]) and sum(changed[1:]) >= 2


def test_smoothing_is_a_moving_average_per_face(model, astronaut_face):
    clip, _ = synthetic_clip([astronaut_face], moving=6, still=0, face_size=160)
    raw = Pipeline(model, release="csv", motion_threshold=None)
    smooth = Pipeline(model, release="csv", motion_threshold=None, smoothing=0.6)
    expected = None
    for frame in clip:
        (r,), (s,) = raw.process(frame).detections, smooth.process(frame).detections
        p = np.array(list(r.probabilities.values()))
        expected = p if expected is None else 0.6 * expected + 0.4 * p
        np.testing.assert_allclose(list(s.probabilities.values()), expected, atol=1e-5)
        assert s.track == 0


# --- Odd inputs ---------------------------------------------------------------------
def test_none_or_empty_frame_is_a_closed_camera(pipeline, astronaut):
    assert pipeline.process(astronaut).detections
    for nothing in (None, np.zeros((0, 0, 3), np.uint8)):
        result = pipeline.process(nothing)
        assert result.status == NO_FRAME and result.detections == () and result.shape == (0, 0)
        assert pipeline.annotate(nothing)[0] is None
    assert pipeline.process(astronaut).status == DETECTED  # searched afresh, not "still"


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: im,
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)[:, :, None],
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
        lambda im: im.astype(np.uint16) * 257,
        lambda im: im.astype(np.float32) / 255,
        lambda im: im.astype(np.float64) / 255,
        lambda im: im.astype(np.int32),
        lambda im: np.asfortranarray(im),
        lambda im: im[:, ::-1][:, ::-1],
    ],
    ids=["bgr", "gray", "gray1", "bgra", "uint16", "float32", "float64", "int32", "fortran", "strided"],
)
def test_every_image_type_finds_the_same_face(model, astronaut, astronaut_box, convert, iou):
    (face,) = Pipeline(model, release="csv").process(convert(astronaut)).detections
    assert iou(face.box, astronaut_box) > 0.7


def test_bool_and_nan_frames_are_images():
    assert frames.to_uint8(np.array([[True, False]])).tolist() == [[255, 0]]
    assert frames.to_uint8(np.array([[np.nan, 0.5, 2.0]])).tolist() == [[0, 128, 255]]


@pytest.mark.parametrize("shape", [(1, 1), (10, 10, 3), (20, 600), (600, 20, 4), (3, 5000)])
def test_tiny_and_odd_sizes_give_no_faces(pipeline, shape):
    frame = np.full(shape, 127, np.uint8)
    image, result = pipeline.annotate(frame)
    assert result.detections == () and result.shape == shape[:2] and image.shape == (*shape[:2], 3)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((4, 4, 2), np.uint8), r"frame 0: shape \(4, 4, 2\) is not an image"),
        (np.zeros((2, 4, 4, 3), np.uint8), r"frame 0: shape .* is not an image"),
        (np.zeros(7, np.uint8), r"frame 0: shape \(7,\) is not an image"),
        (np.zeros((4, 4), complex), r"frame 0: dtype complex128 is not an image type"),
        (np.array([["a"]]), r"frame 0: dtype <U1 is not an image type"),
    ],
)
def test_non_images_raise_a_clear_error(pipeline, frame, message):
    with pytest.raises(frames.FrameError, match=message):
        pipeline.process(frame)


def test_settings_are_validated(model):
    for bad, message in [
        ({"release": "jpeg"}, "release must be 'csv' or 'folder'"),
        ({"smoothing": 1.0}, "smoothing must be in"),
        ({"motion_threshold": 0}, "motion threshold"),
        ({"motion_area": 2.0}, "min_area"),
        ({"scale_factor": 1.0}, "scale_factor"),
        ({"min_face_size": 10}, "cascade's window"),
        ({"classes": ("a", "b")}, "outputs for 2 classes"),
    ]:
        with pytest.raises(ValueError, match=message):
            Pipeline(model, **{"release": "csv", **bad})


@pytest.mark.slow
def test_a_keras_model_of_the_wrong_shape_is_refused():
    import keras

    wrong_input = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="must take"):
        Pipeline(wrong_input, release="csv")


# --- The release contract and the model files ---------------------------------------------
def test_one_rule_for_equalization():
    assert not fer2013.is_equalized(fer2013.RELEASE_CSV) and fer2013.is_equalized(fer2013.RELEASE_FOLDER)
    with pytest.raises(ValueError, match="release must be"):
        fer2013.is_equalized("equalized")


def test_crops_are_prepared_as_the_models_release(astronaut, astronaut_box):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    boxes = np.array([astronaut_box])
    x, y, w, h = astronaut_box
    plain = cv2.resize(gray[y : y + h, x : x + w], (48, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(prepare_faces(gray, boxes, equalize=False)[0], plain)
    np.testing.assert_array_equal(prepare_faces(gray, boxes, equalize=True)[0], cv2.equalizeHist(plain))
    assert prepare_faces(gray, np.zeros((0, 4), int), equalize=False).shape == (0, 48, 48)


def test_folder_release_equalizes_crops(model):
    assert not Pipeline(model, release="csv").classifier.equalize
    assert Pipeline(model, release="folder").classifier.equalize


def test_a_model_file_without_its_release_is_refused(tmp_path, astronaut):
    bare = tmp_path / "model.onnx"
    shutil.copy(shipped_file(MODEL_B, ".onnx"), bare)  # no JSON beside it
    with pytest.raises(ValueError, match=r"model.onnx: no metadata .* release"):
        Pipeline.load(bare)
    assert Pipeline.load(bare, release="folder").classifier.equalize
    (tmp_path / "model.onnx.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"model.onnx.json: not valid JSON"):
        Pipeline.load(bare)


def test_a_damaged_onnx_file_is_refused(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"broken\.onnx: cannot be loaded as an ONNX model"):
        Pipeline.load(broken, release="csv")
    with pytest.raises(ValueError, match="no such model file"):
        Pipeline.load(tmp_path / "missing.onnx")


def test_the_shipped_onnx_model_loads_with_its_release_and_checksum(tmp_path):
    pipeline = Pipeline.load(shipped_file(MODEL_B, ".onnx"))
    assert pipeline.classes == paper.CLASSES
    assert pipeline.classifier.release == classify.read_metadata(shipped_file(MODEL_B))["release"]
    copy = tmp_path / "model_b.onnx"
    copy.write_bytes(shipped_file(MODEL_B, ".onnx").read_bytes()[:-1] + b"\0")
    shutil.copy(classify.contract_path(shipped_file(MODEL_B, ".onnx")), classify.contract_path(copy))
    with pytest.raises(ValueError, match="sha256 does not match"):
        Pipeline.load(copy)


def test_shipped_models_load_by_name_and_the_live_default_is_one_of_them():
    assert LIVE_MODEL in shipped_models() and MODEL_B in shipped_models()
    for name in shipped_models():
        assert classify.model_file(name) == shipped_file(name, ".onnx")  # onnxruntime is installed here
        assert Pipeline.load(name).classifier.release == classify.read_metadata(shipped_file(name))["release"]
    assert classify.model_file(None) == classify.model_file(LIVE_MODEL)
    with pytest.raises(ValueError, match=r"model_z: no such model file \(a shipped model's name is one of model_b"):
        Pipeline.load("model_z")
    with pytest.raises(ValueError, match="'model_z' is not a shipped model: the package ships model_b"):
        shipped_file("model_z")


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 3])
def test_compiled_keras_predictions_equal_model_predict(keras_model, n):
    faces = np.random.default_rng(n).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    compiled = classify.FaceClassifier(keras_model, release="csv").predict_proba(faces)
    np.testing.assert_allclose(compiled, keras_model.predict(faces[..., None].astype(np.float32), verbose=0),
                               atol=1e-5)


@pytest.mark.slow
def test_the_shipped_model_runs_on_onnxruntime_where_installed_and_on_keras_where_not(monkeypatch):
    pipeline = Pipeline.load()
    assert pipeline.classes == paper.CLASSES
    assert pipeline.classifier.release == classify.read_metadata(shipped_file(MODEL_B))["release"]
    assert hasattr(pipeline.classifier.model, "get_inputs")  # an onnxruntime session
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime"
                        else find_spec(name, *a))
    keras_pipeline = Pipeline.load()
    assert not hasattr(keras_pipeline.classifier.model, "get_inputs")  # a Keras model
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(keras_pipeline.classifier.predict_proba(faces),
                               pipeline.classifier.predict_proba(faces), atol=1e-4)


# --- Drawing ------------------------------------------------------------------------------
def test_annotate_draws_a_red_box_on_a_copy(pipeline, astronaut):
    before = astronaut.copy()
    image, result = pipeline.annotate(astronaut)
    np.testing.assert_array_equal(astronaut, before)
    x, y, w, h = result.detections[0].box
    assert tuple(image[y + h // 2, x]) == frames.RED and tuple(image[y + h, x + w // 2]) == frames.RED
    assert "drawing" in result.timings
