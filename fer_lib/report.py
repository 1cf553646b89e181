"""What the book's chapters compute, so that the notebooks stay thin: runs as they stand, the
paper's tables beside ours, the claims with verdicts, provenance, and the links a reader follows.

The paper run takes days on the project's CPUs, so every function here reads
whatever epochs a run has had and says so; a number that needs an epoch not
reached yet is NaN, shown as "pending" by :func:`fer_lib.plots.table`.
Plotting lives in :mod:`fer_lib.plots`; the paper's own numbers in
:mod:`fer_lib.paper`.
"""

from __future__ import annotations

import base64
import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fer_lib import data as fer_data
from fer_lib import evaluate, paper, provenance, runs, train

PENDING = "pending"
MODELS: tuple[str, ...] = ("A", "B")
#: The epochs at which the paper reports Table IV and Table V: its 100-epoch runs.
TABLE_V_EPOCHS = 100
TABLE_IV_EPOCHS = tuple(range(91, 101))
#: Verdict thresholds for accuracies and gaps, in percentage points, fixed before
#: the results were known: within the first, "reproduced"; within the second, "partly".
REPRODUCED_WITHIN = 2.0
PARTLY_WITHIN = 5.0
CONFIG_FILE = "_config.yml"


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
    """A number for prose or a table cell, or "pending" where it does not exist yet."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return PENDING
    return f"{value:{spec}}{suffix}"


# --- Runs ------------------------------------------------------------------------------
def runs_provenance(runs: dict[str, runs.Run]) -> str:
    """The provenance of a figure drawn from several runs, short enough for a caption."""
    first = next(iter(runs.values()))
    seg = first.manifest["segments"][-1]
    epochs = ", ".join(f"Model {m} {r.epochs_done} of {r.planned} epochs" for m, r in runs.items())
    seeds = sorted({str(r.manifest["config"]["seed"]) for r in runs.values()})
    data_sums = sorted({r.manifest["data"]["sha256"][:12] for r in runs.values()})
    commits = provenance.segment_commits([seg for r in runs.values() for seg in r.manifest["segments"]])
    hours = sum(r.wall_hours() for r in runs.values())
    return (f"Runs: {epochs}; seed {', '.join(seeds)}; commit {', '.join(commits)}; "
            f"data sha256 {', '.join(data_sums)}; {seg['cpu']}, {seg['cores']} cores; "
            f"{provenance.software_text(seg)}; {hours:.1f} h of wall time.")


def runs_complete(runs: dict[str, runs.Run]) -> bool:
    return all(run.complete for run in runs.values())


def progress_note(runs: dict[str, runs.Run], once_complete: str, meanwhile: str) -> str:
    """A sentence for the prose that reads right both while the paper run goes on and once it
    is complete: ``meanwhile`` says what the page does with the epochs not run yet."""
    if runs_complete(runs):
        return once_complete
    return f"The paper run takes days on the CPUs of this project and is resumed session by session; {meanwhile}"


def run_folder(model: str) -> str:
    return f"model_{model.lower()}"


def load_runs(root: str | Path) -> dict[str, runs.Run]:
    """Both models' runs under ``root`` (``model_a/``, ``model_b/``), checked to hold the model
    their folder names."""
    runs = {m: runs.load_run(Path(root) / run_folder(m)) for m in MODELS}
    for m, run in runs.items():
        if run.name != m:
            raise ValueError(f"{run.path} holds a run of Model {run.name}, not Model {m}")
    return runs


def runs_dir(profile: str, results: str | Path, data: fer_data.FER2013 | None = None,
             train_afresh: bool = False) -> Path:
    """Where a chapter reads its runs from: the committed paper run, or runs trained now.

    ``smoke`` trains its seconds-long runs into a fresh temporary folder (the
    notebook tests); ``train_afresh`` trains the profile into ``runs/<profile>``
    of the checkout (the paper profile takes days on a CPU, and resumes).
    """
    if profile == "paper" and not train_afresh:
        return Path(results)
    if profile == "smoke":
        out = Path(tempfile.mkdtemp(prefix="fer-smoke-"))
    else:
        out = fer_data.repository_root() / "runs" / profile
    for model in MODELS:
        train.fit(train.profile(profile, model.lower()), out / run_folder(model), data, progress=False)
    return out


# --- Provenance --------------------------------------------------------------------------
def data_provenance(fer: fer_data.FER2013) -> str:
    kind = "histogram-equalized JPEGs" if fer.histogram_equalized else "original pixels"
    return (f"FER-2013, {fer.release} release ({kind}), {len(fer):,} images from {Path(fer.source).name}, "
            f"sha256 {fer.checksum[:12]}")


def code_provenance() -> str:
    """The checkout and the packages that computed a chapter's numbers."""
    env = provenance.environment()
    return (f"commit {provenance.short_commit(env['git_commit'])}, "
            f"{provenance.software_text(env)}, {provenance.machine_text(env)}")


# --- Chapter 1: Table I ---------------------------------------------------------------------
def table_i_beside_paper(fer: fer_data.FER2013) -> pd.DataFrame:
    """Images per split and class (ours) with the paper's totals; the paper gives no
    per-class counts and does not use PublicTest."""
    table = fer.five_class_counts()
    table["paper total"] = [paper.TRAIN_RECORDS, paper.VALIDATION_RECORDS, np.nan]
    table["difference"] = table["total"] - table["paper total"]
    return table


def cells_that_sum_to(fer: fer_data.FER2013, target: int, max_cells: int = 2) -> list[tuple[str, ...]]:
    """Whole (usage, class) cells of FER-2013 whose counts add up to ``target``: the
    candidates for a count that differs from ours by ``target`` images."""
    counts = fer.counts()
    cells = [(f"{u}/{c}", int(counts.loc[u, c])) for u in counts.index for c in counts.columns]
    found = []
    for r in range(1, max_cells + 1):
        for combo in itertools.combinations(cells, r):
            if sum(n for _, n in combo) == abs(target):
                found.append(tuple(name for name, _ in combo))
    return found


def data_quality(split: fer_data.Split) -> dict[str, int]:
    """Exact duplicate images and blank (constant) images: FER-2013 was scraped from the web."""
    flat = split.x.reshape(len(split), -1)
    unique = np.unique(flat, axis=0)
    return {"images": len(split), "duplicates": len(split) - len(unique), "blank": int((flat.std(axis=1) < 1).sum())}


# --- Chapter 2: input size --------------------------------------------------------------------
def params_at_input_size(model, size: int) -> dict[str, int]:
    """Parameters per layer of the same architecture fed ``size`` x ``size`` images: the
    tables' counts decide which input size the paper's models had."""
    import keras

    clone = keras.models.clone_model(model, input_tensors=keras.Input((size, size, 1)))
    return {layer.name: layer.count_params() for layer in clone.layers} | {"total": clone.count_params()}


# --- Chapter 3: Tables II and III -----------------------------------------------------------------
def _shape(layer) -> tuple[int, ...]:
    return tuple(int(d) for d in layer.output.shape[1:])


def architecture_table(model) -> pd.DataFrame:
    """Layer, type, output shape and parameters of a live model, as Keras' summary lists them."""
    rows = [(layer.name, type(layer).__name__, _shape(layer), layer.count_params())
            for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return pd.DataFrame(rows, columns=["layer", "type", "output shape", "parameters"])


def architecture_beside_paper(model, paper_rows) -> pd.DataFrame:
    """Our layers beside the paper's table; ``agrees`` is False where shape or count differ
    and NaN where the paper's table has no row for the layer."""
    ours = architecture_table(model)
    theirs = pd.DataFrame(list(paper_rows), columns=["layer", "paper output shape", "paper parameters"])
    table = ours.merge(theirs, on="layer", how="outer", sort=False, indicator=True)
    table["agrees"] = [
        (row["output shape"] == row["paper output shape"] and row["parameters"] == row["paper parameters"])
        if row["_merge"] == "both" else np.nan
        for _, row in table.iterrows()
    ]
    table["note"] = table["_merge"].map({"left_only": "not in the paper's table", "right_only": "missing here",
                                         "both": ""}).astype(str)
    # an outer merge sorts by name; a reader wants the model's order, then any rows only the paper has
    order = [*ours["layer"], *(layer for layer in theirs["layer"] if layer not in set(ours["layer"]))]
    return table.drop(columns="_merge").set_index("layer").loc[order]


def param_counts_beside_paper(built: dict[str, object]) -> pd.DataFrame:
    """Total, trainable and non-trainable counts, ours beside the paper's printed ones, and the
    trainable count the paper's own total implies (its printed one is a typo in both tables)."""
    from fer_lib import models

    printed = {
        "A": (paper.MODEL_A_TOTAL_PARAMS, paper.MODEL_A_TRAINABLE_PARAMS_PRINTED, paper.MODEL_A_NON_TRAINABLE_PARAMS),
        "B": (paper.MODEL_B_TOTAL_PARAMS, paper.MODEL_B_TRAINABLE_PARAMS_PRINTED, paper.MODEL_B_NON_TRAINABLE_PARAMS),
    }
    rows = {}
    for name, model in built.items():
        ours = models.count_params(model)
        total, trainable, non_trainable = printed[name]
        rows[f"Model {name}"] = {
            "total (ours)": ours["total"], "total (paper)": total,
            "trainable (ours)": ours["trainable"], "trainable (paper, printed)": trainable,
            "trainable (paper, total minus non-trainable)": total - non_trainable,
            "non-trainable (ours)": ours["non_trainable"], "non-trainable (paper)": non_trainable,
        }
    return pd.DataFrame(rows).T


# --- Chapter 4: Tables IV, V and VI -----------------------------------------------------------------
def table_iv_beside_paper(run: runs.Run, epochs: tuple[int, ...] = TABLE_IV_EPOCHS) -> pd.DataFrame:
    """Seconds per epoch, ms per step and training loss at epochs 91-100, ours beside the paper's."""
    theirs = paper.TABLE_IV_MODEL_A if run.name == "A" else paper.TABLE_IV_MODEL_B
    rows = {}
    for epoch, (seconds, ms, loss) in zip(epochs, theirs, strict=True):
        rows[epoch] = {"s/epoch (paper)": seconds, "s/epoch (ours)": run.at(epoch, "seconds"),
                       "ms/step (paper)": ms, "ms/step (ours)": run.at(epoch, "ms_per_step"),
                       "loss (paper)": loss, "loss (ours)": run.at(epoch, "loss")}
    return pd.DataFrame(rows).T.rename_axis("epoch")


def hardware_beside_paper(runs: dict[str, runs.Run]) -> pd.DataFrame:
    """Where each run's epochs were timed, beside the paper's Colab."""
    rows = {"paper": {"machine": paper.HARDWARE, "software": "Keras on Google Colab (versions not given)",
                      "sessions": "not given"}}
    for model, run in runs.items():
        segs = run.manifest["segments"]
        machines = {provenance.machine_text(s) for s in segs}
        software = {f"{provenance.software_text(s)}, Python {s['python']}" for s in segs}
        rows[f"ours, Model {model}"] = {"machine": "; ".join(sorted(machines)), "software": "; ".join(sorted(software)),
                                        "sessions": f"{len(segs)} ({run.status()})"}
    return pd.DataFrame(rows).T


def table_v(runs: dict[str, runs.Run]) -> pd.DataFrame:
    """Table V beside the paper's, from the first 100 epochs of each run (the paper's runs had 100);
    stages not reached yet are NaN."""
    return evaluate.table_v_beside_paper({m: run.history for m, run in runs.items()}, TABLE_V_EPOCHS)


def table_v_marks(model: str) -> list[tuple[int, float, str]]:
    """Table V's stages as points on a learning curve: (epoch, accuracy as a fraction, label)."""
    stages = [k for k in paper.TABLE_V[model] if isinstance(k, int)]
    return [(k + 1, paper.TABLE_V[model][k][i] / 100, f"paper, {which} (Table V)")
            for k in stages for i, which in enumerate(("training", "validation"))]


def table_vi_marks() -> list[tuple[int, float, str]]:
    """Table VI as points on Model B's validation curve."""
    return [(e, v / 100, "paper, validation (Table VI)") for e, v in paper.TABLE_VI.items()]


def sessions(runs: dict[str, runs.Run]) -> pd.DataFrame:
    """Every session that trained a run: epochs, machine, versions, commit and wall time."""
    rows = []
    for model, run in runs.items():
        for seg in run.manifest["segments"]:
            rows.append({"model": model, "epochs": f"{seg['first_epoch']}-{seg.get('last_epoch', '?')}",
                         "started (UTC)": seg["start"].replace("T", " ")[:16],
                         "machine": provenance.machine_text(seg),
                         "software": provenance.software_text(seg),
                         "commit": provenance.short_commit(seg["git_commit"]),
                         "wall (h)": seg.get("wall_seconds", 0.0) / 3600})
    return pd.DataFrame(rows)


def paper_gap_definition() -> dict[str, float]:
    """The paper's 6.7 and 0.7 points are the differences of Table V's MAX rows (train minus
    validation, as an absolute value): this recomputes them from the paper's own table."""
    return {m: round(abs(paper.TABLE_V[m]["MAX"][0] - paper.TABLE_V[m]["MAX"][1]), 1) for m in MODELS}


def gap_max_rows(history: pd.DataFrame) -> float:
    """The paper's gap: highest training minus highest validation accuracy, in points."""
    return float((history["accuracy"].max() - history["val_accuracy"].max()) * 100)


def gap_per_epoch(history: pd.DataFrame) -> pd.Series:
    """Training minus validation accuracy at every epoch, in points."""
    return (history["accuracy"] - history["val_accuracy"]).set_axis(history["epoch"]) * 100


# --- Chapter 5: the claims -------------------------------------------------------------------------------
def verdict(ours: float, theirs: float) -> str:
    if math.isnan(ours):
        return PENDING
    off = abs(ours - theirs)
    return "reproduced" if off <= REPRODUCED_WITHIN else "partly" if off <= PARTLY_WITHIN else "not reproduced"


def _compare(claim: str, where: str, theirs: float, ours: float, epoch: int, run: runs.Run, latest: float,
             unit: str = "%") -> dict:
    """One numeric claim; while pending, the value so far is given, marked as provisional."""
    v = verdict(ours, theirs)
    if v == PENDING:
        how = f"needs epoch {epoch}; Model {run.name} has had {run.epochs_done} of {run.planned}"
        if not math.isnan(latest):
            how += f" (so far: {latest:.1f}{unit}, provisional)"
    else:
        how = (f"Model {run.name} at epoch {epoch}: {ours:.1f}{unit} against the paper's {theirs:g}{unit}, "
               f"{ours - theirs:+.1f} points")
    return {"claim": claim, "where": where, "paper": f"{theirs:g}{unit}", "ours": fmt(ours, ".1f", unit),
            "verdict": v, "how we checked": how}


def _accuracy_claim(claim: str, where: str, theirs: float, run: runs.Run, epoch: int, column: str) -> dict:
    latest = run.history[column].iloc[-1] * 100 if len(run.history) else math.nan
    return _compare(claim, where, theirs, run.at(epoch, column) * 100, epoch, run, latest)


def claims(runs: dict[str, runs.Run], param_counts: dict[str, int]) -> pd.DataFrame:
    """Each claim of the paper's abstract, results and conclusion, our number and a verdict.

    Accuracies and gaps are "reproduced" within ``REPRODUCED_WITHIN`` points and
    "partly" within ``PARTLY_WITHIN``; a claim whose epoch has not run yet is "pending".
    """
    a, b = runs["A"], runs["B"]
    last_b, at_100 = paper.HYPERPARAMETERS["epochs"][-1], TABLE_V_EPOCHS
    rows = [
        _accuracy_claim(f"Model B reaches {paper.FINAL_TRAIN_ACCURACY:g}% training accuracy", "abstract, conclusion",
                        paper.FINAL_TRAIN_ACCURACY, b, last_b, "accuracy"),
        _accuracy_claim(f"Model B reaches {paper.FINAL_VALIDATION_ACCURACY:g}% validation accuracy",
                        "abstract, conclusion, Table VI", paper.FINAL_VALIDATION_ACCURACY, b, last_b, "val_accuracy"),
    ]
    rows += [_accuracy_claim(f"Model B's validation accuracy after {e} epochs", "Table VI", paper.TABLE_VI[e], b, e,
                             "val_accuracy") for e in paper.TABLE_VI if e != last_b]
    rows += [_accuracy_claim(f"Model {r.name}'s validation accuracy at stage {at_100 - 1}", "Table V",
                             paper.TABLE_V[r.name][at_100 - 1][1], r, at_100, "val_accuracy") for r in (a, b)]
    for run in (a, b):
        ours = abs(gap_max_rows(run.until(at_100))) if run.epochs_done >= at_100 else math.nan
        latest = abs(gap_max_rows(run.history)) if len(run.history) else math.nan
        rows.append(_compare(f"Model {run.name}'s train-validation gap (MAX rows of Table V)",
                             "Section III.C, Table V", paper.TRAIN_VAL_GAP[run.name], ours, at_100, run, latest,
                             unit=" pts"))
    rows.append(_overfitting_claim(a, b, at_100))
    for name, total in (("A", paper.MODEL_A_TOTAL_PARAMS), ("B", paper.MODEL_B_TOTAL_PARAMS)):
        same = param_counts[name] == total
        rows.append({"claim": f"Model {name} has {total:,} parameters",
                     "where": f"Table {'II' if name == 'A' else 'III'}",
                     "paper": f"{total:,}", "ours": f"{param_counts[name]:,}",
                     "verdict": "reproduced" if same else "not reproduced",
                     "how we checked": "counted on the Keras model built from the tables"})
    live = paper.LIVE_TESTS
    rows.append({"claim": f"{live['best_condition_accuracy']:g}% accuracy live at {live['distances_cm'][0]} cm "
                          "with bright light",
                 "where": "abstract, Fig. 7", "paper": f"{live['best_condition_accuracy']:g}%", "ours": "not measured",
                 "verdict": "not testable",
                 "how we checked": "needs the authors' webcam sessions, which were not published (chapter 6 "
                                   "runs the live pipeline, but on no labelled recordings)"})
    return pd.DataFrame(rows)


def _overfitting_claim(a: runs.Run, b: runs.Run, epoch: int) -> dict:
    """The paper's central claim in its own terms: B's gap stays small while A's is large."""
    claim = "BN and dropout prevent overfitting: A's gap is large, B's small"
    base = {"claim": claim, "where": "abstract, Section III.C, conclusion", "paper": "6.7 vs 0.7 pts"}
    if min(a.epochs_done, b.epochs_done) < epoch:
        return base | {"ours": PENDING, "verdict": PENDING,
                       "how we checked": f"needs epoch {epoch} of both runs; A has {a.epochs_done}, B {b.epochs_done}"}
    gap_a, gap_b = (evaluate.train_val_gap(r.until(epoch), last=10) for r in (a, b))
    holds = gap_a - gap_b > REPRODUCED_WITHIN and gap_b <= PARTLY_WITHIN
    direction = gap_a > gap_b
    v = "reproduced" if holds else "partly" if direction else "not reproduced"
    return base | {"ours": f"{gap_a:.1f} vs {gap_b:.1f} pts", "verdict": v,
                   "how we checked": f"mean train minus validation accuracy over epochs {epoch - 9}-{epoch}: "
                                     f"A {gap_a:.1f}, B {gap_b:.1f} points"}


VERDICTS = ("reproduced", "partly", "not reproduced", PENDING, "not testable")


def verdict_summary_html(table: pd.DataFrame) -> str:
    """The claims grouped by verdict, as an HTML list for the introduction."""
    import html

    items = []
    for v in VERDICTS:
        claims_here = table.loc[table["verdict"] == v, "claim"].tolist()
        if claims_here:
            items.append(f"<li><strong>{v}</strong> ({len(claims_here)}): "
                         + "; ".join(html.escape(c) for c in claims_here) + "</li>")
    return "<ul>" + "".join(items) + "</ul>"


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = table["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def verdict_sentence(table: pd.DataFrame) -> str:
    """The verdicts counted in words, naming only those that occur, so that the sentence
    reads right both while the run goes on and once it is complete."""
    notes = {PENDING: " (their epoch has not run yet)"}
    return ", ".join(f"{n} {v}{notes.get(v, '')}" for v, n in verdict_counts(table).items() if n)


# --- Links: one repository address, in _config.yml -----------------------------------------------------
def repository(config: str | Path | None = None) -> dict[str, str]:
    """The book's ``repository`` settings (url, branch, path_to_book): every link derives from them."""
    import yaml

    path = Path(config) if config is not None else fer_data.repository_root() / CONFIG_FILE
    settings = yaml.safe_load(path.read_text())["repository"]
    return {"url": settings["url"].rstrip("/"), "branch": settings.get("branch", "main"),
            "path_to_book": settings.get("path_to_book", "") or ""}


def colab_url(notebook: str, config: str | Path | None = None) -> str:
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


def colab_badge(notebook: str, config: str | Path | None = None):
    """An "Open in Colab" badge; the image is inline so that the page needs no network to show it."""
    from IPython.display import HTML

    src = "data:image/svg+xml;base64," + base64.b64encode(_BADGE.encode()).decode()
    return HTML(f'<a href="{colab_url(notebook, config)}" target="_blank" rel="noopener">'
                f'<img src="{src}" alt="Open in Colab" width="117" height="20"></a>')
