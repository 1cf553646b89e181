"""One number per fact: every page that quotes a fact pastes the one glue name that one function computes,
and none types the number in by hand or quotes a retired comparison.

The pages are the book's own Markdown (book/*.md) and the notebooks' Markdown cells; their code is not prose.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from fer_lib import beyond, book, compare, study

ROOT = Path(__file__).resolve().parents[1]
CODE_CELL = re.compile(r"```\{code-cell\}.*?```", re.S)
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")

#: Each fact, the glue names it is quoted under, and the one function that glues them on every page.
FACTS = {
    "the effect of batch normalization and dropout together, controlled, over seeds": (
        ("study_b_vs_a_best", "study_b_vs_a_best_low", "study_b_vs_a_best_high"), "book.glue_study_headline("),
    "Model B against Model A in the paper runs, both at epoch 100": (("val_gain_100",), "compare.findings("),
    "the training losses beside the paper's Table IV (mean of epochs 91-100)": (
        ("A_loss_91_100", "B_loss_91_100"), "compare.findings("),
    "the simulated live test, averaged over three lights as the paper's 78% is": (
        ("simulated_live_average",), "book.glue_simulated_live("),
    "the claims' verdict counts": (("n_claims", "n_reproduced", "n_not_testable_by_simulation_alone"),
                                   "book.glue_claims("),
    "Model C on PublicTest, its leads over Model B and the best peer, its goals met, the live default": (
        ("beyond_c_public", "beyond_c_over_b", "beyond_c_over_peer", "beyond_goals_met", "beyond_live_title"),
        "goals.glue_headline("),
    "what each ingredient of Model C adds on PublicTest (Table 9.5)": (
        ("beyond_adds_model_c_noaug", "beyond_adds_model_b_recipe", "beyond_adds_model_b_paper"),
        "goals.glue_headline("),
}
#: Glue names of comparisons the pages no longer quote: Model B at epoch 200 against Model A at 100, the loss
#: at epoch 100 alone, the live test in bright light alone, and the study's facts glued a second time.
RETIRED = ("val_gain", "A_loss_100", "B_loss_100", "simulated_live", "live_sim_78", "live_sim_happy",
           "live_sim_angry", "effect_bn", "effect_dropout", "gap_effect_bn", "gap_effect_dropout", "both_sd")


def pages() -> dict[str, tuple[str, str]]:
    """Every page: name -> (its prose, its code)."""
    found = {}
    for path in sorted((ROOT / "book").glob("*.md")):
        text = path.read_text()
        found[f"book/{path.name}"] = (CODE_CELL.sub("", text), "\n".join(CODE_CELL.findall(text)))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = {kind: "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == kind)
                for kind in ("markdown", "code")}
        found[f"notebooks/{path.name}"] = (text["markdown"], text["code"])
    return found


def quoted(prose: str) -> set[str]:
    return set(GLUE_ROLE.findall(prose))


def section(prose: str, heading: str) -> str:
    start = prose.index(heading)
    end = prose.find("\n## ", start + len(heading))
    return prose[start:] if end < 0 else prose[start:end]


@pytest.mark.parametrize("fact", FACTS)
def test_every_page_quoting_a_fact_pastes_the_glue_of_its_one_function(fact):
    names, function = FACTS[fact]
    quoting = {page: (prose, code) for page, (prose, code) in pages().items() if quoted(prose) & set(names)}
    assert quoting, f"no page quotes {fact}"
    for page, (_, code) in quoting.items():
        assert function in code, f"{page} quotes {fact} but does not glue it with {function.rstrip('(')}"
        for name in names:
            assert not re.search(rf"glue\(\s*[\"']{name}[\"']", code), f"{page} glues {name} by hand"


def test_no_page_quotes_a_retired_comparison():
    stale = {page: quoted(prose) & set(RETIRED) for page, (prose, _) in pages().items()}
    assert not {page: names for page, names in stale.items() if names}


def test_the_abstract_and_the_conclusion_quote_the_controlled_comparison():
    controlled = set(FACTS["the effect of batch normalization and dropout together, controlled, over seeds"][0])
    intro, discussion = pages()["book/intro.md"][0], pages()["book/discussion.md"][0]
    for name, text in (("abstract", section(intro, "## Abstract")),
                       ("conclusion", section(discussion, "## What to take away"))):
        assert controlled <= quoted(text), f"the {name} does not quote the controlled comparison with its interval"
        assert "val_gain_100" not in quoted(text), f"the {name} quotes the paper runs' comparison"


def test_a_page_that_quotes_another_comparison_names_it():
    """The paper runs' comparison is quoted only in a paragraph that says both models are read at epoch 100."""
    for page, (prose, _) in pages().items():
        for paragraph in prose.split("\n\n"):
            if "val_gain_100" in quoted(paragraph):
                assert "at epoch 100" in re.sub(r"\s+", " ", paragraph), f"{page}: {paragraph[:80]}..."


@pytest.fixture(scope="module")
def committed_facts() -> dict[str, str]:
    """The facts as the pages print them, from the committed runs."""
    numbers = study.headline(study.run_table(study.load_study(ROOT)))
    found = compare.findings(book.read_runs(ROOT / "results" / "paper"))
    c_public = beyond.accuracy(beyond.read_peer_rows(ROOT), beyond.MODEL_C_KEY)
    return {"study_b_vs_a_best": f"{numbers['b_vs_a_best']:+.1f}", "val_gain_100": f"{found['val_gain_100']:.1f}",
            "A_loss_91_100": f"{found['A_loss_91_100']:.3f}", "B_loss_91_100": f"{found['B_loss_91_100']:.3f}",
            **({"beyond_c_public": f"{c_public:.1f}"} if not math.isnan(c_public) else {})}


NUMBERED = ("Table ", "Tables ", "Section ", "Fig. ", "Figure ", "chapter ")  # "Table 4.1" is a name, not a number


def typed(value: str, text: str) -> bool:
    return any(not text[:m.start()].endswith(NUMBERED)
               for m in re.finditer(rf"(?<![\d.]){re.escape(value.lstrip('+'))}(?!\d)", text))


def test_no_page_types_a_glued_number_by_hand(committed_facts):
    assert typed("4.1", "Model B is 4.1 points") and not typed("4.1", "the CPUs of Table 4.1")
    assert not typed("4.4", "(Tables 4.4 and 4.5)")
    for page, (prose, _) in pages().items():
        text = GLUE_ROLE.sub("", prose)
        found = {name: value for name, value in committed_facts.items() if typed(value, text)}
        assert not found, f"{page} types {found} instead of pasting the glue"
