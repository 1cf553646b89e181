#!/usr/bin/env python3
"""The README's two commands, for a fresh machine that has only Python 3.10+:

    python3 tasks.py book   # build the Jupyter Book (runs the data and model checks first)
    python3 tasks.py test   # run the whole test suite

Each creates the virtual environment ``.venv`` on first use (and refreshes it
when pyproject.toml changes), then runs inside it. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
EXTRAS = "train,live,export,book,webcam,download,dev"
CHROMIUM = Path("/usr/bin/chromium")
LOCK = ROOT / "requirements.lock"  # every package pinned: .venv/bin/pip freeze --exclude-editable


def run(*cmd: str | Path, env: dict | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env={**os.environ, **(env or {})})


def ensure_venv() -> None:
    """Create .venv and install the project with all extras, once per pyproject.toml and lock
    file: the locked versions where requirements.lock exists, then fer_lib without resolving."""
    stamp = VENV / ".installed"
    inputs = [ROOT / "pyproject.toml", *([LOCK] if LOCK.is_file() else [])]
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
    run(BIN / "python", "-m", "pytest", "-p", "no:cacheprovider", *targets, env={**QUIET, "FER_PROFILE": "smoke"})


if __name__ == "__main__":
    commands = {"book": book, "test": test}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(commands)}}}")
    try:
        commands[sys.argv[1]]()
    except subprocess.CalledProcessError as err:
        sys.exit(err.returncode)
