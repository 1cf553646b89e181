"""The shipped model's card: generated from the committed metadata, scores and ONNX contract (no number typed by
hand), shown in the book, and its scores measured again on the real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_lib import card, paper

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_card_is_what_the_results_give():
    scores = json.loads(card.SCORES.read_text())
    committed = card.CARD.read_text()
    assert committed == card.current(), "run `python -m fer_lib.card` after shipping a model"
    assert f"{100 * scores['releases']['csv']['accuracy']:.1f}%" in committed
    for name in paper.CLASSES:
        assert f"<tr><td>{name}</td>" in committed


def test_the_book_shows_the_card_from_the_package():
    page = (ROOT / "book" / "model_card.md").read_text()
    assert "{include} ../fer_lib/weights/MODEL_CARD.md" in page
    assert "book/model_card" in (ROOT / "_toc.yml").read_text()


@pytest.mark.realdata
@pytest.mark.slow
def test_the_scores_are_measured_again_the_same(tmp_path, real_csv_data, real_folder_dir, real_cache, monkeypatch):
    from fer_lib import data

    monkeypatch.setenv("FER_LIB_CACHE", str(real_cache))
    folder = data.load_fer2013(real_folder_dir, progress=False)
    again = card.measure(real_csv_data, folder, out=tmp_path / "scores.json")
    assert again == json.loads(card.SCORES.read_text())

