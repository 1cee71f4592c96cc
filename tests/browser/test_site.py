"""The built website, driven in headless Chromium: every page of the table of contents loads
without a single console error (no whitelist) or failed request, makes no request outside the
site, shows no placeholder, renders its math, loads its images (each with alt text or a caption),
numbers its figures one way ("Fig. 7.1"), and links only to things that exist; search works;
exercise downloads are the student notebooks; the pages fit a phone, wide equations and tables
scroll in their own box with a cue, and plots keep a legible width; the buttons are exactly those
course.yml asks for.
"""
import html.parser
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from .sitelib import ROOT, SOURCE, load_yaml, source_of, toc_docnames

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("site")]

DOCNAMES = toc_docnames()
EXERCISES = [d for d in DOCNAMES if d.startswith("exercises/")]
NOTEBOOK_CHAPTERS = [d for d in DOCNAMES
                     if not d.startswith("exercises/") and (SOURCE / f"{d}.ipynb").exists()]
SCREENSHOT = {DOCNAMES[0]} | set(NOTEBOOK_CHAPTERS[:2]) | set(EXERCISES[:1])

# Text that must appear on no page: the placeholder addresses course.yml replaced, and Jupyter
# Book's own repository (its default when a book sets none).
PLACEHOLDERS = ["<course repository>", "actgrad-course/activation-functions", "jupyterhub.example.org",
                "colab.research.google.com", "executablebooks/jupyter-book"]
FILE_NAME_ALT = re.compile(r"^[\w./-]*\.(png|jpe?g|svg|gif)$|^[0-9a-f]{32,}", re.I)

PLOTTING_CODE = re.compile(r"\bplt\.|plotting\.|\.plot\(|\.imshow\(|\.hist\(|\.savefig\(")
MATH_IN_MARKDOWN = re.compile(r"\$[^$\n]+\$|\\begin\{|```\{math\}|:::\{math\}")

WAIT_FOR_PAGE = """async () => {
  // Images: load lazy ones too, then wait for every image to finish (or fail).
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  // Math: MathJax typesets once on start-up; wait for it where the page loads MathJax.
  let mathjax = 'absent';
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
    mathjax = 'done';
  }
  const mathNodes = [...document.querySelectorAll('.math')];
  return {
    mathjax,
    math: mathNodes.length,
    mathUnrendered: mathNodes.filter(n => !n.querySelector('mjx-container')).length,
    mjx: document.querySelectorAll('mjx-container').length,
    mathErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent)
      // an undefined macro is shown as red text (TeX's noundefined package): an error too
      .concat([...document.querySelectorAll('mjx-assistive-mml mtext[mathcolor="red"]')].map(e => 'undefined: ' + e.textContent)),
    images: await Promise.all(imgs.map(async i => {
      let ok = i.naturalWidth > 0;
      if (!ok) { try { await i.decode(); ok = true; } catch (e) { ok = false; } }
      const fig = i.closest('figure');
      const caption = fig && fig.querySelector('figcaption') ? fig.querySelector('figcaption').innerText.trim() : '';
      return {src: i.currentSrc || i.src, ok, alt: (i.getAttribute('alt') || '').trim(), caption,
              output: !!i.closest('.cell_output')};
    })),
    captionNumbers: [...document.querySelectorAll('.bd-article .caption-number')].map(e => e.textContent.trim()),
    numrefs: [...document.querySelectorAll('.bd-article .std-numref')].map(e => e.textContent.trim()),
    articleText: (document.querySelector('.bd-article') || document.body).innerText,
    html: document.documentElement.outerHTML,
    favicon: (document.querySelector('link[rel~="icon"]') || {}).href || null,
    outputImages: document.querySelectorAll('.cell_output img').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  };
}"""


def page_url(site_url, docname):
    return f"{site_url}/{docname}.html"


def open_page(browser, site_url, url, **context_args):
    """Open url in a fresh context; fail any request that leaves the site. Returns
    (context, page, record) where record collects outside requests, errors and bad responses."""
    context = browser.new_context(service_workers="block", **context_args)
    origin = urllib.parse.urlsplit(site_url).netloc
    record = {"outside": [], "errors": [], "bad_responses": []}

    def route(r):
        target = urllib.parse.urlsplit(r.request.url)
        if target.scheme in ("http", "https", "ws", "wss") and target.netloc != origin:
            record["outside"].append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and record["errors"].append(
        f"console: {m.text} ({m.location.get('url', '')})"))
    page.on("pageerror", lambda e: record["errors"].append(f"pageerror: {e}"))
    page.on("response", lambda r: r.status >= 400 and record["bad_responses"].append(
        f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: r.url not in record["outside"] and record["bad_responses"].append(
        f"failed: {r.url} ({r.failure})"))
    page.goto(url, wait_until="load", timeout=60_000)
    return context, page, record


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@lru_cache(maxsize=None)
def fetch(url):
    """(status, set of element ids if HTML) of a same-origin URL, fetched once per session."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
            status = resp.status
            kind = resp.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        return exc.code, frozenset()
    ids = set()
    if kind == "text/html":
        parser = _Ids()
        parser.feed(body.decode("utf-8", "replace"))
        ids = parser.ids
    return status, frozenset(ids)


def broken_links(site_url, links):
    problems = []
    for link in sorted(set(links)):
        if not link.startswith(site_url + "/"):
            continue  # external links are links, not requests: not followed
        base, _, fragment = link.partition("#")
        status, ids = fetch(base)
        if status != 200:
            problems.append(f"{link}: HTTP {status}")
        elif fragment and base.endswith(".html") and urllib.parse.unquote(fragment) not in ids:
            problems.append(f"{link}: no element with id {fragment!r}")
    return problems


def source_text(docname, cell_type):
    """The text of a page's source: its cells of one type for a notebook, all of a .md file."""
    path = source_of(docname)
    if path is None:
        return ""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == cell_type)
    return path.read_text(encoding="utf-8") if cell_type == "markdown" else ""


def page_has_math(docname):
    return bool(MATH_IN_MARKDOWN.search(source_text(docname, "markdown")))


def page_plots(docname):
    """An executed notebook whose code plots must show at least one figure."""
    executed = not docname.startswith("exercises/")
    return executed and bool(PLOTTING_CODE.search(source_text(docname, "code")))


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page(browser, site_url, screenshot_dir, docname):
    """Loads; no console error; nothing fetched from outside; math typeset without TeX errors;
    every image decoded; every same-origin link (and its #anchor) resolves."""
    context, page, record = open_page(browser, site_url, page_url(site_url, docname),
                                      viewport={"width": 1280, "height": 900})
    try:
        state = page.evaluate(WAIT_FOR_PAGE)
        page.wait_for_timeout(200)  # let late console messages arrive
        if docname in SCREENSHOT:
            name = docname.replace("/", "__")
            page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
    finally:
        context.close()

    assert record["outside"] == [], f"requests outside the site: {record['outside']}"
    assert record["errors"] == [], "\n".join(record["errors"])
    assert record["bad_responses"] == [], record["bad_responses"]
    assert state["mathUnrendered"] == 0, f"{state['mathUnrendered']} of {state['math']} math nodes not typeset"
    assert state["mathErrors"] == [], f"TeX errors: {state['mathErrors']}"
    if page_has_math(docname):
        assert state["mjx"] > 0 and state["mathjax"] == "done", \
            f"the source has math but the page shows no MathJax output: {state}"
    bad_images = [i["src"] for i in state["images"] if not i["ok"]]
    assert bad_images == [], f"images that did not load: {bad_images}"
    if page_plots(docname):  # e.g. MPLBACKEND=Agg in the build's kernel silently drops figures
        assert state["outputImages"] > 0, "the notebook plots but the page shows no figure"
    assert broken_links(site_url, state["links"]) == []
    shown = [p for p in PLACEHOLDERS if p in state["html"]]
    assert shown == [], f"placeholder addresses on the page: {shown} (set them in course.yml and run " \
                        "scripts/course_location.py, or leave them unset)"
    assert state["favicon"] and fetch(state["favicon"])[0] == 200, \
        f"no loadable <link rel=icon> ({state['favicon']}): browsers then request /favicon.ico, a 404"
    unlabelled = [i["src"].rsplit("/", 1)[-1] for i in state["images"] if i["output"] and not i["caption"]
                  and (len(i["alt"].split()) < 3 or FILE_NAME_ALT.search(i["alt"]))]
    assert unlabelled == [], f"plots with neither a caption nor alt text (only a file name): {unlabelled}"


@pytest.mark.parametrize("docname", NOTEBOOK_CHAPTERS)
def test_one_figure_numbering_style(browser, site_url, docname):
    """Every figure is numbered by Sphinx with its chapter ("Fig. 7.2"), every reference says the
    same, and no hard-coded "Figure 7.2" is left in the text."""
    context, page, record = open_page(browser, site_url, page_url(site_url, docname))
    try:
        state = page.evaluate(WAIT_FOR_PAGE)
    finally:
        context.close()
    style = re.compile(r"^Fig\. \d+\.\d+(\([a-z]\))?$")
    odd = [n for n in state["captionNumbers"] + state["numrefs"] if not style.match(n)]
    assert odd == [], f"figure numbers not in the 'Fig. <chapter>.<n>' style: {odd}"
    chapters = {n.split()[1].split(".")[0] for n in state["captionNumbers"]}
    assert len(chapters) <= 1, f"one page, figures numbered in several chapters: {chapters}"
    hard = re.findall(r"\bFigure \d+(?:\.\d+)?[a-z]?\b", state["articleText"])
    assert hard == [], f"hard-coded figure numbers in the text: {hard} (refer with {{numref}})"


PHONE_BOXES = """() => {
  const sel = '.bd-article mjx-container[display="true"], .bd-article .pst-scrollable-table-container, .bd-article .table-wrapper';
  const wide = [...document.querySelectorAll(sel)].filter(b => b.scrollWidth > b.clientWidth + 1).map(b => {
    const cs = getComputedStyle(b);
    return {what: b.tagName + ' ' + b.className, overflowX: cs.overflowX, cue: cs.backgroundImage.includes('gradient')};
  });
  const plots = [...document.querySelectorAll('.bd-article .cell_output img')].map(i => {
    const box = i.closest('figure') || i.parentElement;
    return {src: i.src.split('/').pop(), natural: i.naturalWidth, width: i.clientWidth,
            overflowX: getComputedStyle(box).overflowX, cue: getComputedStyle(box, '::before').content};
  });
  return {wide, plots};
}"""


@pytest.mark.parametrize("docname", DOCNAMES)
def test_phone_width_has_no_horizontal_scroll(browser, site_url, screenshot_dir, docname):
    """At 375 px the page never scrolls sideways; what is wider (display equations, tables, plots)
    scrolls inside its own box, with a visible cue; plots keep the 560 px at which their smallest
    text is legible (actgrad.plotting.PHONE_PX)."""
    context, page, record = open_page(browser, site_url, page_url(site_url, docname),
                                      viewport={"width": 375, "height": 740},
                                      device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page.evaluate(WAIT_FOR_PAGE)
        boxes = page.evaluate(PHONE_BOXES)
        widths = page.evaluate("""() => {
          window.scrollTo(10000, window.scrollY);
          const d = document.documentElement;
          return {scrollX: window.scrollX, scrollWidth: d.scrollWidth, clientWidth: d.clientWidth,
                  body: document.body.scrollWidth};
        }""")
        if docname == DOCNAMES[0] or docname in NOTEBOOK_CHAPTERS[:1]:
            name = docname.replace("/", "__")
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(screenshot_dir / f"phone__{name}.png"), full_page=False)
            if page.locator(".cell_output figure, .cell_output img").count():
                page.locator(".cell_output figure, .cell_output img").first.scroll_into_view_if_needed()
                page.screenshot(path=str(screenshot_dir / f"phone__{name}__figure.png"), full_page=False)
    finally:
        context.close()
    assert widths["clientWidth"] <= 375
    assert widths["scrollX"] == 0 and widths["scrollWidth"] <= widths["clientWidth"], widths
    bad = [b for b in boxes["wide"] if b["overflowX"] not in ("auto", "scroll") or not b["cue"]]
    assert bad == [], f"wide boxes without their own scrolling or without a cue (site.css): {bad}"
    small = [p for p in boxes["plots"] if p["natural"] >= 560 and
             (p["width"] < 560 or p["overflowX"] not in ("auto", "scroll") or p["cue"] in ("none", "normal"))]
    assert small == [], f"plots shrunk below 560 px on a phone, or without a scroll box and cue: {small}"


def search_pages(browser, site_url, search_url, screenshot):
    """The pages a search page lists once Sphinx has finished (it appends results one by one and
    writes the summary line only when done), and the page's console/request record."""
    context, page, record = open_page(browser, site_url, search_url, viewport={"width": 1280, "height": 900})
    try:
        page.wait_for_selector("#search-results ul.search li a", timeout=30_000)
        page.wait_for_function("() => (document.querySelector('#search-results p.search-summary')"
                               " || {}).innerText?.trim()", timeout=30_000)
        hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
        page.screenshot(path=str(screenshot))
    finally:
        context.close()
    return {h.partition("#")[0].partition("?")[0] for h in hits}, record


def test_search_finds_relu(browser, site_url, screenshot_dir):
    pages, record = search_pages(browser, site_url, f"{site_url}/search.html?q=ReLU",
                                 screenshot_dir / "search_ReLU.png")
    assert record["outside"] == [] and record["errors"] == [], record
    assert pages, "no search results for ReLU"
    # Independent check: the pages found really mention ReLU.
    for url in pages:
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert "relu" in resp.read().decode("utf-8", "replace").lower(), url


@pytest.mark.skipif(not NOTEBOOK_CHAPTERS, reason="no notebook chapter in _toc.yml")
def test_buttons_are_those_course_yml_asks_for(browser, site_url):
    """course.yml is the oracle: a repository (and issues) button exactly when repository_url is
    set, a Binder / JupyterHub launch link exactly when its URL is set, never Colab."""
    loc = load_yaml("course.yml") if (SOURCE / "course.yml").exists() else \
        yaml.safe_load((ROOT / "course.yml").read_text())
    repo = (loc.get("repository_url") or "").rstrip("/")
    docname = NOTEBOOK_CHAPTERS[0]
    context, page, record = open_page(browser, site_url, page_url(site_url, docname),
                                      viewport={"width": 1280, "height": 900})
    try:
        header = page.eval_on_selector_all(".article-header-buttons a, .header-article-items a",
                                           "as => as.map(a => a.href)")
        launch = page.eval_on_selector_all(".dropdown-launch-buttons a", "as => as.map(a => a.href)")
    finally:
        context.close()
    everything = header + launch
    assert not [h for h in everything if "colab" in h], "Colab cannot install actgrad: no Colab button"
    if repo:
        assert any(h.rstrip("/") == repo for h in header), f"no repository button for {repo}: {header}"
        assert any(h.startswith(repo + "/issues") for h in header), f"no issues button: {header}"
    else:
        outside = [h for h in everything if h.startswith("http") and not h.startswith(site_url)]
        assert outside == [], f"course.yml sets no repository, yet the page links out: {outside}"
    for key in ("binderhub_url", "jupyterhub_url"):
        url = (loc.get(key) or "").rstrip("/")
        found = [h for h in launch if url and h.startswith(url + "/")]
        if url:
            assert found and f"{docname}.ipynb" in urllib.parse.unquote(found[0]), (key, launch)
    if not (loc.get("binderhub_url") or loc.get("jupyterhub_url")):
        assert launch == [], f"no launch URL in course.yml, yet launch links: {launch}"


@pytest.mark.skipif(not EXERCISES, reason="no exercise in _toc.yml")
@pytest.mark.parametrize("docname", EXERCISES)
def test_exercise_download_is_the_student_notebook(browser, site_url, docname):
    context, page, record = open_page(browser, site_url, page_url(site_url, docname))
    try:
        href = page.get_attribute("a.btn-download-source-button", "href")
        assert href and href.endswith(".ipynb"), href
        response = page.request.get(urllib.parse.urljoin(page.url, href))
        assert response.status == 200
        body = response.body()
        page_text = page.content()
    finally:
        context.close()
    released = (SOURCE / f"{docname}.ipynb").read_bytes()
    assert body == released, "the download differs from the released student notebook"
    nb = json.loads(body)
    graded = [c for c in nb["cells"] if "nbgrader" in c.get("metadata", {})]
    assert graded, "the download carries no nbgrader metadata"
    for text in ("".join(c["source"]) for c in nb["cells"]):
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "BEGIN SOLUTION" not in page_text and "BEGIN HIDDEN TESTS" not in page_text
    stubs = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in graded
             if c["metadata"]["nbgrader"].get("solution")}
    assert stubs, "no solution cell (nothing for the student to implement)"
    # Against the instructor's version: every answer cell must differ from its solution.
    folder, name = Path(docname).parent.name, Path(docname).name
    solution = Path(SOURCE) / "solutions" / folder / f"{name}.ipynb"
    if solution.exists():
        solved = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
                  for c in json.loads(solution.read_text(encoding="utf-8"))["cells"]
                  if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        assert set(stubs) == set(solved)
        same = [k for k in stubs if stubs[k].strip() == solved[k].strip()]
        assert same == [], f"answer cells identical to the solution: {same}"
