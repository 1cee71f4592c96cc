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
import sys
sys.path.insert(0, %r)
from course.scrub import ScrubHiddenTests
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades
c.GenerateFeedback.preprocessors = [ScrubHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
""" % str(ROOT)


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


# Planted in the canary course's hidden tests and solution: no student may ever see them.
CANARY_HIDDEN = "CANARY-HIDDEN-4f2a"
CANARY_HIDDEN_NAME = "canary_hidden_marker_4f2a"
CANARY_SOLUTION = "CANARY-SOLUTION-9d3b"


def canary_notebook():
    """Two questions, ``square(x)`` (1 point) and ``double(x)`` (2 points), whose hidden tests
    and solution hold canary strings; the hidden test of ``double`` checks exact types and
    values with NumPy's testing functions and the builtins a hostile answer may try to bend."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    hidden_double = (
        "import numpy as np\n"
        "np.testing.assert_allclose(double(np.arange(3.0)), [0.0, 2.0, 4.0])\n"
        "### BEGIN HIDDEN TESTS\n"
        f"{CANARY_HIDDEN_NAME} = \"{CANARY_HIDDEN}\"   # planted: must never reach a student\n"
        "canary_input = np.arange(4.0) + 0.25\n"
        "canary_out = double(canary_input)\n"
        "assert type(canary_out) is np.ndarray and canary_out.dtype == np.float64, type(canary_out)\n"
        "assert len(canary_out) == 4 and canary_out.shape == (4,), canary_out\n"
        "np.testing.assert_allclose(canary_out, 2 * canary_input, rtol=1e-12)\n"
        "assert abs(double(0.5) - 1.0) < 1e-12 and isinstance(double(1.5), float)\n"
        "### END HIDDEN TESTS")
    nb.cells = [
        _cell("markdown", "# Canary assignment"),
        _cell("code", "import numpy as np", grade_id="setup", locked=True),
        _cell("code", _answer("square", "x", "    return x * x"), solution=True, grade_id="square"),
        _cell("code", "assert square(3) == 9\n### BEGIN HIDDEN TESTS\n"
              f"assert square(-2.5) == 6.25  # {CANARY_HIDDEN}-square\n### END HIDDEN TESTS",
              grade=True, locked=True, points=1, grade_id="test_square"),
        _cell("code", _answer("double", "x", f"    # {CANARY_SOLUTION}\n    return 2 * x"),
              solution=True, grade_id="double"),
        _cell("code", hidden_double, grade=True, locked=True, points=2, grade_id="test_double"),
    ]
    return nb


def submit_cells(root: Path, student: str, answers: dict[str, str], extra: tuple[str, ...] = ()):
    """Submit the release with the answer cells ``answers`` ({grade_id: full source}) and
    ``extra`` cells of the student's own appended at the end."""
    nb = nbformat.read(root / "exercises" / A / f"{A}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in extra]
    dest = root / "submitted" / student / A
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest / f"{A}.ipynb")


def build(root: Path, notebook=None) -> Path:
    """Write the scratch course at ``root`` and release it with nbgrader (fills the gradebook).
    ``notebook``: the source notebook (default: :func:`source_notebook`)."""
    from course.nbg import load_config, make_api, run

    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    src = root / "solutions" / A
    src.mkdir(parents=True)
    nbformat.write(notebook or source_notebook(), src / f"{A}.ipynb")
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
