"""The goals of the work beyond the paper (chapter 9, issue 24) and how far each is met: measured from the peer
table (``fer-lib peers``), Model C's reference run and ``benchmarks/beyond_speed.py``'s record, each verdict
"met", "missed by" how much, or pending with the reason.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fer_lib import book, provenance, train
from fer_lib.beyond import (
    EQUALIZED,
    INGREDIENTS,
    MODEL_C_KEY,
    ORIGINAL,
    PEERS_COMMAND,
    PEERS_CSV,
    PUBLIC,
    REFERENCE,
    SHIPPED_AS,
    SPEED,
    SPEED_COMMAND,
    RunProgress,
    accuracy,
    best_peer,
    ingredients_table,
    read_peer_rows,
    read_plan,
)
from fer_lib.compare import PENDING
from fer_lib.paths import LIVE_MODEL, repository_root


@dataclass(frozen=True)
class Goal:
    """A goal of the work beyond the paper: a target that the measured value must reach (``at_least``) or
    stay under, and the unit a miss is counted in."""

    what: str
    target: float
    unit: str
    at_least: bool
    #: the target is an accuracy in % (and a miss counts in points)
    percent: bool = False
    #: decimals of the measured value and of a miss
    decimals: int = 1

    def verdict(self, measured: float) -> str:
        if math.isnan(measured):
            return PENDING
        short = self.target - measured if self.at_least else measured - self.target
        return "met" if short <= 0 else f"missed by {_amount(short, self.decimals)} {self.unit}"

    def shown(self) -> str:
        unit = "%" if self.percent else f" {self.unit.removesuffix('s') if self.target == 1 else self.unit}"
        return f"{'at least' if self.at_least else 'at most'} {self.target:g}{unit}"


def _amount(value: float, decimals: int) -> str:
    """A positive amount to ``decimals``, or to as many more (up to two) as show it is not zero."""
    shown = next((d for d in (decimals, decimals + 1) if round(value, d) > 0), decimals + 2)
    return f"{value:.{shown}f}"


GOALS: dict[str, Goal] = {
    "accuracy": Goal(f"Model C's five-class {PUBLIC} accuracy, original pixels (%)", 78.0, "points", True, True),
    "release": Goal("its drop from the original pixels to the equalized release (points)", 1.0, "points", False),
    "peer": Goal(f"its lead over the best published peer on {PUBLIC}, original pixels (points)", 4.0, "points",
                 True),
    "latency": Goal("its time per face, one face per call on onnxruntime (ms)", 5.0, "ms", False, decimals=2),
    "fps": Goal("the live pipeline's rate with it (frames/s)", 60.0, "frames/s", True, decimals=0),
}


def model_c_scores(rows: pd.DataFrame, reference: RunProgress) -> dict[str, tuple[float, str]]:
    """Model C's PublicTest accuracy (%) on each release, and what it was measured from: the peer table once it
    has Model C's rows, else (original pixels only) the complete run's best-epoch predictions."""
    if (rows["model"] == MODEL_C_KEY).any():
        basis = f"the peer table ({PEERS_CSV.as_posix()})"
        return {r: (accuracy(rows, MODEL_C_KEY, r), basis) for r in (ORIGINAL, EQUALIZED)}
    state = f"Model C's run: {reference.describe()}"
    if reference.complete:
        return {ORIGINAL: (reference.test_at_best(), f"the run's best-epoch predictions ({train.PREDICTIONS})"),
                EQUALIZED: (math.nan, f"needs Model C in the peer table: {PEERS_COMMAND}")}
    return {ORIGINAL: (math.nan, state), EQUALIZED: (math.nan, state)}


def read_speed(path: str | os.PathLike) -> dict | None:
    """``benchmarks/beyond_speed.py``'s record, or None where it has not been run."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def _speed_basis(speed: dict) -> str:
    load = speed.get("load_average", {}).get("before", [math.nan])[0]
    return (f"{speed.get('command', SPEED_COMMAND)}, {speed['date'][:10]}, "
            f"{provenance.machine_text(speed['environment'])}, load average {load:.1f}; timed: {speed['model_c']}")


def goals_table(rows: pd.DataFrame, reference: RunProgress, speed: dict | None) -> pd.DataFrame:
    """Each goal: its target, the measured value, the verdict (met, missed by how much, or pending) and what the
    value was measured from, or why it is pending."""
    scores = model_c_scores(rows, reference)
    (original, basis), (equalized, eq_basis) = scores[ORIGINAL], scores[EQUALIZED]
    _, peer_title, peer_accuracy = best_peer(rows)
    no_speed = f"the benchmark has not been run: {SPEED_COMMAND}"
    measured = {
        "accuracy": (original, basis),
        "release": (original - equalized, eq_basis),
        "peer": (original - peer_accuracy, f"{basis}; best peer: {peer_title}, {peer_accuracy:.1f}%"),
        "latency": (speed["ms_per_face"]["Model C"], _speed_basis(speed)) if speed else (math.nan, no_speed),
        "fps": (speed["fps"]["Model C"], _speed_basis(speed)) if speed else (math.nan, no_speed),
    }
    signed = ("release", "peer")
    return pd.DataFrame([{"goal": goal.what, "target": goal.shown(),
                          "measured": book.fmt(value, f"{'+' if key in signed else ''}.{goal.decimals}f"),
                          "verdict": goal.verdict(value), "measured from": why}
                         for key, goal in GOALS.items() for value, why in [measured[key]]]).set_index("goal")


def verdict_counts(goals: pd.DataFrame) -> dict[str, int]:
    """How many goals are met, missed and pending."""
    verdicts = goals["verdict"]
    return {"met": int((verdicts == "met").sum()), "missed": int(verdicts.str.startswith("missed").sum()),
            "pending": int((verdicts == PENDING).sum())}


def speed_table(speed: dict | None) -> pd.DataFrame:
    """The benchmark's milliseconds per face and frames per second, one row per model it timed; Models B and C
    pending where it has not been run."""
    if speed is None:
        return pd.DataFrame({"ms per face": math.nan, "frames/s": math.nan}, index=["Model B", "Model C"])
    order = list(dict.fromkeys([*speed["ms_per_face"], *speed["fps"]]))
    return pd.DataFrame({"ms per face": pd.Series(speed["ms_per_face"]), "frames/s": pd.Series(speed["fps"])}, order)


def glue_headline(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Chapter 9's headline, computed once and glued under ``beyond_<key>`` for every page that quotes it (the
    chapter, the discussion): Model C's PublicTest accuracy (%) on each release, its lead in points over the
    shipped Model B and over the best published peer (original pixels), that peer, how many of the goals are met,
    missed and pending, the live default's name and file name, and what each ingredient adds on PublicTest
    (``adds_<the run without it>``, Table 9.5). Returns the goals table."""
    root = Path(root) if root is not None else repository_root()
    rows = read_peer_rows(root)
    plan = read_plan(root)
    reference = plan[REFERENCE]
    table = goals_table(rows, reference, read_speed(root / SPEED))
    scores = model_c_scores(rows, reference)
    _, peer_title, peer_accuracy = best_peer(rows)
    original = scores[ORIGINAL][0]
    added = ingredients_table(plan)["PublicTest (points)"]
    adds = {f"adds_{without}": book.fmt(points, "+.1f", " points")
            for (_, _, without), points in zip(INGREDIENTS, added, strict=True)}
    book.glue_all({"c_public": book.fmt(original), "c_public_equalized": book.fmt(scores[EQUALIZED][0]),
                   "c_over_b": book.fmt(original - accuracy(rows, "model-b"), "+.1f"),
                   "c_over_peer": book.fmt(original - peer_accuracy, "+.1f"), "best_peer": peer_title,
                   "goals_n": len(table), **{f"goals_{key}": n for key, n in verdict_counts(table).items()},
                   "live_title": f"{SHIPPED_AS[LIVE_MODEL][1]}, {LIVE_MODEL},", **adds},
                  prefix="beyond_")
    return table
