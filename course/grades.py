"""``grades``: export the gradebook to CSV files and plot the score distribution per question.

* ``grades.csv``: nbgrader's own export (one row per student and assignment).
* ``grades_by_question.csv``: one row per student, assignment and graded test cell.
* ``grades.png``: for every question, each student's score as a fraction of its points.
"""
from __future__ import annotations

import csv
from pathlib import Path

from . import ROOT
from .nbg import gradebook, load_config


def question_scores(root: Path | str = ROOT) -> list[dict]:
    """One dict per (assignment, student, question) with score and max_score, from the gradebook."""
    rows = []
    with gradebook(root) as gb:
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            for sub in sorted(assignment.submissions, key=lambda s: s.student_id):
                for nb in sub.notebooks:
                    for g in nb.grades:
                        rows.append({"assignment": assignment.name, "student": sub.student_id,
                                     "notebook": nb.name, "question": g.name,
                                     "score": g.score, "max_score": g.max_score})
    return rows


def export(root: Path | str = ROOT, csv_path=None, by_question_path=None, figure_path=None):
    """Write the three files (defaults: grades.csv, grades_by_question.csv, grades.png in root)."""
    root = Path(root).resolve()
    csv_path = Path(csv_path or root / "grades.csv")
    by_question_path = Path(by_question_path or root / "grades_by_question.csv")
    figure_path = Path(figure_path or root / "grades.png")
    cfg = load_config(root)
    cfg.ExportApp.plugin_class = "nbgrader.plugins.export.CsvExportPlugin"
    cfg.CsvExportPlugin.to = str(csv_path)
    _export_csv(root, cfg)
    rows = question_scores(root)
    with open(by_question_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["assignment", "student", "notebook", "question", "score", "max_score"])
        w.writeheader()
        w.writerows(rows)
    plot_questions(rows, figure_path)
    return csv_path, by_question_path, figure_path


def _export_csv(root, cfg):
    from nbgrader.plugins.export import CsvExportPlugin

    plugin = CsvExportPlugin(config=cfg)
    with gradebook(root, cfg) as gb:
        plugin.export(gb)


def plot_questions(rows, path) -> None:
    """Strip plot: one column per question, one dot per student (score / points), mean marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from actgrad.plotting import COLORS as colors  # the course's one palette
    keys = sorted({(r["assignment"], r["question"]) for r in rows})
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(keys) + 2), 4), constrained_layout=True)
    rng = np.random.default_rng(0)
    assignments = sorted({k[0] for k in keys})
    for i, key in enumerate(keys):
        frac = [r["score"] / r["max_score"] for r in rows
                if (r["assignment"], r["question"]) == key and r["max_score"]]
        color = colors[assignments.index(key[0]) % len(colors)]
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(frac)), frac, s=18, alpha=0.7, color=color)
        if frac:
            ax.hlines(np.mean(frac), i - 0.3, i + 0.3, color="black", lw=1.5)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{a.split('_')[0]}:{q}" for a, q in keys], rotation=60, ha="right",
                       fontsize=8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("score / points (each dot a student; bar = mean)")
    ax.set_xlabel("question (assignment:test cell)")
    ax.set_title("Score distribution per question")
    fig.savefig(path, dpi=120)
    plt.close(fig)
