"""The paper's two CNNs (Tables II and III), built with backend-neutral Keras 3.

Both models take raw grey values in 0-255 with shape (48, 48, 1) and scale
them inside the model, so training, evaluation and the live pipeline all feed
the same thing. Layer names follow the paper's tables (``conv2d_1``,
``dense_3``, ...) so that a model summary reads like Table II or III.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

from fer_lib import paper
from fer_lib.paths import WEIGHTS_DIR
from fer_lib.train import CONV_DROPOUT, DENSE_DROPOUT  # Model B's rates live with the training config

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


def as_model_input(images: np.ndarray) -> np.ndarray:
    """Grey images (n, 48, 48), uint8 or float, as every model here takes them: float32
    grey values 0-255 with a channel axis, (n, 48, 48, 1)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != INPUT_SHAPE[:2]:
        raise ValueError(f"expected grey images of shape (n, {INPUT_SHAPE[0]}, {INPUT_SHAPE[1]}), got {images.shape}")
    return images.astype(np.float32)[..., None]


#: Keras dtype policies by the names ``TrainConfig.precision`` uses.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}


def _conv_blocks(x, batch_norm: type | None, dropout: float, dtype: str):
    """The four convolution blocks of Tables II and III: conv, (BN), ReLU, pool, (dropout)."""
    filters_and_kernels = zip(paper.HYPERPARAMETERS["filters"], paper.HYPERPARAMETERS["kernel_sizes"])
    for i, (filters, kernel) in enumerate(filters_and_kernels, start=1):
        x = layers.Conv2D(filters, kernel, padding="same", name=f"conv2d_{i}", dtype=dtype)(x)
        if batch_norm:
            x = batch_norm(name=f"batch_normalization_{i}", dtype=dtype)(x)
        x = layers.Activation("relu", name=f"activation_{i}", dtype=dtype)(x)
        x = layers.MaxPooling2D(2, name=f"max_pooling2d_{i}", dtype=dtype)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}", dtype=dtype)(x)
    return x


def _dense_blocks(x, batch_norm: type | None, dropout: float, dtype: str):
    """Two hidden dense blocks: dense 64, (BN), ReLU, (dropout)."""
    n_conv = len(paper.HYPERPARAMETERS["filters"])
    for j in range(1, paper.HYPERPARAMETERS["hidden_dense_layers"] + 1):
        i = n_conv + j
        x = layers.Dense(paper.HYPERPARAMETERS["hidden_units"], name=f"dense_{j}", dtype=dtype)(x)
        if batch_norm:
            x = batch_norm(name=f"batch_normalization_{i}", dtype=dtype)(x)
        x = layers.Activation("relu", name=f"activation_{i}", dtype=dtype)(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout_{i}", dtype=dtype)(x)
    return x


def cnn(
    batch_norm: bool,
    conv_dropout: float,
    dense_dropout: float,
    *,
    precision: str = "fp32",
    fused_batch_norm: bool = True,
    name: str = "cnn",
) -> keras.Model:
    """The paper's four-convolution CNN with its two regularisers as switches.

    ``batch_norm`` adds batch normalization before every hidden activation; a
    dropout rate above 0 adds dropout after every pooling (``conv_dropout``) or
    hidden dense block (``dense_dropout``). ``precision="bf16"`` computes in
    bfloat16 with float32 weights (Keras' ``mixed_bfloat16``); the softmax stays
    float32, as Keras' mixed-precision guide requires. ``fused_batch_norm=False``
    uses stock Keras layers: the same model, slower on the CPU.
    """
    for rate in (conv_dropout, dense_dropout):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rates must be in [0, 1), got {rate}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    norm = (BatchNormalization if fused_batch_norm else layers.BatchNormalization) if batch_norm else None
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale", dtype=dtype)(inputs)
    x = _conv_blocks(x, norm, conv_dropout, dtype)
    x = layers.Flatten(name="flatten_1", dtype=dtype)(x)
    x = _dense_blocks(x, norm, dense_dropout, dtype)
    n_hidden = paper.HYPERPARAMETERS["hidden_dense_layers"]
    n_conv = len(paper.HYPERPARAMETERS["filters"])
    x = layers.Dense(NUM_CLASSES, name=f"dense_{n_hidden + 1}", dtype=dtype)(x)
    outputs = layers.Activation("softmax", name=f"activation_{n_conv + n_hidden + 1}", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def model_a(precision: str = "fp32") -> keras.Model:
    """Model A (Table II): four convolution blocks and two dense layers, no BN, no dropout."""
    return cnn(False, 0.0, 0.0, precision=precision, name="model_a")


def model_b(
    conv_dropout: float = CONV_DROPOUT,
    dense_dropout: float = DENSE_DROPOUT,
    fused_batch_norm: bool = True,
    precision: str = "fp32",
) -> keras.Model:
    """Model B (Table III): Model A with batch normalization before every
    activation and dropout after every pooling and every hidden dense block."""
    return cnn(True, conv_dropout, dense_dropout, precision=precision, fused_batch_norm=fused_batch_norm,
               name="model_b")


def build_model(name: str, **kwargs) -> keras.Model:
    """Model by letter ("a" or "b"), as the command line and profiles name them."""
    builders = {"a": model_a, "b": model_b}
    key = name.lower().removeprefix("model_").removeprefix("model")
    if key not in builders:
        raise ValueError(f"unknown model {name!r}: expected 'a' or 'b'")
    return builders[key](**kwargs)


def count_params(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters, as Keras' summary counts them."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


# --- The shipped model ---------------------------------------------------------------
PRETRAINED = WEIGHTS_DIR / "model_b.keras"


class PretrainedModelError(ValueError):
    """The model file is missing, damaged or not the model it claims to be."""


def pretrained_metadata(path: str | os.PathLike = PRETRAINED) -> dict:
    """What the shipped model is: classes, the data release it was trained on
    (which decides the live pre-processing), epochs, accuracy, checksum, provenance."""
    meta_path = Path(path).with_suffix(".json")
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


def load_pretrained(path: str | os.PathLike = PRETRAINED) -> keras.Model:
    """Model B with the weights of our paper run, ready to predict; no data, no training.

    Checks the file against its metadata (sha256), the class order and the
    input and output shapes, so that a wrong or damaged file fails here with a
    clear message rather than predicting nonsense later.
    """
    path = Path(path)
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
    model = load_model(path)
    if tuple(model.input_shape[1:]) != INPUT_SHAPE or tuple(model.output_shape[1:]) != (NUM_CLASSES,):
        raise PretrainedModelError(
            f"{path}: input {model.input_shape} / output {model.output_shape}, expected "
            f"(None, {', '.join(map(str, INPUT_SHAPE))}) / (None, {NUM_CLASSES})"
        )
    return model
