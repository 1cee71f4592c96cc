"""What autograde knows about each submission, kept so that no grade is ever silently wrong.

* **State** (``.grading/state/<assignment>/<student>.json`` in the course folder): written only *after* nbgrader
  finished a submission, with the digest of the submitted files it graded and ``graded`` or
  ``failed`` (and the one-line reason). It is deleted *before* a submission is graded, so a run
  that is interrupted (Ctrl-C, SIGKILL, reboot) leaves no state, and the next run grades that
  submission again; its half-written grades (NULL in the gradebook) are never read as a score.
  A submission is graded when it has no ``graded`` state or its files changed since
  (:func:`needs_grading`): a resubmission collected after grading is graded again.
* **Locks** (``.grading/locks/``, ``fcntl.flock``): one for creating the gradebook (two
  commands started at once on a fresh course), one per submission (two runs never grade the
  same submission at once; the second skips it and says so). The kernel drops a lock when its
  holder dies, however it dies.
* **Reasons**: :func:`precheck` and :func:`reason_from_log` turn a failure into one line naming
  the file and what is wrong with it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from pathlib import Path

STAMP = "timestamp.txt"


def state_path(root, assignment: str, student: str) -> Path:
    return Path(root) / ".grading" / "state" / assignment / f"{student}.json"


def submitted_dir(root, assignment: str, student: str) -> Path:
    return Path(root) / "submitted" / student / assignment


def digest(root, assignment: str, student: str) -> str:
    """sha256 over the names and contents of the submitted files (``timestamp.txt`` excluded:
    collecting the same file again changes nothing)."""
    h = hashlib.sha256()
    folder = submitted_dir(root, assignment, student)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != STAMP):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def read_state(root, assignment: str, student: str) -> dict | None:
    try:
        return json.loads(state_path(root, assignment, student).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_state(root, assignment: str, student: str, status: str, digest_: str, reason: str = ""):
    """Atomically record the outcome of grading ``digest_``."""
    path = state_path(root, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"status": status, "digest": digest_, "reason": reason,
                               "time": time.time()}), encoding="utf-8")
    os.replace(tmp, path)


def clear_state(root, assignment: str, student: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(root, assignment, student).unlink()


def needs_grading(root, assignment: str, student: str) -> bool:
    """True unless the last complete grading was of exactly the files submitted now."""
    st = read_state(root, assignment, student)
    return not (st and st.get("status") == "graded"
                and st.get("digest") == digest(root, assignment, student)
                and (Path(root) / "autograded" / student / assignment).is_dir())


@contextlib.contextmanager
def lock(root, name: str, wait: bool = True):
    """An exclusive ``flock`` on ``.grading/locks/<name>.lock``; yields False if ``wait`` is
    off and another process holds it."""
    folder = Path(root) / ".grading" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)   # releases the lock


# --- one-line reasons -------------------------------------------------------------------------
STRIPPED = ("its cells have no nbgrader metadata (cell metadata stripped by an editor?); ask the "
            "student to paste their answers into a fresh copy of the released notebook and "
            "resubmit, then collect and autograde again")


def precheck(root, assignment: str, student: str, grade_ids: set[str]) -> str | None:
    """Why the submission cannot be graded, in one line naming the file, or None.

    ``grade_ids``: the assignment's graded cell ids (from the gradebook)."""
    folder = submitted_dir(root, assignment, student)
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return f"{folder}: no notebook submitted"
    for path in notebooks:
        rel = path.relative_to(root)
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            return f"{rel}: not a notebook (not UTF-8 text)"
        except ValueError as exc:
            return f"{rel}: not a notebook (not JSON: {exc})"
        except OSError as exc:
            return f"{rel}: cannot be read ({exc.strerror or exc})"
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            return f"{rel}: not a notebook (JSON without a list of cells)"
        ids = {(c.get("metadata") or {}).get("nbgrader", {}).get("grade_id")
               for c in cells if isinstance(c, dict)} - {None}
        if not ids:
            return f"{rel}: {STRIPPED}"
        if grade_ids and not ids & grade_ids:
            return (f"{rel}: notebook of another assignment (none of its graded cells belong to "
                    f"{assignment}; ids like {', '.join(sorted(ids)[:3])}); collect the right file")
    return None


_OS_ERRORS = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system",
              errno.EACCES: "permission denied", errno.EDQUOT: "disk quota exceeded"}


def reason_from_log(log: str, where: str) -> str:
    """The one line that says why nbgrader failed on ``where`` (from its log)."""
    for code, what in _OS_ERRORS.items():
        if f"[Errno {code}]" in log or os.strerror(code) in log:
            m = re.search(rf"\[Errno {code}\][^\n]*", log)
            return f"{where}: {what} ({m.group(0) if m else os.strerror(code)})"
    if "database is locked" in log:
        return f"{where}: the gradebook stayed locked by another process; run autograde again"
    errors = re.findall(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Died|Timeout)\b[^\n]*)", log, re.M)
    if errors:
        return f"{where}: {errors[-1].strip()[:300]}"
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return f"{where}: {lines[-1][:300] if lines else 'nbgrader failed without a message'}"
