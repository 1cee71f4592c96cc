"""Formgrader's grading view works offline (issue 15, manual grading).

nbgrader's grading page loads MathJax 2 from a CDN; the course's ``nbgrader_config.py`` points the
page at a template (``course/formgrader_static/templates/formgrade``) that loads the vendored
MathJax 2.7.9 (``course/formgrader_static/mathjax2``). This test grades one submission of the real
a1 in a scratch copy of the course, starts ``jupyter server`` there (nbgrader's formgrader
extension, as ``jupyter lab`` from the repository root would), opens the grading view in headless
Chromium and checks: no request leaves 127.0.0.1, no console error, every math expression of the
notebook's Markdown typeset, and a manual score typed in the page reaches the gradebook.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import nbformat
import pytest

from browser.sitelib import CHROMIUM_ARGS, chromium_path
from test_class_scenario import A1, a1_submission, cli, real_course

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
MANUAL = "derive_sigmoid_gelu"          # a1's answer in words, graded by hand (2 points)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A scratch course with one graded submission ("perfect") and a Jupyter server on it."""
    if chromium_path() is None:
        pytest.skip("Chromium not found (/usr/bin/chromium)")
    pytest.importorskip("playwright")
    tmp = tmp_path_factory.mktemp("formgrader")
    root = real_course(tmp)
    dest = root / "submitted" / "perfect" / A1
    dest.mkdir(parents=True)
    (dest / f"{A1}.ipynb").write_text(json.dumps(a1_submission(True)), encoding="utf-8")
    proc = cli("autograde", "a1", "-j", "1", "--no-sandbox", root=root, timeout=120)
    assert proc.returncode == 0, f"autograde of the scratch course failed:\n{proc.stdout}\n{proc.stderr}"

    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jupyter_config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter_runtime")}
    log = open(tmp / "server.log", "w")
    srv = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--allow-root", "--no-browser",
         f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert srv.poll() is None and time.time() - t0 < 60, \
                    f"jupyter server did not start: {(tmp / 'server.log').read_text()[-3000:]}"
                time.sleep(0.3)
        yield root, base, token
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=30)
        log.close()


def test_grading_view_offline(server):
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    root, base, token = server
    db = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db, "actgrad") as gb:
        submission_id = gb.find_submission_notebook(A1, A1, "perfect").id
    nb = nbformat.read(root / "autograded" / "perfect" / A1 / f"{A1}.ipynb", as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    n_math = len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+\$", markdown, flags=re.S))
    assert n_math > 10, f"expected a1's Markdown to hold math ($...$), found {n_math} expressions"

    requests, errors = [], []

    def drive():
        """The browser session; run in a thread of its own, since Playwright's sync API refuses to
        start where an asyncio loop is running (another test in the same worker may leave one)."""
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.on("request", lambda r: requests.append(r.url))
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
                page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status} {r.url}"))
                page.goto(f"{base}/formgrader?token={token}")        # logs in (cookie)
                page.goto(f"{base}/formgrader/submissions/{submission_id}/?index=0", wait_until="networkidle")
                try:
                    page.wait_for_function("window.MathJax && MathJax.loaded === true", timeout=20_000)
                except Exception as exc:
                    pytest.fail(f"MathJax never finished on the grading page ({exc}); console errors: {errors}; "
                                f"MathJax requests: {[u for u in requests if 'mathjax' in u.lower()]}")
                typeset, merrors = page.evaluate(
                    "[document.querySelectorAll('script[type^=\"math/tex\"]').length,"
                    " document.querySelectorAll('.mjx-merror, .MathJax_Error').length]")
                # A manual score typed in the page (Tab leaves the field) must reach the gradebook.
                page.fill(f"#{MANUAL}", "1.5")
                page.keyboard.press("Tab")
                t0 = time.time()
                while True:
                    with Gradebook(db, "actgrad") as gb:
                        manual = gb.find_grade(MANUAL, A1, A1, "perfect").manual_score
                    if manual == 1.5 or time.time() - t0 > 10:
                        break
                    time.sleep(0.2)
            finally:
                browser.close()
        return typeset, merrors, manual

    with ThreadPoolExecutor(1) as pool:
        typeset, merrors, manual = pool.submit(drive).result()

    outside = sorted({u for u in requests if urlparse(u).hostname not in ("127.0.0.1", "localhost")})
    assert not outside, f"the grading view requested outside hosts (offline it breaks): {outside}"
    assert not errors, f"console errors on the grading view: {errors}"
    assert typeset == n_math and merrors == 0, (
        f"MathJax typeset {typeset} expressions ({merrors} errors); the notebook's Markdown has "
        f"{n_math}. Hint: a MathJax file missing from course/formgrader_static/mathjax2?")
    assert manual == 1.5, (f"typed 1.5 as {MANUAL}'s manual score in the grading view; the gradebook "
                           f"holds {manual!r}. Hint: formgrade.js did not start (MathJax missing?)")
