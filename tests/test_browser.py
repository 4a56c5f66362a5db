"""The rendered book in a real browser: Debian's chromium, headless, offline, driven over the DevTools pipe.

Two builds. A small copy of the book (quickstart only) checks the index and one chapter page. The
full book (every chapter of ``mmlib.chapters.CHAPTERS`` smoke-run with tiny parameters, in a temp
copy of ``book/``) is built with ``jupyter-book build -W -n`` like ``make book``, then every page is
opened with the network cut off and must: render its title, load every image, show every equation
typeset by MathJax (served from the book itself), contain no unresolved ``{glue}`` and no path of
the machine that built it; each chapter page links its ``.py`` source, served beside it. Then what a
reader checks at 1280 px (:func:`reader_problems`): no table wider than its column unless it scrolls
with its key column held, no figure whose smallest text is shown under 8 px, no equation with its own
scrollbar, no code cell that scrolls sideways, no chapter whose imports or summary-saving code is
left unfolded. Set ``MMLIB_BOOK_HTML`` to a built book (``book/_build/html``) to run these reader
checks on it instead of the smoke build. Deliberately broken copies show that the checks fail: a
chapter that references a glue key it does not produce stops the build, and a book whose MathJax comes from the
network leaves its equations as raw TeX.

No Python browser package is needed: chromium's ``--remote-debugging-pipe`` speaks the DevTools
protocol over file descriptors 3/4. Install the browser with ``apt-get install chromium``
(``.ci/run`` does it); without it the tests are skipped.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--window-size=1280,1600",
    # network off: every http(s) request except to this machine goes to a closed local port
    "--proxy-server=http://127.0.0.1:9",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium not found; install it with `sudo apt-get install chromium` (Debian) or run .ci/run")


class DevTools:
    """Minimal DevTools-protocol client over chromium's ``--remote-debugging-pipe``."""

    def __init__(self, executable: str, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        script = f'exec 3<&{to_browser_r} 4>&{from_browser_w}; exec "$@"'
        self.process = subprocess.Popen(
            ["bash", "-c", script, "chromium", executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.navigate", {"url": url}, session)
        # Loaded, and not a redirect page (the book's index.html forwards to intro.html).
        ready = ("document.readyState === 'complete' && location.href !== 'about:blank' && "
                 "!document.querySelector('meta[http-equiv=refresh]')")
        deadline = time.monotonic() + 60
        while not self._loaded(session, ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.2)
        return session

    def _loaded(self, session: str, ready: str) -> bool:
        """``ready`` evaluated in the page; False while a redirect replaces the page under it."""
        try:
            return bool(self.evaluate(session, ready))
        except RuntimeError as error:
            if "navigated or closed" in str(error):
                return False
            raise

    def evaluate(self, session: str, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session)
        return result["result"].get("value")

    def screenshot(self, session: str, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


PAGE_FACTS = """
(async () => {
  const images = Array.from(document.querySelectorAll('main img, article img, .bd-article img'));
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return {
    title: document.title,
    heading: (document.querySelector('h1') || {}).textContent || '',
    images: images.map(i => ({src: i.getAttribute('src'), width: i.naturalWidth})),
    tables: document.querySelectorAll('main table, article table').length,
  };
})()
"""


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Path:
    """A copy of book/ with the quickstart chapter run on tiny parameters and built to HTML."""
    from conftest import execute_chapter

    work = tmp_path_factory.mktemp("book")
    book = work / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "*.ipynb", "figures"))
    execute_chapter("quickstart", {"modalities": "fou,mor", "split_seeds": 1, "max_iter": 200}, work)
    (book / "chapters").mkdir(exist_ok=True)
    shutil.copy(work / "executed" / "quickstart.ipynb", book / "chapters" / "quickstart.ipynb")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: chapters/quickstart.ipynb\n  - file: rerun\n"
    )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    built = subprocess.run([str(jupyter_book), "build", str(book), "--keep-going"],
                           capture_output=True, text=True, timeout=600)
    html = book / "_build" / "html"
    assert (html / "index.html").is_file(), built.stdout[-3000:] + built.stderr[-3000:]
    return html


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = _chromium()
    tools = DevTools(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield tools
    tools.close()


@pytest.mark.slow
def test_index_page_shows_the_book_title(browser, small_book, tmp_path):
    session = browser.open((small_book / "index.html").as_uri())
    facts = browser.evaluate(session, PAGE_FACTS)
    shot = browser.screenshot(session, tmp_path / "index.png")
    assert browser.evaluate(session, "location.pathname").endswith("intro.html")
    assert "Modality Equilibrium Matters" in facts["title"]
    assert "Modality Equilibrium Matters" in facts["heading"]
    assert facts["tables"] >= 1, "the introduction's data table did not render"
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_quickstart_page_renders_its_figure_and_tables(browser, small_book, tmp_path):
    session = browser.open((small_book / "chapters" / "quickstart.html").as_uri())
    facts = browser.evaluate(session, PAGE_FACTS)
    shot = browser.screenshot(session, tmp_path / "quickstart.png")
    assert "how strong is each modality alone" in facts["title"]
    loaded = [image for image in facts["images"] if image["width"] > 0]
    assert loaded, f"no figure loaded in the page: {facts['images']}"
    assert facts["tables"] >= 2, f"expected the two accuracy tables, found {facts['tables']}"
    assert shot.stat().st_size > 10_000


# What a page must not show: a folder of the machine that built it.
MACHINE_PATHS = re.compile(r"(/home/|/root/|/tmp/|/work/|/Users/)")

PAGE_CHECK = """
(async () => {
  const images = Array.from(document.querySelectorAll('.bd-article img'));
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const started = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (started) { await Promise.race([started, new Promise(r => setTimeout(r, 20000))]); }
  const math = Array.from(document.querySelectorAll('.bd-article .math'));
  return {
    heading: (document.querySelector('.bd-article h1') || {}).textContent || '',
    broken_images: images.filter(i => i.naturalWidth === 0).map(i => i.getAttribute('src')),
    math: math.length,
    raw_math: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
    glue_left: (document.body.innerText.match(/\\{glue[^}]*\\}`[^`]*`/g) || []),
    text: document.querySelector('.bd-article') ? document.querySelector('.bd-article').innerText : '',
  };
})()
"""


def page_problems(browser: DevTools, page: Path) -> list[str]:
    """What is wrong with one rendered page, as sentences; empty when the page is fine."""
    session = browser.open(page.as_uri())
    facts = browser.evaluate(session, PAGE_CHECK)
    problems = []
    if not facts["heading"].strip():
        problems.append("no title")
    if facts["broken_images"]:
        problems.append(f"images that did not load: {facts['broken_images']}")
    if facts["raw_math"]:
        problems.append(f"{len(facts['raw_math'])} of {facts['math']} equations not typeset, e.g. "
                        f"{facts['raw_math'][0]!r}")
    if facts["glue_left"]:
        problems.append(f"unresolved glue: {facts['glue_left'][:3]}")
    for line in facts["text"].splitlines():
        if MACHINE_PATHS.search(line):
            problems.append(f"a path of the build machine: {line.strip()[:120]!r}")
            break
    return problems


READER_CHECK = """
(async () => {
  const images = Array.from(document.querySelectorAll('.bd-article img'));
  await Promise.all(images.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const started = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (started) { await Promise.race([started, new Promise(r => setTimeout(r, 20000))]); }
  const article = document.querySelector('.bd-article');
  const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const tables = Array.from(article.querySelectorAll('table')).map(t => {
    let box = t.parentElement;
    while (box !== article && !scrolls(box)) { box = box.parentElement; }
    const first = t.querySelector('tbody tr > :first-child');
    return {name: ((t.caption || {}).textContent || t.innerText).trim().slice(0, 60),
            width: Math.round(t.getBoundingClientRect().width), room: article.clientWidth,
            scrolls: box !== article, key_held: !!first && getComputedStyle(first).position === 'sticky'};
  });
  const figures = images.filter(i => i.naturalWidth > 0).map(i => ({
    src: i.getAttribute('src'), natural: i.naturalWidth, shown: i.getBoundingClientRect().width}));
  const equations = Array.from(article.querySelectorAll('div.math, mjx-container[display="true"]'))
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => (e.getAttribute('id') || e.textContent).slice(0, 60));
  const plumbing = /^(import \\w|from \\S+ import )|\\bsave_summary\\(/m;
  const unfolded = Array.from(article.querySelectorAll('.cell'))
    .filter(c => !c.classList.contains('tag_hide-input') && c.querySelector('.cell_input'))
    .map(c => c.querySelector('.cell_input').innerText).filter(t => plumbing.test(t)).map(t => t.slice(0, 60));
  const code = Array.from(article.querySelectorAll('.cell_input pre, .cell_output pre'))
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 60));
  return {tables, figures, equations, unfolded, code,
          folded: article.querySelectorAll('.cell.tag_hide-input').length,
          cells: article.querySelectorAll('.cell').length};
})()
"""

# Smallest text a reader can read on screen, in CSS pixels.
MIN_TEXT_PX = 8.0


def reader_problems(browser: DevTools, page: Path) -> dict[str, list[str]]:
    """What a reader at 1280 px trips over on one page, by kind (tables, figures, equations,
    plumbing); kinds without a problem are left out.

    A table may be wider than the article only inside a scrolling box with its first column, the
    row's key, held in place. A figure is drawn at ``figure.dpi`` 100 (the inline backend) with no
    text under :data:`mmlib.plots.SMALLEST_FONT_PT`; scaled to the width it is shown at, that text
    must stay at least :data:`MIN_TEXT_PX` high. Code wraps instead of scrolling sideways. A
    chapter folds its imports and summary-saving cells (``hide-input``)."""
    from mmlib.plots import SMALLEST_FONT_PT

    session = browser.open(page.as_uri())
    facts = browser.evaluate(session, READER_CHECK)
    found: dict[str, list[str]] = {}
    for table in facts["tables"]:
        if table["width"] > table["room"] + 1 and not (table["scrolls"] and table["key_held"]):
            found.setdefault("tables", []).append(f"{table['name']!r}: {table['width']} px in {table['room']}")
    for figure in facts["figures"]:
        text_px = SMALLEST_FONT_PT * 100 / 72 * figure["shown"] / figure["natural"]
        if text_px < MIN_TEXT_PX:
            found.setdefault("figures", []).append(
                f"{figure['src']}: {figure['natural']} px shown at {figure['shown']:.0f}, text {text_px:.1f} px")
    if facts["equations"]:
        found["equations"] = [f"scrolls on its own: {e!r}" for e in facts["equations"]]
    if facts["code"]:
        found["code"] = [f"scrolls sideways: {c!r}" for c in facts["code"]]
    if facts["unfolded"] or (facts["cells"] and not facts["folded"]):
        found["plumbing"] = facts["unfolded"] or ["no folded (hide-input) cell"]
    return found


def _build(book: Path) -> subprocess.CompletedProcess:
    """``jupyter-book build -W -n`` as ``make book`` runs it: any warning fails the build."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jupyter_book), "build", str(book), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=900)


def _copy_book(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("_build"))
    return target


@pytest.fixture(scope="module")
def full_book(smoke_book) -> tuple[Path, Path]:
    """``(sources, html)``: every chapter smoke-run (``smoke_book``, shared with the tests that read
    the chapters' outputs) into a copy of book/, built with -W -n."""
    from conftest import SMOKE

    from mmlib.chapters import CHAPTERS

    missing = [name for name in CHAPTERS if name not in SMOKE]
    assert not missing, f"add smoke parameters for {missing} to SMOKE in tests/conftest.py"
    book = smoke_book.work / "book"
    for name in CHAPTERS:
        smoke_book.run(name)
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "*.ipynb", "figures"),
                    dirs_exist_ok=True)
    (book / "chapters").mkdir(exist_ok=True)
    for name in CHAPTERS:
        shutil.copy(smoke_book.runs[name].path, book / "chapters" / f"{name}.ipynb")
    built = _build(book)
    assert built.returncode == 0, "jupyter-book build -W -n failed:\n" + built.stderr[-6000:]
    return book, book / "_build" / "html"


@pytest.mark.slow
def test_every_page_of_the_full_book_renders_offline(browser, full_book):
    book, html = full_book
    pages = sorted(html.rglob("*.html"))
    pages = [p for p in pages if p.name not in ("search.html", "genindex.html", "index.html")
             and "_static" not in p.parts]
    from mmlib.chapters import CHAPTERS

    assert {f"{name}.html" for name in CHAPTERS} <= {p.name for p in pages}
    problems = {str(p.relative_to(html)): page_problems(browser, p) for p in pages}
    assert {page: found for page, found in problems.items() if found} == {}
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served locally"


@pytest.mark.slow
def test_every_chapter_page_offers_its_py_source_for_download(full_book):
    """The download menu of each chapter links ``notebooks/NAME.py``, copied into the built HTML."""
    from mmlib.chapters import CHAPTERS

    _, html = full_book
    not_offered = {}
    for name in CHAPTERS:
        page = html / "chapters" / f"{name}.html"
        links = re.findall(r'href="([^"]+\.py)"', page.read_text())
        source = (ROOT / "notebooks" / f"{name}.py").read_text()
        served = [link for link in links if (page.parent / link).is_file()
                  and (page.parent / link).read_text() == source]
        if not served:
            not_offered[name] = links
    assert not_offered == {}, "chapter pages without a link to their own .py source (links found)"


@pytest.mark.slow
def test_method_chapter_typesets_numbered_equations(browser, full_book):
    _, html = full_book
    session = browser.open((html / "chapters" / "method.html").as_uri())
    facts = browser.evaluate(session, PAGE_CHECK)
    assert facts["math"] >= 5 and not facts["raw_math"]
    numbers = browser.evaluate(session, "document.querySelectorAll('.bd-article .eqno').length")
    assert numbers >= 3, "the method chapter's equations are not numbered"


@pytest.mark.slow
def test_provenance_page_lists_every_chapter_with_commit_and_records(browser, full_book):
    _, html = full_book
    session = browser.open((html / "provenance.html").as_uri())
    text = browser.evaluate(session, "document.querySelector('.bd-article').innerText")
    from mmlib.chapters import CHAPTERS

    rows = browser.evaluate(session, "document.querySelectorAll('.bd-article tbody tr').length")
    assert rows == len(CHAPTERS)
    assert "epochs=2" in text and "cpu" in text
    assert re.search(r"Records read by main_comparison \((\d+)\)", text)


@pytest.mark.slow
def test_a_chapter_citing_a_glue_key_it_does_not_produce_fails_the_build(full_book, tmp_path):
    book = _copy_book(full_book[0], tmp_path / "book")  # the book that built cleanly, plus one cell
    notebook = json.loads((book / "chapters" / "method.ipynb").read_text())
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "id": "broken",
                              "source": "The answer is {glue:text}`method_no_such_key`."})
    (book / "chapters" / "method.ipynb").write_text(json.dumps(notebook))
    built = _build(book)
    assert built.returncode != 0
    assert "method_no_such_key" in built.stderr + built.stdout


@pytest.mark.slow
def test_equations_from_an_unreachable_mathjax_are_reported_as_not_typeset(browser, full_book, tmp_path):
    book = _copy_book(full_book[0], tmp_path / "book")
    config = (book / "_config.yml").read_text().replace("    - sphinx-mathjax-offline\n", "")
    (book / "_config.yml").write_text(config)  # MathJax from its CDN, which the browser cannot reach
    assert _build(book).returncode == 0
    problems = page_problems(browser, book / "_build" / "html" / "chapters" / "method.html")
    assert any("not typeset" in p for p in problems), problems


@pytest.mark.slow
def test_search_results_summarise_the_chapter_not_the_toolbar(browser, full_book):
    """Search summaries are fetched over http (a browser refuses file:// fetches): a local server."""
    _, html = full_book
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = browser.open(f"http://127.0.0.1:{server.server_port}/search.html?q=Shapley")
        summaries = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(summaries) < 3:
            time.sleep(0.5)
            summaries = browser.evaluate(
                session, "Array.from(document.querySelectorAll('ul.search p.context'), p => p.innerText)")
    finally:
        server.shutdown()
    assert len(summaries) >= 3, summaries
    assert all(len(text) > 80 and ".ipynb" not in text for text in summaries), summaries


@pytest.fixture(scope="module")
def built_html(request) -> Path:
    """The book to read: ``MMLIB_BOOK_HTML`` (a built book) when set, else the smoke build."""
    given = os.environ.get("MMLIB_BOOK_HTML")
    if given:
        return Path(given).resolve()
    return request.getfixturevalue("full_book")[1]


def _reader_report(browser, html: Path) -> dict[tuple[str, str], list[str]]:
    pages = [p for p in sorted(html.rglob("*.html")) if p.name not in ("search.html", "genindex.html", "index.html")
             and "_static" not in p.parts and "_sources" not in p.parts]
    return {(str(page.relative_to(html)), kind): found
            for page in pages for kind, found in reader_problems(browser, page).items()}


@pytest.fixture(scope="module")
def reader_report(browser, built_html):
    return _reader_report(browser, built_html)


@pytest.mark.slow
def test_a_reader_at_1280_px_finds_no_wide_table_small_figure_text_scrolling_equation_or_plumbing(reader_report):
    assert reader_report == {}


@pytest.mark.slow
def test_every_chapter_page_folds_its_plumbing(browser, built_html):
    from mmlib.chapters import CHAPTERS

    unfolded = {name: found for name in CHAPTERS
                if (found := reader_problems(browser, built_html / "chapters" / f"{name}.html").get("plumbing"))}
    assert unfolded == {}


@pytest.mark.slow
def test_reader_checks_catch_a_wide_table_a_shrunk_figure_and_a_scrolling_equation(browser, tmp_path):
    """A hand-made page with one of each problem: every check reports it."""
    from mmlib.plots import SMALLEST_FONT_PT

    wide = "".join(f"<td>column {i} with some words</td>" for i in range(30))
    # a 2000 px figure shown at 500 px: SMALLEST_FONT_PT at 100 dpi ends up at a quarter of its size
    image = tmp_path / "wide.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(20, 2), dpi=100)
    fig.savefig(image, dpi=100)
    plt.close(fig)
    page = tmp_path / "page.html"
    page.write_text(f"""<html><head><title>t</title></head><body><main><article class="bd-article" style="width:700px">
<h1>t</h1><table><tbody><tr>{wide}</tr></tbody></table>
<img src="wide.png" style="width:500px">
<div class="math" style="overflow-x:auto"><div style="width:2000px">a very long equation</div></div>
<div class="cell"><div class="cell_input"><pre>import numpy</pre></div></div>
<div class="cell tag_hide-input"><div class="cell_input">
<pre style="width:300px;overflow-x:auto">{"x" * 400}</pre></div></div>
</article></main></body></html>""")
    found = reader_problems(browser, page)
    assert set(found) == {"tables", "figures", "equations", "plumbing", "code"}, found
    assert f"text {SMALLEST_FONT_PT * 100 / 72 / 4:.1f} px" in found["figures"][0]


def method_ids_shown(page: Path) -> list[str]:
    """Where a page shows a reader a method's code id instead of its name (book/glossary.md maps
    the two): a table cell that is an id, a header or prose that uses one, or an inline ``id`` that
    does not follow the method's name (``Ours (row-normalised) (`ours_rownorm`)`` introduces it).
    Code cells and printed output are code, and left alone; so are ``ours``, ``sum`` and ``joint``
    in plain prose, which are English words."""
    from bs4 import BeautifulSoup

    from mmlib.methods import available_methods, display_name

    ids = set(available_methods())
    coded = re.compile(r"(?<![\w\-/.\[])(" + "|".join(sorted(ids - {"ours", "sum", "joint"}, key=len, reverse=True))
                       + r")(?![\w\-/\]])")
    soup = BeautifulSoup(page.read_text(), "html.parser")
    article = soup.find("main") or soup
    for code in article.select("div.cell_input, pre, div.highlight, script, style"):
        code.decompose()
    found = []
    for block in article.find_all(["p", "li", "th", "td", "caption", "figcaption", "h1", "h2", "h3"]):
        if block.find(["p", "li", "td"]):
            continue
        if block.name == "td" and block.get_text(strip=True) in ids:
            found.append(f"table cell {block.get_text(strip=True)!r}")
            continue
        for code in block.find_all("code"):
            name = code.get_text()
            before = "".join(str(s) for s in code.find_all_previous(string=True, limit=3)[::-1])[-60:]
            if name in ids and display_name(name) not in before:
                found.append(f"`{name}` without its name: {block.get_text(' ', strip=True)[:100]!r}")
            code.decompose()
        found += [f"{hit!r} in {block.get_text(' ', strip=True)[:100]!r}"
                  for hit in coded.findall(block.get_text(" ", strip=True))]
    return found


@pytest.mark.slow
def test_every_page_names_methods_as_the_glossary_does(built_html):
    shown = {str(page.relative_to(built_html)): found for page in sorted(built_html.rglob("*.html"))
             if page.name not in ("search.html", "genindex.html", "glossary.html")
             and "_static" not in page.parts and "_sources" not in page.parts
             and (found := method_ids_shown(page))}
    assert shown == {}


def test_method_id_check_catches_ids_and_leaves_names_and_code_alone(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("""<html><body><main>
<p>The method Ours (row-normalised) (<code>ours_rownorm</code>) divides; OGM-GE, <code>ogm_ge</code> in code.</p>
<p>Sum (calibrated) beats Sum; ours is an English word, and so is the joint sum.</p>
<div class="cell_input"><pre>run(method="late_fusion")</pre></div>
<pre>printed: ogm_ge</pre>
<table><tr><th>ours rank</th><th>lfm rank</th></tr><tr><td>concat</td><td>Late Fusion</td></tr></table>
<p>The best is <code>mla</code>; ogm_ge leads.</p>
</main></body></html>""")
    assert method_ids_shown(page) == [
        "'lfm' in 'lfm rank'", "table cell 'concat'",
        "`mla` without its name: 'The best is mla ; ogm_ge leads.'", "'ogm_ge' in 'The best is ; ogm_ge leads.'"]
