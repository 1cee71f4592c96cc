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


def validate(path: Path | str, timeout: int = 60, sandbox: bool | None = None) -> dict:
    """Run every cell of the notebook at ``path``; ``{}`` if every test passed, else
    ``{"failed": [...], "changed": [...]}`` (nbgrader Validator's format: ``source``, ``raw_error``)."""
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
    """Human summary: each failing test cell's first line and the end of its error."""
    lines = []
    for kind, cells in result.items():
        for cell in cells:
            source = cell.get("source", "").strip().splitlines()
            head = source[0] if source else ""
            label = {"changed": "test cell modified (grading restores the original)",
                     "type_changed": "cell type changed"}.get(kind, kind)
            lines.append(f"  [{label}] {head}")
            err = [e for e in _ANSI.sub("", cell.get("raw_error", "")).splitlines() if e.strip()]
            start = max((i for i, e in enumerate(err) if re.match(r"^\w*(Error|Exception|Used)\b", e)),
                        default=max(0, len(err) - 1))
            for e in err[start:start + 6]:
                lines.append(f"      {e[:200]}")
    return "\n".join(lines)


def check(paths, timeout: int = 60) -> int:
    """Validate each notebook; print PASS/FAIL per notebook; return the process exit code."""
    status = 0
    for path in paths:
        path = Path(path)
        if not path.exists():
            print(f"FAIL {path}: no such file")
            status = 1
            continue
        print(f"Running every cell of {path} ...", flush=True)
        result = validate(path, timeout)
        if result.get("failed"):
            status = 1
            print(f"FAIL {path}:\n{describe(result)}")
        else:
            if result:
                print(describe(result))
            print(f"PASS {path}: every visible test passes. (Hidden tests run only at grading.)")
    return status
