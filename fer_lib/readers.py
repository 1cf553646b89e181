"""Reading the two public releases of FER-2013 into one :class:`fer_lib.fer2013.FER2013`, and checking
their files against the ``SHA256SUMS`` beside them.

Every malformed row, image or folder is either raised at once, naming the file
and row and what is wrong, or (``on_error="skip"``) collected in
``FER2013.skipped`` with the same words.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from fer_lib.fer2013 import (
    FER2013,
    FER_CLASSES,
    IMAGE_SIZE,
    N_PIXELS,
    OFFICIAL_TOTAL,
    RELEASE_CSV,
    RELEASE_FOLDER,
    USAGES,
    DataError,
    Skipped,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ON_ERROR = ("raise", "skip")


class ChecksumError(DataError):
    """Files that do not match their ``SHA256SUMS`` entry."""


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
    return _assemble(kept, RELEASE_CSV, path, sha256_hex(raw), problems)


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
            digests[rel] = sha256_hex(data)
            if reason is None:
                image = _fit_size(image, str(file), resize, problems)
            else:
                problems(str(file), reason)
            if image is None:
                continue
            kept.append((image, label, usage, rel))
    if expected:
        check_digests(root, expected, digests)
    listing = "".join(f"{digests[k]}  {k}\n" for k in sorted(digests))
    return _assemble(kept, RELEASE_FOLDER, root, sha256_hex(listing.encode()), problems)
