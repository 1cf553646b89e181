"""A live webcam widget for notebooks (JupyterLab, Notebook 7, Colab, VS Code), built on anywidget.

The browser captures the camera (or plays a video file where there is no
camera) and sends its frames to the kernel as custom messages with a binary
buffer; the kernel runs :class:`fer_lib.live.pipeline.Pipeline` and replies
with boxes, labels and probabilities, which the browser draws over the video.

Speed: the frame is sent at ``frame_width`` (320 pixels wide by default)
because the pipeline searches a copy shrunk further still, and as grey pixels
where the page comes from localhost (77 kB a frame): the browser skips JPEG
encoding and the kernel decoding, which on two cores shared by the browser,
the Jupyter server and the kernel cost more than the pixels' transport. A
kernel across a network (Colab) gets JPEGs instead (near 15 kB a frame).
The pipeline gets the camera's size over the frame's as a scale, so the
minimum face size and the boxes stay in camera pixels without enlarging the
frame. Two frames in flight let the browser grab the next frame while the
kernel works on the last; no more are sent, so nothing queues up.

Everything is event driven: the kernel answers messages while idle, so no cell
loops. Binary data travels only in messages, never in synced traits (Colab's
widget manager drops buffers when a widget is created).
"""

from __future__ import annotations

import time
from pathlib import Path

import anywidget
import cv2
import numpy as np
import traitlets

from fer_lib import paper
from fer_lib.live.pipeline import Pipeline

STATIC = Path(__file__).parent / "static"
#: Bounds on the sizes frames are sent at: below 160 pixels wide faces are too coarse to classify,
#: and a side above 8192 is no camera but a garbled message.
MIN_FRAME_WIDTH = 160
MAX_FRAME_SIDE = 8192
#: How the browser sends a frame: raw grey pixels (one byte each, row by row), a JPEG, or "auto": grey pixels
#: where the page comes from this machine (localhost), a JPEG where the kernel is across a network (Colab).
FRAME_FORMATS = ("auto", "gray", "jpeg")


class WebcamWidget(anywidget.AnyWidget):
    """The paper's live application in a notebook: ``WebcamWidget(pipeline)``, then Start in the widget.

    ``pipeline`` defaults to the live default model (``paths.LIVE_MODEL``). ``max_fps`` caps the frames
    sent per second; ``width`` and ``height`` are the camera size asked for;
    ``frame_width`` is the width frames are sent at (0: the camera's own),
    ``frame_format`` how (``FRAME_FORMATS``);
    ``max_in_flight`` is how many frames may await a reply; ``fps`` is the
    rate the browser measures (frames processed end to end).
    """

    _esm = STATIC / "webcam.js"
    _css = STATIC / "webcam.css"

    classes = traitlets.List(traitlets.Unicode(), default_value=list(paper.CLASSES)).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    max_fps = traitlets.Float(30.0).tag(sync=True)
    width = traitlets.Int(640).tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)
    jpeg_quality = traitlets.Float(0.8).tag(sync=True)
    frame_width = traitlets.Int(320).tag(sync=True)
    frame_format = traitlets.Enum(FRAME_FORMATS, default_value="auto").tag(sync=True)
    max_in_flight = traitlets.Int(2).tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)

    def __init__(self, pipeline: Pipeline | None = None, **kwargs) -> None:
        self.pipeline = pipeline if pipeline is not None else Pipeline.load()
        super().__init__(classes=list(self.pipeline.classes), **kwargs)
        self.frames = 0  # frames the kernel has processed
        self.kernel_ms = 0.0  # the last frame's decoding and processing time in the kernel
        self.on_msg(self._on_frame)

    @traitlets.validate("max_fps")
    def _check_max_fps(self, proposal) -> float:
        if not 0 < proposal["value"] <= 120:
            raise traitlets.TraitError(f"max_fps must be in (0, 120], got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("jpeg_quality")
    def _check_quality(self, proposal) -> float:
        if not 0 < proposal["value"] <= 1:
            raise traitlets.TraitError(f"jpeg_quality must be in (0, 1], got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("frame_width")
    def _check_frame_width(self, proposal) -> int:
        if proposal["value"] != 0 and not MIN_FRAME_WIDTH <= proposal["value"] <= MAX_FRAME_SIDE:
            raise traitlets.TraitError(
                f"frame_width must be 0 (the camera's) or {MIN_FRAME_WIDTH}-{MAX_FRAME_SIDE}, got {proposal['value']}"
            )
        return proposal["value"]

    @traitlets.validate("max_in_flight")
    def _check_in_flight(self, proposal) -> int:
        if not 1 <= proposal["value"] <= 4:
            raise traitlets.TraitError(f"max_in_flight must be 1-4, got {proposal['value']}")
        return proposal["value"]

    @traitlets.observe("running")
    def _new_scene(self, change) -> None:
        """Each start is a new scene: nothing from an earlier camera or clip carries over."""
        if change["new"]:
            self.pipeline.reset()
            self.frames = 0

    def start(self) -> None:
        """Ask the browser to start the camera (it may ask the user's permission)."""
        self.running = True

    def stop(self) -> None:
        self.running = False

    def _on_frame(self, _widget, content: dict, buffers: list) -> None:
        if not isinstance(content, dict) or content.get("type") != "frame":
            return
        clock = time.perf_counter()
        reply = {"type": "result", "id": content.get("id"), "view": content.get("view")}
        size = (content.get("width"), content.get("height"))
        try:
            reply |= self.process_frame(buffers[0] if buffers else b"", f"frame {content.get('id')}",
                                        size if all(isinstance(v, int) for v in size) else None,
                                        content.get("shape"))
        except (ValueError, cv2.error) as err:  # a garbled frame gets an error reply; the stream goes on
            reply["error"] = str(err)
        self.kernel_ms = (time.perf_counter() - clock) * 1000.0
        reply |= {"frames": self.frames, "kernel_ms": round(self.kernel_ms, 2)}
        self.send(reply)

    def process_frame(self, buffer: bytes | memoryview, where: str = "frame", size: tuple[int, int] | None = None,
                      shape: list[int] | None = None) -> dict:
        """One frame through the pipeline: the reply the browser draws.

        ``shape`` (height, width) says the buffer holds raw grey pixels;
        without it the buffer is a JPEG (or PNG), decoded to grey at the size
        sent, as the pipeline would convert it anyway. ``size`` is the
        camera's (width, height) where the browser sent a smaller copy: the
        pipeline gets the ratio as its scale, so that its minimum face size
        and the boxes are in camera pixels.
        """
        frame = gray_pixels(buffer, shape, where) if shape is not None else decode_image(buffer, where)
        scale = 1.0
        if size is not None and tuple(size) != frame.shape[1::-1]:
            width, height = size
            if not (frame.shape[1] <= width <= MAX_FRAME_SIDE and frame.shape[0] <= height <= MAX_FRAME_SIDE):
                raise ValueError(f"{where}: a {frame.shape[1]}x{frame.shape[0]} image is not a smaller copy "
                                 f"of the camera's {width}x{height}")
            scale = width / frame.shape[1]
        result = self.pipeline.process(frame, scale)
        self.frames += 1
        return {
            "width": int(result.shape[1]),
            "height": int(result.shape[0]),
            "status": result.status,
            "detections": [
                {"box": list(d.box), "label": d.label, "track": d.track,
                 "probabilities": {c: round(p, 4) for c, p in d.probabilities.items()}}
                for d in result.detections
            ],
        }


def decode_image(buffer: bytes | memoryview, where: str) -> np.ndarray:
    """A JPEG or PNG, decoded straight to grey."""
    if len(buffer) == 0:
        raise ValueError(f"{where}: an empty buffer, not an image")
    frame = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_GRAYSCALE)
    if frame is None:
        raise ValueError(f"{where}: {len(buffer)} bytes that are not a JPEG or PNG image")
    return frame


def gray_pixels(buffer: bytes | memoryview, shape, where: str) -> np.ndarray:
    """Raw grey pixels, row by row, checked against the (height, width) the message gives."""
    if (not isinstance(shape, list | tuple) or len(shape) != 2
            or not all(isinstance(v, int) and 1 <= v <= MAX_FRAME_SIDE for v in shape)):
        raise ValueError(f"{where}: shape must be [height, width] in pixels, 1-{MAX_FRAME_SIDE} each, got {shape!r}")
    height, width = shape
    if len(buffer) != height * width:
        raise ValueError(f"{where}: {len(buffer)} bytes are not the {height}x{width} grey pixels its shape says")
    return np.frombuffer(buffer, np.uint8).reshape(height, width)
