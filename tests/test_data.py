"""The data layer on tiny synthesized releases: parsing, errors, checksums, cache, location."""

from __future__ import annotations

import gzip
import os

import cv2
import numpy as np
import pytest
from synth import TINY_PER_CLASS, csv_text, tiny_rows, write_checksums, write_csv, write_folder

from fer_lib import data, fer2013, ferplus, paper, paths, readers

N_TINY = sum(TINY_PER_CLASS.values()) * len(fer2013.FER_CLASSES)


# --- Both releases read the same thing ------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_csv_release_round_trip(tmp_path, rows, gz):
    ds = readers.read_csv_release(write_csv(tmp_path / "f.csv", rows, gz=gz), progress=False)
    assert ds.release == fer2013.RELEASE_CSV and not ds.histogram_equalized
    assert ds.images.shape == (N_TINY, 48, 48) and ds.images.dtype == np.uint8
    for i, (code, image, usage) in enumerate(rows):
        assert ds.labels[i] == code and fer2013.USAGES[ds.usage[i]] == usage
        np.testing.assert_array_equal(ds.images[i], image)
    assert ds.ids[0] == "row 0" and not ds.skipped


def test_folder_release_reads_same_pixels_as_csv(tiny_folder, tiny_csv):
    folder = readers.read_folder_release(tiny_folder, progress=False)
    csv_ds = readers.read_csv_release(tiny_csv, progress=False)
    assert folder.release == fer2013.RELEASE_FOLDER and folder.histogram_equalized
    assert folder.counts().equals(csv_ds.counts())
    # same images, in another order: compare as sorted byte strings
    assert sorted(i.tobytes() for i in folder.images) == sorted(i.tobytes() for i in csv_ds.images)


def test_five_class_view_maps_names_and_order(tiny_csv):
    ds = readers.read_csv_release(tiny_csv, progress=False)
    train = ds.split("train")
    assert train.usage == "Training"
    assert len(train) == TINY_PER_CLASS["Training"] * 5
    np.testing.assert_array_equal(np.bincount(train.y), [TINY_PER_CLASS["Training"]] * 5)
    # label k of the paper is FER code PAPER_CODES[k]: normal = neutral (6), shock = surprise (5)
    codes = {int(ds.labels[int(i.split()[1])]) for i in train.ids[train.y == paper.CLASSES.index("normal")]}
    assert codes == {fer2013.FER_CLASSES.index("neutral")}
    assert ds.split("val").usage == "PrivateTest" and ds.split("test").usage == "PublicTest"
    table = ds.five_class_counts()
    assert list(table.columns) == [*paper.CLASSES, "total"]
    assert table["total"].tolist() == [15, 10, 5]
    with pytest.raises(ValueError, match="unknown split"):
        ds.split("validation")


# --- Bad CSV rows --------------------------------------------------------------------
BAD_ROWS = [
    ("3,{p},Training,extra", "has 4 fields"),
    ("3,{short},Training", "has 2303 pixel values, expected 2304"),
    ("3,{nonint},Training", "pixel value 'x7' is not an integer"),
    ("3,{big},Training", "pixel values must be 0-255"),
    ("9,{p},Training", "emotion code '9' is not one of 0-6"),
    ("happy,{p},Training", "emotion code 'happy'"),
    ("3,{p},Validation", "usage 'Validation' is not one of"),
]


def _bad_csv(tmp_path, template: str):
    good = csv_text(tiny_rows({"Training": 1}))
    pixels = ["1"] * 2304
    fills = {
        "p": " ".join(pixels),
        "short": " ".join(pixels[:-1]),
        "nonint": " ".join(["x7", *pixels[1:]]),
        "big": " ".join(["256", *pixels[1:]]),
    }
    path = tmp_path / "bad.csv"
    path.write_text(good + template.format(**fills) + "\n")
    return path


@pytest.mark.parametrize(("template", "message"), BAD_ROWS)
def test_bad_csv_row_is_named(tmp_path, template, message):
    path = _bad_csv(tmp_path, template)
    with pytest.raises(fer2013.DataError) as err:
        readers.read_csv_release(path, progress=False)
    assert message in str(err.value)
    assert f"{path}: row 7 (line 9)" in str(err.value)  # 7 good rows before it


@pytest.mark.parametrize(("template", "message"), BAD_ROWS)
def test_bad_csv_row_is_skipped_and_reported(tmp_path, template, message):
    ds = readers.read_csv_release(_bad_csv(tmp_path, template), on_error="skip", progress=False)
    assert len(ds) == 7
    assert len(ds.skipped) == 1 and "row 7" in ds.skipped[0].item and message in ds.skipped[0].reason


def test_csv_other_size_needs_resize(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("emotion,pixels,Usage\n3," + " ".join(["200"] * 64 * 64) + ",Training\n")
    with pytest.raises(fer2013.DataError, match="4096 pixel values"):
        readers.read_csv_release(path, progress=False)
    ds = readers.read_csv_release(path, resize=True, progress=False)
    assert ds.images.shape == (1, 48, 48) and (ds.images == 200).all()


def test_csv_structural_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(fer2013.DataError, match="empty"):
        readers.read_csv_release(empty, progress=False)
    no_usage = tmp_path / "cols.csv"
    no_usage.write_text("emotion,pixels\n3,1 2\n")
    with pytest.raises(fer2013.DataError, match=r"lacks column\(s\) \['Usage'\]"):
        readers.read_csv_release(no_usage, progress=False)
    broken_gz = tmp_path / "broken.csv.gz"
    broken_gz.write_bytes(gzip.compress(b"emotion,pixels,Usage\n")[:-8])
    with pytest.raises(fer2013.DataError, match="cannot be read"):
        readers.read_csv_release(broken_gz, progress=False)


def test_csv_with_renamed_columns_in_other_order(tmp_path, rows):
    """Kaggle's icml_face_data.csv has ' Usage' and ' pixels', in another order."""
    text = "emotion, Usage, pixels\n" + "".join(
        f"{code},{usage},{' '.join(map(str, image.ravel()))}\n" for code, image, usage in rows
    )
    path = tmp_path / "icml_face_data.csv"
    path.write_text(text)
    assert len(readers.read_csv_release(path, progress=False)) == N_TINY


# --- Bad image folders ----------------------------------------------------------------
def _first_image(root):
    return sorted((root / "train" / "angry").iterdir())[0]


def test_truncated_jpeg_is_named(tmp_path, rows):
    root = write_folder(tmp_path / "jpg", rows, suffix=".jpg")
    victim = _first_image(root)
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(fer2013.DataError, match=f"{victim}: file is truncated"):
        readers.read_folder_release(root, progress=False)
    ds = readers.read_folder_release(root, on_error="skip", progress=False)
    assert len(ds) == N_TINY - 1 and ds.skipped[0].item == str(victim)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"not an image at all" * 10), "cannot be decoded"),
        (lambda p: cv2.imwrite(str(p), np.zeros((50, 40), np.uint8)), "image is 40x50, expected 48x48"),
    ],
)
def test_broken_image_is_named(tiny_folder, damage, message):
    victim = _first_image(tiny_folder)
    damage(victim)
    with pytest.raises(fer2013.DataError, match=message) as err:
        readers.read_folder_release(tiny_folder, progress=False)
    assert str(victim) in str(err.value)


def test_odd_size_is_resized_only_when_asked(tiny_folder):
    victim = _first_image(tiny_folder)
    cv2.imwrite(str(victim), np.full((96, 96), 77, np.uint8))
    ds = readers.read_folder_release(tiny_folder, resize=True, progress=False)
    assert len(ds) == N_TINY and (ds.images[list(ds.ids).index(victim.relative_to(tiny_folder).as_posix())] == 77).all()


def test_colour_image_is_read_as_grey(tiny_folder):
    victim = _first_image(tiny_folder)
    cv2.imwrite(str(victim), np.full((48, 48, 3), 90, np.uint8))
    ds = readers.read_folder_release(tiny_folder, progress=False)
    assert ds.images.ndim == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda r: (r / "train" / "contempt").mkdir(), "unknown class folder"),
        (lambda r: [p.unlink() for p in (r / "test" / "disgust").iterdir()], "class folder is empty"),
        (lambda r: (r / "train" / "happy" / "notes.txt").write_text("x"), "not an image file"),
        (lambda r: (r / "train" / "happy" / "PublicTest_99.png").write_bytes(b""), "prefix 'PublicTest'"),
        (lambda r: (r / "train" / "stray.png").write_bytes(b""), "images belong in class folders"),
    ],
)
def test_folder_structure_errors(tiny_folder, setup, message):
    setup(tiny_folder)
    with pytest.raises(fer2013.DataError, match=message):
        readers.read_folder_release(tiny_folder, progress=False)
    ds = readers.read_folder_release(tiny_folder, on_error="skip", progress=False)
    assert any(message in s.reason for s in ds.skipped)


def test_missing_split_folder(tiny_folder):
    for p in (tiny_folder / "test").rglob("*.png"):
        p.unlink()
    for p in sorted((tiny_folder / "test").iterdir()):
        p.rmdir()
    (tiny_folder / "test").rmdir()
    with pytest.raises(fer2013.DataError, match=r"missing folder\(s\) test/"):
        readers.read_folder_release(tiny_folder, progress=False)


def test_on_error_is_validated(tiny_csv):
    with pytest.raises(ValueError, match="on_error"):
        readers.read_csv_release(tiny_csv, on_error="ignore")


# --- Checksums --------------------------------------------------------------------------
def test_checksums_name_every_mismatch(tiny_folder):
    write_checksums(tiny_folder)
    assert readers.verify_checksums(tiny_folder, progress=False) == N_TINY
    victims = sorted((tiny_folder / "train" / "happy").iterdir())[:2]
    for v in victims:
        cv2.imwrite(str(v), np.zeros((48, 48), np.uint8))
    for call in (lambda: readers.verify_checksums(tiny_folder, progress=False),
                 lambda: readers.read_folder_release(tiny_folder, progress=False)):
        with pytest.raises(readers.ChecksumError) as err:
            call()
        for v in victims:
            assert v.relative_to(tiny_folder).as_posix() in str(err.value)
        assert "2 file(s) do not match" in str(err.value)


def test_csv_checksum_is_checked_on_first_load(tmp_path, rows):
    path = write_csv(tmp_path / "fer2013.csv", rows)
    write_checksums(tmp_path)
    assert len(data.load_fer2013(path, progress=False)) == N_TINY
    path.write_text(path.read_text().replace("Training", "PublicTest", 1))
    with pytest.raises(readers.ChecksumError, match=r"fer2013\.csv"):
        data.load_fer2013(path, progress=False)


def test_malformed_checksum_file(tiny_folder):
    (tiny_folder / "SHA256SUMS").write_text("abc  train/x.png\n")
    with pytest.raises(fer2013.DataError, match="line 1"):
        readers.read_checksums(tiny_folder)


# --- The cache ---------------------------------------------------------------------------
def test_cache_round_trip_and_invalidation(tiny_csv, monkeypatch):
    first = data.load_fer2013(tiny_csv, progress=False)
    assert len(list(paths.cache_dir().glob("*.npz"))) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("the source was parsed again instead of read from the cache")

    with monkeypatch.context() as m:
        m.setattr(readers, "read_csv_release", no_parsing)
        second = data.load_fer2013(tiny_csv, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    assert (first.release, first.checksum, first.source) == (second.release, second.checksum, second.source)
    np.testing.assert_array_equal(first.ids, second.ids)

    # A changed source is parsed again.
    tiny_csv.write_text(tiny_csv.read_text().replace(",Training\n", ",PublicTest\n", 1))
    third = data.load_fer2013(tiny_csv, progress=False)
    assert third.counts().loc["Training"].sum() == first.counts().loc["Training"].sum() - 1
    assert third.checksum != first.checksum


def test_cache_invalidated_by_any_file_in_folder(tiny_folder):
    first = data.load_fer2013(tiny_folder, progress=False)
    victim = _first_image(tiny_folder)
    cv2.imwrite(str(victim), np.zeros((48, 48), np.uint8))
    os.utime(victim, ns=(1, 1))
    second = data.load_fer2013(tiny_folder, progress=False)
    assert first.checksum != second.checksum


def test_corrupt_cache_is_rebuilt(tiny_csv):
    data.load_fer2013(tiny_csv, progress=False)
    (cache_file,) = paths.cache_dir().glob("*.npz")
    cache_file.write_bytes(b"garbage")
    assert len(data.load_fer2013(tiny_csv, progress=False)) == N_TINY


def test_skipped_items_survive_the_cache(tmp_path):
    path = _bad_csv(tmp_path, "9,{p},Training")
    first = data.load_fer2013(path, on_error="skip", progress=False)
    second = data.load_fer2013(path, on_error="skip", progress=False)
    assert first.skipped == second.skipped and len(second.skipped) == 1


# --- Finding the data ---------------------------------------------------------------------
def test_location_order(tmp_path, rows, monkeypatch):
    (tmp_path / "a").mkdir()
    explicit = write_csv(tmp_path / "a" / "fer2013.csv", rows)
    env_dir = write_folder(tmp_path / "b", rows)
    monkeypatch.setenv("FER2013_DIR", str(env_dir))
    assert data.locate_data(explicit) == explicit
    assert data.locate_data(tmp_path / "a") == explicit  # a folder holding the CSV
    assert data.locate_data() == env_dir


def test_explicit_path_without_data_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(data.DataNotFoundError, match="holds no FER-2013 release"):
        data.locate_data(tmp_path)
    monkeypatch.setenv("FER2013_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataNotFoundError, match="FER2013_DIR"):
        data.locate_data()


def test_user_cache_copy_is_found(tmp_path, rows, monkeypatch):
    monkeypatch.setattr(paths, "repository_root", lambda: tmp_path / "repo")
    write_folder(paths.cache_dir() / "fer2013", rows)
    assert data.locate_data() == paths.cache_dir() / "fer2013"


def test_nothing_found_says_how_to_get_data(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "repository_root", lambda: tmp_path / "repo")
    with pytest.raises(data.DataNotFoundError) as err:
        data.locate_data()
    text = str(err.value)
    for hint in ("FER2013_DIR", "fer2013-csv", "download=True", "kaggle.com", str(paths.cache_dir())):
        assert hint in text


def test_download_prefers_the_challenge_csv_and_falls_back_to_the_folder_release(tmp_path, rows, monkeypatch):
    """kagglehub's two calls stand in for the network, which tests cannot reach; the
    refusal is kagglehub's own error for an account that has not accepted the rules."""
    import kagglehub
    from kagglehub.exceptions import KaggleApiHTTPError

    monkeypatch.setattr(paths, "repository_root", lambda: tmp_path / "repo")
    (tmp_path / "competition").mkdir()
    csv_file = write_csv(tmp_path / "competition" / data.KAGGLE_COMPETITION_FILE, rows)
    folder = write_folder(tmp_path / "dataset", rows)
    asked = []

    def competition(handle, path=None, **_):
        asked.append((handle, path))
        return str(csv_file)

    monkeypatch.setattr(kagglehub, "competition_download", competition)
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle, **_: str(folder))
    assert data.locate_data(download=True) == csv_file
    assert asked == [(data.KAGGLE_COMPETITION, data.KAGGLE_COMPETITION_FILE)]

    def refused(handle, path=None, **_):
        raise KaggleApiHTTPError("403 Client Error: Forbidden: you must accept this competition's rules")

    monkeypatch.setattr(kagglehub, "competition_download", refused)
    with pytest.warns(UserWarning, match=r"(?s)accept the rules.*histogram-equalized"):
        assert data.locate_data(download=True) == folder


def test_locate_one_release_in_particular(tmp_path, rows, monkeypatch):
    monkeypatch.setattr(paths, "repository_root", lambda: tmp_path / "repo")
    csv_file = write_csv(tmp_path / "fer2013.csv", rows)
    shared_folder = write_folder(tmp_path / "shared" / "fer2013", rows)
    assert data.locate_data(release="folder") == shared_folder
    with pytest.raises(data.DataNotFoundError, match="the csv release of FER-2013 was not found"):
        data.locate_data(release="csv")
    assert data.locate_data(csv_file, release="csv") == csv_file
    with pytest.raises(data.DataNotFoundError, match="holds the csv release, not the folder one"):
        data.locate_data(csv_file, release="folder")
    monkeypatch.setenv("FER2013_DIR", str(csv_file))  # the user's default, passed over for the other release
    assert data.locate_data(release="folder") == shared_folder
    assert data.locate_data() == csv_file
    with pytest.raises(ValueError, match="release must be"):
        data.locate_data(release="jpeg")


def test_equalized_split(tiny_csv):
    split = readers.read_csv_release(tiny_csv, progress=False).split("train")
    equalized = split.equalized()
    assert equalized.name == "train, equalized" and equalized.x.shape == split.x.shape
    np.testing.assert_array_equal(equalized.x[3], cv2.equalizeHist(split.x[3]))
    np.testing.assert_array_equal(equalized.y, split.y)


def test_official_counts_are_checked():
    rng = np.random.default_rng(0)
    labels, usage = [], []
    for u, per_class in fer2013.OFFICIAL_COUNTS.items():
        for name, n in per_class.items():
            labels += [fer2013.FER_CLASSES.index(name)] * n
            usage += [fer2013.USAGES.index(u)] * n
    n = len(labels)
    ds = fer2013.FER2013(
        images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
        labels=np.array(labels, np.int8), usage=np.array(usage, np.int8),
        ids=np.array([f"row {i}" for i in range(n)]), release="csv", source="x", checksum="0",
    )
    data.check_official_counts(ds)
    labels[0] = fer2013.FER_CLASSES.index("happy")  # one angry Training image becomes happy
    wrong = ds.__class__(**{**ds.__dict__, "labels": np.array(labels, np.int8)})
    with pytest.raises(fer2013.DataError) as err:
        data.check_official_counts(wrong)
    assert "Training/angry: 3994 images, official 3995" in str(err.value)
    assert "Training/happy: 7216 images, official 7215" in str(err.value)


def test_nothing_usable_is_an_error(tmp_path):
    path = tmp_path / "all_bad.csv"
    path.write_text("emotion,pixels,Usage\n9,1 2 3,Training\n")
    with pytest.raises(fer2013.DataError, match="no usable images"):
        readers.read_csv_release(path, on_error="skip", progress=False)


# --- FER+ ---------------------------------------------------------------------------------
def _votes_file(folder, rows):
    folder.mkdir(exist_ok=True)
    header = "Usage,Image name," + ",".join(ferplus.VOTES)
    lines = [header] + [f"Training,fer{i:07d}.png," + ",".join(map(str, r)) for i, r in enumerate(rows)]
    (folder / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_ferplus_majority_rules(tmp_path):
    #            neu hap sur sad ang dis fea con unk NF
    rows = [[0, 0, 0, 0, 9, 1, 0, 0, 0, 0],   # anger -> angry (0)
            [6, 4, 0, 0, 0, 0, 0, 0, 0, 0],   # neutral -> normal (2)
            [0, 0, 0, 0, 0, 0, 8, 0, 2, 0],   # fear: not one of the five
            [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],   # a tie
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],   # no image
            [0, 0, 7, 0, 0, 0, 0, 0, 0, 3]]   # surprise -> shock (4)
    folder = _votes_file(tmp_path / "ferplus", rows)
    ids = np.array([f"row {i}" for i in (5, 0, 1, 2, 3, 4)])
    np.testing.assert_array_equal(ferplus.majority(ids, fer2013.RELEASE_CSV, folder), [4, 0, 2, -1, -1, -1])
    assert ferplus.votes(ids[:1], fer2013.RELEASE_CSV, folder)["surprise"].tolist() == [7]


def test_ferplus_not_found(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "repository_root", lambda: tmp_path / "repo")
    with pytest.raises(data.DataNotFoundError, match="FERPlus"):
        ferplus.locate()
