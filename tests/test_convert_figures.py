"""scripts/convert_figures.py on small hand-written notebooks: captions move into the plotting
cell's metadata, "Figure N" references become {numref} roles (also across chapters and for
sub-panels), glue calls leave visible cells, unsafe cases are left alone and reported, and a second
run changes nothing."""
import ast
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import convert_figures as cf  # noqa: E402


def md(src):
    return {"cell_type": "markdown", "metadata": {}, "source": src.splitlines(keepends=True)}


def code(src, tags=None):
    meta = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": src.splitlines(keepends=True)}


def write(path, cells):
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def src(cell):
    return "".join(cell["source"])


@pytest.fixture
def book(tmp_path):
    write(tmp_path / "07_vanishing_exploding.ipynb", [
        md("# Chapter\n\nAs Figure 7.2 shows, and Figure 7.1b too.\n"),
        code("x = compute()\nprint(x)\nglue('ch7_x', x, display=False)\n"),
        code("fig, ax = plt.subplots()\nax.plot(x)\nplt.show()\n", ["hide-input"]),
        md("**Figure 7.1.** Gradient norm $\\|\\partial L/\\partial W_l\\|$ per layer. Flat is good.\n"
           "Second line.\n\nThe text after the caption stays.\n"),
        code("plt.plot(y)\n"),
        md("**Figure 7.2.** Histograms by layer.\n"),
        code("for k, v in d.items():\n    glue(k, v, display=False)\nprint(v)\n"),
        code("y = f(x)\nglue('a', y, display=False)\ny = y + 1\n"),
    ])
    write(tmp_path / "12_choosing_activation.ipynb", [
        md("Too large weights ([chapter 7](07_vanishing_exploding.ipynb), Figure 1) explode; see Figure 9.\n"),
        code("glue('only', 1, display=False)\n"),
        code("z = g()\nz.mean()\nglue('z', z, display=False)\n"),
    ])
    return tmp_path


def run(book, capsys, *extra):
    paths = sorted(str(p) for p in book.glob("*.ipynb"))
    code_ = cf.main([*extra, *paths])
    return code_, capsys.readouterr().out


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_caption_moves_into_the_plotting_cell(book, capsys):
    run(book, capsys)
    ch7 = cells(book / "07_vanishing_exploding.ipynb")
    plots = [c for c in ch7 if "figure" in c["metadata"].get("mystnb", {})]
    assert [c["metadata"]["mystnb"]["figure"]["name"] for c in plots] == \
        ["fig-vanishing-exploding-1", "fig-vanishing-exploding-2"], "one named figure per caption"
    first = plots[0]["metadata"]
    assert first["mystnb"]["figure"]["caption"] == \
        "Gradient norm $\\|\\partial L/\\partial W_l\\|$ per layer. Flat is good. Second line."
    assert first["mystnb"]["image"]["alt"] == "Gradient norm ‖∂L/∂W_l‖ per layer.", \
        "alt text should be the caption's first sentence in plain text"
    assert "hide-input" in plots[1]["metadata"]["tags"], "the plotting cell must be tagged hide-input"
    text = "".join(src(c) for c in ch7 if c["cell_type"] == "markdown")
    assert "**Figure" not in text, "bold caption paragraphs must be removed"
    assert "The text after the caption stays." in text
    assert not any(c["cell_type"] == "markdown" and not src(c).strip() for c in ch7), "empty cell left"


def test_references_become_numref_roles(book, capsys):
    _, out = run(book, capsys)
    ch7 = src(cells(book / "07_vanishing_exploding.ipynb")[0])
    assert "As {numref}`fig-vanishing-exploding-2` shows" in ch7
    assert "{numref}`Fig. %s(b) <fig-vanishing-exploding-1>` too" in ch7, "sub-panel reference"
    ch12 = src(cells(book / "12_choosing_activation.ipynb")[0])
    assert "([chapter 7](07_vanishing_exploding.ipynb), {numref}`fig-vanishing-exploding-1`)" in ch12, \
        "'Figure 1' right after a link to chapter 7 refers to chapter 7's figure"
    assert "see Figure 9." in ch12 and "UNRESOLVED 12_choosing_activation.ipynb: 'Figure 9'" in out, \
        "a reference to a figure that does not exist must be left alone and reported"


def test_glue_calls_leave_visible_cells(book, capsys):
    _, out = run(book, capsys)
    ch7 = cells(book / "07_vanishing_exploding.ipynb")
    assert src(ch7[1]) == "x = compute()\nprint(x)"
    assert src(ch7[2]) == "glue('ch7_x', x, display=False)" and ch7[2]["metadata"]["tags"] == ["remove-cell"]
    # a loop that only glues moves as a whole, but not when later code reads its loop variable
    loop = next(c for c in ch7 if src(c).startswith("for k, v"))
    assert "remove-cell" not in loop["metadata"].get("tags", []) and "sets a name that later code reads" in out
    # a glue call that reads a name changed later stays where it is
    assert any(src(c).startswith("y = f(x)\nglue(") for c in ch7) and "reads a name that later code changes" in out
    ch12 = cells(book / "12_choosing_activation.ipynb")
    only = next(c for c in ch12 if "glue('only'" in src(c))
    assert src(only) == "glue('only', 1, display=False)\n" and only["metadata"]["tags"] == ["remove-cell"], \
        "a cell that only glues is tagged remove-cell rather than split"
    silent = next(c for c in ch12 if src(c).startswith("z = g()"))
    assert src(silent) == "z = g()\nz.mean();", "the cell's new last expression must stay silent"
    for c in ch7 + ch12:
        if c["cell_type"] == "code":
            ast.parse(src(c).replace(";", ""))


def test_second_run_changes_nothing(book, capsys):
    run(book, capsys)
    before = {p: p.read_text() for p in book.glob("*.ipynb")}
    code_, out = run(book, capsys, "--check")
    assert code_ == 0 and "would change 0 of 2" in out, out
    run(book, capsys)
    assert {p: p.read_text() for p in book.glob("*.ipynb")} == before, "the conversion is not idempotent"


def test_check_reports_pending_conversions(book, capsys):
    code_, out = run(book, capsys, "--check")
    assert code_ == 1 and "would change 2 of 2" in out, out
