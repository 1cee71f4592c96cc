"""``check``: the students' self-check. Runs the notebook as grading will, exits non-zero on failure.

The notebook runs in two processes exactly as at grading (``course.twoproc``): the student's
cells in a student process that can import only the standard library, NumPy and matplotlib
(in the bubblewrap sandbox where it is installed), the test cells beside it. So a student sees
what grading will see for the visible tests; hidden tests exist only in the instructor's copy.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def checksum(cell) -> str:
    """nbgrader's checksum of a graded cell (``nbgrader.utils.compute_checksum``, whose import
    alone takes over a second): md5 of the source, type, grade/solution/locked flags, id and
    points. ``tests/test_course_cli.py`` checks it agrees with nbgrader's."""
    meta = cell.metadata.get("nbgrader", {})
    grade, solution = bool(meta.get("grade")), bool(meta.get("solution"))
    locked = False if solution else True if grade else bool(meta.get("locked"))
    parts = [cell.source, cell.cell_type, str(grade), str(solution), str(locked), meta["grade_id"]]
    if meta.get("grade"):
        parts.append(str(float(meta["points"])))
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest()


def validate(path: Path | str, timeout: int = 60, sandbox: bool | None = None,
             printed: list | None = None) -> dict:
    """Run every cell of the notebook at ``path``; ``{}`` if every test passed, else
    ``{"failed": [...], "changed": [...]}`` (nbgrader Validator's format: ``source``, ``raw_error``).
    ``printed``, if given, receives ``(first line, text)`` for each test cell that printed."""
    from .sandbox import check_available
    from .twoproc import run_notebook, to_node

    path = Path(path)
    nb = to_node(json.loads(path.read_text(encoding="utf-8")))   # nbformat costs a second
    for cell in nb.cells:
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
    changed = [{"source": c.source} for c in nb.cells if is_test(c)
               and "checksum" in c.metadata.nbgrader and c.metadata.nbgrader.checksum != checksum(c)]
    if sandbox is None:
        sandbox = check_available()[0]
    res = run_notebook(nb, is_test, files_from=path.parent, timeout=timeout, sandbox=sandbox)
    failed = []
    for cell in (c for c in nb.cells if printed is not None and is_test(c)):
        text = "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream")
        if text.strip():
            printed.append((cell.source.strip().splitlines()[0], text))
    for i in res["failed"]:
        err = next(o for o in nb.cells[i].outputs if o.output_type == "error")
        failed.append({"source": nb.cells[i].source, "raw_error": "\n".join(err.traceback),
                       "error": f"{err.ename}: {err.evalue}"})
    out = {}
    if failed:
        out["failed"] = failed
    if changed:
        out["changed"] = changed
    return out


def describe(result: dict) -> str:
    """Each failing test cell: its first line and its whole message (the assertion helpers'
    messages name the call, expected vs got, and a hint); other errors: the traceback's end."""
    lines = []
    for kind, cells in result.items():
        if kind not in ("failed", "changed", "type_changed"):
            continue
        for cell in cells:
            source = cell.get("source", "").strip().splitlines()
            head = source[0] if source else ""
            label = {"changed": "test cell modified (grading restores the original)",
                     "type_changed": "cell type changed"}.get(kind, "FAIL")
            lines.append(f"\n[{label}] {head}")
            if kind != "failed":
                continue
            err = [e for e in _ANSI.sub("", cell.get("raw_error", "")).splitlines() if e.strip()]
            if cell.get("error", "").startswith("AssertionError: "):
                body = cell["error"][len("AssertionError: "):].splitlines()
                lines += ["    " + e for e in body]
                continue
            start = max((i for i, e in enumerate(err) if re.match(r"^\w*(Error|Exception|Used)\b", e)),
                        default=max(0, len(err) - 1))
            lines += ["    " + e[:300] for e in err[max(0, start - 4):start + 12]]
    return "\n".join(lines)


def score(path: Path | str, result: dict) -> tuple[float, float]:
    """(points of the visible tests that pass, points of all test cells) for a checked notebook."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    failed = {c["source"] for c in result.get("failed", [])}
    total = got = 0.0
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution"):
            pts = float(meta.get("points", 0))
            total += pts
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            got += 0 if src in failed else pts
    return got, total


def _pts(x: float) -> str:
    return f"{x:g}"


def check(paths, timeout: int = 60) -> int:
    """Validate each notebook; print every failure in full, PASS/FAIL and a score line per
    notebook; return the process exit code."""
    status = 0
    for path in paths:
        path = Path(path)
        if not path.exists():
            print(f"FAIL {path}: no such file")
            status = 1
            continue
        print(f"Running every cell of {path} ...", flush=True)
        printed = []
        result = validate(path, timeout, printed=printed)
        for head, text in printed:
            print(f"\n[printed by the test] {head}\n" + "\n".join("    " + t for t in text.rstrip().splitlines()))
        got, total = score(path, result)
        if result.get("failed"):
            status = 1
            print(describe(result))
            print(f"\nFAIL {path}: {len(result['failed'])} test cell(s) fail; each message above "
                  "names the call, expected vs got, and a hint.")
        else:
            if result:
                print(describe(result))
            print(f"PASS {path}: every visible test passes.")
        print(f"visible tests: {_pts(got)}/{_pts(total)} points (hidden tests run at grading; "
              "answers graded by hand are not counted here)")
    return status


def copy_assignment(assignment: str, dest: Path | str) -> Path:
    """Copy the released notebook of ``assignment`` (e.g. ``a1``) to ``dest`` (a folder or a
    ``.ipynb`` path) for the student to work on; never overwrites."""
    import shutil

    from . import ASSIGNMENTS, ROOT
    matches = [a for a in ASSIGNMENTS if a == assignment or a.split("_")[0] == assignment]
    if len(matches) != 1:
        raise SystemExit(f"course-check --copy: unknown assignment {assignment!r}; one of "
                         f"{', '.join(a.split('_')[0] for a in ASSIGNMENTS)}")
    a = matches[0]
    src = ROOT / "exercises" / a / f"{a}.ipynb"
    dest = Path(dest)
    target = dest if dest.suffix == ".ipynb" else dest / src.name
    if target.exists():
        raise SystemExit(f"course-check --copy: {target} exists; not overwriting your work")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target


def main(argv=None) -> int:
    """``course-check NOTEBOOK ...`` (from any folder) and ``course-check --copy a1 DEST``."""
    import argparse

    p = argparse.ArgumentParser(prog="course-check", description=(
        "Run a notebook as grading will (visible tests only) and print every failure and a "
        "score line. Exit code 1 if a test fails."))
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    p.add_argument("--copy", nargs=2, metavar=("ASSIGNMENT", "DEST"),
                   help="copy the released notebook (e.g. a1) to DEST, a folder outside exercises/, "
                        "to work on it there")
    args = p.parse_args(argv)
    if args.copy:
        target = copy_assignment(*args.copy)
        print(f"copied to {target}; open it in JupyterLab and check it with: course-check {target}")
        return 0
    if not args.notebooks:
        p.error("give a notebook to check (or --copy ASSIGNMENT DEST)")
    return check(args.notebooks, args.timeout)
