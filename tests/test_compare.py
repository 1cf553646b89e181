"""Ours beside the paper's: the tables, the verdicts and the claims, on runs made up to know the answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from made_up_runs import run

from fer_lib import compare, paper, readers

PARAMS = dict(paper.TOTAL_PARAMS)


def test_verdicts_and_directions():
    assert compare.verdict(63.3, 63.3 + compare.REPRODUCED_WITHIN) == "reproduced"
    assert compare.verdict(60.0, 60.0 + compare.PARTLY_WITHIN) == "partly"
    assert compare.verdict(50.0, 63.3) == "not reproduced"
    assert compare.verdict(math.nan, 63.3) == compare.PENDING
    assert compare.loss_verdict(1.0, 1.05) == "reproduced" and compare.loss_verdict(0.02, 0.75) == "not reproduced"
    assert compare.direction(70.0, 63.3) == "ours higher" and compare.direction(1.0, 2.0) == "ours lower"
    assert compare.direction(math.nan, 1.0) == compare.PENDING


def test_claims_of_a_young_run_are_pending():
    claims = compare.claims({"A": run("A", 3, 100), "B": run("B", 3, 200)}, PARAMS)
    counts = compare.verdict_counts(claims)
    assert counts[compare.BY_CONSTRUCTION] == 2 and counts[compare.NOT_TESTABLE] == 2
    assert counts[compare.PENDING] == len(claims) - 4
    assert set(claims.columns) >= {"claim", "where", "paper", "ours", "direction", "verdict"}


def test_the_live_claims_take_the_simulated_numbers_but_no_verdict_from_them():
    runs = {"A": run("A", 3, 100), "B": run("B", 3, 200)}
    assert set(compare.claims(runs, PARAMS).loc[["live_best", "live_per_class"], "verdict"]) == {compare.NOT_TESTABLE}
    simulated = {paper.LIVE_AVERAGE: 46.0, "happy": 60.0, "angry": 40.0}
    live = compare.claims(runs, PARAMS, simulated_live=simulated).loc[["live_best", "live_per_class"]]
    assert live.loc["live_best", "ours"] == "46.0% (simulated)" and live.loc["live_best", "direction"] == "ours lower"
    assert live.loc["live_per_class", "ours"] == "happy 60.0%, angry 40.0% (simulated)"
    assert "the average over the three lights" in live.loc["live_best", "claim"]
    # a simulation cannot refute a physical test, whichever way its numbers lie: both rows say so alike
    assert set(live["verdict"]) == {compare.SIMULATED_ONLY}
    close = compare.claims(runs, PARAMS, simulated_live={**simulated, paper.LIVE_AVERAGE: 77.5})
    assert close.loc["live_best", "verdict"] == compare.SIMULATED_ONLY


def test_the_seeds_add_their_evidence_and_decide_where_they_differ():
    a = run("A", 100, 100, train_acc=0.95, val_acc=0.30)
    b = run("B", 200, 200, train_acc=0.648, val_acc=0.633, val_loss_rises=True)  # the paper run: it overfits
    runs = {"A": a, "B": b}
    assert compare.STUDY_COLUMN not in compare.claims(runs, PARAMS).columns
    evidence = {"b_final_val": ("Model B's cell: best 70.6-70.8% over 2 seeds", None),
                "b_no_overfitting": ("Model B's cell: gap 1.0 (0.5 to 1.5) pts", "reproduced"),
                "bn_dropout_help": ("both vs neither: ...", "reproduced")}
    claims = compare.claims(runs, PARAMS, evidence=evidence)
    assert claims.loc["b_final_val", compare.STUDY_COLUMN] == "Model B's cell: best 70.6-70.8% over 2 seeds"
    assert (claims[compare.STUDY_COLUMN].drop(list(evidence)) == "—").all()
    # the paper run says B overfits; the seeds say it does not, and decide
    assert claims.loc["b_no_overfitting", "verdict"] == "reproduced"
    decided = claims.loc["b_no_overfitting", compare.DECIDED_BY]
    assert decided == "yes (the paper run: not reproduced)"
    assert claims.loc["bn_dropout_help", compare.DECIDED_BY] == "no"  # the same verdict either way
    assert compare.decided_by_seeds(claims) == ["Model B does not overfit"]
    assert compare.decided_by_seeds(compare.claims(runs, PARAMS)) == []
    young = compare.claims({"A": run("A", 3, 100), "B": run("B", 3, 200)}, PARAMS, evidence=evidence)
    assert young.loc["b_no_overfitting", "verdict"] == compare.PENDING  # no paper-run verdict to overrule yet
    alone = compare.claims(runs, PARAMS)
    assert (claims["verdict"].drop("b_no_overfitting") == alone["verdict"].drop("b_no_overfitting")).all()


def test_claims_of_finished_runs():
    a = run("A", 100, 100, train_acc=0.95, val_acc=0.30)  # overfits, and B (half-way at epoch 100) beats it
    b = run("B", 200, 200, train_acc=0.648, val_acc=0.633, val_loss_rises=True)  # the paper's final numbers
    claims = compare.claims({"A": a, "B": b}, {"A": 1, "B": paper.TOTAL_PARAMS["B"]})
    assert compare.PENDING not in set(claims["verdict"])
    assert claims.loc["b_final_val", "verdict"] == "reproduced" and claims.loc["b_final_train", "ours"] == "64.8%"
    assert claims.loc["a_params", "verdict"] == "not reproduced"
    assert claims.loc["b_params", "verdict"] == compare.BY_CONSTRUCTION
    assert claims.loc["a_training_stage_99", "direction"] == "ours higher"
    # the overfitting claim is two: the gap shrinks (it does here), and B does not overfit (its loss rises)
    assert claims.loc["bn_dropout_help", "verdict"] == "reproduced"
    assert claims.loc["b_no_overfitting", "verdict"] == "not reproduced"
    # accuracy climbs to the last epoch: Table VI's best is at 200, as the paper says
    assert claims.loc["b_best_at_200", "verdict"] == "reproduced"
    assert claims.loc["val_loss_below_train", "verdict"] == "not reproduced"  # validation loss is 1.1/e or rises


def test_every_claim_is_keyed_once_and_has_a_source():
    keys = [c.key for c in compare.CLAIMS]
    assert len(keys) == len(set(keys))
    assert all(c.where and c.paper and c.check for c in compare.CLAIMS)


def test_findings_of_finished_runs():
    found = compare.findings({"A": run("A", 100, 100, train_acc=0.95, val_acc=0.55),
                              "B": run("B", 200, 200, train_acc=0.8, val_acc=0.7, val_loss_rises=True)})
    assert found["complete"] and found["B_best_epoch"] == 200 and found["B_val_loss_low_epoch"] == 1
    assert found["A_gap_100"] == pytest.approx(40.0 * np.mean(np.arange(91, 101)) / 100)  # the last 10 epochs
    # the models compared where the claims table compares them: both at epoch 100
    assert found["val_gain_100"] == pytest.approx(70.0 * 100 / 200 - 55.0) and found["b_exceeds_paper"]
    assert found["val_gain_100"] == compare.at_epoch_100({"A": run("A", 100, 100, train_acc=0.95, val_acc=0.55),
                                                          "B": run("B", 200, 200, train_acc=0.8, val_acc=0.7)})[
        "val_gain_100"]
    # the training loss where Table IV reads it: the mean of epochs 91-100, as in the claims table
    assert found["B_loss_91_100"] == pytest.approx(np.mean(1 / np.arange(91, 101)))


def test_tables_iv_v_vi_of_a_short_run():
    short = {"A": run("A", 5, 100), "B": run("B", 95, 200)}
    table_v = compare.table_v(short)
    assert list(table_v.index) == [0, 1, 98, 99, "AVG", "MAX", "MIN"]
    assert np.isnan(table_v.loc[99, ("Model A", "train", "ours")])
    assert table_v.loc[99, ("Model A", "train", "paper")] == paper.TABLE_V["A"][99][0]
    iv = compare.table_iv_beside_paper(short["B"])
    assert list(iv.index) == list(compare.TABLE_IV_EPOCHS)
    assert iv.loc[95, "ms/step (ours)"] == 66.0 and np.isnan(iv.loc[96, "ms/step (ours)"])
    assert iv.loc[91, "loss (paper)"] == paper.TABLE_IV["B"][0][2]
    assert compare.table_iv_mean("A", 1) == pytest.approx(87.1)
    assert compare.hardware_beside_paper(short).loc["ours, Model B", "sessions"].startswith("1 (")
    assert compare.table_v_marks("A")[0] == (1, 0.664, "paper, training (Table V)")
    assert [e for e, _, _ in compare.table_vi_marks()] == [50, 100, 200]


def test_table_i_and_the_cells_behind_a_difference(tiny_csv):
    fer = readers.read_csv_release(tiny_csv, progress=False)
    table = compare.table_i_beside_paper(fer)
    assert table.loc["train (Training)", "total"] == 15
    assert table.loc["train (Training)", "difference"] == 15 - paper.TRAIN_RECORDS
    assert np.isnan(table.loc["test (PublicTest)", "paper total"])
    assert ("Training/angry", "PrivateTest/angry") in compare.cells_that_sum_to(fer, 5, max_cells=2)
    assert compare.cells_that_sum_to(fer, 1000) == []
    assert compare.data_quality(fer.split("train")) == {"images": 15, "duplicates": 0, "blank": 0}
    brightness = compare.class_brightness(fer.split("train"))
    assert list(brightness.index) == list(paper.CLASSES) and brightness.notna().all().all()


def test_the_papers_architecture_tables_are_whole():
    for name, rows in paper.ARCHITECTURE.items():
        assert sum(p for _, _, p in rows) == paper.TOTAL_PARAMS[name]
        assert paper.TRAINABLE_PARAMS_PRINTED[name] != paper.TOTAL_PARAMS[name] - paper.NON_TRAINABLE_PARAMS[name]
    kinds = {layer.rsplit("_", 1)[0] for layer, _, _ in paper.ARCHITECTURE["B"]}
    assert {"activation", "max_pooling2d", "dropout", "batch_normalization"} <= kinds
