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

from fer_lib import runs, train

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
