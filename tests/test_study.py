"""The study: its plan as independent commands, and its statistics on run folders the tests write."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synth import tiny_rows, write_csv

from fer_lib import book, checks, cli, hypotheses, provenance, readers, runs, stats, study, train

ROOT = Path(__file__).resolve().parents[1]


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
    *lines, summary = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(study.CELLS)
    assert lines[0].startswith("fer-lib study run 0 ") and "none, seed 0" in lines[0]
    left = sum(not line.endswith("(complete)") for line in lines)
    assert summary.startswith(f"# {left} of {len(lines)} runs left; this machine runs them ")
    assert ("at full speed" in summary) == bool(provenance.native_bf16_features())


def test_run_needs_an_index_or_a_cell_and_seed(capsys):
    assert cli.main(["study", "run", "--cell", "bn"]) == 2
    assert "give a run index" in capsys.readouterr().err


@pytest.mark.slow
def test_every_cell_trains_on_a_tiny_data_set(tmp_path):
    fer = readers.read_csv_release(write_csv(tmp_path / "fer.csv", tiny_rows({"Training": 8, "PublicTest": 2,
                                                                           "PrivateTest": 2})), progress=False)
    for c in study.CELLS:
        config = c.config(0, epochs=1, batch_size=16)
        # one tiny epoch: emulated bf16 is slow, not wrong, on a processor without it
        history = train.fit(config, tmp_path / c.name, fer, progress=False, allow_emulated=True)
        assert len(history) == 1
        assert runs.load_run(tmp_path / c.name).config == config
        assert set(runs.read_predictions(tmp_path / c.name)["split"]) == {"val", "test"}


# --- The statistics, on run folders written here --------------------------------------------
N_IMAGES = 400


def write_run(root, cell_name: str, seed: int, val: list[float], train_acc: list[float], test_correct: float,
              epochs: int = 4, out: Path | None = None, **changes):
    """A run folder as train.fit leaves it (in the study's place for it, or ``out`` under ``root``): manifest,
    history, and (when complete) predictions whose PublicTest accuracy is ``test_correct``, the images drawn
    with the seed; ``changes``: config fields that differ from the cell's."""
    out = root / (out or study.PlannedRun.of(cell_name, seed).out)
    out.mkdir(parents=True)
    config = dataclasses.replace(study.cell(cell_name).config(seed), epochs=epochs, **changes)
    (out / "manifest.json").write_text(json.dumps({"config": dataclasses.asdict(config), "segments": [],
                                                   "data": {"release": "csv", "sha256": "ab" * 32}}))
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
    assert row["last_val"] == pytest.approx(62.0)
    # the gap is the mean over the last 10 epochs (here all 4: 60-59, 80-64, 90-63, 95-62), and at the best epoch
    assert row["gap"] == pytest.approx((1 + 16 + 27 + 33) / 4) and row["gap_best"] == pytest.approx(80.0 - 64.0)
    assert abs(row["test_best"] - 64.0) < 6  # drawn at 64% on 400 images
    unfinished = table.loc[("both_d05", 0)]
    assert not unfinished["complete"] and unfinished["epochs"] == 2 and np.isnan(unfinished["test_best"])


def test_cell_table_counts_complete_seeds_only(factorial):
    cells = study.cell_table(study.run_table(factorial))
    assert cells.loc["none", "seeds"] == 3 and cells.loc["both_d05", "seeds"] == 0
    assert cells.loc["both", "best_val_mean"] == pytest.approx(66.0)
    assert cells.loc["both", "best_val_sd"] == pytest.approx(0.3)


def test_effects_recover_the_built_in_contrasts(factorial):
    effects = study.effects(study.run_table(factorial))
    assert effects.loc["batch normalization", "estimate"] == pytest.approx(4.0)
    assert effects.loc["dropout", "estimate"] == pytest.approx(2.0)
    assert effects.loc["interaction", "estimate"] == pytest.approx(0.0, abs=1e-9)
    assert effects.loc[study.BOTH, "estimate"] == pytest.approx(6.0)
    for name in effects.index:
        assert effects.loc[name, "low"] <= effects.loc[name, "estimate"] <= effects.loc[name, "high"]
    assert effects.loc["batch normalization", "low"] > 0 and effects.loc["interaction", "low"] < 0
    # Welch by hand: four cells with sd 0.3 over 3 seeds, weights +-1/2: se = sqrt(4 * 0.25 * 0.09 / 3), df = 8
    half = stats.t_quantile(0.975, 8) * math.sqrt(4 * 0.25 * 0.09 / 3)
    assert effects.loc["batch normalization", ["low", "high", "df"]].tolist() == pytest.approx([4 - half, 4 + half, 8])
    assert (effects["seeds"] == 3).all()


def test_headline_quotes_the_effects_and_model_b_range(factorial):
    numbers = study.headline(study.run_table(factorial))
    assert numbers["complete"] == 12 and numbers["planned"] == len(study.plan()) and numbers["b_seeds"] == 3
    assert numbers["bn_best"] == pytest.approx(4.0) and numbers["dropout_best"] == pytest.approx(2.0)
    assert numbers["b_vs_a_best"] == pytest.approx(6.0)  # Model B's cell against Model A's: the pages' headline
    assert numbers["bn_best_low"] <= 4.0 <= numbers["bn_best_high"]
    assert (numbers["b_best_min"], numbers["b_best_max"]) == (pytest.approx(65.7), pytest.approx(66.3))
    assert numbers["b_gap"] == pytest.approx((-1 + 14 + 25 + 31) / 4)  # mean over the last 10 (here 4) epochs
    assert numbers["b_gap_low"] < numbers["b_gap"] < numbers["b_gap_high"]
    assert numbers["bn_gap"] == pytest.approx(-4.0) and numbers["dropout_gap"] == pytest.approx(-2.0)  # same training
    assert numbers["b_vs_a_gap"] == pytest.approx(-6.0)


def test_paired_tests_pair_runs_of_the_same_seed(factorial):
    tests = study.paired_tests(factorial)
    none_both = tests[(tests["first"] == "none") & (tests["second"] == "both")]
    assert sorted(none_both["seed"]) == [0, 1, 2]
    assert (none_both["p_value"] <= 1).all() and (none_both["only_a"] + none_both["only_b"] > 0).all()
    assert tests[tests["second"] == "both_d05"].empty  # not complete: not compared


def test_hypotheses_are_pending_without_their_cells(factorial):
    table = hypotheses.table(factorial).set_index(["hypothesis", "model"])
    assert table.loc[("b", "B"), "verdict"] == study.PENDING  # both_d05 has not finished
    assert table.loc[("c", "B"), "verdict"] == study.PENDING
    assert table.loc[("d", "B"), "ours_val"] == pytest.approx(66.0)
    assert table.loc[("d", "B"), "verdict"] == "not supported"  # 66.0 is 2.7 points from 63.3
    assert table.loc[("a", "B"), "epoch"] == 1  # the epoch whose mean pair is nearest the paper's
    # (e): the paper's Model A starts at 66.4% / 61.7%; ours (none) is nearest at epoch 1, which refutes it
    assert table.loc[("e", "A"), "epoch"] == 1 and table.loc[("e", "A"), "verdict"] == "not supported"


def test_closest_epoch():
    epochs = pd.Index([1, 2, 3], name="epoch")
    epoch, distance = hypotheses.closest_epoch(pd.Series([50.0, 64.0, 90.0], epochs),
                                               pd.Series([50.0, 62.0, 60.0], epochs), (64.8, 63.3))
    assert (epoch, distance) == (2, pytest.approx(1.3))


def test_a_study_not_started_reads_as_pending(tmp_path):
    """A fresh clone before any run is committed: every table exists, every number is pending."""
    empty = study.load_study(tmp_path)
    table = study.run_table(empty)
    assert table.empty and list(table.columns)[:2] == ["cell", "seed"]
    cells = study.cell_table(table)
    assert (cells["seeds"] == 0).all() and cells["best_val_mean"].isna().all()
    assert study.effects(table)["estimate"].isna().all()
    assert np.isnan(study.headline(table)["bn_best"])
    assert study.claims_evidence(study.headline(table)) == {}
    assert study.paired_tests(empty).empty and study.mean_curves(empty) == {}
    assert set(hypotheses.table(empty)["verdict"]) == {study.PENDING}


def test_the_chapter_says_how_far_the_study_is_only_while_it_is_not_complete(factorial):
    note = study.progress_note(study.run_table(factorial))
    assert note.startswith(f"12 of the {len(study.plan())} planned runs") and "1 more are in progress" in note
    assert "0 to 3 complete seeds" in note and study.PENDING in note
    assert study.seeds_phrase(3, 3) == "3" and study.seeds_phrase(2, 3) == "2 or 3"
    assert study.extent(study.run_table(factorial)) == f"12 of its {len(study.plan())} runs complete"


def test_an_interval_is_read_against_zero():
    assert study.sign_reading(0.5, 2.0) == "above zero" and study.sign_reading(-3.0, -0.1) == "below zero"
    assert study.sign_reading(-1.5, 2.0) == "not distinguishable from zero"
    assert study.sign_reading(0.0, 2.0) == "not distinguishable from zero"  # a bound on zero is not above it
    for bounds in ((0.0, 2.0), (-2.0, 0.0)):  # ... and decides no claim either way: one rule for both readers
        assert study.side_of_zero(*bounds) == "across"
        assert study._sure(*bounds, "above") is None and study._sure(*bounds, "below") is None
    assert study.sign_reading(float("nan"), float("nan")) == study.PENDING
    readings = {study.sign_reading(*bounds) for bounds in ((0.5, 2.0), (-3.0, -0.1), (-1.5, 2.0), (math.nan, math.nan))}
    assert {book.GAP_READINGS[r] for r in readings} == {"widens it", "narrows it", "leaves it within the seeds' spread",
                                                        study.PENDING}


def test_the_readings_the_seeds_support_in_words(factorial):
    tested = hypotheses.table(factorial)
    # (a) is read for both models, the others for one; (b) and (c) are pending (no complete runs of their cells)
    assert hypotheses.readings(tested, "not supported") == ["(a) for Model A", "(a) for Model B", "(d)", "(e)"]
    assert hypotheses.readings(tested, study.PENDING) == ["(b)", "(c)"] and hypotheses.readings(tested) == []
    assert hypotheses.readings(tested, "not supported", described=True)[1:] == [
        "(a) far fewer effective epochs than stated (Model B)", "(d) the best epoch reported, not the last",
        "(e) Model A's run did not start from scratch"]
    assert book.in_words([]) == "none" and book.in_words(["x"]) == "x"
    assert book.in_words(["x", "y", "z"]) == "x, y and z"


def test_the_study_differs_from_the_paper_protocol_in_epochs_and_precision_only():
    """The introduction and chapter 6 name exactly these two differences."""
    changes = study.protocol_changes()
    assert set(changes) == {"epochs", "precision"}
    assert study.protocol_differences() == {"epochs": 50, "paper_epochs_a": 100, "paper_epochs_b": 200,
                                            "precision": "bfloat16", "paper_precision": "float32"}


def _numbers(**changes) -> dict:
    base = {"b_seeds": 3, "b_best_min": 70.1, "b_best_max": 70.9, "b_gap": 20.0, "b_gap_low": 12.0, "b_gap_high": 28.0,
            "b_vs_a_best": 4.0, "b_vs_a_best_low": 2.0, "b_vs_a_best_high": 6.0,
            "b_vs_a_gap": -15.0, "b_vs_a_gap_low": -21.0, "b_vs_a_gap_high": -9.0}
    return base | changes


def test_the_seeds_give_a_verdict_only_where_their_intervals_are_sure():
    evidence = study.claims_evidence(_numbers())
    assert evidence["bn_dropout_help"][1] == "reproduced" and evidence["b_no_overfitting"][1] == "not reproduced"
    assert evidence["b_final_val"] == ("Model B's cell after 50 epochs: best 70.1-70.9% over 3 seeds", None)
    assert "+4.0 (+2.0 to +6.0)" in evidence["bn_dropout_help"][0] and "20.0 (12.0 to 28.0)" in evidence[
        "b_no_overfitting"][0]
    unsure = study.claims_evidence(_numbers(b_vs_a_best_low=-1.0, b_gap_low=3.0))
    assert unsure["bn_dropout_help"][1] is None and unsure["b_no_overfitting"][1] is None
    against = study.claims_evidence(_numbers(b_vs_a_gap_low=1.0, b_vs_a_gap_high=5.0, b_gap_low=1.0, b_gap_high=4.0))
    assert against["bn_dropout_help"][1] == "not reproduced" and against["b_no_overfitting"][1] == "reproduced"
    nan = float("nan")
    few = study.claims_evidence(_numbers(b_seeds=1, b_gap_low=nan, b_gap_high=nan, b_vs_a_best_low=nan,
                                         b_vs_a_best_high=nan, b_vs_a_gap_low=nan, b_vs_a_gap_high=nan))
    assert few["bn_dropout_help"][1] is None and few["b_no_overfitting"][1] is None


@pytest.fixture
def complete_study(tmp_path):
    """Every planned run complete, as the study will be: levels as in ``factorial``, every cell its own."""
    levels = {"none": 0.60, "bn": 0.64, "dropout": 0.62, "both": 0.66, "both_d05": 0.65, "both_half": 0.63}
    for planned in study.plan():
        top = levels[planned.cell.name] + (planned.seed - 1) * 0.003
        write_run(tmp_path, planned.cell.name, planned.seed, val=[top - 0.05, top, top - 0.01, top - 0.02],
                  train_acc=[0.6, 0.8, 0.9, 0.95], test_correct=top)
    for seed in study.SEEDS:  # the dropout-draw check (fer_lib.checks): Model B with the byte draw
        top = levels["both"] + (seed - 1) * 0.003
        write_run(tmp_path, "both", seed, val=[top - 0.05, top, top - 0.01, top - 0.02],
                  train_acc=[0.6, 0.8, 0.9, 0.95], test_correct=top, out=checks.DRAW_DIR / f"seed{seed}",
                  dropout_draw="bytes")
    fp32 = write_run(tmp_path / "paper", "both", 0, val=[0.60, 0.65, 0.64, 0.66, 0.7], train_acc=[0.5] * 5,
                     test_correct=0.6, epochs=5)
    return study.load_study(tmp_path), runs.load_run(fp32)


def test_a_complete_study_has_nothing_pending(complete_study, tmp_path):
    """Once every planned run is in: no "pending" anywhere, and no word of how far the study got."""
    found, fp32 = complete_study
    table = study.run_table(found)
    note = study.progress_note(table)
    assert note == (f"All {len(study.plan())} planned runs are complete: {len(study.SEEDS)} seeds in each of the "
                    f"{len(study.CELLS)} cells.")
    assert study.progress(table)["done"] and study.PENDING not in note
    assert study.extent(table) == f"{len(study.plan())} runs, {len(study.SEEDS)} seeds of each of its 6 cells"
    cells = study.cell_table(table)
    assert not cells.isna().any().any() and (cells["seeds"] == len(study.SEEDS)).all()
    for metric in ("best_val", "last_val", "gap", "gap_best", "test_best"):
        assert not study.effects(table, metric).isna().any().any(), metric
    numbers = study.headline(table)
    assert not any(isinstance(v, float) and math.isnan(v) for v in numbers.values())
    assert all(verdict is not None for _, verdict in list(study.claims_evidence(numbers).values())[1:])
    assert study.PENDING not in set(hypotheses.table(found)["verdict"])
    assert study.PENDING not in set(checks.precision_check(found, fp32)["decision"])
    assert study.PENDING not in set(checks.draw_check(found, checks.load_draw_runs(tmp_path))["decision"])
    assert len(study.paired_tests(found)) == len(study.PAIRS) * len(study.SEEDS)


@pytest.mark.slow
def test_the_chapter_on_a_complete_study_says_nothing_is_pending(complete_study, tmp_path):
    """Chapter 6 executed on made-up runs, every planned one complete: no glued sentence or number, and no
    table, says "pending", and no sentence says how far the study got."""
    import nbformat
    from nbclient import NotebookClient

    (_, fp32), chapter = complete_study, ROOT / "notebooks" / "06_study.ipynb"
    nb = nbformat.read(chapter, as_version=4)
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = f"PROFILE = 'smoke'\nROOT = {str(tmp_path)!r}\nPAPER_RUN_B = {str(fp32.path)!r}"
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(chapter.parent)}}).execute()
    texts = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                pytest.fail(f"the chapter raised {output['ename']}: {output['evalue']}")
            record = output.get("metadata", {}).get("scrapbook")
            data = output.get("data", {})
            key = f"{record['mime_prefix']}text/plain" if record else "text/html"
            if key in data:
                texts[record["name"] if record else f"table {len(texts)}"] = "".join(data[key])
    pending = {name: text[:120] for name, text in texts.items() if study.PENDING in text}
    assert not pending, f"pending in a complete study: {pending}"
    assert texts["progress_note"].strip("'\"").startswith("All ") and "in progress" not in texts["progress_note"]
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert not [words for words in ("How far", "so far", study.PENDING) if words in markdown]


def test_every_committed_run_is_the_plans_run_on_one_data_file():
    """The runs under results/study (a fresh clone's, not made up): each was trained with the configuration
    its place in the plan gives, all on the same data, and no segment of one ran where bf16 is emulated
    (segments written before the guard of issue 23 do not record the processor's features)."""
    found = study.load_study(ROOT)
    assert found, "no committed study runs"
    for (cell_name, seed), run in found.items():
        assert run.config == study.PlannedRun.of(cell_name, seed).config(), run.path
        recorded = [seg["native_bf16"] for seg in run.manifest["segments"] if "native_bf16" in seg]
        assert all(recorded), f"{run.path}: a segment trained with emulated bf16"
    assert len({run.manifest["data"]["sha256"] for run in found.values()}) == 1
