"""FER-2013 itself: its vocabulary, the paper's five-class view of it, and one release in memory.

Two public releases of FER-2013 exist and they are not the same pixels:

* the challenge CSV (``emotion,pixels,Usage``), the original grey values, which
  the paper used and which is our default;
* the Kaggle image-folder release (``train/<class>/Training_<id>.jpg``,
  ``test/<class>/PublicTest_<id>.jpg`` ...), whose images were
  histogram-equalized before they were saved as JPEG.

Both load into one :class:`FER2013` object that says which release it holds,
so that training and live pre-processing can be kept consistent. The paper's
view is five classes (angry, happy, normal = neutral, sad, shock = surprise),
trained on ``Training`` and validated on ``PrivateTest``; ``PublicTest`` stays
untouched as a test set. :mod:`fer_lib.readers` reads the releases into a
:class:`FER2013`, and :mod:`fer_lib.data` finds, caches and loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import pandas as pd

from fer_lib import paper

# --- The data set's own vocabulary -------------------------------------------
#: FER-2013's emotion codes 0-6, in code order.
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48
N_PIXELS = IMAGE_SIZE * IMAGE_SIZE

#: The paper's five classes (``paper.CLASSES``, label 0-4) as FER-2013 codes:
#: angry=0, happy=3, normal=neutral=6, sad=4, shock=surprise=5.
PAPER_CODES: tuple[int, ...] = (0, 3, 6, 4, 5)
#: The paper's splits: name -> FER-2013 usage.
SPLITS: dict[str, str] = {"train": "Training", "val": "PrivateTest", "test": "PublicTest"}

#: Official counts per usage and class (Goodfellow et al., 2013).
OFFICIAL_COUNTS: dict[str, dict[str, int]] = {
    "Training": {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215,
                 "sad": 4830, "surprise": 3171, "neutral": 4965},
    "PublicTest": {"angry": 467, "disgust": 56, "fear": 496, "happy": 895,
                   "sad": 653, "surprise": 415, "neutral": 607},
    "PrivateTest": {"angry": 491, "disgust": 55, "fear": 528, "happy": 879,
                    "sad": 594, "surprise": 416, "neutral": 626},
}
OFFICIAL_TOTAL = sum(sum(c.values()) for c in OFFICIAL_COUNTS.values())  # 35,887

RELEASE_CSV = "csv"
RELEASE_FOLDER = "folder"


def is_equalized(release: str) -> bool:
    """Whether a release's faces were histogram-equalized (the folder release's were, before JPEG), and so
    whether live crops must be too: the one place that rule lives."""
    if release not in (RELEASE_CSV, RELEASE_FOLDER):
        raise ValueError(f"release must be {RELEASE_CSV!r} or {RELEASE_FOLDER!r}, got {release!r}")
    return release == RELEASE_FOLDER


class DataError(ValueError):
    """The data on disk is malformed: the message names the file and row or path."""


@dataclass(frozen=True)
class Skipped:
    """One input item left out under ``on_error="skip"``, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class Split:
    """One split of the paper's five-class view, ready for a model."""

    name: str
    usage: str
    x: np.ndarray  # (n, 48, 48) uint8 grey values
    y: np.ndarray  # (n,) int64 labels in paper.CLASSES order
    ids: np.ndarray  # (n,) where each image came from (CSV row or file)

    def __len__(self) -> int:
        return len(self.y)

    def equalized(self) -> Split:
        """The same images histogram-equalized (``cv2.equalizeHist``), as the folder release's
        were before they were saved as JPEG."""
        x = np.stack([cv2.equalizeHist(image) for image in self.x]) if len(self) else self.x
        return replace(self, name=f"{self.name}, equalized", x=x)


@dataclass(frozen=True)
class FER2013:
    """All images of one release, with FER-2013's seven emotion codes."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int8, FER-2013 codes 0-6
    usage: np.ndarray  # (N,) int8, index into USAGES
    ids: np.ndarray  # (N,) str: "row <i>" (CSV) or a path relative to the release
    release: str  # RELEASE_CSV or RELEASE_FOLDER
    source: str  # the file or folder read
    checksum: str  # sha256 of the source's content
    skipped: tuple[Skipped, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        if not (len(self.labels) == len(self.usage) == len(self.ids) == n):
            raise ValueError("images, labels, usage and ids must have the same length")
        if self.release not in (RELEASE_CSV, RELEASE_FOLDER):
            raise ValueError(f"unknown release {self.release!r}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def histogram_equalized(self) -> bool:
        """True for the folder release, whose pixels were equalized before saving."""
        return self.release == RELEASE_FOLDER

    def counts(self) -> pd.DataFrame:
        """Images per usage (rows) and FER-2013 class (columns)."""
        table = pd.crosstab(
            pd.Categorical.from_codes(self.usage, USAGES),
            pd.Categorical.from_codes(self.labels, FER_CLASSES),
            dropna=False,
        )
        table.index.name, table.columns.name = "usage", "class"
        return table

    def five_class_counts(self) -> pd.DataFrame:
        """Images per paper split (rows) and paper class (columns), with totals."""
        full = self.counts()
        table = pd.DataFrame(
            {name: full[FER_CLASSES[code]] for name, code in zip(paper.CLASSES, PAPER_CODES)}
        ).loc[list(SPLITS.values())]
        table.index = [f"{name} ({usage})" for name, usage in SPLITS.items()]
        table["total"] = table.sum(axis=1)
        return table

    def split(self, name: str) -> Split:
        """The paper's five-class view of one split: "train", "val" or "test"."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: expected one of {sorted(SPLITS)}")
        usage = SPLITS[name]
        to_paper = np.full(len(FER_CLASSES), -1, dtype=np.int64)
        to_paper[list(PAPER_CODES)] = np.arange(len(PAPER_CODES))
        keep = (self.usage == USAGES.index(usage)) & (to_paper[self.labels] >= 0)
        return Split(name, usage, self.images[keep], to_paper[self.labels[keep]], self.ids[keep])
