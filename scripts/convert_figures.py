"""Convert the chapters' old-style figures to the book's figure convention, mechanically.

Old style: a plotting cell, then a Markdown cell that starts with a bold caption paragraph
(``**Figure 7.1.** ...`` or ``**Figure 1.** ...``), hard-coded "Figure 7.1" references in the prose,
and ``glue(...)`` calls inside visible code cells. New style (see the developers' conventions):

* the plotting cell carries the caption, a name and alt text in its metadata
  (``mystnb.figure.caption``, ``mystnb.figure.name`` = ``fig-<chapterslug>-<n>``,
  ``mystnb.image.alt``) and the ``hide-input`` tag; the bold paragraph is removed;
* prose refers to figures with ``{numref}`fig-...``` (Sphinx numbers them "Fig. 7.1");
  "Figure 1b" becomes ``{numref}`Fig. %s(b) <fig-...>```; "Figure 3" right after a link to
  another chapter, or "Figure 12.3", refers to that chapter's figure;
* ``glue(...)`` statements move out of visible code cells into a cell tagged ``remove-cell``
  (right after it), or the cell itself is tagged ``remove-cell`` when it only glues.

Alt text is derived from the caption's first sentence; the output lists every derived alt text
so a human can improve it, and everything the script could not convert safely (it is left as is).
Cells that already carry ``mystnb.figure`` are left alone, so running the script twice changes
nothing the second time.

Usage: python scripts/convert_figures.py [--check] NOTEBOOK ...   (e.g. book/[0-9][0-9]_*.ipynb)
  --check: write nothing; exit 1 if any notebook would change.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course_location import dump_like  # noqa: E402  (same JSON layout as the file's own)

CAPTION = re.compile(r"\A\*\*Figure\s+(?:(\d+)\.)?(\d+)\.?\*\*\.?[ \t]*")
REF = re.compile(r"(?<![\w`<*])Figure\s+(?:(\d+)\.)?(\d+)([a-z])?(?![\w.]\d)")
CHAPTER_LINK = re.compile(r"\[chapter (\d+)\]\([^)]*\)[^.;\n]{0,12}$", re.I)
PLOTTING = re.compile(r"plt\.|plotting\.plot_|\.plot\(|\.imshow\(|\.hist\(|\.bar\(|\.scatter\(|"
                      r"\.semilogy\(|\.loglog\(|\.savefig\(|plt\.show\(")
SILENT_CALLS = {"print", "display", "show"}  # calls that return None: a cell ending in one shows no value
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "lambda": "λ", "mu": "μ",
         "sigma": "σ", "phi": "φ", "partial": "∂", "odot": "⊙", "cdot": "·", "times": "×", "le": "≤",
         "ge": "≥", "infty": "∞", "to": "→", "approx": "≈", "sqrt": "√", "pm": "±", "ell": "ℓ"}


def slug(path: Path) -> str:
    """``07_vanishing_exploding.ipynb`` -> ``vanishing-exploding``."""
    return re.sub(r"^\d+[a-z]?_", "", path.stem).replace("_", "-")


def chapter_number(path: Path) -> int | None:
    m = re.match(r"(\d+)_", path.name)
    return int(m.group(1)) if m else None


def text(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def set_text(cell, value: str):
    cell["source"] = value.splitlines(keepends=True) if isinstance(cell["source"], list) else value


def figure_names(path: Path) -> dict[int, str]:
    """Old figure number -> figure name for one chapter, from its captions (old style) or from
    names this script generated (new style), so references resolve before and after conversion."""
    names = {}
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        m = CAPTION.match(text(cell)) if cell["cell_type"] == "markdown" else None
        if m:
            names[int(m.group(2))] = f"fig-{slug(path)}-{m.group(2)}"
        name = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name", "")
        g = re.fullmatch(rf"fig-{re.escape(slug(path))}-(\d+)", name)
        if g:
            names[int(g.group(1))] = name
    return names


def plain(md: str) -> str:
    """Markdown (with inline math) to plain text for alt text."""
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"\{glue(:\w+)?\}`[^`]*`", "(a computed value)", md)
    md = re.sub(r"\{[a-z:]+\}`([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", md)

    def math(m):
        tex = m.group(1)
        tex = re.sub(r"\\(?:mathcal|mathbf|mathrm|operatorname|left|right|!|,|;)", "", tex)
        tex = re.sub(r"\\lVert|\\rVert|\\\|", "‖", tex)
        tex = re.sub(r"\\([A-Za-z]+)(?![A-Za-z])\s*(?=[A-Za-z0-9])", lambda c: GREEK.get(c.group(1), c.group(1) + " "), tex)
        tex = re.sub(r"\\([A-Za-z]+)\s*", lambda c: GREEK.get(c.group(1), c.group(1)), tex)
        return tex.replace("{", "").replace("}", "").replace("^", "^")

    md = re.sub(r"\$([^$]+)\$", math, md)
    return re.sub(r"\s+", " ", md.replace("**", "").replace("*", "").replace("`", "")).strip()


def first_sentence(s: str) -> str:
    return re.split(r"(?<=[a-z0-9)\]][.!?])\s+(?=[A-Z(])", s, maxsplit=1)[0].rstrip(".") + "."


# ----------------------------------------------------------------------------- captions
def convert_captions(path, cells, report):
    names_here = {c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
                  for c in cells if c["cell_type"] == "code"}
    out = []
    for cell in cells:
        src = text(cell)
        m = CAPTION.match(src) if cell["cell_type"] == "markdown" else None
        if not m:
            out.append(cell)
            continue
        where = f"{path.name}: caption 'Figure {m.group(0).strip('* .')}'"
        plot = out[-1] if out else None
        if plot is None or plot["cell_type"] != "code" or not PLOTTING.search(text(plot)):
            report.append(f"SKIPPED {where}: the cell before it is not a plotting code cell")
            out.append(cell)
            continue
        meta = plot.setdefault("metadata", {})
        if "figure" in meta.get("mystnb", {}):
            report.append(f"SKIPPED {where}: its plotting cell already has a mystnb.figure caption")
            out.append(cell)
            continue
        name = f"fig-{slug(path)}-{m.group(2)}"
        if name in names_here:
            report.append(f"SKIPPED {where}: the name {name} is already used in this notebook")
            out.append(cell)
            continue
        paragraph, _, rest = src[m.end():].partition("\n\n")
        caption = re.sub(r"\s*\n\s*", " ", paragraph).strip()
        alt = first_sentence(plain(caption))
        meta.setdefault("mystnb", {})["figure"] = {"caption": caption, "name": name}
        meta["mystnb"]["image"] = {"alt": alt}
        tags = meta.setdefault("tags", [])
        if "hide-input" not in tags and "remove-input" not in tags:
            tags.append("hide-input")
        names_here.add(name)
        human = "$" in first_sentence(caption) or "computed value" in alt or len(alt.split()) < 8
        report.append(f"{'ALT-NEEDS-HUMAN' if human else 'ALT-CHECK'} {path.name}: {name}: alt text "
                      f"derived from the caption's first sentence: {alt!r}")
        if rest.strip():
            set_text(cell, rest.lstrip("\n"))
            out.append(cell)
    cells[:] = out


# ----------------------------------------------------------------------------- references
def convert_references(path, cells, chapter_names, report):
    here = chapter_number(path)

    def replace(m, before):
        chap = int(m.group(1)) if m.group(1) else None
        if chap is None:
            link = CHAPTER_LINK.search(before[-80:])
            chap = int(link.group(1)) if link else here
        name = chapter_names.get(chap, {}).get(int(m.group(2)))
        if name is None:
            report.append(f"UNRESOLVED {path.name}: {m.group(0)!r} (no such figure in chapter {chap})")
            return m.group(0)
        if m.group(3):
            return f"{{numref}}`Fig. %s({m.group(3)}) <{name}>`"
        return f"{{numref}}`{name}`"

    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        src = text(cell)
        # not inside inline code or a role's target
        new, pos = [], 0
        for m in REF.finditer(src):
            new.append(src[pos:m.start()])
            new.append(replace(m, src[:m.start()]))
            pos = m.end()
        new.append(src[pos:])
        joined = "".join(new)
        if joined != src:
            set_text(cell, joined)


# ----------------------------------------------------------------------------- glue
def _is_glue(node) -> bool:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        f = node.value.func
        return (isinstance(f, ast.Name) and f.id == "glue") or (isinstance(f, ast.Attribute) and f.attr == "glue")
    if isinstance(node, (ast.For, ast.If, ast.With)) and not getattr(node, "orelse", None):
        # a loop that only computes names for glue and glues them: moved as a whole
        return any(_is_glue(n) for n in node.body) and \
            all(_is_glue(n) or isinstance(n, ast.Assign) for n in node.body)
    return False


def _names(nodes, ctx):
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _mentions_glue(node) -> bool:
    return any(isinstance(n, ast.Call) and _is_glue(ast.Expr(value=n)) for n in ast.walk(node))


def split_glue(src: str):
    """``(kept, glued, problem)``: the cell's source without its glue statements, those
    statements, and why nothing was moved (or None)."""
    try:
        tree = ast.parse(src)
    except SyntaxError as exc:
        return src, "", f"not plain Python ({exc.msg})"
    body = tree.body
    glue_idx = [k for k, n in enumerate(body) if _is_glue(n)]
    mixed = [n.lineno for k, n in enumerate(body) if k not in glue_idx and _mentions_glue(n)]
    if mixed:
        return src, "", f"glue inside other code (line {mixed[0]})"
    if not glue_idx:
        return src, "", None
    lines = src.split("\n")
    spans = [(body[k].lineno - 1, body[k].end_lineno) for k in glue_idx]
    for k, (a, b) in zip(glue_idx, spans):
        later = body[k + 1:]
        others = [n for n in body if n is not body[k] and not (n.end_lineno <= a or n.lineno > b)]
        if others:
            return src, "", f"a glue call shares a line with other code (line {a + 1})"
        stored_later = _names([n for n in later if not _is_glue(n)], ast.Store)
        if _names([body[k]], ast.Load) & stored_later:
            return src, "", f"the glue call on line {a + 1} reads a name that later code changes"
        if _names([body[k]], ast.Store) & _names([n for n in later if not _is_glue(n)], ast.Load):
            return src, "", f"the glue statement on line {a + 1} sets a name that later code reads"
    drop = {j for a, b in spans for j in range(a, b)}
    kept = "\n".join(l for j, l in enumerate(lines) if j not in drop).strip("\n")
    glued = "\n".join(l for j, l in enumerate(lines) if j in drop).strip("\n")
    rest = [n for k, n in enumerate(body) if k not in glue_idx]
    if kept and glue_idx[-1] == len(body) - 1 and rest and isinstance(rest[-1], ast.Expr):
        # The cell ended with a glue call (no output); keep its new last expression silent too.
        f = rest[-1].value.func if isinstance(rest[-1].value, ast.Call) else None
        if (getattr(f, "id", None) or getattr(f, "attr", None)) in SILENT_CALLS:
            return kept, glued, None
        if "#" in kept.rsplit("\n", 1)[-1]:
            return src, "", "removing the final glue call would make the cell display its last value"
        kept += ";"
    return kept, glued, None


def convert_glue(path, cells, report):
    out = []
    for cell in cells:
        out.append(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or "remove-cell" in tags or "glue(" not in text(cell):
            continue
        kept, glued, problem = split_glue(text(cell))
        if problem:
            report.append(f"SKIPPED {path.name}: cell {cell.get('id', '?')}: glue not moved: {problem}")
            continue
        if not glued:
            continue
        if not kept.strip():
            cell.setdefault("metadata", {}).setdefault("tags", []).append("remove-cell")
            report.append(f"GLUE {path.name}: cell {cell.get('id', '?')} only glues: tagged remove-cell")
            continue
        set_text(cell, kept)
        new = {"cell_type": "code", "execution_count": None, "metadata": {"tags": ["remove-cell"]},
               "outputs": [], "source": glued}
        if "id" in cell:
            new["id"] = f"{cell['id']}-glue"[:64]
        new["source"] = glued.splitlines(keepends=True) if isinstance(cell["source"], list) else glued
        out.append(new)
        report.append(f"GLUE {path.name}: moved {glued.count(chr(10)) + 1} line(s) of cell "
                      f"{cell.get('id', '?')} into a remove-cell cell")
    cells[:] = out


# ----------------------------------------------------------------------------- driver
def convert(path: Path, chapter_names: dict, report: list) -> str:
    original = path.read_text(encoding="utf-8")
    nb = json.loads(original)
    convert_captions(path, nb["cells"], report)
    convert_references(path, nb["cells"], chapter_names, report)
    convert_glue(path, nb["cells"], report)
    return dump_like(original, nb)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any would change")
    args = parser.parse_args(argv)
    # Figure names of every chapter beside the given notebooks, for cross-chapter references.
    chapter_names = {}
    for folder in {p.resolve().parent for p in args.notebooks}:
        for nb in folder.glob("[0-9]*_*.ipynb"):
            if chapter_number(nb) is not None:
                chapter_names[chapter_number(nb)] = figure_names(nb)
    changed = []
    for path in args.notebooks:
        report = []
        new = convert(path, chapter_names, report)
        if new != path.read_text(encoding="utf-8"):
            changed.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
        for line in report:
            print(line)
    verb = "would change" if args.check else "changed"
    print(f"{verb} {len(changed)} of {len(args.notebooks)} notebooks")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
