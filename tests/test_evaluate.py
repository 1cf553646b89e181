"""The paper's tables from histories, and the scores from predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from made_up_runs import history

from fer_lib import evaluate, paper
from fer_lib.fer2013 import Split


def _history(epochs: int) -> pd.DataFrame:
    e = np.arange(1, epochs + 1)
    return pd.DataFrame({"epoch": e, "loss": 1 / e, "accuracy": 0.3 + e / 1000, "val_loss": 1 / e,
                         "val_accuracy": 0.25 + e / 1000, "seconds": 10.0, "ms_per_step": 50.0})


def test_table_v_stages_are_zero_based_epochs():
    table = evaluate.table_v(_history(100))
    assert table.loc[0, "train"] == pytest.approx(30.1) and table.loc[99, "validation"] == pytest.approx(35.0)
    assert table.loc["MAX", "train"] == pytest.approx(40.0) and table.loc["MIN", "validation"] == pytest.approx(25.1)
    assert table.loc["AVG", "train"] == pytest.approx(35.05)
    assert list(evaluate.table_v(_history(5)).index) == [0, 1, "AVG", "MAX", "MIN"]  # stages not reached


def test_table_v_beside_paper_and_table_vi():
    both = evaluate.table_v_beside_paper({"A": _history(100), "B": _history(100)})
    assert both.loc[0, ("Model A", "train", "paper")] == paper.TABLE_V["A"][0][0]
    vi = evaluate.table_vi(_history(120))
    assert vi.loc[100, "ours"] == pytest.approx(35.0) and np.isnan(vi.loc[200, "ours"])
    assert vi.loc[200, "paper"] == paper.TABLE_VI[200]
    short = evaluate.table_v_beside_paper({"B": _history(150)[lambda h: h["epoch"] <= 5]})
    assert np.isnan(short.loc[99, ("Model B", "train", "ours")]) and short.loc[1, ("Model B", "train", "ours")] > 0
    first_100 = evaluate.table_v_beside_paper({"B": _history(200)})
    assert first_100.loc["MAX", ("Model B", "train", "ours")] == pytest.approx(40.0)  # epoch 100, not 200


def test_gap_and_table_iv():
    h = _history(30)
    assert evaluate.train_val_gap(h) == pytest.approx(5.0)
    jumpy = h.assign(val_accuracy=h["val_accuracy"] - 0.1 * (h["epoch"] == 30))  # one bad last epoch
    assert evaluate.train_val_gap(jumpy, last=1) == pytest.approx(15.0)
    assert evaluate.train_val_gap(jumpy) == pytest.approx(6.0)  # averaged over the last GAP_EPOCHS = 10
    assert evaluate.gap_at_best(jumpy) == pytest.approx(5.0)
    assert evaluate.table_iv(h)["epoch"].tolist() == list(range(21, 31))


def test_confusion_and_scores():
    y_true = np.array([0, 0, 1, 1, 2, 3, 4, 4])
    y_pred = np.array([0, 1, 1, 1, 2, 3, 4, 0])
    cm = evaluate.confusion_matrix(y_true, y_pred)
    assert cm.loc["angry", "happy"] == 1 and cm.to_numpy().sum() == 8
    scores = evaluate.per_class_scores(cm)
    assert scores.loc["angry", "precision"] == pytest.approx(0.5) and scores.loc["happy", "recall"] == 1.0
    assert scores.loc["shock", "recall"] == pytest.approx(0.5) and scores["support"].sum() == 8


def test_predict_validates_shape():
    with pytest.raises(ValueError, match=r"\(n, 48, 48\)"):
        evaluate.predict_proba(None, np.zeros((2, 64, 64), np.uint8))


def test_against_ferplus_and_the_mistakes_it_explains():
    y = np.array([0, 1, 2, 3, 4, 4])  # FER-2013's labels
    said = np.array([0, 2, 2, 4, 0, 1])  # the model: right on images 0 and 2
    crowd = np.array([0, 2, 1, -1, 0, 3])  # FER+: no majority on image 3
    split = Split("val", "PrivateTest", np.zeros((6, 48, 48), np.uint8), y, np.array([f"row {i}" for i in range(6)]))
    result = {"probabilities": np.eye(5)[said] * 0.8 + 0.04}
    scores = evaluate.against_ferplus(result, split, crowd)
    assert scores["images"] == 6 and scores["with a FER+ majority"] == 5
    assert scores["labels agree (%)"] == pytest.approx(20.0)  # image 0 of 0, 1, 2, 4, 5
    assert scores["accuracy, FER-2013 labels (%)"] == pytest.approx(40.0)  # images 0 and 2
    assert scores["accuracy, FER+ labels (%)"] == pytest.approx(60.0)  # images 0, 1 and 4
    assert (scores["mistakes"], scores["mistakes where FER+ agrees with the model"]) == (3, 2)  # 1, 4, 5; 1 and 4
    mistakes = evaluate.most_confident_mistakes(result, split, k=10, ferplus=crowd).set_index("index")
    assert mistakes.loc[1, "ferplus"] == "normal" and mistakes.loc[3, "ferplus"] == evaluate.NO_MAJORITY
    with pytest.raises(ValueError, match="has 6 images"):
        evaluate.against_ferplus(result, split, crowd[:5])


def test_accuracy_by_view():
    import keras

    # a "model" that says class 0 for dark images and class 1 for bright ones
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(5)])
    model.layers[-1].set_weights([np.array([[-1.0, 1.0, -9, -9, -9]]), np.array([128.0, -128.0, 0, 0, 0])])
    dark, bright = np.full((2, 48, 48), 20, np.uint8), np.full((2, 48, 48), 230, np.uint8)
    y = np.array([0, 1])
    views = {"as stored": Split("val", "PrivateTest", np.stack([dark[0], bright[0]]), y, np.array(["a", "b"])),
             "inverted": Split("val", "PrivateTest", np.stack([bright[0], dark[0]]), y, np.array(["a", "b"]))}
    table = evaluate.accuracy_by_view({"M": model}, views)
    assert table.loc["as stored", "M"] == 100.0 and table.loc["inverted", "M"] == 0.0


def test_paper_gap_is_the_difference_of_table_v_max_rows():
    assert evaluate.paper_gap_definition() == paper.TRAIN_VAL_GAP
    assert evaluate.gap_max_rows(history(10, 0.6, 0.5)) == pytest.approx(10.0)
    assert evaluate.gap_per_epoch(history(4, 0.4, 0.4)).tolist() == pytest.approx([0, 0, 0, 0])
    assert evaluate.last_negative_gap(history(5, 0.4, 0.5)) == 5 and evaluate.last_negative_gap(history(5)) == 0
