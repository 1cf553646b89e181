"""Finding and loading FER-2013: where a copy lives, an opt-in download, and a cache.

:func:`load_fer2013` returns one :class:`fer_lib.fer2013.FER2013` whichever release it
finds (the challenge CSV, the paper's and our default, or the histogram-equalized image
folders), read by :mod:`fer_lib.readers` the first time and from a compressed cache after.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_lib import readers
from fer_lib.fer2013 import FER2013, OFFICIAL_COUNTS, OFFICIAL_TOTAL, RELEASE_CSV, RELEASE_FOLDER, DataError, Skipped
from fer_lib.paths import cache_dir, shared_dir

CSV_NAMES = ("fer2013.csv", "fer2013.csv.gz", "icml_face_data.csv")
KAGGLE_DATASET = "msambare/fer2013"
#: The challenge itself: its icml_face_data.csv is the CSV release (original pixels).
KAGGLE_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
KAGGLE_COMPETITION_FILE = "icml_face_data.csv"
CACHE_VERSION = 1


class DataNotFoundError(FileNotFoundError):
    """No copy of FER-2013 was found; the message says how to get one."""


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
    return readers.sha256_hex("\n".join([str(source.resolve()), *listing]).encode())


def _cache_path(source: Path, on_error: str, resize: bool) -> Path:
    key = readers.sha256_hex(f"{CACHE_VERSION}|{source_fingerprint(source)}|{on_error}|{resize}".encode())
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
        readers.verify_checksums(source, progress=progress)
    if data is None:
        if source.is_file():
            readers.verify_checksums(source, progress=progress)
            data = readers.read_csv_release(source, on_error=on_error, resize=resize, progress=progress)
        else:
            data = readers.read_folder_release(source, on_error=on_error, resize=resize, progress=progress)
        if len(data) == OFFICIAL_TOTAL:
            check_official_counts(data)
        if cached is not None:
            _save_cache(cached, data)
    return data
