"""A tiny nbgrader course in a scratch folder, for the sandbox and parallel-grading tests.

One assignment (named like the course's first one, because ``course.autograde`` accepts only
the course's ids) with two graded parts of one point each: ``add(a, b)`` and ``part2()``.
Submissions differ only in the bodies of those two functions, so every test cell is the
instructor's; the hostile code of a sandbox test lives in ``part2``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

A = "a1_activation_derivatives"
CONFIG = """\
import os
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "scratch"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "gradebook.db")
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.Execute.timeout = 10
c.Execute.startup_timeout = 60
"""


def _cell(kind, source, **meta):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if meta:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "solution": False,
                                     "grade": False, **meta}
    return cell


def _answer(name, args, body):
    return f"def {name}({args}):\n    ### BEGIN SOLUTION\n{body}\n    ### END SOLUTION"


def source_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("markdown", "# Scratch assignment"),
        _cell("code", _answer("add", "a, b", "    return a + b"), solution=True, grade_id="add"),
        _cell("code", "assert add(2, 3) == 5", grade=True, locked=True, points=1, grade_id="test_add"),
        _cell("code", _answer("part2", "", '    return "ok"'), solution=True, grade_id="part2"),
        _cell("code", "### BEGIN HIDDEN TESTS\nassert part2() == 'ok'\n### END HIDDEN TESTS",
              grade=True, locked=True, points=1, grade_id="test_part2"),
    ]
    return nb


def build(root: Path) -> Path:
    """Write the scratch course at ``root`` and release it with nbgrader (fills the gradebook)."""
    from course.nbg import load_config, make_api, run

    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    src = root / "solutions" / A
    src.mkdir(parents=True)
    nbformat.write(source_notebook(), src / f"{A}.ipynb")
    run(make_api(root, load_config(root)).generate_assignment(A, force=True, create=True),
        "generate_assignment")
    return root


def submit(root: Path, student: str, add_body="    return a + b", part2_body='    return "ok"'):
    """Put a submission of ``student`` (the released notebook, answers filled) in submitted/."""
    nb = nbformat.read(root / "exercises" / A / f"{A}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "add":
            cell.source = f"def add(a, b):\n{add_body}"
        elif gid == "part2":
            cell.source = f"def part2():\n{part2_body}"
    dest = root / "submitted" / student / A
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest / f"{A}.ipynb")


def copy_course(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def scores(root: Path) -> dict[str, dict[str, float | None]]:
    """Per student, per grade cell auto score, read straight from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "scratch") as gb:
        for sub in gb.assignment_submissions(A):
            out[sub.student.id] = {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
    return out


def tree_digest(root: Path, skip=("autograded", "gradebook.db")) -> dict[str, str]:
    """sha256 (or the link target) of every file under ``root``, except the ``skip`` entries."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts and rel.parts[0] in skip:
            continue
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath) / name
            if not rel.parts and name.split("-")[0] in skip:
                continue
            out[str(rel / name)] = (f"link:{os.readlink(path)}" if path.is_symlink()
                                    else hashlib.sha256(path.read_bytes()).hexdigest())
        out[str(rel) + "/"] = "dir"
    return out
