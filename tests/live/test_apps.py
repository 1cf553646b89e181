"""The live pipeline's applications: ``fer-lib annotate`` on images, folders and videos, and ``fer-lib webcam`` in
a real window on a virtual display; the shipped model on onnxruntime unless a test says otherwise."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_lib import cli, paper
from fer_lib.live import apps
from fer_lib.live.pipeline import STILL
from fer_lib.paths import MODEL_B, shipped_file

MODEL = str(shipped_file(MODEL_B, ".onnx"))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_annotate_an_image_and_a_folder(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.png"), astronaut)
    cv2.imwrite(str(folder / "astronaut16.png"), astronaut.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "blank.jpg"), np.zeros((100, 100, 3), np.uint8))
    assert cli.main(["annotate", str(folder / "astronaut.png"), "--out", str(tmp_path / "one"), "--model", MODEL]) == 0
    assert cv2.imread(str(tmp_path / "one" / "astronaut.png")).shape == astronaut.shape
    assert cli.main(["annotate", str(folder), "--out", str(tmp_path / "all"), "--model", MODEL]) == 0
    rows = read_rows(tmp_path / "all" / apps.DETECTIONS_CSV)
    by_source = {r["source"]: r for r in rows}
    assert set(by_source) == {"astronaut.png", "astronaut16.png", "blank.jpg"}
    assert by_source["astronaut.png"]["label"] in paper.CLASSES and by_source["blank.jpg"]["label"] == ""
    assert by_source["astronaut16.png"]["x"] == by_source["astronaut.png"]["x"]
    assert {f"p_{c}" for c in paper.CLASSES} <= set(rows[0])


def test_annotate_a_video(tmp_path, astronaut_face, write_clip):
    video = write_clip(tmp_path / "clip.avi", astronaut_face, moving=6, still=4)
    assert cli.main(["annotate", str(video), "--out", str(tmp_path / "out"), "--model", MODEL, "--no-progress"]) == 0
    rows = read_rows(tmp_path / "out" / apps.DETECTIONS_CSV)
    assert [int(r["frame"]) for r in rows] == list(range(10))
    assert {r["status"] for r in rows[6:]} == {STILL}  # MJPEG's noise is below the gate
    assert all(r["label"] in paper.CLASSES for r in rows)
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip_annotated.mp4"))
    assert sum(1 for _ in apps.video_frames(capture)) == 10


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no images"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "nor a video OpenCV can read"),
        (lambda d: (d / "broken.png").write_bytes(b"not a png") and d / "broken.png", "cannot be read as an image"),
    ],
)
def test_annotate_bad_input_fails_clearly(tmp_path, capsys, make, message):
    assert cli.main(["annotate", str(make(tmp_path)), "--out", str(tmp_path / "out"), "--model", MODEL]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_keras_file_without_metadata_needs_its_release(tmp_path, capsys, keras_model, astronaut):
    model_file = tmp_path / "model.keras"
    keras_model.save(model_file)
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut)
    command = ["annotate", str(tmp_path / "astronaut.png"), "--out", str(tmp_path / "out"), "--model", str(model_file)]
    assert cli.main(command) == 2
    assert "no metadata beside it says which FER-2013 release" in capsys.readouterr().err
    assert cli.main([*command, "--release", "csv"]) == 0


def test_webcam_without_a_display_fails_clearly(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli.main(["webcam"]) == 2
    assert "no display" in capsys.readouterr().err


@pytest.fixture(scope="module")
def x_display():
    """A real X server without a screen (Xvfb), for the desktop window; its display name."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("FER_REQUIRE_DISPLAY") == "1":
            pytest.fail("FER_REQUIRE_DISPLAY=1 but Xvfb is missing (apt-get install xvfb)")
        pytest.skip("Xvfb not found: apt-get install xvfb to test the webcam window")
    read, write = os.pipe()  # Xvfb picks a free display and writes its number here
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def _desktop(display: str) -> dict:
    return {**os.environ, "DISPLAY": display, "MPLBACKEND": "TkAgg", "TF_CPP_MIN_LOG_LEVEL": "3"}


#: Shows one frame in the window, then photographs the whole X screen.
SHOW_AND_GRAB = """
import os, sys
import numpy as np
from PIL import ImageGrab
from fer_lib.live.apps import Window

frame = np.load(sys.argv[1])
window = Window()
for _ in range(5):
    assert window(frame)
np.save(sys.argv[2], np.asarray(ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).convert("RGB")))
"""


@pytest.mark.slow
def test_webcam_window_shows_the_red_box_on_a_real_display(tmp_path, pipeline, astronaut, x_display):
    annotated, result = pipeline.annotate(astronaut)
    assert len(result.detections) == 1
    np.save(tmp_path / "frame.npy", annotated)
    subprocess.run([sys.executable, "-c", SHOW_AND_GRAB, str(tmp_path / "frame.npy"), str(tmp_path / "screen.npy")],
                   env=_desktop(x_display), check=True, timeout=120)
    screen = np.load(tmp_path / "screen.npy")
    red = (screen[..., 0] > 200) & (screen[..., 1] < 60) & (screen[..., 2] < 60)
    rows, cols = np.nonzero(red)
    assert red.sum() > 200, "no red box on the screen"
    assert 40 < cols.max() - cols.min() < 400 and 40 < rows.max() - rows.min() < 400  # one box, scaled to fit


@pytest.mark.slow
def test_webcam_command_plays_a_clip_in_a_window(tmp_path, astronaut_face, write_clip, x_display):
    video = write_clip(tmp_path / "camera.avi", astronaut_face, moving=5, still=0)
    done = subprocess.run([sys.executable, "-m", "fer_lib", "webcam", "--camera", str(video), "--model",
                           MODEL], env=_desktop(x_display), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"camera {video}: 5 frames" in done.stdout


def test_no_camera_fails_clearly():
    with pytest.raises(apps.DeviceError, match="cannot open camera 99"):
        apps.open_camera(99)


def test_camera_loop_on_a_recorded_clip(tmp_path, pipeline, astronaut_face, write_clip):
    video = write_clip(tmp_path / "camera.avi", astronaut_face, moving=5, still=0)
    shown: list[np.ndarray] = []
    capture = apps.open_camera(str(video))
    assert apps.run_camera(pipeline, capture, lambda image: shown.append(image) or True, max_frames=4) == 4
    assert len(shown) == 4 and all(image.shape == (480, 640, 3) for image in shown)
    capture.release()
