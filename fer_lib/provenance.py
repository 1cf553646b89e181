"""Where and with what a number was made: commit, processor, package versions.

A run's manifest stores one such record per working session ("segment"); the
book prints them beside every figure that comes from a run.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from fer_lib import paths


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The processor's feature flags (Linux); empty where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


#: the x86 features that make bfloat16 matrix arithmetic native; without them it is emulated
BF16_FEATURES = ("avx512_bf16", "amx_bf16")


def native_bf16_features() -> list[str]:
    """The processor's native bfloat16 features (empty: bf16 is emulated, or this is not x86)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    return sorted(set(BF16_FEATURES) & cpu_flags())


def run_outputs() -> tuple[str, ...]:
    """The folders, from the repository root, that runs write into: their results and the
    shipped weights.

    They are tracked (the paper run is committed as it goes), so a resumed run always finds
    them changed; only changes elsewhere make the code it runs differ from the commit.
    """
    return paths.RESULTS_DIR, paths.WEIGHTS_DIR.relative_to(paths.repository_root()).as_posix()


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit, with '+dirty' when tracked files other than run outputs have changed."""
    root = root or paths.repository_root()
    outside_outputs = ["--", ":(top)", *(f":(top,exclude){path}" for path in run_outputs())]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", *outside_outputs],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def short_commit(commit: str) -> str:
    """A commit from :func:`git_commit` as people read it: seven digits, "+dirty" kept."""
    return commit[:7] + ("+dirty" if "dirty" in commit else "")


def segment_commits(segments: list[dict]) -> list[str]:
    """The short commits of training sessions, in the order the sessions started, each once."""
    ordered = sorted(segments, key=lambda seg: seg["start"])
    return list(dict.fromkeys(short_commit(seg["git_commit"]) for seg in ordered))


def environment() -> dict:
    """Hardware and package versions: what a reader needs to weigh a timing."""
    import keras

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
        "native_bf16": native_bf16_features(),
        "git_commit": git_commit(),
        **_backend_versions(keras.backend.backend()),
    }


def _backend_versions(backend: str) -> dict:
    if backend == "tensorflow":
        import tensorflow as tf

        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        return {"tensorflow": tf.__version__, "tf_threads": threads, "onednn": onednn_enabled()}
    module = importlib.import_module(backend)  # jax, torch, ...
    return {backend: getattr(module, "__version__", "unknown")}


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels (see fer_lib/__init__.py); None where it cannot say."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def counted(n: int, noun: str) -> str:
    """"1 session", "4 sessions": a count with its noun, for sentences true at any count."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def machine_text(env: dict) -> str:
    """"AMD EPYC, 2 cores (1 TensorFlow thread)": where an environment or a segment ran."""
    text = f"{env['cpu']}, {env['cores']} cores"
    if "tf_threads" in env:
        text += f" ({counted(env['tf_threads'], 'TensorFlow thread')})"
    return text


def software_text(env: dict) -> str:
    """"TensorFlow 2.21.0 (oneDNN), Keras 3.15.1", whichever backend Keras ran on; the kernels
    are named where the record says (records before 2026-12-07 do not)."""
    backend = env.get("keras_backend", "tensorflow")
    kernels = {True: " (oneDNN)", False: " (default kernels)"}.get(env.get("onednn"), "")
    return f"{BACKEND_NAMES.get(backend, backend)} {env.get(backend, 'unknown')}{kernels}, Keras {env['keras']}"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_benchmark_record(path: Path, numbers: dict, load_before: tuple[float, float, float]) -> None:
    """A benchmark's numbers as JSON at ``path``, with when, the command as it was run, the load average
    before and after (a busy machine slows every timing) and the machine (:func:`environment`)."""
    import json
    import sys

    record = {"date": now(), "command": " ".join(["python", *sys.argv]), **numbers,
              "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
              "environment": environment()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
