"""Tiny FER-2013 releases that the tests synthesize: rows, the challenge CSV, the folder layout,
checksums. A plain module (not conftest), so that test files in any folder import the same one."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import cv2
import numpy as np

from fer_lib import fer2013

TINY_PER_CLASS = {"Training": 3, "PublicTest": 1, "PrivateTest": 2}


def tiny_rows(per_class: dict[str, int] = TINY_PER_CLASS, seed: int = 0) -> list[tuple[int, np.ndarray, str]]:
    """(emotion code, 48x48 uint8 image, usage) for every class and usage."""
    rng = np.random.default_rng(seed)
    return [
        (code, rng.integers(0, 256, (48, 48), dtype=np.uint8), usage)
        for usage, n in per_class.items()
        for code in range(len(fer2013.FER_CLASSES))
        for _ in range(n)
    ]


def csv_text(rows) -> str:
    lines = ["emotion,pixels,Usage"]
    lines += [f"{code},{' '.join(map(str, image.ravel()))},{usage}" for code, image, usage in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows, gz: bool = False) -> Path:
    text = csv_text(rows).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def write_folder(root: Path, rows, suffix: str = ".png") -> Path:
    """The Kaggle folder layout. PNG by default, so pixels survive exactly."""
    for i, (code, image, usage) in enumerate(rows):
        split_dir = "train" if usage == "Training" else "test"
        folder = root / split_dir / fer2013.FER_CLASSES[code]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{usage}_{i}{suffix}"), image)
    return root


def write_checksums(root: Path) -> None:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "SHA256SUMS"
    ]
    (root / "SHA256SUMS").write_text("\n".join(lines) + "\n")
