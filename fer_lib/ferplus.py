"""FER+ (Barsoum et al., 2016): ten crowd votes for every FER-2013 image, a second truth.

The votes come as ``fer2013new.csv`` (rows in the challenge CSV's order) and, for the
image-folder release, ``kaggle_folder_votes.csv`` (by file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib.data import DataNotFoundError
from fer_lib.fer2013 import RELEASE_CSV, RELEASE_FOLDER
from fer_lib.paths import cache_dir, shared_dir

#: FER+'s vote columns (Barsoum et al., 2016), ten taggers per image.
VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                 "unknown", "NF")
#: FER+'s names of the paper's five classes, in paper.CLASSES order.
PAPER_CLASSES = ("anger", "happiness", "neutral", "sadness", "surprise")


def locate(path: str | os.PathLike | None = None) -> Path:
    """The FER+ folder: ``path``, ``FERPLUS_DIR``, ``../shared/ferplus`` or the user cache."""
    candidates = [path, os.environ.get("FERPLUS_DIR"), shared_dir() / "ferplus",
                  cache_dir() / "ferplus"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "fer2013new.csv").is_file():
            return Path(candidate)
    raise DataNotFoundError(
        "FER+ labels were not found: pass a folder holding fer2013new.csv, set FERPLUS_DIR, or put "
        f"https://github.com/microsoft/FERPlus's fer2013new.csv in {cache_dir() / 'ferplus'}"
    )


def votes(ids: np.ndarray, release: str, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """FER+ vote counts for the images ``ids`` of a release, one row each, in order;
    all zero where FER+ has no image for it."""
    folder = locate(path)
    if release == RELEASE_CSV:
        by_row = pd.read_csv(folder / "fer2013new.csv")
        rows = np.array([int(i.split()[1]) for i in ids], dtype=np.int64)
        table = by_row.loc[rows, list(VOTES)]
    elif release == RELEASE_FOLDER:
        by_file = pd.read_csv(folder / "kaggle_folder_votes.csv").set_index("file")
        table = by_file.reindex(ids)[list(VOTES)]
    else:
        raise ValueError(f"unknown release {release!r}")
    return table.fillna(0).astype(np.int64).reset_index(drop=True)


def majority(ids: np.ndarray, release: str, path: str | os.PathLike | None = None) -> np.ndarray:
    """The FER+ label in paper.CLASSES order (0-4) where the taggers' strict plurality
    is one of the five classes; -1 where it is another class, a tie, or no image."""
    counts = votes(ids, release, path).to_numpy()
    top = counts.max(axis=1)
    unique = (counts == top[:, None]).sum(axis=1) == 1
    winner = counts.argmax(axis=1)
    to_paper = np.full(len(VOTES), -1)
    for label, name in enumerate(PAPER_CLASSES):
        to_paper[VOTES.index(name)] = label
    return np.where(unique & (top > 0), to_paper[winner], -1)
