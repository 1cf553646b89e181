"""A run's saved models: the checkpoint it resumes from, and its final weights.

``checkpoint/`` holds the model, the optimizer and every random-number state (Keras' seed
generators, which draw the dropout masks) after the last finished epoch; ``model.keras``
holds the final weights without the optimizer. Both are written so that a crash at any
moment leaves the old one or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np

from fer_lib import provenance

CHECKPOINT = "checkpoint"
FINAL_MODEL = "model.keras"
LOCK = ".lock"


def _seed_states(model) -> list:
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def write_checkpoint(out: Path, model, epoch: int, history: list[dict], best: dict | None = None) -> None:
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


def read_checkpoint(out: Path):
    """(model, state) from the last finished epoch, or (None, None) for a fresh run."""
    import keras

    from fer_lib import models  # noqa: F401  (registers the fused batch normalization the checkpoint holds)

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


def save_final(model, path: Path) -> None:
    """The trained model without optimizer state (a third of the size), written atomically."""
    import keras

    fresh = keras.Model.from_config(model.get_config())  # uncompiled: no optimizer
    fresh.set_weights(model.get_weights())
    tmp = path.with_name(path.stem + ".tmp.keras")
    fresh.save(tmp)
    os.replace(tmp, path)


class RunInUseError(RuntimeError):
    """Another process is training in this run folder."""


@contextlib.contextmanager
def locked(out: Path):
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
    handle.write(f"process {os.getpid()} on {platform.node()} since {provenance.now()}")
    handle.flush()
    try:
        yield
    finally:
        handle.close()
