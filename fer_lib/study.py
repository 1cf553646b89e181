"""The multi-seed study: what batch normalization and dropout each do.

The paper compares Model A with Model B, which differ in two things at once.
The study crosses the two switches (and tests readings of the paper's text)
over several seeds, every run the same protocol: Adam 1e-3, batch 128, the
five-class Training split, validated on PrivateTest, scored on PublicTest.

Each run is one independent command (``fer-lib study run INDEX``), so any
scheduler runs the plan as it is: a shell loop, ``xargs -P``, a SLURM array
(``--array=0-N`` with ``$SLURM_ARRAY_TASK_ID``) or a GPU box with
``KERAS_BACKEND=jax``. A run's folder is its only state; rerunning a finished
run does nothing, and a killed one resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib import compare, paper, provenance, runs, stats, train

STUDY_DIR = Path(runs.RESULTS_DIR) / "study"
SEEDS = (0, 1, 2)  # the seeds the book's study reports
PROFILE = "study"


@dataclass(frozen=True)
class Cell:
    """One arm of the study: a model and the settings it overrides."""

    name: str
    model: str
    label: str
    batch_norm: bool | None = None
    conv_dropout: float | None = None
    dense_dropout: float | None = None
    train_fraction: float = 1.0

    def config(self, seed: int, **overrides) -> train.TrainConfig:
        return train.profile(PROFILE, self.model, seed=seed, batch_norm=self.batch_norm,
                             conv_dropout=self.conv_dropout, dense_dropout=self.dense_dropout,
                             train_fraction=self.train_fraction, **overrides)


#: The 2x2 design (batch normalization x dropout), then the paper's readings put to the test.
CELLS: tuple[Cell, ...] = (
    Cell("none", "a", "neither (Model A)"),
    Cell("bn", "b", "batch normalization only", conv_dropout=0.0, dense_dropout=0.0),
    Cell("dropout", "a", "dropout only (0.25 / 0.5)", conv_dropout=0.25, dense_dropout=0.5),
    Cell("both", "b", "both (Model B)"),
    Cell("both_d05", "b", "both, dropout 0.5 everywhere", conv_dropout=0.5, dense_dropout=0.5),
    Cell("both_half", "b", "both, half the training data", train_fraction=0.5),
)
FACTORIAL = ("none", "bn", "dropout", "both")


def cell(name: str) -> Cell:
    for c in CELLS:
        if c.name == name:
            return c
    raise ValueError(f"unknown cell {name!r}: expected one of {[c.name for c in CELLS]}")


@dataclass(frozen=True)
class PlannedRun:
    """Run number ``index`` of the study: seed ``index // len(CELLS)`` of cell ``index % len(CELLS)``.

    The numbering is seed-major, so runs 0-5 are every cell's first seed, 6-11 the second, and
    so on without end: a scheduler that wants more seeds just runs higher numbers."""

    index: int

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"run index must be 0 or more, got {self.index}")

    @classmethod
    def of(cls, cell_name: str, seed: int) -> PlannedRun:
        return cls(seed * len(CELLS) + CELLS.index(cell(cell_name)))

    @property
    def cell(self) -> Cell:
        return CELLS[self.index % len(CELLS)]

    @property
    def seed(self) -> int:
        return self.index // len(CELLS)

    @property
    def out(self) -> Path:
        return STUDY_DIR / self.cell.name / f"seed{self.seed}"

    def config(self) -> train.TrainConfig:
        return self.cell.config(self.seed)

    def command(self) -> str:
        return f"fer-lib study run {self.index}"


def plan(n_seeds: int = len(SEEDS)) -> list[PlannedRun]:
    """Every run of the study with ``n_seeds`` seeds per cell, in index order."""
    return [PlannedRun(i) for i in range(n_seeds * len(CELLS))]


def run(planned: PlannedRun, data=None, *, root: str | os.PathLike = ".", progress: bool = True,
        stop_after: int | None = None) -> list[dict]:
    """Train (or resume, or leave alone if finished) one run of the study."""
    return train.fit(planned.config(), Path(root) / planned.out, data, progress=progress, stop_after=stop_after)


def design():
    """The cells as a table: what each switches on, and the share of the training data."""
    import pandas as pd

    rows = [{"cell": c.name, "label": c.label, **c.config(0).architecture(), "train_fraction": c.train_fraction}
            for c in CELLS]
    return pd.DataFrame(rows).set_index("cell")


# --- Reading the study's runs --------------------------------------------------------------
#: A measured value "matches" a paper's value within this many percentage points: the claims
#: table's threshold for "reproduced", so that one number decides both.
WITHIN = compare.REPRODUCED_WITHIN
#: Cell pairs compared image by image on PublicTest: each switch alone, both, and the paper's readings.
PAIRS: tuple[tuple[str, str], ...] = (
    ("none", "both"), ("none", "bn"), ("none", "dropout"), ("bn", "both"), ("dropout", "both"),
    ("both", "both_d05"), ("both", "both_half"),
)
#: The 2x2 design's contrasts: main effects average over the other switch's two levels.
CONTRASTS: dict[str, dict[str, float]] = {
    "batch normalization": {"bn": 0.5, "both": 0.5, "none": -0.5, "dropout": -0.5},
    "dropout": {"dropout": 0.5, "both": 0.5, "none": -0.5, "bn": -0.5},
    "interaction": {"both": 1.0, "none": 1.0, "bn": -1.0, "dropout": -1.0},
}


def load_study(root: str | os.PathLike = ".") -> dict[tuple[str, int], runs.Run]:
    """Every run of the study that has started, keyed by (cell, seed), in plan order."""
    found = {}
    for folder in sorted((Path(root) / STUDY_DIR).glob("*/seed*/manifest.json")):
        cell_name, seed = folder.parent.parent.name, int(folder.parent.name.removeprefix("seed"))
        found[(cell_name, seed)] = runs.load_run(folder.parent)
    return dict(sorted(found.items(), key=lambda kv: PlannedRun.of(*kv[0]).index))


def provenance_facts(study: dict[tuple[str, int], runs.Run]) -> dict:
    """What the chapter's provenance note states: commits, data checksums, machines, software, wall time."""
    segments = [seg for run in study.values() for seg in run.manifest.get("segments", [])]
    return {
        "commits": provenance.segment_commits(segments),
        "data_sha256": sorted({run.manifest["data"]["sha256"][:12] for run in study.values()}),
        "machines": sorted({provenance.machine_text(seg) for seg in segments}),
        "software": sorted({provenance.software_text(seg) for seg in segments}),
        "wall_hours": sum(run.wall_hours() for run in study.values()),
        "precisions": sorted({run.config.precision for run in study.values()}),
    }


def _accuracy(predictions, split: str, column: str) -> float:
    rows = predictions[predictions["split"] == split]
    return 100 * float((rows[column] == rows["label"]).mean())


def run_table(study: dict[tuple[str, int], runs.Run]):
    """One row per run, accuracies in percent: how far it is, its best and last epoch on
    PrivateTest (validation), its train-validation gap, and PublicTest at both epochs."""
    import pandas as pd

    rows = []
    for (cell_name, seed), run in study.items():
        h = run.history
        row = {"cell": cell_name, "seed": seed, "epochs": run.epochs_done, "planned": run.planned,
               "complete": run.complete}
        if len(h):
            best = h.loc[h["val_accuracy"].idxmax()]
            row.update(best_val=100 * best["val_accuracy"], best_epoch=int(best["epoch"]),
                       last_val=100 * h["val_accuracy"].iloc[-1], last_train=100 * h["accuracy"].iloc[-1],
                       gap=100 * (h["accuracy"].iloc[-1] - h["val_accuracy"].iloc[-1]))
        if run.complete:
            predictions = runs.read_predictions(run.path)
            row.update(test_best=_accuracy(predictions, "test", "best"),
                       test_last=_accuracy(predictions, "test", "last"))
        rows.append(row)
    columns = ["cell", "seed", "epochs", "planned", "complete", "best_val", "best_epoch", "last_val", "last_train",
               "gap", "test_best", "test_last"]
    return pd.DataFrame(rows, columns=columns)


SUMMARY_METRICS = ("best_val", "best_epoch", "last_val", "last_train", "gap", "test_best", "test_last")


def cell_table(table):
    """Per cell, over its complete runs: how many seeds, and the mean and standard deviation
    of each metric (percent; epochs for best_epoch)."""
    import pandas as pd

    done = table[table["complete"].astype(bool)]  # (an empty column would select columns, not rows)
    rows = []
    for c in CELLS:
        values = done[done["cell"] == c.name]
        row = {"cell": c.name, "label": c.label, "seeds": len(values)}
        for metric in SUMMARY_METRICS:
            row[f"{metric}_mean"] = values[metric].mean() if len(values) else float("nan")
            row[f"{metric}_sd"] = values[metric].std(ddof=1) if len(values) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("cell")


def effects(table, metric: str = "best_val", *, n_boot: int = 10_000, seed: int = 0):
    """Main effects of batch normalization and of dropout and their interaction on ``metric``,
    from the complete runs of the 2x2 cells, with percentile-bootstrap 95% intervals over seeds."""
    import pandas as pd

    done = table[table["complete"].astype(bool)]  # (an empty column would select columns, not rows)
    samples = {c: done.loc[done["cell"] == c, metric].to_numpy(dtype=float) for c in FACTORIAL}
    rows = []
    for name, weights in CONTRASTS.items():
        def contrast(means, weights=weights):
            return sum(w * means[c] for c, w in weights.items())

        have_all = all(len(v) for v in samples.values())
        estimate = contrast({c: v.mean() for c, v in samples.items()}) if have_all else float("nan")
        low, high = stats.bootstrap_interval(samples, contrast, n_boot=n_boot, seed=seed)
        rows.append({"effect": name, "estimate": estimate, "low": low, "high": high,
                     "seeds": min(len(v) for v in samples.values())})
    return pd.DataFrame(rows).set_index("effect")


def headline(table, *, n_boot: int = 10_000) -> dict[str, float | int]:
    """The study's answer in the numbers the introduction and discussion quote: runs complete of those
    planned; the effects of batch normalization and of dropout on the best validation accuracy, with
    their 95% intervals, and on the last epoch's train-validation gap; the range of Model B's cell's
    best validation accuracy over its complete seeds, and its mean gap. NaN where the runs are not there yet."""
    best, gap = effects(table, "best_val", n_boot=n_boot), effects(table, "gap", n_boot=n_boot)
    done = table[table["complete"].astype(bool)]
    model_b = done[done["cell"] == "both"]
    numbers: dict[str, float | int] = {"complete": len(done), "planned": len(plan()), "b_seeds": len(model_b),
                                       "b_best_min": float(model_b["best_val"].min()),
                                       "b_best_max": float(model_b["best_val"].max()),
                                       "b_gap_mean": float(model_b["gap"].mean())}
    for key, name in (("bn", "batch normalization"), ("dropout", "dropout")):
        numbers |= {f"{key}_best": best.loc[name, "estimate"], f"{key}_best_low": best.loc[name, "low"],
                    f"{key}_best_high": best.loc[name, "high"], f"{key}_gap": gap.loc[name, "estimate"]}
    return numbers


def paired_tests(study: dict[tuple[str, int], runs.Run], pairs=PAIRS, split: str = "test", at: str = "best"):
    """McNemar's test on ``split`` for each pair of cells, seed by seed (the runs of one seed
    share initial data order and so are paired; each run's model chosen at its ``at`` epoch)."""
    import pandas as pd

    predictions = {key: runs.read_predictions(run.path) for key, run in study.items() if run.complete}
    rows = []
    for first, second in pairs:
        for seed in sorted({s for (c, s) in predictions if c == first} & {s for (c, s) in predictions if c == second}):
            a, b = (predictions[(c, seed)] for c in (first, second))
            a, b = a[a["split"] == split], b[b["split"] == split]
            if not (a["id"].to_numpy() == b["id"].to_numpy()).all():
                raise ValueError(f"{first} and {second}, seed {seed}: the {split} images differ")
            result = stats.mcnemar(a[at] == a["label"], b[at] == b["label"])
            rows.append({"first": first, "second": second, "seed": seed,
                         "first_accuracy": _accuracy(a, split, at), "second_accuracy": _accuracy(b, split, at),
                         **result})
    return pd.DataFrame(rows, columns=["first", "second", "seed", "first_accuracy", "second_accuracy", "only_a",
                                       "only_b", "p_value"])


def _per_epoch(history, metric: str):
    h = history.set_index("epoch")
    return h["accuracy"] - h["val_accuracy"] if metric == "gap" else h[metric]


def mean_curves(study: dict[tuple[str, int], runs.Run], metric: str = "val_accuracy"):
    """Per cell, ``metric`` in percent per epoch over the seeds that reached it: mean, sd, n.
    ``metric`` is a history column or "gap" (training minus validation accuracy)."""
    import pandas as pd

    curves = {}
    for c in CELLS:
        histories = [_per_epoch(run.history, metric) for (name, _), run in study.items() if name == c.name]
        if histories:
            wide = 100 * pd.concat(histories, axis=1)
            curves[c.name] = pd.DataFrame({"mean": wide.mean(axis=1), "sd": wide.std(axis=1, ddof=1),
                                           "n": wide.count(axis=1)})
    return curves


# --- The paper's numbers put to the test ------------------------------------------------------
PENDING = compare.PENDING
#: Readings of the paper's numbers (issue 14), each tested on one cell of the study.
HYPOTHESES: dict[str, str] = {
    "a": "far fewer effective epochs than stated",
    "b": "dropout 0.5 on the convolution blocks",
    "c": "half of the training data",
    "d": "the best epoch reported, not the last",
    "e": "Model A's run did not start from scratch",
}


def closest_epoch(train_curve, val_curve, target: tuple[float, float]) -> tuple[int, float]:
    """The epoch whose (training, validation) accuracy is nearest ``target`` (the larger of the
    two differences, in points), and that distance."""
    distance = np.maximum((train_curve - target[0]).abs(), (val_curve - target[1]).abs())
    return int(distance.idxmin()), float(distance.min())


def _verdict(ours: tuple[float, ...], theirs: tuple[float, ...]) -> str:
    pairs = [(o, t) for o, t in zip(ours, theirs) if not np.isnan(t)]
    if any(np.isnan(o) for o, _ in pairs):
        return PENDING
    return "supported" if max(abs(o - t) for o, t in pairs) <= WITHIN else "not supported"


def hypotheses(study: dict[tuple[str, int], runs.Run]):
    """Each reading of the paper's numbers as a row: the paper's training and validation accuracy,
    ours where the reading says to look (mean over the cell's seeds), and whether they agree
    within ``WITHIN`` points. (a) looks along the whole mean curve for the paper's final pair."""
    import pandas as pd

    nan = float("nan")
    cells = cell_table(run_table(study))
    complete = {key: run for key, run in study.items() if run.complete}
    train_curves, val_curves = mean_curves(complete, "accuracy"), mean_curves(complete, "val_accuracy")
    final = {"A": paper.TABLE_V["A"][99], "B": (paper.FINAL_TRAIN_ACCURACY, paper.FINAL_VALIDATION_ACCURACY)}
    rows = []
    for model, cell_name in (("A", "none"), ("B", "both")):
        rows.append(("a", model, cell_name, *_nearest(cell_name, final[model], train_curves, val_curves)))
    for key, cell_name in (("b", "both_d05"), ("c", "both_half")):
        rows.append((key, "B", cell_name, "last", final["B"],
                     (cells.loc[cell_name, "last_train_mean"], cells.loc[cell_name, "last_val_mean"])))
    rows.append(("d", "B", "both", "best", (nan, final["B"][1]), (nan, cells.loc["both", "best_val_mean"])))
    rows.append(("e", "A", "none", *_nearest("none", paper.TABLE_V["A"][0], train_curves, val_curves)))
    frame = pd.DataFrame(
        [{"hypothesis": key, "reading": HYPOTHESES[key], "model": model, "cell": cell_name, "epoch": epoch,
          "paper_train": theirs[0], "paper_val": theirs[1], "ours_train": ours[0], "ours_val": ours[1],
          "verdict": _verdict(ours, theirs)} for key, model, cell_name, epoch, theirs, ours in rows]
    )
    # (e) says the paper's first epoch looks like a later one of ours: a match at epoch 1 refutes it
    first = (frame["hypothesis"] == "e") & (frame["epoch"] == 1)
    frame.loc[first & (frame["verdict"] == "supported"), "verdict"] = "not supported"
    return frame


def _nearest(cell_name: str, target: tuple[float, float], train_curves, val_curves):
    """(epoch, target, ours at that epoch): where a cell's mean curve comes nearest the paper's pair."""
    if cell_name not in train_curves:
        return None, target, (float("nan"), float("nan"))
    train_curve, val_curve = train_curves[cell_name]["mean"], val_curves[cell_name]["mean"]
    epoch, _ = closest_epoch(train_curve, val_curve, target)
    return epoch, target, (train_curve[epoch], val_curve[epoch])


def precision_check(study: dict[tuple[str, int], runs.Run], fp32_run: runs.Run, cell_name: str = "both",
                    seed: int = 0) -> dict[str, float]:
    """The study's bfloat16 run beside the same model, seed and data trained in float32 (the paper
    run), over the epochs both have: how far their validation curves are apart, in points."""
    bf16 = study.get((cell_name, seed))
    if bf16 is None or not bf16.epochs_done:
        return {"epochs": 0, "max_abs_diff": float("nan"), "mean_diff": float("nan"), "best_diff": float("nan")}
    epochs = min(bf16.epochs_done, fp32_run.epochs_done, bf16.planned)
    a = 100 * bf16.until(epochs)["val_accuracy"].to_numpy()
    b = 100 * fp32_run.until(epochs)["val_accuracy"].to_numpy()
    return {"epochs": epochs, "max_abs_diff": float(np.abs(a - b).max()), "mean_diff": float((a - b).mean()),
            "best_diff": float(a.max() - b.max())}
