"""Does the study's answer depend on what made its runs fast?

Two choices made the study affordable on two CPU cores, and each gets a check
against the seeds' own spread: bfloat16 arithmetic (the study's Model B runs
beside float32 twins of the same seeds, the paper run for seed 0) and, for anyone
who trains Model B faster still, the dropout draw (``models.Dropout``: the same
masks in distribution from a quarter of the random bits, ``fer-lib train
--dropout-draw bytes``), run for every seed of Model B's cell at the study's protocol.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from fer_lib import paths, provenance, runs, stats, study

#: Model B trained with the byte draw, at the study's protocol: ``DRAW_DIR/seed<k>``
DRAW_DIR = Path(paths.RESULTS_DIR) / "dropout_draw"
DRAW_CELL = "both"
#: how the checks decide: within or beyond how far two runs that differ only in their seed part
SAME_AS_A_SEED, BEYOND_A_SEED = "within the seeds' spread", "beyond the seeds' spread"
UNDECIDED = "not decided by these seeds"
#: Model B trained in float32 at the study's protocol, the bfloat16 check's twins beyond seed 0 (whose twin is
#: the paper run): ``FP32_DIR/seed<k>``
FP32_DIR = Path(paths.RESULTS_DIR) / "precision_check"


def _runs_by_seed(root: str | os.PathLike, folder: Path) -> dict[int, runs.Run]:
    """Every started run in ``folder``'s ``seed<k>`` folders, by the seed its manifest records."""
    found = {}
    for manifest in (Path(root) / folder).glob("seed*/manifest.json"):
        run = runs.load_run(manifest.parent)
        found[run.config.seed] = run
    return dict(sorted(found.items()))


def load_fp32_twins(root: str | os.PathLike = ".") -> dict[int, runs.Run]:
    """Every started float32 twin under ``FP32_DIR``, by seed (seed 0's twin is the paper run)."""
    return _runs_by_seed(root, FP32_DIR)


def _require_twins(found: dict[tuple[str, int], runs.Run], twins: dict[int, runs.Run], cell_name: str,
                   **change) -> None:
    """Each twin must be the cell's run of its seed (as the study trained it, or as its plan gives it) with
    ``change`` alone, or the check would compare more than the change."""
    for seed, run in twins.items():
        study_run = found.get((cell_name, seed))
        reference = study_run.config if study_run else study.cell(cell_name).config(seed)
        expected = dataclasses.replace(reference, **change)
        if run.config != expected:
            raise ValueError(f"{run.path}: trained with {run.config}, not the check's {expected}")


def _precision_pair(bf16: runs.Run | None, fp32_run: runs.Run, limit: float) -> dict[str, float | int | str]:
    """One seed's bfloat16 run beside its float32 twin, over the epochs both have."""
    nan = float("nan")
    if bf16 is None or not bf16.epochs_done or not fp32_run.epochs_done:
        return {"epochs": 0, "max_abs_diff": nan, "mean_diff": nan, "best_diff": nan, "decision": study.PENDING}
    epochs = min(bf16.epochs_done, fp32_run.epochs_done, bf16.planned)
    a = 100 * bf16.until(epochs)["val_accuracy"].to_numpy()
    b = 100 * fp32_run.until(epochs)["val_accuracy"].to_numpy()
    best_diff = float(a.max() - b.max())
    decision = (study.PENDING if np.isnan(limit) or not bf16.complete or epochs < bf16.planned
                else SAME_AS_A_SEED if abs(best_diff) <= limit else BEYOND_A_SEED)
    return {"epochs": epochs, "max_abs_diff": float(np.abs(a - b).max()), "mean_diff": float((a - b).mean()),
            "best_diff": best_diff, "decision": decision}


def precision_check(found: dict[tuple[str, int], runs.Run], paper_run: runs.Run,
                    twins: dict[int, runs.Run] | None = None, cell_name: str = DRAW_CELL):
    """Each seed's bfloat16 run of the study beside the same model, seed and data trained in float32, over
    the epochs both have: for seed 0 the paper run, for others their twins (``load_fp32_twins``, each the
    cell's run in float32); how far the validation curves are apart, in points, and the decision, one row
    per seed. The rule, for every seed alike: bfloat16 changes the answer if the two runs' best validation
    accuracies differ by more than two runs that differ only in their seed would in 95 cases of 100
    (``stats.seed_difference_limit`` over the cell's complete seeds, ``seeds`` of them); a seed is decided
    once its bfloat16 run is complete, its twin has its epochs and the cell has two complete seeds,
    ``study.PENDING`` before."""
    import pandas as pd

    fp32_runs = {0: paper_run, **(twins or {})}
    _require_twins(found, twins or {}, cell_name, precision="fp32")
    best = np.array([run.history["val_accuracy"].max() * 100 for (name, _), run in study.complete_runs(found).items()
                     if name == cell_name])
    limit = stats.seed_difference_limit(best)
    rows = [{"seed": seed, **_precision_pair(found.get((cell_name, seed)), fp32_run, limit), "seeds": len(best),
             "limit": limit} for seed, fp32_run in sorted(fp32_runs.items())]
    return pd.DataFrame(rows).set_index("seed")


def precision_conclusion(check) -> str:
    """What the bfloat16 check decides over its seeds, in one sentence that is true for every state of its runs."""
    seeds = {decision: [str(seed) for seed, d in check["decision"].items() if d == decision]
             for decision in (SAME_AS_A_SEED, BEYOND_A_SEED, study.PENDING)}

    def at(decision: str) -> str:
        return f"seed{'s' if len(seeds[decision]) > 1 else ''} {' and '.join(seeds[decision])}"

    pending = len(seeds[study.PENDING])
    waiting = f" {at(study.PENDING).capitalize()} {'are' if pending > 1 else 'is'} not decided yet." if pending else ""
    if seeds[BEYOND_A_SEED]:
        return (f"At {at(BEYOND_A_SEED)} the difference lies beyond that limit: bfloat16 changes the answer more "
                f"than a change of seed does, and every number of this chapter carries that caveat.{waiting}")
    if seeds[SAME_AS_A_SEED]:
        return (f"At {at(SAME_AS_A_SEED)} the difference lies within that limit: bfloat16 does not change the answer "
                f"more than a change of seed does.{waiting}")
    return ("The rule needs a complete bfloat16 run, its float32 twin and two complete seeds of the cell, so it is "
            "not decided yet.")


def load_draw_runs(root: str | os.PathLike = ".") -> dict[tuple[str, int], runs.Run]:
    """Every started run of the dropout-draw check, keyed ("bytes", seed)."""
    return {("bytes", seed): run for seed, run in _runs_by_seed(root, DRAW_DIR).items()}


#: the measures the dropout-draw check compares, as run_table names them
DRAW_METRICS = {"best_val": "best validation accuracy", "test_best": "PublicTest accuracy (best epoch)",
                "gap": "train-validation gap (last epochs)"}


def draw_check(found: dict[tuple[str, int], runs.Run], drawn: dict[tuple[str, int], runs.Run]):
    """The byte draw's runs beside the study's Model B cell (Keras' draw): per measure, the mean of each
    over its complete seeds, the difference (bytes minus Keras) with its 95% Welch t interval, and
    the decision. The rule, fixed before the check's runs finished: the draw gives the study's results
    within its tolerance if the whole interval lies within +- ``limit``, how far two runs of Keras'
    cell that differ only in their seed part in 95 cases of 100 (``stats.seed_difference_limit``, the
    bfloat16 check's tolerance); beyond it if the whole interval lies outside; ``UNDECIDED`` if it
    straddles the limit; ``study.PENDING`` with fewer than two complete runs on either side."""
    import pandas as pd

    keras_runs = {key: run for key, run in found.items() if key[0] == DRAW_CELL}
    _require_twins(found, {seed: run for (_, seed), run in drawn.items()}, DRAW_CELL, dropout_draw="bytes")
    table = study.run_table({**keras_runs, **drawn})
    done = table[table["complete"].astype(bool)]
    rows = []
    for metric, name in DRAW_METRICS.items():
        samples = {draw: done.loc[done["cell"] == cell, metric].to_numpy(dtype=float)
                   for draw, cell in (("keras", DRAW_CELL), ("bytes", "bytes"))}
        diff = stats.contrast_interval(samples, {"bytes": 1.0, "keras": -1.0})
        limit = stats.seed_difference_limit(samples["keras"])
        decision = (study.PENDING if np.isnan(diff.low) or np.isnan(limit)
                    else SAME_AS_A_SEED if -limit <= diff.low and diff.high <= limit
                    else BEYOND_A_SEED if diff.low > limit or diff.high < -limit else UNDECIDED)
        rows.append({"measure": name, "keras": samples["keras"].mean(), "bytes": samples["bytes"].mean(),
                     "seeds_keras": len(samples["keras"]), "seeds_bytes": len(samples["bytes"]),
                     **diff._asdict(), "limit": limit, "decision": decision})
    return pd.DataFrame(rows).set_index("measure")


def draw_conclusion(check) -> str:
    """What the dropout-draw check decides, in one sentence that is true for every state of its runs."""
    decisions = set(check["decision"])
    if study.PENDING in decisions:
        return "The rule needs two complete runs with each draw, so it is not decided yet."
    if decisions == {SAME_AS_A_SEED}:
        sides = {measure: study.side_of_zero(row.low, row.high) for measure, row in check.iterrows()}
        apart = [f"{side} zero on the {' and the '.join(m for m, s in sides.items() if s == side)}"
                 for side in ("above", "below") if side in sides.values()]
        small = (f" The interval lies wholly {' and wholly '.join(apart)}: a difference, but a smaller one than a "
                 "change of seed makes." if apart else "")
        return ("On every measure the difference lies within the limit: the byte draw trains Model B to the "
                f"study's results, as far as a change of seed could tell them apart.{small}")
    beyond = [measure for measure, decision in check["decision"].items() if decision == BEYOND_A_SEED]
    if beyond:
        return (f"On the {' and the '.join(beyond)} the difference lies beyond the limit: the byte draw changes "
                "Model B's results.")
    undecided = " and the ".join(measure for measure, decision in check["decision"].items() if decision == UNDECIDED)
    if ((check["low"] <= 0) & (check["high"] >= 0)).all():
        return (f"No measure shows a difference (every interval contains zero), but on the {undecided} the interval "
                "reaches beyond the limit: these seeds cannot yet say that the byte draw gives the study's results.")
    return f"On the {undecided} the interval straddles the limit: these seeds do not decide."


#: ``benchmarks/train_speed.py``'s record of the machine it last ran on
TRAIN_SPEED = Path(paths.RESULTS_DIR) / "train_speed.json"


def speed_sentence(root: str | os.PathLike = ".") -> str:
    """Model B's bfloat16 step over Model A's with each draw, as ``benchmarks/train_speed.py`` last
    measured it, with its machine, date and commit."""
    import json

    path = Path(root) / TRAIN_SPEED
    if not path.exists():
        return f"benchmarks/train_speed.py has not recorded a machine yet ({TRAIN_SPEED} is missing)."
    record = json.loads(path.read_text())
    env, ratios = record["environment"], record["ratios"]
    features = f"native bfloat16 ({', '.join(record['native_bf16'])})" if record["native_bf16"] else "emulated bfloat16"
    # plain words: a glued sentence is text, so backticks would print and "--" would become a dash
    return (f"On {provenance.machine_text(env)} with {features}, benchmarks/train_speed.py (median of "
            f"{record['steps']} steps, commit {provenance.short_commit(env['git_commit'])}, {record['date'][:10]}) "
            f"times Model B's bfloat16 training step at {ratios['b_over_a_bf16_keras']:.2f} times Model A's "
            f"with Keras' draw and {ratios['b_over_a_bf16_bytes']:.2f} times with the byte draw; batch "
            f"normalization alone takes Model A to {ratios['floor_bn']:.2f} times its step.")
