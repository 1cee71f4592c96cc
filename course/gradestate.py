"""What autograde knows about each submission, kept so that no grade is ever silently wrong.

* **State** (``gradebook.db-grading.json`` beside the gradebook): written only *after* nbgrader
  finished a submission, with the digest of the submitted files it graded and ``graded`` or
  ``failed`` (and the one-line reason). It is deleted *before* a submission is graded, so a run
  that is interrupted (Ctrl-C, SIGKILL, reboot) leaves no state, and the next run grades that
  submission again; its half-written grades (NULL in the gradebook) are never read as a score.
  A submission is graded when it has no ``graded`` state or its files changed since
  (:func:`needs_grading`): a resubmission collected after grading is graded again.
* **Locks** (``gradebook.db-lock``, ``gradebook.db-busy``): one for creating the gradebook (two
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


STATE = "gradebook.db-grading.json"    # beside the gradebook, in the course folder
MUTEX = "gradebook.db-lock"            # flock: creating the gradebook, writing STATE
BUSY = "gradebook.db-busy"             # one lockf byte per submission being graded


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


def _load(root) -> dict:
    try:
        return json.loads((Path(root) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_state(root, assignment: str, student: str) -> dict | None:
    return _load(root).get(f"{assignment}/{student}")


def _update(root, key: str, value: dict | None) -> None:
    """Change one entry of the state file: under the mutex, written whole and renamed."""
    path = Path(root) / STATE
    with lock(root, "gradebook"):
        states = _load(root)
        if value is None:
            if states.pop(key, None) is None:
                return
        else:
            states[key] = value
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(states, ensure_ascii=False, indent=0), encoding="utf-8")
        os.replace(tmp, path)


def write_state(root, assignment: str, student: str, status: str, digest_: str, reason: str = ""):
    """Record the outcome of grading ``digest_`` (atomically)."""
    _update(root, f"{assignment}/{student}", {"status": status, "digest": digest_,
                                              "reason": reason, "time": time.time()})


def clear_state(root, assignment: str, student: str) -> None:
    _update(root, f"{assignment}/{student}", None)


def needs_grading(root, assignment: str, student: str) -> bool:
    """True unless the last complete grading was of exactly the files submitted now."""
    st = read_state(root, assignment, student)
    return not (st and st.get("status") == "graded"
                and st.get("digest") == digest(root, assignment, student)
                and (Path(root) / "autograded" / student / assignment).is_dir())


@contextlib.contextmanager
def lock(root, name: str, wait: bool = True):
    """``name == "gradebook"``: an exclusive ``flock`` on ``gradebook.db-lock`` (creating the
    gradebook, writing the state). Any other name (a submission): an exclusive ``lockf`` on one
    byte of ``gradebook.db-busy`` chosen by the name's hash; yields False if ``wait`` is off and
    another process holds it. Never nest two of these in one process (closing a file drops a
    process's ``lockf`` locks on it)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    whole = name == "gradebook"
    fd = os.open(Path(root) / (MUTEX if whole else BUSY), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            if whole:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            else:
                offset = int.from_bytes(hashlib.sha256(name.encode()).digest()[:5], "big")
                fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, offset)
        except (BlockingIOError, PermissionError):
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
