"""The paper's two CNNs (Tables II and III), built with backend-neutral Keras 3.

Both models take raw grey values in 0-255 with shape (48, 48, 1) and scale
them inside the model, so training, evaluation and the live pipeline all feed
the same thing. Layer names follow the paper's tables (``conv2d_1``,
``dense_3``, ...) so that a model summary reads like Table II or III, and
:func:`architecture_beside_paper` sets it beside the table's rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import layers

from fer_lib import paper
from fer_lib.paths import MODEL_B, WEIGHTS_DIR, shipped_file, shipped_models

INPUT_SHAPE = (paper.MODEL_INPUT_SIZE, paper.MODEL_INPUT_SIZE, 1)
NUM_CLASSES = len(paper.CLASSES)


@keras.saving.register_keras_serializable(package="fer_lib")
class BatchNormalization(layers.BatchNormalization):
    """Keras' batch normalization, with TensorFlow's fused kernel in training.

    Stock Keras 3 computes a 4-D batch normalization as several separate
    passes over the activations (moments, then normalise), which on a CPU
    doubles Model B's training step. On the TensorFlow backend, for
    channels-last 4-D inputs in training, this layer calls the fused kernel
    instead: one pass forward, one backward, the same mathematics. Weights,
    parameter count, saved format and every other case are Keras' own.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # In mixed precision the activations are bfloat16 and the kernel keeps
        # its scale, offset and statistics in float32, as Keras' own layer does.
        y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            scale=tf.cast(self.gamma, "float32"),
            offset=tf.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel reports the unbiased (n - 1) variance for the moving
        # average; Keras keeps the biased one. Undo Bessel's correction so the
        # moving statistics match stock Keras.
        shape = tf.shape(inputs)
        n = tf.cast(shape[0] * shape[1] * shape[2], batch_var.dtype)
        batch_var = batch_var * (n - 1.0) / n
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + batch_mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + batch_var * (1.0 - m))
        return tf.cast(y, self.compute_dtype)

    def _can_fuse(self, inputs, training, mask) -> bool:
        return (
            bool(training)
            and mask is None
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.center
            and self.scale
            and not self.synchronized
            and self.epsilon >= 1.001e-5  # the fused kernel's lower bound
        )


@keras.saving.register_keras_serializable(package="fer_lib")
class Dropout(layers.Dropout):
    """Keras' dropout, deciding keep or drop from 8 random bits per activation instead of 32.

    Keras draws one 32-bit random word per activation; in bfloat16 training on a CPU,
    drawing them is most of dropout's cost (``benchmarks/train_speed.py``). One byte
    decides exactly where the rate is a multiple of 1/256 (Model B's 0.25 and 0.5
    are): the masks are Bernoulli with the same rate and the kept activations get
    the same scale, but they come from a different random stream than Keras', so a
    run's history depends on which layer drew them (``TrainConfig.dropout_draw``).
    Other rates, a ``noise_shape``, inference and other backends are Keras' own.
    """

    def call(self, inputs, training=False):
        threshold = self.rate * 256
        if not (training and self.noise_shape is None and keras.backend.backend() == "tensorflow"
                and 0 < threshold == int(threshold)):
            return super().call(inputs, training=training)
        import tensorflow as tf

        # the seed as Keras' own dropout casts it for TensorFlow's stateless ops
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        shape = tf.shape(inputs)
        n = tf.reduce_prod(shape)
        words = tf.random.stateless_uniform([(n + 3) // 4], seed, minval=None, maxval=None, dtype=tf.uint32)
        random_bytes = tf.reshape(tf.reshape(tf.bitcast(words, tf.uint8), [-1])[:n], shape)
        keep = tf.cast(random_bytes >= int(threshold), inputs.dtype)
        return inputs * (keep * tf.constant(1 / (1 - self.rate), inputs.dtype))


#: Which dropout layer draws the masks: Keras' own (every committed run), or :class:`Dropout`.
DROPOUT_DRAWS = {"keras": layers.Dropout, "bytes": Dropout}


def _dropout_layer(draw: str) -> type:
    if draw not in DROPOUT_DRAWS:
        raise ValueError(f"dropout_draw must be one of {sorted(DROPOUT_DRAWS)}, got {draw!r}")
    return DROPOUT_DRAWS[draw]


def as_model_input(images: np.ndarray) -> np.ndarray:
    """Grey images (n, 48, 48), uint8 or float, as every model here takes them: float32
    grey values 0-255 with a channel axis, (n, 48, 48, 1)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[:2]:
        raise ValueError(f"expected grey images of shape (n, {INPUT_SHAPE[0]}, {INPUT_SHAPE[1]}), got {images.shape}")
    return images.astype(np.float32)[..., None]


#: Keras dtype policies by the names ``TrainConfig.precision`` uses.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def _conv_blocks(x, batch_norm: type | None, dropout: float, dropout_layer: type, dtype: str):
    """The four convolution blocks of Tables II and III: conv, (BN), ReLU, pool, (dropout)."""
    filters_and_kernels = zip(paper.HYPERPARAMETERS["filters"], paper.HYPERPARAMETERS["kernel_sizes"])
    for i, (filters, kernel) in enumerate(filters_and_kernels, start=1):
        x = layers.Conv2D(filters, kernel, padding="same", name=f"conv2d_{i}", dtype=dtype)(x)
        if batch_norm:
            x = batch_norm(name=f"batch_normalization_{i}", dtype=dtype)(x)
        x = layers.Activation("relu", name=f"activation_{i}", dtype=dtype)(x)
        x = layers.MaxPooling2D(2, name=f"max_pooling2d_{i}", dtype=dtype)(x)
        if dropout:
            x = dropout_layer(dropout, name=f"dropout_{i}", dtype=dtype)(x)
    return x


def _dense_blocks(x, batch_norm: type | None, dropout: float, dropout_layer: type, dtype: str):
    """Two hidden dense blocks: dense 64, (BN), ReLU, (dropout)."""
    n_conv = len(paper.HYPERPARAMETERS["filters"])
    for j in range(1, paper.HYPERPARAMETERS["hidden_dense_layers"] + 1):
        i = n_conv + j
        x = layers.Dense(paper.HYPERPARAMETERS["hidden_units"], name=f"dense_{j}", dtype=dtype)(x)
        if batch_norm:
            x = batch_norm(name=f"batch_normalization_{i}", dtype=dtype)(x)
        x = layers.Activation("relu", name=f"activation_{i}", dtype=dtype)(x)
        if dropout:
            x = dropout_layer(dropout, name=f"dropout_{i}", dtype=dtype)(x)
    return x


def cnn(
    batch_norm: bool,
    conv_dropout: float,
    dense_dropout: float,
    *,
    precision: str = "fp32",
    fused_batch_norm: bool = True,
    dropout_draw: str = "keras",
    name: str = "cnn",
) -> keras.Model:
    """The paper's four-convolution CNN with its two regularisers as switches.

    ``batch_norm`` adds batch normalization before every hidden activation; a
    dropout rate above 0 adds dropout after every pooling (``conv_dropout``) or
    hidden dense block (``dense_dropout``). ``precision="bf16"`` computes in
    bfloat16 with float32 weights (Keras' ``mixed_bfloat16``); the softmax stays
    float32, as Keras' mixed-precision guide requires. ``fused_batch_norm=False``
    uses stock Keras layers: the same model, slower on the CPU. ``dropout_draw="bytes"``
    draws the dropout masks from fewer random bits (:class:`Dropout`): cheaper, another stream.
    """
    for rate in (conv_dropout, dense_dropout):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rates must be in [0, 1), got {rate}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype, dropout_layer = PRECISIONS[precision], _dropout_layer(dropout_draw)
    norm = (BatchNormalization if fused_batch_norm else layers.BatchNormalization) if batch_norm else None
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale", dtype=dtype)(inputs)
    x = _conv_blocks(x, norm, conv_dropout, dropout_layer, dtype)
    x = layers.Flatten(name="flatten_1", dtype=dtype)(x)
    x = _dense_blocks(x, norm, dense_dropout, dropout_layer, dtype)
    n_hidden = paper.HYPERPARAMETERS["hidden_dense_layers"]
    n_conv = len(paper.HYPERPARAMETERS["filters"])
    x = layers.Dense(NUM_CLASSES, name=f"dense_{n_hidden + 1}", dtype=dtype)(x)
    outputs = layers.Activation("softmax", name=f"activation_{n_conv + n_hidden + 1}", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def model_a(precision: str = "fp32") -> keras.Model:
    """Model A (Table II): four convolution blocks and two dense layers, no BN, no dropout."""
    return cnn(False, 0.0, 0.0, precision=precision, name="model_a")


def model_b(
    conv_dropout: float = paper.CONV_DROPOUT,
    dense_dropout: float = paper.DENSE_DROPOUT,
    fused_batch_norm: bool = True,
    precision: str = "fp32",
    dropout_draw: str = "keras",
) -> keras.Model:
    """Model B (Table III): Model A with batch normalization before every
    activation and dropout after every pooling and every hidden dense block."""
    return cnn(True, conv_dropout, dense_dropout, precision=precision, fused_batch_norm=fused_batch_norm,
               dropout_draw=dropout_draw, name="model_b")


#: Model C's four stages: output channels of both convolutions and the dropout after the pooling
MODEL_C_STAGES: tuple[tuple[int, float], ...] = ((32, 0.1), (64, 0.2), (128, 0.3), (256, 0.4))
MODEL_C_HIDDEN_UNITS = 256


def model_c(precision: str = "fp32", dropout_draw: str = "keras") -> keras.Model:
    """Model C, the model beyond the paper (chapter 9): VGG-style stages of two 3x3
    convolutions each, every one followed by batch normalization and ReLU.

    Two small convolutions see as far as one 5x5 with fewer weights and one more
    non-linearity (Simonyan & Zisserman, 2015); that is what lifts single networks on
    FER-2013 into the low 70s (seven classes; Khaireddin et al., 2021). The widths stop
    at 256 so that an epoch fits minutes on two CPU cores; dropout grows with depth.
    Same input contract as Models A and B: grey values 0-255, (48, 48, 1).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype, dropout_layer = PRECISIONS[precision], _dropout_layer(dropout_draw)
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale", dtype=dtype)(inputs)
    for stage, (filters, rate) in enumerate(MODEL_C_STAGES, start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{stage}_{conv}", dtype=dtype)(x)
            x = BatchNormalization(name=f"bn_{stage}_{conv}", dtype=dtype)(x)
            x = layers.Activation("relu", name=f"relu_{stage}_{conv}", dtype=dtype)(x)
        x = layers.MaxPooling2D(2, name=f"pool_{stage}", dtype=dtype)(x)
        x = dropout_layer(rate, name=f"dropout_{stage}", dtype=dtype)(x)
    x = layers.Flatten(name="flatten", dtype=dtype)(x)
    x = layers.Dense(MODEL_C_HIDDEN_UNITS, use_bias=False, name="dense_hidden", dtype=dtype)(x)
    x = BatchNormalization(name="bn_hidden", dtype=dtype)(x)
    x = layers.Activation("relu", name="relu_hidden", dtype=dtype)(x)
    x = dropout_layer(0.5, name="dropout_hidden", dtype=dtype)(x)
    x = layers.Dense(NUM_CLASSES, name="logits", dtype=dtype)(x)
    outputs = layers.Activation("softmax", name="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="model_c")


def build_model(name: str, **kwargs) -> keras.Model:
    """Model by letter ("a", "b" or "c"), as the command line and profiles name them."""
    builders = {"a": model_a, "b": model_b, "c": model_c}
    key = name.lower().removeprefix("model_").removeprefix("model")
    if key not in builders:
        raise ValueError(f"unknown model {name!r}: expected 'a', 'b' or 'c'")
    return builders[key](**kwargs)


def count_params(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters, as Keras' summary counts them."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


# --- Beside Tables II and III, and the input size they imply (chapters 2 and 3) ------------
def params_at_input_size(model, size: int) -> dict[str, int]:
    """Parameters per layer of the same architecture fed ``size`` x ``size`` images: the
    tables' counts decide which input size the paper's models had."""
    clone = keras.models.clone_model(model, input_tensors=keras.Input((size, size, 1)))
    return {layer.name: layer.count_params() for layer in clone.layers} | {"total": clone.count_params()}


def architecture_table(model) -> pd.DataFrame:
    """Layer, type, output shape and parameters of a live model, as Keras' summary lists them."""
    rows = [(layer.name, type(layer).__name__, tuple(int(d) for d in layer.output.shape[1:]), layer.count_params())
            for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return pd.DataFrame(rows, columns=["layer", "type", "output shape", "parameters"])


def architecture_beside_paper(model, name: str) -> pd.DataFrame:
    """Our layers beside every row of the paper's table for model ``name``. ``agrees`` is False
    where shape or count differ, NaN where the paper has no row; ``in paper`` and
    ``shape printed`` say which rows the paper has and where it prints a shape."""
    ours = architecture_table(model).set_index("layer")
    theirs = pd.DataFrame(list(paper.ARCHITECTURE[name]), columns=["layer", "paper output shape",
                                                                  "paper parameters"]).set_index("layer")
    order = [*ours.index, *(layer for layer in theirs.index if layer not in ours.index)]
    table = ours.join(theirs, how="outer").loc[order]
    in_paper = table.index.isin(theirs.index)
    printed = table["paper output shape"].map(lambda s: isinstance(s, tuple))
    same_shape = [not p or o == t for o, t, p in zip(table["output shape"], table["paper output shape"], printed,
                                                     strict=True)]
    agrees = table["parameters"].eq(table["paper parameters"]) & np.array(same_shape)
    table["agrees"] = pd.Series(agrees, dtype=object).where(in_paper, np.nan).to_numpy()
    table["in paper"] = in_paper
    table["shape printed"] = printed
    return table


def param_counts_beside_paper(built: Mapping[str, keras.Model]) -> pd.DataFrame:
    """Total, trainable and non-trainable counts, ours beside the paper's printed ones, and the
    trainable count the paper's own total implies (its printed one is a typo in both tables)."""
    rows = {}
    for name, model in built.items():
        ours = count_params(model)
        rows[f"Model {name}"] = {
            "total (ours)": ours["total"], "total (paper)": paper.TOTAL_PARAMS[name],
            "trainable (ours)": ours["trainable"], "trainable (paper, printed)": paper.TRAINABLE_PARAMS_PRINTED[name],
            "trainable (paper, total minus non-trainable)": paper.TOTAL_PARAMS[name] - paper.NON_TRAINABLE_PARAMS[name],
            "non-trainable (ours)": ours["non_trainable"], "non-trainable (paper)": paper.NON_TRAINABLE_PARAMS[name],
        }
    return pd.DataFrame(rows).T


# --- The shipped models -------------------------------------------------------------
#: The paper's Model B as the package ships it (the reproduction chapters' model)
PRETRAINED = WEIGHTS_DIR / f"{MODEL_B}.keras"


class PretrainedModelError(ValueError):
    """The model file is missing, damaged or not the model it claims to be."""


def shipped_path(model: str | os.PathLike) -> Path:
    """A shipped model's Keras file by its name (``model_b``), or ``model`` itself as a path."""
    return shipped_file(model) if isinstance(model, str) and model in shipped_models() else Path(model)


def pretrained_metadata(model: str | os.PathLike = PRETRAINED) -> dict:
    """What a shipped model is: classes, the data release it was trained on
    (which decides the live pre-processing), epochs, accuracy, checksum, provenance."""
    meta_path = shipped_path(model).with_suffix(".json")
    if not meta_path.is_file():
        raise PretrainedModelError(f"{meta_path}: the model's metadata file is missing")
    try:
        return json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise PretrainedModelError(f"{meta_path}: not valid JSON ({err})") from err


def load_model(path: str | os.PathLike) -> keras.Model:
    """A saved Keras model, uncompiled, ready to predict; one clear error for a missing or
    damaged file (Keras raises many kinds)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedModelError(f"{path}: the model file is missing")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as err:
        raise PretrainedModelError(f"{path}: cannot be loaded as a Keras model ({type(err).__name__}: {err})") from err


def load_pretrained(model: str | os.PathLike = PRETRAINED) -> keras.Model:
    """A shipped model (by name, or its file; Model B of our paper run by default), ready to predict; no data,
    no training.

    Checks the file against its metadata (sha256), the class order and the
    input and output shapes, so that a wrong or damaged file fails here with a
    clear message rather than predicting nonsense later.
    """
    path = shipped_path(model)
    meta = pretrained_metadata(path)
    if not path.is_file():
        raise PretrainedModelError(f"{path}: the model file is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta.get("sha256"):
        raise PretrainedModelError(
            f"{path}: sha256 {digest[:16]}... does not match its metadata ({str(meta.get('sha256'))[:16]}...): "
            "the file is damaged or was replaced"
        )
    if tuple(meta.get("classes", ())) != paper.CLASSES:
        raise PretrainedModelError(f"{path}: class order {meta.get('classes')} is not {list(paper.CLASSES)}")
    network = load_model(path)
    if tuple(network.input_shape[1:]) != INPUT_SHAPE or tuple(network.output_shape[1:]) != (NUM_CLASSES,):
        raise PretrainedModelError(
            f"{path}: input {network.input_shape} / output {network.output_shape}, expected "
            f"(None, {', '.join(map(str, INPUT_SHAPE))}) / (None, {NUM_CLASSES})"
        )
    return network
