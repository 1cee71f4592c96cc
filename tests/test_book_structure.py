"""The book's structure: toc entries exist, notebooks carry no outputs, the source article is covered,
and every chapter has the parts the course promises. The build itself is tested in test_book_build.py."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "source-material" / "000_090389a7475d9e50.txt"
# The source article's sections, as numbered in its headings (the oracle when the article is absent).
SOURCE_SECTIONS = ["1.1", "1.2", "1.3", "2.1", "2.2", "3.1", "3.2", "4.1", "4.2", "4.3", "4.4",
                   "5", "6", "7", "8.1", "8.2", "9.1", "9.2", "9.3"]


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


def resolve(entry):
    for ext in (".ipynb", ".md"):
        if (ROOT / (entry + ext)).exists():
            return ROOT / (entry + ext)
    return None


CHAPTERS = sorted(p for p in (ROOT / "book").glob("[0-9][0-9]*_*.ipynb"))  # 10a_, 10b_ inserted after 10


def test_every_toc_entry_exists():
    missing = [f for f in toc_files() if resolve(f) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_eighteen_chapters_all_in_toc_in_file_order():
    listed = [resolve(f) for f in toc_files()]
    assert len(CHAPTERS) == 18, f"expected 18 chapter notebooks in book/, found {[c.name for c in CHAPTERS]}"
    missing = [c.name for c in CHAPTERS if c not in listed]
    assert not missing, f"chapters not listed in _toc.yml (so not published): {missing}"
    order = [p.name for p in listed if p in CHAPTERS]
    assert order == [c.name for c in CHAPTERS], f"_toc.yml lists the chapters out of file order: {order}"


def test_no_committed_outputs():
    dirty = []
    for folder in ("book", "exercises", "solutions"):
        for nb in (ROOT / folder).rglob("*.ipynb"):
            if ".ipynb_checkpoints" in nb.parts:
                continue
            cells = json.loads(nb.read_text())["cells"]
            if any(c.get("outputs") or c.get("execution_count") for c in cells):
                dirty.append(str(nb.relative_to(ROOT)))
    assert not dirty, f"notebooks committed with outputs: {dirty}"


def test_source_sections_listed_in_source_match_the_oracle():
    if not SOURCE.exists():
        pytest.skip(f"source article not present at {SOURCE}")
    heads = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.?\s", SOURCE.read_text(), flags=re.M)
    subsections = {h for h in heads if "." in h}
    tops_without_sub = {h for h in heads if "." not in h and not any(s.startswith(h + ".") for s in subsections)}
    assert sorted(subsections | tops_without_sub) == sorted(SOURCE_SECTIONS)


def test_every_source_section_maps_to_a_chapter_in_the_toc():
    intro = (ROOT / "book" / "intro.md").read_text()
    rows = re.findall(r"^\| ([\d.–]+) \|[^|]*\|(.*)\|\s*$", intro, flags=re.M)
    covered = {}
    for sec, chapters in rows:
        targets = re.findall(r"\]\(([^)]+)\)", chapters)
        if "–" in sec:  # a range such as 4.1–4.4
            major, a = sec.split("–")[0].split(".")
            b = sec.split("–")[1].split(".")[1]
            secs = [f"{major}.{i}" for i in range(int(a), int(b) + 1)]
        else:
            secs = [sec]
        for s in secs:
            covered.setdefault(s, []).extend(targets)
    listed = {resolve(f) for f in toc_files()}
    for s in SOURCE_SECTIONS:
        assert covered.get(s), f"source section {s} is not mapped to any chapter in book/intro.md"
        for t in covered[s]:
            assert (ROOT / "book" / t) in listed, f"section {s} maps to {t}, which is not in the toc"


def markdown(nb):
    return "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                     if c["cell_type"] == "markdown")


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_objectives_summary_questions_and_exercise_link(nb):
    md = markdown(nb)
    for part in ("learning objectives", "summary", "check your understanding"):
        # a heading, or a bold lead-in at the start of a paragraph
        assert re.search(rf"^(#+ .*|\*\*){part}", md, flags=re.I | re.M), f"no '{part}' section"
    n_dropdowns = len(re.findall(r"\{dropdown\}", md))
    assert 2 <= n_dropdowns, f"{n_dropdowns} answer dropdowns"
    assert re.search(r"\]\((\.\./)?exercises/a\d_", md), "no link to a graded exercise"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_cites_only_known_references(nb):
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = set()
    for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", markdown(nb)):
        cited |= {k.strip() for k in group.split(",")}
    assert cited <= keys, f"unknown citation keys: {cited - keys}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_uses_actgrad(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert re.search(r"^\s*(import actgrad|from actgrad)", code, flags=re.M)


# The source article's known errors, each corrected openly where the course treats the topic:
# (chapter, words the admonition's title must contain). The evidence is the executed cell that
# follows the admonition; test_book_build checks that every chapter executes.
CORRECTIONS = [
    ("03_activation_gallery", r"ReLU.*always 1"),
    ("03_activation_gallery", r"Leaky ReLU.*avoids"),
    ("09_dead_neurons", r"Leaky ReLU"),
    ("10_exploding_clipping", r"clipping"),
    ("13_applications", r"LSTM and GRU"),
    ("10b_gradients_through_time", r"LSTM and GRU"),
    ("10a_normalization_residual", r"clipping or regularisation"),
    ("03_activation_gallery", r"never"),
    ("09_dead_neurons", r"never"),
    ("03_activation_gallery", r"small negative number"),
]


@pytest.mark.parametrize("chapter,title", CORRECTIONS, ids=[f"{c}:{t}" for c, t in CORRECTIONS])
def test_source_errors_are_corrected_in_an_admonition_followed_by_code(chapter, title):
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())["cells"]
    for i, cell in enumerate(cells):
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.search(
                r"```\{(admonition|warning)\}[^\n]*source says[^\n]*" + title, src, flags=re.I):
            assert any(c["cell_type"] == "code" for c in cells[i + 1:i + 3]), \
                "the correction is not followed by an executed cell with the evidence"
            return
    pytest.fail(f"{chapter}: no admonition correcting the source ({title})")


PLOTTING = re.compile(r"plt\.|plotting\.plot_|\bax\d?\.(plot|bar|semilogy|loglog|hist|scatter|imshow|fill_between)\(")


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_plotting_cells_hide_their_input(nb):
    """Readers look at figures; the plotting boilerplate is folded away (tag hide-input)."""
    shown = [i for i, c in enumerate(json.loads(nb.read_text())["cells"])
             if c["cell_type"] == "code" and PLOTTING.search("".join(c["source"]))
             and not {"hide-input", "remove-input"} & set(c["metadata"].get("tags", []))]
    assert not shown, f"plotting cells without the hide-input tag: {shown}"


def _figure_problems(cells):
    """Plotting cells that are not real figures (caption, name, alt text), bold caption
    paragraphs, and glue calls that readers would see."""
    found = []
    for i, c in enumerate(cells):
        src, tags = "".join(c["source"]), set(c["metadata"].get("tags", []))
        if c["cell_type"] == "markdown" and re.search(r"^\*\*Fig(ure|\.)", src, flags=re.M):
            found.append(f"cell {i}: a bold '**Figure' caption paragraph (use mystnb.figure metadata)")
        if c["cell_type"] != "code":
            continue
        if PLOTTING.search(src) and "hide-input" in tags:
            meta = c["metadata"].get("mystnb", {})
            figure, alt = meta.get("figure", {}), meta.get("image", {}).get("alt", "")
            if not figure.get("caption", "").strip() or not figure.get("name", "").startswith("fig-"):
                found.append(f"cell {i}: plotting cell without mystnb.figure caption and fig-* name")
            if len(alt.split()) < 3:
                found.append(f"cell {i}: plotting cell without mystnb.image.alt text ({alt!r})")
        if re.search(r"^\s*glue\(", src, flags=re.M) and "remove-cell" not in tags:
            found.append(f"cell {i}: glue(...) in a cell readers see (move it to a remove-cell cell)")
    return found


ALL_CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]*_*.ipynb"))  # with inserted ones (10a_...)


@pytest.mark.parametrize("nb", ALL_CHAPTERS, ids=lambda p: p.stem)
def test_every_plot_is_a_captioned_figure_with_alt_text(nb):
    """The figure convention: captions, names and alt text in the plotting cell's metadata,
    prose refers with {numref}, glue plumbing hidden. `python scripts/convert_figures.py
    book/[0-9][0-9]_*.ipynb` converts old-style chapters."""
    found = _figure_problems(json.loads(nb.read_text())["cells"])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("nb", ALL_CHAPTERS, ids=lambda p: p.stem)
def test_no_hard_coded_figure_numbers(nb):
    refs = re.findall(r"(?<![\w`<*])Figure\s+\d+(?:\.\d+)?[a-z]?\b", markdown(nb))
    assert not refs, f"hard-coded figure numbers {refs}: refer with {{numref}}`fig-...`"
