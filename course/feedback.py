"""``feedback``: per-student HTML feedback (``feedback/<student>/<assignment>/<id>.html``).

Uses nbgrader's ``generate_feedback`` with :class:`course.scrub.ScrubHiddenTests` (configured in
``nbgrader_config.py``), then checks every written file by content: if any line of a hidden test
(from the instructor's source) is still in its text, the file is deleted and that student is
reported. Only the HTML stays in ``feedback/`` (nbgrader would also copy every other file of the
graded folder). A problem with one student's feedback never stops the others'.

A submission autograde could not grade (``course.gradestate``: not JSON, cell metadata
stripped, another assignment's notebook ...) gets a short page saying so, why, and what to do.
"""
from __future__ import annotations

import html as _html
import re
import shutil
from pathlib import Path

from . import ROOT
from .nbg import load_config, make_api, resolve_assignments
from .scrub import BEGIN, hidden_lines


def autograded_pairs(root, assignments, students=None):
    root = Path(root)
    return [(a, d.parent.name) for a in assignments
            for d in sorted((root / "autograded").glob(f"*/{a}"))
            if d.is_dir() and (not students or d.parent.name in students)]


def secret_lines(root: Path, assignment: str) -> set[str]:
    """Every line of a hidden-test region of the assignment's source notebooks."""
    import nbformat

    out = set()
    for path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        out |= hidden_lines(c.source for c in nb.cells if BEGIN in c.source)
    return out


def html_text(path: Path) -> str:
    """The text a reader sees (tags removed, entities decoded), plus the raw file."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    return raw + "\n" + _html.unescape(re.sub(r"<[^>]+>", "", raw))


def leaks(path: Path, secret: set[str]) -> list[str]:
    text = html_text(path)
    return [line for line in secret if line in text or _html.escape(line) in text]


def feedback(assignments=None, students=None, *, root: Path | str = ROOT, progress: bool = True):
    """Generate feedback for every autograded submission.

    Returns ``(written, failed)``: the HTML files written, and ``(assignment, student, reason)``
    for each submission whose feedback could not be made or was withheld.
    """
    root = Path(root).resolve()
    assignments = resolve_assignments(assignments)
    api = make_api(root, load_config(root))
    ungradable = not_gradable(root, assignments, students)
    pairs = [p for p in autograded_pairs(root, assignments, students) if p not in ungradable]
    secrets = {a: secret_lines(root, a) for a in assignments}
    if progress:
        from tqdm.auto import tqdm
        pairs = tqdm(pairs, desc="feedback", unit="nb")
    written, failed = [], []
    for (a, s), reason in sorted(ungradable.items()):
        written.append(write_not_gradable(root, a, s, reason))
    for a, s in pairs:
        folder = root / "feedback" / s / a
        try:
            res = api.generate_feedback(a, s, force=True)
            if not res.get("success"):
                raise RuntimeError(res.get("log", "") + res.get("error", ""))
            for path in sorted(folder.rglob("*"), reverse=True):   # only the HTML stays
                if path.is_dir() and not path.is_symlink():
                    if not any(path.iterdir()):
                        path.rmdir()
                elif path.suffix != ".html" or path.is_symlink() or path.parent != folder:
                    path.unlink()
            htmls = sorted(folder.glob("*.html"))
            for html in htmls:
                found = leaks(html, secrets[a])
                if found:
                    html.unlink()
                    raise RuntimeError(f"{html.name} contained {len(found)} hidden-test line(s); "
                                       "deleted it")
            written += htmls
        except Exception as exc:      # reported for this student; the others go on
            failed.append((a, s, str(exc)[-2000:] or type(exc).__name__))
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
    return written, failed


def not_gradable(root: Path, assignments, students=None) -> dict:
    """{(assignment, student): reason} of the submissions autograde could not grade (as they
    are now in ``submitted/``)."""
    from . import gradestate as gs

    out = {}
    for a in assignments:
        for d in sorted((root / "submitted").glob(f"*/{a}")):
            s = d.parent.name
            if students and s not in students:
                continue
            st = gs.read_state(root, a, s)
            if st and st.get("status") == "failed" and st.get("digest") == gs.digest(root, a, s):
                out[a, s] = st.get("reason", "")
    return out


def write_not_gradable(root: Path, assignment: str, student: str, reason: str) -> Path:
    """``feedback/<student>/<assignment>/<assignment>.html``: why it could not be graded."""
    folder = root / "feedback" / student / assignment
    if folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    why = reason.split(": ", 1)[-1] if reason.startswith("submitted/") else reason
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_html.escape(assignment)}: not graded</title></head><body>\n"
            f"<h1>{_html.escape(assignment)}: your submission could not be graded</h1>\n"
            f"<p><strong>Why:</strong> {_html.escape(why)}</p>\n"
            "<p><strong>What to do:</strong> download a fresh copy of the assignment, paste your "
            "answers into its answer cells (do not change the other cells or their metadata), "
            "run <code>python -m course check</code> on it, and submit it again. Ask your "
            "instructor if the deadline has passed.</p>\n</body></html>\n")
    path = folder / f"{assignment}.html"
    path.write_text(page, encoding="utf-8")
    return path
