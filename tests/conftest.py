"""Shared fixtures: tiny FER-2013 releases that the tests synthesize, and the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from synth import tiny_rows, write_csv, write_folder

from fer_lib import data, paths


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, and no FER2013_DIR from the caller's shell."""
    monkeypatch.setenv("FER_LIB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.delenv("FER2013_DOWNLOAD", raising=False)


@pytest.fixture
def rows():
    return tiny_rows()


@pytest.fixture
def tiny_csv(tmp_path, rows) -> Path:
    return write_csv(tmp_path / "fer2013.csv", rows)


@pytest.fixture
def tiny_folder(tmp_path, rows) -> Path:
    return write_folder(tmp_path / "fer2013", rows)


def _real_source(name: str) -> Path | None:
    path = paths.repository_root().parent / "shared" / name
    return path if path.exists() else None


def _require(name: str) -> Path:
    path = _real_source(name)
    if path is None:
        if os.environ.get("FER_REQUIRE_DATA") == "1":
            pytest.fail(f"FER_REQUIRE_DATA=1 but {name} is missing beside the repository")
        pytest.skip(f"real data {name} not found beside the repository")
    return path


@pytest.fixture(scope="session")
def real_csv_dir() -> Path:
    return _require("fer2013-csv")


@pytest.fixture(scope="session")
def real_folder_dir() -> Path:
    return _require("fer2013")


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One cache folder for the real data, shared by the whole test session."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="session")
def real_csv_data(real_csv_dir, real_cache):
    """The full challenge CSV, parsed once per test session."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("FER_LIB_CACHE", str(real_cache))
        return data.load_fer2013(real_csv_dir, progress=False)


#: A small release for the runner's tests: big enough for batches of 64, small enough for seconds.
SMALL_PER_CLASS = {"Training": 48, "PublicTest": 4, "PrivateTest": 12}


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("small") / "fer2013.csv", tiny_rows(SMALL_PER_CLASS, seed=1))


@pytest.fixture(scope="module")
def small_data(small_csv):
    from fer_lib import readers

    return readers.read_csv_release(small_csv, progress=False)
