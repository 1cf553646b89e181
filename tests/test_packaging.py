"""The project's own files agree with each other: dependencies, commands, entry points."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_requirements() -> set[str]:
    project = _project()
    reqs = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs |= set(extra)
    return reqs


def _environment_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {r for r in pip if not r.startswith("-e")}


def test_environment_yml_and_pyproject_list_the_same_packages():
    ours, theirs = _pyproject_requirements(), _environment_requirements()
    assert ours == theirs, f"only in pyproject: {ours - theirs}; only in environment.yml: {theirs - ours}"


def _name(requirement: str) -> str:
    """A distribution's normalized name (PEP 503), without extras or versions."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement)[0]).lower()


def test_lower_bounds_are_the_locked_versions():
    """Each lower bound is a version the tests ran: requirements.lock's, the oldest in use (the compatibility
    lane, `python3 tasks.py compat`, runs the newest that the upper bounds allow)."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    locked = {_name(line): line.split("==")[1] for line in lines if "==" in line and not line.startswith("#")}
    bounds = {_name(r): re.search(r">=([^,;\s]+)", r) for r in _pyproject_requirements()}
    untested = {name: (bound and bound[1], locked.get(name)) for name, bound in bounds.items()
                if not bound or bound[1] != locked.get(name)}
    assert untested == {}, f"(lower bound, locked version) that differ: {untested}"


def test_python_versions_agree():
    project = _project()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert project["requires-python"] in python


def test_pins_that_matter():
    reqs = _pyproject_requirements()
    assert any(re.fullmatch(r"jupyter-book>=1\.[\w.]+,<2", r) for r in reqs)  # 2.x is another tool
    assert any(re.fullmatch(r"opencv-python-headless>=4\.[\d.]+,<5", r) for r in reqs)  # 5.0 lacks CascadeClassifier


def test_readme_gives_exactly_two_commands_and_ci_runs_the_test_one_and_the_lane():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["python3 tasks.py book", "python3 tasks.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 tasks.py test" in ci and "python3 tasks.py compat" in ci


def test_command_line_entry_points():
    out = subprocess.run([sys.executable, "-m", "fer_lib", "--help"], capture_output=True, text=True, check=True)
    for command in ("data", "models", "train"):
        assert command in out.stdout


def test_citation_file_agrees_with_the_project():
    import fer_lib
    from fer_lib import book, paper

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    project = _project()
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == fer_lib.__version__
    assert cff["license"] == project["license"]
    assert (ROOT / "LICENSE").read_text().startswith(f"{project['license']} License")
    assert cff["repository-code"] == book.repository()["url"]
    bib = (ROOT / "book" / "references.bib").read_text()
    paper_doi = re.search(r"@article\{norhikmah2022effect,[^@]*?doi\s*=\s*\{(.+?)\}", bib).group(1)
    assert cff["references"][0]["doi"] == paper_doi
    assert paper_doi in paper.CITATION
