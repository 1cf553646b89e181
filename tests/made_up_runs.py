"""Runs made up to know the answer: linear accuracies, one session, a known manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_lib import runs, train


def history(epochs: int, train_acc: float = 0.60, val_acc: float = 0.55, val_loss_rises: bool = False) -> pd.DataFrame:
    """A run whose accuracies climb linearly to ``train_acc`` / ``val_acc`` at its last epoch."""
    e = np.arange(1, epochs + 1)
    ramp = e / max(epochs, 1)
    val_loss = 0.5 + e / epochs if val_loss_rises else 1.1 / e
    return pd.DataFrame({"epoch": e, "loss": 1 / e, "accuracy": train_acc * ramp, "val_loss": val_loss,
                         "val_accuracy": val_acc * ramp, "seconds": 12.5, "ms_per_step": 66.0})


def run(model: str, epochs: int, planned: int, **kwargs) -> runs.Run:
    seg = {"start": "2026-01-01T00:00:00+00:00", "first_epoch": 1, "last_epoch": epochs, "cpu": "Test CPU",
           "cores": 2, "tf_threads": 1, "tensorflow": "2.21.0", "keras": "3.15.1", "python": "3.11.7",
           "git_commit": "0123456789abcdef+dirty", "wall_seconds": 7200.0}
    manifest = {"config": {"model": model.lower(), "epochs": planned, "seed": 0, "profile": "paper"},
                "data": {"release": "csv", "sha256": "ab" * 32}, "segments": [seg], "wall_seconds": 7200.0}
    return runs.Run(None, train.TrainConfig(**manifest["config"]), manifest, history(epochs, **kwargs))
