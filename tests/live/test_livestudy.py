"""The simulated live study: small faces found by the default cascade and its search limited to what moved,
BlazeFace beside the cascade, bad scenes counted without errors, and the study's tables on the real data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lib import paper
from fer_lib.live import livestudy, scenes
from fer_lib.live.blazeface import VARIANTS, BlazeFaceDetector, anchors, weighted_nms
from fer_lib.live.detect import FaceDetector, MotionGate, normalize_exposure, prepare_faces
from fer_lib.live.experiment import synthetic_clip
from fer_lib.live.pipeline import DETECTED, Pipeline


@pytest.fixture(scope="module")
def face48(astronaut_face) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(astronaut_face, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


# --- Small faces -------------------------------------------------------------------------
def test_a_face_48_px_wide_is_found_by_default_and_was_not_before(model, face48, iou):
    """At 150 cm the face is 52 px wide: below the former 80 px minimum, above the new 40."""
    scene = scenes.render([face48], 150, "bright", scenes.scene_rng(0, 150))
    found = FaceDetector().detect(scene.frame)
    assert len(found) == 1 and iou(found[0], scene.boxes[0]) > 0.5
    assert len(FaceDetector(min_size=80, min_neighbors=5).detect(scene.frame)) == 0


def test_the_second_denser_search_finds_small_faces_the_first_misses(face48, iou, monkeypatch):
    """At 150 cm (52 px) in side light, the search on the shrunk copy misses about half the faces."""
    one, two = FaceDetector(dense_retry=False), FaceDetector()
    frames = [scenes.render([face48], 150, "side", scenes.scene_rng(seed, 150)) for seed in range(20)]
    assert sum(len(one.detect(s.frame)) > 0 for s in frames) <= 15
    for scene in frames:
        found = two.detect(scene.frame)
        assert len(found) == 1 and iou(found[0], scene.boxes[0]) > 0.5
    searches = []
    search = two._search
    monkeypatch.setattr(two, "_search", lambda *a, **k: searches.append(k.get("dense", False)) or search(*a, **k))
    near = scenes.render([face48], 60, "bright", scenes.scene_rng(0, 60))
    assert len(two.detect(near.frame)) == 1 and searches == [False]  # a face found: no second search
    assert len(two.detect(near.empty)) == 0 and searches[1:] == [False, True]


def test_the_search_limited_to_what_moved_finds_what_the_whole_frame_search_finds(model, face48, iou):
    scene = scenes.render([face48] * 2, 90, "bright", scenes.scene_rng(1))
    pipeline, whole = Pipeline(model, release="csv"), Pipeline(model, release="csv", search_moving=False)
    for p in (pipeline, whole):
        p.process(scene.empty)
    limited, everywhere = pipeline.process(scene.frame), whole.process(scene.frame)
    assert limited.status == everywhere.status == DETECTED
    assert len(limited.detections) == len(everywhere.detections) == 2
    for a, b in zip(limited.detections, everywhere.detections, strict=True):
        assert iou(a.box, b.box) > 0.85  # the same faces, up to where the shrunk copy's pixels fall
    x0, y0, x1, y1 = pipeline.gate.region  # the search covered the faces, not the frame
    assert (x1 - x0) * (y1 - y0) < 0.6 * 640 * 480


def test_a_face_that_moves_is_followed_at_its_size_and_still_faces_are_kept(model, astronaut_face, iou):
    """The cheap path of the search: only found faces moved, so each is looked for around itself."""
    clip, _ = synthetic_clip([astronaut_face] * 2, moving=6, still=0, face_size=120, step=6)
    for frame in clip[1:]:
        frame[:, 320:] = clip[0][:, 320:]  # the right-hand face stands still
    limited, whole = Pipeline(model, release="csv"), Pipeline(model, release="csv", search_moving=False)
    for frame in clip:
        ours, theirs = limited.process(frame).detections, whole.process(frame).detections
        assert len(ours) == len(theirs) == 2
        assert all(iou(a.box, b.box) > 0.7 for a, b in zip(ours, theirs, strict=True))


def test_the_motion_gate_reports_where_the_frame_changed():
    gate = MotionGate()
    still = np.full((480, 640), 100, np.uint8)
    assert gate.changed(still) and gate.region is None  # the first frame: everywhere is new
    moved = still.copy()
    moved[200:300, 400:500] = 200
    assert gate.changed(moved)
    x0, y0, x1, y1 = gate.region
    assert 380 <= x0 <= 400 and 500 <= x1 <= 520 and 180 <= y0 <= 200 and 300 <= y1 <= 320
    assert not gate.changed(moved)


# --- BlazeFace beside the cascade ----------------------------------------------------------
def test_blazeface_finds_the_astronaut_and_nothing_in_an_empty_room(blazeface, astronaut, astronaut_box, iou):
    (box,) = blazeface.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    assert iou(box, astronaut_box) > 0.5
    empty = scenes.render([], 60, "bright", scenes.scene_rng(0)).frame
    assert len(blazeface.detect(empty)) == 0 and len(FaceDetector().detect(empty)) == 0


def test_blazeface_runs_in_the_pipeline(model, blazeface, astronaut, astronaut_box, iou):
    result = Pipeline(model, release="csv", detector=blazeface).process(astronaut)
    (face,) = result.detections
    assert iou(face.box, astronaut_box) > 0.5 and face.label in paper.CLASSES


def test_blazeface_anchors_and_suppression():
    assert len(anchors(VARIANTS["short"])) == 896 and len(anchors(VARIANTS["full"])) == 2304
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    merged = weighted_nms(boxes, np.array([0.9, 0.1, 0.8]))
    assert merged.shape == (2, 4) and merged[0, 0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="unknown BlazeFace variant"):
        BlazeFaceDetector("long")


# --- Crops, bad scenes -----------------------------------------------------------------------
def test_exposure_normalization_keeps_the_release_contract(face48):
    dark = (face48 * 0.3).astype(np.uint8)[None]
    normal = normalize_exposure(dark, 128.0, 54.0)
    assert abs(normal.mean() - 128) < 2 and abs(normal.std() - 54) < 3
    box = np.array([[0, 0, 48, 48]])
    assert np.array_equal(prepare_faces(dark[0], box, equalize=True, exposure=(128.0, 54.0)),
                          prepare_faces(dark[0], box, equalize=True))  # an equalized release is equalized only
    with pytest.raises(ValueError, match="release must be"):
        Pipeline(None, release="jpeg", exposure=True)


def test_bad_scenes_go_through_and_are_counted(pipeline, face48):
    cases = livestudy.bad_scenes(np.stack([face48] * 3), np.random.default_rng(0))
    table = livestudy.run_bad_scenes(pipeline, cases)
    assert list(table.index) == ["no face", "two faces", "three faces", "face cut by the edge", "all black",
                                 "all white"]
    assert (table["status"] == DETECTED).all()
    assert table.loc[["no face", "all black", "all white"], "faces found"].eq(0).all()
    assert table.loc["two faces", "faces found"] == 2 and table["faces in view"].tolist() == [0, 2, 3, 1, 0, 0]


# --- The study on the real data ------------------------------------------------------------------
@pytest.mark.realdata
@pytest.mark.slow
def test_the_study_tables_on_real_faces(real_csv_data, model):
    faces = livestudy.study_faces(real_csv_data, per_class=1, seed=0)
    assert len(faces.y) == 5 and sorted(faces.y) == [0, 1, 2, 3, 4] and faces.frontal.dtype == bool
    pipelines = {"haar": Pipeline(model, release="csv")}
    table, crops = livestudy.measure(faces, pipelines, distances=(30, 150), lighting=("bright", "dim"))
    again, _ = livestudy.measure(faces, pipelines, distances=(30, 150), lighting=("bright", "dim"))
    timing = ["detection_ms"]
    assert len(table) == 20 and crops.shape == (20, 48, 48)
    assert table.drop(columns=timing).equals(again.drop(columns=timing))
    rates = livestudy.rates(table)
    assert rates["scenes"].sum() == 20 and rates["found (%)"].between(0, 100).all()
    assert (table.loc[~table["detected"], "predicted"] == -1).all()
    assert list(livestudy.per_class(table).columns) == [c for c in paper.CLASSES if c in
                                                       {paper.CLASSES[k] for k in table["label"]}]
    beside = livestudy.beside_paper(table, "haar")
    assert beside.loc["happy", "paper (%)"] == paper.LIVE_TESTS["per_class_at_30cm"]["happy"]


@pytest.mark.realdata
def test_the_train_exposure_constants_match_the_data(real_csv_data):
    from fer_lib.live.detect import TRAINING_EXPOSURE

    train = real_csv_data.split("train").x
    measured = (train.mean(), train.reshape(len(train), -1).std(axis=1).mean())
    assert measured == pytest.approx(TRAINING_EXPOSURE, abs=0.05)


@pytest.mark.realdata
@pytest.mark.slow
def test_the_claims_numbers_are_the_chapters_30_cm_scenes_over_three_lights(real_csv_data, model):
    """simulated_live is the end-to-end accuracy of the same scenes as the study's at 30 cm, averaged over the
    paper's three lights as the paper's 78% is (and per class), so the claims table and Table 8.4 agree."""
    numbers = livestudy.simulated_live(real_csv_data, per_class=2)
    faces = livestudy.study_faces(real_csv_data, per_class=2)
    table, _ = livestudy.measure(faces, {"haar": Pipeline(model, release="csv")}, (30, 150), scenes.LIGHTING)
    near = table[(table["distance_cm"] == 30) & table["lighting"].isin(scenes.PAPER_LIGHTING)]
    assert numbers[paper.LIVE_AVERAGE] == pytest.approx(100 * near["correct"].mean())
    assert numbers == pytest.approx(livestudy.beside_paper(table, "haar")["simulated, three lights (%)"].to_dict())
