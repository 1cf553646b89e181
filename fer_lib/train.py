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

import contextlib
import csv
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_lib import data as fer_data
from fer_lib import paper

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "ms_per_step")
CHECKPOINT = "checkpoint"
FINAL_MODEL = "model.keras"
PREDICTIONS = "predictions.csv.gz"
#: the splits whose per-image predictions a run keeps, at its best and its last epoch
PREDICTED_SPLITS = ("val", "test")
LOCK = ".lock"
PRECISIONS = ("fp32", "bf16")  # the keys of models.PRECISIONS, without importing Keras
RESULTS_DIR = "results"  # run folders go below it: results/<profile>/model_<a|b>


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
    profile: str = "custom"

    def __post_init__(self) -> None:
        if self.model not in ("a", "b"):
            raise ValueError(f"model must be 'a' or 'b', got {self.model!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be positive or None, got {self.subset}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("conv_dropout", "dense_dropout"):
            rate = getattr(self, name)
            if rate is not None and not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")

    def architecture(self) -> dict:
        """The regularisers this run trains with: the model's own unless overridden."""
        from fer_lib.models import CONV_DROPOUT, DENSE_DROPOUT

        own = {"a": (False, 0.0, 0.0), "b": (True, CONV_DROPOUT, DENSE_DROPOUT)}[self.model]
        chosen = (self.batch_norm, self.conv_dropout, self.dense_dropout)
        resolved = [o if c is None else c for c, o in zip(chosen, own)]
        return dict(zip(("batch_norm", "conv_dropout", "dense_dropout"), resolved))

    def is_paper_model(self) -> bool:
        """True when the architecture is exactly the paper's Model A or B."""
        own = TrainConfig(model=self.model).architecture()
        return self.architecture() == own


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
    "smoke": {"epochs": {"a": 2, "b": 2}, "subset": 256, "batch_size": 64},
}


def profile(name: str, model: str = "b", **overrides) -> TrainConfig:
    """The config of a named profile for one model, with any field overridden."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {sorted(PROFILES)}")
    settings = dict(PROFILES[name])
    settings["epochs"] = settings["epochs"][model]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, profile=name, **settings)


# --- Data ------------------------------------------------------------------
def _subset(split: fer_data.Split, n: int | None, seed: int) -> fer_data.Split:
    if n is None or n >= len(split):
        return split
    keep = np.sort(np.random.default_rng([seed, len(split)]).permutation(len(split))[:n])
    return dataclasses.replace(split, x=split.x[keep], y=split.y[keep], ids=split.ids[keep])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training images' order in one epoch: a function of (seed, epoch) alone."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None = None):
    """A tf.data pipeline over in-memory arrays: (images as float 0-255 with a channel axis, labels)."""
    import tensorflow as tf

    if order is not None:
        x, y = x[order], y[order]
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32)[..., None], b))
    return ds.prefetch(tf.data.AUTOTUNE)


# --- Checkpoints ------------------------------------------------------------------
def _seed_states(model) -> list:
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _write_checkpoint(out: Path, model, epoch: int, history: list[dict], best: dict | None = None) -> None:
    """Replace ``checkpoint/`` as a whole: a crash leaves the old one or the new one."""
    tmp, final, old = out / f"{CHECKPOINT}.tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.keras")
    state = {
        "epochs_done": epoch,
        "history": history,
        "seed_states": [np.asarray(v.numpy()).tolist() for v in _seed_states(model)],
        "best": best,  # the epoch with the best validation accuracy so far, and its predictions
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _read_checkpoint(out: Path):
    """(model, state) from the last finished epoch, or (None, None) for a fresh run."""
    import keras

    shutil.rmtree(out / f"{CHECKPOINT}.tmp", ignore_errors=True)  # a half-written one
    final, old = out / CHECKPOINT, out / f"{CHECKPOINT}.old"
    if not final.exists() and old.exists():
        old.rename(final)  # the crash came between the two renames
    if not final.exists():
        return None, None
    model = keras.models.load_model(final / "model.keras")
    state = json.loads((final / "state.json").read_text())
    for var, value in zip(_seed_states(model), state["seed_states"], strict=True):
        var.assign(np.array(value, dtype=var.dtype))
    return model, state


def _write_history(out: Path, history: list[dict]) -> None:
    tmp = out / "history.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out / "history.csv")


# --- Provenance ------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_outputs() -> tuple[str, ...]:
    """The folders, from the repository root, that runs write into: their results and the
    shipped weights.

    They are tracked (the paper run is committed as it goes), so a resumed run always finds
    them changed; only changes elsewhere make the code it runs differ from the commit.
    """
    from fer_lib import models

    package_root = models.WEIGHTS_DIR.parents[1]
    return RESULTS_DIR, models.WEIGHTS_DIR.relative_to(package_root).as_posix()


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit, with '+dirty' when tracked files other than run outputs have changed."""
    root = root or fer_data.repository_root()
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
        "git_commit": git_commit(),
        **_backend_versions(keras.backend.backend()),
    }


def _backend_versions(backend: str) -> dict:
    if backend == "tensorflow":
        import tensorflow as tf

        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        return {"tensorflow": tf.__version__, "tf_threads": threads}
    module = importlib.import_module(backend)  # jax, torch, ...
    return {backend: getattr(module, "__version__", "unknown")}


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def machine_text(env: dict) -> str:
    """"AMD EPYC, 2 cores (1 TensorFlow thread)": where an environment or a segment ran."""
    text = f"{env['cpu']}, {env['cores']} cores"
    if "tf_threads" in env:
        text += f" ({env['tf_threads']} TensorFlow thread{'s' if env['tf_threads'] != 1 else ''})"
    return text


def software_text(env: dict) -> str:
    """"TensorFlow 2.21.0, Keras 3.15.1", whichever backend Keras ran on."""
    backend = env.get("keras_backend", "tensorflow")
    return f"{BACKEND_NAMES.get(backend, backend)} {env.get(backend, 'unknown')}, Keras {env['keras']}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _update_manifest(out: Path, config: TrainConfig, data: fer_data.FER2013, segment: dict) -> None:
    """One manifest per run; each session that worked on it adds a segment."""
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    segments = [s for s in manifest.get("segments", []) if s["start"] != segment["start"]] + [segment]
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
def _compile(model, config: TrainConfig) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
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


def _train_one_epoch(model, steps, train: fer_data.Split, val: fer_data.Split, order: np.ndarray,
                     batch_size: int) -> tuple[dict, dict]:
    """Train on ``train`` in the given order, then score ``val``: (train logs, val logs)."""
    if steps[0] is not None:
        return (_run_epoch(model, steps[0], _batches(train.x, train.y, batch_size, order)),
                _run_epoch(model, steps[1], _batches(val.x, val.y, batch_size)))
    # Other backends (JAX, PyTorch): Keras' own loop over arrays, in our order.
    from fer_lib import models

    def arrays(x, y):
        return models.as_model_input(x), y.astype(np.int32)

    logs = model.fit(*arrays(train.x[order], train.y[order]), batch_size=batch_size, shuffle=False, epochs=1,
                     verbose=0).history
    val_logs = model.evaluate(*arrays(val.x, val.y), batch_size=batch_size, verbose=0, return_dict=True)
    return {k: float(v[-1]) for k, v in logs.items()}, {k: float(v) for k, v in val_logs.items()}


def _splits(config: TrainConfig, data: fer_data.FER2013) -> dict[str, fer_data.Split]:
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


def _predict(model, splits: dict[str, fer_data.Split]) -> dict[str, list[int]]:
    """Predicted class of every image of the scored splits."""
    from fer_lib import models

    return {name: model.predict(models.as_model_input(splits[name].x), batch_size=256, verbose=0)
            .argmax(axis=1).tolist() for name in PREDICTED_SPLITS}


def _write_predictions(out: Path, splits: dict[str, fer_data.Split], best: dict, last: dict[str, list[int]]) -> None:
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


def read_predictions(run_dir: str | os.PathLike):
    """A run's per-image predictions (columns split, id, label, best, last, best_epoch)."""
    import pandas as pd

    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions (the run is not complete, or predates them)")
    return pd.read_csv(path)


def check_precision(precision: str) -> None:
    """Warn where bfloat16 would be emulated: on a CPU without native bf16 it runs slower, not faster."""
    import warnings

    if precision != "bf16" or platform.machine() not in ("x86_64", "AMD64"):
        return
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return
    if not flags & {"avx512_bf16", "amx_bf16"}:
        warnings.warn(f"{cpu_model()} lacks avx512_bf16 and amx_bf16: bfloat16 is emulated on it and "
                      "will likely train slower than --precision fp32", RuntimeWarning, stacklevel=2)


class RunInUseError(RuntimeError):
    """Another process is training in this run folder."""


@contextlib.contextmanager
def _locked(out: Path):
    """Hold the run folder for this process. The operating system drops the lock when the
    process ends, however it ends, so a killed run never blocks its own resume."""
    import fcntl

    handle = open(out / LOCK, "a+")  # noqa: SIM115 (held until the run ends, released in finally)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunInUseError(f"{out} is in use by {holder}: wait for it to finish, or stop it, "
                            "then run the same command again to resume") from None
    handle.truncate(0)
    handle.write(f"process {os.getpid()} on {platform.node()} since {_now()}")
    handle.flush()
    try:
        yield
    finally:
        handle.close()


def _new_model(config: TrainConfig):
    import keras

    from fer_lib import models

    keras.utils.set_random_seed(config.seed)
    name = f"model_{config.model}" if config.is_paper_model() else "cnn"
    model = models.cnn(**config.architecture(), precision=config.precision, name=name)
    _compile(model, config)
    return model


def fit(
    config: TrainConfig,
    out: str | os.PathLike,
    data: fer_data.FER2013 | None = None,
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> list[dict]:
    """Train (or resume) the run in ``out``; returns its history, one dict per epoch.

    ``stop_after`` ends this call after that many epochs in total have run (the
    run stays resumable): a way to spread a long run over sessions.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        return _fit_locked(config, out, data, progress=progress, stop_after=stop_after)


def _fit_locked(config: TrainConfig, out: Path, data: fer_data.FER2013 | None, *, progress: bool,
                stop_after: int | None) -> list[dict]:
    import keras
    from tqdm.auto import tqdm

    _check_same_config(out, config)
    check_precision(config.precision)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = data if data is not None else fer_data.load_fer2013(progress=progress)
    splits = _splits(config, data)

    model, state = _read_checkpoint(out)
    if model is None:
        model = _new_model(config)
        state = {"epochs_done": 0, "history": [], "best": None}
    history: list[dict] = state["history"]
    best = state.get("best")
    _write_history(out, history)  # drop rows past the checkpoint, if any
    steps = _step_functions(model)
    n_steps = -(-len(splits["train"]) // config.batch_size)
    last = min(config.epochs, stop_after) if stop_after is not None else config.epochs
    segment = {"start": _now(), "first_epoch": state["epochs_done"] + 1, **environment()}
    t_segment = time.perf_counter()

    bar = tqdm(total=config.epochs, initial=state["epochs_done"], desc=f"model {config.model}", unit="epoch",
               disable=not progress)
    for epoch in range(state["epochs_done"] + 1, last + 1):
        order = epoch_order(len(splits["train"]), config.seed, epoch)
        t0 = time.perf_counter()
        train_logs, val_logs = _train_one_epoch(model, steps, splits["train"], splits["val"], order,
                                                config.batch_size)
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
        _write_checkpoint(out, model, epoch, history, best)
        _write_history(out, history)
        segment.update(last_epoch=epoch, end=_now(), wall_seconds=round(time.perf_counter() - t_segment, 1))
        _update_manifest(out, config, data, segment)
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['accuracy']:.3f}",
                        val_acc=f"{history[-1]['val_accuracy']:.3f}")
        bar.update(1)
    bar.close()
    if len(history) == config.epochs:
        if not (out / PREDICTIONS).exists():
            _write_predictions(out, splits, best, _predict(model, splits))
        if not (out / FINAL_MODEL).exists():
            save_final(model, out / FINAL_MODEL)
    return history


def _check_same_config(out: Path, config: TrainConfig) -> None:
    """Resuming with other settings would silently mix two experiments."""
    path = out / "manifest.json"
    if not path.exists():
        return
    before = json.loads(path.read_text()).get("config", {})
    changed = {k: (before[k], v) for k, v in dataclasses.asdict(config).items() if k in before and before[k] != v}
    if changed:
        raise ValueError(f"{out} holds a run with other settings {changed}; use another --out or the same settings")


def save_final(model, path: Path) -> None:
    """The trained model without optimizer state (a third of the size), written atomically."""
    import keras

    fresh = keras.Model.from_config(model.get_config())  # uncompiled: no optimizer
    fresh.set_weights(model.get_weights())
    tmp = path.with_name(path.stem + ".tmp.keras")
    fresh.save(tmp)
    os.replace(tmp, path)


def read_history(run_dir: str | os.PathLike):
    """A run's history as a DataFrame (one row per finished epoch)."""
    import pandas as pd

    return pd.read_csv(Path(run_dir) / "history.csv")


@dataclass(frozen=True)
class Run:
    """A run folder as the commands and the book read it, finished or in progress.

    The paper run takes days on the project's CPUs, so everything here works on
    whatever epochs a run has had: a value at an epoch not reached yet is NaN.
    """

    path: Path
    config: TrainConfig
    manifest: dict
    history: object  # pandas.DataFrame, one row per finished epoch

    @property
    def name(self) -> str:
        """The paper's name for the model: "A" or "B"."""
        return self.config.model.upper()

    @property
    def planned(self) -> int:
        return self.config.epochs

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def complete(self) -> bool:
        return self.epochs_done == self.planned

    def status(self) -> str:
        """"epoch 12 of 200 (in progress)" or "all 100 epochs": what every report must say."""
        if self.complete:
            return f"all {self.planned} epochs"
        return f"epoch {self.epochs_done} of {self.planned} (in progress)"

    def until(self, epoch: int):
        """The history up to and including ``epoch``."""
        return self.history[self.history["epoch"] <= epoch]

    def at(self, epoch: int, column: str) -> float:
        """One logged value at one epoch, NaN where that epoch has not run yet."""
        row = self.history.loc[self.history["epoch"] == epoch, column]
        return float(row.iloc[0]) if len(row) else float("nan")

    def wall_hours(self) -> float:
        return float(self.manifest.get("wall_seconds", 0.0)) / 3600

    def commits(self) -> list[str]:
        """The short commits of the sessions that trained this run, oldest first, each once
        ("+dirty" where the code had uncommitted changes)."""
        return segment_commits(self.manifest["segments"])

    def provenance(self) -> str:
        """Commit, data checksum, seed, hardware and wall time: enough to weigh a number from this run."""
        seg = self.manifest["segments"][-1]
        return (
            f"Model {self.name}: {self.status()}, seed {self.config.seed}, profile {self.config.profile}; "
            f"commit {', '.join(self.commits())}; data sha256 {self.manifest['data']['sha256'][:12]}; "
            f"{machine_text(seg)}, {software_text(seg)}; "
            f"{self.wall_hours():.1f} h of wall time in {len(self.manifest['segments'])} session(s)"
        )

    def latest(self, attempts: int = 10):
        """The latest weights (final, else the last checkpoint's) and the history they belong to.

        A run still training replaces ``checkpoint/`` after every epoch (by two
        renames), so the folder is copied first and read from the copy; a copy
        caught in the middle of a replacement fails to load and is tried again.
        """
        import tempfile
        import zipfile

        import pandas as pd

        if (self.path / FINAL_MODEL).is_file():
            return _load_model(self.path / FINAL_MODEL), self.history
        problems = []
        for _ in range(attempts):
            for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
                with tempfile.TemporaryDirectory() as tmp:
                    copy = Path(tmp) / CHECKPOINT
                    try:
                        shutil.copytree(self.path / name, copy)
                        state = json.loads((copy / "state.json").read_text())
                        model = _load_model(copy / "model.keras")
                    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
                        problems.append(f"{name}: {type(err).__name__}: {err}")
                        continue
                return model, pd.DataFrame(state["history"], columns=list(HISTORY_COLUMNS))
            time.sleep(1.0)
        raise FileNotFoundError(f"{self.path}: no loadable checkpoint after {attempts} attempts:\n"
                                + "\n".join(problems[-2:]))


def _load_model(path: Path):
    import keras

    from fer_lib import models  # noqa: F401  (registers the fused batch normalization layer)

    return keras.models.load_model(path, compile=False)


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder; a clear error when it is not one."""
    path = Path(run_dir)
    for name in ("manifest.json", "history.csv"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a run folder: {name} is missing")
    manifest = json.loads((path / "manifest.json").read_text())
    return Run(path, config_from_manifest(manifest["config"]), manifest, read_history(path))


def export_pretrained(run_dir: str | os.PathLike, dest: str | os.PathLike | None = None) -> dict:
    """Copy a run's latest weights into the package as the shipped model, with
    metadata that says what they are (epochs so far, accuracy, data, commit).

    Until a run finishes, this ships its last checkpoint, and the metadata
    says how many of the planned epochs it has had.
    """
    import hashlib

    from fer_lib import models

    run = load_run(run_dir)
    manifest = run.manifest
    dest = Path(dest) if dest is not None else models.PRETRAINED
    dest.parent.mkdir(parents=True, exist_ok=True)
    model, history = run.latest()
    save_final(model, dest)
    last = history.iloc[-1]
    meta = {
        "model": f"model_{manifest['config']['model']}",
        "classes": list(paper.CLASSES),
        "input_shape": list(models.INPUT_SHAPE),
        "input": "raw grey values 0-255, float32, shape (n, 48, 48, 1)",
        "release": manifest["data"]["release"],
        "histogram_equalized_input": manifest["data"]["release"] == fer_data.RELEASE_FOLDER,
        "epochs_trained": int(last["epoch"]),
        "epochs_planned": manifest["config"]["epochs"],
        "complete": int(last["epoch"]) == manifest["config"]["epochs"],
        "val_accuracy": round(float(last["val_accuracy"]), 4),
        "train_accuracy": round(float(last["accuracy"]), 4),
        "config": manifest["config"],
        "data_sha256": manifest["data"]["sha256"],
        "git_commit": manifest["segments"][-1]["git_commit"],
        "run": run.path.as_posix(),
        "sha256": hashlib.sha256(dest.read_bytes()).hexdigest(),
    }
    tmp = dest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, dest.with_suffix(".json"))
    return meta


def runs_status(root: str | os.PathLike = RESULTS_DIR):
    """Every run folder below ``root``: how far it is and how long the rest will take at
    its recent pace (the median of its last ten epochs)."""
    import pandas as pd

    rows = []
    for manifest in sorted(Path(root).rglob("manifest.json")):
        run = load_run(manifest.parent)
        recent = run.history["seconds"].tail(10).median() if run.epochs_done else float("nan")
        rows.append({
            "run": run.path.as_posix(),
            "epochs": f"{run.epochs_done}/{run.config.epochs}",
            "val_accuracy": run.history["val_accuracy"].iloc[-1] if run.epochs_done else float("nan"),
            "wall_hours": run.manifest.get("wall_seconds", 0) / 3600,
            "hours_left": (run.config.epochs - run.epochs_done) * recent / 3600,
        })
    return pd.DataFrame(rows)
