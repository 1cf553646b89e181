"""The runner on a synthesized data set: determinism, exact resume after SIGKILL, provenance."""

from __future__ import annotations

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
from conftest import tiny_rows, write_csv

from fer_lib import data, train

ROWS_PER_CLASS = {"Training": 48, "PublicTest": 4, "PrivateTest": 12}
RESULT_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("small") / "fer2013.csv", tiny_rows(ROWS_PER_CLASS, seed=1))


@pytest.fixture(scope="module")
def small_data(small_csv):
    return data.read_csv_release(small_csv, progress=False)


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
        train.TrainConfig(model="c")


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = train.epoch_order(100, seed=0, epoch=5)
    np.testing.assert_array_equal(a, train.epoch_order(100, seed=0, epoch=5))
    assert not np.array_equal(a, train.epoch_order(100, seed=0, epoch=6))
    assert not np.array_equal(a, train.epoch_order(100, seed=1, epoch=5))
    assert sorted(a) == list(range(100))


def test_same_seed_same_history(tmp_path, small_data):
    h1 = train.fit(smoke(), tmp_path / "one", small_data, progress=False)
    h2 = train.fit(smoke(), tmp_path / "two", small_data, progress=False)
    assert [r["epoch"] for r in h1] == [1, 2]
    t1, t2 = pd.DataFrame(h1)[RESULT_COLUMNS], pd.DataFrame(h2)[RESULT_COLUMNS]
    pd.testing.assert_frame_equal(t1, t2)
    h3 = train.fit(smoke(seed=1), tmp_path / "three", small_data, progress=False)
    assert h3[0]["loss"] != h1[0]["loss"]


def test_other_backends_loop_gives_the_same_history(tmp_path, small_data, monkeypatch):
    """JAX and PyTorch train through Keras' own fit() over our epoch order: on
    TensorFlow that path must give what the compiled steps give."""
    compiled = train.fit(smoke(), tmp_path / "compiled", small_data, progress=False)
    monkeypatch.setattr(train, "_step_functions", lambda model: (None, None))
    generic = train.fit(smoke(), tmp_path / "generic", small_data, progress=False)
    pd.testing.assert_frame_equal(pd.DataFrame(compiled)[RESULT_COLUMNS], pd.DataFrame(generic)[RESULT_COLUMNS],
                                  rtol=1e-4)


def test_run_folder_contents(tmp_path, small_data):
    out = tmp_path / "run"
    train.fit(smoke("a"), out, small_data, progress=False)
    history = train.read_history(out)
    assert list(history.columns) == list(train.HISTORY_COLUMNS) and len(history) == 2
    assert (history["ms_per_step"] > 0).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["model"] == "a" and manifest["config"]["seed"] == 0
    assert manifest["data"]["sha256"] == small_data.checksum
    segment = manifest["segments"][0]
    for key in ("cpu", "cores", "tensorflow", "keras", "git_commit", "start", "end", "wall_seconds"):
        assert key in segment
    final = keras.models.load_model(out / train.FINAL_MODEL)
    assert getattr(final, "optimizer", None) is None  # weights only, no optimizer state
    assert (out / train.FINAL_MODEL).stat().st_size < 10e6


def test_changed_settings_refuse_to_resume(tmp_path, small_data):
    train.fit(smoke(), tmp_path, small_data, progress=False, stop_after=1)
    with pytest.raises(ValueError, match="other settings"):
        train.fit(smoke(seed=3), tmp_path, small_data, progress=False)


def test_stop_after_and_resume_in_process(tmp_path, small_data):
    whole = train.fit(smoke(epochs=3), tmp_path / "whole", small_data, progress=False)
    train.fit(smoke(epochs=3), tmp_path / "parts", small_data, progress=False, stop_after=1)
    assert len(train.read_history(tmp_path / "parts")) == 1
    parts = train.fit(smoke(epochs=3), tmp_path / "parts", small_data, progress=False)
    pd.testing.assert_frame_equal(pd.DataFrame(whole)[RESULT_COLUMNS], pd.DataFrame(parts)[RESULT_COLUMNS])


def _train_command(csv, out, epochs):
    return [sys.executable, "-m", "fer_lib", "train", "--profile", "smoke", "--model", "b", "--epochs", str(epochs),
            "--data", str(csv), "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_gives_the_same_history(tmp_path, small_csv):
    epochs = 4
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(_train_command(small_csv, tmp_path / "whole", epochs), check=True, env=env, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_command(small_csv, out, epochs), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        history = out / "history.csv"
        if history.exists() and len(history.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(train.read_history(out))
    assert 2 <= done_before < epochs

    subprocess.run(_train_command(small_csv, out, epochs), check=True, env=env, capture_output=True)
    whole, resumed = train.read_history(tmp_path / "whole"), train.read_history(out)
    assert len(resumed) == epochs
    pd.testing.assert_frame_equal(whole[RESULT_COLUMNS], resumed[RESULT_COLUMNS], rtol=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["first_epoch"] for s in manifest["segments"]] == [1, done_before + 1]


def test_evaluate_and_ship_a_run(tmp_path, small_csv, small_data, capsys):
    from fer_lib import cli, models

    out = tmp_path / "run"
    train.fit(smoke(epochs=2), out, small_data, progress=False, stop_after=1)
    run = train.load_run(out)
    assert (run.epochs_done, run.complete, run.status()) == (1, False, "epoch 1 of 2 (in progress)")

    assert cli.main(["evaluate", str(out), "--data", str(small_csv)]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["epochs"] == 1 and summary["n"] == 60 and len(summary["confusion"]) == 5
    assert sum(map(sum, summary["confusion"])) == 60
    assert "after 1 of 2 epochs" in capsys.readouterr().out

    status = train.runs_status(tmp_path).set_index("run").loc[out.as_posix()]
    assert status["epochs"] == "1/2" and status["hours_left"] > 0

    meta = train.export_pretrained(out, tmp_path / "shipped.keras")
    assert (meta["epochs_trained"], meta["epochs_planned"], meta["complete"]) == (1, 2, False)
    shipped = models.load_pretrained(tmp_path / "shipped.keras")
    x = small_data.split("val").x[:4, ..., None].astype("float32")
    np.testing.assert_allclose(shipped.predict(x, verbose=0), run.latest()[0].predict(x, verbose=0), atol=1e-6)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing"):
        train.load_run(tmp_path)


def test_latest_reads_a_checkpoint_being_replaced(tmp_path, small_data):
    out = tmp_path / "model_a"
    train.fit(train.profile("smoke", "a", epochs=2), out, small_data, progress=False, stop_after=1)
    r = train.load_run(out)
    model, hist = r.latest()
    assert model.output_shape == (None, 5) and hist["epoch"].tolist() == [1]
    # the runner's crash window: checkpoint/ renamed away, the new one not yet in place
    (out / train.CHECKPOINT).rename(out / f"{train.CHECKPOINT}.old")
    model, hist = r.latest(attempts=1)
    assert hist["epoch"].tolist() == [1]
    shutil.rmtree(out / f"{train.CHECKPOINT}.old")
    with pytest.raises(FileNotFoundError, match="no loadable checkpoint"):
        r.latest(attempts=1)


#: Trains on JAX in a process where TensorFlow cannot be imported, as on the accelerator image.
JAX_RUN = """
import importlib.abc, json, pathlib, sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, NoTensorFlow())  # any import of TensorFlow now fails
import numpy as np
from fer_lib import data, train

csv, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
fer = data.read_csv_release(csv, progress=False)
config = train.profile("smoke", "b", epochs=2)
whole = train.fit(config, out / "whole", fer, progress=False)
train.fit(config, out / "parts", fer, progress=False, stop_after=1)
parts = train.fit(config, out / "parts", fer, progress=False)
train.export_pretrained(out / "whole", out / "shipped.keras")
x = fer.split("val").x[:8, ..., None].astype("float32")
np.save(out / "predicted.npy", np.asarray(train.load_run(out / "whole").latest()[0].predict(x, verbose=0)))
print(json.dumps({"whole": whole, "parts": parts}))
"""


@pytest.mark.slow
def test_the_jax_backend_trains_resumes_and_ships_a_model_tensorflow_loads(tmp_path, small_csv, small_data):
    from fer_lib import models

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", JAX_RUN, str(small_csv), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    pd.testing.assert_frame_equal(pd.DataFrame(runs["whole"])[RESULT_COLUMNS],
                                  pd.DataFrame(runs["parts"])[RESULT_COLUMNS])
    segment = train.load_run(tmp_path / "whole").manifest["segments"][0]
    assert segment["keras_backend"] == "jax" and "jax" in segment and "tensorflow" not in segment
    assert "JAX" in train.software_text(segment)
    shipped = models.load_pretrained(tmp_path / "shipped.keras")  # here, on TensorFlow
    x = small_data.split("val").x[:8, ..., None].astype("float32")
    np.testing.assert_allclose(shipped.predict(x, verbose=0), np.load(tmp_path / "predicted.npy"), atol=1e-4)


def test_environment_text_names_the_backend():
    on_tf = {"cpu": "X", "cores": 2, "tf_threads": 1, "keras_backend": "tensorflow", "tensorflow": "2.21.0",
             "keras": "3.15.1"}
    assert train.machine_text(on_tf) == "X, 2 cores (1 TensorFlow thread)"
    assert train.software_text(on_tf) == "TensorFlow 2.21.0, Keras 3.15.1"
    on_jax = {"cpu": "Y", "cores": 16, "keras_backend": "jax", "jax": "0.10.2", "keras": "3.15.1"}
    assert (train.machine_text(on_jax), train.software_text(on_jax)) == ("Y, 16 cores", "JAX 0.10.2, Keras 3.15.1")


def test_git_commit_is_dirty_for_code_changes_but_not_for_run_outputs(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    for path in ("code.py", "results/paper/history.csv", "fer_lib/weights/model_b.json"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("one\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    head = train.git_commit(tmp_path)
    assert len(head) == 40 and "dirty" not in head
    (tmp_path / "results/paper/history.csv").write_text("two\n")  # a resumed run's own output
    (tmp_path / "fer_lib/weights/model_b.json").write_text("two\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert train.git_commit(tmp_path) == head
    assert train.git_commit(tmp_path / "results") == head  # from anywhere in the checkout
    (tmp_path / "code.py").write_text("two\n")
    assert train.git_commit(tmp_path) == head + "+dirty"
    assert train.git_commit(tmp_path / "results") == head + "+dirty"


def test_segment_commits_are_in_the_order_the_sessions_started():
    segments = [{"start": "2026-01-03T00:00", "git_commit": "c" * 40},
                {"start": "2026-01-01T00:00", "git_commit": "b" * 40 + "+dirty"},
                {"start": "2026-01-02T00:00", "git_commit": "a" * 40},
                {"start": "2026-01-04T00:00", "git_commit": "b" * 40 + "+dirty"}]
    assert train.segment_commits(segments) == ["bbbbbbb+dirty", "aaaaaaa", "ccccccc"]
