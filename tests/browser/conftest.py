"""Fixtures for the browser tests: the built site served on 127.0.0.1 and a headless Chromium.

The site is the one the session fixture ``built_site`` (tests/conftest.py) builds. For working on
these tests without a full build, point them at another build with two environment variables:
``ACTGRAD_SITE_HTML`` (a built ``_build/html``) and ``ACTGRAD_SITE_SOURCE`` (the book source
folder holding its ``_config.yml`` and ``_toc.yml``). The browser is Debian's Chromium
(``ACTGRAD_CHROMIUM`` overrides the path); where it or playwright is missing the tests skip.
"""
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from .sitelib import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="session")
def site_html(request):
    """The folder of the built HTML site."""
    override = os.environ.get("ACTGRAD_SITE_HTML")
    if override:
        return Path(override)
    return Path(request.getfixturevalue("built_site"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url(site_html):
    """Serve the built site over HTTP on 127.0.0.1 (a free port) from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(site_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"the playwright package is not installed: {exc}")
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium not found (/usr/bin/chromium); `make system-deps` installs it "
                    "with apt where we are root")
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken install: say why rather than error every test
            pytest.skip(f"Chromium at {path} does not start: {exc}")
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshot_dir(site_html):
    """Screenshots for humans land beside the site: _build/screenshots."""
    path = Path(site_html).parent / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
