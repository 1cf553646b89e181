"""The live application where TensorFlow and Keras cannot be imported, as after ``pip install "fer_lib[live]"``:
the pipeline, ``fer-lib annotate`` and the widget's kernel half run the shipped model on onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2

#: Runs in a fresh interpreter in which importing tensorflow, keras or jax raises ImportError.
WITHOUT_TENSORFLOW = """
import importlib.abc, json, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "jax"):
            raise ImportError(f"{name} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, NoTensorFlow())
import cv2
from fer_lib import cli
from fer_lib.live import classify
from fer_lib.live.pipeline import Pipeline
from fer_lib.live.widget import WebcamWidget
from fer_lib.paths import MODEL_B, shipped_file

image, out = sys.argv[1], sys.argv[2]
pipeline = Pipeline.load()
result = pipeline.process(cv2.imread(image))
widget = WebcamWidget(pipeline)
reply = widget.process_frame(cv2.imencode(".jpg", cv2.imread(image))[1].tobytes())
status = cli.main(["annotate", image, "--out", out, "--no-progress"])
keras_file = cli.main(["annotate", image, "--out", out, "--model", str(shipped_file(MODEL_B))])
print(json.dumps({
    "tensorflow": classify.tensorflow_available(),
    "runtime": type(pipeline.classifier.model).__module__,
    "labels": result.labels,
    "widget_labels": [d["label"] for d in reply["detections"]],
    "annotate": status,
    "keras_file": keras_file,
    "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax")),
}))
"""


def test_the_live_path_runs_on_onnxruntime_without_tensorflow(tmp_path, astronaut):
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), astronaut)
    done = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, str(image), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] is False and report["runtime"].startswith("onnxruntime")
    assert len(report["labels"]) == 1 and report["widget_labels"] == report["labels"]
    assert report["annotate"] == 0 and (tmp_path / "out" / "detections.csv").is_file()
    assert report["keras_file"] == 2 and "needs TensorFlow, which is not installed" in done.stderr
    assert report["imported"] == []
