"""The webcam widget's kernel half: grey pixels or a JPEG in, the reply the browser draws out, in camera pixels;
a malformed frame gets an error reply and the stream goes on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lib.live.widget import WebcamWidget


@pytest.fixture
def widget(pipeline, monkeypatch):
    """A widget whose replies are collected instead of sent to a browser."""
    widget = WebcamWidget(pipeline)
    widget.replies = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: widget.replies.append(content))
    return widget


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return encoded.tobytes()


def frame_message(widget, frame_id: int, buffer, size=(512, 512), shape=None) -> dict:
    content = {"type": "frame", "id": frame_id, "view": "v", "width": size[0], "height": size[1]}
    widget._on_frame(widget, content | ({"shape": shape} if shape is not None else {}), [buffer])
    return widget.replies[-1]


@pytest.mark.parametrize("frame_format", ["jpeg", "gray"])
def test_a_smaller_frame_is_answered_in_camera_pixels(widget, astronaut, iou, frame_format):
    (full,) = widget.pipeline.process(astronaut).detections
    widget.pipeline.reset()
    half = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    if frame_format == "jpeg":
        reply = frame_message(widget, 7, memoryview(jpeg(half)))
    else:  # as the browser sends it: a read-only buffer of grey bytes, row by row
        gray = cv2.cvtColor(half, cv2.COLOR_BGR2GRAY)
        reply = frame_message(widget, 7, memoryview(gray.tobytes()), shape=[256, 256])
    assert "error" not in reply and (reply["id"], reply["view"]) == (7, "v")
    assert (reply["width"], reply["height"]) == (512, 512) and reply["frames"] == 1
    (face,) = reply["detections"]
    assert iou(face["box"], full.box) > 0.8 and face["label"] in widget.classes
    assert reply["kernel_ms"] > 0


@pytest.mark.parametrize(
    ("buffer", "size", "message"),
    [
        (b"", (512, 512), "frame 1: an empty buffer"),
        (memoryview(b""), (512, 512), "frame 1: an empty buffer"),
        (b"\xff\xd8\xff garbage", (512, 512), "frame 1: 11 bytes that are not a JPEG or PNG image"),
        (np.zeros(100, np.uint8).tobytes(), (512, 512), "not a JPEG or PNG"),
        ("half", (100, 100), "is not a smaller copy of the camera's 100x100"),
        ("half", (100_000, 100_000), "is not a smaller copy"),
    ],
)
def test_a_malformed_frame_gets_an_error_reply_and_the_stream_goes_on(widget, astronaut, buffer, size, message):
    good = jpeg(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    assert "error" not in frame_message(widget, 0, good)
    reply = frame_message(widget, 1, good if buffer == "half" else buffer, size)
    assert message in reply["error"] and reply["id"] == 1 and reply["frames"] == 1
    after = frame_message(widget, 2, good)
    assert "error" not in after and after["frames"] == 2 and len(after["detections"]) == 1


@pytest.mark.parametrize(
    ("buffer", "shape", "message"),
    [
        (bytes(256 * 255), [256, 256], "frame 1: 65280 bytes are not the 256x256 grey pixels its shape says"),
        (b"", [256, 256], "0 bytes are not the 256x256"),
        (bytes(256 * 256), [256], "frame 1: shape must be [height, width]"),
        (bytes(256 * 256), "256x256", "shape must be [height, width]"),
        (bytes(256 * 256), [0, 256], "shape must be [height, width]"),
        (bytes(256 * 256), [256.0, 256], "shape must be [height, width]"),
    ],
)
def test_malformed_grey_pixels_get_an_error_reply(widget, buffer, shape, message):
    reply = frame_message(widget, 1, buffer, shape=shape)
    assert message in reply["error"] and reply["frames"] == 0
    assert "error" not in frame_message(widget, 2, bytes(256 * 256), shape=[256, 256])


def test_a_message_without_a_buffer_or_of_another_kind(widget):
    widget._on_frame(widget, {"type": "frame", "id": 3}, [])
    assert "empty buffer" in widget.replies[-1]["error"]
    widget._on_frame(widget, {"type": "something else"}, [])
    widget._on_frame(widget, "not a dict", [])
    assert len(widget.replies) == 1


def test_settings_are_validated(pipeline):
    for bad in ({"max_fps": 0}, {"jpeg_quality": 2.0}, {"frame_width": 50}, {"max_in_flight": 9},
                {"frame_format": "png"}):
        with pytest.raises(Exception, match=r"must be|expected any of"):
            WebcamWidget(pipeline, **bad)
