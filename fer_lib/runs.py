"""Run folders as the commands and the book read them: history, manifest, status, shipping.

:mod:`fer_lib.train` writes a run folder; this module only reads it (and copies a
run's weights into the package as the shipped model).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from fer_lib import fer2013, paper, provenance
from fer_lib.checkpoints import CHECKPOINT, FINAL_MODEL, save_final
from fer_lib.paths import RESULTS_DIR
from fer_lib.train import BEST_MODEL, HISTORY_COLUMNS, PREDICTIONS, TrainConfig, config_from_manifest


def run_folder(profile: str, model: str) -> Path:
    """A profile's run of one of the paper's models: ``results/<profile>/model_<a|b>``."""
    return Path(RESULTS_DIR) / profile / f"model_{model.lower()}"


def read_history(run_dir: str | os.PathLike):
    """A run's history as a DataFrame (one row per finished epoch)."""
    import pandas as pd

    return pd.read_csv(Path(run_dir) / "history.csv")


def read_predictions(run_dir: str | os.PathLike):
    """A run's per-image predictions (columns split, id, label, best, last, best_epoch)."""
    import pandas as pd

    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions (the run is not complete, or predates them)")
    return pd.read_csv(path)


def best_row(history):
    """The history's row of the best validation epoch: the first of equals, as the runner keeps ``best.keras``."""
    return history.loc[history["val_accuracy"].idxmax()]


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
        return provenance.segment_commits(self.manifest["segments"])

    def provenance(self) -> str:
        """Commit, data checksum, seed, hardware and wall time: enough to weigh a number from this run."""
        seg = self.manifest["segments"][-1]
        return (
            f"Model {self.name}: {self.status()}, seed {self.config.seed}, profile {self.config.profile}; "
            f"commit {', '.join(self.commits())}; data sha256 {self.manifest['data']['sha256'][:12]}; "
            f"{provenance.machine_text(seg)}, {provenance.software_text(seg)}; "
            f"{self.wall_hours():.1f} h of wall time in {provenance.counted(len(self.manifest['segments']), 'session')}"
        )

    def latest(self, attempts: int = 10):
        """The latest weights (final, else the last checkpoint's) and the history they belong to.

        A run still training replaces ``checkpoint/`` after every epoch (by two
        renames), so the folder is copied first and read from the copy; a copy
        caught in the middle of a replacement fails to load and is tried again.
        """
        import tempfile

        import pandas as pd

        from fer_lib import models

        if (self.path / FINAL_MODEL).is_file():
            return models.load_model(self.path / FINAL_MODEL), self.history
        problems = []
        for _ in range(attempts):
            for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
                with tempfile.TemporaryDirectory() as tmp:
                    copy = Path(tmp) / CHECKPOINT
                    try:
                        shutil.copytree(self.path / name, copy)
                        state = json.loads((copy / "state.json").read_text())
                        model = models.load_model(copy / "model.keras")
                    except (OSError, ValueError, KeyError) as err:
                        problems.append(f"{name}: {type(err).__name__}: {err}")
                        continue
                return model, pd.DataFrame(state["history"], columns=list(HISTORY_COLUMNS))
            time.sleep(1.0)
        raise FileNotFoundError(f"{self.path}: no loadable checkpoint after {attempts} attempts:\n"
                                + "\n".join(problems[-2:]))

    def best_weights(self) -> Path | None:
        """The file of a complete keep-best run's chosen weights: its ``best.keras``, or, in a checkout without
        it (a run's weights stay out of git), the shipped model made from them (``fer-lib ship``: the same
        weights without the optimizer's state); None where neither is there."""
        if not (self.config.keep_best and self.complete):
            return None
        if (self.path / BEST_MODEL).is_file():
            return self.path / BEST_MODEL
        from fer_lib.paths import repository_root, shipped_file, shipped_models

        epoch, here = int(best_row(self.history)["epoch"]), self.path.resolve()
        for name in shipped_models():
            meta = json.loads(shipped_file(name, ".json").read_text())
            if (repository_root() / meta["run"]).resolve() == here and meta.get("epoch") == epoch:
                return shipped_file(name)
        return None

    def chosen(self):
        """The weights the run stands for and the epoch they are from: a complete run that keeps its best
        epoch (``keep_best``: the ``beyond`` profile, which stops early on validation) gives that epoch's,
        any other run its latest."""
        from fer_lib import models

        if self.config.keep_best and self.complete:
            weights = self.best_weights()
            if weights is None:
                raise FileNotFoundError(f"{self.path}: neither {BEST_MODEL} nor a shipped model made from this "
                                        "run's best epoch is here (a run's weights are not in git)")
            return models.load_model(weights), int(best_row(self.history)["epoch"])
        model, history = self.latest()
        return model, int(history["epoch"].iloc[-1])


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder; a clear error when it is not one."""
    path = Path(run_dir)
    for name in ("manifest.json", "history.csv"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a run folder: {name} is missing")
    manifest = json.loads((path / "manifest.json").read_text())
    return Run(path, config_from_manifest(manifest["config"]), manifest, read_history(path))


def export_pretrained(run_dir: str | os.PathLike, dest: str | os.PathLike | None = None) -> dict:
    """Copy a run's weights (``Run.chosen``) into the package as a shipped model, with metadata that
    says what they are (epoch, accuracy, data, commit): by default as ``fer_lib/weights/model_<x>.keras``.

    Until a run finishes, this ships its last checkpoint, and the metadata
    says how many of the planned epochs it has had.
    """
    import hashlib

    from fer_lib import models
    from fer_lib.paths import WEIGHTS_DIR

    run = load_run(run_dir)
    manifest = run.manifest
    name = f"model_{manifest['config']['model']}"
    dest = Path(dest) if dest is not None else WEIGHTS_DIR / f"{name}.keras"
    dest.parent.mkdir(parents=True, exist_ok=True)
    model, epoch = run.chosen()
    save_final(model, dest)
    last = run.history.iloc[-1]
    chosen = run.history[run.history["epoch"] == epoch].iloc[0]
    meta = {
        "model": name,
        "classes": list(paper.CLASSES),
        "input_shape": list(models.INPUT_SHAPE),
        "input": "raw grey values 0-255, float32, shape (n, 48, 48, 1)",
        "release": manifest["data"]["release"],
        "histogram_equalized_input": manifest["data"]["release"] == fer2013.RELEASE_FOLDER,
        "epochs_trained": int(last["epoch"]),
        "epochs_planned": manifest["config"]["epochs"],
        "complete": int(last["epoch"]) == manifest["config"]["epochs"],
        "epoch": epoch,
        "val_accuracy": round(float(chosen["val_accuracy"]), 4),
        "train_accuracy": round(float(chosen["accuracy"]), 4),
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
    """Every run folder below ``root`` (a manifest with a history beside it; other results, such as the peer
    table's, have manifests too): how far it is and how long the rest will take at its recent pace (the median
    of its last ten epochs)."""
    import pandas as pd

    rows = []
    for manifest in sorted(Path(root).rglob("manifest.json")):
        if not (manifest.parent / "history.csv").is_file():
            continue
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

