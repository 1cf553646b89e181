"""Where a training step's time goes, layer by layer and op by op: TensorFlow's profiler over a few steps.

    python benchmarks/step_profile.py [--model b] [--precision bf16] [--steps 3] [--threads 2]

train_speed.py times whole steps and infers B's extra cost by adding batch normalization or
dropout to Model A; this reads it from a trace instead (issue 23 item 3: why B's bfloat16 step
costs 1.5-1.7x A's where bfloat16 is native). Printed: each kind of layer's share of the ops'
self time (forward and gradient together, casts counted apart), then the op types that take the
most, with the kernels TensorFlow ran (oneDNN ones are named ``_Mkl...``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from fer_lib import provenance  # before TensorFlow loads, so that fer_lib's choice of kernels holds

#: the layer kinds of Models A, B and C, by the scope that Keras gives their ops
LAYER_KINDS = {"conv2d": "convolution", "batch_normalization": "batch normalization",
               "max_pooling2d": "pooling", "dropout": "dropout", "activation": "activation", "dense": "dense",
               "rescale": "input scaling", "adam": "optimizer (Adam)"}


#: op types that belong to one kind of layer whatever their name: a fused op is named after the last layer it
#: absorbed (convolution, bias and ReLU fused are named for the ReLU), so its type says more than its name
OP_TYPE_KINDS = {"Conv2D": "convolution", "BatchNorm": "batch normalization", "MaxPool": "pooling",
                 "MatMul": "dense", "Cast": "casts"}


def layer_kind(op_name: str, op_type: str) -> str:
    """The kind of layer an op belongs to, from its type where that decides it, else from its name
    ("gradient_tape/model_b/dropout_4/..." is dropout); ops outside every layer get a row of their own."""
    for part, kind in OP_TYPE_KINDS.items():
        if part in op_type:
            return kind
    for scope in op_name.split("/"):
        kind = re.sub(r"(_\d+)+$", "", scope)
        if kind in LAYER_KINDS:
            return LAYER_KINDS[kind]
    return "other (loss, metrics, idle)"


def op_stats(xplane: Path) -> list[dict]:
    """The profiler's per-op table ("framework_op_stats") of one trace, as a list of rows."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    data, _ = _pywrap_profiler_plugin.xspace_to_tools_data([str(xplane)], "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    return [dict(zip(columns, [cell.get("v") for cell in row["c"]])) for row in table["rows"]]


def profile_steps(model_name: str, precision: str, steps: int) -> list[dict]:
    """Trace ``steps`` compiled training steps (after two warm-up steps) on random faces of the paper's batch."""
    import keras
    import tensorflow as tf
    from train_speed import compiled_step  # this folder's benchmark of whole steps

    from fer_lib import models, paper

    keras.utils.set_random_seed(0)
    step, data = compiled_step(models.build_model(model_name, precision=precision), paper.HYPERPARAMETERS["batch_size"])
    for _ in range(2):
        step(data)["loss"].numpy()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step(data)["loss"].numpy()
        tf.profiler.experimental.stop()
        return op_stats(next(Path(logdir).rglob("*.xplane.pb")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="b", choices=("a", "b", "c"))
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--top", type=int, default=12, help="op types to list")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rows = profile_steps(args.model, args.precision, args.steps)
    by_kind, by_type = collections.Counter(), collections.Counter()
    for row in rows:
        ms = row["total_self_time"] / 1000 / args.steps
        by_kind[layer_kind(row["operation"], row["type"])] += ms
        by_type[row["type"]] += ms
    total = sum(by_kind.values())
    bf16 = ", ".join(provenance.native_bf16_features()) or "none: bf16 is emulated"
    print(f"Model {args.model.upper()}, {args.precision}, {provenance.cpu_model()} (native bf16: {bf16}), "
          f"{provenance.counted(args.threads, 'thread')}, oneDNN {provenance.onednn_enabled()}: "
          f"{total:.0f} ms of op self time per step\n")
    for title, counter in (("layer kind", by_kind), ("op type", by_type)):
        print(f"{title:<44}{'ms/step':>10}{'share':>8}")
        for name, ms in counter.most_common(None if counter is by_kind else args.top):
            print(f"{name:<44}{ms:>10.1f}{100 * ms / total:>7.1f}%")
        print()


if __name__ == "__main__":
    main()
