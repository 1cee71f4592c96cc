"""The Chinese site (_build/html/zh, scripts/i18n.py) in headless Chromium: every page loads
without a console error, failed request or request outside the site, typesets its math, loads its
figures, and links to the same page in English, whose link leads back (over http and from
file://); the Chinese search finds the pages for a course term.
"""
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .sitelib import toc_docnames
from .test_site import WAIT_FOR_PAGE, broken_links, open_page, page_has_math, page_plots, search_pages

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("site")]

ZH_ONLY = ["locales/glossary"]  # scripts/i18n.py ZH_ONLY: Chinese-only pages link to the English home page
DOCNAMES = toc_docnames()


def english_target(docname):
    return DOCNAMES[0] if docname in ZH_ONLY else docname


@pytest.mark.parametrize("docname", DOCNAMES + ZH_ONLY)
def test_chinese_page(browser, site_url, screenshot_dir, docname):
    """Loads clean; math typeset; images decoded; same-origin links resolve; the language link
    leads to the same page in English, whose own language link leads back here."""
    url = f"{site_url}/zh/{docname}.html"
    context, page, record = open_page(browser, site_url, url, viewport={"width": 1280, "height": 900})
    try:
        state = page.evaluate(WAIT_FOR_PAGE)
        lang = page.evaluate("document.documentElement.lang")
        page.wait_for_timeout(200)  # late console messages
        if docname in (DOCNAMES[0], "book/09_dead_neurons"):
            page.screenshot(path=str(screenshot_dir / f"zh__{docname.replace('/', '__')}.png"), full_page=False)
        links = page.eval_on_selector_all("a.lang-switch", "as => as.map(a => a.href)")
        page.click("a.lang-switch")
        page.wait_for_load_state("load")
        landed = page.url
        back = page.eval_on_selector_all("a.lang-switch", "as => as.map(a => a.href)")
    finally:
        context.close()
    assert record["outside"] == [], f"requests outside the site: {record['outside']}"
    assert record["errors"] == [], "\n".join(record["errors"])
    assert record["bad_responses"] == [], record["bad_responses"]
    assert lang == "zh-CN", f"<html lang> is {lang!r}, not zh-CN: the page is not from the Chinese build"
    assert state["mathUnrendered"] == 0, f"{state['mathUnrendered']} of {state['math']} math nodes not typeset"
    assert state["mathErrors"] == [], f"TeX errors: {state['mathErrors']}"
    if docname not in ZH_ONLY and page_has_math(docname):
        assert state["mjx"] > 0 and state["mathjax"] == "done", f"no MathJax output: {state['mathjax']}"
    bad_images = [i["src"] for i in state["images"] if not i["ok"]]
    assert bad_images == [], f"images that did not load: {bad_images}"
    if docname not in ZH_ONLY and page_plots(docname):
        assert state["outputImages"] > 0, "the notebook plots but the Chinese page shows no figure"
    assert broken_links(site_url, state["links"]) == []
    english = f"{site_url}/{english_target(docname)}.html"
    assert links == [english], f"language link {links}, expected [{english}]"
    assert landed == english, f"clicking the language link landed on {landed}, expected {english}"
    if docname not in ZH_ONLY:
        assert back == [url], f"the English page links to {back}, expected [{url}]"


def test_language_links_work_from_file_urls(browser, site_url, site_html):
    """Opened straight from disk (file://): English -> 中文 -> English by clicking."""
    docname = "book/09_dead_neurons" if "book/09_dead_neurons" in DOCNAMES else DOCNAMES[0]
    start = Path(site_html).resolve() / f"{docname}.html"
    context, page, record = open_page(browser, site_url, start.as_uri())
    try:
        page.click("a.lang-switch")
        page.wait_for_load_state("load")
        zh_url, zh_lang = page.url, page.evaluate("document.documentElement.lang")
        page.click("a.lang-switch")
        page.wait_for_load_state("load")
        en_url = page.url
    finally:
        context.close()
    assert zh_url == (Path(site_html).resolve() / "zh" / f"{docname}.html").as_uri() and zh_lang == "zh-CN", zh_url
    assert en_url == start.as_uri(), en_url


@pytest.mark.parametrize("term", ["激活函数", "死亡神经元"])
def test_chinese_search_finds_a_course_term(browser, site_url, screenshot_dir, term):
    """The Chinese search (jieba and the glossary's dictionary) finds the term; every page found
    really contains it (the glossary page always does)."""
    query = urllib.parse.quote(term)
    pages, record = search_pages(browser, site_url, f"{site_url}/zh/search.html?q={query}",
                                 screenshot_dir / f"zh_search_{term}.png")
    assert record["outside"] == [] and record["errors"] == [], record
    assert f"{site_url}/zh/locales/glossary.html" in pages, f"{term}: the glossary page is not among {pages}"
    for url in pages:
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert term in resp.read().decode("utf-8", "replace"), f"{url} found for {term} but lacks it"
