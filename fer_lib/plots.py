"""Every figure and styled table of the book, so that the notebooks only choose what to show.

Each function returns a closed matplotlib ``Figure``: closed, so that Jupyter's
inline backend does not draw it a second time at the end of the cell, while
``display(fig)`` and myst-nb's ``glue`` still render it. One style (``STYLE``)
and one colour per model and per class keep the chapters consistent.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fer_lib import paper

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.constrained_layout.use": True,
}
MODEL_COLORS = {"A": "#1f77b4", "B": "#d62728"}
CLASS_COLORS = dict(zip(paper.CLASSES, ("#d62728", "#2ca02c", "#7f7f7f", "#1f77b4", "#ff7f0e"), strict=True))
PENDING_COLOR = "#eeeeee"
TABLE_STYLES = [
    {"selector": "", "props": "width: 100%;"},
    {"selector": "caption", "props": "caption-side: top; font-weight: bold; text-align: left; padding: 4px 0;"},
    {"selector": "td, th", "props": "padding: 2px 8px;"},
]


def styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the book's style and hand back a closed figure."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> Figure:
        with plt.rc_context(STYLE):
            fig = plot(*args, **kwargs)
        plt.close(fig)
        return fig

    return wrapper


def percent_down(probability: float, decimals: int = 1) -> str:
    """A probability as a percentage rounded down, so that "at least" stays true: 0.9996 is 99.9%, never 100%."""
    scale = 10**decimals
    return f"{math.floor(probability * 100 * scale + 1e-9) / scale:.{decimals}f}%"


def _grey(ax, image: np.ndarray, title: str | None = None) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)


# --- Chapter 1: the data ----------------------------------------------------------------
@styled
def sample_grid(images: np.ndarray, labels: np.ndarray, per_class: int = 8, seed: int = 0,
                classes: Sequence[str] = paper.CLASSES) -> Figure:
    """``per_class`` random images of every class, one row per class."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.95, len(classes) * 1.05),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for row, name in enumerate(classes):
        members = np.flatnonzero(labels == row)
        picks = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for col, ax in enumerate(axes[row]):
            if col < len(picks):
                _grey(ax, images[picks[col]])
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    return fig


@styled
def class_balance(counts: pd.DataFrame) -> Figure:
    """Share of each class per split, with the counts written on the bars.

    ``counts``: one row per split, one column per class (extra columns such as
    "total" are ignored).
    """
    classes = [c for c in counts.columns if c in CLASS_COLORS]
    shares = counts[classes].div(counts[classes].sum(axis=1), axis=0) * 100
    fig, ax = plt.subplots(figsize=(8, 0.7 + 0.7 * len(counts)))
    left = np.zeros(len(counts))
    for name in classes:
        ax.barh(range(len(counts)), shares[name], left=left, color=CLASS_COLORS[name], label=name, height=0.6)
        for i, (share, n) in enumerate(zip(shares[name], counts[name], strict=True)):
            if share > 6:
                ax.text(left[i] + share / 2, i, f"{n:,}\n{share:.0f}%", ha="center", va="center", fontsize=8,
                        color="white")
        left += shares[name].to_numpy()
    ax.set_yticks(range(len(counts)), counts.index)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the split (%)")
    ax.grid(False)
    ax.legend(ncols=len(classes), loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.1 / len(counts)),
              frameon=False)
    return fig


@styled
def pixel_statistics(images: np.ndarray, labels: np.ndarray, classes: Sequence[str] = paper.CLASSES) -> Figure:
    """The mean face of every class above the distribution of per-image brightness by class."""
    fig = plt.figure(figsize=(9, 5))
    grid = fig.add_gridspec(2, len(classes), height_ratios=(1, 1.3))
    brightness = images.reshape(len(images), -1).mean(axis=1)
    hist = fig.add_subplot(grid[1, :])
    bins = np.linspace(0, 255, 52)
    for i, name in enumerate(classes):
        members = labels == i
        ax = fig.add_subplot(grid[0, i])
        mean_face = images[members].mean(axis=0) if members.any() else np.zeros(images.shape[1:])
        _grey(ax, mean_face, f"mean {name} (n={members.sum():,})")
        hist.hist(brightness[members], bins=bins, histtype="step", density=True, color=CLASS_COLORS[name],
                  label=name, linewidth=1.5)
    hist.set_xlabel("mean grey value of an image (0-255)")
    hist.set_ylabel("density")
    hist.set_xlim(0, 255)
    hist.legend(ncols=len(classes))
    return fig


# --- Chapter 2: pre-processing -------------------------------------------------------------
@styled
def image_row(images: Sequence[np.ndarray], titles: Sequence[str], pixel_grid: bool = False) -> Figure:
    """Images side by side at the same displayed size, so that resolution differences show."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.4 * len(images), 2.8), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles, strict=True):
        shown = image if image.ndim == 2 else image[..., ::-1]  # BGR to RGB
        if image.ndim == 2:
            _grey(ax, shown, title)
        else:
            ax.imshow(shown)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(title, fontsize=9)
        if pixel_grid:
            ax.set_xlabel(f"{image.shape[1]} x {image.shape[0]} pixels", fontsize=9)
    return fig


@styled
def face_crop(frame: np.ndarray, boxes: np.ndarray, crops: np.ndarray, reference: np.ndarray | None = None) -> Figure:
    """A frame with the detector's red boxes, the 48x48 crops the model receives and, where
    known, the image the frame was made from."""
    n_right = len(crops) + (reference is not None)
    fig = plt.figure(figsize=(4 + 2 * max(n_right, 1), 3.2))
    grid = fig.add_gridspec(1, 1 + max(n_right, 1), width_ratios=[2.5] + [1] * max(n_right, 1))
    ax = fig.add_subplot(grid[0, 0])
    _grey(ax, frame, f"frame {frame.shape[1]}x{frame.shape[0]}, {len(boxes)} face(s)")
    for x, y, w, h in boxes:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="red", linewidth=2))
    for i, crop in enumerate(crops):
        _grey(fig.add_subplot(grid[0, 1 + i]), crop, f"crop {i + 1}, 48x48")
    if reference is not None:
        _grey(fig.add_subplot(grid[0, n_right]), reference, "original 48x48")
    return fig


@styled
def architecture_diagram(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Models side by side as stacks of layers (from ``models.architecture_table``)."""
    colors = {"Conv2D": "#9ecae1", "BatchNormalization": "#fdae6b", "Activation": "#c7e9c0",
              "MaxPooling2D": "#dadaeb", "Dropout": "#fcbba1", "Dense": "#6baed6", "Flatten": "#e0e0e0",
              "Rescaling": "#f0f0f0"}
    height = max(len(t) for t in tables.values())
    fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), 0.32 * height + 0.8), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items(), strict=True):
        for i, row in enumerate(table.itertuples(index=False)):
            layer, kind, shape, params = row[:4]
            ax.add_patch(Rectangle((0, -i - 0.9), 1, 0.8, facecolor=colors.get(kind, "#ffffff"), edgecolor="#555"))
            shape_text = "x".join(map(str, shape))
            ax.text(0.03, -i - 0.5, f"{layer}", va="center", fontsize=8)
            ax.text(0.97, -i - 0.5, f"{shape_text}  {params:,}" if params else shape_text, va="center",
                    ha="right", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(-height - 0.2, 0.1)
        ax.axis("off")
        ax.set_title(name)
    return fig


# --- Chapter 4: training ---------------------------------------------------------------------
def _pending_region(ax, done: int, planned: int) -> None:
    if done < planned:
        ax.axvspan(max(done, 0) + 0.5, planned + 0.5, color=PENDING_COLOR, zorder=0)
        ax.text((max(done, 0) + planned) / 2 + 0.5, 0.5, "pending", transform=ax.get_xaxis_transform(),
                ha="center", va="center", color="#888", fontsize=10, rotation=90 if planned - done < 10 else 0)


@styled
def learning_curves(histories: Mapping[str, pd.DataFrame], metric: str, planned: Mapping[str, int],
                    marks: Mapping[str, Sequence[tuple[int, float, str]]] | None = None,
                    sharey: bool = True) -> Figure:
    """Training and validation ``metric`` per epoch, one panel per model, over the whole
    planned run: epochs not run yet are shaded "pending". ``marks``: the paper's
    values to compare, (epoch, value, label), with accuracies in fractions like the history."""
    fig, axes = plt.subplots(1, len(histories), figsize=(5.2 * len(histories), 3.6), squeeze=False, sharey=sharey)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        color = MODEL_COLORS.get(name, "k")
        ax.plot(history["epoch"], history[metric], color=color, label="training", marker="." if len(history) < 30
                else None)
        ax.plot(history["epoch"], history[f"val_{metric}"], color=color, linestyle="--", label="validation",
                marker="." if len(history) < 30 else None)
        for epoch, value, label in (marks or {}).get(name, ()):
            filled = "valid" in label
            ax.plot([epoch], [value], marker="o", markersize=7, linestyle="none", color="k",
                    markerfacecolor="k" if filled else "white", label=label)
        _pending_region(ax, int(history["epoch"].max()) if len(history) else 0, planned[name])
        ax.set_xlim(0.5, planned[name] + 0.5)
        ax.set_title(f"Model {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="best")
    return fig


@styled
def train_val_gap(gaps: Mapping[str, pd.Series], planned: int, paper_gap: Mapping[str, float] | None = None) -> Figure:
    """Training minus validation accuracy per epoch, in points, for each model; the paper's
    values as dotted lines."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for name, gap in gaps.items():
        ax.plot(gap.index, gap.to_numpy(), color=MODEL_COLORS.get(name, "k"), label=f"Model {name}",
                marker="." if len(gap) < 30 else None)
        if paper_gap and name in paper_gap:
            ax.axhline(paper_gap[name], color=MODEL_COLORS.get(name, "k"), linestyle=":",
                       label=f"Model {name}, paper ({paper_gap[name]:g})")
    ax.axhline(0, color="k", linewidth=0.8)
    _pending_region(ax, max((int(g.index.max()) for g in gaps.values() if len(g)), default=0), planned)
    ax.set_xlim(0.5, planned + 0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training minus validation accuracy (points)")
    ax.legend(loc="best")
    return fig


# --- Chapter 5: evaluation ----------------------------------------------------------------------
@styled
def confusion_matrices(confusions: Mapping[str, pd.DataFrame]) -> Figure:
    """Row-normalised confusion matrices (recall on the diagonal) with the counts, side by side."""
    fig, axes = plt.subplots(1, len(confusions), figsize=(4.6 * len(confusions), 4.2), squeeze=False)
    image = None
    for ax, (name, counts) in zip(axes[0], confusions.items(), strict=True):
        values = counts.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.nan_to_num(values / values.sum(axis=1, keepdims=True)) * 100
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
        for (i, j), n in np.ndenumerate(values):
            ax.text(j, i, f"{share[i, j]:.0f}%\n{n:,}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 60 else "black")
        ax.set_xticks(range(len(counts.columns)), counts.columns, rotation=30)
        ax.set_yticks(range(len(counts.index)), counts.index)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        ax.grid(False)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of the true class (%)")
    return fig


@styled
def per_class_scores(scores: Mapping[str, pd.DataFrame], metrics: Sequence[str] = ("precision", "recall")) -> Figure:
    """Per-class scores (from ``evaluate.per_class_scores``), one panel per metric, a bar per model."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False, sharey=True)
    width = 0.8 / len(scores)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, (name, table) in enumerate(scores.items()):
            x = np.arange(len(table)) + (k - (len(scores) - 1) / 2) * width
            ax.bar(x, table[metric] * 100, width, color=MODEL_COLORS.get(name.split()[-1]), label=name)
        ax.set_xticks(range(len(table)), table.index)
        ax.set_ylim(0, 100)
        ax.set_title(metric)
        ax.set_ylabel("%")
        ax.legend()
    return fig


@styled
def procedure(steps: Sequence[tuple[str, str]]) -> Figure:
    """The study's procedure (the paper's Fig. 1, redrawn) as boxes in a row, each with where
    the book takes it up underneath: ``steps`` is (what the paper does, where we do it)."""
    fig, ax = plt.subplots(figsize=(2.1 * len(steps), 2.2))
    ax.set(xlim=(0, len(steps)), ylim=(0, 2.2))
    ax.axis("off")
    for i, (step, where) in enumerate(steps):
        ax.add_patch(Rectangle((i + 0.06, 1.05), 0.88, 0.9, facecolor="#e3f2fd", edgecolor="#1565c0"))
        ax.text(i + 0.5, 1.5, step, ha="center", va="center", fontsize=9, wrap=True)
        ax.text(i + 0.5, 0.6, where, ha="center", va="center", fontsize=8, color="#555555")
        if i:
            ax.annotate("", xy=(i + 0.06, 1.5), xytext=(i - 0.06, 1.5), arrowprops={"arrowstyle": "->"})
    return fig


@styled
def mistakes_grid(images: np.ndarray, mistakes: pd.DataFrame, columns: int = 6) -> Figure:
    """The model's most confident mistakes (from ``evaluate.most_confident_mistakes``), with
    FER+'s label under each where the frame has one."""
    rows = max(1, -(-len(mistakes) // columns))
    height = 2.3 if "ferplus" in mistakes else 1.95
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, height * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), mistakes.itertuples(index=False), strict=False):
        title = f"true {row.true}\nsaid {row.predicted} {percent_down(row.confidence)}"
        if "ferplus" in mistakes:
            title += f"\nFER+ {row.ferplus}"
        _grey(ax, images[row.index], title)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


# --- Chapter 6: the multi-seed study ----------------------------------------------------------
CELL_COLORS = {"none": MODEL_COLORS["A"], "bn": "#9467bd", "dropout": "#2ca02c", "both": MODEL_COLORS["B"],
               "both_d05": "#ff7f0e", "both_half": "#8c564b"}


@styled
def mean_curves(panels: Mapping[str, Mapping[str, pd.DataFrame]], labels: Mapping[str, str], epochs: int,
                ylabel: str = "accuracy (%)", marks: Sequence[tuple[int, float, str]] = ()) -> Figure:
    """One panel per entry of ``panels``, each a set of curves (per epoch: ``mean``, ``sd``, ``n``):
    the mean as a line, plus or minus one standard deviation over seeds as a band where there
    are two or more. ``marks``: the paper's values, (epoch, percent, label)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for name, curve in curves.items():
            color = CELL_COLORS.get(name)
            n = int(curve["n"].max()) if len(curve) else 0
            ax.plot(curve.index, curve["mean"], color=color, label=f"{labels.get(name, name)} (n={n})")
            band = curve[curve["n"] >= 2]
            ax.fill_between(band.index, band["mean"] - band["sd"], band["mean"] + band["sd"], color=color, alpha=0.2,
                            linewidth=0)
        for epoch, value, label in marks:
            ax.plot([epoch], [value], marker="o", markersize=7, linestyle="none", color="k", label=label)
        ax.set_xlim(0.5, epochs + 0.5)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    return fig


@styled
def effects(frame: pd.DataFrame, xlabel: str) -> Figure:
    """Effect estimates with their intervals (columns ``estimate``, ``low``, ``high``), one row each."""
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(frame) + 1.2))
    y = np.arange(len(frame))[::-1]
    ax.errorbar(frame["estimate"], y, xerr=[frame["estimate"] - frame["low"], frame["high"] - frame["estimate"]],
                fmt="o", color="k", capsize=4)
    ax.axvline(0, color="#888", linewidth=0.8)
    ax.set_yticks(y, frame.index)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    return fig


# --- Tables -----------------------------------------------------------------------------------------
def table(frame: pd.DataFrame, caption: str | None = None, precision: int = 1,
          highlight: pd.DataFrame | None = None, formats: Mapping[str, str] | None = None,
          missing: str = "pending"):
    """A pandas Styler for the book: missing values read ``missing`` (most are epochs not run yet),
    integers get thousands separators, and cells where ``highlight`` is True are shaded
    (differences from the paper)."""
    styler = frame.style.format(precision=precision, thousands=",", na_rep=missing)
    if formats:
        styler = styler.format(formats, subset=list(formats), na_rep=missing)  # the other columns keep precision
    if caption:
        styler = styler.set_caption(caption)
    if highlight is not None:
        mask = highlight.reindex(index=frame.index, columns=frame.columns).fillna(False).astype(bool)
        styler = styler.apply(lambda _: np.where(mask, "background-color: #ffe0b2; font-weight: bold", ""),
                              axis=None)
    return styler.set_table_styles(TABLE_STYLES)


VERDICT_COLORS = {"reproduced": "#c8e6c9", "partly": "#fff9c4", "not reproduced": "#ffcdd2",
                  "pending": "#eeeeee", "not testable": "#e1f5fe", "not testable by simulation alone": "#e1f5fe",
                  "by construction": "#e0e0e0"}


def claims_table(claims: pd.DataFrame, caption: str | None = None):
    """The claims table (from ``compare.claims``), its verdicts coloured."""
    styler = claims.style.hide(axis="index")
    if caption:
        styler = styler.set_caption(caption)
    styler = styler.map(lambda v: f"background-color: {VERDICT_COLORS.get(v, '')}" if v in VERDICT_COLORS else "",
                        subset=["verdict"])
    left = {"selector": "td", "props": "text-align: left; vertical-align: top;"}
    return styler.set_table_styles([*TABLE_STYLES, left])
