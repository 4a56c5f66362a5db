"""``make lab``: JupyterLab starts on loopback, and a chapter source opens as a notebook.

The server is started the way the Makefile's ``lab`` target starts it (notebook folder and settings
folder read from the Makefile), asked for ``/api/status``, then for ``quickstart.py`` through the
contents API as a notebook (jupytext's contents manager), then stopped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _lab_recipe() -> str:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^lab:.*\n\t(.+)$", makefile, flags=re.MULTILINE)
    assert match, "the Makefile has no lab target"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    recipe = _lab_recipe()
    notebook_dir = re.search(r"--notebook-dir=(\S+)", recipe).group(1)
    settings_dir = re.search(r"--LabApp.app_settings_dir=(\S+)", recipe).group(1)
    settings_dir = settings_dir.replace("$(LAB_SETTINGS)", str(ROOT / ".jupyter/lab/settings"))
    port, token = _free_port(), secrets.token_hex(16)
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--notebook-dir={ROOT / notebook_dir}",
         f"--LabApp.app_settings_dir={settings_dir}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base}: {process.stderr.read()[-2000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_lab_answers_on_loopback(lab_server):
    base, token = lab_server
    status = _get(f"{base}/api/status", token)
    assert "started" in status and status["connections"] >= 0


def test_chapter_source_opens_as_a_notebook(lab_server):
    base, token = lab_server
    model = _get(f"{base}/api/contents/quickstart.py?type=notebook&content=1", token)
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1, "quickstart.py must open with exactly one parameters cell"
    assert model["content"]["metadata"]["jupytext"]["text_representation"]["format_name"] == "percent"


def test_python_files_open_with_the_jupytext_notebook_viewer_by_default(lab_server):
    base, token = lab_server
    plugin = _get(f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin", token)
    viewers = plugin["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("python") == "Jupytext Notebook"
