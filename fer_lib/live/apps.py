"""The live pipeline as applications: ``fer-lib annotate`` (an image, a folder or a video into annotated
files and a CSV of detections) and ``fer-lib webcam`` (a camera in a desktop window with its frame rate)."""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from fer_lib import readers
from fer_lib.live.frames import draw_text
from fer_lib.live.pipeline import FrameResult, Pipeline

IMAGE_SUFFIXES = (*readers.IMAGE_SUFFIXES, ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIX = ".mp4"
DETECTIONS_CSV = "detections.csv"
#: Matplotlib backends that open a desktop window.
DESKTOP_BACKENDS = ("tkagg", "tkcairo", "qtagg", "qtcairo", "qt5agg", "qt5cairo", "gtk3agg", "gtk3cairo",
                    "gtk4agg", "gtk4cairo", "macosx", "wx", "wxagg", "wxcairo")


class DeviceError(ValueError):
    """No camera or no display. A ValueError, so the command line reports it like other bad input."""


# --- Files: fer-lib annotate ----------------------------------------------------------
class DetectionLog:
    """The CSV of detections: one row per face, and one empty row for a frame without any."""

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._file = open(path, "w", newline="")  # noqa: SIM115 (closed by close())
        self._writer = csv.writer(self._file)
        self._writer.writerow(["source", "frame", "status", "track", "x", "y", "width", "height", "label",
                               *(f"p_{c}" for c in self.classes)])

    def write(self, source: str, result: FrameResult) -> None:
        for d in result.detections:
            self._writer.writerow([source, result.index, result.status, d.track, *d.box, d.label,
                                   *(f"{d.probabilities[c]:.6f}" for c in self.classes)])
        if not result.detections:
            self._writer.writerow([source, result.index, result.status, *[""] * (6 + len(self.classes))])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> DetectionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _images_in(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    return [path] if path.suffix.lower() in IMAGE_SUFFIXES else []


def annotate_path(pipeline: Pipeline, source: str | os.PathLike, out: str | os.PathLike,
                  progress: bool = True) -> Path:
    """Annotate an image, a folder of images or a video into the folder ``out``.

    Images keep their names; a video becomes ``<name>_annotated.mp4``. Every
    image is its own scene (the motion gate is reset between them); a video
    runs through the pipeline as a live camera would. Returns the CSV's path.
    """
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ValueError(f"{source}: no such file or folder")
    out.mkdir(parents=True, exist_ok=True)
    images = _images_in(source)
    with DetectionLog(out / DETECTIONS_CSV, pipeline.classes) as log:
        if images:
            _annotate_images(pipeline, images, out, log, progress)
        else:
            _annotate_video(pipeline, source, out / f"{source.stem}_annotated{VIDEO_SUFFIX}", log, progress)
    return out / DETECTIONS_CSV


def _annotate_images(pipeline: Pipeline, images: list[Path], out: Path, log: DetectionLog, progress: bool) -> None:
    for path in tqdm(images, desc="annotate", unit="image", disable=not progress or len(images) < 10):
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise ValueError(f"{path}: cannot be read as an image")
        pipeline.reset()
        image, result = pipeline.annotate(frame)
        log.write(path.name, result)
        if not cv2.imwrite(str(out / path.name), image):
            raise ValueError(f"{out / path.name}: cannot be written")


def video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """Frames until the video ends or the camera closes."""
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield frame


def _annotate_video(pipeline: Pipeline, source: Path, target: Path, log: DetectionLog, progress: bool) -> None:
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise ValueError(f"{source}: neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video OpenCV can read")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        writer = None
        pipeline.reset()
        for frame in tqdm(video_frames(capture), total=total, desc=f"annotate {source.name}", unit="frame",
                          disable=not progress):
            image, result = pipeline.annotate(frame)
            if writer is None:
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, image.shape[1::-1])
            writer.write(image)
            log.write(source.name, result)
        if writer is None:
            raise ValueError(f"{source}: the video has no frames")
        writer.release()
    finally:
        capture.release()


# --- The camera: fer-lib webcam ---------------------------------------------------------
class FpsMeter:
    """Frames per second over the last ``window`` frames: steady enough to read, quick to follow changes."""

    def __init__(self, window: int = 30) -> None:
        self._times: list[float] = []
        self.window = window

    def tick(self) -> float:
        self._times = [*self._times[-(self.window - 1):], time.perf_counter()]
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


def open_camera(source: int | str = 0) -> cv2.VideoCapture:
    """An opened camera (by index) or video file, or a DeviceError saying there is none."""
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise DeviceError(f"cannot open camera {source!r}: no such camera, it is busy, or access was refused")
    return capture


def run_camera(pipeline: Pipeline, capture: cv2.VideoCapture, show: Callable[[np.ndarray], bool],
               max_frames: int | None = None) -> int:
    """Annotate frames from ``capture`` with the frame rate written on them, and hand each to ``show``
    until it returns False, the camera closes or ``max_frames`` have run. Returns the frames shown."""
    meter, shown = FpsMeter(), 0
    for frame in video_frames(capture):
        image, _ = pipeline.annotate(frame)
        if not show(draw_text(image, f"{meter.tick():.1f} fps")):
            break
        shown += 1
        if max_frames is not None and shown >= max_frames:
            break
    return shown


class Window:
    """A desktop window through Matplotlib (the project's OpenCV wheel is headless, without windows).

    Closing the window or pressing q or Escape ends the loop.
    """

    def __init__(self, title: str = "fer-lib webcam") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise DeviceError("no display: DISPLAY and WAYLAND_DISPLAY are unset (run it on a desktop, "
                              "or use 'fer-lib annotate' on a recorded video)")
        import matplotlib.pyplot as plt

        if plt.get_backend().lower() not in DESKTOP_BACKENDS:
            raise DeviceError(f"no desktop Matplotlib backend (got {plt.get_backend()!r}): "
                              "install Tk (python3-tk) or Qt (PyQt6) to get a window")
        self._plt = plt
        self._figure, ax = plt.subplots(num=title)
        ax.set_axis_off()
        self._image = None
        self._ax = ax
        self._open = True
        self._figure.canvas.mpl_connect("close_event", self._close)
        self._figure.canvas.mpl_connect("key_press_event", self._key)

    def _close(self, _event) -> None:
        self._open = False

    def _key(self, event) -> None:
        if event.key in ("q", "escape"):
            self._plt.close(self._figure)

    def __call__(self, image: np.ndarray) -> bool:
        rgb = image[:, :, ::-1]
        if self._image is None or self._image.get_array().shape != rgb.shape:
            self._image = self._ax.imshow(rgb)
            self._figure.tight_layout()
        else:
            self._image.set_data(rgb)
        self._plt.pause(0.001)
        return self._open
