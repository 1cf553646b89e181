"""The shipped model's card: generated from the committed metadata, scores and ONNX contract (no number typed by
hand), shown in the book, and its scores measured again on the real data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fer_lib import card, models, paper
from fer_lib.live import classify
from fer_lib.paths import LIVE_MODEL, MODEL_B, shipped_file, shipped_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", shipped_models())
def test_the_committed_card_is_what_the_results_give(name):
    scores = json.loads(card.scores_file(name).read_text())
    committed = card.card_file(name).read_text()
    assert committed == card.current(name), f"run `python -m fer_lib.card {name}` after shipping a model"
    assert f"{100 * scores['releases']['csv']['accuracy']:.1f}%" in committed
    for label in paper.CLASSES:
        assert f"<tr><td>{label}</td>" in committed


def test_a_card_says_when_validation_chose_the_weights_and_adds_the_held_out_split():
    """Model C's kind of run (the best epoch's weights): the card names the epoch and gives PublicTest too."""
    meta = models.pretrained_metadata(MODEL_B)
    contract = json.loads(classify.contract_path(shipped_file(MODEL_B, ".onnx")).read_text())
    scores = json.loads(card.scores_file(MODEL_B).read_text())
    meta = {**meta, "model": "model_c", "epoch": 37, "epochs_trained": 50, "run": "results/beyond/model_c/seed0",
            "config": {**meta["config"], "model": "c", "epochs": 50, "augment": True, "label_smoothing": 0.1,
                       "schedule": "cosine", "keep_best": True, "profile": "beyond"}}
    public = {"csv": {"n": 3009, "accuracy": 0.7512}, "folder": {"n": 3009, "accuracy": 0.7401}}
    scores = {**scores, "PublicTest": public}
    text = card.render(meta, scores, contract)
    assert text.startswith("# Model card: fer_lib's Model C") and "`model_c.onnx`" in text and "model_b" not in text
    assert "which chose the weights: epoch 37's, the best of 50" in text and "the paper reports" not in text
    assert "**75.1%** as trained (challenge CSV), 74.0% on the Kaggle image folders" in text
    assert "label smoothing 0.1 and a cosine learning-rate schedule (profile `beyond`)" in text
    plain = card.current(MODEL_B)
    assert "used to pick nothing" in plain and "PublicTest" not in plain


def test_the_book_shows_every_shipped_card_and_names_the_live_default():
    page = (ROOT / "book" / "model_card.md").read_text()
    for name in shipped_models():
        assert f"{{include}} ../fer_lib/weights/{name}.card.md" in page
    assert re.search(rf"`{LIVE_MODEL}`\)[^`]*which the live\s+pipeline", page), "the page names another live default"
    assert "book/model_card" in (ROOT / "_toc.yml").read_text()
    assert [card.table_number(name) for name in shipped_models()][:1] == ["C.1"]


@pytest.mark.realdata
@pytest.mark.slow
def test_the_scores_are_measured_again_the_same(tmp_path, real_csv_data, real_folder_dir, real_cache, monkeypatch):
    from fer_lib import data

    monkeypatch.setenv("FER_LIB_CACHE", str(real_cache))
    folder = data.load_fer2013(real_folder_dir, progress=False)
    again = card.measure(real_csv_data, folder, out=tmp_path / "scores.json")
    assert again == json.loads(card.scores_file(MODEL_B).read_text())

