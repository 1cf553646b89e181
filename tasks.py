#!/usr/bin/env python3
"""The README's two commands, and the compatibility lane that CI runs after them, on a machine with Python 3.11+:

    python3 tasks.py book     # build the Jupyter Book (runs the data and model checks first)
    python3 tasks.py test     # run the whole test suite
    python3 tasks.py compat   # the compatibility lane: Python 3.12, newest releases (.ci/run runs it too)

Each creates the virtual environment ``.venv`` on first use (and refreshes it
when pyproject.toml changes), then runs inside it; ``compat`` builds its own,
``.venv-py312``, anew each time. Standard library only.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXTRAS = "train,live,export,book,webcam,download,dev"
CHROMIUM = Path("/usr/bin/chromium")
LOCK = ROOT / "requirements.lock"  # every package pinned: .venv/bin/pip freeze --exclude-editable
#: The packages that ship the published peers' weights (fer_lib/peers.py), installed without their dependencies
#: (PyTorch with CUDA, another OpenCV): the weight files are all the project uses of them.
PEERS = ROOT / "requirements-peers.txt"


def run(*cmd: str | Path, env: dict | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env={**os.environ, **(env or {})})


def ensure_venv() -> None:
    """Create .venv and install the project with all extras, once per pyproject.toml, lock and peers
    file: the locked versions where requirements.lock exists, then fer_lib without resolving, then
    the peers' packages without their dependencies."""
    stamp = VENV / ".installed"
    inputs = [ROOT / "pyproject.toml", PEERS, *([LOCK] if LOCK.is_file() else [])]
    want = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        return
    if not (BIN / "python").exists():
        run(sys.executable, "-m", "venv", VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    if LOCK.is_file():
        run(BIN / "python", "-m", "pip", "install", "--quiet", "-r", LOCK)
    run(BIN / "python", "-m", "pip", "install", "--quiet", *(["--no-deps"] if LOCK.is_file() else []),
        "-e", f".[{EXTRAS}]")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--no-deps", "-r", PEERS)
    stamp.write_text(want)


def ensure_system_packages() -> None:
    """The browser tests drive Debian's Chromium, the webcam-window test a virtual X server
    (Xvfb); install them where we may."""
    if (CHROMIUM.exists() and shutil.which("Xvfb")) or shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    run("apt-get", "update", "-qq")
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-liberation", "xvfb")


QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore::DeprecationWarning"}


def book() -> None:
    ensure_venv()
    run(BIN / "fer-lib", "data", env=QUIET)
    run(BIN / "fer-lib", "models", env=QUIET)
    if (ROOT / "_toc.yml").exists():
        run(BIN / "jupyter-book", "build", "--all", "-W", "-n", "--keep-going", ".", env=QUIET)
        print(f"\nThe book: {ROOT / '_build' / 'html' / 'index.html'}")


def test() -> None:
    ensure_venv()
    ensure_system_packages()
    run(BIN / "ruff", "check", ".")
    targets = ["tests"] + (["--nbval-lax", "notebooks"] if any((ROOT / "notebooks").glob("*.ipynb")) else [])
    # ensure_venv installed the peers' packages: their tests fail here rather than skip
    run(BIN / "python", "-m", "pytest", "-p", "no:cacheprovider", *targets,
        env={**QUIET, "FER_PROFILE": "smoke", "FER_REQUIRE_PEERS": "1"})


COMPAT_PYTHON = (3, 12)
COMPAT_VENV = ROOT / ".venv-py312"
COMPAT_BIN = COMPAT_VENV / BIN.name
#: What the lane reports, besides its timings: the releases it resolved.
COMPAT_REPORT = ("tensorflow", "keras", "numpy", "pandas", "opencv-python-headless", "onnxruntime", "jax")


def find_python(version: tuple[int, int]) -> str | None:
    """An interpreter of ``version`` that runs: python3.X on PATH (a pyenv shim there may refuse), else pyenv's
    newest build of it."""
    name = "python{}.{}".format(*version)
    builds = sorted(Path.home().glob(f".pyenv/versions/{version[0]}.{version[1]}.*/bin/{name}"),
                    key=lambda p: [int(part) for part in p.parents[1].name.split(".") if part.isdigit()])
    check = f"import sys; sys.exit(sys.version_info[:2] != {version})"
    for candidate in [shutil.which(name), *map(str, reversed(builds))]:
        if candidate and subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    return None


@contextmanager
def timed(step: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        timings[step] = time.monotonic() - start
        print(f"compat: {step}: {timings[step]:.0f} s", flush=True)


def check_annotated(out: Path, photo: str) -> None:
    """``fer-lib annotate`` wrote the annotated photo and found at least one face, labelled with a class."""
    with open(out / "detections.csv", newline="") as f:
        labels = [row["label"] for row in csv.DictReader(f) if row["source"] == photo]
    if not (out / photo).is_file() or not any(labels):
        sys.exit(f"compat: fer-lib annotate found no face in {photo}, or wrote no image to {out}")
    print(f"compat: fer-lib annotate labelled {len(labels)} faces in {photo}: {', '.join(labels)}")


def compat() -> None:
    """A second environment on another Python, from pyproject.toml alone (no lock file: the newest releases it
    allows): ``fer-lib annotate`` with the ``live`` extra alone, then every extra, the fast lane and every
    chapter under nbval. Where Python 3.12 is missing this fails in CI and is skipped elsewhere."""
    python = find_python(COMPAT_PYTHON)
    if python is None:
        message = "the compatibility lane needs Python {}.{} (on PATH, or built by pyenv)".format(*COMPAT_PYTHON)
        if os.environ.get("CI") == "true":
            sys.exit(f"compat: {message}")
        print(f"compat: skipped: {message}")
        return
    shutil.rmtree(COMPAT_VENV, ignore_errors=True)
    pip = (COMPAT_BIN / "python", "-m", "pip", "install", "--quiet", "--no-compile")  # .pyc on import instead
    pytest = (COMPAT_BIN / "python", "-m", "pytest", "-p", "no:cacheprovider")
    smoke = {**QUIET, "FER_PROFILE": "smoke"}
    timings: dict[str, float] = {}
    try:
        with timed("the live extra alone, installed as users install it", timings):
            run(python, "-m", "venv", COMPAT_VENV)
            run(*pip, "--upgrade", "pip")
            shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would pack stale files from it
            run(*pip, ".[live]")
            shutil.rmtree(ROOT / "build", ignore_errors=True)
        with timed("fer-lib annotate on a photo", timings):
            photo, out = COMPAT_VENV / "photo" / "faces.png", COMPAT_VENV / "annotated"
            run(COMPAT_BIN / "python", ROOT / ".ci" / "live_photo.py", photo)
            run(COMPAT_BIN / "fer-lib", "annotate", photo, "--out", out, "--no-progress", env=QUIET)
            check_annotated(out, photo.name)
        with timed("every extra", timings):
            run(*pip, "-e", f".[{EXTRAS}]")
        with timed("the fast lane", timings):
            run(*pytest, "-m", "not slow", "tests", env=smoke)
        with timed("every chapter under nbval", timings):  # the book as Colab runs it: newest releases
            run(*pytest, "--nbval-lax", "--nbval-current-env", "notebooks", env=smoke)
    finally:
        sites = [str(path) for path in COMPAT_VENV.glob("lib/python*/site-packages")]
        found = {d.metadata["Name"].lower(): d.version for d in metadata.distributions(path=sites)} if sites else {}
        print("compat: Python {}.{}, ".format(*COMPAT_PYTHON)
              + ", ".join(f"{name} {found[name]}" for name in COMPAT_REPORT if name in found))
        print(f"compat: {sum(timings.values()):.0f} s in all")


if __name__ == "__main__":
    commands = {"book": book, "test": test, "compat": compat}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(commands)}}}")
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as err:
        sys.exit(err.returncode)
