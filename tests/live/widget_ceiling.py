"""The widget's ceiling on a machine: the same widget, page and camera with a kernel that does no work, so
that the rate it reaches is what the browser, the Jupyter front end and its messages leave for the pipeline.

``write_notebook`` writes the notebook that the browser test runs beside the real-time chapter; the
pipeline in it answers every frame at once with one fixed face, so the browser draws as much as it does
for a real face.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOK = "widget_ceiling.ipynb"
LABEL = "happy"

SOURCE = f'''from fer_lib import paper
from fer_lib.live.pipeline import DETECTED, Detection, FrameResult
from fer_lib.live.widget import WebcamWidget


class AnswersAtOnce:
    """A pipeline that does no work: every frame gets the same face, {LABEL!r}, in camera pixels."""

    classes = paper.CLASSES

    def reset(self):
        self.index = 0

    def process(self, frame, scale=1.0):
        self.index += 1
        height, width = round(frame.shape[0] * scale), round(frame.shape[1] * scale)
        face = Detection((width // 3, height // 4, width // 3, height // 3), {LABEL!r},
                         {{c: float(c == {LABEL!r}) for c in self.classes}}, 0)
        return FrameResult(self.index, DETECTED, (face,), (height, width), {{}})


widget = WebcamWidget(AnswersAtOnce())
widget'''


def write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOURCE)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, path)
