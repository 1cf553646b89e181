"""The benchmark's arithmetic, checked against the models themselves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from fer_lib import models
from fer_lib.paths import MODEL_B, shipped_file

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    if str(BENCHMARKS) not in sys.path:  # as when a benchmark runs as a script: it imports its neighbours
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flop_count_matches_the_model_layers():
    """2 FLOP per multiply-add, from each layer's own kernel and output shape."""
    flop = 0
    for layer in models.model_a().layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            flop += 2 * h * w * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            flop += 2 * int(np.prod(layer.kernel.shape))
    assert _load("train_speed").forward_flop_per_image() == flop
    assert 0.41e9 < 3 * flop < 0.43e9  # "about 0.42 GFLOP per image" for a training step


def test_the_realtime_benchmark_sets_the_former_pipeline_beside_the_new_one():
    """benchmarks/realtime_speed.py measures the live study's new defaults against the settings before it."""
    from fer_lib.live import classify
    from fer_lib.live.pipeline import Pipeline

    bench = _load("realtime_speed")
    former = Pipeline(classify.load_classifier(shipped_file(MODEL_B, ".onnx")).model, release="csv", **bench.FORMER)
    assert (former.detector.min_size, former.detector.min_neighbors, former.search_moving) == (80, 5, False)
    assert not former.detector.dense_retry
    assert bench.GOAL_SMALL_FACES_FPS == 60


def test_the_profile_sorts_ops_by_the_layer_they_belong_to():
    kind = _load("step_profile").layer_kind
    assert kind("gradient_tape/model_b_1/conv2d_4_1/convolution/Conv2DBackpropInput", "Conv2DBackpropInput") == \
        "convolution"
    assert kind("model_b_1/batch_normalization_1_1/FusedBatchNormV3", "FusedBatchNormV3") == "batch normalization"
    assert kind("gradient_tape/model_b_1/dropout_1_1/stateless_dropout/SelectV2", "SelectV2") == "dropout"
    assert kind("adam/Sub_51", "Sub") == "optimizer (Adam)"
    assert kind("model_b_1/conv2d_1_1/Cast", "Cast") == "casts"
    assert kind("IDLE", "IDLE").startswith("other")
    # oneDNN's convolution, bias and ReLU in one op, named for the ReLU
    assert kind("model_a_1/activation_1_1/Relu", "_MklNativeFusedConv2D") == "convolution"
    assert kind("model_a_1/activation_1_1/Relu", "Relu") == "activation"


@pytest.mark.slow
def test_a_real_trace_finds_the_layers_each_model_has():
    """One traced step of Model A and of Model B: B's ops include batch normalization and dropout, A's do not."""
    bench = _load("step_profile")
    kinds = {name: {bench.layer_kind(row["operation"], row["type"]) for row in bench.profile_steps(name, "fp32", 1)}
             for name in ("a", "b")}
    assert {"convolution", "pooling", "dense", "optimizer (Adam)"} <= kinds["a"]
    assert not {"batch normalization", "dropout"} & kinds["a"]
    assert {"batch normalization", "dropout"} <= kinds["b"] - kinds["a"]


def test_interleaved_timing_gives_every_model_its_own_median():
    """Each model is built once, under the same seed, and gets a time of its own."""
    speed = _load("train_speed")
    built = []

    def build(name):
        def model():
            built.append((name, float(keras.random.uniform(()))))  # the seed each build starts from
            return models.model_a()
        return model

    ms = speed.interleaved_ms_per_step({"first": build("first"), "second": build("second")}, 4, 2)
    assert list(ms) == ["first", "second"] and all(v > 0 for v in ms.values())
    assert [name for name, _ in built] == ["first", "second"] and built[0][1] == built[1][1]
