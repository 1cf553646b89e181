"""The peer table: published FER-2013 models (:mod:`fer_lib.peers`) beside Models A and B, all measured here.

    fer-lib peers     # -> results/peers/peers.csv and results/peers/manifest.json

Every model labels the five-class PrivateTest and PublicTest images of both
releases, as each release stores them (the challenge CSV's original pixels,
the folder release's histogram-equalized JPEGs), through its own
preprocessing: accuracy and recall per class, beside its parameter count and
milliseconds per face. A face's time is one call on one face (batch 1)
through the model's preprocessing and one compiled ``tf.function``, the median
of ``repeats`` calls; the models take turns call by call, so that other load
on the machine slows them alike. ``split_role`` says what a split was to the
model's training: only a "held out" split is a clean test.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib import augment, evaluate, fer2013, paper, peers, provenance, runs
from fer_lib.fer2013 import FER2013, Split
from fer_lib.paths import RESULTS_DIR, checkout_relative

OUT_DIR = Path(RESULTS_DIR) / "peers"
#: The splits of the table, as the paper names them: PrivateTest (its validation set), then PublicTest.
SPLITS = ("val", "test")
#: The packages whose versions decide the numbers, besides the peers' own.
PACKAGES = ("tensorflow", "keras", "numpy", "opencv-python-headless")


@dataclass(frozen=True)
class Contender:
    """One row group of the table: a model that labels 48x48 grey faces with probabilities over the paper's five
    classes, what it was trained on, and what each test split was to that training."""

    key: str
    title: str
    predict_five: Callable[[np.ndarray], np.ndarray]
    params: int
    trained_on: str
    roles: Mapping[str, str]  # FER-2013 usage -> peers.HELD_OUT, peers.MONITORED, ...
    weights: Mapping[str, str]  # what the manifest records: file, sha256, package version


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def peer_contender(key: str) -> Contender:
    """A published model from its installed package (:func:`fer_lib.peers.load`)."""
    model = peers.load(key)
    p = model.peer
    return Contender(key=p.key, title=p.title, predict_five=model.predict_five, params=model.params,
                     trained_on=p.trained_on, roles=p.roles,
                     weights={"package": f"{p.distribution} {peers.version(key)}", "file": p.weights,
                              "sha256": p.sha256, "source": p.source})


def _our_roles(val_split: str) -> dict[str, str]:
    """Our runs validate on one split every epoch and keep their last weights, so it picked nothing."""
    val = fer2013.SPLITS[val_split]
    return {usage: peers.MONITORED if usage == val else peers.HELD_OUT
            for usage in (fer2013.SPLITS[name] for name in SPLITS)}


def _ours(key: str, title: str, model, release: str, val_split: str, epochs: int, weights: Path) -> Contender:
    from fer_lib.live.classify import FaceClassifier

    return Contender(key=key, title=title, predict_five=FaceClassifier(model, release=release).predict_proba,
                     params=_count_params(model), roles=_our_roles(val_split),
                     trained_on=f"FER-2013 {release} release, five-class Training; {fer2013.SPLITS[val_split]} "
                                f"validated every epoch; the weights after epoch {epochs}, the last",
                     weights={"file": checkout_relative(weights), "sha256": _sha256(weights)})


def _count_params(model) -> int:
    from fer_lib import models

    return models.count_params(model)["total"]


MODEL_A_RUN = runs.run_folder("paper", "a")


def model_a(run_dir: str | os.PathLike = MODEL_A_RUN) -> Contender:
    """Model A: the paper run's final weights."""
    from fer_lib.checkpoints import FINAL_MODEL

    run = runs.load_run(run_dir)
    model, history = run.latest()
    return _ours("model-a", "Model A (paper run)", model, run.manifest["data"]["release"], run.config.val_split,
                 int(history["epoch"].max()), run.path / FINAL_MODEL)


def model_b() -> Contender:
    """Model B as the package ships it (``models.load_pretrained``)."""
    from fer_lib import models

    meta = models.pretrained_metadata()
    return _ours("model-b", "Model B (shipped)", models.load_pretrained(), meta["release"],
                 meta["config"]["val_split"], meta["epochs_trained"], models.PRETRAINED)


#: Model C's runs (chapter 9): one folder per seed
MODEL_C_RUNS = Path(RESULTS_DIR) / "beyond" / "model_c"
#: Model C trained on the equalized (image-folder) release: one folder per seed, and its key in the table
MODEL_C_FOLDER_RUNS = Path(RESULTS_DIR) / "beyond" / "model_c_folder"
MODEL_C_FOLDER_KEY = "model-c-folder"
#: The table's key of Model C's first seed alone
MODEL_C_KEY = "model-c"


def complete_model_c_runs(root: str | os.PathLike = MODEL_C_RUNS) -> list[Path]:
    """Model C's finished runs, in seed order, whose best weights are here (``runs.Run.best_weights``: the
    run's own, or the shipped model made from them). A run still in its first epoch has no manifest yet."""
    folders = sorted(Path(root).glob("seed*"), key=lambda p: int(p.name.removeprefix("seed")))
    return [f for f in folders if (f / "manifest.json").is_file() and runs.load_run(f).best_weights() is not None]


def mirrored_too(predict: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation: the mean of a face's probabilities and its mirror image's."""
    return lambda faces: (predict(faces) + predict(augment.mirrored(faces))) / 2


def model_c(run_dirs: Sequence[str | os.PathLike], tta: bool = False,
            key_title: tuple[str, str] = (MODEL_C_KEY, "Model C")) -> Contender:
    """Model C at its best validation epoch; several runs make an ensemble, the mean of their probabilities
    (the paper's "collaboration" of models), at the cost of one network call per member and face.
    ``key_title``: the key and title its rows start with."""
    from fer_lib.live.classify import FaceClassifier

    if not run_dirs:
        raise ValueError("Model C has no complete run yet (fer-lib train --model c --profile beyond)")
    loaded = [runs.load_run(d) for d in run_dirs]
    release = loaded[0].manifest["data"]["release"]
    members = [FaceClassifier(r.chosen()[0], release=release) for r in loaded]
    files = [r.best_weights() for r in loaded]  # what chosen() loaded, for the manifest

    def ensemble(faces: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(faces) for m in members], axis=0)

    predict = mirrored_too(ensemble) if tta else ensemble
    n = len(loaded)
    key = key_title[0] + (f"-ensemble{n}" if n > 1 else "") + ("-tta" if tta else "")
    title = key_title[1] + (f", ensemble of {n} seeds" if n > 1 else "") + (", mirrored too" if tta else "")
    val = fer2013.SPLITS[loaded[0].config.val_split]
    roles = {usage: peers.CHOSE_CHECKPOINT if usage == val else peers.HELD_OUT
             for usage in (fer2013.SPLITS[name] for name in SPLITS)}
    return Contender(key=key, title=title, predict_five=predict, params=n * _count_params(members[0].model),
                     trained_on=f"FER-2013 {release} release, five-class Training, augmented; the weights of the "
                                f"epoch with the best {val} accuracy",
                     roles=roles, weights={"runs": [r.path.as_posix() for r in loaded],
                                           "files": [checkout_relative(f) for f in files],
                                           "sha256": [_sha256(f) for f in files]})


#: What a split was to a model's training, from clean to not: a mean of models inherits its members' worst
ROLE_ORDER = (peers.HELD_OUT, peers.MONITORED, peers.CHOSE_CHECKPOINT)


def mean_of(members: Sequence[Contender], key: str, title: str) -> Contender:
    """A "collaboration" of different networks: the mean of their probabilities, one call of each per face, and
    no training of its own. A split is only as clean as its least clean role among the members."""
    def predict(faces: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_five(faces) for m in members], axis=0)

    roles = {split: max((m.roles[split] for m in members), key=ROLE_ORDER.index) for split in members[0].roles}
    return Contender(key=key, title=title, predict_five=predict, params=sum(m.params for m in members),
                     trained_on="; ".join(f"{m.title}: {m.trained_on}" for m in members), roles=roles,
                     weights={m.key: dict(m.weights) for m in members})


def model_c_contenders(run_dirs: Sequence[Path], model_b: Contender | None = None) -> list[Contender]:
    """Model C's rows, once it has runs: the first seed alone and mirrored too; with ``model_b``, the mean of
    the two networks (a collaboration of architectures that needs no other run); and, from two seeds on,
    the seeds' ensemble alone and mirrored too."""
    if not run_dirs:
        return []
    groups = [run_dirs[:1], *([run_dirs] if len(run_dirs) > 1 else [])]
    rows = [model_c(group, tta) for group in groups for tta in (False, True)]
    if model_b is not None:
        rows.insert(2, mean_of([rows[0], model_b], "model-c-with-b", f"{rows[0].title} and {model_b.title}, "
                                                                    "mean of the two"))
    return rows


def model_c_folder_contenders(run_dirs: Sequence[Path]) -> list[Contender]:
    """Model C trained on the equalized release, once it has a complete run: its first seed alone. Its
    contract equalizes every face, so the table shows what that does on both releases."""
    if not run_dirs:
        return []
    return [model_c(run_dirs[:1], key_title=(MODEL_C_FOLDER_KEY, "Model C, trained on the equalized release"))]


def our_contenders(model_c_runs: str | os.PathLike = MODEL_C_RUNS,
                   model_c_folder_runs: str | os.PathLike = MODEL_C_FOLDER_RUNS) -> list[Contender]:
    """The shipped Model B, then Model C's rows from its complete runs on either release (none before the first
    run completes): what both the peer table and chapter 9 set beside the peers."""
    shipped_b = model_b()
    return [shipped_b, *model_c_contenders(complete_model_c_runs(model_c_runs), shipped_b),
            *model_c_folder_contenders(complete_model_c_runs(model_c_folder_runs))]


# --- Measuring -------------------------------------------------------------------------------
def predict_all(contender: Contender, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities (n, 5) for faces (n, 48, 48) uint8, in batches."""
    if len(faces) == 0:
        return np.zeros((0, len(paper.CLASSES)), np.float32)
    return np.concatenate([contender.predict_five(faces[i: i + batch_size])
                           for i in range(0, len(faces), batch_size)])


def score(contender: Contender, split: Split) -> dict:
    """Accuracy and recall per class of a model on one split, with its parameter count."""
    if len(split) == 0:
        raise ValueError(f"split {split.name!r} has no images to score")
    predicted = predict_all(contender, split.x).argmax(axis=1)
    recall = evaluate.per_class_scores(evaluate.confusion_matrix(split.y, predicted))["recall"]
    return {"n": len(split), "accuracy": float((predicted == split.y).mean()),
            **{f"recall_{name}": float(recall[name]) for name in paper.CLASSES}, "params": contender.params}


def ms_per_face(contenders: Sequence[Contender], faces: np.ndarray, repeats: int) -> dict[str, float]:
    """Median milliseconds of one call on one face (batch 1) per model, over ``repeats`` calls on successive
    faces, after a warm-up; the models take turns, each round starting with the next one."""
    if repeats < 1 or len(faces) == 0:
        raise ValueError(f"timing needs at least one repeat and one face, got {repeats} and {len(faces)}")
    for contender in contenders:
        contender.predict_five(faces[:1])  # traces the compiled call
    times: dict[str, list[float]] = {c.key: [] for c in contenders}
    for i in range(repeats):
        face = faces[i % len(faces)][None]
        for contender in [*contenders[i % len(contenders):], *contenders[: i % len(contenders)]]:
            start = time.perf_counter()
            contender.predict_five(face)
            times[contender.key].append((time.perf_counter() - start) * 1000.0)
    return {key: statistics.median(values) for key, values in times.items()}


def table(contenders: Sequence[Contender], datasets: Sequence[FER2013], repeats: int) -> pd.DataFrame:
    """One row per model, release and split: accuracy, recall per class, parameters, ms per face (timed on
    the first release's PrivateTest faces) and the split's role in the model's training."""
    if len({c.key for c in contenders}) != len(contenders):
        raise ValueError("every model of the table needs its own key")
    timing = ms_per_face(contenders, datasets[0].split("val").x, repeats)
    rows = []
    for contender in contenders:
        for ds in datasets:
            for name in SPLITS:
                split = ds.split(name)
                rows.append({"model": contender.key, "title": contender.title, "release": ds.release,
                             "split": split.usage, "split_role": contender.roles[split.usage],
                             **score(contender, split), "ms_per_face": timing[contender.key]})
    return pd.DataFrame(rows)


def accuracy_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) per model (rows) and release and split (columns), with parameters and ms per face."""
    wide = rows.pivot_table(index=["model", "title"], columns=["release", "split"], values="accuracy", sort=False)
    wide = wide * 100
    wide.columns = [f"{release} {split} (%)" for release, split in wide.columns]
    extra = rows.groupby(["model", "title"], sort=False)[["params", "ms_per_face"]].first()
    return wide.join(extra).reset_index(level="model", drop=True)


# --- Writing ---------------------------------------------------------------------------------
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def manifest(contenders: Sequence[Contender], datasets: Sequence[FER2013], repeats: int,
             load: tuple[tuple[float, ...], tuple[float, ...]]) -> dict:
    """What the table was made from and on: models (weights, training, split roles), data checksums,
    the timing protocol with the machine's load average before and after, hardware, software, commit, date."""
    return {
        "date": provenance.now(),
        "environment": provenance.environment(),
        "packages": {name: _version(name) for name in PACKAGES},
        "data": {ds.release: {"source": ds.source, "sha256": ds.checksum, "images": len(ds)} for ds in datasets},
        "classes": list(paper.CLASSES),
        "seven_to_five": "a seven-class model's outputs for angry, happy, neutral, sad and surprise, renormalized",
        "timing": {"faces": f"{datasets[0].release} release, PrivateTest, one per call (batch 1)",
                   "statistic": f"median of {repeats} calls per model, the models taking turns",
                   "load_average_before": list(load[0]), "load_average_after": list(load[1])},
        "models": {c.key: {"title": c.title, "params": c.params, "trained_on": c.trained_on,
                           "split_roles": dict(c.roles), "weights": dict(c.weights)} for c in contenders},
    }


def write(rows: pd.DataFrame, meta: dict, out: str | os.PathLike = OUT_DIR) -> Path:
    """``peers.csv`` (the rows, fractions to ``evaluate.STORED_DIGITS`` digits, ms to 3) and ``manifest.json``
    in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fractions = ["accuracy", *(f"recall_{name}" for name in paper.CLASSES)]
    rounded = {c: rows[c].round(evaluate.STORED_DIGITS) for c in fractions}
    rows.assign(**rounded, ms_per_face=rows["ms_per_face"].round(3)).to_csv(out / "peers.csv", index=False)
    (out / "manifest.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out / "peers.csv"


def run(datasets: Sequence[FER2013], peer_keys: Sequence[str] = tuple(peers.PEERS), repeats: int = 200,
        out: str | os.PathLike = OUT_DIR) -> pd.DataFrame:
    """The whole table: the peers (their packages must be installed), Model A, the shipped Model B and Model C
    (where it has complete runs) on ``datasets``, written to ``out``."""
    contenders = [*(peer_contender(key) for key in peer_keys), model_a(), *our_contenders()]
    before = os.getloadavg()
    rows = table(contenders, datasets, repeats)
    write(rows, manifest(contenders, datasets, repeats, (before, os.getloadavg())), out)
    return rows
