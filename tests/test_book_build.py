"""The website builds from a clean checkout with zero warnings, and every page is there."""
import re

import pytest
import yaml

from test_book_structure import CHAPTERS, ROOT, toc_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]


def test_every_toc_page_is_built(built_site):
    missing = [f for f in toc_files() if not (built_site / f"{f}.html").exists()]
    assert not missing


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_page_is_executed_with_figures_and_no_errors(built_site, nb):
    html = (built_site / "book" / f"{nb.stem}.html").read_text()
    assert "cell_output" in html, "the chapter has no executed output"
    assert "Traceback (most recent call last)" not in html
    figures = re.findall(r"<img [^>]*src=\"[^\"]*(?:_images|data:image)", html)
    assert figures, "the chapter shows no figure"


def test_no_thebe_and_a_favicon_on_every_page(built_site):
    """sphinx-thebe (loaded by Jupyter Book 1 even with thebe off) declares THEBE_JS_URL twice, a
    console error on every page; _config.yml lists the extensions without it. Every page names a
    favicon that exists, so browsers do not request a missing /favicon.ico."""
    pages = [built_site / f"{f}.html" for f in toc_files()]
    with_thebe = [p.name for p in pages if "thebe" in p.read_text().lower()]
    assert not with_thebe, f"pages still loading sphinx-thebe: {with_thebe}"
    for page in pages:
        icon = re.search(r'<link rel="icon" href="([^"]+)"', page.read_text())
        assert icon, f"{page.name}: no <link rel=icon>"
        assert (page.parent / icon.group(1)).resolve().is_file(), f"{page.name}: favicon {icon.group(1)} missing"


def test_figures_are_numbered_with_their_chapter(built_site):
    """Numbered chapters (_toc.yml) and one numbering across parts: the k-th chapter of the
    numbered parts has figures "Fig. k.1", "Fig. k.2", ... in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = [c["file"] for p in toc["parts"] if p.get("numbered") for c in p["chapters"]]
    assert numbered, "no part of _toc.yml is numbered (numbered: true)"
    for k, entry in enumerate(numbered, 1):
        page = built_site / f"{entry}.html"
        numbers = re.findall(r'<span class="caption-number">Fig\. (\d+)\.(\d+) ', page.read_text())
        expected = [(str(k), str(i)) for i in range(1, len(numbers) + 1)]
        assert numbers == expected, f"{entry} (chapter {k}): figure numbers {numbers}, expected {expected}"
