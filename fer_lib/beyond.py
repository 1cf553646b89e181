"""Beyond the paper (chapter 9): Model C's runs and their ablations, where each stands and what each
ingredient adds, every model of the peer table on the releases and in chapter 8's simulated webcam, and the
shipped models side by side (the goals and how far each is met: :mod:`fer_lib.goals`).

Every planned run is one command (``PLAN``). A run folder may be missing (not started), hold a run in
progress or a complete one: everything here reads whatever there is, and a number that needs more reads
"pending".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fer_lib import augment, evaluate, models, paper, peers, peertable, plots, provenance, runs, study, train
from fer_lib.compare import PENDING
from fer_lib.fer2013 import RELEASE_FOLDER, Split
from fer_lib.live import livestudy, scenes
from fer_lib.paths import LIVE_MODEL, MODEL_B, RESULTS_DIR, shipped_models

PROFILE = "beyond"
BEYOND_DIR = Path(RESULTS_DIR) / PROFILE
#: What ``benchmarks/beyond_speed.py`` writes: ms per face on onnxruntime and the live pipeline's frames/s
SPEED = BEYOND_DIR / "speed.json"
SPEED_COMMAND = "python benchmarks/beyond_speed.py"
PEERS_CSV = Path(RESULTS_DIR) / "peers" / "peers.csv"
PEERS_COMMAND = "fer-lib peers"
NOT_STARTED = "not started"
#: The peer table's key of Model C's first seed alone (``peertable.model_c``)
MODEL_C_KEY = peertable.MODEL_C_KEY
#: The splits and releases of the goals, as the peer table names them
PUBLIC, ORIGINAL, EQUALIZED = "PublicTest", "csv", "folder"


# --- The planned runs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedRun:
    """One run of the chapter: what it changes against Model C with the recipe, its folder (from the
    repository root), the command that trains or resumes it, and its epochs."""

    key: str
    label: str
    changes: str
    folder: str
    command: str
    epochs: int


def _beyond_run(key: str, label: str, changes: str, model: str, seed: int, name: str,
                augmented: bool = True, release: str | None = None) -> PlannedRun:
    folder = f"{BEYOND_DIR.as_posix()}/{name}/seed{seed}"
    command = (f"fer-lib train --model {model} --profile {PROFILE} --seed {seed} --out {folder}"
               + ("" if augmented else " --no-augment") + (f" --release {release}" if release else ""))
    epochs = train.profile(PROFILE, model, seed=seed, augment=augmented).epochs
    return PlannedRun(key, label, changes, folder, command, epochs)


def _study_run(key: str, label: str, changes: str, cell: str, seed: int) -> PlannedRun:
    planned = study.PlannedRun.of(cell, seed)
    return PlannedRun(key, label, changes, planned.out.as_posix(), planned.command(), planned.config().epochs)


REFERENCE = "model_c"
PLAN: tuple[PlannedRun, ...] = (
    _beyond_run(REFERENCE, "Model C, the recipe, seed 0", "nothing: the reference", "c", 0, "model_c"),
    _beyond_run("model_c_noaug", "Model C without augmentation, seed 0", "no augmentation", "c", 0, "model_c_noaug",
                augmented=False),
    _beyond_run("model_b_recipe", "Model B, the recipe, seed 0", "Model B's network", "b", 0, "model_b_recipe"),
    _study_run("model_b_paper", "Model B, the paper's protocol, seed 0 (the study's cell both)",
               "Model B's network and the paper's protocol: no augmentation nor label smoothing, a constant "
               "learning rate, bfloat16", "both", 0),
    _beyond_run("model_c_folder", "Model C on the equalized release, seed 0", "the image-folder release: every "
                "face histogram-equalized, in training and, by its contract, in use", "c", 0, "model_c_folder",
                release=RELEASE_FOLDER),
    *(_beyond_run(f"model_c_seed{seed}", f"Model C, the recipe, seed {seed}", "the seed (a member of the ensemble)",
                  "c", seed, "model_c") for seed in (1, 2)),
)
#: What each ingredient adds: (ingredient, the run with it, the run without it)
INGREDIENTS: tuple[tuple[str, str, str], ...] = (
    ("augmentation (Model C)", REFERENCE, "model_c_noaug"),
    ("Model C's network instead of Model B's (both with the recipe)", REFERENCE, "model_b_recipe"),
    ("the recipe instead of the paper's protocol (Model B; float32 instead of bfloat16 too)", "model_b_recipe",
     "model_b_paper"),
)


def planned(key: str) -> PlannedRun:
    for run in PLAN:
        if run.key == key:
            return run
    raise ValueError(f"unknown run {key!r}: expected one of {[r.key for r in PLAN]}")


@dataclass(frozen=True)
class RunProgress:
    """A planned run as its folder stands: the epochs it has finished (none where it has not started or
    is in its first epoch), its manifest once it has one, and its best-epoch predictions once complete."""

    plan: PlannedRun
    path: Path
    history: pd.DataFrame
    manifest: dict | None

    @property
    def started(self) -> bool:
        return self.path.is_dir()

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def complete(self) -> bool:
        return self.epochs_done >= self.plan.epochs

    def status(self) -> str:
        """"not started", "epoch 4 of 50 (in progress)" or "all 50 epochs", as ``runs.Run.status`` says it."""
        if not self.started:
            return NOT_STARTED
        if self.complete:
            return f"all {self.plan.epochs} epochs"
        return f"epoch {self.epochs_done} of {self.plan.epochs} (in progress)"

    def best(self) -> tuple[float, int | None]:
        """The best PrivateTest (validation) accuracy so far, in %, and its epoch; NaN and None before any."""
        if not self.epochs_done:
            return math.nan, None
        row = runs.best_row(self.history)
        return 100 * float(row["val_accuracy"]), int(row["epoch"])

    def test_at_best(self) -> float:
        """PublicTest accuracy (%) of the best epoch's weights: NaN until the run is complete."""
        if not self.complete or not (self.path / train.PREDICTIONS).is_file():
            return math.nan
        rows = runs.read_predictions(self.path).query("split == 'test'")
        return 100 * float((rows["best"] == rows["label"]).mean())

    def gap(self) -> float:
        """Training minus PrivateTest accuracy, in points to one decimal, the mean over the last
        ``evaluate.GAP_EPOCHS`` epochs (the book's gap, as in chapter 6): NaN until the run is complete."""
        if not self.complete:
            return math.nan
        return round(evaluate.train_val_gap(self.history), 1) + 0.0  # + 0.0: a gap of -0.02 reads 0.0, not -0.0

    def describe(self) -> str:
        """Its status and best PrivateTest accuracy, in words true in every state of the run."""
        best, epoch = self.best()
        if epoch is None:
            return f"{self.status()}, no epoch finished"
        return f"{self.status()}, best PrivateTest accuracy {best:.1f}% (epoch {epoch})"


def machines(manifest: dict | None, until_epoch: int | None = None) -> str:
    """The machines a run's sessions ran on (those that trained its first ``until_epoch`` epochs, where given),
    or "pending" before it has a manifest."""
    if not manifest:
        return PENDING
    segments = [s for s in manifest["segments"] if until_epoch is None or s["first_epoch"] <= until_epoch]
    return "; ".join(sorted({provenance.machine_text(s) for s in segments}))


#: Accuracy (%) on its own training images as stored below which a network does not fit them well
FITS_TRAINING_ABOVE = 90.0


def stored_fit(contenders: Sequence[peertable.Contender], train_split: Split, val_split: Split) -> pd.DataFrame:
    """Each contender's accuracy (%) on the training images as stored and on PrivateTest, and the gap between
    them: unlike the logged training accuracy (Table 9.4's gap), with no augmentation and dropout off."""
    rows = {c.key: {"training": 100 * peertable.score(c, train_split)["accuracy"],
                    "PrivateTest": 100 * peertable.score(c, val_split)["accuracy"]} for c in contenders}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["training", "PrivateTest"])
    return table.assign(gap=table["training"] - table["PrivateTest"])


def fit_reading(training_accuracy: float) -> str:
    """What Model C's accuracy on its own training images as stored says could lift it, in words true for its
    value ("pending" for NaN)."""
    if math.isnan(training_accuracy):
        return PENDING
    if training_accuracy < FITS_TRAINING_ABOVE:
        return ("Model C does not fit even the images it learns from well, so what could lift it is more capacity "
                "or more epochs rather than more regularization")
    return "Model C fits the images it learns from, so what could lift it is more regularization or more data"


def step_reading(ratio: float) -> str:
    """How Model C's training step compares with Model B's, as a predicate true in every state of its run."""
    if math.isnan(ratio):
        return "has not been timed yet (its run has no finished epoch)"
    return f"took {ratio:.1f} times Model B's"


def read_progress(run: PlannedRun, root: str | os.PathLike = ".") -> RunProgress:
    """A planned run's folder under the repository ``root``, whatever state it is in."""
    path = Path(root) / run.folder
    history = (runs.read_history(path) if (path / "history.csv").is_file()
               else pd.DataFrame(columns=list(train.HISTORY_COLUMNS)))
    manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else None
    return RunProgress(run, path, history, manifest)


def read_plan(root: str | os.PathLike = ".") -> dict[str, RunProgress]:
    return {run.key: read_progress(run, root) for run in PLAN}


GAP_COLUMN = f"train minus PrivateTest, last {evaluate.GAP_EPOCHS} epochs (points)"


def ablation_table(progress: Mapping[str, RunProgress]) -> pd.DataFrame:
    """Every planned run: what it changes, its status, its best PrivateTest accuracy so far and its epoch, and
    PublicTest at that epoch and its gap once complete (%, points), with the command that trains or resumes it."""
    rows = []
    for p in progress.values():
        best, epoch = p.best()
        rows.append({"run": p.plan.label, "changes": p.plan.changes, "status": p.status(),
                     "best PrivateTest (%)": best, "its epoch": epoch, "PublicTest, that epoch (%)": p.test_at_best(),
                     GAP_COLUMN: p.gap(), "command": p.plan.command})
    return pd.DataFrame(rows).set_index("run").astype({"its epoch": "Int64"})


def ingredients_table(progress: Mapping[str, RunProgress]) -> pd.DataFrame:
    """What each ingredient adds, in points: the run with it minus the run without it, on the best PrivateTest
    accuracy and on PublicTest at the best epoch, once both runs are complete (one seed each)."""
    rows = []
    for name, with_it, without in INGREDIENTS:
        a, b = progress[with_it], progress[without]
        done = a.complete and b.complete
        rows.append({"ingredient": name, "runs compared": f"{a.plan.label} minus {b.plan.label}",
                     "best PrivateTest (points)": a.best()[0] - b.best()[0] if done else math.nan,
                     "PublicTest (points)": a.test_at_best() - b.test_at_best() if done else math.nan})
    return pd.DataFrame(rows).set_index("ingredient")


# --- The peer table ------------------------------------------------------------------------------
def read_peer_rows(root: str | os.PathLike = ".") -> pd.DataFrame:
    return pd.read_csv(Path(root) / PEERS_CSV)


def peer_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``peertable.accuracy_table`` with what PublicTest was to each model's training."""
    roles = rows[rows["split"] == PUBLIC].groupby("title", sort=False)["split_role"].first()
    return peertable.accuracy_table(rows).join(roles.rename(f"{PUBLIC} was"))


def accuracy(rows: pd.DataFrame, model: str, release: str = ORIGINAL, split: str = PUBLIC) -> float:
    """One model's accuracy (%) on one release's split, NaN where the table has no such row."""
    found = rows[(rows["model"] == model) & (rows["release"] == release) & (rows["split"] == split)]
    return 100 * float(found["accuracy"].iloc[0]) if len(found) else math.nan


def best_peer(rows: pd.DataFrame, release: str = ORIGINAL, split: str = PUBLIC) -> tuple[str, str, float]:
    """The published peer with the best accuracy on a release's split: (key, title, accuracy %)."""
    found = rows[rows["model"].isin(list(peers.PEERS)) & (rows["release"] == release) & (rows["split"] == split)]
    if found.empty:
        raise ValueError(f"the peer table has no published peer on {release} {split}")
    top = found.loc[found["accuracy"].idxmax()]
    return top["model"], top["title"], 100 * float(top["accuracy"])


def equalized_run_reading(rows: pd.DataFrame) -> str:
    """What training on the equalized release did, against Model C trained on the original pixels, on PublicTest
    of both releases: a sentence true before its run is complete and after."""
    trained_equalized = peertable.MODEL_C_FOLDER_KEY
    if not {MODEL_C_KEY, trained_equalized} <= set(rows["model"]):
        return "Its run is not complete yet, so the peer table has no row of it (Table 9.4)"
    c_original, c_equalized = accuracy(rows, MODEL_C_KEY), accuracy(rows, MODEL_C_KEY, EQUALIZED)
    e_original, e_equalized = accuracy(rows, trained_equalized), accuracy(rows, trained_equalized, EQUALIZED)
    gain, loss = e_equalized - c_equalized, c_original - e_original
    text = (f"Complete, it names {e_equalized:.1f}% of PublicTest right as the equalized release stores it and "
            f"{e_original:.1f}% with the original pixels, which its contract equalizes: it changes by "
            f"{e_equalized - e_original:+.1f} points between the releases where Model C changes by "
            f"{c_equalized - c_original:+.1f}")
    if loss > gain:
        return (text + f", but it narrows that gap more by what it loses on the original pixels ({-loss:+.1f} points "
                f"against Model C) than by what it gains on the equalized release ({gain:+.1f}): equalizing every "
                "face costs this network more than training on equalized faces gives back (one seed each)")
    return text + f", and it gains {gain:+.1f} points on the equalized release for {-loss:+.1f} on the original pixels"


def cross_release(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and split: accuracy (%) on the original pixels and on the equalized release, and the change."""
    wide = 100 * rows.pivot_table(index="title", columns=["split", "release"], values="accuracy", sort=False)
    out = {}
    for split in rows["split"].unique():
        out[(split, "original (%)")] = wide[(split, ORIGINAL)]
        out[(split, "equalized (%)")] = wide[(split, EQUALIZED)]
        out[(split, "change (points)")] = wide[(split, EQUALIZED)] - wide[(split, ORIGINAL)]
    return pd.DataFrame(out).rename_axis("model")


# --- What Model C costs ----------------------------------------------------------------------------
def multiply_adds(model) -> int:
    """Multiply-adds of one face through a model's convolutions and dense layers: what its time per face
    grows with."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            height, width, filters = layer.output.shape[1:]
            total += height * width * math.prod(layer.kernel_size) * layer.input.shape[-1] * filters
        elif kind == "Dense":
            total += layer.input.shape[-1] * layer.units
    return int(total)


def cost_table(networks: Mapping[str, object], histories: Mapping[str, pd.DataFrame],
               where: Mapping[str, str]) -> pd.DataFrame:
    """Per model: parameters, millions of multiply-adds per face, and the median milliseconds of a training step
    over the epochs its run has had (the validation pass and, with the recipe, the augmentation included)."""
    return pd.DataFrame({name: {
        "parameters": models.count_params(network)["total"],
        "multiply-adds per face (millions)": multiply_adds(network) / 1e6,
        "ms per training step": histories[name]["ms_per_step"].median() if len(histories[name]) else math.nan,
        "epochs timed": len(histories[name]), "machine": where[name]} for name, network in networks.items()}).T


# --- The contenders in the simulated webcam and on PublicTest -------------------------------------------
def contenders(model_c_runs: str | os.PathLike, model_c_folder_runs: str | os.PathLike
               ) -> tuple[list[peertable.Contender], dict[str, str]]:
    """The published peers whose packages are installed, the shipped Model B and Model C's rows once it has
    complete runs under ``model_c_runs`` (and on the equalized release, under ``model_c_folder_runs``); and for
    each peer left out, why."""
    found, missing = [], {}
    for key in peers.PEERS:
        try:
            found.append(peertable.peer_contender(key))
        except ValueError as err:  # PeerNotInstalledError, or another version's weights
            missing[peers.PEERS[key].title] = str(err)
    return found + peertable.our_contenders(model_c_runs, model_c_folder_runs), missing


def webcam_table(table: pd.DataFrame, crops: np.ndarray, faces: livestudy.StudyFaces,
                 labellers: Sequence[peertable.Contender], detector: str = "haar",
                 lights: Sequence[str] = scenes.PAPER_LIGHTING) -> pd.DataFrame:
    """Chapter 8's live test for every model (``livestudy.paper_numbers``): each labels the crops that the
    pipeline found in the same scenes (a face not found is wrong for all), giving end-to-end accuracy (%) per
    light and over the lights, beside its accuracy on the same faces as the data set stores them."""
    mine = (table["detector"] == detector).to_numpy()
    rows, found_crops = table[mine], crops[mine]
    found = rows["detected"].to_numpy()
    out = {}
    for model in labellers:
        predicted = np.full(len(rows), -1)
        if found.any():
            predicted[found] = peertable.predict_all(model, found_crops[found]).argmax(axis=1)
        relabelled = rows.assign(predicted=predicted, correct=found & (predicted == rows["label"].to_numpy()))
        per_light = {f"{light} (%)": livestudy.paper_numbers(relabelled, detector, (light,))[paper.LIVE_AVERAGE]
                     for light in lights}
        out[model.title] = {**per_light,
                            f"{paper.LIVE_AVERAGE} (%)": livestudy.paper_numbers(relabelled, detector,
                                                                                 lights)[paper.LIVE_AVERAGE],
                            "the faces as stored (%)": 100 * float(
                                (peertable.predict_all(model, faces.x).argmax(axis=1) == faces.y).mean())}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("model")


# --- The shipped models and the live default ---------------------------------------------------------
#: Each shipped model's rows in the peer table and the benchmark: Model C ships its first seed's best epoch
SHIPPED_AS = {MODEL_B: ("model-b", "Model B"), "model_c": (MODEL_C_KEY, "Model C")}


def shipped_table(rows: pd.DataFrame, webcam: pd.DataFrame, speed: dict | None,
                  live: str = LIVE_MODEL) -> pd.DataFrame:
    """Every shipped model on what a user of the live demo meets: PublicTest as each release stores it, the
    simulated webcam over the paper's lights (``webcam_table``), milliseconds per face and frames per second
    (``benchmarks/beyond_speed.py``), and which one the live pipeline uses unless told (``live``)."""
    out = {}
    for name in shipped_models():
        if name not in SHIPPED_AS:
            raise ValueError(f"{name}: a shipped model the chapter does not know; add it to beyond.SHIPPED_AS")
        key, timed = SHIPPED_AS[name]
        title = rows.loc[rows["model"] == key, "title"]
        out[name] = {
            f"{PUBLIC}, original pixels (%)": accuracy(rows, key),
            f"{PUBLIC}, equalized (%)": accuracy(rows, key, EQUALIZED),
            f"simulated webcam, {paper.LIVE_AVERAGE} (%)": (webcam.loc[title.iloc[0], f"{paper.LIVE_AVERAGE} (%)"]
                                                            if len(title) and title.iloc[0] in webcam.index
                                                            else math.nan),
            "ms per face": speed["ms_per_face"].get(timed, math.nan) if speed else math.nan,
            "frames/s": speed["fps"].get(timed, math.nan) if speed else math.nan,
            "live default": "yes" if name == live else "no",
        }
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("shipped model")


# --- Figures ---------------------------------------------------------------------------------------
@plots.styled
def figure_curves(model_c: pd.DataFrame, model_b: pd.DataFrame, planned: int, status: str):
    """Model C's training and validation accuracy and loss per epoch over its planned epochs (those not run yet
    shaded), beside Model B's paper run over the same epochs."""
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 3.8))
    lines = (("Model C", model_c, "#2ca02c"), ("Model B, paper run", model_b[model_b["epoch"] <= planned],
                                               plots.MODEL_COLORS["B"]))
    for ax, metric, scale in ((axes[0], "accuracy", 100), (axes[1], "loss", 1)):
        for name, history, color in lines:
            marker = "." if len(history) < 30 else None
            ax.plot(history["epoch"], scale * history[metric], color=color, marker=marker, label=f"{name}, training")
            ax.plot(history["epoch"], scale * history[f"val_{metric}"], color=color, linestyle="--", marker=marker,
                    label=f"{name}, validation")
        if len(model_c) < planned:
            ax.axvspan(len(model_c) + 0.5, planned + 0.5, color=plots.PENDING_COLOR, zorder=0)
        ax.set(xlim=(0.5, planned + 0.5), xlabel="epoch", ylabel=f"{metric}{' (%)' if scale == 100 else ''}")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Model C: {status}")
    return fig


@plots.styled
def figure_augmented(faces: np.ndarray, titles: Sequence[str], copies: int, seed: int):
    """Each face (rows) as stored, then ``copies`` augmented versions of it, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    versions = [faces, *(augment.augment(faces, augment.Augmentation(), rng) for _ in range(copies))]
    fig, axes = plt.subplots(len(faces), copies + 1, figsize=(1.45 * (copies + 1), 1.55 * len(faces)), squeeze=False)
    for r, title in enumerate(titles):
        for c, images in enumerate(versions):
            ax = axes[r, c]
            ax.imshow(images[r], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
            if r == 0:
                ax.set_title("stored" if c == 0 else f"augmented {c}", fontsize=9)
        axes[r, 0].set_ylabel(title, fontsize=9)
    return fig
