"""What the book's pages need besides the science: glue, links, the Colab cell, the runs and provenance."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from made_up_runs import history, run

from fer_lib import book, runs


def test_read_runs_from_disk(tmp_path):
    for model, planned in (("A", 100), ("B", 200)):
        folder = tmp_path / runs.run_folder("paper", model).name
        folder.mkdir()
        history(3).to_csv(folder / "history.csv", index=False)
        (folder / "manifest.json").write_text(json.dumps(run(model, 3, planned).manifest))
    found = book.read_runs(tmp_path)
    assert found["B"].planned == 200 and found["A"].epochs_done == 3 and found["A"].name == "A"
    shutil.copy(tmp_path / "model_b" / "manifest.json", tmp_path / "model_a")
    with pytest.raises(ValueError, match="holds a run of Model B, not Model A"):
        book.read_runs(tmp_path)
    with pytest.raises(FileNotFoundError, match="manifest"):
        book.read_runs(tmp_path / "nowhere")


def test_provenance_names_command_commit_data_seed_hardware_and_wall_time():
    table = book.provenance_table(chapter_runs={"B": run("B", 12, 200)})["value"]
    assert table["command"] == book.BUILD_COMMAND
    assert table["Model B: seed"] == "0" and table["Model B: data sha256"] == "ab" * 32
    assert "Test CPU, 2 cores" in table["Model B: hardware"] and table["Model B: wall time"] == "2.0 h in 1 session"
    assert "0123456+dirty" in table["Model B: commits"]
    assert len(book.sessions({"A": run("A", 3, 100), "B": run("B", 3, 200)})) == 2


def test_links_derive_from_the_config(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/someone/thing/\n  branch: dev\n  path_to_book: docs\n")
    assert book.colab_url("notebooks/01_data.ipynb", config) == (
        "https://colab.research.google.com/github/someone/thing/blob/dev/docs/notebooks/01_data.ipynb")
    html = book.colab_badge("notebooks/01_data.ipynb", config).data
    assert "data:image/svg+xml;base64," in html and "someone/thing/blob/dev" in html
    assert book.repository()["url"].startswith("https://github.com/")  # the repository's own _config.yml
    assert '"https://github.com/someone/thing"' in book.colab_cell(config)


def test_write_colab_cells_replaces_only_the_first_code_cell(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": "# T"}, {"cell_type": "code", "source": "old"},
                    {"cell_type": "code", "source": "keep"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    book.write_colab_cells([path])
    cells = json.loads(path.read_text())["cells"]
    assert cells[1]["source"] == book.colab_cell() and cells[2]["source"] == "keep"
    compile(book.colab_cell(), "colab", "exec")  # it is Python


@pytest.mark.parametrize("value", ["epoch 3 of 200", "50, 100, 200", "3", "results/ and fer_lib/weights/",
                                   np.float64(0.5), np.int64(3)])
def test_glue_pastes_values_as_they_are(value):
    """Through IPython's text formatter and myst-nb's own paste function, as in the book."""
    from IPython.core.formatters import PlainTextFormatter
    from myst_nb.core.variables import format_plain_text

    stored = PlainTextFormatter()(book.glue_value(value))
    assert format_plain_text(stored, "") == str(value)


def test_fmt_marks_missing_numbers_pending():
    assert book.fmt(float("nan")) == "pending" and book.fmt(63.25, ".1f", "%") == "63.2%"
