"""Provenance: the machine and software text, and which commit a run's code was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fer_lib import provenance


def test_environment_text_names_the_backend():
    on_tf = {"cpu": "X", "cores": 2, "tf_threads": 1, "keras_backend": "tensorflow", "tensorflow": "2.21.0",
             "keras": "3.15.1"}
    assert provenance.machine_text(on_tf) == "X, 2 cores (1 TensorFlow thread)"
    assert provenance.software_text(on_tf) == "TensorFlow 2.21.0, Keras 3.15.1"
    on_jax = {"cpu": "Y", "cores": 16, "keras_backend": "jax", "jax": "0.10.2", "keras": "3.15.1"}
    assert provenance.machine_text(on_jax) == "Y, 16 cores"
    assert provenance.software_text(on_jax) == "JAX 0.10.2, Keras 3.15.1"


def test_a_count_takes_its_noun_in_the_number_it_needs():
    assert [provenance.counted(n, "session") for n in (0, 1, 4)] == ["0 sessions", "1 session", "4 sessions"]
    assert provenance.machine_text({"cpu": "X", "cores": 2, "tf_threads": 2}) == "X, 2 cores (2 TensorFlow threads)"


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
    head = provenance.git_commit(tmp_path)
    assert len(head) == 40 and "dirty" not in head
    (tmp_path / "results/paper/history.csv").write_text("two\n")  # a resumed run's own output
    (tmp_path / "fer_lib/weights/model_b.json").write_text("two\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert provenance.git_commit(tmp_path) == head
    assert provenance.git_commit(tmp_path / "results") == head  # from anywhere in the checkout
    (tmp_path / "code.py").write_text("two\n")
    assert provenance.git_commit(tmp_path) == head + "+dirty"
    assert provenance.git_commit(tmp_path / "results") == head + "+dirty"


def test_segment_commits_are_in_the_order_the_sessions_started():
    segments = [{"start": "2026-01-03T00:00", "git_commit": "c" * 40},
                {"start": "2026-01-01T00:00", "git_commit": "b" * 40 + "+dirty"},
                {"start": "2026-01-02T00:00", "git_commit": "a" * 40},
                {"start": "2026-01-04T00:00", "git_commit": "b" * 40 + "+dirty"}]
    assert provenance.segment_commits(segments) == ["bbbbbbb+dirty", "aaaaaaa", "ccccccc"]


def test_the_record_names_tensorflows_kernels_where_it_knows_them():
    on_tf = {"keras_backend": "tensorflow", "tensorflow": "2.21.0", "keras": "3.15.1"}
    assert provenance.software_text({**on_tf, "onednn": True}) == "TensorFlow 2.21.0 (oneDNN), Keras 3.15.1"
    assert provenance.software_text({**on_tf, "onednn": False}) == "TensorFlow 2.21.0 (default kernels), Keras 3.15.1"


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_fer_lib_turns_onednn_on_unless_the_environment_says_otherwise(setting, expected):
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it loads: so a fresh interpreter imports fer_lib first."""
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = "import fer_lib, tensorflow; from fer_lib import provenance; print(provenance.environment()['onednn'])"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == expected


def test_benchmark_record_keeps_the_numbers_the_command_and_the_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/train_speed.py", "--steps", "30"])
    out = tmp_path / "results" / "speed.json"
    provenance.write_benchmark_record(out, {"ratios": {"b_over_a": 1.2}}, (1.0, 0.5, 0.25))
    record = json.loads(out.read_text())
    assert record["command"] == "python benchmarks/train_speed.py --steps 30"
    assert record["ratios"] == {"b_over_a": 1.2} and record["load_average"]["before"] == [1.0, 0.5, 0.25]
    assert record["environment"]["cores"] == os.cpu_count() and record["date"].startswith("20")
