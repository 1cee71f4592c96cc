"""``grades``: export the gradebook to CSV files an LMS can import, and a figure.

* ``grades.csv``: one row per student (name and email from the gradebook's roster), one score
  column per assignment that anyone submitted, ``score`` (the total) and ``max_score``. A blank
  score is never a zero: the column ``<assignment> status`` says ``graded``, ``missing`` (nothing
  collected), ``not gradable: <file>: <reason>`` (autograde could not grade it) or ``not graded
  yet`` (collected or resubmitted after the last autograde, or an interrupted run). The total is
  blank unless every assignment is graded or missing (missing counts 0); ``status`` sums up.
* ``grades_by_question.csv``: one row per graded student, assignment and graded cell.
* ``grades.png``: per assignment, the distribution of total scores, and per question (in
  notebook order) the fraction of graded students who got its full points.

Scores are nbgrader's: a manual score given in formgrader replaces the automatic one.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from . import ROOT
from . import gradestate as gs
from .autograde import is_test, unfinished
from .nbg import gradebook


def notebook_order(root: Path, assignment: str) -> list[str]:
    """Graded cell ids of ``assignment`` in the order of its source notebook(s)."""
    out = []
    for path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                out.append(meta["grade_id"])
    return out


def table(root: Path | str = ROOT):
    """``(students, assignments, cells, questions)``: students {id: (first, last, email)},
    assignments in course order, cells {(assignment, student): (score, max, status)}, and the
    per-question rows of graded submissions."""
    from nbgrader.api import MissingEntry

    from . import ASSIGNMENTS
    root = Path(root).resolve()
    submitted = {(d.name, d.parent.name) for d in (root / "submitted").glob("*/*")
                 if d.is_dir() and any(d.glob("*.ipynb"))}
    cells, questions, students = {}, [], {}
    with gradebook(root) as gb:
        for st in gb.students:
            students[st.id] = (st.first_name or "", st.last_name or "", st.email or "")
        maxima = {}
        for a in gb.assignments:
            maxima[a.name] = a.max_score
        in_db = {(sub.assignment.name, sub.student_id) for a in gb.assignments
                 for sub in a.submissions}
        for a, s in sorted(submitted | in_db):
            students.setdefault(s, ("", "", ""))
            state = gs.read_state(root, a, s)
            sub = None
            try:
                sub = gb.find_submission(a, s)
            except MissingEntry:
                pass
            grades = [g for nb in sub.notebooks for g in nb.grades] if sub else []
            complete = bool(grades) and not any(unfinished(g) for g in grades)
            by_hand = sum(g.max_score for g in grades if not is_test(g)
                          and g.manual_score is None)
            if (a, s) in submitted:   # the state must be of exactly the files there now
                if not (state and state.get("digest") == gs.digest(root, a, s)):
                    state = {"status": "stale"}
            else:
                state = {"status": "graded"}
            if state.get("status") == "failed":
                cells[a, s] = (None, maxima.get(a), f"not gradable: {state.get('reason', '')}")
            elif complete and state.get("status") == "graded":
                cells[a, s] = (sub.score, sub.max_score, "graded" if not by_hand else
                               f"graded ({by_hand:g} points still to grade by hand)")
                order = {g: i for i, g in enumerate(notebook_order(root, a))}
                for g in sorted(grades, key=lambda g: order.get(g.name, len(order))):
                    questions.append({"assignment": a, "student": s, "notebook": g.notebook.name,
                                      "question": g.name, "score": g.score,
                                      "max_score": g.max_score,   # pending: to grade by hand
                                      "pending": not is_test(g) and g.manual_score is None})
            else:
                cells[a, s] = (None, maxima.get(a), "not graded yet (run autograde)")
    used = {a for a, _ in cells}
    assignments = [a for a in ASSIGNMENTS if a in used] + sorted(used - set(ASSIGNMENTS))
    for a in assignments:
        for s in students:
            cells.setdefault((a, s), (None, maxima.get(a), "missing"))
    return students, assignments, cells, questions


def export(root: Path | str = ROOT, csv_path=None, by_question_path=None, figure_path=None):
    """Write the three files (defaults: grades.csv, grades_by_question.csv, grades.png in root)."""
    root = Path(root).resolve()
    csv_path = Path(csv_path or root / "grades.csv")
    by_question_path = Path(by_question_path or root / "grades_by_question.csv")
    figure_path = Path(figure_path or root / "grades.png")
    students, assignments, cells, questions = table(root)
    head = ["student_id", "first_name", "last_name", "email", *assignments, "score", "max_score",
            "status", *[f"{a} status" for a in assignments]]
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for s in sorted(students):
            cells_of = [cells[a, s] for a in assignments]
            scores = [c[0] for c in cells_of]
            statuses = [c[2] for c in cells_of]
            known = all(st.startswith(("graded", "missing")) for st in statuses)
            total = sum(x or 0 for x in scores) if known else None
            maximum = sum(c[1] or 0 for c in cells_of)
            problems = "; ".join(f"{a.split('_')[0]}: {st}" for a, st in zip(assignments, statuses)
                                 if st != "graded")
            row = [s, *students[s], *[_num(x) for x in scores], _num(total), _num(maximum),
                   problems or "graded", *statuses]
            w.writerow(row)
    with open(by_question_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["assignment", "student", "notebook", "question", "score", "max_score"],
                           extrasaction="ignore")
        w.writeheader()
        w.writerows(questions)
    plot(root, assignments, cells, questions, figure_path)
    return csv_path, by_question_path, figure_path


def _num(x) -> str:
    return "" if x is None else f"{x:g}"


def plot(root, assignments, cells, questions, path) -> None:
    """Left: histogram of total scores per assignment (graded submissions; the count of missing
    and not gradable ones in the title). Right: pass rate (full points) per question, in
    notebook order, as horizontal bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from actgrad.plotting import COLORS, FIG_WIDTH, style

    with style():
        n = max(1, len(assignments))
        qcount = max(1, max((len(notebook_order(root, a)) for a in assignments), default=1))
        height = max(2.6, 0.28 * qcount + 1.2)
        fig, axes = plt.subplots(n, 2, figsize=(FIG_WIDTH, height * n), squeeze=False,
                                 layout="constrained", gridspec_kw={"width_ratios": [1, 1.2]})
        for i, a in enumerate(assignments):
            color = COLORS[i % len(COLORS)]
            ax = axes[i, 0]
            vals = [c[0] for (aa, _), c in cells.items() if aa == a and c[2].startswith("graded")]
            top = max((c[1] or 0) for (aa, _), c in cells.items() if aa == a) or 1
            # one bar per whole score (fractional scores fall into the nearest)
            bins = np.arange(np.ceil(top) + 2) - 0.5 if top <= 40 else 20
            counts, _, bars = ax.hist(vals, bins=bins, color=color, edgecolor="white")
            ax.bar_label(bars, labels=[f"{c:g}" if c else "" for c in counts], fontsize=11)
            missing = sum(1 for (aa, _), c in cells.items() if aa == a and c[2] == "missing")
            bad = sum(1 for (aa, _), c in cells.items() if aa == a and c[2].startswith("not"))
            ax.set_title(f"{a.split('_')[0]}: {len(vals)} graded, {missing} missing, "
                         f"{bad} not (yet) gradable", fontsize=11, loc="left")
            ax.set_xlabel(f"total score (of {top:g})")
            ax.set_ylabel("students")
            ax.set_xlim(-0.5, top + 0.5)
            ax.margins(y=0.15)
            ax = axes[i, 1]
            order = notebook_order(root, a)
            rows = [q for q in questions if q["assignment"] == a]
            rates = []
            for g in order:
                got = [q["score"] >= q["max_score"] for q in rows if q["question"] == g
                       and q["max_score"] and not q["pending"]]
                rates.append(np.mean(got) if got else np.nan)
            y = np.arange(len(order))
            bars = ax.barh(y, np.nan_to_num(rates), color=color)
            ax.bar_label(bars, labels=["no scores yet (by hand?)" if np.isnan(r) else f"{r:.0%}"
                                       for r in rates], fontsize=11, padding=2)
            ax.set_yticks(y, order)
            ax.invert_yaxis()      # notebook order top to bottom
            ax.set_xlim(0, 1.15)
            ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
            ax.set_xlabel("fraction with full points")
            ax.set_title(f"{a.split('_')[0]}: questions in notebook order", fontsize=11, loc="left")
        fig.savefig(path)
        plt.close(fig)
