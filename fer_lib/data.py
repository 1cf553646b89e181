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

import csv
import gzip
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

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
def repository_root() -> Path:
    """The checkout this package lives in (meaningful for editable installs)."""
    return Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Where caches (and a user's own copy of the data) live: FER_LIB_CACHE or ~/.cache/fer_lib."""
    if os.environ.get("FER_LIB_CACHE"):
        return Path(os.environ["FER_LIB_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "fer_lib"


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
    shared = repository_root().parent / "shared"
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
    shared = repository_root().parent / "shared"
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
def _sha256(data: bytes) -> str:
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


def _check_digests(folder: Path, expected: dict[str, str], actual: dict[str, str]) -> None:
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
            actual[name] = _sha256(path.read_bytes())
    _check_digests(folder, expected, actual)
    return len(expected)


# --- Errors, collected or raised ----------------------------------------------
class _Problems:
    """Raise at the first problem, or collect every one, as ``on_error`` says."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.items: list[Skipped] = []

    def __call__(self, item: str, reason: str) -> None:
        if self.on_error == "raise":
            raise DataError(f"{item}: {reason}")
        self.items.append(Skipped(item, reason))


def _fit_size(image: np.ndarray, where: str, resize: bool, problems: _Problems) -> np.ndarray | None:
    if image.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return image
    if resize:
        return cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    problems(where, f"image is {image.shape[1]}x{image.shape[0]}, expected 48x48 (pass resize=True to resize)")
    return None


def _assemble(kept: list[tuple[np.ndarray, int, int, str]], release: str, source: Path, checksum: str,
              problems: _Problems) -> FER2013:
    """One FER2013 from the (image, code, usage index, id) items a reader kept."""
    if not kept:
        raise DataError(f"{source}: no usable images")
    images, labels, usages, ids = zip(*kept)
    return FER2013(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int8),
        usage=np.array(usages, dtype=np.int8),
        ids=np.array(ids),
        release=release,
        source=str(source),
        checksum=checksum,
        skipped=tuple(problems.items),
    )


# --- The challenge CSV ----------------------------------------------------------
def _open_text(path: Path, raw: bytes) -> io.TextIOBase:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8-sig"), newline="")


def _parse_pixels(text: str, where: str, resize: bool, problems: _Problems) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns, rather than fails, on a stray token
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        bad = next((t for t in text.split() if not t.isdigit()), text.strip()[:20])
        problems(where, f"pixel value {bad!r} is not an integer")
        return None
    if values.size and (values.min() < 0 or values.max() > 255):
        problems(where, f"pixel values must be 0-255, found {values.min()}..{values.max()}")
        return None
    side = round(values.size**0.5)
    if values.size != N_PIXELS and not (resize and side > 0 and side * side == values.size):
        problems(where, f"has {values.size} pixel values, expected {N_PIXELS} (48x48)")
        return None
    return _fit_size(values.astype(np.uint8).reshape(side, side), where, resize, problems)


def _csv_columns(header: list[str], path: Path) -> dict[str, int]:
    names = [h.strip() for h in header]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in names]
    if missing:
        raise DataError(f"{path}: header {header} lacks column(s) {missing}; expected emotion,pixels,Usage")
    return {c: names.index(c) for c in ("emotion", "pixels", "Usage")}


def read_csv_release(
    path: str | os.PathLike, *, on_error: str = "raise", resize: bool = False, progress: bool = True
) -> FER2013:
    """Read the challenge CSV (plain or gzipped): ``emotion,pixels,Usage``, codes 0-6."""
    path = Path(path)
    problems = _Problems(on_error)
    raw = path.read_bytes()
    try:
        reader = csv.reader(_open_text(path, raw))
        header = next(reader, None)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot be read as a (gzipped) CSV file: {err}") from err
    if header is None:
        raise DataError(f"{path}: the file is empty")
    cols = _csv_columns(header, path)
    kept: list[tuple[np.ndarray, int, int, str]] = []
    rows = tqdm(reader, desc=f"read {path.name}", unit=" rows", total=OFFICIAL_TOTAL, disable=not progress)
    for row_index, row in enumerate(rows):
        where = f"{path}: row {row_index} (line {row_index + 2})"
        if len(row) != len(header):
            problems(where, f"has {len(row)} fields, expected {len(header)} ({','.join(header)})")
            continue
        emotion, usage = row[cols["emotion"]].strip(), row[cols["Usage"]].strip()
        if emotion not in {str(i) for i in range(len(FER_CLASSES))}:
            problems(where, f"emotion code {emotion!r} is not one of 0-6")
            continue
        if usage not in USAGES:
            problems(where, f"usage {usage!r} is not one of {', '.join(USAGES)}")
            continue
        image = _parse_pixels(row[cols["pixels"]], where, resize, problems)
        if image is None:
            continue
        kept.append((image, int(emotion), USAGES.index(usage), f"row {row_index}"))
    return _assemble(kept, RELEASE_CSV, path, _sha256(raw), problems)


# --- The image-folder release ---------------------------------------------------
def _truncated(data: bytes) -> bool:
    """JPEG and PNG files end with a fixed marker; a cut-off file does not."""
    if data.startswith(b"\xff\xd8"):  # JPEG
        return not data.rstrip(b"\0").endswith(b"\xff\xd9")
    if data.startswith(b"\x89PNG"):
        return not data.endswith(b"IEND\xaeB`\x82")
    return False  # not a format we know the end of: decoding decides


def _decode(path: Path) -> tuple[bytes, np.ndarray | None, str | None]:
    """Bytes, grey image and a reason when the file is unusable (runs in a thread)."""
    data = path.read_bytes()
    if not data:
        return data, None, "file is empty"
    if _truncated(data):
        return data, None, "file is truncated (no end-of-image marker)"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return data, None, "cannot be decoded as an image"
    return data, image, None


def _folder_files(root: Path, problems: _Problems) -> Iterator[tuple[Path, int, int]]:
    """(file, FER code, usage index) for every image; structural problems reported."""
    expected_usages = {"train": ("Training",), "test": ("PublicTest", "PrivateTest")}
    missing = [d for d in expected_usages if not (root / d).is_dir()]
    if missing:
        raise DataError(f"{root}: missing folder(s) {', '.join(missing)}/ of the image-folder release")
    for split_dir, allowed in expected_usages.items():
        for entry in sorted((root / split_dir).iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                problems(str(entry), "unexpected file: images belong in class folders")
                continue
            if entry.name not in FER_CLASSES:
                problems(str(entry), f"unknown class folder (expected one of {', '.join(FER_CLASSES)})")
                continue
            files = sorted(p for p in entry.iterdir() if not p.name.startswith("."))
            if not files:
                problems(str(entry), "class folder is empty")
            for file in files:
                usage = file.name.split("_", 1)[0]
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    problems(str(file), f"not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
                elif usage not in allowed:
                    problems(str(file), f"file-name prefix {usage!r} is not one of {', '.join(allowed)}")
                else:
                    yield file, FER_CLASSES.index(entry.name), USAGES.index(usage)


def read_folder_release(
    root: str | os.PathLike, *, on_error: str = "raise", resize: bool = False, progress: bool = True
) -> FER2013:
    """Read the image-folder release, decoding the JPEGs in parallel on all cores.

    Usage comes from the file-name prefix (``Training_``, ``PublicTest_``,
    ``PrivateTest_``). Files listed in a ``SHA256SUMS`` beside ``train/`` are
    checked as they are read.
    """
    root = Path(root)
    problems = _Problems(on_error)
    entries = list(_folder_files(root, problems))
    expected = read_checksums(root)
    kept: list[tuple[np.ndarray, int, int, str]] = []
    digests: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        decoded = pool.map(_decode, [file for file, _, _ in entries])
        for (file, label, usage), (data, image, reason) in tqdm(
            zip(entries, decoded), total=len(entries), desc=f"decode {root.name}", unit=" img", disable=not progress
        ):
            rel = file.relative_to(root).as_posix()
            digests[rel] = _sha256(data)
            if reason is None:
                image = _fit_size(image, str(file), resize, problems)
            else:
                problems(str(file), reason)
            if image is None:
                continue
            kept.append((image, label, usage, rel))
    if expected:
        _check_digests(root, expected, digests)
    listing = "".join(f"{digests[k]}  {k}\n" for k in sorted(digests))
    return _assemble(kept, RELEASE_FOLDER, root, _sha256(listing.encode()), problems)


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
    return _sha256("\n".join([str(source.resolve()), *listing]).encode())


def _cache_path(source: Path, on_error: str, resize: bool) -> Path:
    key = _sha256(f"{CACHE_VERSION}|{source_fingerprint(source)}|{on_error}|{resize}".encode())
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
        if source.is_file():
            verify_checksums(source, progress=progress)
            data = read_csv_release(source, on_error=on_error, resize=resize, progress=progress)
        else:
            data = read_folder_release(source, on_error=on_error, resize=resize, progress=progress)
        if len(data) == OFFICIAL_TOTAL:
            check_official_counts(data)
        if cached is not None:
            _save_cache(cached, data)
    return data


# --- FER+ crowd labels --------------------------------------------------------------------
#: FER+'s vote columns (Barsoum et al., 2016), ten taggers per image.
FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                 "unknown", "NF")
#: FER+'s names of the paper's five classes, in paper.CLASSES order.
FERPLUS_PAPER_CLASSES = ("anger", "happiness", "neutral", "sadness", "surprise")


def locate_ferplus(path: str | os.PathLike | None = None) -> Path:
    """The FER+ folder: ``path``, ``FERPLUS_DIR``, ``../shared/ferplus`` or the user cache."""
    candidates = [path, os.environ.get("FERPLUS_DIR"), repository_root().parent / "shared" / "ferplus",
                  cache_dir() / "ferplus"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "fer2013new.csv").is_file():
            return Path(candidate)
    raise DataNotFoundError(
        "FER+ labels were not found: pass a folder holding fer2013new.csv, set FERPLUS_DIR, or put "
        f"https://github.com/microsoft/FERPlus's fer2013new.csv in {cache_dir() / 'ferplus'}"
    )


def ferplus_votes(ids: np.ndarray, release: str, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """FER+ vote counts for the images ``ids`` of a release, one row each, in order;
    all zero where FER+ has no image for it."""
    folder = locate_ferplus(path)
    if release == RELEASE_CSV:
        votes = pd.read_csv(folder / "fer2013new.csv")
        rows = np.array([int(i.split()[1]) for i in ids], dtype=np.int64)
        table = votes.loc[rows, list(FERPLUS_VOTES)]
    elif release == RELEASE_FOLDER:
        votes = pd.read_csv(folder / "kaggle_folder_votes.csv").set_index("file")
        table = votes.reindex(ids)[list(FERPLUS_VOTES)]
    else:
        raise ValueError(f"unknown release {release!r}")
    return table.fillna(0).astype(np.int64).reset_index(drop=True)


def ferplus_majority(ids: np.ndarray, release: str, path: str | os.PathLike | None = None) -> np.ndarray:
    """The FER+ label in paper.CLASSES order (0-4) where the taggers' strict plurality
    is one of the five classes; -1 where it is another class, a tie, or no image."""
    votes = ferplus_votes(ids, release, path).to_numpy()
    top = votes.max(axis=1)
    unique = (votes == top[:, None]).sum(axis=1) == 1
    winner = votes.argmax(axis=1)
    to_paper = np.full(len(FERPLUS_VOTES), -1)
    for label, name in enumerate(FERPLUS_PAPER_CLASSES):
        to_paper[FERPLUS_VOTES.index(name)] = label
    return np.where(unique & (top > 0), to_paper[winner], -1)
