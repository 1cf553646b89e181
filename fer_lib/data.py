"""FER-2013 in memory: both public releases, the paper's five-class view, and a cache.

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
untouched as a test set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fer_lib import paper
from fer_lib.paths import cache_dir, shared_dir

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


CSV_NAMES = ("fer2013.csv", "fer2013.csv.gz", "icml_face_data.csv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
KAGGLE_DATASET = "msambare/fer2013"
#: The challenge itself: its icml_face_data.csv is the CSV release (original pixels).
KAGGLE_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
KAGGLE_COMPETITION_FILE = "icml_face_data.csv"
CACHE_VERSION = 1

ON_ERROR = ("raise", "skip")


class DataError(ValueError):
    """The data on disk is malformed: the message names the file and row or path."""


class DataNotFoundError(FileNotFoundError):
    """No copy of FER-2013 was found; the message says how to get one."""


class ChecksumError(DataError):
    """Files that do not match their ``SHA256SUMS`` entry."""


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


# --- Finding the data ---------------------------------------------------------
def _release_in(path: Path) -> Path | None:
    """The data file or folder that ``path`` holds, or None."""
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    for name in CSV_NAMES:
        if (path / name).is_file():
            return path / name
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path
    return None


def _how_to_get_data() -> str:
    shared = shared_dir()
    return (
        "FER-2013 was not found. Any one of these works:\n"
        "  1. pass a path: load_fer2013('/path/to/fer2013.csv') or "
        "'fer-lib data --path /path/to/data';\n"
        "  2. set FER2013_DIR to the challenge CSV (fer2013.csv or .csv.gz) or to the "
        "image-folder release (the folder holding train/ and test/);\n"
        f"  3. place it at {shared / 'fer2013-csv'} or {shared / 'fer2013'};\n"
        f"  4. put it in the user cache, {cache_dir() / 'fer2013'};\n"
        "  5. download it from Kaggle (needs internet and Kaggle credentials): "
        "load_fer2013(download=True), 'fer-lib data --download' or FER2013_DOWNLOAD=1. "
        "This fetches the challenge CSV (original pixels, as the paper used) if you have "
        "accepted the competition's rules at "
        f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}/rules, "
        f"and otherwise the image-folder release {KAGGLE_DATASET} (histogram-equalized)."
    )


def release_of(source: Path) -> str:
    """Which release a located source is: a CSV file or an image folder."""
    return RELEASE_CSV if source.is_file() else RELEASE_FOLDER


def locate_data(path: str | os.PathLike | None = None, *, download: bool = False,
                release: str | None = None) -> Path:
    """The FER-2013 source to read, in order: ``path``, ``FER2013_DIR``,
    ``../shared/fer2013-csv`` then ``../shared/fer2013`` beside the repository,
    the user cache, and an opt-in Kaggle download. ``release`` ("csv" or
    "folder") passes over the places that hold the other release.

    An explicit ``path`` or ``FER2013_DIR`` that holds no data is an error,
    never a silent fall-through to another copy.
    """
    if release not in (None, RELEASE_CSV, RELEASE_FOLDER):
        raise ValueError(f"release must be {RELEASE_CSV!r}, {RELEASE_FOLDER!r} or None, got {release!r}")

    def wanted(found: Path | None) -> bool:
        return found is not None and (release is None or release_of(found) == release)

    # a given path must hold the release asked for; FER2013_DIR is passed over when it holds the other one
    for explicit, what in ((path, "the given path"), (os.environ.get("FER2013_DIR"), "FER2013_DIR")):
        if explicit:
            found = _release_in(Path(explicit).expanduser())
            if found is None:
                raise DataNotFoundError(
                    f"{what} {explicit} holds no FER-2013 release: expected a CSV file "
                    f"(one of {', '.join(CSV_NAMES)}) or a folder with train/ and test/"
                )
            if wanted(found):
                return found
            if what == "the given path":
                raise DataNotFoundError(
                    f"{what} {explicit} holds the {release_of(found)} release, not the {release} one")
    shared = shared_dir()
    for candidate in (shared / "fer2013-csv", shared / "fer2013", cache_dir() / "fer2013"):
        found = _release_in(candidate)
        if wanted(found):
            return found
    if download or os.environ.get("FER2013_DOWNLOAD") == "1":
        found = _download()
        if wanted(found):
            return found
    raise DataNotFoundError((f"the {release} release of FER-2013 was not found. " if release else "")
                            + _how_to_get_data())


def _download() -> Path:
    """The challenge CSV where the user may download it (original pixels, as the paper
    used), else the image-folder release, with a warning that says what that changes."""
    try:
        import kagglehub
        import requests
        from kagglehub import exceptions
    except ImportError as err:
        raise DataNotFoundError("downloading needs kagglehub: pip install kagglehub\n" + _how_to_get_data()) from err
    refused = (requests.RequestException, exceptions.UnauthenticatedError, exceptions.CredentialError,
               exceptions.NotFoundError, exceptions.BackendError)
    try:
        return Path(kagglehub.competition_download(KAGGLE_COMPETITION, KAGGLE_COMPETITION_FILE))
    except refused as err:
        warnings.warn(
            f"Kaggle did not give the challenge CSV ({type(err).__name__}: {err}); accept the rules at "
            f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}/rules to get the original pixels the paper used. "
            f"Falling back to the folder release {KAGGLE_DATASET}, whose images are histogram-equalized: "
            "accuracies on it differ from the CSV's by a few points.",
            stacklevel=3,
        )
    found = _release_in(Path(kagglehub.dataset_download(KAGGLE_DATASET)))
    if found is None:
        raise DataNotFoundError(f"the Kaggle download of {KAGGLE_DATASET} holds no train/ or test/ folder")
    return found


# --- Integrity ----------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_checksums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` in ``folder`` as {relative path: hex digest}; empty if absent."""
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        return {}
    sums = {}
    for lineno, line in enumerate(sums_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line.strip())
        if match is None:
            raise DataError(f"{sums_file}: line {lineno} is not '<sha256>  <file>'")
        sums[match.group(2)] = match.group(1).lower()
    return sums


def check_digests(folder: Path, expected: dict[str, str], actual: dict[str, str]) -> None:
    """Raise one ChecksumError naming every listed file that is missing or differs."""
    bad = []
    for name, digest in sorted(expected.items()):
        if name not in actual:
            bad.append(f"  {name}: listed in SHA256SUMS but missing")
        elif actual[name] != digest:
            bad.append(f"  {name}: sha256 {actual[name][:16]}... expected {digest[:16]}...")
    if bad:
        raise ChecksumError(f"{folder / 'SHA256SUMS'}: {len(bad)} file(s) do not match:\n" + "\n".join(bad))


def verify_checksums(source: str | os.PathLike, progress: bool = True) -> int:
    """Check a release against the ``SHA256SUMS`` beside it; returns the number
    of files checked (0 where there is no such file)."""
    source = Path(source)
    folder = source.parent if source.is_file() else source
    expected = read_checksums(folder)
    if source.is_file():
        expected = {k: v for k, v in expected.items() if k == source.name}
    actual = {}
    for name in tqdm(sorted(expected), desc="verify", unit="file", disable=not progress or len(expected) < 100):
        path = folder / name
        if path.is_file():
            actual[name] = sha256_hex(path.read_bytes())
    check_digests(folder, expected, actual)
    return len(expected)


# --- Official counts --------------------------------------------------------------
def check_official_counts(data: FER2013) -> None:
    """Raise a DataError naming every usage and class whose count differs from the official one."""
    counts = data.counts()
    wrong = [
        f"  {usage}/{name}: {counts.loc[usage, name]} images, official {n}"
        for usage, per_class in OFFICIAL_COUNTS.items()
        for name, n in per_class.items()
        if counts.loc[usage, name] != n
    ]
    if wrong:
        raise DataError(f"{data.source}: counts differ from the official FER-2013 counts:\n" + "\n".join(wrong))


# --- The cache -----------------------------------------------------------------------
def _file_stats(folder: str, prefix: str = "") -> Iterator[str]:
    """'relative path, size, mtime' for every file below ``folder`` (one stat each)."""
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=True):
                yield from _file_stats(entry.path, f"{prefix}{entry.name}/")
            else:
                stat = entry.stat()
                yield f"{prefix}{entry.name}\t{stat.st_size}\t{stat.st_mtime_ns}"


def source_fingerprint(source: Path) -> str:
    """A key that changes whenever the source's files change (names, sizes, mtimes)."""
    if source.is_file():
        stat = source.stat()
        listing = [f"{source.name}\t{stat.st_size}\t{stat.st_mtime_ns}"]
    else:
        listing = list(_file_stats(str(source)))
    return sha256_hex("\n".join([str(source.resolve()), *listing]).encode())


def _cache_path(source: Path, on_error: str, resize: bool) -> Path:
    key = sha256_hex(f"{CACHE_VERSION}|{source_fingerprint(source)}|{on_error}|{resize}".encode())
    return cache_dir() / f"fer2013-{key[:20]}.npz"


def _save_cache(path: Path, data: FER2013) -> None:
    """Write atomically: a crash leaves either the old cache or none, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "release": data.release,
        "source": data.source,
        "checksum": data.checksum,
        "skipped": [[s.item, s.reason] for s in data.skipped],
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f, images=data.images, labels=data.labels, usage=data.usage, ids=data.ids, meta=np.array(json.dumps(meta))
        )
    os.replace(tmp, path)


def _load_cache(path: Path) -> FER2013 | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            return FER2013(
                images=npz["images"],
                labels=npz["labels"],
                usage=npz["usage"],
                ids=npz["ids"],
                release=meta["release"],
                source=meta["source"],
                checksum=meta["checksum"],
                skipped=tuple(Skipped(*s) for s in meta["skipped"]),
            )
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable or stale format: rebuild


def load_fer2013(
    path: str | os.PathLike | None = None,
    *,
    on_error: str = "raise",
    resize: bool = False,
    verify: bool = False,
    cache: bool = True,
    download: bool = False,
    release: str | None = None,
    progress: bool = True,
) -> FER2013:
    """Load FER-2013 from wherever :func:`locate_data` finds it.

    The first load parses the source (and checks its ``SHA256SUMS``) and writes
    a compressed cache keyed by the source's file names, sizes and times; later
    loads read the cache. ``verify=True`` checks the checksums again.
    With the full data set, the official counts per usage and class are asserted.
    ``release`` ("csv" or "folder") asks for one release in particular.
    """
    source = locate_data(path, download=download, release=release)
    cached = _cache_path(source, on_error, resize) if cache else None
    data = _load_cache(cached) if cached is not None and cached.is_file() else None
    if data is not None and verify:
        verify_checksums(source, progress=progress)
    if data is None:
        from fer_lib import readers  # they build this module's FER2013, so they import it

        if source.is_file():
            verify_checksums(source, progress=progress)
            data = readers.read_csv_release(source, on_error=on_error, resize=resize, progress=progress)
        else:
            data = readers.read_folder_release(source, on_error=on_error, resize=resize, progress=progress)
        if len(data) == OFFICIAL_TOTAL:
            check_official_counts(data)
        if cached is not None:
            _save_cache(cached, data)
    return data
