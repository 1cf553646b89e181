"""TensorFlow's oneDNN kernels against its default ones, for Models A, B and C, measured in one run.

    python benchmarks/onednn_speed.py [--steps 5] [--threads 1] [--precision fp32]

TensorFlow turns oneDNN on by default only on processors with AVX-512 VNNI, AVX-512 BF16 or AMX;
fer_lib turns it on everywhere (fer_lib/__init__.py). This measures what that choice is worth on
this machine, for what fer_lib does with TensorFlow: a training step (batch 128), a batch of faces
labelled at once (256, as the book evaluates) and one face per call (the peer table's timing; the
live pipeline runs on onnxruntime, which this does not touch). TensorFlow reads
TF_ENABLE_ONEDNN_OPTS once, when it loads, so each model and setting runs in a process of its own
(this script, with ``--child``). Printed per model and measure: the milliseconds of each setting
and their ratio (above 1: oneDNN is faster); the cores a training step kept busy (CPU time over
wall time: oneDNN runs on TensorFlow's own thread pool, so a faster step is not a wider one); and
whether the settings were what they claim (TensorFlow's own report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = ("a", "b", "c")
SETTINGS = {"default kernels": "0", "oneDNN": "1"}
MEASURES = ("training step", "batch, per face", "one face per call")


def child(model: str, steps: int, threads: int, precision: str) -> dict:
    """One model's training step and inference in this process, with whatever kernels TensorFlow loaded."""
    import keras
    import tensorflow as tf
    from train_speed import inference, ms_per_step  # this folder's benchmark of whole steps

    from fer_lib import models, paper, provenance

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(0)
    network = models.build_model(model, precision=precision)
    cpu, wall = time.process_time(), time.perf_counter()
    train_ms = ms_per_step(network, paper.HYPERPARAMETERS["batch_size"], steps)
    cores = (time.process_time() - cpu) / (time.perf_counter() - wall)
    labelled = inference(network)
    return {"training step": train_ms, "batch, per face": 1000 / labelled["batch images/s"],
            "one face per call": labelled["single image, compiled call ms"], "cores": cores,
            "onednn": provenance.onednn_enabled()}


def measure(model: str, setting: str, args: argparse.Namespace) -> dict:
    """Run :func:`child` in a fresh interpreter with TF_ENABLE_ONEDNN_OPTS set to ``setting``."""
    command = [sys.executable, __file__, "--child", model, "--steps", str(args.steps),
               "--threads", str(args.threads), "--precision", args.precision]
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.threads, args.precision)))
        return

    from fer_lib import provenance

    threads = provenance.counted(args.threads, "TensorFlow thread")
    print(f"{provenance.cpu_model()}, {os.cpu_count()} cores; {threads}, {args.precision}, "
          f"training: median of {args.steps} steps after two warm-up steps\n")
    print(f"{'model':<8}{'measure':<20}" + "".join(f"{name + ' ms':>20}" for name in SETTINGS)
          + f"{'ratio':>8}{'cores busy':>14}")
    honest = True
    for model in MODELS:
        result = {name: measure(model, setting, args) for name, setting in SETTINGS.items()}
        honest &= [r["onednn"] for r in result.values()] == [False, True]
        for measure_name in MEASURES:
            default, onednn = (r[measure_name] for r in result.values())
            busy = " / ".join(f"{r['cores']:.2f}" for r in result.values()) if measure_name == MEASURES[0] else ""
            times = f"{default:>20.2f}{onednn:>20.2f}{default / onednn:>8.2f}"
            print(f"{model.upper():<8}{measure_name:<20}{times}{busy:>14}")
    print("\nTensorFlow reports the kernels asked for: " + ("yes" if honest else "NO (the ratios compare nothing)"))

if __name__ == "__main__":
    main()
