"""Reading run folders: status, the latest weights of a run in progress, evaluation, shipping."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer_lib import checkpoints, runs, train


def smoke(model="b", **kw):
    return train.profile("smoke", model, **kw)


@pytest.mark.slow
def test_evaluate_and_ship_a_run(tmp_path, small_csv, small_data, capsys):
    from fer_lib import cli, models

    out = tmp_path / "run"
    train.fit(smoke(epochs=2), out, small_data, progress=False, stop_after=1)
    run = runs.load_run(out)
    assert (run.epochs_done, run.complete, run.status()) == (1, False, "epoch 1 of 2 (in progress)")

    assert cli.main(["evaluate", str(out), "--data", str(small_csv)]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["epochs"] == 1 and summary["n"] == 60 and len(summary["confusion"]) == 5
    assert sum(map(sum, summary["confusion"])) == 60
    assert "after 1 of 2 epochs" in capsys.readouterr().out

    status = runs.runs_status(tmp_path).set_index("run").loc[out.as_posix()]
    assert status["epochs"] == "1/2" and status["hours_left"] > 0
    (tmp_path / "peers").mkdir()  # a result with a manifest that is no run (fer-lib peers writes one)
    (tmp_path / "peers" / "manifest.json").write_text("{}")
    assert runs.runs_status(tmp_path)["run"].tolist() == [out.as_posix()]

    meta = runs.export_pretrained(out, tmp_path / "shipped.keras")
    assert (meta["epochs_trained"], meta["epochs_planned"], meta["complete"]) == (1, 2, False)
    shipped = models.load_pretrained(tmp_path / "shipped.keras")
    x = small_data.split("val").x[:4, ..., None].astype("float32")
    np.testing.assert_allclose(shipped.predict(x, verbose=0), run.latest()[0].predict(x, verbose=0), atol=1e-6)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        runs.load_run(tmp_path)


def test_latest_reads_a_checkpoint_being_replaced(tmp_path, small_data):
    out = tmp_path / "model_a"
    train.fit(train.profile("smoke", "a", epochs=2), out, small_data, progress=False, stop_after=1)
    r = runs.load_run(out)
    model, hist = r.latest()
    assert model.output_shape == (None, 5) and hist["epoch"].tolist() == [1]
    # the runner's crash window: checkpoint/ renamed away, the new one not yet in place
    (out / checkpoints.CHECKPOINT).rename(out / f"{checkpoints.CHECKPOINT}.old")
    model, hist = r.latest(attempts=1)
    assert hist["epoch"].tolist() == [1]
    shutil.rmtree(out / f"{checkpoints.CHECKPOINT}.old")
    with pytest.raises(FileNotFoundError, match="no loadable checkpoint"):
        r.latest(attempts=1)


@pytest.mark.slow
def test_ship_makes_a_run_a_shipped_model_loadable_by_name(tmp_path, small_data, monkeypatch, capsys):
    """`fer-lib ship` on a run that keeps its best epoch: Keras file, metadata, ONNX copy and contract, and the
    live pipeline loads it by its name (here into a stand-in for fer_lib/weights/)."""
    from fer_lib import cli, paths
    from fer_lib.live import classify
    from fer_lib.live.pipeline import Pipeline

    out = tmp_path / "run"
    train.fit(smoke("c", keep_best=True, epochs=2), out, small_data, progress=False)
    monkeypatch.setattr(paths, "WEIGHTS_DIR", tmp_path / "weights")
    assert cli.main(["ship", str(out)]) == 0
    assert "python -m fer_lib.card model_c" in capsys.readouterr().out
    assert paths.shipped_models() == ("model_c",)
    meta = classify.read_metadata(paths.shipped_file("model_c"))
    assert (meta["model"], meta["complete"], meta["config"]["keep_best"]) == ("model_c", True, True)
    contract = json.loads(classify.contract_path(paths.shipped_file("model_c", ".onnx")).read_text())
    assert contract["source"]["model"] == "model_c" and contract["release"] == meta["release"]
    pipeline = Pipeline.load("model_c")
    faces = small_data.split("val").x[:4]
    best = classify.FaceClassifier(runs.load_run(out).chosen()[0], release=meta["release"])
    np.testing.assert_allclose(pipeline.classifier.predict_proba(faces), best.predict_proba(faces), atol=1e-5)
    # a fresh clone has the run's history but not its best.keras: the shipped copy stands in for it
    (out / train.BEST_MODEL).unlink()
    assert runs.load_run(out).best_weights() == paths.shipped_file("model_c")
    again = classify.FaceClassifier(runs.load_run(out).chosen()[0], release=meta["release"])
    np.testing.assert_allclose(again.predict_proba(faces), best.predict_proba(faces), atol=1e-5)
    paths.shipped_file("model_c").with_suffix(".json").unlink()
    assert runs.load_run(out).best_weights() is None
    with pytest.raises(FileNotFoundError, match="nor a shipped model made from this run's best epoch"):
        runs.load_run(out).chosen()
