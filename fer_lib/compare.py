"""Ours beside the paper's: its tables regenerated next to its numbers, and its claims with verdicts.

Every function reads whatever epochs a run has had; a number that needs an epoch not
reached yet is NaN (shown as "pending" by :func:`fer_lib.plots.table`), so that a
chapter built while a run goes on says so instead of guessing. The paper's own numbers
live in :mod:`fer_lib.paper`; the chapters phrase what these functions return.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fer_lib import evaluate, fer2013, paper, provenance
from fer_lib.runs import Run

MODELS: tuple[str, ...] = ("A", "B")
#: The paper's Tables IV and V come from 100-epoch runs: we read each run's first 100.
TABLE_V_EPOCHS = 100
TABLE_IV_EPOCHS = tuple(range(91, 101))
#: Verdict thresholds for accuracies and gaps, in percentage points: within the first,
#: "reproduced"; within the second, "partly".
REPRODUCED_WITHIN = 2.0
PARTLY_WITHIN = 5.0
#: When they were fixed: the commit that introduced them (``git log -S REPRODUCED_WITHIN``)
#: and the epochs the paper run had reached then (the run's commit just before it).
THRESHOLDS_COMMIT = "9928f0a"
EPOCHS_WHEN_THRESHOLDS_FIXED = {"A": 6, "B": 5}
#: The same for losses, as a ratio of ours to the paper's (added with the loss claims,
#: after the runs: no verdict depends on it, the losses differ by far more).
LOSS_RATIO_REPRODUCED = 1.1
LOSS_RATIO_PARTLY = 1.25

PENDING = "pending"
BY_CONSTRUCTION = "by construction"
NOT_TESTABLE = "not testable"
#: A physical test that a simulation can support or fail to support, but not refute.
SIMULATED_ONLY = "not testable by simulation alone"
VERDICTS = ("reproduced", "partly", "not reproduced", BY_CONSTRUCTION, SIMULATED_ONLY, NOT_TESTABLE, PENDING)

Runs = Mapping[str, Run]


# --- Table I (chapter 1) ---------------------------------------------------------------
def table_i_beside_paper(fer: fer2013.FER2013) -> pd.DataFrame:
    """Images per split and class (ours) with the paper's totals (the paper does not use PublicTest)."""
    table = fer.five_class_counts()
    table["paper total"] = [paper.TRAIN_RECORDS, paper.VALIDATION_RECORDS, np.nan]
    table["difference"] = table["total"] - table["paper total"]
    return table


def cells_that_sum_to(fer: fer2013.FER2013, target: int, max_cells: int = 2) -> list[tuple[str, ...]]:
    """Whole (usage, class) cells of FER-2013 whose counts add up to ``target``: the candidates
    for a count that differs from ours by ``target`` images."""
    counts = fer.counts()
    cells = [(f"{u}/{c}", int(counts.loc[u, c])) for u in counts.index for c in counts.columns]
    return [tuple(name for name, _ in combo) for r in range(1, max_cells + 1)
            for combo in itertools.combinations(cells, r) if sum(n for _, n in combo) == abs(target)]


def data_quality(split: fer2013.Split) -> dict[str, int]:
    """Exact duplicates and blank (constant) images, which Table I's counts include: FER-2013
    was scraped from the web."""
    flat = split.x.reshape(len(split), -1)
    return {"images": len(split), "duplicates": len(split) - len(np.unique(flat, axis=0)),
            "blank": int((flat.std(axis=1) < 1).sum())}


def class_brightness(split: fer2013.Split) -> pd.DataFrame:
    """Mean grey value per class, and how far each class lies from the others in standard
    deviations of an image's mean brightness: how much brightness alone tells apart."""
    brightness = pd.Series(split.x.reshape(len(split), -1).mean(axis=1))
    by_class = brightness.groupby(split.y).mean().set_axis(paper.CLASSES)
    spread = float(brightness.std())
    return pd.DataFrame({"mean grey value": by_class,
                         "from the mean of the others (SD)": [(v - by_class.drop(c).mean()) / spread
                                                              for c, v in by_class.items()]})


# --- Tables IV, V and VI (chapter 4) -------------------------------------------------------
def table_iv_beside_paper(run: Run, epochs: tuple[int, ...] = TABLE_IV_EPOCHS) -> pd.DataFrame:
    """Seconds per epoch, ms per step and training loss at epochs 91-100, ours beside the paper's."""
    rows = {}
    for epoch, (seconds, ms, loss) in zip(epochs, paper.TABLE_IV[run.name], strict=True):
        rows[epoch] = {"s/epoch (paper)": seconds, "s/epoch (ours)": run.at(epoch, "seconds"),
                       "ms/step (paper)": ms, "ms/step (ours)": run.at(epoch, "ms_per_step"),
                       "loss (paper)": loss, "loss (ours)": run.at(epoch, "loss")}
    return pd.DataFrame(rows).T.rename_axis("epoch")


def table_iv_loss(run: Run) -> float:
    """Our training loss over Table IV's epochs (91-100), averaged as the paper's ten rows are: the one
    number every page compares with the paper's losses (NaN before epoch 100)."""
    return float(np.mean([run.at(e, "loss") for e in TABLE_IV_EPOCHS]))


def table_iv_mean(name: str, column: int) -> float:
    """The mean of one column of the paper's Table IV (0: s/epoch, 1: ms/step, 2: loss)."""
    return float(np.mean([row[column] for row in paper.TABLE_IV[name]]))


def table_iv_steps(name: str) -> float:
    """Steps per epoch that Table IV's timings imply (seconds over seconds per step): with
    batches of 128, how much of the training set an epoch of the paper's saw."""
    return float(np.mean([seconds * 1000 / ms for seconds, ms, _ in paper.TABLE_IV[name]]))


def built_param_counts() -> dict[str, int]:
    """Each model's parameter count, counted on the Keras model (the claims table's input)."""
    from fer_lib import models

    return {m: models.count_params(models.build_model(m))["total"] for m in MODELS}


def hardware_beside_paper(runs: Runs) -> pd.DataFrame:
    """Where each run's epochs were timed, beside the paper's Colab."""
    rows = {"paper": {"machine": paper.HARDWARE, "software": "Keras on Google Colab (versions not given)",
                      "sessions": "not given"}}
    for model, run in runs.items():
        segs = run.manifest["segments"]
        rows[f"ours, Model {model}"] = {
            "machine": "; ".join(sorted({provenance.machine_text(s) for s in segs})),
            "software": "; ".join(sorted({f"{provenance.software_text(s)}, Python {s['python']}" for s in segs})),
            "sessions": f"{len(segs)} ({run.status()})"}
    return pd.DataFrame(rows).T


def table_v(runs: Runs) -> pd.DataFrame:
    """Table V beside the paper's, from the first 100 epochs of each run; stages not reached are NaN."""
    return evaluate.table_v_beside_paper({m: run.history for m, run in runs.items()}, TABLE_V_EPOCHS)


def table_v_marks(model: str) -> list[tuple[int, float, str]]:
    """Table V's stages as points on a learning curve: (epoch, accuracy as a fraction, label)."""
    stages = [k for k in paper.TABLE_V[model] if isinstance(k, int)]
    return [(k + 1, paper.TABLE_V[model][k][i] / 100, f"paper, {which} (Table V)")
            for k in stages for i, which in enumerate(("training", "validation"))]


def table_vi_marks() -> list[tuple[int, float, str]]:
    """Table VI as points on Model B's validation curve."""
    return [(e, v / 100, "paper, validation (Table VI)") for e, v in paper.TABLE_VI.items()]


# --- The claims (chapter 5, the introduction, the discussion) ------------------------------------
def verdict(ours: float, theirs: float) -> str:
    """A numeric verdict in points: reproduced within ``REPRODUCED_WITHIN``, partly within ``PARTLY_WITHIN``."""
    if math.isnan(ours):
        return PENDING
    off = abs(ours - theirs)
    return "reproduced" if off <= REPRODUCED_WITHIN else "partly" if off <= PARTLY_WITHIN else "not reproduced"


def loss_verdict(ours: float, theirs: float) -> str:
    """A verdict on a loss, by the ratio of the larger to the smaller."""
    if math.isnan(ours):
        return PENDING
    ratio = max(ours, theirs) / min(ours, theirs)
    return ("reproduced" if ratio <= LOSS_RATIO_REPRODUCED else "partly" if ratio <= LOSS_RATIO_PARTLY
            else "not reproduced")


def direction(ours: float, theirs: float) -> str:
    """Which way ours differs from the paper's."""
    if math.isnan(ours):
        return PENDING
    return "ours higher" if ours > theirs else "ours lower" if ours < theirs else "same"


@dataclass(frozen=True)
class Measured:
    """Our side of a claim: a number (or NaN while pending), how it reads, and its verdict."""

    ours: float
    shown: str
    verdict: str
    direction: str = ""


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: where it is made, what it says, and how we measure it."""

    key: str
    claim: str
    where: str
    paper: str
    check: str
    measure: Callable[[Runs, Mapping[str, int]], Measured]


def _numeric(ours: float, theirs: float, unit: str, judge: Callable[[float, float], str] = verdict,
             spec: str = ".1f") -> Measured:
    shown = PENDING if math.isnan(ours) else f"{ours:{spec}}{unit}"
    return Measured(ours, shown, judge(ours, theirs), direction(ours, theirs))


def _accuracy(model: str, epoch: int, column: str, theirs: float) -> Callable[[Runs, Mapping[str, int]], Measured]:
    return lambda runs, _: _numeric(runs[model].at(epoch, column) * 100, theirs, "%")


def _gap(model: str) -> Callable[[Runs, Mapping[str, int]], Measured]:
    def measure(runs: Runs, _) -> Measured:
        run = runs[model]
        ours = abs(evaluate.gap_max_rows(run.until(TABLE_V_EPOCHS))) if run.epochs_done >= TABLE_V_EPOCHS else math.nan
        return _numeric(ours, paper.TRAIN_VAL_GAP[model], " pts")
    return measure


def _table_iv_loss(model: str) -> Callable[[Runs, Mapping[str, int]], Measured]:
    return lambda runs, _: _numeric(table_iv_loss(runs[model]), table_iv_mean(model, 2), "", loss_verdict, ".3f")


def _best_at_200(runs: Runs, _) -> Measured:
    by_epoch = {e: runs["B"].at(e, "val_accuracy") for e in paper.TABLE_VI}
    if any(math.isnan(v) for v in by_epoch.values()):
        return Measured(math.nan, PENDING, PENDING)
    best = max(by_epoch, key=by_epoch.get)
    peak = int(runs["B"].history.loc[runs["B"].history["val_accuracy"].idxmax(), "epoch"])
    v = "reproduced" if best == paper.TABLE_VI_BEST_EPOCH and peak == best else (
        "partly" if best == paper.TABLE_VI_BEST_EPOCH else "not reproduced")
    return Measured(best, f"epoch {best} (peak of all epochs: {peak})", v, "ours earlier" if peak < best else "")


def at_epoch_100(runs: Runs) -> dict[str, float]:
    """The paper runs' own comparison of Model A and Model B, both read at epoch 100 (Table V's last):
    each model's validation accuracy and train-validation gap (``evaluate.train_val_gap``, the mean
    over epochs 91-100), and B's gain in validation accuracy over A; NaN before epoch 100."""
    out = {}
    for m in MODELS:
        run = runs[m]
        reached = run.epochs_done >= TABLE_V_EPOCHS
        out[f"{m}_val_100"] = run.at(TABLE_V_EPOCHS, "val_accuracy") * 100
        out[f"{m}_gap_100"] = evaluate.train_val_gap(run.until(TABLE_V_EPOCHS)) if reached else math.nan
    out["val_gain_100"] = out["B_val_100"] - out["A_val_100"]
    return out


def _shrinks_gap(runs: Runs, _) -> Measured:
    if min(r.epochs_done for r in runs.values()) < TABLE_V_EPOCHS:
        return Measured(math.nan, PENDING, PENDING)
    at_100 = at_epoch_100(runs)
    gap_a, gap_b, val_a, val_b = (at_100[k] for k in ("A_gap_100", "B_gap_100", "A_val_100", "B_val_100"))
    holds = gap_a - gap_b > REPRODUCED_WITHIN and val_b > val_a
    return Measured(gap_a - gap_b, f"gap {gap_a:.1f} vs {gap_b:.1f} pts; validation {val_a:.1f}% vs {val_b:.1f}%",
                    "reproduced" if holds else "not reproduced", "same" if holds else "opposite")


def _b_does_not_overfit(runs: Runs, _) -> Measured:
    b = runs["B"]
    if not b.complete:
        return Measured(math.nan, PENDING, PENDING)
    gap = evaluate.train_val_gap(b.history)
    low = b.history.loc[b.history["val_loss"].idxmin()]
    rising = b.history["val_loss"].iloc[-1] > low["val_loss"]
    overfits = gap > PARTLY_WITHIN or rising
    return Measured(gap, f"gap {gap:.1f} pts; validation loss {low['val_loss']:.2f} at epoch {int(low['epoch'])}, "
                         f"{b.history['val_loss'].iloc[-1]:.2f} at epoch {b.epochs_done}",
                    "not reproduced" if overfits != paper.MODEL_B_OVERFITS else "reproduced",
                    "opposite" if overfits != paper.MODEL_B_OVERFITS else "same")


def _val_loss_below_training(runs: Runs, _) -> Measured:
    if min(r.epochs_done for r in runs.values()) < TABLE_IV_EPOCHS[-1]:
        return Measured(math.nan, PENDING, PENDING)
    below = {m: sum(r.at(e, "val_loss") < r.at(e, "loss") for e in TABLE_IV_EPOCHS) for m, r in runs.items()}
    n = len(TABLE_IV_EPOCHS) * len(below)
    held = sum(below.values())
    v = "reproduced" if held == n else "partly" if held else "not reproduced"
    return Measured(held, "; ".join(f"{m}: {k} of {len(TABLE_IV_EPOCHS)} epochs" for m, k in below.items()), v,
                    "same" if held == n else "opposite")


def _param_count(model: str) -> Callable[[Runs, Mapping[str, int]], Measured]:
    def measure(_, counts: Mapping[str, int]) -> Measured:
        same = counts[model] == paper.TOTAL_PARAMS[model]
        return Measured(counts[model], f"{counts[model]:,}", BY_CONSTRUCTION if same else "not reproduced",
                        direction(counts[model], paper.TOTAL_PARAMS[model]))
    return measure


def _not_testable(_, __) -> Measured:
    return Measured(math.nan, "not measured", NOT_TESTABLE)


def _claims() -> tuple[Claim, ...]:
    last = paper.HYPERPARAMETERS["epochs"][-1]
    stage = TABLE_V_EPOCHS - 1
    live = paper.LIVE_TESTS
    rows = [
        Claim("b_final_train", f"Model B reaches {paper.FINAL_TRAIN_ACCURACY:g}% training accuracy",
              "abstract, conclusion", f"{paper.FINAL_TRAIN_ACCURACY:g}%", f"Model B, epoch {last}",
              _accuracy("B", last, "accuracy", paper.FINAL_TRAIN_ACCURACY)),
        Claim("b_final_val", f"Model B reaches {paper.FINAL_VALIDATION_ACCURACY:g}% validation accuracy",
              "abstract, conclusion, Table VI", f"{paper.FINAL_VALIDATION_ACCURACY:g}%", f"Model B, epoch {last}",
              _accuracy("B", last, "val_accuracy", paper.FINAL_VALIDATION_ACCURACY)),
        *(Claim(f"b_val_{e}", f"Model B's validation accuracy after {e} epochs", "Table VI",
                f"{paper.TABLE_VI[e]:g}%", f"Model B, epoch {e}", _accuracy("B", e, "val_accuracy", paper.TABLE_VI[e]))
          for e in paper.TABLE_VI if e != last),
        Claim("b_best_at_200", f"Model B is best after {paper.TABLE_VI_BEST_EPOCH} epochs", "Section III.C, Table VI",
              f"epoch {paper.TABLE_VI_BEST_EPOCH}", "the best of Table VI's epochs, and of all epochs", _best_at_200),
    ]
    for m in MODELS:
        for i, which, column in ((0, "training", "accuracy"), (1, "validation", "val_accuracy")):
            theirs = paper.TABLE_V[m][stage][i]
            rows.append(Claim(f"{m.lower()}_{which}_stage_{stage}", f"Model {m}'s {which} accuracy at stage {stage}",
                              "Table V", f"{theirs:g}%", f"Model {m}, epoch {TABLE_V_EPOCHS}",
                              _accuracy(m, TABLE_V_EPOCHS, column, theirs)))
    rows += [Claim(f"{m.lower()}_loss", f"Model {m}'s training loss at epochs 91-100", "Table IV",
                   f"{table_iv_mean(m, 2):.3f}", "mean of our epochs 91-100", _table_iv_loss(m)) for m in MODELS]
    rows += [Claim(f"{m.lower()}_gap", f"Model {m}'s train-validation gap", "Section III.C, Table V",
                   f"{paper.TRAIN_VAL_GAP[m]:g} pts", f"size of highest training minus highest validation accuracy, "
                   f"epochs 1-{TABLE_V_EPOCHS}", _gap(m)) for m in MODELS]
    rows += [
        Claim("bn_dropout_help", "BN and dropout shrink the gap and raise validation accuracy",
              "abstract, Section III.C, conclusion", "gap 6.7 vs 0.7 pts",
              f"A against B: mean gap over epochs {TABLE_V_EPOCHS - 9}-{TABLE_V_EPOCHS}, "
              f"validation accuracy at epoch {TABLE_V_EPOCHS}", _shrinks_gap),
        Claim("b_no_overfitting", "Model B does not overfit", "abstract, Section III.C, conclusion",
              "no overfitting", "Model B: mean gap over its last 10 epochs; validation loss, lowest and last",
              _b_does_not_overfit),
        Claim("val_loss_below_train", "Validation loss is lower than training loss", "Section III.B",
              "lower", f"both models, epochs {TABLE_IV_EPOCHS[0]}-{TABLE_IV_EPOCHS[-1]}", _val_loss_below_training),
        *(Claim(f"{m.lower()}_params", f"Model {m} has {paper.TOTAL_PARAMS[m]:,} parameters",
                paper.ARCHITECTURE_TABLE[m], f"{paper.TOTAL_PARAMS[m]:,}",
                "counted on the Keras model, which is built from the same table", _param_count(m)) for m in MODELS),
        Claim("live_best", f"{live['best_condition_accuracy']:g}% accuracy live at {live['distances_cm'][0]} cm, "
              f"the {paper.LIVE_AVERAGE}", "Section III.E, Fig. 7 (abstract: bright light)",
              f"{live['best_condition_accuracy']:g}%",
              f"simulated (the authors' webcam sessions are not published): PublicTest faces in a modelled webcam "
              f"at {live['distances_cm'][0]} cm, the {paper.LIVE_AVERAGE}, through the live pipeline (chapter 8)",
              _not_testable),
        Claim("live_per_class", f"Live per-class accuracy at {live['distances_cm'][0]} cm", "Section III.E, Fig. 8",
              ", ".join(f"{c} {v:g}%" for c, v in live["per_class_at_30cm"].items()),
              "simulated as the row above, per class over the three lights (chapter 8)", _not_testable),
    ]
    return tuple(rows)


#: Every claim of the paper's abstract, results and conclusion that we check.
CLAIMS = _claims()


def _simulated_live(key: str, simulated: Mapping[str, float]) -> Measured:
    """A live claim measured in the simulated webcam: shown beside the paper's, but a simulation cannot
    refute a physical test, so its verdict is ``SIMULATED_ONLY`` whichever way the numbers lie."""
    live = paper.LIVE_TESTS
    if key == "live_best":
        ours, theirs = simulated[paper.LIVE_AVERAGE], live["best_condition_accuracy"]
        return Measured(ours, f"{ours:.1f}% (simulated)", SIMULATED_ONLY, direction(ours, theirs))
    directions = {direction(simulated[c], v) for c, v in live["per_class_at_30cm"].items()}
    return Measured(math.nan, ", ".join(f"{c} {simulated[c]:.1f}%" for c in live["per_class_at_30cm"]) + " (simulated)",
                    SIMULATED_ONLY, directions.pop() if len(directions) == 1 else "mixed")


#: The over-seeds column, and the column that says where the seeds decided a verdict against the paper run's.
STUDY_COLUMN = "over seeds (chapter 6)"
DECIDED_BY = "decided by the seeds"


def claims(runs: Runs, param_counts: Mapping[str, int], simulated_live: Mapping[str, float] | None = None,
           evidence: Mapping[str, tuple[str, str | None]] | None = None) -> pd.DataFrame:
    """The claims table: each claim, the paper's value and ours, which way they differ, the
    verdict and what we measured; indexed by the claim's key. ``simulated_live``: the live tests
    in chapter 8's simulated webcam (``livestudy.simulated_live``: ``paper.LIVE_AVERAGE`` and the classes);
    without it the live claims stay ``NOT_TESTABLE``. ``evidence``: the controlled study's text and
    verdict for the claims it bears on (``study.claims_evidence``), a column beside them; where the
    seeds give a verdict that differs from the paper run's (once it has one), the seeds decide, and
    ``DECIDED_BY`` says so."""
    rows = {}
    for c in CLAIMS:
        m = c.measure(runs, param_counts)
        if c.key.startswith("live_") and simulated_live is not None:
            m = _simulated_live(c.key, simulated_live)
        rows[c.key] = {"claim": c.claim, "where": c.where, "paper": c.paper, "ours": m.shown,
                       "direction": m.direction or "—", "verdict": m.verdict, "what we measured": c.check}
        if evidence is not None:
            text, seeds = evidence.get(c.key, ("—", None))
            decide = seeds not in (None, PENDING) and m.verdict != PENDING and seeds != m.verdict
            rows[c.key] |= {"verdict": seeds if decide else m.verdict, STUDY_COLUMN: text,
                            DECIDED_BY: f"yes (the paper run: {m.verdict})" if decide else "no"}
    return pd.DataFrame(rows).T.rename_axis("key")


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims got each verdict, every verdict named (zero where none)."""
    counts = table["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def decided_by_seeds(table: pd.DataFrame) -> list[str]:
    """The claims whose verdict the seeds decided against the paper run's (none without ``evidence``)."""
    if DECIDED_BY not in table:
        return []
    return list(table.loc[table[DECIDED_BY] != "no", "claim"])


# --- Findings: the numbers the abstract and the discussion are written from --------------------
def findings(runs: Runs) -> dict[str, float | int | bool]:
    """The facts the abstract and the discussion phrase, from the runs as they stand. The comparison of
    the two models is ``at_epoch_100``'s (both at epoch 100, as the claims table reads it), the training
    loss ``table_iv_loss``'s (epochs 91-100) and the gap ``evaluate.train_val_gap``'s (ten epochs)."""
    out: dict[str, float | int | bool] = {"complete": all(r.complete for r in runs.values())}
    for name, run in runs.items():
        h = run.history
        best = h.loc[h["val_accuracy"].idxmax()]
        low = h.loc[h["val_loss"].idxmin()]
        out |= {f"{name}_epochs": run.epochs_done,
                f"{name}_final_train": h["accuracy"].iloc[-1] * 100,
                f"{name}_final_val": h["val_accuracy"].iloc[-1] * 100,
                f"{name}_best_val": best["val_accuracy"] * 100, f"{name}_best_epoch": int(best["epoch"]),
                f"{name}_gap_last": evaluate.train_val_gap(h),
                f"{name}_val_loss_low": low["val_loss"], f"{name}_val_loss_low_epoch": int(low["epoch"]),
                f"{name}_val_loss_last": h["val_loss"].iloc[-1],
                f"{name}_train_100": run.at(TABLE_V_EPOCHS, "accuracy") * 100,
                f"{name}_loss_91_100": table_iv_loss(run),
                f"{name}_paper_train_99": paper.TABLE_V[name][TABLE_V_EPOCHS - 1][0],
                f"{name}_paper_loss": table_iv_mean(name, 2)}
    out |= at_epoch_100(runs)
    out["b_exceeds_paper"] = bool(out["B_final_val"] > paper.FINAL_VALIDATION_ACCURACY)
    out["B_last_negative_gap"] = evaluate.last_negative_gap(runs["B"].history)
    return out
