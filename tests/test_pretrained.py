"""The shipped Model B: loads without data, and refuses wrong or damaged files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer_lib import fer2013, models, paper


def test_shipped_model_loads_and_predicts():
    meta = models.pretrained_metadata()
    assert meta["classes"] == list(paper.CLASSES) and meta["release"] == fer2013.RELEASE_CSV
    assert meta["histogram_equalized_input"] is False
    model = models.load_pretrained()
    probs = model.predict(np.zeros((2, 48, 48, 1), np.float32), verbose=0)
    assert probs.shape == (2, 5) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert models.count_params(model)["total"] == paper.TOTAL_PARAMS["B"]


@pytest.fixture
def copy(tmp_path):
    dest = tmp_path / "model_b.keras"
    shutil.copy(models.PRETRAINED, dest)
    shutil.copy(models.PRETRAINED.with_suffix(".json"), dest.with_suffix(".json"))
    return dest


def _edit_meta(path, **changes):
    meta_path = path.with_suffix(".json")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), **changes}))


def test_damaged_file_is_refused(copy):
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(models.PretrainedModelError, match="damaged or was replaced"):
        models.load_pretrained(copy)


def test_wrong_class_order_is_refused(copy):
    _edit_meta(copy, classes=list(reversed(paper.CLASSES)))
    with pytest.raises(models.PretrainedModelError, match="class order"):
        models.load_pretrained(copy)


def test_other_model_is_refused(tmp_path):
    import keras

    wrong = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    path = tmp_path / "wrong.keras"
    wrong.save(path)
    import hashlib

    meta = {"classes": list(paper.CLASSES), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(models.PretrainedModelError, match=r"expected \(None, 48, 48, 1\)"):
        models.load_pretrained(path)


def test_not_a_keras_file_is_refused(tmp_path):
    import hashlib

    path = tmp_path / "notes.keras"
    path.write_bytes(b"these are not weights")
    meta = {"classes": list(paper.CLASSES), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(models.PretrainedModelError, match="cannot be loaded"):
        models.load_pretrained(path)


def test_missing_files_are_named(tmp_path, copy):
    with pytest.raises(models.PretrainedModelError, match="metadata file is missing"):
        models.load_pretrained(tmp_path / "absent.keras")
    copy.unlink()
    with pytest.raises(models.PretrainedModelError, match="model file is missing"):
        models.load_pretrained(copy)
    copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(models.PretrainedModelError, match="not valid JSON"):
        models.pretrained_metadata(copy)
