"""A live webcam widget for notebooks (JupyterLab, Notebook 7, Colab, VS Code), built on anywidget.

The browser captures the camera (or plays a video file where there is no
camera) and sends one JPEG frame at a time to the kernel as a custom message
with a binary buffer; the kernel runs :class:`fer_lib.realtime.Pipeline` and
replies with boxes, labels and probabilities, which the browser draws over the
video. JPEG keeps a 640x480 frame near 30 kB, where raw RGBA is 37 times that.

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
from fer_lib.realtime import Pipeline

STATIC = Path(__file__).parent / "static"


class WebcamWidget(anywidget.AnyWidget):
    """The paper's live application in a notebook: ``WebcamWidget(pipeline)``, then Start in the widget.

    ``pipeline`` defaults to the shipped Model B. ``max_fps`` caps the frames
    sent per second; ``width`` and ``height`` are the camera size asked for;
    ``fps`` is the rate the browser measures (frames processed end to end).
    """

    _esm = STATIC / "webcam.js"
    _css = STATIC / "webcam.css"

    classes = traitlets.List(traitlets.Unicode(), default_value=list(paper.CLASSES)).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    max_fps = traitlets.Float(30.0).tag(sync=True)
    width = traitlets.Int(640).tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)
    jpeg_quality = traitlets.Float(0.8).tag(sync=True)
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
        try:
            reply |= self.process_jpeg(buffers[0] if buffers else b"", f"frame {content.get('id')}")
        except ValueError as err:  # a frame the browser garbled must not stop the stream
            reply["error"] = str(err)
        self.kernel_ms = (time.perf_counter() - clock) * 1000.0
        reply |= {"frames": self.frames, "kernel_ms": round(self.kernel_ms, 2)}
        self.send(reply)

    def process_jpeg(self, jpeg: bytes | memoryview, where: str = "frame") -> dict:
        """One encoded frame through the pipeline: the reply the browser draws."""
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"{where}: {len(jpeg)} bytes that are not a JPEG or PNG image")
        result = self.pipeline.process(frame)
        self.frames += 1
        return {
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "status": result.status,
            "detections": [
                {"box": list(d.box), "label": d.label, "probabilities": d.probabilities, "track": d.track}
                for d in result.detections
            ],
        }
