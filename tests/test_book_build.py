"""The website builds from a clean checkout with zero warnings, and every page is there."""
import re

import pytest

from test_book_structure import CHAPTERS, toc_files

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
