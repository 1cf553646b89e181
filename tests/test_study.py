"""The study: its plan as independent commands, and its statistics on run folders the tests write."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from synth import tiny_rows, write_csv

from fer_lib import cli, readers, runs, study, train


def test_plan_is_seed_major_and_open_ended():
    plan = study.plan()
    assert len(plan) == len(study.CELLS) * len(study.SEEDS)
    assert [r.cell.name for r in plan[: len(study.CELLS)]] == [c.name for c in study.CELLS]
    assert {r.seed for r in plan[: len(study.CELLS)]} == {0}
    beyond = study.PlannedRun(len(plan) + 1)  # a fourth seed: a scheduler only needs a higher number
    assert (beyond.seed, beyond.cell.name) == (len(study.SEEDS), study.CELLS[1].name)
    for run in plan:
        assert study.PlannedRun.of(run.cell.name, run.seed) == run
        assert run.out.as_posix() == f"results/study/{run.cell.name}/seed{run.seed}"
    with pytest.raises(ValueError, match="0 or more"):
        study.PlannedRun(-1)
    with pytest.raises(ValueError, match="unknown cell"):
        study.PlannedRun.of("everything", 0)


def test_cells_switch_one_thing_at_a_time():
    arch = {c.name: c.config(0).architecture() for c in study.CELLS}
    assert arch["none"] == {"batch_norm": False, "conv_dropout": 0.0, "dense_dropout": 0.0}
    assert arch["bn"] == {**arch["none"], "batch_norm": True}
    assert arch["dropout"] == {**arch["none"], "conv_dropout": 0.25, "dense_dropout": 0.5}
    assert arch["both"] == {"batch_norm": True, "conv_dropout": 0.25, "dense_dropout": 0.5}
    assert arch["both_d05"] == {**arch["both"], "conv_dropout": 0.5}
    assert arch["both_half"] == arch["both"] and study.cell("both_half").config(0).train_fraction == 0.5
    configs = [c.config(1) for c in study.CELLS]
    assert {(c.epochs, c.precision, c.batch_size, c.learning_rate, c.seed) for c in configs} == {(50, "bf16", 128,
                                                                                              1e-3, 1)}
    assert study.cell("none").config(0).is_paper_model() and study.cell("both").config(0).is_paper_model()


def test_plan_command_lists_one_command_per_run(capsys):
    assert cli.main(["study", "plan", "--seeds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(study.CELLS)
    assert lines[0].startswith("fer-lib study run 0 ") and "none, seed 0" in lines[0]


def test_run_needs_an_index_or_a_cell_and_seed(capsys):
    assert cli.main(["study", "run", "--cell", "bn"]) == 2
    assert "give a run index" in capsys.readouterr().err


@pytest.mark.slow
def test_every_cell_trains_on_a_tiny_data_set(tmp_path):
    fer = readers.read_csv_release(write_csv(tmp_path / "fer.csv", tiny_rows({"Training": 8, "PublicTest": 2,
                                                                           "PrivateTest": 2})), progress=False)
    for c in study.CELLS:
        config = c.config(0, epochs=1, batch_size=16)
        history = train.fit(config, tmp_path / c.name, fer, progress=False)
        assert len(history) == 1
        assert runs.load_run(tmp_path / c.name).config == config
        assert set(runs.read_predictions(tmp_path / c.name)["split"]) == {"val", "test"}


# --- The statistics, on run folders written here --------------------------------------------
N_IMAGES = 400


def write_run(root, cell_name: str, seed: int, val: list[float], train_acc: list[float], test_correct: float,
              epochs: int = 4):
    """A run folder as train.fit leaves it: manifest, history, and (when complete) predictions whose
    PublicTest accuracy is ``test_correct``, the images drawn with the seed."""
    out = root / study.PlannedRun.of(cell_name, seed).out
    out.mkdir(parents=True)
    config = dataclasses.replace(study.cell(cell_name).config(seed), epochs=epochs)
    (out / "manifest.json").write_text(json.dumps({"config": dataclasses.asdict(config), "segments": []}))
    pd.DataFrame({"epoch": range(1, len(val) + 1), "loss": 1.0, "accuracy": train_acc, "val_loss": 1.0,
                  "val_accuracy": val, "seconds": 1.0, "ms_per_step": 1.0}).to_csv(out / "history.csv", index=False)
    if len(val) == epochs:
        rng = np.random.default_rng([seed, len(cell_name)])
        labels = np.arange(N_IMAGES) % 5
        frames = []
        for split, share in (("val", max(val)), ("test", test_correct)):
            right = rng.random(N_IMAGES) < share
            predicted = np.where(right, labels, (labels + 1) % 5)
            frames.append(pd.DataFrame({"best_epoch": int(np.argmax(val)) + 1, "split": split,
                                        "id": [f"row {i}" for i in range(N_IMAGES)], "label": labels,
                                        "best": predicted, "last": predicted}))
        pd.concat(frames).to_csv(out / train.PREDICTIONS, index=False, compression="gzip")
    return out


@pytest.fixture
def factorial(tmp_path):
    """The 2x2 cells, three seeds each: batch normalization adds 4 points, dropout 2, no interaction."""
    for seed, noise in zip(range(3), (-0.3, 0.0, 0.3)):
        for cell_name, level in (("none", 0.60), ("bn", 0.64), ("dropout", 0.62), ("both", 0.66)):
            top = level + noise / 100
            write_run(tmp_path, cell_name, seed, val=[top - 0.05, top, top - 0.01, top - 0.02],
                      train_acc=[0.6, 0.8, 0.9, 0.95], test_correct=top)
    write_run(tmp_path, "both_d05", 0, val=[0.5, 0.55], train_acc=[0.5, 0.6], test_correct=0.5)  # 2 of 4 epochs
    return study.load_study(tmp_path)


def test_run_table_reads_best_last_gap_and_test(factorial):
    table = study.run_table(factorial).set_index(["cell", "seed"])
    row = table.loc[("bn", 1)]
    assert row["best_val"] == pytest.approx(64.0) and row["best_epoch"] == 2
    assert row["last_val"] == pytest.approx(62.0) and row["gap"] == pytest.approx(95.0 - 62.0)
    assert abs(row["test_best"] - 64.0) < 6  # drawn at 64% on 400 images
    unfinished = table.loc[("both_d05", 0)]
    assert not unfinished["complete"] and unfinished["epochs"] == 2 and np.isnan(unfinished["test_best"])


def test_cell_table_counts_complete_seeds_only(factorial):
    cells = study.cell_table(study.run_table(factorial))
    assert cells.loc["none", "seeds"] == 3 and cells.loc["both_d05", "seeds"] == 0
    assert cells.loc["both", "best_val_mean"] == pytest.approx(66.0)
    assert cells.loc["both", "best_val_sd"] == pytest.approx(0.3)


def test_effects_recover_the_built_in_contrasts(factorial):
    effects = study.effects(study.run_table(factorial), n_boot=2000)
    assert effects.loc["batch normalization", "estimate"] == pytest.approx(4.0)
    assert effects.loc["dropout", "estimate"] == pytest.approx(2.0)
    assert effects.loc["interaction", "estimate"] == pytest.approx(0.0, abs=1e-9)
    for name in effects.index:
        assert effects.loc[name, "low"] <= effects.loc[name, "estimate"] <= effects.loc[name, "high"]
    assert effects.loc["batch normalization", "low"] > 0 and effects.loc["interaction", "low"] < 0


def test_headline_quotes_the_effects_and_model_b_range(factorial):
    numbers = study.headline(study.run_table(factorial), n_boot=500)
    assert numbers["complete"] == 12 and numbers["planned"] == len(study.plan()) and numbers["b_seeds"] == 3
    assert numbers["bn_best"] == pytest.approx(4.0) and numbers["dropout_best"] == pytest.approx(2.0)
    assert numbers["bn_best_low"] <= 4.0 <= numbers["bn_best_high"]
    assert (numbers["b_best_min"], numbers["b_best_max"]) == (pytest.approx(65.7), pytest.approx(66.3))
    assert numbers["b_gap_mean"] == pytest.approx(95.0 - 64.0)
    assert numbers["bn_gap"] == pytest.approx(-4.0) and numbers["dropout_gap"] == pytest.approx(-2.0)  # same training


def test_paired_tests_pair_runs_of_the_same_seed(factorial):
    tests = study.paired_tests(factorial)
    none_both = tests[(tests["first"] == "none") & (tests["second"] == "both")]
    assert sorted(none_both["seed"]) == [0, 1, 2]
    assert (none_both["p_value"] <= 1).all() and (none_both["only_a"] + none_both["only_b"] > 0).all()
    assert tests[tests["second"] == "both_d05"].empty  # not complete: not compared


def test_hypotheses_are_pending_without_their_cells(factorial):
    table = study.hypotheses(factorial).set_index(["hypothesis", "model"])
    assert table.loc[("b", "B"), "verdict"] == study.PENDING  # both_d05 has not finished
    assert table.loc[("c", "B"), "verdict"] == study.PENDING
    assert table.loc[("d", "B"), "ours_val"] == pytest.approx(66.0)
    assert table.loc[("d", "B"), "verdict"] == "not supported"  # 66.0 is 2.7 points from 63.3
    assert table.loc[("a", "B"), "epoch"] == 1  # the epoch whose mean pair is nearest the paper's
    # (e): the paper's Model A starts at 66.4% / 61.7%; ours (none) is nearest at epoch 1, which refutes it
    assert table.loc[("e", "A"), "epoch"] == 1 and table.loc[("e", "A"), "verdict"] == "not supported"


def test_closest_epoch():
    epochs = pd.Index([1, 2, 3], name="epoch")
    epoch, distance = study.closest_epoch(pd.Series([50.0, 64.0, 90.0], epochs), pd.Series([50.0, 62.0, 60.0], epochs),
                                          (64.8, 63.3))
    assert (epoch, distance) == (2, pytest.approx(1.3))


def test_precision_check_compares_the_shared_epochs(factorial, tmp_path):
    fp32 = write_run(tmp_path / "paper", "both", 0, val=[0.60, 0.65, 0.64, 0.66, 0.7], train_acc=[0.5] * 5,
                     test_correct=0.6, epochs=5)
    check = study.precision_check(factorial, runs.load_run(fp32))
    assert check["epochs"] == 4
    # bf16 run (seed 0): 0.607, 0.657, 0.647, 0.637 against 0.60, 0.65, 0.64, 0.66
    assert check["max_abs_diff"] == pytest.approx(2.3) and check["best_diff"] == pytest.approx(65.7 - 66.0)


def test_a_study_not_started_reads_as_pending(tmp_path):
    """A fresh clone before any run is committed: every table exists, every number is pending."""
    empty = study.load_study(tmp_path)
    table = study.run_table(empty)
    assert table.empty and list(table.columns)[:2] == ["cell", "seed"]
    cells = study.cell_table(table)
    assert (cells["seeds"] == 0).all() and cells["best_val_mean"].isna().all()
    assert study.effects(table)["estimate"].isna().all()
    assert np.isnan(study.headline(table, n_boot=100)["bn_best"])
    assert study.paired_tests(empty).empty and study.mean_curves(empty) == {}
    assert set(study.hypotheses(empty)["verdict"]) == {study.PENDING}
