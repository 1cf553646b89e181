"""The real FER-2013 (both releases, when present beside the repository)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_lib import data, fer2013, ferplus, paper, readers

pytestmark = pytest.mark.realdata


def test_csv_release_official_counts(real_csv_data):
    ds = real_csv_data
    assert len(ds) == fer2013.OFFICIAL_TOTAL == 35_887 and not ds.skipped
    assert ds.release == fer2013.RELEASE_CSV and not ds.histogram_equalized
    data.check_official_counts(ds)
    for usage, per_class in fer2013.OFFICIAL_COUNTS.items():
        assert ds.counts().loc[usage].to_dict() == per_class


def test_paper_split_sizes(real_csv_data):
    sizes = {name: len(real_csv_data.split(name)) for name in fer2013.SPLITS}
    assert sizes == {"train": 24_176, "val": 3_006, "test": 3_037}
    assert sizes["val"] == paper.VALIDATION_RECORDS
    assert paper.TRAIN_RECORDS - sizes["train"] == 80  # the paper's 24,256: a difference we keep visible


def test_csv_checksum_matches_sha256sums(real_csv_dir, real_csv_data):
    expected = readers.read_checksums(real_csv_dir)["fer2013.csv.gz"]
    assert real_csv_data.checksum == expected
    assert readers.verify_checksums(real_csv_dir / "fer2013.csv.gz", progress=False) == 1


def test_second_load_reads_the_cache(real_csv_dir, real_csv_data, real_cache, monkeypatch):
    monkeypatch.setenv("FER_LIB_CACHE", str(real_cache))

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(readers, "read_csv_release", no_parsing)
    again = data.load_fer2013(real_csv_dir, progress=False)
    np.testing.assert_array_equal(again.images, real_csv_data.images)
    assert again.checksum == real_csv_data.checksum


def test_folder_release_is_the_equalized_csv(real_folder_dir, real_csv_dir, real_csv_data):
    """The folder release holds the same faces, histogram-equalized: cv2.equalizeHist
    of the original CSV pixels is within a few grey levels of the JPEG files."""
    import cv2
    import pandas as pd

    folder = data.load_fer2013(real_folder_dir, progress=False)  # also checks its 35,887 SHA256SUMS
    assert folder.release == fer2013.RELEASE_FOLDER and folder.histogram_equalized
    assert folder.counts().equals(real_csv_data.counts())
    provenance = pd.read_csv(real_csv_dir / "provenance.csv")
    original = provenance[provenance["pixels_from"] == "ferplus_png"].sample(300, random_state=0)
    position = {name: i for i, name in enumerate(folder.ids)}
    errors = [
        np.abs(cv2.equalizeHist(real_csv_data.images[row]).astype(int) - folder.images[position[file]]).mean()
        for row, file in zip(original["row"], original["kaggle_file"])
    ]
    assert np.median(errors) < 5
    raw = [np.abs(real_csv_data.images[row].astype(int) - folder.images[position[file]]).mean()
           for row, file in zip(original["row"], original["kaggle_file"])]
    assert np.median(raw) > 2 * np.median(errors)  # the releases really differ


def test_ferplus_agrees_with_fer2013_about_three_times_in_four(real_csv_data, real_folder_dir):
    """The FER+ README: on the five-class PrivateTest, FER-2013's label agrees with the FER+
    majority for about 75% of the images whose majority is one of the five classes."""
    val = real_csv_data.split("val")
    majority = ferplus.majority(val.ids, fer2013.RELEASE_CSV)
    known = majority >= 0
    agreement = (majority[known] == val.y[known]).mean()
    assert 0.70 < agreement < 0.80 and known.mean() > 0.8
    folder_val = data.load_fer2013(real_folder_dir, progress=False).split("val")
    folder_majority = ferplus.majority(folder_val.ids, fer2013.RELEASE_FOLDER)
    assert abs((folder_majority[folder_majority >= 0] == folder_val.y[folder_majority >= 0]).mean() - agreement) < 0.01
