"""The command line on tiny data: what a user sees, including the errors."""

from __future__ import annotations

from pathlib import Path

from fer_lib import cli, paper


def test_data_prints_table_one_beside_the_paper(tiny_csv, capsys):
    assert cli.main(["data", "--path", str(tiny_csv)]) == 0
    out = capsys.readouterr().out
    assert "release:  csv (original pixels)" in out
    for name in paper.CLASSES:
        assert name in out
    assert f"training {paper.TRAIN_RECORDS} (ours 15, {15 - paper.TRAIN_RECORDS:+d})" in out


def test_data_verify_and_skip(tmp_path, tiny_folder, capsys):
    (tiny_folder / "train" / "happy" / "notes.txt").write_text("x")
    assert cli.main(["data", "--path", str(tiny_folder), "--verify"]) == 2
    assert "not an image file" in capsys.readouterr().err
    assert cli.main(["data", "--path", str(tiny_folder), "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "1 skipped" in out and "notes.txt" in out and "histogram-equalized" in out


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["data", "--path", str(tmp_path / "nowhere")]) == 2
    assert "holds no FER-2013 release" in capsys.readouterr().err


def test_status_of_no_runs(tmp_path, capsys):
    assert cli.main(["status", str(tmp_path)]) == 0
    assert "no runs below" in capsys.readouterr().out


def test_status_of_the_committed_results(capsys):
    """Every committed run folder, and none of the other results that have manifests (the peer table's)."""
    root = Path(__file__).resolve().parents[1] / "results"
    assert cli.main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows[(root / "paper" / "model_b").as_posix()] == "200/200" and not any("peers" in run for run in rows)


def test_models_matches_paper(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "model A: 1,195,205 parameters" in out and "model B: 1,197,637" in out and "DIFFERENT" not in out
