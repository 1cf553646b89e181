"""Writes a photograph for ``fer-lib annotate`` in the compatibility lane (``python3 tasks.py compat``): three real
FER-2013 faces, the shipped-model reference's first, in a simulated webcam frame at 90 cm in bright light.

It runs where only ``fer_lib[live]`` is installed and stops if TensorFlow or Keras is importable there, because
that step is to show that the live extra suffices alone. Usage: ``python .ci/live_photo.py OUT.png``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2

from fer_lib import data
from fer_lib.live import scenes

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "shipped_model_b_reference.json"
FACES, DISTANCE_CM, LIGHTING = 3, 90, "bright"


def main(out: Path) -> None:
    present = [name for name in ("tensorflow", "keras") if importlib.util.find_spec(name)]
    if present:
        sys.exit(f"{', '.join(present)} installed: this step must run with fer_lib[live] alone")
    # fer_lib is installed here as users install it, so it does not see the data beside this checkout itself
    shared = ROOT.parent / "shared" / "fer2013-csv"
    fer = data.load_fer2013(None if os.environ.get("FER2013_DIR") or not shared.exists() else shared, progress=False)
    rows = json.loads(REFERENCE.read_text())["rows"][:FACES]
    scene = scenes.render(list(fer.images[rows]), DISTANCE_CM, LIGHTING, scenes.scene_rng(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), scene.frame):
        sys.exit(f"{out}: cannot be written")
    print(f"{out}: {FACES} faces of CSV rows {rows} at {DISTANCE_CM} cm, {LIGHTING} light")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
