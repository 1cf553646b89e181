"""From a trained model or a run's history to the paper's tables and our own checks.

Table V's "stage k" is the k-th epoch counted from 0 (stage 0 = epoch 1), as
Keras' logs print them; Table VI is Model B's validation accuracy after 50,
100 and 200 epochs. Accuracies are fractions here and percentages only where
a table puts them beside the paper's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib import paper
from fer_lib.fer2013 import Split

N_CLASSES = len(paper.CLASSES)
#: Digits a stored fraction keeps (model cards, the peer table): enough that a percentage shown to one decimal
#: is the count's and not a rounding of a rounding (2179 of 3037 is 71.7%; stored as 0.7175 it printed 71.8%)
STORED_DIGITS = 6
#: What FER+ gives an image whose taggers chose no single one of the five classes.
NO_MAJORITY = "no majority"


def predict_proba(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, 5) for uint8 images (n, 48, 48)."""
    from fer_lib import models

    x = models.as_model_input(x)  # checks the shape first
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Counts with true classes as rows and predicted classes as columns."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return pd.DataFrame(counts, index=pd.Index(paper.CLASSES, name="true"),
                        columns=pd.Index(paper.CLASSES, name="predicted"))


def per_class_scores(confusion: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support for each class."""
    counts = confusion.to_numpy()
    hits = np.diag(counts).astype(float)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": actual},
                        index=pd.Index(paper.CLASSES, name="class"))


def evaluate(model, split: Split) -> dict:
    """Accuracy, per-class scores and the confusion matrix of a model on one split."""
    probs = predict_proba(model, split.x)
    y_pred = probs.argmax(axis=1)
    confusion = confusion_matrix(split.y, y_pred)
    return {
        "split": split.name,
        "n": len(split),
        "accuracy": float((y_pred == split.y).mean()),
        "per_class": per_class_scores(confusion),
        "confusion": confusion,
        "probabilities": probs,
    }


def most_confident_mistakes(result: dict, split: Split, k: int = 12, ferplus: np.ndarray | None = None) -> pd.DataFrame:
    """The k wrong predictions the model was surest of: often label noise, sometimes the model.

    With ``ferplus`` (``ferplus.majority`` of the split) a column says what FER+'s
    taggers chose for each image.
    """
    probs = result["probabilities"]
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != split.y)
    top = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:k]
    mistakes = pd.DataFrame({
        "index": top,
        "id": split.ids[top],
        "true": [paper.CLASSES[i] for i in split.y[top]],
        "predicted": [paper.CLASSES[i] for i in y_pred[top]],
        "confidence": probs[top, y_pred[top]],
    })
    if ferplus is not None:
        _check_ferplus(ferplus, split)
        mistakes["ferplus"] = [paper.CLASSES[i] if i >= 0 else NO_MAJORITY for i in ferplus[top]]
    return mistakes


def _check_ferplus(ferplus: np.ndarray, split: Split) -> None:
    if ferplus.shape != split.y.shape:
        raise ValueError(f"ferplus has shape {ferplus.shape}, but split {split.name!r} has {len(split)} images")


def against_ferplus(result: dict, split: Split, ferplus: np.ndarray) -> dict:
    """A model's accuracy under FER-2013's labels and under FER+'s, on the images where FER+'s
    ten taggers chose one of the five classes, and how many of its mistakes FER+ calls right.

    FER-2013 has one label per image; FER+ re-labelled every image by crowd vote. Where the
    model disagrees with FER-2013 but agrees with the crowd, the mistake is likely the label's.
    """
    _check_ferplus(ferplus, split)
    y_pred = result["probabilities"].argmax(axis=1)
    voted = ferplus >= 0
    label, crowd, said = split.y[voted], ferplus[voted], y_pred[voted]
    wrong = said != label
    return {
        "images": len(split),
        "with a FER+ majority": int(voted.sum()),
        "labels agree (%)": float((label == crowd).mean() * 100),
        "accuracy, FER-2013 labels (%)": float((said == label).mean() * 100),
        "accuracy, FER+ labels (%)": float((said == crowd).mean() * 100),
        "mistakes": int(wrong.sum()),
        "mistakes where FER+ agrees with the model": int((wrong & (said == crowd)).sum()),
    }


def accuracy_by_view(models: dict[str, object], views: dict[str, Split]) -> pd.DataFrame:
    """Accuracy (%) of each model (columns) on each view of the images (rows), such as the same
    faces as the two public releases store them: a model must be fed what it was trained on."""
    return pd.DataFrame({name: {view: evaluate(model, split)["accuracy"] * 100 for view, split in views.items()}
                         for name, model in models.items()})


# --- The paper's tables from a history ------------------------------------------------
def table_v(history: pd.DataFrame, stages: tuple[int, ...] = (0, 1, 98, 99)) -> pd.DataFrame:
    """Training and validation accuracy (%) at the given stages, with AVG, MAX and MIN
    over all epochs run; stages not reached yet are left out."""
    pct = history.set_index(history["epoch"] - 1)[["accuracy", "val_accuracy"]] * 100
    rows = {stage: pct.loc[stage] for stage in stages if stage in pct.index}
    rows.update({"AVG": pct.mean(), "MAX": pct.max(), "MIN": pct.min()})
    table = pd.DataFrame(rows).T
    table.columns = ["train", "validation"]
    table.index.name = "stage"
    return table


def table_v_beside_paper(histories: dict[str, pd.DataFrame], epochs: int = 100) -> pd.DataFrame:
    """Table V, ours beside the paper's, one column pair per model, from each run's first
    ``epochs`` epochs (the paper's Table V runs had 100); stages not reached yet are NaN."""
    stages = list(paper.TABLE_V["A"])
    columns = {}
    for model, history in histories.items():
        ours = table_v(history[history["epoch"] <= epochs]).reindex(stages)
        theirs = pd.DataFrame(paper.TABLE_V[model], index=["train", "validation"]).T.reindex(stages)
        for which in ("train", "validation"):
            columns[(f"Model {model}", which, "paper")] = theirs[which].to_numpy()
            columns[(f"Model {model}", which, "ours")] = ours[which].to_numpy()
    return pd.DataFrame(columns, index=pd.Index(stages, dtype=object, name="stage"))


def table_vi(history: pd.DataFrame) -> pd.DataFrame:
    """Model B's validation accuracy (%) after 50, 100 and 200 epochs, ours beside the paper's."""
    by_epoch = history.set_index("epoch")["val_accuracy"] * 100
    return pd.DataFrame(
        {"paper": pd.Series(paper.TABLE_VI),
         "ours": pd.Series({e: by_epoch.get(e, np.nan) for e in paper.TABLE_VI})},
    ).rename_axis("epochs")


def table_iv(history: pd.DataFrame, last: int = 10) -> pd.DataFrame:
    """Seconds per epoch, ms per step and training loss over the last ``last`` epochs."""
    return history.tail(last)[["epoch", "seconds", "ms_per_step", "loss"]].reset_index(drop=True)


#: The book's train-validation gap is averaged over this many last epochs: one epoch's validation
#: accuracy swings by points from the next (by 10 points between seeds of one cell in chapter 6).
GAP_EPOCHS = 10


def train_val_gap(history: pd.DataFrame, last: int = GAP_EPOCHS) -> float:
    """Training minus validation accuracy, in points, averaged over the ``last`` epochs of ``history``
    (cut it with ``Run.until`` to read it at an earlier epoch): the quantity the paper's overfitting
    claim rests on (6.7 for A, 0.7 for B), and the one gap every page of the book reports."""
    tail = history.tail(last)
    return float((tail["accuracy"] - tail["val_accuracy"]).mean() * 100)


def gap_at_best(history: pd.DataFrame) -> float:
    """Training minus validation accuracy, in points, at the epoch of the best validation accuracy:
    the gap of the model one would keep."""
    best = history.loc[history["val_accuracy"].idxmax()]
    return float((best["accuracy"] - best["val_accuracy"]) * 100)


def paper_gap_definition() -> dict[str, float]:
    """Section III.C's gaps recomputed from the paper's own Table V: the sizes of the differences of its MAX
    rows, as the paper gives them (unsigned: Model B's validation MAX is above its training MAX)."""
    return {m: round(abs(paper.TABLE_V[m]["MAX"][0] - paper.TABLE_V[m]["MAX"][1]), 1) for m in paper.TABLE_V}


def gap_max_rows(history: pd.DataFrame) -> float:
    """The paper's gap: highest training minus highest validation accuracy, in points."""
    return float((history["accuracy"].max() - history["val_accuracy"].max()) * 100)


def gap_per_epoch(history: pd.DataFrame) -> pd.Series:
    """Training minus validation accuracy at every epoch, in points."""
    return (history["accuracy"] - history["val_accuracy"]).set_axis(history["epoch"]) * 100


def last_negative_gap(history: pd.DataFrame) -> int:
    """The last epoch at which validation accuracy is above training accuracy (0 if none):
    dropout lowers the logged training accuracy, which shows early in training."""
    gaps = gap_per_epoch(history)
    return int(gaps.index[gaps < 0].max()) if (gaps < 0).any() else 0


# --- A whole run ----------------------------------------------------------------------------
def evaluate_run(model, split: Split, history: pd.DataFrame, out: str | os.PathLike | None = None) -> dict:
    """The summary the notebooks and the README quote, written to ``evaluation.json``."""
    result = evaluate(model, split)
    summary = {
        "split": split.name,
        "n": result["n"],
        "epochs": int(history["epoch"].max()),
        "accuracy": result["accuracy"],
        "per_class": result["per_class"].round(4).to_dict(orient="index"),
        "confusion": result["confusion"].to_numpy().tolist(),
        "classes": list(paper.CLASSES),
        "train_val_gap_last_epoch": train_val_gap(history, last=1),
        "train_val_gap_last_10": train_val_gap(history),
        "best_val_accuracy": float(history["val_accuracy"].max()),
        "best_epoch": int(history.loc[history["val_accuracy"].idxmax(), "epoch"]),
    }
    if out is not None:
        Path(out).write_text(json.dumps(summary, indent=1))
    return summary
