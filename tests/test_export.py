"""``fer-lib export``: the shipped model and a run's weights as ONNX and LiteRT, each checked against Keras on the
real validation images (PrivateTest), with the contract that the live pipeline reads beside the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_lib import cli, export, models, paper
from fer_lib.live import classify
from fer_lib.paths import shipped_file, shipped_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped():
    return models.load_pretrained()


@pytest.fixture(scope="module")
def val_faces(real_csv_data) -> np.ndarray:
    return real_csv_data.split("val").x


@pytest.mark.realdata
@pytest.mark.parametrize("name", shipped_models())
def test_each_shipped_onnx_model_is_its_shipped_keras_model(name, val_faces):
    """What the package ships for inference without TensorFlow, on all 3,006 validation images."""
    difference = export.parity(shipped_file(name, ".onnx"), models.load_pretrained(name), val_faces)
    print(f"\n{name}: ONNX vs Keras on {len(val_faces)} PrivateTest images: largest difference {difference:.2e}")
    assert difference <= export.PARITY_TOLERANCE
    contract = json.loads(classify.contract_path(shipped_file(name, ".onnx")).read_text())
    meta = models.pretrained_metadata(name)
    assert contract["classes"] == list(paper.CLASSES) == meta["classes"]
    assert contract["release"] == meta["release"] and contract["source"]["sha256"] == meta["sha256"]


@pytest.mark.realdata
@pytest.mark.parametrize("format", sorted(export.FORMATS))
def test_export_of_a_run_folder_matches_keras_on_real_faces(tmp_path, capsys, real_csv_data, val_faces, format):
    run = "results/paper/model_b"
    out = tmp_path / f"model{export.FORMATS[format]}"
    assert cli.main(["export", run, "--format", format, "--out", str(out)]) == 0
    assert f"{out}.json" in capsys.readouterr().out
    contract = json.loads(classify.contract_path(out).read_text())
    assert contract["release"] == real_csv_data.release and contract["equalize"] is False
    assert contract["input"] == {**contract["input"], "dtype": "uint8", "shape": [None, 48, 48]}
    model, _ = export.source_model(run)
    faces = val_faces[:1000]
    difference = export.parity(out, model, faces)
    print(f"\n{format} export vs Keras on {len(faces)} PrivateTest images: largest difference {difference:.2e}")
    assert difference <= export.PARITY_TOLERANCE


def test_bad_requests_fail_clearly(tmp_path, capsys, shipped):
    cases = [
        (["export", "--out", str(tmp_path / "model.onnx"), "--format", "litert"], "must end in .tflite"),
        (["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.onnx")], "neither a run folder nor"),
    ]
    bare = tmp_path / "bare.keras"
    shipped.save(bare)
    cases.append((["export", str(bare), "--out", str(tmp_path / "m.onnx")], "give it with --release"))
    for argv, message in cases:
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    assert cli.main(["export", str(bare), "--out", str(tmp_path / "m.onnx"), "--release", "folder"]) == 0
    assert classify.load_classifier(tmp_path / "m.onnx").equalize
