"""``check``: the students' self-check. Runs nbgrader's Validator and exits non-zero on failure.

``nbgrader validate`` always exits 0; this wrapper prints the same report but returns 1 if any
visible test fails, errors or times out, so scripts and students get a clear pass/fail.
"""
from __future__ import annotations

import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def validate(path: Path | str, timeout: int = 60) -> dict:
    """Run every cell of the notebook at ``path``; return nbgrader's result dict ({} = all passed)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    cfg = Config()
    cfg.Execute.timeout = timeout
    return Validator(config=cfg).validate(str(path))


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
        if result:
            status = 1
            print(f"FAIL {path}:\n{describe(result)}")
        else:
            print(f"PASS {path}: every visible test passes. (Hidden tests run only at grading.)")
    return status
