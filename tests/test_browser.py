"""The rendered book in a real browser: Debian's chromium, headless, driven over the DevTools pipe.

Builds a small copy of the book (the quickstart chapter run with tiny parameters; the table of
contents cut down to the pages that exist), opens ``index.html`` and the quickstart page, takes a
screenshot of each, and asserts on what the browser actually rendered: the page title, at least
one figure that loaded (``naturalWidth > 0``) and a table. No Python browser package is needed:
chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol over file descriptors 3/4.

Install the browser with ``apt-get install chromium`` (``.ci/run`` does it); without it the test
is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--window-size=1280,1600",
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
        while not self.evaluate(session, ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.2)
        return session

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
