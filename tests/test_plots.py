"""The book's figures and tables: each draws, leaves no open pyplot figure, and shows what is pending."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fer_lib import evaluate, paper, plots


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left a figure open (Jupyter would draw it twice)"


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (60, 48, 48), dtype=np.uint8), np.repeat(np.arange(5), 12)


def history(epochs: int) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "loss": 1 / e, "accuracy": 0.3 + e / 400, "val_loss": 1.2 / e,
                         "val_accuracy": 0.28 + e / 500, "seconds": 10.0, "ms_per_step": 50.0})


def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_data_figures(images):
    x, y = images
    grid = plots.sample_grid(x, y, per_class=4)
    assert len(grid.axes) == 5 * 4 and png(grid).startswith(b"\x89PNG")
    counts = pd.DataFrame([[10, 30, 20, 20, 20, 100]], index=["train"], columns=[*paper.CLASSES, "total"])
    balance = plots.class_balance(counts)
    assert any("30%" in t for t in texts(balance))  # shares written on the bars
    stats = plots.pixel_statistics(x, y)
    assert len(stats.axes) == 6 and any("mean happy (n=12)" in t for t in texts(stats))


def test_sample_grid_with_a_class_missing(images):
    x, y = images
    fig = plots.sample_grid(x[y != 2], y[y != 2], per_class=3)
    assert png(fig)


def test_preprocessing_figures(images):
    x, _ = images
    row = plots.image_row([x[0], np.zeros((64, 64), np.uint8), np.zeros((10, 10, 3), np.uint8)],
                          ["a", "b", "c"], pixel_grid=True)
    assert [ax.get_xlabel() for ax in row.axes] == ["48 x 48 pixels", "64 x 64 pixels", "10 x 10 pixels"]
    frame = np.full((120, 160), 128, np.uint8)
    crop = plots.face_crop(frame, np.array([[10, 20, 48, 48]]), x[:1], reference=x[1])
    assert len(crop.axes) == 3 and len(crop.axes[0].patches) == 1


def test_architecture_diagram():
    table = pd.DataFrame([("conv2d_1", "Conv2D", (48, 48, 32), 320), ("flatten_1", "Flatten", (2304,), 0)],
                         columns=["layer", "type", "output shape", "parameters"])
    fig = plots.architecture_diagram({"Model A": table, "Model B": table})
    assert "48x48x32  320" in texts(fig)


def test_learning_curves_mark_pending_epochs_and_the_papers_points():
    fig = plots.learning_curves({"A": history(5), "B": history(200)}, "accuracy", {"A": 100, "B": 200},
                                marks={"A": [(1, 0.664, "paper, training"), (1, 0.617, "paper, validation")]})
    a, b = fig.axes
    assert "pending" in [t.get_text() for t in a.texts] and "pending" not in [t.get_text() for t in b.texts]
    assert a.get_xlim() == (0.5, 100.5)
    assert {"training", "validation", "paper, training", "paper, validation"} <= set(
        a.get_legend_handles_labels()[1])


def test_learning_curves_of_a_run_with_no_epochs_yet():
    fig = plots.learning_curves({"B": history(0)}, "loss", {"B": 200})
    assert "pending" in texts(fig)


def test_train_val_gap():
    gaps = {"A": pd.Series([1.0, 2.0], index=[1, 2]), "B": pd.Series([0.5], index=[1])}
    fig = plots.train_val_gap(gaps, planned=200, paper_gap={"A": 6.7, "B": 0.7})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "Model A, paper (6.7)" in labels and "pending" in texts(fig)


def test_evaluation_figures(images):
    x, y = images
    y_pred = np.roll(y, 3)
    confusion = evaluate.confusion_matrix(y, y_pred)
    fig = plots.confusion_matrices({"Model A": confusion, "Model B": confusion})
    assert len(fig.axes) == 3  # two matrices and the colour bar
    assert any(t.endswith(f"\n{confusion.iloc[0, 0]:,}") for t in texts(fig))
    scores = evaluate.per_class_scores(confusion)
    assert len(plots.per_class_scores({"Model A": scores, "Model B": scores}).axes) == 2
    result = {"probabilities": np.eye(5)[y_pred] * 0.9 + 0.02}
    split = type("S", (), {"y": y, "ids": np.arange(len(y)).astype(str)})()
    mistakes = evaluate.most_confident_mistakes(result, split, k=7)
    grid = plots.mistakes_grid(x, mistakes, columns=4)
    assert sum(ax.axison for ax in grid.axes) == 7
    assert png(plots.mistakes_grid(x, mistakes.iloc[:0]))
    mistakes["ferplus"] = "happy"
    assert "FER+ happy" in plots.mistakes_grid(x, mistakes).axes[0].get_title().split("\n")
    assert grid.axes[0].get_title().split("\n")[1].endswith(" 92.0%")


@pytest.mark.parametrize(("probability", "text"), [(0.9996, "99.9%"), (0.29, "29.0%"), (1.0, "100.0%"), (0.0, "0.0%")])
def test_percent_down_never_rounds_up(probability, text):
    assert plots.percent_down(probability) == text


def test_table_shows_pending_and_highlights_differences():
    frame = pd.DataFrame({"paper": [45.23, 63.3], "ours": [44.1, np.nan]}, index=[50, 200])
    html = plots.table(frame, "Table VI", highlight=frame.isna()).to_html()
    assert "Table VI" in html and "pending" in html and "44.1" in html
    assert html.count("background-color: #ffe0b2") == 1


def test_table_formats_some_columns_and_keeps_the_precision_of_the_others():
    frame = pd.DataFrame({"epochs": [45.0, 39.0], "accuracy": [63.772455, np.nan]})
    html = plots.table(frame, precision=2, formats={"epochs": "{:.0f}"}).to_html()
    assert ">45<" in html and ">63.77<" in html and "63.772" not in html and "pending" in html
    assert "not used" in plots.table(frame, missing="not used").to_html()


def test_claims_table_colours_verdicts():
    claims = pd.DataFrame({"claim": ["x", "y"], "verdict": ["reproduced", "pending"]})
    html = plots.claims_table(claims, "Claims").to_html()
    assert plots.VERDICT_COLORS["reproduced"] in html and plots.VERDICT_COLORS["pending"] in html
