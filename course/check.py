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
    lines = []
    for kind, cells in result.items():
        for cell in cells:
            source = cell.get("source", "").strip().splitlines()
            head = source[0] if source else ""
            err = _ANSI.sub("", cell.get("raw_error", "")).strip().splitlines()
            label = {"changed": "test cell modified (grading restores it)",
                     "type_changed": "cell type changed"}.get(kind, kind)
            lines.append(f"  [{label}] {head}")
            if err:
                lines.append(f"      {err[-1][:300]}")
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
