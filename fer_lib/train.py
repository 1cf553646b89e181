"""A resumable experiment runner for the paper's protocol.

One run is one folder: ``history.csv`` grows by a row per epoch, ``manifest.json``
says what ran where, ``checkpoint/`` holds the model, the optimizer and every
random-number state after the last finished epoch, and ``model.keras`` holds
the final weights. A run killed at any moment (even by SIGKILL in the middle of
an epoch) and started again with the same command continues from the last
finished epoch and ends with the same history as an uninterrupted run.

Determinism: the seed fixes the initial weights (``keras.utils.set_random_seed``),
the order of the training images in every epoch (a permutation drawn from
``numpy.random.default_rng([seed, epoch])``, so it does not depend on how many
epochs ran before in this process) and the dropout masks (Keras' seed
generators, whose states the checkpoint carries).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib import augment, checkpoints, fer2013, paper, provenance
from fer_lib import data as fer_data

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "ms_per_step")
PREDICTIONS = "predictions.csv.gz"
#: the splits whose per-image predictions a run keeps, at its best and its last epoch
PREDICTED_SPLITS = ("val", "test")
PRECISIONS = ("fp32", "bf16")  # the keys of models.PRECISIONS, without importing Keras
DROPOUT_DRAWS = ("keras", "bytes")  # the keys of models.DROPOUT_DRAWS
#: the paper's Models A and B, and Model C beyond the paper (models.model_c)
MODELS = ("a", "b", "c")
SCHEDULES = ("constant", "cosine")
BEST_MODEL = "best.keras"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's numbers. Two runs with equal configs
    (and equal data) give equal histories."""

    model: str = "b"
    epochs: int = 200
    batch_size: int = paper.HYPERPARAMETERS["batch_size"]
    learning_rate: float = paper.HYPERPARAMETERS["learning_rate"]
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    #: keep only this many images per split (None: all), drawn with the seed
    subset: int | None = None
    #: train on this share of the training split, drawn with the seed (the paper's "50%" reading)
    train_fraction: float = 1.0
    #: the regularisers; None takes the model's own (A: none; B: BN, dropout 0.25 / 0.5)
    batch_norm: bool | None = None
    conv_dropout: float | None = None
    dense_dropout: float | None = None
    #: "fp32", or "bf16" (Keras' mixed_bfloat16: bfloat16 compute, float32 weights)
    precision: str = "fp32"
    #: which layer draws the dropout masks: "keras" (every committed run), or "bytes"
    #: (models.Dropout: the same masks in distribution from fewer random bits, a cheaper step)
    dropout_draw: str = "keras"
    #: the recipe beyond the paper (chapter 9): freshly augmented images every epoch
    #: (fer_lib.augment), smoothed targets, a cosine decay of the learning rate to 1% of
    #: its start, and the best validation epoch's weights kept (``best.keras``)
    augment: bool = False
    label_smoothing: float = 0.0
    schedule: str = "constant"
    keep_best: bool = False
    profile: str = "custom"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.model == "c" and (self.batch_norm, self.conv_dropout, self.dense_dropout) != (None, None, None):
            raise ValueError("Model C's regularisers are part of its architecture (models.model_c): "
                             "batch_norm, conv_dropout and dense_dropout must stay None")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be positive or None, got {self.subset}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.dropout_draw not in DROPOUT_DRAWS:
            raise ValueError(f"dropout_draw must be one of {DROPOUT_DRAWS}, got {self.dropout_draw!r}")
        for name in ("conv_dropout", "dense_dropout"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")

    def architecture(self) -> dict:
        """The regularisers this run trains with: the model's own unless overridden. Model C's
        dropout rates grow with depth (models.MODEL_C_STAGES): None here."""
        own = {"a": (False, 0.0, 0.0), "b": (True, paper.CONV_DROPOUT, paper.DENSE_DROPOUT),
               "c": (True, None, None)}[self.model]
        chosen = (self.batch_norm, self.conv_dropout, self.dense_dropout)
        resolved = [o if c is None else c for c, o in zip(chosen, own)]
        return dict(zip(("batch_norm", "conv_dropout", "dense_dropout"), resolved))

    def is_paper_model(self) -> bool:
        """True when the architecture is exactly the paper's Model A or B."""
        own = TrainConfig(model=self.model).architecture()
        return self.model in ("a", "b") and self.architecture() == own


def config_from_manifest(settings: dict) -> TrainConfig:
    """A manifest's config; manifests written before the precision field existed gave
    Model A dropout rates that it never used, which today would mean dropout."""
    settings = dict(settings)
    if "precision" not in settings and settings.get("model") == "a":
        settings.update(conv_dropout=None, dense_dropout=None)
    return TrainConfig(**settings)


#: The named profiles: the paper's protocol, and a seconds-long one for tests.
PROFILES: dict[str, dict] = {
    "paper": {"epochs": {"a": 100, "b": 200}},
    # the multi-seed study (fer_lib.study): every cell the same epochs, in bfloat16
    "study": {"epochs": {"a": 50, "b": 50}, "precision": "bf16"},
    "smoke": {"epochs": {"a": 2, "b": 2, "c": 2}, "subset": 256, "batch_size": 64},
    # beyond the paper (chapter 9): Model C, or an ablation on Model B, with the full recipe
    "beyond": {"epochs": {"b": 50, "c": 50}, "augment": True, "label_smoothing": 0.1, "schedule": "cosine",
               "keep_best": True},
}


def profile(name: str, model: str = "b", **overrides) -> TrainConfig:
    """The config of a named profile for one model, with any field overridden."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {sorted(PROFILES)}")
    settings = dict(PROFILES[name])
    if model not in settings["epochs"]:
        raise ValueError(f"profile {name!r} has no model {model!r}: it has {sorted(settings['epochs'])}")
    settings["epochs"] = settings["epochs"][model]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, profile=name, **settings)


# --- Data ------------------------------------------------------------------
def _subset(split: fer2013.Split, n: int | None, seed: int) -> fer2013.Split:
    if n is None or n >= len(split):
        return split
    keep = np.sort(np.random.default_rng([seed, len(split)]).permutation(len(split))[:n])
    return dataclasses.replace(split, x=split.x[keep], y=split.y[keep], ids=split.ids[keep])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training images' order in one epoch: a function of (seed, epoch) alone."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _targets(y: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Class indices, or one-hot rows where the loss smooths them (Keras smooths only one-hot targets)."""
    if not config.label_smoothing:
        return y.astype(np.int32)
    return np.eye(len(paper.CLASSES), dtype=np.float32)[y]


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None = None):
    """A tf.data pipeline over in-memory arrays: (images as float 0-255 with a channel axis, targets)."""
    import tensorflow as tf

    if order is not None:
        x, y = x[order], y[order]
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32)[..., None], b))
    return ds.prefetch(tf.data.AUTOTUNE)


def _write_history(out: Path, history: list[dict]) -> None:
    tmp = out / "history.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out / "history.csv")


def _update_manifest(out: Path, config: TrainConfig, data: fer2013.FER2013, segment: dict) -> None:
    """One manifest per run; each session that worked on it adds a segment."""
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    # earlier sessions whose epochs this one continues; a run restarted without its checkpoint drops them
    kept = [s for s in manifest.get("segments", [])
            if s["start"] != segment["start"] and s.get("last_epoch", 0) < segment["first_epoch"]]
    segments = [*kept, segment]
    manifest.update(
        {
            "config": dataclasses.asdict(config),
            "data": {"release": data.release, "source": data.source, "sha256": data.checksum},
            "segments": segments,
            "wall_seconds": round(sum(s["wall_seconds"] for s in segments), 1),
        }
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)


# --- Training -------------------------------------------------------------------------------
def _compile(model, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    rate = config.learning_rate
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.01)
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing) if config.label_smoothing
            else "sparse_categorical_crossentropy")
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=False,  # XLA made both models slower on the CPU
    )


def _step_functions(model):
    """Compiled train and test steps. On TensorFlow we wrap Keras' own steps in
    ``tf.function``: the same computation as ``fit``, without its per-step
    overhead (measured at about 30% here); other backends use ``fit`` itself."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None, None
    import tensorflow as tf

    return tf.function(model.train_step), tf.function(model.test_step)


def _run_epoch(model, step, ds) -> dict[str, float]:
    """One pass of a compiled step over a data set: the metrics' means over the pass."""
    for metric in model.metrics:
        metric.reset_state()
    logs = {}
    for batch in ds:
        logs = step(batch)
    return {k: float(v) for k, v in logs.items()}


def _train_one_epoch(model, steps, train: fer2013.Split, val: fer2013.Split, order: np.ndarray,
                     config: TrainConfig) -> tuple[dict, dict]:
    """Train on ``train`` in the given order, then score ``val``: (train logs, val logs)."""
    batch_size = config.batch_size
    if steps[0] is not None:
        return (_run_epoch(model, steps[0], _batches(train.x, _targets(train.y, config), batch_size, order)),
                _run_epoch(model, steps[1], _batches(val.x, _targets(val.y, config), batch_size)))
    # Other backends (JAX, PyTorch): Keras' own loop over arrays, in our order.
    from fer_lib import models

    def arrays(x, y):
        return models.as_model_input(x), _targets(y, config)

    logs = model.fit(*arrays(train.x[order], train.y[order]), batch_size=batch_size, shuffle=False, epochs=1,
                     verbose=0).history
    val_logs = model.evaluate(*arrays(val.x, val.y), batch_size=batch_size, verbose=0, return_dict=True)
    return {k: float(v[-1]) for k, v in logs.items()}, {k: float(v) for k, v in val_logs.items()}


def _splits(config: TrainConfig, data: fer2013.FER2013) -> dict[str, fer2013.Split]:
    """The run's training split (its share and subset drawn with the seed) and the scored splits."""
    train = data.split(config.train_split)
    if config.train_fraction < 1.0:
        train = _subset(train, round(config.train_fraction * len(train)), config.seed + 2)
    scored = {"val": config.val_split, "test": "test"}
    return {
        "train": _subset(train, config.subset, config.seed),
        **{key: _subset(data.split(name), config.subset, config.seed + 1 + i)
           for i, (key, name) in enumerate(scored.items())},
    }


def _predict(model, splits: dict[str, fer2013.Split]) -> dict[str, list[int]]:
    """Predicted class of every image of the scored splits."""
    from fer_lib import models

    return {name: model.predict(models.as_model_input(splits[name].x), batch_size=256, verbose=0)
            .argmax(axis=1).tolist() for name in PREDICTED_SPLITS}


def _write_predictions(out: Path, splits: dict[str, fer2013.Split], best: dict, last: dict[str, list[int]]) -> None:
    """Per-image predictions at the best epoch (on validation) and the last one: what
    paired tests between runs need, a few tens of kilobytes."""
    import pandas as pd

    frames = [
        pd.DataFrame({"split": name, "id": splits[name].ids, "label": splits[name].y,
                      "best": best["predictions"][name], "last": last[name]})
        for name in PREDICTED_SPLITS
    ]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "best_epoch", best["epoch"])
    tmp = out / (PREDICTIONS + ".tmp")
    table.to_csv(tmp, index=False, compression="gzip")
    os.replace(tmp, out / PREDICTIONS)


class EmulatedPrecisionError(RuntimeError):
    """bfloat16 asked for on a processor that would emulate it."""


def check_precision(precision: str, allow_emulated: bool = False) -> None:
    """Refuse bfloat16 where it is emulated: measured there, Model B's step took 9.7 s instead of
    about 1 s in float32, so a 20-minute study run would take some 30 hours."""
    if precision != "bf16" or provenance.native_bf16_features() or platform.machine() not in ("x86_64", "AMD64"):
        return
    message = (f"{provenance.cpu_model()} lacks {' and '.join(provenance.BF16_FEATURES)}: bfloat16 is emulated "
               "here, about 8x slower than float32")
    if not allow_emulated:
        raise EmulatedPrecisionError(f"{message}; run this on a processor with native bf16, use --precision fp32, "
                                     "or pass --allow-emulated")
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=2)


def _new_model(config: TrainConfig, steps_per_epoch: int):
    import keras

    from fer_lib import models

    keras.utils.set_random_seed(config.seed)
    if config.model == "c":
        model = models.model_c(precision=config.precision, dropout_draw=config.dropout_draw)
    else:
        name = f"model_{config.model}" if config.is_paper_model() else "cnn"
        model = models.cnn(**config.architecture(), precision=config.precision, dropout_draw=config.dropout_draw,
                           name=name)
    _compile(model, config, steps_per_epoch)
    return model


def fit(
    config: TrainConfig,
    out: str | os.PathLike,
    data: fer2013.FER2013 | None = None,
    *,
    progress: bool = True,
    stop_after: int | None = None,
    allow_emulated: bool = False,
) -> list[dict]:
    """Train (or resume) the run in ``out``; returns its history, one dict per epoch.

    ``stop_after`` ends this call after that many epochs in total have run (the
    run stays resumable): a way to spread a long run over sessions. bfloat16 on a
    processor without it stops here unless ``allow_emulated`` (see check_precision).
    """
    check_precision(config.precision, allow_emulated)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with checkpoints.locked(out):
        return _fit_locked(config, out, data, progress=progress, stop_after=stop_after)


def _fit_locked(config: TrainConfig, out: Path, data: fer2013.FER2013 | None, *, progress: bool,
                stop_after: int | None) -> list[dict]:
    import keras
    from tqdm.auto import tqdm

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = data if data is not None else fer_data.load_fer2013(progress=progress)
    _check_same_run(out, config, data)
    splits = _splits(config, data)

    n_steps = -(-len(splits["train"]) // config.batch_size)
    model, state = checkpoints.read_checkpoint(out)
    if model is None:
        model = _new_model(config, n_steps)
        state = {"epochs_done": 0, "history": [], "best": None}
    history: list[dict] = state["history"]
    best = state.get("best")
    _write_history(out, history)  # drop rows past the checkpoint, if any
    steps = _step_functions(model)
    last = min(config.epochs, stop_after) if stop_after is not None else config.epochs
    segment = {"start": provenance.now(), "first_epoch": state["epochs_done"] + 1, **provenance.environment()}
    t_segment = time.perf_counter()

    bar = tqdm(total=config.epochs, initial=state["epochs_done"], desc=f"model {config.model}", unit="epoch",
               disable=not progress)
    for epoch in range(state["epochs_done"] + 1, last + 1):
        order = epoch_order(len(splits["train"]), config.seed, epoch)
        t0 = time.perf_counter()
        train = splits["train"]
        if config.augment:
            train = dataclasses.replace(train, x=augment.epoch_images(train.x, augment.Augmentation(), config.seed,
                                                                      epoch))
        train_logs, val_logs = _train_one_epoch(model, steps, train, splits["val"], order, config)
        seconds = time.perf_counter() - t0
        history.append(
            {
                "epoch": epoch,
                "loss": train_logs["loss"],
                "accuracy": train_logs["accuracy"],
                "val_loss": val_logs["loss"],
                "val_accuracy": val_logs["accuracy"],
                "seconds": round(seconds, 2),
                "ms_per_step": round(1000 * seconds / n_steps, 1),
            }
        )
        if best is None or val_logs["accuracy"] > best["val_accuracy"]:
            best = {"epoch": epoch, "val_accuracy": val_logs["accuracy"], "predictions": _predict(model, splits)}
            if config.keep_best:
                checkpoints.save_final(model, out / BEST_MODEL)
        checkpoints.write_checkpoint(out, model, epoch, history, best)
        _write_history(out, history)
        segment.update(last_epoch=epoch, end=provenance.now(), wall_seconds=round(time.perf_counter() - t_segment, 1))
        _update_manifest(out, config, data, segment)
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['accuracy']:.3f}",
                        val_acc=f"{history[-1]['val_accuracy']:.3f}")
        bar.update(1)
    bar.close()
    if len(history) == config.epochs:
        if not (out / PREDICTIONS).exists():
            _write_predictions(out, splits, best, _predict(model, splits))
        if not (out / checkpoints.FINAL_MODEL).exists():
            checkpoints.save_final(model, out / checkpoints.FINAL_MODEL)
    return history


def _check_same_run(out: Path, config: TrainConfig, data: fer2013.FER2013) -> None:
    """Resuming with other settings, or on other data, would silently mix two experiments."""
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    before = manifest.get("config", {})
    changed = {k: (before[k], v) for k, v in dataclasses.asdict(config).items() if k in before and before[k] != v}
    if changed:
        raise ValueError(f"{out} holds a run with other settings {changed}; use another --out or the same settings")
    was = manifest.get("data")
    if was and (was["release"], was["sha256"]) != (data.release, data.checksum):
        raise ValueError(f"{out} was trained on the {was['release']} release from {was['source']} (sha256 "
                         f"{was['sha256'][:12]}), not on the {data.release} release from {data.source} (sha256 "
                         f"{data.checksum[:12]}); resume it with that data (--data, --release) or use another --out")
