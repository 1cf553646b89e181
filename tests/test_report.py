"""The book's computations: runs as they stand, the tables beside the paper's, the claims and the links."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fer_lib import data, models, paper, report, runs, train


def history(epochs: int, train_acc: float = 0.60, val_acc: float = 0.55) -> pd.DataFrame:
    """A run whose accuracies climb linearly to ``train_acc`` / ``val_acc`` at its last epoch."""
    e = np.arange(1, epochs + 1)
    ramp = e / max(epochs, 1)
    return pd.DataFrame({"epoch": e, "loss": 1 / e, "accuracy": train_acc * ramp, "val_loss": 1.1 / e,
                         "val_accuracy": val_acc * ramp, "seconds": 12.5, "ms_per_step": 66.0})


def manifest(model: str, planned: int) -> dict:
    seg = {"start": "2026-01-01T00:00:00+00:00", "first_epoch": 1, "last_epoch": 3, "cpu": "Test CPU", "cores": 2,
           "tf_threads": 1, "tensorflow": "2.21.0", "keras": "3.15.1", "python": "3.11.7",
           "git_commit": "0123456789abcdef+dirty", "wall_seconds": 7200.0}
    return {"config": {"model": model.lower(), "epochs": planned, "seed": 0, "profile": "paper"},
            "data": {"release": "csv", "sha256": "ab" * 32}, "segments": [seg], "wall_seconds": 7200.0}


def run(model: str, epochs: int, planned: int, **acc) -> runs.Run:
    m = manifest(model, planned)
    return runs.Run(None, train.TrainConfig(**m["config"]), m, history(epochs, **acc))


def test_run_status_and_provenance():
    r = run("B", 12, 200)
    assert r.status() == "epoch 12 of 200 (in progress)" and not r.complete
    assert run("A", 100, 100).status() == "all 100 epochs"
    assert r.at(12, "epoch") == 12 and np.isnan(r.at(13, "accuracy"))
    assert len(r.until(5)) == 5
    text = r.provenance()
    for part in ("epoch 12 of 200", "seed 0", "0123456+dirty", "abababababab", "Test CPU, 2 cores", "2.0 h"):
        assert part in text


def test_load_runs_from_disk(tmp_path):
    for model, planned in (("A", 100), ("B", 200)):
        folder = tmp_path / report.run_folder(model)
        folder.mkdir()
        history(3).to_csv(folder / "history.csv", index=False)
        (folder / "manifest.json").write_text(json.dumps(manifest(model, planned)))
    runs = report.load_runs(tmp_path)
    assert runs["B"].planned == 200 and runs["A"].epochs_done == 3 and runs["A"].name == "A"
    shutil.copy(tmp_path / "model_b" / "manifest.json", tmp_path / "model_a")
    with pytest.raises(ValueError, match="holds a run of Model B, not Model A"):
        report.load_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        report.load_runs(tmp_path / "nowhere")


def test_verdict_thresholds():
    assert report.verdict(63.3, 63.3 + report.REPRODUCED_WITHIN) == "reproduced"
    assert report.verdict(60.0, 60.0 + report.PARTLY_WITHIN) == "partly"
    assert report.verdict(50.0, 63.3) == "not reproduced"
    assert report.verdict(float("nan"), 63.3) == report.PENDING


def test_claims_while_the_run_is_young_are_pending():
    claims = report.claims({"A": run("A", 3, 100), "B": run("B", 3, 200)},
                           {"A": paper.MODEL_A_TOTAL_PARAMS, "B": paper.MODEL_B_TOTAL_PARAMS})
    counts = report.verdict_counts(claims)
    assert counts["pending"] == len(claims) - 3  # all but the two parameter counts and the live test
    assert counts["reproduced"] == 2 and counts["not testable"] == 1
    assert claims.loc[0, "how we checked"].startswith("needs epoch 200; Model B has had 3 of 200 (so far: ")
    assert report.verdict_sentence(claims) == (f"2 reproduced, {len(claims) - 3} pending (their epoch has "
                                               "not run yet), 1 not testable")
    young = {"A": run("A", 100, 100), "B": run("B", 3, 200)}
    assert not report.runs_complete(young)
    assert report.progress_note(young, "done", "so pending.").startswith("The paper run takes days")
    assert report.progress_note(young, "done", "so pending.").endswith("session by session; so pending.")


def test_claims_of_finished_runs():
    a = run("A", 100, 100, train_acc=0.95, val_acc=0.55)  # overfits
    b = run("B", 200, 200, train_acc=0.648, val_acc=0.633)  # the paper's final numbers exactly
    claims = report.claims({"A": a, "B": b}, {"A": 1, "B": paper.MODEL_B_TOTAL_PARAMS}).set_index("claim")
    assert claims.loc["Model B reaches 63.3% validation accuracy", "verdict"] == "reproduced"
    assert claims.loc["Model B reaches 64.8% training accuracy", "ours"] == "64.8%"
    assert claims.loc["Model A has 1,195,205 parameters", "verdict"] == "not reproduced"
    overfitting = claims.loc["BN and dropout prevent overfitting: A's gap is large, B's small"]
    assert overfitting["verdict"] == "reproduced" and overfitting["ours"].endswith("pts")
    assert report.PENDING not in set(claims["verdict"])
    assert "reproduced" in report.verdict_summary_html(claims.reset_index())
    assert "pending" not in report.verdict_sentence(claims)
    assert report.runs_complete({"A": a, "B": b}) and report.progress_note({"A": a, "B": b}, "done", "x") == "done"


def test_paper_gap_is_the_difference_of_table_v_max_rows():
    assert report.paper_gap_definition() == paper.TRAIN_VAL_GAP
    assert report.gap_max_rows(history(10, 0.6, 0.5)) == pytest.approx(10.0)
    assert report.gap_per_epoch(history(4, 0.4, 0.4)).tolist() == pytest.approx([0, 0, 0, 0])


def test_tables_iv_v_vi_of_a_short_run():
    runs = {"A": run("A", 5, 100), "B": run("B", 95, 200)}
    table_v = report.table_v(runs)
    assert list(table_v.index) == [0, 1, 98, 99, "AVG", "MAX", "MIN"]
    assert np.isnan(table_v.loc[99, ("Model A", "train", "ours")])
    assert table_v.loc[99, ("Model A", "train", "paper")] == paper.TABLE_V["A"][99][0]
    iv = report.table_iv_beside_paper(runs["B"])
    assert list(iv.index) == list(report.TABLE_IV_EPOCHS)
    assert iv.loc[95, "ms/step (ours)"] == 66.0 and np.isnan(iv.loc[96, "ms/step (ours)"])
    assert iv.loc[91, "loss (paper)"] == paper.TABLE_IV_MODEL_B[0][2]
    hardware = report.hardware_beside_paper(runs)
    assert hardware.loc["ours, Model B", "sessions"] == "1 (epoch 95 of 200 (in progress))"
    assert len(report.sessions(runs)) == 2
    assert report.table_v_marks("A")[0] == (1, 0.664, "paper, training (Table V)")
    assert [e for e, _, _ in report.table_vi_marks()] == [50, 100, 200]


def test_table_i_and_the_cells_behind_a_difference(tiny_csv):
    fer = data.read_csv_release(tiny_csv, progress=False)
    table = report.table_i_beside_paper(fer)
    assert table.loc["train (Training)", "total"] == 15
    assert table.loc["train (Training)", "difference"] == 15 - paper.TRAIN_RECORDS
    assert np.isnan(table.loc["test (PublicTest)", "paper total"])
    found = report.cells_that_sum_to(fer, 5, max_cells=2)  # Training 3 + PrivateTest 2, for any two classes
    assert ("Training/angry", "PrivateTest/angry") in found
    assert report.cells_that_sum_to(fer, 1000) == []
    quality = report.data_quality(fer.split("train"))
    assert quality == {"images": 15, "duplicates": 0, "blank": 0}
    assert "sha256 " + fer.checksum[:12] in report.data_provenance(fer)


def test_architecture_tables_beside_the_papers():
    built = {"A": models.model_a(), "B": models.model_b()}
    table_ii = report.architecture_beside_paper(built["A"], paper.TABLE_II_MODEL_A)
    assert table_ii["agrees"].eq(False).sum() == 0
    assert table_ii["agrees"].eq(True).sum() == len(paper.TABLE_II_MODEL_A)
    assert table_ii.loc["rescale", "note"] == "not in the paper's table"
    assert list(table_ii.index) == list(report.architecture_table(built["A"])["layer"])  # the model's order
    counts = report.param_counts_beside_paper(built)
    assert counts.loc["Model B", "trainable (paper, total minus non-trainable)"] == 1_196_421
    assert counts.loc["Model A", "trainable (ours)"] == paper.MODEL_A_TOTAL_PARAMS
    assert report.params_at_input_size(built["A"], 64)["dense_1"] == 4 * 4 * 256 * 64 + 64


def test_links_derive_from_the_config(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/someone/thing/\n  branch: dev\n  path_to_book: docs\n")
    assert report.colab_url("notebooks/01_data.ipynb", config) == (
        "https://colab.research.google.com/github/someone/thing/blob/dev/docs/notebooks/01_data.ipynb")
    html = report.colab_badge("notebooks/01_data.ipynb", config).data
    assert "data:image/svg+xml;base64," in html and "someone/thing/blob/dev" in html
    assert report.repository()["url"].startswith("https://github.com/")  # the repository's own _config.yml


@pytest.mark.parametrize("value", ["epoch 3 of 200", "50, 100, 200", "3", "results/ and fer_lib/weights/",
                                   np.float64(0.5), np.int64(3)])
def test_glue_pastes_values_as_they_are(value):
    """Through IPython's text formatter and myst-nb's own paste function, as in the book."""
    from IPython.core.formatters import PlainTextFormatter
    from myst_nb.core.variables import format_plain_text

    stored = PlainTextFormatter()(report.glue_value(value))
    assert format_plain_text(stored, "") == str(value)


def test_fmt_marks_missing_numbers_pending():
    assert report.fmt(float("nan")) == "pending" and report.fmt(63.25, ".1f", "%") == "63.2%"
