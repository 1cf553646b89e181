"""The paper's numbers put to the test: readings of its text, each tested on one cell of the study.

Each reading predicts that one cell of the multi-seed study (:mod:`fer_lib.study`) lands on the
paper's training and validation accuracy; it is supported where the cell's mean over its complete
seeds comes within ``WITHIN`` points of the paper's pair, and pending until the cell has a complete run.
"""

from __future__ import annotations

import numpy as np

from fer_lib import compare, paper, runs, study

#: A measured value "matches" a paper's value within this many percentage points: the claims
#: table's threshold for "reproduced", so that one number decides both.
WITHIN = compare.REPRODUCED_WITHIN
PENDING = compare.PENDING
#: Readings of the paper's numbers (issue 14), each tested on one cell of the study.
READINGS: dict[str, str] = {
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


def table(found: dict[tuple[str, int], runs.Run]):
    """Each reading of the paper's numbers, tested on the study's runs ``found``, as a row: the paper's
    training and validation accuracy, ours where the reading says to look (mean over the cell's complete
    seeds), and whether they agree within ``WITHIN`` points. (a) looks along the whole mean curve for the
    paper's final pair."""
    import pandas as pd

    nan = float("nan")
    cells = study.cell_table(study.run_table(found))
    complete = study.complete_runs(found)
    train_curves, val_curves = study.mean_curves(complete, "accuracy"), study.mean_curves(complete, "val_accuracy")
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
        [{"hypothesis": key, "reading": READINGS[key], "model": model, "cell": cell_name, "epoch": epoch,
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


def readings(frame, verdict: str = "supported", described: bool = False) -> list[str]:
    """The readings of ``table`` that got ``verdict``, as "(a) for Model B" where a reading
    is tested on both models and "(e)" where on one; ``described`` adds what each reading says."""
    models = frame.groupby("hypothesis")["model"].nunique()
    out = []
    for row in frame[frame["verdict"] == verdict].itertuples():
        label, both = f"({row.hypothesis})", models[row.hypothesis] > 1
        if described:
            out.append(f"{label} {READINGS[row.hypothesis]}" + (f" (Model {row.model})" if both else ""))
        else:
            out.append(f"{label} for Model {row.model}" if both else label)
    return out
