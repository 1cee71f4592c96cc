"""Every chapter's figures stay readable on every screen (the contract of ``actgrad.plotting``).

A figure's smallest text, in CSS px on the page, is ``pt * dpi / 72 * min(1, shown / W)``: its font
size in points, the dpi the PNG was rendered at, the width ``shown`` the page gives the image and the
image's natural width ``W`` in pixels (a browser shrinks a wide image, never enlarges a narrow one).
The book keeps that at least ``MIN_TEXT_PX`` by two rules, each checked here:

(a) statically, over every code cell of ``book/*.ipynb``: no font size below ``MIN_PT`` (11 pt, the
    smallest size of ``plotting.STYLE``) and no figure wider than ``plotting.FIG_WIDTH`` inches;
(b) on the built site: every PNG a chapter page shows, at its natural width and the dpi recorded in
    the PNG (matplotlib writes it to the pHYs chunk), shows ``MIN_PT`` text at ``MIN_TEXT_PX`` or
    more when the page is ``COLUMN_PX`` wide and when it is ``PHONE_PX`` wide.

How the pages' PNGs are rendered: the chapters select ``%config InlineBackend.figure_formats =
["png"]``, and IPython's inline backend (``IPython.core.pylabtools.print_figure``) saves with
``dpi=fig.dpi`` and ``bbox_inches="tight"``. So the dpi is ``STYLE["figure.dpi"]`` (110), not
``savefig.dpi`` (150, which that explicit argument overrides), and W is the tight bounding box, not
``figsize``: the drawn extent plus ``savefig.pad_inches`` (0.1 in) on each side. A 7-in figure
comes out about 650-782 px wide; 782 px (a constrained-layout figure that fills its canvas, e.g.
``plotting.subplots``) leaves 11-pt text at 12.04 CSS px on a phone, so anything that widens the
tight box by more than ~2 px (a legend or text outside the axes at the right) fails (b).
Only PNG images are measured (the chapters render PNG). The self-tests at the end render
figures through that same function and check that both rules catch a bad figure.
"""
import ast
import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from actgrad import plotting

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
MIN_PT = 11.0
#: Named font sizes smaller than the default (11 pt in STYLE): matplotlib scales them by 0.58-0.83.
SMALL_NAMES = {"xx-small", "x-small", "small", "smaller"}
#: Keyword arguments that are a font size in any matplotlib call.
SIZE_KWARGS = {"fontsize", "labelsize", "titlesize", "title_fontsize"}
#: Calls whose ``size=`` keyword (or ``"size"`` key of a font dict) is a font size; elsewhere
#: ``size=`` is usually an array shape (``rng.normal(size=5)``).
TEXT_CALLS = {"text", "annotate", "figtext", "title", "set_title", "suptitle", "supxlabel",
              "supylabel", "xlabel", "ylabel", "set_xlabel", "set_ylabel", "legend", "clabel",
              "bar_label", "table", "xticks", "yticks", "set_xticklabels", "set_yticklabels",
              "FontProperties", "rc", "set_label"}
FONT_DICT_KWARGS = {"prop", "fontdict", "textprops", "fontproperties", "title_fontproperties"}
HINT_FONT = ("drop the override (plotting.STYLE already sets every text to 11-12 pt); if the figure "
             "is crowded, use fewer or shorter labels, a legend below it (fig.legend(loc='outside "
             "lower center')) or split it into two figures")
HINT_WIDTH = (f"use plotting.subplots(n) (at most {plotting.MAX_COLUMNS} panels per row, "
              f"{plotting.FIG_WIDTH:g} in wide) or plt.subplots(figsize=(plotting.FIG_WIDTH, h)) "
              f"for one panel")


# ----------------------------------------------------------------------------- (a) static check
def _code(source):
    """Cell source as Python: IPython magics and shell lines become blank lines (line numbers
    are kept); None for cell magics other than timing ones (their body is not Python)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if not re.match(r"\s*%%(time|timeit|capture)\b", lines[0]):
            return None
        lines[0] = ""
    return "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in lines)


class _Unknown(Exception):
    pass


def _value(node, env):
    """Evaluate a literal, a name bound to a literal in the notebook, ``plotting.<CONSTANT>`` and
    arithmetic on these; raise _Unknown otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.Name) and isinstance(getattr(plotting, node.id, None), (int, float)):
        return getattr(plotting, node.id)
    if isinstance(node, ast.Attribute) and isinstance(getattr(plotting, node.attr, None), (int, float)) \
            and node.attr.isupper():
        return getattr(plotting, node.attr)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b}
        if type(node.op) in ops:
            try:
                return ops[type(node.op)](_value(node.left, env), _value(node.right, env))
            except (TypeError, ArithmeticError) as e:
                raise _Unknown from e
    raise _Unknown


def _constants(cells):
    """Names bound once to a literal (``fs = 8``) anywhere in the notebook."""
    env, seen = {}, set()
    for src in cells:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                seen.add(node.target.id)
                env.pop(node.target.id, None)
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                try:
                    value = _value(node.value, {})
                except _Unknown:
                    value = None
                if name in seen:
                    env.pop(name, None)  # rebound: unknown
                else:
                    seen.add(name)
                    if value is not None:
                        env[name] = value
    return env


def _font_problem(node, env):
    """Why the font size ``node`` is too small (None when it is fine)."""
    try:
        v = _value(node, env)
    except _Unknown:
        return f"font size {ast.unparse(node)!r} cannot be read statically (write a literal >= {MIN_PT:g})"
    if isinstance(v, str):
        if v.strip().lower() in SMALL_NAMES:
            return f"named font size {v!r} is below the style's {MIN_PT:g} pt"
        try:
            v = float(v)
        except ValueError:
            return None  # "medium", "large", ...
    return f"font size {v:g} pt < {MIN_PT:g} pt" if v < MIN_PT else None


def _width_problem(node, env, what="figure width"):
    try:
        w = _value(node, env)
    except _Unknown:
        return f"{what} {ast.unparse(node)!r} cannot be read statically (write FIG_WIDTH or a number)"
    if isinstance(w, (int, float)) and w > plotting.FIG_WIDTH + 1e-9:
        return f"{what} {w:g} in > plotting.FIG_WIDTH = {plotting.FIG_WIDTH:g} in"
    return None


def _key_problem(key, value, env):
    """``(problem, hint)`` for a dict key or rcParams key (``"font.size"``, ``"figure.figsize"``,
    ``"fontsize"``) set to ``value``; problem None when fine."""
    if not isinstance(key, str):
        return None, None
    if key == "figure.figsize" and isinstance(value, (ast.Tuple, ast.List)) and value.elts:
        return _width_problem(value.elts[0], env, "rcParams['figure.figsize'] width"), HINT_WIDTH
    if re.search(r"(\.size|(^|\.)(fontsize|labelsize|titlesize|title_fontsize))$", key):
        return _font_problem(value, env), HINT_FONT
    return None, None


def _call_name(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def static_problems(code, env=None):
    """``[(line, message, hint)]`` for every font size below MIN_PT and every figure wider than
    FIG_WIDTH in ``code`` (Python source). ``env``: names bound to literals elsewhere."""
    env = env or {}
    tree = ast.parse(code)
    found = []

    def add(node, problem, hint):
        if problem:
            found.append((node.lineno, problem, hint))

    def font_dict(d):
        if isinstance(d, ast.Dict):
            for k, v in zip(d.keys, d.values):
                if isinstance(k, ast.Constant) and k.value in ("size", "fontsize"):
                    add(v, _font_problem(v, env), HINT_FONT)
        elif isinstance(d, ast.Call) and _call_name(d) == "dict":
            for kw in d.keywords:
                if kw.arg in ("size", "fontsize"):
                    add(kw.value, _font_problem(kw.value, env), HINT_FONT)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            for kw in node.keywords:
                if kw.arg in SIZE_KWARGS or (kw.arg == "size" and name in TEXT_CALLS):
                    add(kw.value, _font_problem(kw.value, env), HINT_FONT)
                elif kw.arg == "figsize":
                    if isinstance(kw.value, (ast.Tuple, ast.List)) and kw.value.elts:
                        add(kw.value, _width_problem(kw.value.elts[0], env), HINT_WIDTH)
                    elif not (isinstance(kw.value, ast.Constant) and kw.value.value is None):
                        add(kw.value, f"figsize={ast.unparse(kw.value)} cannot be read statically",
                            HINT_WIDTH)
                elif kw.arg in FONT_DICT_KWARGS:
                    font_dict(kw.value)
            if name in ("set_fontsize", "set_size") and node.args:
                add(node, _font_problem(node.args[0], env), HINT_FONT)
            if name == "FontProperties":
                for a in node.args[:1]:
                    font_dict(a)
            if name in ("set_size_inches", "set_figwidth") and node.args:
                first = node.args[0]
                if isinstance(first, (ast.Tuple, ast.List)) and first.elts:
                    first = first.elts[0]
                add(node, _width_problem(first, env), HINT_WIDTH)
        elif isinstance(node, ast.Dict):  # rcParams.update({...}), rc_context({...}), STYLE-like dicts
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant):
                    add(v, *_key_problem(k.value, v, env))
        elif isinstance(node, ast.Assign):  # rcParams["font.size"] = 8
            for t in node.targets:
                if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant):
                    add(node, *_key_problem(t.slice.value, node.value, env))
    return sorted(set(found))


def notebook_problems(path):
    """Failure lines for one notebook: ``<notebook> cell <id> line <n>: <problem> | <code> -> <hint>``."""
    cells = json.loads(Path(path).read_text())["cells"]
    codes = [(i, c, _code("".join(c["source"]))) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    env = _constants([src for *_, src in codes if src is not None])
    out = []
    for i, c, src in codes:
        if src is None:
            continue
        where = f"{Path(path).name} cell {c.get('id') or f'#{i}'}"
        try:
            problems = static_problems(src, env)
        except SyntaxError as e:
            out.append(f"{where} line {e.lineno}: not valid Python, so its figure code cannot be checked ({e.msg})")
            continue
        lines = src.splitlines()
        for line, problem, hint in problems:
            out.append(f"{where} line {line}: {problem} | {lines[line - 1].strip()} -> {hint}")
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_figure_code_keeps_text_readable(nb):
    problems = notebook_problems(nb)
    if problems:
        pytest.fail(f"{len(problems)} figure setting(s) in book/{nb.name} make text unreadable at "
                    f"{plotting.COLUMN_PX} px (column) or {plotting.PHONE_PX} px (phone):\n  "
                    + "\n  ".join(problems), pytrace=False)


# ----------------------------------------------------------------------------- (b) built site
class _Images(HTMLParser):
    """``src`` and ``width`` of every <img> of a page."""

    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            a = dict(attrs)
            style = re.search(r"(?:^|;)\s*width\s*:\s*([\d.]+(?:px|%))", a.get("style") or "")
            self.images.append((a.get("src") or "", a.get("width") or (style.group(1) if style else None)))


def _png(page, src):
    """``(label, PNG bytes)`` of an <img src> of ``page``, or None if it is not a PNG."""
    if src.startswith("data:"):
        head, _, data = src.partition(",")
        return ("inline " + head, base64.b64decode(data)) if head.startswith("data:image/png") else None
    path = (page.parent / unquote(src.split("#")[0].split("?")[0])).resolve()
    return (src, path.read_bytes()) if path.suffix.lower() == ".png" else None


def png_text_px(data, shown_px, attr_width=None):
    """``(W, dpi, px)``: the natural width of the PNG ``data``, the dpi it records, and the CSS px
    of MIN_PT text when the page offers ``shown_px`` (an explicit width attribute caps that)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    W, dpi = img.size[0], img.info.get("dpi", (None,))[0]
    if attr_width:
        shown_px = shown_px * float(attr_width[:-1]) / 100 if attr_width.endswith("%") \
            else min(shown_px, float(attr_width.removesuffix("px")))
    px = None if not dpi else MIN_PT * dpi / 72 * min(1.0, shown_px / W)
    return W, dpi, px


def page_problems(page):
    """Failure lines for every chapter PNG of the built ``page`` that is too small to read."""
    parser = _Images()
    parser.feed(page.read_text())
    out = []
    for src, attr_width in parser.images:
        png = _png(page, src)
        if png is None:
            continue
        label, data = png
        for screen, shown in (("column", plotting.COLUMN_PX), ("phone", plotting.PHONE_PX)):
            W, dpi, px = png_text_px(data, shown, attr_width)
            if px is None:
                out.append(f"{page.name}: {label}: the PNG records no dpi, so its text size cannot "
                           f"be known (render it with matplotlib's inline backend)")
                break
            if px < plotting.MIN_TEXT_PX - 1e-6:
                out.append(
                    f"{page.name}: {label}: {W} px wide at {dpi:.0f} dpi, so {MIN_PT:g}-pt text is "
                    f"{px:.1f} CSS px when shown {shown} px wide ({screen}), expected >= "
                    f"{plotting.MIN_TEXT_PX:g} -> the figure is wider than {plotting.FIG_WIDTH:g} in "
                    f"(or has text/legends outside its axes that widen the tight bounding box); use "
                    f"plotting.subplots(n) and keep legends inside or below the figure")
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("site")  # as test_book_build.py; the build itself is shared through a lock
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_built_figures_are_readable_on_every_screen(built_site, nb):
    page = built_site / "book" / f"{nb.stem}.html"
    if not page.exists():
        pytest.skip(f"{nb.name} is not in _toc.yml, so it has no page")
    problems = page_problems(page)
    if problems:
        pytest.fail("\n  ".join([f"unreadable figures on book/{page.name}:"] + problems), pytrace=False)


# ----------------------------------------------------------------------------- the checks can fail
def test_style_has_no_text_below_the_minimum():
    sizes = {k: v for k, v in plotting.STYLE.items() if k.endswith("size") and isinstance(v, (int, float))}
    small = {k: v for k, v in sizes.items() if v < MIN_PT}
    assert sizes and not small, f"plotting.STYLE sets text below {MIN_PT:g} pt: {small}"


BAD_CELLS = {
    "fontsize": "ax.legend(fontsize=8)",
    "named size": "ax.set_title('t', fontsize='small')",
    "tick labelsize": "ax.tick_params(labelsize=9)",
    "text size": "ax.text(0, 0, 'a', size=7)",
    "legend prop": "ax.legend(prop={'size': 8})",
    "rcParams item": "plt.rcParams['font.size'] = 9",
    "rcParams update": "mpl.rcParams.update({'xtick.labelsize': 'x-small'})",
    "size via a name": "fs = 8\nax.set_xlabel('x', fontsize=fs)",
    "rebound name": "fs = 12\nfs -= 4\nax.set_xlabel('x', fontsize=fs)",
    "wide figsize": "fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))",
    "wide via constant": "fig, ax = plt.subplots(figsize=(2 * plotting.FIG_WIDTH, 3))",
    "set_size_inches": "fig.set_size_inches(12, 4)",
    "unreadable size": "ax.legend(fontsize=rc_small())",
}
GOOD_CELLS = {
    "style sizes": "ax.legend(fontsize=11); ax.set_title('t', fontsize='large')",
    "array size": "x = rng.normal(size=5)\ny = rng.integers(0, 3, size=(2, 3))",
    "fig width": "fig, ax = plt.subplots(figsize=(plotting.FIG_WIDTH, 3.8))\nfig2 = plt.figure(figsize=(7, 9))",
    "helpers": "fig, axes = plotting.subplots(5, panel_height=2.4)",
}


@pytest.mark.parametrize("name", BAD_CELLS)
def test_static_check_flags_a_bad_cell(name):
    code = BAD_CELLS[name]
    env = _constants([code])
    problems = static_problems(code, env)
    assert problems, f"static_problems({code!r}) found nothing; expected a {name} problem"
    assert problems[0][0] == len(code.splitlines()), f"{code!r}: problem reported at line {problems[0][0]}"


@pytest.mark.parametrize("name", GOOD_CELLS)
def test_static_check_passes_a_good_cell(name):
    code = GOOD_CELLS[name]
    assert static_problems(code, _constants([code])) == [], f"static_problems({code!r}) flags readable code"


def test_static_check_names_notebook_cell_and_line(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "good0001", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ['%matplotlib inline\n', 'fig, ax = plotting.subplots(1)']},
        {"cell_type": "code", "id": "bad00001", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ['%config InlineBackend.figure_formats = ["png"]\n', 'x = 1\n',
                    'fig, ax = plt.subplots(figsize=(12, 4))']}]}
    path = tmp_path / "99_bad.ipynb"
    path.write_text(json.dumps(nb))
    problems = notebook_problems(path)
    assert len(problems) == 1 and problems[0].startswith("99_bad.ipynb cell bad00001 line 3: figure width 12 in"), \
        f"notebook_problems on a notebook with one 12-in figure in cell bad00001, line 3: {problems}"
    assert "plotting.subplots" in problems[0], f"no hint in {problems[0]!r}"


def _inline_png(figsize):
    """A figure with MIN_PT text, rendered exactly as the inline backend renders it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure

    with plotting.style():
        fig, ax = plt.subplots(figsize=figsize)
        ax.plot([0, 1], [0, 1], label="line")
        ax.set(xlabel="x", ylabel="y", title="t")
        ax.legend()
        data = print_figure(fig, "png")  # fmt and bbox_inches="tight" as InlineBackend with ["png"]
        plt.close(fig)
    return data


def test_built_site_check_measures_what_the_inline_backend_renders(tmp_path):
    """Oracle: STYLE's figure.dpi and the figure's width, independently of the PNG reader."""
    good, wide = _inline_png((plotting.FIG_WIDTH, 3.5)), _inline_png((2 * plotting.FIG_WIDTH, 3.5))
    W, dpi, px = png_text_px(good, plotting.COLUMN_PX)
    assert dpi == pytest.approx(plotting.STYLE["figure.dpi"], abs=0.05), \
        f"inline PNG records {dpi} dpi, expected figure.dpi={plotting.STYLE['figure.dpi']} (not savefig.dpi)"
    pad = plotting.mpl.rcParams["savefig.pad_inches"]  # bbox tight pads the drawn extent on both sides
    assert 0.8 * plotting.FIG_WIDTH * dpi < W <= (plotting.FIG_WIDTH + 2 * pad) * dpi + 1, \
        f"a {plotting.FIG_WIDTH}-in figure came out {W} px wide at {dpi} dpi (bbox tight)"
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "good.png").write_bytes(good)
    (tmp_path / "_images" / "wide.png").write_bytes(wide)
    page = tmp_path / "book" / "99_demo.html"
    page.parent.mkdir()
    page.write_text('<p><img alt="a" src="../_images/good.png" /><img src="../_images/wide.png" alt="b"/>'
                    f'<img src="data:image/png;base64,{base64.b64encode(wide).decode()}"/></p>')
    problems = page_problems(page)
    assert problems and all("wide.png" in p or "inline" in p for p in problems), \
        f"page_problems: expected only the 14-in figures (file and inline) flagged, got {problems}"
    assert any("99_demo.html: ../_images/wide.png" in p and "(column)" in p for p in problems), problems
    assert any(p.startswith("99_demo.html: inline data:image/png") for p in problems), problems
