"""The webcam widget's frame rate in a real browser, beside the ceiling that the machine leaves it.

    python benchmarks/widget_rate.py

Runs the browser test (tests/live/test_widget_browser.py::test_live_camera:
JupyterLab and Notebook 7 on localhost, Debian's headless Chromium with a fake
camera) and prints, per front end, the frames per second the kernel answered
(goal: 30, a webcam's rate), the same page and camera with a kernel that does
no work (the ceiling: what the browser, the front end and Jupyter's messages
leave on this machine), the widget's share of that ceiling, and the round trip
split into the browser's grab, the kernel, transport and waiting, and drawing.
Both rates come from one run, so the share holds on a busy machine. Needs
/usr/bin/chromium (apt-get install chromium).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/live/test_widget_browser.py::test_live_camera"
GOAL_FPS = 30


def main() -> None:
    with tempfile.TemporaryDirectory() as artifacts:
        env = {**os.environ, "FER_TEST_ARTIFACTS": artifacts, "FER_REQUIRE_BROWSER": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT,
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the browser test failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        reports = {p.stem.removeprefix("webcam_fps_"): json.loads(p.read_text())
                   for p in sorted(Path(artifacts).glob("webcam_fps_*.json"))}
    print(f"webcam widget, 640x480 fake camera, {os.cpu_count()} CPUs; frames per second the kernel answered\n")
    print(f"{'front end':<12} {'widget':>7} {'ceiling':>8} {'share':>6} {'goal':>5}   round trip: grab, kernel, "
          "transport and waiting, drawing (ms)")
    for frontend, r in reports.items():
        stages = ", ".join(f"{v:.1f}" for v in r["stages_ms"].values())
        print(f"{frontend:<12} {r['kernel_frames_per_s']:7.1f} {r['ceiling']['kernel_frames_per_s']:8.1f} "
              f"{r['share_of_ceiling']:6.2f} {r['kernel_frames_per_s'] / GOAL_FPS:5.2f}   "
              f"{r['round_trip_ms']:.0f}: {stages}")
    print(f"\nshare: of the ceiling (a kernel that answers at once); goal: of {GOAL_FPS} frames/s. Where the ceiling "
          f"is below {GOAL_FPS}, the browser and Jupyter's messaging, not the pipeline, keep the widget from it.")


if __name__ == "__main__":
    main()
