"""Two notebooks that the browser tests run beside the real-time chapter.

The ceiling: the same widget, page and camera with a kernel that does no work, so that the rate it
reaches is what the browser, the Jupyter front end and its messages leave for the pipeline; its
pipeline answers every frame at once with one fixed face, so the browser draws as much as it does for a
real face. JPEG: the real pipeline with frames sent as JPEGs, as a page across a network sends them (a
page on localhost sends grey pixels).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

CEILING = "widget_ceiling.ipynb"
JPEG = "widget_jpeg.ipynb"
LABEL = "happy"

CEILING_SOURCE = f'''from fer_lib import paper
from fer_lib.live.frames import Detection
from fer_lib.live.pipeline import DETECTED, FrameResult
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


JPEG_SOURCE = '''from fer_lib.live.widget import WebcamWidget

widget = WebcamWidget(frame_format="jpeg")
widget'''


def write_notebooks(folder: Path) -> None:
    for name, source in ((CEILING, CEILING_SOURCE), (JPEG, JPEG_SOURCE)):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                           "language": "python"}
        nbformat.write(notebook, folder / name)
