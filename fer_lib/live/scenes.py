"""Simulated webcam scenes: FER-2013 faces placed into 640x480 frames at a stated distance and light, so that the
paper's live tests (its Figs. 7 and 8, 30 and 60 cm, three light sources) can be measured without a camera.

The camera is a pinhole. Its horizontal field of view, ``HFOV_DEG`` = 60 degrees,
lies between the two most common USB webcams' published fields of view: Logitech
states 55 degrees diagonal for its C270 and 78 degrees diagonal for its C920,
about 49 and 70 degrees horizontal on their 16:9 sensors; built-in laptop
cameras fall in the same range. A face is ``FACE_WIDTH_CM`` = 14 cm wide, about
the mean bizygomatic (cheekbone) breadth of adults in anthropometric surveys
(roughly 13 cm for women and 14 cm for men). The 48x48 FER-2013 image spans
that width, because the Haar box found on a placed FER-2013 face is, in the
median, the image's own extent (``experiment.recrop``). So a face ``d`` cm away
is ``focal_px * 14 / d`` pixels wide: 259 px at 30 cm, 52 px at 150 cm.

What a 48x48 source can and cannot show: a distant face loses pixels as a real
one would (it is shrunk with area averaging), but a near face is only the same
48x48 picture enlarged, smooth and without skin texture, so the simulation
cannot show what a sharper near face would add (to the detector or to the
classifier, which gets the same 48 pixels back). Pose, cast shadows, colour,
motion blur and a camera's exposure control are not modelled; the light is a
gain field on a flat picture. Frames are grey, since the pipeline works in grey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_lib import fer2013

HFOV_DEG = 60.0
FACE_WIDTH_CM = 14.0
#: The paper's two distances (Section II.E) and three further ones, in centimetres.
PAPER_DISTANCES_CM = (30, 60)
DISTANCES_CM = (*PAPER_DISTANCES_CM, 90, 120, 150)
#: The paper's three light sources (sun, an 11 W room lamp, the camera's light) and two hard cases.
PAPER_LIGHTING = ("bright", "dim", "camera")
LIGHTING = (*PAPER_LIGHTING, "side", "backlight")
#: The webcam's own artefacts, the same in every light: optical blur and JPEG compression.
BLUR_SIGMA = 0.7
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Lighting:
    """A light as gains on the face and on the background, the grey sensor noise it leaves, and its shape.

    ``hotspot`` brightens the face's centre (a light beside the lens), ``gradient``
    darkens one side of the face to ``1 - gradient`` of the other (a side light),
    ``glare`` is veiling light added everywhere (a window behind the person).
    """

    face_gain: float
    background_gain: float
    background_offset: float = 0.0
    noise: float = 2.0
    hotspot: float = 0.0
    gradient: float = 0.0
    glare: float = 0.0


#: Each condition in words, for the chapter: see ``LIGHTS`` for the numbers.
LIGHT_NAMES = {
    "bright": "bright diffuse (daylight)",
    "dim": "dim lamp (low exposure, sensor noise)",
    "camera": "frontal camera light",
    "side": "side light (gradient across the face)",
    "backlight": "backlight (bright window behind)",
}
LIGHTS = {
    "bright": Lighting(face_gain=1.0, background_gain=1.0, noise=2.0),
    # an 11 W lamp: a third of the exposure, so the read noise weighs three times as much
    "dim": Lighting(face_gain=0.3, background_gain=0.3, noise=4.0),
    "camera": Lighting(face_gain=1.0, background_gain=0.6, noise=2.0, hotspot=0.35),
    "side": Lighting(face_gain=1.1, background_gain=0.9, noise=3.0, gradient=0.7),
    "backlight": Lighting(face_gain=0.35, background_gain=0.5, background_offset=140.0, noise=3.0, glare=15.0),
}


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: frame size in pixels and horizontal field of view in degrees."""

    width: int = 640
    height: int = 480
    hfov_deg: float = HFOV_DEG

    def __post_init__(self) -> None:
        if self.width < 48 or self.height < 48:
            raise ValueError(f"the frame must be at least 48x48 pixels, got {self.width}x{self.height}")
        if not 1.0 < self.hfov_deg < 179.0:
            raise ValueError(f"the horizontal field of view must be in (1, 179) degrees, got {self.hfov_deg}")

    @property
    def focal_px(self) -> float:
        """The focal length in pixels: half the width over the tangent of half the field of view."""
        return self.width / 2 / math.tan(math.radians(self.hfov_deg) / 2)

    def face_px(self, distance_cm: float, face_width_cm: float = FACE_WIDTH_CM) -> int:
        """How many pixels wide a face ``distance_cm`` from the lens is."""
        if distance_cm <= 0:
            raise ValueError(f"the distance must be positive, got {distance_cm} cm")
        return round(self.focal_px * face_width_cm / distance_cm)

    def distance_cm(self, face_px: float, face_width_cm: float = FACE_WIDTH_CM) -> float:
        """How far away a face ``face_px`` pixels wide is: the inverse of ``face_px``."""
        if face_px <= 0:
            raise ValueError(f"the face width must be positive, got {face_px} px")
        return self.focal_px * face_width_cm / face_px


#: The camera of the study: 640x480, 60 degrees across.
WEBCAM = Camera()


@dataclass(frozen=True)
class Scene:
    """One simulated webcam frame, the same view without anyone in it, and where the faces are.

    ``empty`` is what the camera saw before the person sat down: the motion gate's
    reference, and a face-free frame on which any detection is a false one.
    ``boxes`` (n, 4) are x, y, width, height, clipped to the frame; a face cut by
    the frame's edge keeps only its visible part.
    """

    frame: np.ndarray  # (H, W) uint8
    empty: np.ndarray  # (H, W) uint8
    boxes: np.ndarray  # (n, 4) int


def background(rng: np.random.Generator, camera: Camera = WEBCAM) -> np.ndarray:
    """A room behind the person: smooth shading plus a few straight-edged shapes (shelves, a door,
    frames), float in 0-255. Edges matter: they are where detectors raise false alarms."""
    h, w = camera.height, camera.width
    room = cv2.GaussianBlur(rng.uniform(60, 200, (h // 8, w // 8)), (0, 0), 3)
    room = cv2.resize(room, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(rng.integers(3, 7)):
        x, y = rng.integers(0, w), rng.integers(0, h)
        bw, bh = rng.integers(w // 12, w // 3), rng.integers(h // 12, h // 2)
        room[y : y + bh, x : x + bw] = rng.uniform(40, 220)
    return cv2.GaussianBlur(room, (0, 0), 1.0)


def _head(face: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The face at ``side`` pixels, framed by its own edge pixels stretched outwards (so a detector
    sees a head rather than a pasted square), and a soft oval mask; returns tile, mask and margin."""
    shrink = side < face.shape[0]
    scaled = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    margin = max(2, side // 4)
    tile = cv2.copyMakeBorder(scaled, margin, margin, margin, margin, cv2.BORDER_REPLICATE).astype(np.float32)
    size = tile.shape[0]
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (side // 2 + margin * 2 // 3, side // 2 + margin), 0, 0, 360, 1.0, -1)
    return tile, cv2.GaussianBlur(mask, (0, 0), max(1.0, margin / 3)), margin


def _light_field(light: Lighting, box: tuple[int, int, int, int], shape: tuple[int, int], flip: bool) -> np.ndarray:
    """The gain on the face layer at every pixel: flat, with a hotspot at the face's centre, or a gradient
    across it (towards the left or, with ``flip``, the right)."""
    h, w = shape
    x, y, side, _ = box
    xs = (np.arange(w, dtype=np.float32) - (x + side / 2)) / (side / 2)
    ys = (np.arange(h, dtype=np.float32) - (y + side / 2)) / (side / 2)
    field = np.full((h, w), light.face_gain, np.float32)
    if light.hotspot:
        field *= 1.0 + light.hotspot * np.exp(-(xs[None, :] ** 2 + ys[:, None] ** 2))
    if light.gradient:
        across = np.clip((-xs if flip else xs) / 2 + 0.5, 0.0, 1.0)  # 0 on the lit side, 1 in shadow
        field *= (1.0 - light.gradient * across)[None, :]
    return field


def webcam(image: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """What the camera adds to the light it gets: optical blur, sensor noise, 8 bits and JPEG."""
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), BLUR_SIGMA)
    grain = np.empty_like(image)
    cv2.setRNGSeed(int(rng.integers(2**31)))  # OpenCV's generator, seeded from ours: three times NumPy's speed
    cv2.randn(grain, 0.0, noise)
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def render(
    faces: Sequence[np.ndarray],
    distance_cm: float,
    lighting: str,
    rng: np.random.Generator,
    camera: Camera = WEBCAM,
    positions: Sequence[tuple[int, int]] | None = None,
) -> Scene:
    """Faces (48x48 grey) at ``distance_cm`` in a room under ``lighting`` (a key of ``LIGHTS``).

    ``positions`` gives each face's top-left corner; by default faces are placed
    at random, whole and apart, with ``rng``. A position may put a face partly
    outside the frame, as a person leaning out of view.
    """
    if lighting not in LIGHTS:
        raise ValueError(f"unknown lighting {lighting!r}: expected one of {', '.join(LIGHTS)}")
    for face in faces:
        if np.shape(face) != (fer2013.IMAGE_SIZE, fer2013.IMAGE_SIZE):
            raise ValueError(f"faces must be 48x48 grey images, got shape {np.shape(face)}")
    light, side = LIGHTS[lighting], camera.face_px(distance_cm)
    shape = (camera.height, camera.width)
    if positions is None:
        positions = _places(len(faces), side, camera, rng)
    elif len(positions) != len(faces):
        raise ValueError(f"{len(positions)} positions for {len(faces)} faces")
    room = background(rng, camera)
    lit_room = np.clip(room * light.background_gain + light.background_offset, 0, 255) + light.glare
    frame, boxes = lit_room.copy(), []
    for face, (x, y) in zip(faces, positions, strict=True):
        tile, mask, margin = _head(np.asarray(face), side)
        layer, alpha = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        _paste(layer, tile, x - margin, y - margin)
        _paste(alpha, mask, x - margin, y - margin)
        flip = bool(rng.integers(2))
        lit_face = layer * _light_field(light, (x, y, side, side), shape, flip) + light.glare
        frame = alpha * lit_face + (1.0 - alpha) * frame
        box = _clip_box((x, y, side, side), camera)
        if box is not None:
            boxes.append(box)
    return Scene(
        frame=webcam(np.clip(frame, 0, 255), light.noise, rng),
        empty=webcam(np.clip(lit_room, 0, 255), light.noise, rng),
        boxes=np.asarray(boxes, dtype=int).reshape(-1, 4),
    )


def _places(n: int, side: int, camera: Camera, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corners for ``n`` faces of ``side`` pixels: whole in the frame, one per vertical strip
    (so that they do not overlap), at random within it."""
    strip = camera.width // max(1, n)
    if side > strip or side > camera.height:
        raise ValueError(f"{n} faces of {side} pixels do not fit side by side in a {camera.width}x{camera.height} "
                         "frame: put the camera further away or place fewer faces")
    return [(k * strip + int(rng.integers(0, strip - side + 1)), int(rng.integers(0, camera.height - side + 1)))
            for k in range(n)]


def _paste(canvas: np.ndarray, tile: np.ndarray, x: int, y: int) -> None:
    """``tile`` into ``canvas`` with its top-left at (x, y), cut where it leaves the canvas."""
    h, w = canvas.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + tile.shape[1], w), min(y + tile.shape[0], h)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = tile[y0 - y : y1 - y, x0 - x : x1 - x]


def _clip_box(box: tuple[int, int, int, int], camera: Camera) -> tuple[int, int, int, int] | None:
    x, y, w, h = box
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, camera.width), min(y + h, camera.height)
    return (x0, y0, x1 - x0, y1 - y0) if x0 < x1 and y0 < y1 else None


def scene_rng(seed: int, *keys: int) -> np.random.Generator:
    """The random stream of one scene, from the study's seed and the scene's own keys (face, distance,
    light), so that every scene repeats whatever else is simulated and in whatever order."""
    return np.random.default_rng([seed, *keys])
