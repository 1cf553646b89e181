"""Ours beside the paper's: the tables, the verdicts and the claims, on runs made up to know the answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from made_up_runs import history, run

from fer_lib import compare, models, paper, readers

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


def test_the_live_claim_takes_the_simulated_number_when_given():
    runs = {"A": run("A", 3, 100), "B": run("B", 3, 200)}
    assert compare.claims(runs, PARAMS).loc["live_best", "verdict"] == compare.NOT_TESTABLE
    simulated = compare.claims(runs, PARAMS, simulated_live=47.0).loc["live_best"]
    assert (simulated["ours"], simulated["verdict"], simulated["direction"]) == ("47.0% (simulated)", "not reproduced",
                                                                               "ours lower")
    close = compare.claims(runs, PARAMS, simulated_live=paper.LIVE_TESTS["best_condition_accuracy"] - 1)
    assert close.loc["live_best", "verdict"] == "reproduced"


def test_the_study_adds_its_evidence_to_the_claims_it_bears_on():
    runs = {"A": run("A", 3, 100), "B": run("B", 3, 200)}
    assert compare.STUDY_COLUMN not in compare.claims(runs, PARAMS).columns
    numbers = {"complete": 14, "planned": 18, "b_seeds": 2, "b_best_min": 70.6, "b_best_max": 70.8, "b_gap_mean": 21.8,
               "bn_best": 1.7, "bn_best_low": 1.1, "bn_best_high": 2.2, "bn_gap": 8.5,
               "dropout_best": 2.4, "dropout_best_low": 1.8, "dropout_best_high": 2.9, "dropout_gap": -21.1}
    claims = compare.claims(runs, PARAMS, study=numbers)
    column = claims[compare.STUDY_COLUMN]
    assert column["b_final_val"] == "Model B's cell: best 70.6-70.8% over 2 seeds"
    assert "gap 21.8 pts" in column["b_no_overfitting"]
    assert "BN +1.7 (+1.1 to +2.2)" in column["bn_dropout_help"] and "dropout -21.1" in column["bn_dropout_help"]
    assert (column.drop(["b_final_val", "b_no_overfitting", "bn_dropout_help"]) == "—").all()
    assert (claims["verdict"] == compare.claims(runs, PARAMS)["verdict"]).all()  # verdicts stay the paper runs'
    none_yet = compare.claims(runs, PARAMS, study={**numbers, "b_seeds": 0})
    assert (none_yet[compare.STUDY_COLUMN] == "—").all()


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
    assert found["val_gain"] == pytest.approx(15.0) and found["b_exceeds_paper"]


def test_paper_gap_is_the_difference_of_table_v_max_rows():
    assert compare.paper_gap_definition() == paper.TRAIN_VAL_GAP
    assert compare.gap_max_rows(history(10, 0.6, 0.5)) == pytest.approx(10.0)
    assert compare.gap_per_epoch(history(4, 0.4, 0.4)).tolist() == pytest.approx([0, 0, 0, 0])
    assert compare.last_negative_gap(history(5, 0.4, 0.5)) == 5 and compare.last_negative_gap(history(5)) == 0


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


@pytest.mark.slow
def test_architecture_tables_beside_the_papers():
    built = {"A": models.model_a(), "B": models.model_b()}
    for name, model in built.items():
        table = compare.architecture_beside_paper(model, name)
        assert table["agrees"].eq(False).sum() == 0
        assert table["agrees"].eq(True).sum() == len(paper.ARCHITECTURE[name])
        assert list(table.index[~table["in paper"]]) == ["rescale"]
        assert list(table.index) == list(compare.architecture_table(model)["layer"])  # the model's order
    table_iii = compare.architecture_beside_paper(built["B"], "B")
    assert list(table_iii.index[table_iii["in paper"] & ~table_iii["shape printed"]]) == ["max_pooling2d_1"]
    counts = compare.param_counts_beside_paper(built)
    assert counts.loc["Model B", "trainable (paper, total minus non-trainable)"] == 1_196_421
    assert counts.loc["Model A", "trainable (ours)"] == paper.TOTAL_PARAMS["A"]
    assert compare.params_at_input_size(built["A"], 64)["dense_1"] == 4 * 4 * 256 * 64 + 64
