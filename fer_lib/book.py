"""What the book's pages need besides the science: glue, Colab, the runs a chapter reads,
and each chapter's provenance. No sentences: the chapters phrase what this returns.
"""

from __future__ import annotations

import base64
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib import fer2013, paper, provenance, runs, train
from fer_lib.compare import PENDING
from fer_lib.paths import repository_root

MODELS: tuple[str, ...] = ("A", "B")
CONFIG_FILE = "_config.yml"
BUILD_COMMAND = "python3 tasks.py book"


# --- Glue: numbers for the prose -------------------------------------------------------
def glue_value(value):
    """The value as myst-nb should store it.

    myst-nb stores a value's repr and pastes ``ast.literal_eval`` of it, so a string keeps
    its quotes in the store (or "50, 100, 200" would come back as a tuple, in parentheses)
    and NumPy scalars become Python numbers (NumPy 2 writes ``np.float64(0.5)``, which
    myst-nb cannot format)."""
    return value.item() if isinstance(value, np.generic) else value


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` where it is installed (the book); elsewhere (Colab) only display."""
    value = glue_value(value)
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    """A number for a table cell, or "pending" where it does not exist yet."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return PENDING
    return f"{value:{spec}}{suffix}"


def in_words(items: list[str], none: str = "none") -> str:
    """"x", "x and y", "x, y and z", or ``none``."""
    return none if not items else items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def glue_all(values: Mapping[str, object], prefix: str = "") -> None:
    """Glue every fact of a mapping under its own key (a page then quotes the ones it needs)."""
    for key, value in values.items():
        glue(prefix + key, value)


#: What an effect on the train-validation gap does to it, by where its 95% interval lies (``study.sign_reading``).
GAP_READINGS = {"above zero": "widens it", "below zero": "narrows it",
                "not distinguishable from zero": "leaves it within the seeds' spread", PENDING: PENDING}


def glue_study_headline(root: str | os.PathLike | None = None) -> None:
    """The controlled study's facts, each computed once and glued under one name, ``study_<key>``, for
    every page that quotes them (its chapter, the introduction, the discussion): ``study.headline``
    (signed where it is an effect), what each effect does to the gap (``<key>_gap_reading``), the
    readings of the paper's numbers and those the seeds support, what the study changes in the paper's
    protocol (``study.protocol_differences``) and its size (``study.extent``)."""
    from fer_lib import hypotheses, study

    runs_by_key = study.load_study(root or repository_root())
    table = study.run_table(runs_by_key)
    numbers = study.headline(table)
    signed = tuple(f"{key}_" for key in study.HEADLINE_EFFECTS)
    glue_all({f"study_{key}": fmt(value, "+.1f" if key.startswith(signed) else ".1f") if isinstance(value, float)
              else value for key, value in numbers.items()})
    tested = hypotheses.table(runs_by_key)
    supported = in_words(hypotheses.readings(tested, described=True))
    glue_all({"n_readings": tested["hypothesis"].nunique(), "supported": supported, **study.protocol_differences(),
              "extent": study.extent(table)}, prefix="study_")
    glue_all({f"{key}_gap_reading": GAP_READINGS[study.sign_reading(numbers[f"{key}_gap_low"],
                                                                    numbers[f"{key}_gap_high"])]
              for key in study.HEADLINE_EFFECTS}, prefix="study_")


def glue_claims(paper_runs: Mapping[str, runs.Run], simulated_live: Mapping[str, float],
                root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The claims table (``compare.claims``, with the controlled study's evidence under ``root`` and the
    simulated live tests) and its counts, glued once for every page that quotes them: ``n_claims``,
    ``n_<verdict>`` and ``seeds_decided`` (the claims whose verdict the seeds decided, quoted, or "none")."""
    from fer_lib import compare, study

    evidence = study.claims_evidence(study.headline(study.run_table(study.load_study(root or repository_root()))))
    claims = compare.claims(paper_runs, compare.built_param_counts(), simulated_live, evidence)
    glue_all({f"n_{verdict.replace(' ', '_')}": n for verdict, n in compare.verdict_counts(claims).items()})
    glue("n_claims", len(claims))
    glue("seeds_decided", in_words([f'"{claim}"' for claim in compare.decided_by_seeds(claims)]))
    return claims


def glue_simulated_live(numbers: Mapping[str, float]) -> None:
    """The paper's live tests in the simulated webcam (``livestudy.simulated_live``), glued once for every
    page that quotes them: ``simulated_live_average`` (over the three lights, as the paper's 78% is) and
    ``simulated_live_<class>`` for the classes the paper gives at 30 cm."""
    glue_all({"average" if key == paper.LIVE_AVERAGE else key: value for key, value in numbers.items()},
             prefix="simulated_live_")


# --- The runs a chapter reads -------------------------------------------------------------
def read_runs(root: str | os.PathLike) -> dict[str, runs.Run]:
    """Both models' runs under ``root`` (``model_a/``, ``model_b/``), each checked to hold the
    model its folder names."""
    found = {m: runs.load_run(Path(root) / runs.run_folder("", m).name) for m in MODELS}
    for m, run in found.items():
        if run.name != m:
            raise ValueError(f"{run.path} holds a run of Model {run.name}, not Model {m}")
    return found


def train_or_read_runs(profile: str, results: str | os.PathLike, data: fer2013.FER2013 | None = None,
                       train_afresh: bool = False) -> dict[str, runs.Run]:
    """The runs a chapter shows: the committed ones in ``results`` (the paper profile), or
    both models trained now.

    Training is explicit here because it can take days: ``smoke`` trains its seconds-long
    runs into a fresh temporary folder (the notebook tests); ``train_afresh`` trains the
    profile into ``results/<profile>`` of the checkout, resuming what is there.
    """
    if profile == "paper" and not train_afresh:
        return read_runs(results)
    root = Path(tempfile.mkdtemp(prefix="fer-smoke-")) if profile == "smoke" else repository_root()
    for model in MODELS:
        folder = root / runs.run_folder(profile, model)
        train.fit(train.profile(profile, model.lower()), folder, data, progress=False)
    return read_runs(root / runs.run_folder(profile, "a").parent)


# --- Provenance, once per chapter -------------------------------------------------------------
def provenance_table(fer: fer2013.FER2013 | None = None, chapter_runs: Mapping[str, runs.Run] | None = None,
                     command: str = BUILD_COMMAND) -> pd.DataFrame:
    """Command, commit, data checksum, seed, hardware and wall time behind a chapter's numbers:
    the build's own, and each run's it reads."""
    env = provenance.environment()
    rows = {"command": command, "commit (this build)": provenance.short_commit(env["git_commit"]),
            "software (this build)": provenance.software_text(env),
            "machine (this build)": provenance.machine_text(env)}
    if fer is not None:
        rows |= {"data": f"FER-2013, {fer.release} release, {Path(fer.source).name}, {len(fer):,} images",
                 "data sha256": fer.checksum}
    for name, run in (chapter_runs or {}).items():
        segs = run.manifest["segments"]
        worked_in = provenance.counted(len(segs), "session")
        rows |= {f"Model {name}: run": f"{run.path}, {run.status()}",
                 f"Model {name}: seed": str(run.config.seed),
                 f"Model {name}: commits": ", ".join(run.commits()),
                 f"Model {name}: data sha256": run.manifest["data"]["sha256"],
                 f"Model {name}: hardware": "; ".join(sorted({provenance.machine_text(s) for s in segs})),
                 f"Model {name}: wall time": f"{run.wall_hours():.1f} h in {worked_in}"}
    return pd.Series(rows, name="value").rename_axis("what").to_frame()


def sessions(chapter_runs: Mapping[str, runs.Run]) -> pd.DataFrame:
    """Every session that trained a run: epochs, machine, versions, commit and wall time."""
    return pd.DataFrame([{"model": model, "epochs": f"{seg['first_epoch']}-{seg.get('last_epoch', '?')}",
                          "started (UTC)": seg["start"].replace("T", " ")[:16],
                          "machine": provenance.machine_text(seg), "software": provenance.software_text(seg),
                          "commit": provenance.short_commit(seg["git_commit"]),
                          "wall (h)": seg.get("wall_seconds", 0.0) / 3600}
                         for model, run in chapter_runs.items() for seg in run.manifest["segments"]])


# --- Links: one repository address, in _config.yml -----------------------------------------------------
def repository(config: str | os.PathLike | None = None) -> dict[str, str]:
    """The book's ``repository`` settings (url, branch, path_to_book): every link derives from them."""
    import yaml

    path = Path(config) if config is not None else repository_root() / CONFIG_FILE
    settings = yaml.safe_load(Path(path).read_text())["repository"]
    return {"url": settings["url"].rstrip("/"), "branch": settings.get("branch", "main"),
            "path_to_book": settings.get("path_to_book", "") or ""}


def colab_url(notebook: str, config: str | os.PathLike | None = None) -> str:
    """The "Open in Colab" address of a notebook given by its path in the repository."""
    repo = repository(config)
    owner_name = repo["url"].removeprefix("https://github.com/")
    path = "/".join(p for p in (repo["path_to_book"].strip("/"), notebook) if p)
    return f"https://colab.research.google.com/github/{owner_name}/blob/{repo['branch']}/{path}"


_BADGE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">'
    '<rect width="117" height="20" rx="3" fill="#555"/><rect x="20" width="97" height="20" rx="3" fill="#f9ab00"/>'
    '<circle cx="7" cy="10" r="4" fill="none" stroke="#f9ab00" stroke-width="2.5"/>'
    '<circle cx="13" cy="10" r="4" fill="none" stroke="#e8710a" stroke-width="2.5"/>'
    '<text x="68" y="14" fill="#fff" font-family="DejaVu Sans,Verdana,sans-serif" font-size="11" '
    'text-anchor="middle">Open in Colab</text></svg>'
)


def colab_badge(notebook: str, config: str | os.PathLike | None = None):
    """An "Open in Colab" badge; the image is inline so that the page needs no network to show it."""
    from IPython.display import HTML

    src = "data:image/svg+xml;base64," + base64.b64encode(_BADGE.encode()).decode()
    return HTML(f'<a href="{colab_url(notebook, config)}" target="_blank" rel="noopener">'
                f'<img src="{src}" alt="Open in Colab" width="117" height="20"></a>')


# --- Colab: the first cell of every chapter -------------------------------------------------------------
COLAB_CHECKOUT = "/content/fer-repo"

_COLAB_CELL = '''\
# Colab only (elsewhere this does nothing): clone the repository, for fer_lib and the committed
# runs, install it, and let fer_lib fetch FER-2013 with kagglehub. Written by
# fer_lib.book.write_colab_cells(); a test keeps every chapter's copy the same.
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ log
if "google.colab" in sys.modules:
    import subprocess

    REPOSITORY = "{url}"  # repository.url in _config.yml
    CHECKOUT = "{checkout}"
    if not os.path.isdir(CHECKOUT):
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, CHECKOUT], check=True)
    # Colab has TensorFlow; the extras add what the chapters use (ONNX, the widget, kagglehub, BlazeFace)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{{CHECKOUT}}[train,live,download,book]"],
                   check=True)
    sys.path.insert(0, CHECKOUT)
    from fer_lib import book

    book.colab_setup()'''


def colab_cell(config: str | os.PathLike | None = None) -> str:
    """The source of every chapter's first cell. It runs before fer_lib is installed, so it
    cannot call fer_lib until it has installed it; this is the one place it is written."""
    return _COLAB_CELL.format(url=repository(config)["url"], checkout=COLAB_CHECKOUT)


def colab_setup() -> None:
    """After the install in Colab: fetch FER-2013 when asked for (the challenge CSV if the Kaggle
    account accepted its rules, else the folder release) and run from the chapters' folder."""
    os.environ["FER2013_DOWNLOAD"] = "1"
    os.chdir(Path(COLAB_CHECKOUT) / "notebooks")


def write_colab_cells(notebooks: Iterable[str | os.PathLike], config: str | os.PathLike | None = None) -> None:
    """Make each notebook's first code cell :func:`colab_cell`, the rest untouched."""
    for path in map(Path, notebooks):
        nb = json.loads(path.read_text())
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        first["source"] = colab_cell(config)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
