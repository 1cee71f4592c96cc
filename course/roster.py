"""``roster``: import students' names and emails into the gradebook (formgrader and ``grades``
show them).

The CSV needs a column ``id`` (or ``student_id``, ``username``); ``first_name``,
``last_name`` and ``email`` are optional (header names are case-insensitive). Ids are
normalized exactly as ``collect`` normalizes them (``course.collect.normalize_id``), so a roster
row and a collected submission name the same student. A row with an id that is not allowed is
named and skipped; the others are imported.
"""
from __future__ import annotations

import csv
from pathlib import Path

from . import ROOT
from .collect import normalize_id
from .gradestate import lock
from .nbg import gradebook

ID_COLUMNS = ("id", "student_id", "username")


def import_roster(path: Path | str, root: Path | str = ROOT, warn=print) -> list[str]:
    """Create or update one gradebook student per row of ``path``; returns the ids imported."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"roster: {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()}
                for r in csv.DictReader(fh)]
    if rows and not any(c in rows[0] for c in ID_COLUMNS):
        raise SystemExit(f"roster: {path} has no id column (one of {', '.join(ID_COLUMNS)})")
    done = []
    with lock(root, "gradebook"), gradebook(root) as gb:
        for n, row in enumerate(rows, 2):
            raw = next((row[c] for c in ID_COLUMNS if row.get(c)), "")
            sid = normalize_id(raw)
            if sid is None:
                warn(f"skipped {path.name} line {n}: student id {raw!r} is not allowed")
                continue
            gb.update_or_create_student(sid, first_name=row.get("first_name") or None,
                                        last_name=row.get("last_name") or None,
                                        email=row.get("email") or None)
            done.append(sid)
    return done
