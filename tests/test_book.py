"""The book: its notebooks follow the conventions the build and the tests rely on, and the built
HTML opens in a real browser (Debian's headless Chromium) with every page rendered, every image
loaded and no Python traceback on any page.

The browser test builds the book into a temporary folder under the current ``FER_PROFILE``
(``tasks.py test`` sets ``smoke``: minutes), or checks an existing build named by
``FER_BOOK_HTML`` (for instance ``_build/html`` right after ``tasks.py book``). It skips,
saying why, where Chromium or Playwright is missing, unless ``FER_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from fer_lib import book

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("FER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RESULTS_PAGE = "notebooks/05_evaluation"
BUILD_TIMEOUT = 1800
#: the caller's environment, before conftest's fixtures isolate the data cache: the build's
#: kernels should reuse the parsed FER-2013 rather than parse it again.
CALLER_ENV = dict(os.environ)


def toc_files() -> list[str]:
    """Every document of _toc.yml, root first, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        walk(part["chapters"])
    return files


def notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


# --- Conventions (fast) -------------------------------------------------------------------
def test_every_toc_entry_exists():
    missing = [f for f in toc_files() if not any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    assert [p.stem for p in notebooks()][:5] == [f"0{i}_{n}" for i, n in enumerate(
        ("data", "preprocessing", "architectures", "training", "evaluation"), start=1)]
    assert "notebooks/07_realtime" in toc_files()


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_conventions(path: Path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    source = ["".join(c["source"]) for c in code]
    tags = [c.get("metadata", {}).get("tags", []) for c in code]
    # Colab: the first code cell is the one fer_lib.book writes, from the one repository address
    assert source[0] == book.colab_cell() and "remove-cell" in tags[0], (
        f"{path.name}: its Colab cell is not fer_lib.book.colab_cell(); run fer_lib.book.write_colab_cells()")
    # the badge points at this very notebook
    assert f'book.colab_badge("notebooks/{path.name}")' in source[1]
    # papermill-style parameters, with the profile from the environment
    parameters = [s for s, t in zip(source, tags, strict=True) if "parameters" in t]
    assert len(parameters) == 1 and 'PROFILE = os.environ.get("FER_PROFILE", "paper")' in parameters[0]
    # no execution timestamps: they change on every run and would make every diff noisy
    assert not [c["id"] for c in cells if "execution" in c.get("metadata", {})]
    # only the cells whose output nbval checks carry stored output
    for cell, text in zip(code, source, strict=True):
        if "# NBVAL_CHECK_OUTPUT" in text:
            assert cell["outputs"], f"{path.name}: a checked cell has no stored output to check against"
    # every model a chapter loads is named: the live default (paths.LIVE_MODEL) may change, the chapters may not
    unnamed = re.findall(r"Pipeline\.load\(\)|load_classifier\(\)|WebcamWidget\(\)", "".join(source))
    assert not unnamed, f"{path.name}: {unnamed} load the live default; name the model (MODEL_B)"


def test_the_repository_address_is_one_setting():
    url = config()["repository"]["url"]
    assert url.startswith("https://github.com/")
    copies = [p for p in [*ROOT.glob("book/*.md"), ROOT / "_toc.yml"] if url in p.read_text()]
    assert not copies, f"{copies} repeat the repository address: derive it from _config.yml instead"


def test_references():
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in ("norhikmah2022effect", "ioffe2015batch", "srivastava2014dropout", "goodfellow2013challenges",
                "viola2001rapid"):
        assert f"{{{key}," in bib
    assert config()["bibtex_bibfiles"] == ["book/references.bib"]


# --- The built book in a browser -------------------------------------------------------------
def _browser():
    """Playwright's sync API and Chromium's path, or a skip (a failure where required)."""
    required = os.environ.get("FER_REQUIRE_BROWSER") == "1"
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install playwright; the browser is Debian's chromium)"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: apt-get install chromium (or set FER_CHROMIUM)"
    if reason:
        if required:
            pytest.fail(f"FER_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    """The built book: FER_BOOK_HTML if given, else a fresh build with warnings as errors."""
    if os.environ.get("FER_BOOK_HTML"):
        html = Path(os.environ["FER_BOOK_HTML"]).resolve()
        assert (html / "index.html").is_file(), f"FER_BOOK_HTML={html} holds no built book"
        return html
    out = tmp_path_factory.mktemp("book")
    env = {**CALLER_ENV, "TF_CPP_MIN_LOG_LEVEL": "3"}
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    build = subprocess.run([jupyter_book, "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(ROOT)],
                           capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT)
    log = build.stdout + build.stderr
    (out / "build.log").write_text(log)
    problems = [line for line in log.splitlines() if "WARNING" in line and "absl" not in line
                and "IPKernelApp" not in line]
    assert build.returncode == 0, f"the book build failed ({out / 'build.log'}):\n" + "\n".join(problems[-20:])
    return out / "_build" / "html"


class _Tables(HTMLParser):
    """Counts a page's tables and those of them that carry a caption."""

    def __init__(self) -> None:
        super().__init__()
        self.tables, self.captioned, self.text = 0, 0, []

    def handle_starttag(self, tag: str, attrs) -> None:
        self.tables += tag == "table"
        self.captioned += tag == "caption"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


#: Words that only a page built while a run was in progress may say.
STALE = ("so far", "until a run")


@pytest.mark.slow
def test_every_table_is_captioned_and_no_page_is_stale(book_html: Path):
    complete = all(run.complete for run in book.read_runs(ROOT / "results" / "paper").values())
    failures = []
    for doc in toc_files():
        page = _Tables()
        page.feed((book_html / f"{doc}.html").read_text())
        if page.captioned < page.tables:
            failures.append(f"{doc}: {page.tables - page.captioned} of its {page.tables} tables have no caption")
        text = re.sub(r"\s+", " ", " ".join(page.text)).lower()
        failures += [f"{doc}: says {words!r}, but both runs are complete" for words in STALE
                     if complete and words in text]
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def sync_playwright():
    """Playwright, asked for before ``book_html`` so that a machine without a browser skips before building."""
    return _browser()


@pytest.mark.slow
def test_every_page_renders_with_its_images_and_no_traceback(sync_playwright, book_html: Path):
    failures = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # the book must stand alone: anything not on disk (CDN scripts, fonts) is refused at once
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else route.abort())
        for doc in toc_files():
            path = book_html / f"{doc}.html"
            if not path.is_file():
                failures.append(f"{doc}: no HTML page")
                continue
            page.goto(path.as_uri(), wait_until="load")
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # wake lazy images
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=20_000)
            broken = page.evaluate(
                "Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src.slice(0, 120))")
            text = page.inner_text("main")
            title = page.inner_text("main h1") if page.locator("main h1").count() else ""
            if not title.strip() or len(text) < 200:
                failures.append(f"{doc}: the page has no title or almost no content")
            if broken:
                failures.append(f"{doc}: broken image(s) {broken}")
            raw = page.evaluate(r"""Array.from(document.querySelectorAll('main td'))
                .map(c => c.innerText.trim()).filter(t => /^-?[\d,]*\.\d{6}$/.test(t))""")
            if raw:
                failures.append(f"{doc}: table cells in pandas' unformatted six decimals, e.g. {raw[:3]}")
            if "Traceback (most recent call last)" in text or page.locator(
                    ".output.traceback, .output.error").count():
                failures.append(f"{doc}: a Python traceback or error output is on the page")
            if doc == RESULTS_PAGE:
                shots = book_html.parent / "screenshots"
                shots.mkdir(exist_ok=True)
                page.screenshot(path=str(shots / f"{Path(doc).name}.png"), full_page=True)
        browser.close()
    assert not failures, "\n".join(failures)
    shot = book_html.parent / "screenshots" / f"{Path(RESULTS_PAGE).name}.png"
    assert shot.stat().st_size > 10_000
    print(f"screenshot of the results page: {shot}")
