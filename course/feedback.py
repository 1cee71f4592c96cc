"""``feedback``: per-student HTML feedback (``feedback/<student>/<assignment>/<id>.html``).

Uses nbgrader's ``generate_feedback`` with :class:`course.scrub.ScrubHiddenTests` (configured in
``nbgrader_config.py``), then double-checks every written file: no hidden-test marker may remain.
"""
from __future__ import annotations

from pathlib import Path

from . import ROOT
from .nbg import load_config, make_api, resolve_assignments
from .scrub import BEGIN


def autograded_pairs(root, assignments, students=None):
    root = Path(root)
    return [(a, d.parent.name) for a in assignments
            for d in sorted((root / "autograded").glob(f"*/{a}"))
            if d.is_dir() and (not students or d.parent.name in students)]


def feedback(assignments=None, students=None, *, root: Path | str = ROOT, progress: bool = True):
    """Generate feedback for every autograded submission; return the HTML files written."""
    root = Path(root).resolve()
    assignments = resolve_assignments(assignments)
    api = make_api(root, load_config(root))
    pairs = autograded_pairs(root, assignments, students)
    if progress:
        from tqdm.auto import tqdm
        pairs = tqdm(pairs, desc="feedback", unit="nb")
    written, failed = [], []
    for a, s in pairs:
        res = api.generate_feedback(a, s, force=True)
        if not res.get("success"):
            failed.append((a, s, res.get("log", "") + res.get("error", "")))
            continue
        for html in sorted((root / "feedback" / s / a).glob("*.html")):
            text = html.read_text(encoding="utf-8")
            if BEGIN in text or "HIDDEN TESTS" in text:
                html.unlink()
                raise RuntimeError(f"{html} still contains hidden tests; deleted it")
            written.append(html)
    if failed:
        msg = "\n".join(f"{a} {s}:\n{log}" for a, s, log in failed)
        raise RuntimeError(f"generate_feedback failed for {len(failed)} submission(s):\n{msg}")
    return written
