"""The runner on a synthesized data set: determinism, exact resume after SIGKILL, provenance."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from fer_lib import checkpoints, cli, data, models, provenance, runs, train

RESULT_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]




def smoke(model="b", **kw):
    return train.profile("smoke", model, **kw)


def test_profiles():
    paper_b = train.profile("paper", "b")
    assert (paper_b.epochs, paper_b.batch_size, paper_b.learning_rate, paper_b.subset) == (200, 128, 1e-3, None)
    assert train.profile("paper", "a").epochs == 100
    assert train.profile("smoke", "a", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown profile"):
        train.profile("fast")
    with pytest.raises(ValueError, match="model"):
        train.TrainConfig(model="d")


def test_config_resolves_the_regularisers():
    assert train.TrainConfig(model="a").architecture() == {"batch_norm": False, "conv_dropout": 0.0,
                                                          "dense_dropout": 0.0}
    assert train.TrainConfig(model="b").architecture() == {"batch_norm": True, "conv_dropout": 0.25,
                                                          "dense_dropout": 0.5}
    dropout_only = train.TrainConfig(model="a", conv_dropout=0.25, dense_dropout=0.5)
    assert dropout_only.architecture()["batch_norm"] is False and not dropout_only.is_paper_model()
    assert train.TrainConfig(model="b", conv_dropout=0.25).is_paper_model()
    for bad in ({"precision": "fp16"}, {"train_fraction": 0.0}, {"train_fraction": 1.5}, {"conv_dropout": 1.0},
                {"dropout_draw": "bits"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            train.TrainConfig(**bad)


def test_manifests_from_before_the_switches_keep_model_a_without_dropout():
    """The paper run's manifests predate the precision field and list dropout rates Model A never used."""
    old = {"model": "a", "epochs": 100, "seed": 0, "conv_dropout": 0.25, "dense_dropout": 0.5, "profile": "paper"}
    assert train.config_from_manifest(old).architecture()["conv_dropout"] == 0.0
    assert train.config_from_manifest(old).dropout_draw == "keras"  # every run before models.Dropout
    new = {**old, "precision": "bf16"}
    assert train.config_from_manifest(new).architecture()["conv_dropout"] == 0.25


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(provenance.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2", "avx512f"})
    with pytest.raises(train.EmulatedPrecisionError, match=r"lacks avx512_bf16 and amx_bf16.*--allow-emulated"):
        train.check_precision("bf16")
    with pytest.warns(RuntimeWarning, match="about 8x slower"):
        train.check_precision("bf16", allow_emulated=True)
    train.check_precision("fp32")
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert provenance.native_bf16_features() == ["amx_bf16"]
    train.check_precision("bf16")  # native: nothing raised, nothing warned (filterwarnings would not hide it)


def test_study_run_refuses_emulated_bf16_before_loading_data(monkeypatch, capsys):
    """The guard answers at once: no data set is loaded, no run folder is made."""
    monkeypatch.setattr(provenance.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(data, "load_fer2013", lambda *a, **k: pytest.fail("the data was loaded"))
    assert cli.main(["study", "run", "3", "--no-progress"]) != 0
    assert "lacks avx512_bf16 and amx_bf16" in capsys.readouterr().err


def test_model_c_and_its_recipe_are_validated():
    beyond = train.profile("beyond", "c")
    assert (beyond.augment, beyond.label_smoothing, beyond.schedule, beyond.keep_best) == (True, 0.1, "cosine", True)
    with pytest.raises(ValueError, match="profile 'paper' has no model 'c'"):
        train.profile("paper", "c")
    with pytest.raises(ValueError, match="Model C's regularisers"):
        train.TrainConfig(model="c", conv_dropout=0.5)
    for bad in ({"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"schedule": "step"}, {"model": "d"}):
        with pytest.raises(ValueError):
            train.TrainConfig(**bad)
    assert not beyond.is_paper_model()


@pytest.mark.slow
def test_the_recipe_trains_model_c_and_resumes_exactly(tmp_path, small_data):
    """Augmented images, smoothed targets and the cosine schedule all resume where they stopped;
    the best epoch's weights are kept beside the final ones."""
    config = smoke("c", augment=True, label_smoothing=0.1, schedule="cosine", keep_best=True, epochs=3)
    whole = train.fit(config, tmp_path / "whole", small_data, progress=False)
    train.fit(config, tmp_path / "split", small_data, progress=False, stop_after=1)
    resumed = train.fit(config, tmp_path / "split", small_data, progress=False)
    pd.testing.assert_frame_equal(pd.DataFrame(whole)[RESULT_COLUMNS], pd.DataFrame(resumed)[RESULT_COLUMNS])
    best = keras.models.load_model(tmp_path / "whole" / train.BEST_MODEL)
    assert best.name == "model_c" and best.output_shape == (None, 5)
    # shipping such a run ships the best epoch's weights and says which epoch that was
    meta = runs.export_pretrained(tmp_path / "whole", tmp_path / "shipped.keras")
    history = pd.DataFrame(whole)
    assert meta["epoch"] == int(history.loc[history["val_accuracy"].idxmax(), "epoch"])
    assert meta["val_accuracy"] == round(float(history["val_accuracy"].max()), 4) and meta["complete"]
    x = small_data.split("val").x[:4, ..., None].astype("float32")
    np.testing.assert_allclose(models.load_pretrained(tmp_path / "shipped.keras").predict(x, verbose=0),
                               best.predict(x, verbose=0), atol=1e-6)
    plain = train.fit(smoke("c", epochs=3), tmp_path / "plain", small_data, progress=False)
    assert plain[0]["loss"] != whole[0]["loss"]  # the recipe changes what is trained
    assert not (tmp_path / "plain" / train.BEST_MODEL).exists()


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = train.epoch_order(100, seed=0, epoch=5)
    np.testing.assert_array_equal(a, train.epoch_order(100, seed=0, epoch=5))
    assert not np.array_equal(a, train.epoch_order(100, seed=0, epoch=6))
    assert not np.array_equal(a, train.epoch_order(100, seed=1, epoch=5))
    assert sorted(a) == list(range(100))


@pytest.mark.slow
def test_same_seed_same_history(tmp_path, small_data):
    h1 = train.fit(smoke(), tmp_path / "one", small_data, progress=False)
    h2 = train.fit(smoke(), tmp_path / "two", small_data, progress=False)
    assert [r["epoch"] for r in h1] == [1, 2]
    t1, t2 = pd.DataFrame(h1)[RESULT_COLUMNS], pd.DataFrame(h2)[RESULT_COLUMNS]
    pd.testing.assert_frame_equal(t1, t2)
    h3 = train.fit(smoke(seed=1), tmp_path / "three", small_data, progress=False)
    assert h3[0]["loss"] != h1[0]["loss"]


@pytest.mark.slow
def test_other_backends_loop_gives_the_same_history(tmp_path, small_data, monkeypatch):
    """JAX and PyTorch train through Keras' own fit() over our epoch order: on
    TensorFlow that path must give what the compiled steps give."""
    compiled = train.fit(smoke(), tmp_path / "compiled", small_data, progress=False)
    monkeypatch.setattr(train, "_step_functions", lambda model: (None, None))
    generic = train.fit(smoke(), tmp_path / "generic", small_data, progress=False)
    # The two graphs differ, and oneDNN may pick other kernels for them: on an Intel Sapphire Rapids
    # the second epoch's loss differed by 1.8e-4 (relative); on AMD EPYC by less than 1e-4.
    pd.testing.assert_frame_equal(pd.DataFrame(compiled)[RESULT_COLUMNS], pd.DataFrame(generic)[RESULT_COLUMNS],
                                  rtol=1e-3)


def test_run_folder_contents(tmp_path, small_data):
    out = tmp_path / "run"
    train.fit(smoke("a"), out, small_data, progress=False)
    history = runs.read_history(out)
    assert list(history.columns) == list(train.HISTORY_COLUMNS) and len(history) == 2
    assert (history["ms_per_step"] > 0).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["model"] == "a" and manifest["config"]["seed"] == 0
    assert manifest["data"]["sha256"] == small_data.checksum
    segment = manifest["segments"][0]
    for key in ("cpu", "cores", "tensorflow", "keras", "git_commit", "start", "end", "wall_seconds"):
        assert key in segment
    final = keras.models.load_model(out / checkpoints.FINAL_MODEL)
    assert getattr(final, "optimizer", None) is None  # weights only, no optimizer state
    assert (out / checkpoints.FINAL_MODEL).stat().st_size < 10e6


def test_predictions_at_the_best_and_last_epoch(tmp_path, small_data):
    out = tmp_path / "run"
    history = pd.DataFrame(train.fit(smoke(epochs=3), out, small_data, progress=False))
    table = runs.read_predictions(out)
    assert set(table["split"]) == {"val", "test"}
    val = table[table["split"] == "val"]
    assert len(val) == len(small_data.split("val")) and (val["label"].to_numpy() == small_data.split("val").y).all()
    best_epoch = int(history.loc[history["val_accuracy"].idxmax(), "epoch"])
    assert (table["best_epoch"] == best_epoch).all()
    assert (val["best"] == val["label"]).mean() == pytest.approx(history["val_accuracy"].max(), abs=1e-6)
    assert (val["last"] == val["label"]).mean() == pytest.approx(history["val_accuracy"].iloc[-1], abs=1e-6)


def test_train_fraction_halves_the_training_split(tmp_path, small_data):
    config = smoke(subset=None, train_fraction=0.5, epochs=1)
    splits = train._splits(config, small_data)
    assert len(splits["train"]) == round(0.5 * len(small_data.split("train")))
    assert len(splits["val"]) == len(small_data.split("val"))
    again = train._splits(config, small_data)
    np.testing.assert_array_equal(splits["train"].ids, again["train"].ids)
    other_seed = train._splits(smoke(subset=None, train_fraction=0.5, epochs=1, seed=1), small_data)
    assert not np.array_equal(splits["train"].ids, other_seed["train"].ids)


def test_a_run_folder_in_use_is_refused_with_its_holder(tmp_path, small_data):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(checkpoints.RunInUseError, match=rf"in use by process {holder.pid}"):
            train.fit(smoke(), out, small_data, progress=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock went with it, and the run starts
    assert len(train.fit(smoke(epochs=1), out, small_data, progress=False)) == 1


#: Holds a run folder's lock the way a training process does, until killed.
HOLD_LOCK = """
import sys, time
from pathlib import Path
from fer_lib import checkpoints

with checkpoints.locked(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_run_restarted_without_its_checkpoint_forgets_the_lost_sessions(tmp_path, small_data):
    """A machine that lost the local checkpoint starts the run again: the manifest must not keep
    the sessions whose epochs are gone."""
    train.fit(smoke(epochs=2), tmp_path, small_data, progress=False, stop_after=1)
    shutil.rmtree(tmp_path / checkpoints.CHECKPOINT)
    train.fit(smoke(epochs=2), tmp_path, small_data, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [(s["first_epoch"], s["last_epoch"]) for s in manifest["segments"]] == [(1, 2)]
    assert len(runs.read_history(tmp_path)) == 2


def test_changed_settings_refuse_to_resume(tmp_path, small_data):
    train.fit(smoke(), tmp_path, small_data, progress=False, stop_after=1)
    with pytest.raises(ValueError, match="other settings"):
        train.fit(smoke(seed=3), tmp_path, small_data, progress=False)


def test_other_data_refuses_to_resume(tmp_path, small_data):
    """The folder release (or another file) under a run of the CSV would train one network on two data sets."""
    train.fit(smoke(), tmp_path, small_data, progress=False, stop_after=1)
    other = dataclasses.replace(small_data, release="folder", checksum="0" * 64)
    with pytest.raises(ValueError, match=r"trained on the csv release .* not on the folder release"):
        train.fit(smoke(), tmp_path, other, progress=False)
    assert len(runs.read_history(tmp_path)) == 1  # nothing written
    train.fit(smoke(), tmp_path, small_data, progress=False, stop_after=2)  # the same data resumes


@pytest.mark.slow
def test_stop_after_and_resume_in_process(tmp_path, small_data):
    whole = train.fit(smoke(epochs=3), tmp_path / "whole", small_data, progress=False)
    train.fit(smoke(epochs=3), tmp_path / "parts", small_data, progress=False, stop_after=1)
    assert len(runs.read_history(tmp_path / "parts")) == 1
    parts = train.fit(smoke(epochs=3), tmp_path / "parts", small_data, progress=False)
    pd.testing.assert_frame_equal(pd.DataFrame(whole)[RESULT_COLUMNS], pd.DataFrame(parts)[RESULT_COLUMNS])


def _train_command(csv, out, epochs, precision="fp32", dropout_draw="keras"):
    return [sys.executable, "-m", "fer_lib", "train", "--profile", "smoke", "--model", "b", "--epochs", str(epochs),
            "--data", str(csv), "--out", str(out), "--no-progress", "--precision", precision,
            "--dropout-draw", dropout_draw,
            *(["--allow-emulated"] if precision == "bf16" else [])]


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "dropout_draw"), [("fp32", "keras"), ("bf16", "keras"), ("bf16", "bytes")])
def test_resume_after_sigkill_mid_epoch_gives_the_same_history(tmp_path, small_csv, precision, dropout_draw):
    epochs = 4
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    subprocess.run(_train_command(small_csv, tmp_path / "whole", epochs, precision, dropout_draw), check=True,
                   env=env, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_command(small_csv, out, epochs, precision, dropout_draw), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history, wait = out / "history.csv", 900  # seconds: emulated bf16 on a busy machine is slow
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run ended before it could be killed"
    if not history.exists() or len(runs.read_history(out)) < 2:
        proc.kill()
        pytest.fail(f"the run did not finish 2 epochs in {wait} s, so the test could not kill it mid-run")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(runs.read_history(out))
    assert 2 <= done_before < epochs

    subprocess.run(_train_command(small_csv, out, epochs, precision, dropout_draw), check=True, env=env,
                   capture_output=True)
    whole, resumed = runs.read_history(tmp_path / "whole"), runs.read_history(out)
    assert len(resumed) == epochs
    pd.testing.assert_frame_equal(whole[RESULT_COLUMNS], resumed[RESULT_COLUMNS], rtol=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["first_epoch"] for s in manifest["segments"]] == [1, done_before + 1]
    assert (manifest["config"]["precision"], manifest["config"]["dropout_draw"]) == (precision, dropout_draw)
    pd.testing.assert_frame_equal(runs.read_predictions(tmp_path / "whole"), runs.read_predictions(out))


#: Trains on JAX in a process where TensorFlow cannot be imported, as on the accelerator image.
JAX_RUN = """
import importlib.abc, json, pathlib, sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, NoTensorFlow())  # any import of TensorFlow now fails
import numpy as np
from fer_lib import readers, runs, train

csv, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
fer = readers.read_csv_release(csv, progress=False)
config = train.profile("smoke", "b", epochs=2)
whole = train.fit(config, out / "whole", fer, progress=False)
train.fit(config, out / "parts", fer, progress=False, stop_after=1)
parts = train.fit(config, out / "parts", fer, progress=False)
runs.export_pretrained(out / "whole", out / "shipped.keras")
x = fer.split("val").x[:8, ..., None].astype("float32")
np.save(out / "predicted.npy", np.asarray(runs.load_run(out / "whole").latest()[0].predict(x, verbose=0)))
print(json.dumps({"whole": whole, "parts": parts}))
"""


@pytest.mark.slow
def test_the_jax_backend_trains_resumes_and_ships_a_model_tensorflow_loads(tmp_path, small_csv, small_data):
    from fer_lib import models

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", JAX_RUN, str(small_csv), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    pd.testing.assert_frame_equal(pd.DataFrame(result["whole"])[RESULT_COLUMNS],
                                  pd.DataFrame(result["parts"])[RESULT_COLUMNS])
    segment = runs.load_run(tmp_path / "whole").manifest["segments"][0]
    assert segment["keras_backend"] == "jax" and "jax" in segment and "tensorflow" not in segment
    assert "JAX" in provenance.software_text(segment)
    shipped = models.load_pretrained(tmp_path / "shipped.keras")  # here, on TensorFlow
    x = small_data.split("val").x[:8, ..., None].astype("float32")
    np.testing.assert_allclose(shipped.predict(x, verbose=0), np.load(tmp_path / "predicted.npy"), atol=1e-4)




@pytest.mark.slow
def test_train_command_switches_the_recipes_augmentation_off(tmp_path, small_csv):
    """The ablation of chapter 9: the beyond profile without augmentation, everything else the same."""
    for flag, expected in (([], True), (["--no-augment"], False)):
        out = tmp_path / f"augment_{expected}"
        argv = ["train", "--model", "c", "--profile", "beyond", "--epochs", "1", "--data", str(small_csv),
                "--out", str(out), "--no-progress", *flag]
        assert cli.main(argv) == 0
        config = json.loads((out / "manifest.json").read_text())["config"]
        assert config["augment"] is expected and config["label_smoothing"] == 0.1 and config["schedule"] == "cosine"
