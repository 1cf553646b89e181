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

from fer_lib import compare, evaluate, paths, provenance, runs, stats, train

STUDY_DIR = Path(paths.RESULTS_DIR) / "study"
SEEDS = (0, 1, 2, 3, 4)  # the seeds the book's study reports (issue 23: five per cell)
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
        stop_after: int | None = None, allow_emulated: bool = False) -> list[dict]:
    """Train (or resume, or leave alone if finished) one run of the study."""
    return train.fit(planned.config(), Path(root) / planned.out, data, progress=progress, stop_after=stop_after,
                     allow_emulated=allow_emulated)


def design():
    """The cells as a table: what each switches on, and the share of the training data."""
    import pandas as pd

    rows = [{"cell": c.name, "label": c.label, **c.config(0).architecture(), "train_fraction": c.train_fraction}
            for c in CELLS]
    return pd.DataFrame(rows).set_index("cell")


#: How the pages name a precision.
PRECISION_NAMES = {"bf16": "bfloat16", "fp32": "float32"}


def protocol_changes() -> dict[str, dict[str, object]]:
    """Every setting in which the study's runs of the paper's two models (cells ``none`` and ``both``)
    differ from the paper runs' (``train.profile("paper")``): field -> {"study": ours, "A": the paper
    run's for Model A, "B": for Model B}."""
    import dataclasses

    changes: dict[str, dict[str, object]] = {}
    for model, cell_name in (("A", "none"), ("B", "both")):
        ours = dataclasses.asdict(cell(cell_name).config(0))
        theirs = dataclasses.asdict(train.profile("paper", model.lower(), seed=0))
        for field in ours:
            if field != "profile" and ours[field] != theirs[field]:
                changes.setdefault(field, {"study": ours[field]})[model] = theirs[field]
    return changes


def protocol_differences() -> dict[str, int | str]:
    """``protocol_changes`` as the pages quote it: the study's epochs and precision beside the paper runs'."""
    changes = protocol_changes()
    return {"epochs": changes["epochs"]["study"], "paper_epochs_a": changes["epochs"]["A"],
            "paper_epochs_b": changes["epochs"]["B"], "precision": PRECISION_NAMES[changes["precision"]["study"]],
            "paper_precision": PRECISION_NAMES[changes["precision"]["B"]]}


# --- Reading the study's runs --------------------------------------------------------------
PENDING = compare.PENDING
#: Cell pairs compared image by image on PublicTest: each switch alone, both, and the paper's readings.
PAIRS: tuple[tuple[str, str], ...] = (
    ("none", "both"), ("none", "bn"), ("none", "dropout"), ("bn", "both"), ("dropout", "both"),
    ("both", "both_d05"), ("both", "both_half"),
)
#: The 2x2 design's contrasts: main effects average over the other switch's two levels; the last is
#: the paper's own comparison, Model B's cell against Model A's (both switches at once).
BOTH = "both (Model B) vs neither (Model A)"
CONTRASTS: dict[str, dict[str, float]] = {
    "batch normalization": {"bn": 0.5, "both": 0.5, "none": -0.5, "dropout": -0.5},
    "dropout": {"dropout": 0.5, "both": 0.5, "none": -0.5, "bn": -0.5},
    "interaction": {"both": 1.0, "none": 1.0, "bn": -1.0, "dropout": -1.0},
    BOTH: {"both": 1.0, "none": -1.0},
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


def complete_runs(study: dict[tuple[str, int], runs.Run]) -> dict[tuple[str, int], runs.Run]:
    """The runs that have finished every planned epoch: the only ones the study's numbers and curves use."""
    return {key: run for key, run in study.items() if run.complete}


def run_table(study: dict[tuple[str, int], runs.Run]):
    """One row per run, accuracies in percent: how far it is, its best and last epoch on
    PrivateTest (validation), its train-validation gap (``evaluate.train_val_gap``: the mean over
    the last ``evaluate.GAP_EPOCHS`` epochs; ``gap_best``: at the best epoch), and PublicTest at both epochs."""
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
                       gap=evaluate.train_val_gap(h), gap_best=evaluate.gap_at_best(h))
        if run.complete:
            predictions = runs.read_predictions(run.path)
            row.update(test_best=_accuracy(predictions, "test", "best"),
                       test_last=_accuracy(predictions, "test", "last"))
        rows.append(row)
    columns = ["cell", "seed", "epochs", "planned", "complete", "best_val", "best_epoch", "last_val", "last_train",
               "gap", "gap_best", "test_best", "test_last"]
    return pd.DataFrame(rows, columns=columns)


SUMMARY_METRICS = ("best_val", "best_epoch", "last_val", "last_train", "gap", "gap_best", "test_best", "test_last")


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


def _complete(table):
    return table[table["complete"].astype(bool)]  # (an empty column would select columns, not rows)


def effects(table, metric: str = "best_val"):
    """The effects of the 2x2 design (``CONTRASTS``) on ``metric``, from the complete runs, in points,
    each with its 95% interval over seeds: Welch's t interval (``stats.contrast_interval``), which
    lets every cell keep its own seed-to-seed variance. ``df``: its degrees of freedom; ``seeds``:
    the fewest complete seeds of a cell it uses."""
    import pandas as pd

    done = _complete(table)
    samples = {c: done.loc[done["cell"] == c, metric].to_numpy(dtype=float) for c in FACTORIAL}
    rows = [{"effect": name, **stats.contrast_interval(samples, weights)._asdict(),
             "seeds": min(len(samples[c]) for c in weights)} for name, weights in CONTRASTS.items()]
    return pd.DataFrame(rows).set_index("effect")


#: ``headline``'s effects: key -> the contrast it reads.
HEADLINE_EFFECTS = {"b_vs_a": BOTH, "bn": "batch normalization", "dropout": "dropout"}


def headline(table) -> dict[str, float | int]:
    """The study's answer in the numbers the pages quote, each computed here once: runs complete of
    those planned; the effects (``HEADLINE_EFFECTS``) on the best validation accuracy with their 95%
    intervals (``<key>_best``, ``_low``, ``_high``) and on the train-validation gap (``<key>_gap``, the
    mean over the last ``evaluate.GAP_EPOCHS`` epochs); the range of Model B's cell's best validation
    accuracy over its complete seeds, and its gap with a 95% interval. NaN where the runs are not there yet."""
    best, gap = effects(table, "best_val"), effects(table, "gap")
    done = _complete(table)
    model_b = done[done["cell"] == "both"]
    b_gap = stats.mean_interval(model_b["gap"].to_numpy(dtype=float))
    numbers: dict[str, float | int] = {"complete": len(done), "planned": len(plan()), "b_seeds": len(model_b),
                                       "b_best_min": float(model_b["best_val"].min()),
                                       "b_best_max": float(model_b["best_val"].max()),
                                       "b_gap": b_gap.estimate, "b_gap_low": b_gap.low, "b_gap_high": b_gap.high}
    for key, name in HEADLINE_EFFECTS.items():
        numbers |= {f"{key}_best": best.loc[name, "estimate"], f"{key}_best_low": best.loc[name, "low"],
                    f"{key}_best_high": best.loc[name, "high"], f"{key}_gap": gap.loc[name, "estimate"],
                    f"{key}_gap_low": gap.loc[name, "low"], f"{key}_gap_high": gap.loc[name, "high"]}
    return numbers


def _with_interval(numbers: dict, key: str, spec: str = "+.1f") -> str:
    return f"{numbers[key]:{spec}} ({numbers[key + '_low']:{spec}} to {numbers[key + '_high']:{spec}})"


def side_of_zero(low: float, high: float) -> str:
    """Where a 95% interval lies: "above" zero (low > 0), "below" it (high < 0), "across" it (an interval
    that touches zero counts as across), or ``PENDING`` where there is no interval yet."""
    if np.isnan(low):
        return PENDING
    return "above" if low > 0 else "below" if high < 0 else "across"


def _sure(low: float, high: float, claimed: str) -> bool | None:
    """Whether a 95% interval lies wholly on the ``claimed`` side of zero ("above" or "below"): True,
    wholly on the other side: False, across zero or not there yet: None."""
    side = side_of_zero(low, high)
    return side == claimed if side in ("above", "below") else None


def claims_evidence(numbers: dict[str, float | int]) -> dict[str, tuple[str, str | None]]:
    """What the study says of the claims table's claims it bears on (``headline``'s numbers): the text
    of its column, and its verdict where the seeds can give one (``compare.claims`` lets it decide where
    it differs from the paper run's). "BN and dropout help": reproduced where the 95% intervals of
    Model B's cell against Model A's put the gap below zero and the best validation accuracy above;
    not where either lies wholly on the other side. "Model B does not overfit": not reproduced where the
    interval of its cell's gap lies above ``compare.PARTLY_WITHIN`` points, reproduced where below.
    Model B's final 63.3% is at 200 epochs, which the study does not run: text only."""
    if not numbers["b_seeds"]:
        return {}
    seeds = provenance.counted(numbers["b_seeds"], "seed")
    gap = _sure(numbers["b_vs_a_gap_low"], numbers["b_vs_a_gap_high"], "below")
    best = _sure(numbers["b_vs_a_best_low"], numbers["b_vs_a_best_high"], "above")
    helps = "reproduced" if gap and best else "not reproduced" if False in (gap, best) else None
    limit = compare.PARTLY_WITHIN
    overfits = "not reproduced" if numbers["b_gap_low"] > limit else "reproduced" if numbers["b_gap_high"] <= limit \
        else None  # (NaN compares False both ways: no verdict)
    return {
        "b_final_val": (f"Model B's cell after {cell('both').config(0).epochs} epochs: best "
                        f"{numbers['b_best_min']:.1f}-{numbers['b_best_max']:.1f}% over {seeds}", None),
        "b_no_overfitting": (f"Model B's cell: gap {_with_interval(numbers, 'b_gap', '.1f')} pts (mean of the "
                             f"last {evaluate.GAP_EPOCHS} epochs; 95% interval over {seeds})", overfits),
        "bn_dropout_help": (f"{BOTH}: best validation {_with_interval(numbers, 'b_vs_a_best')}, gap "
                            f"{_with_interval(numbers, 'b_vs_a_gap')} pts (95% intervals over seeds)", helps),
    }


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


# --- How the pages phrase the study's state --------------------------------------------------------
def progress(table) -> dict[str, int | bool]:
    """How many runs are planned, started, complete and in progress, the fewest and most complete
    seeds of a cell, and whether every planned run is complete (``done``)."""
    done = _complete(table)
    seeds = [int((done["cell"] == c.name).sum()) for c in CELLS]
    finished = set(zip(done["cell"], done["seed"]))
    return {"planned": len(plan()), "started": len(table), "complete": len(done),
            "in_progress": len(table) - len(done), "min_seeds": min(seeds), "max_seeds": max(seeds),
            "done": all((r.cell.name, r.seed) in finished for r in plan())}


def seeds_phrase(low: int, high: int) -> str:
    """A count of seeds that may differ between cells: "3", "2 or 3", "2 to 5"."""
    return str(low) if low == high else f"{low} or {high}" if high == low + 1 else f"{low} to {high}"


def progress_note(table) -> str:
    """What the study chapter says of its runs: only that they are complete once they are; before
    that, how many are, and that the numbers use those and say "pending" where they need more."""
    p = progress(table)
    if p["done"]:
        return (f"All {p['planned']} planned runs are complete: {len(SEEDS)} seeds in each of the "
                f"{len(CELLS)} cells.")
    return (f"{p['complete']} of the {p['planned']} planned runs ({len(CELLS)} cells, {len(SEEDS)} seeds each) are "
            f"complete and {p['in_progress']} more are in progress; a cell has "
            f"{seeds_phrase(p['min_seeds'], p['max_seeds'])} complete seeds. Every table, figure and interval below "
            f"uses the complete runs only, and a number that needs more of them reads \"{PENDING}\".")


def extent(table) -> str:
    """The study's size as the other pages quote it: its runs and seeds once all are complete, how many
    are before that."""
    p = progress(table)
    if p["done"]:
        return f"{p['planned']} runs, {len(SEEDS)} seeds of each of its {len(CELLS)} cells"
    return f"{p['complete']} of its {p['planned']} runs complete"


def sign_reading(low: float, high: float) -> str:
    """Where a 95% interval puts an effect: "above zero", "below zero", or across it (``side_of_zero``)."""
    words = {"above": "above zero", "below": "below zero", "across": "not distinguishable from zero"}
    return words.get(side_of_zero(low, high), PENDING)
