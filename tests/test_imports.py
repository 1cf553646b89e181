"""fer_lib's modules import each other one way only: down its layers, never in a circle.

Every import counts, wherever it stands (at the top, inside a function, under ``if
TYPE_CHECKING:``): a deferred import is still an arrow from one concern to another.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import fer_lib

PACKAGE = Path(fer_lib.__file__).parent

#: Bottom first; a module imports from its own layer or lower ones. fer_lib.live's modules share one layer.
LAYERS: dict[str, int] = {
    # where things are, and what the paper says
    "fer_lib": 0, "fer_lib.paths": 0, "fer_lib.paper": 0,
    # the data
    "fer_lib.fer2013": 1, "fer_lib.readers": 1, "fer_lib.data": 1, "fer_lib.ferplus": 1,
    # the models (ours and published peers), their scores, and the live application that runs one
    "fer_lib.models": 2, "fer_lib.peers": 2, "fer_lib.evaluate": 2, "fer_lib.live": 2,
    # training, and the run folders it writes
    "fer_lib.provenance": 3, "fer_lib.augment": 3, "fer_lib.checkpoints": 3, "fer_lib.train": 3, "fer_lib.runs": 3,
    # what is made from runs and models: the study, the comparisons, the book, the shipped model's files
    "fer_lib.stats": 4, "fer_lib.study": 4, "fer_lib.checks": 4, "fer_lib.hypotheses": 4, "fer_lib.compare": 4,
    "fer_lib.peertable": 4,
    "fer_lib.beyond": 4, "fer_lib.goals": 4, "fer_lib.plots": 4,
    "fer_lib.book": 4, "fer_lib.export": 4, "fer_lib.card": 4,
    # the command line
    "fer_lib.cli": 5, "fer_lib.__main__": 5,
}
#: A module this long holds more than one concern: split one out (compare.py and train.py were, at 480).
MAX_LINES = 450


def module_files() -> dict[str, Path]:
    """fer_lib's modules by dotted name."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported(source: str, modules: set[str]) -> set[str]:
    """The fer_lib modules a module's source imports anywhere in it; ``from fer_lib import x``
    imports the module ``fer_lib.x`` where there is one, else (a name) ``fer_lib``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                      for alias in node.names}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    """Each module and the fer_lib modules it imports."""
    files = module_files()
    return {name: imported(path.read_text(), set(files)) for name, path in files.items()}


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, "a imports b imports ... a", or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        return list(reversed(err.args[1]))  # graphlib lists it against the arrows
    return None


def layer(module: str) -> int | None:
    return LAYERS.get("fer_lib.live" if module.startswith("fer_lib.live.") else module)


def test_the_check_sees_every_import():
    modules = {"fer_lib.a", "fer_lib.b", "fer_lib.live", "fer_lib.live.c"}
    source = ("from typing import TYPE_CHECKING\nimport numpy\nfrom fer_lib import b as bee\n"
              "if TYPE_CHECKING:\n    from fer_lib.live.c import Thing\n"
              "def f():\n    from fer_lib import a\n")
    assert imported(source, modules) == {"fer_lib.a", "fer_lib.b", "fer_lib.live.c"}
    assert imported("from fer_lib.live import c, helper\n", modules) == {"fer_lib.live.c", "fer_lib.live"}


def test_the_check_finds_circles():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) in (["a", "b", "c", "a"], ["b", "c", "a", "b"],
                                                           ["c", "a", "b", "c"])
    assert circle({"a": {"a"}}) == ["a", "a"]  # a module importing itself
    assert circle({"a": {"b"}, "b": set()}) is None


def test_no_circle_of_imports():
    found = circle(import_graph())
    assert found is None, "a circle of imports: " + " imports ".join(found)


def test_every_module_has_a_layer():
    assert [name for name in module_files() if layer(name) is None] == []


def test_imports_run_down_the_layers():
    graph = import_graph()
    placed = {name for name in graph if layer(name) is not None}  # the others fail the test above
    upward = [f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
              for name in sorted(placed) for target in sorted(graph[name] & placed) if layer(target) > layer(name)]
    assert upward == []


def test_modules_stay_short():
    long = {name: n for name, path in module_files().items() if (n := len(path.read_text().splitlines())) >= MAX_LINES}
    assert long == {}, f"modules of {MAX_LINES} lines or more: split out a concern"
