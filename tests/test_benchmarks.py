"""The benchmark's arithmetic, checked against the models themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from fer_lib import models

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
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
