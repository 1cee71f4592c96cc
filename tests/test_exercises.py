"""The graded exercises: solutions pass, stubs fail, release in sync, and the whole instructor
pipeline (release, collect, autograde, feedback, grades) on simulated students, in a scratch copy
of the course. Runs real nbgrader; marked slow."""
from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from course import ASSIGNMENTS  # noqa: E402

PY = sys.executable
A1 = "a1_activation_derivatives"
HIDDEN = re.compile(r"^\s*#+\s*BEGIN HIDDEN TESTS.*?^\s*#+\s*END HIDDEN TESTS[^\n]*$", re.M | re.S)
SOLUTION = re.compile(r"^\s*#+\s*BEGIN SOLUTION.*?^\s*#+\s*END SOLUTION[^\n]*$", re.M | re.S)


def nb_path(kind: str, a: str, root: Path = ROOT) -> Path:
    return root / kind / a / f"{a}.ipynb"


def load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cells_by_id(nb):
    return {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}


def src(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _public_text(nb) -> str:
    """The source outside every solution and hidden-test region (published anyway)."""
    return "\n".join(SOLUTION.sub("", HIDDEN.sub("", src(cell))) for cell in nb["cells"])


def _lines_only_in(pattern, nb) -> set[str]:
    """Every non-trivial line that occurs inside a ``pattern`` region and nowhere public."""
    out = set()
    for cell in nb["cells"]:
        for region in pattern.findall(src(cell)):
            out |= _meaningful(region)
    public = _public_text(nb)
    return {line for line in out if line not in public}


def hidden_lines(nb) -> set[str]:
    """Every non-trivial line that only occurs inside a hidden-test region of the notebook."""
    return _lines_only_in(HIDDEN, nb)


def solution_lines(nb) -> set[str]:
    """Every non-trivial line that only occurs inside a solution region."""
    return _lines_only_in(SOLUTION, nb)


def _meaningful(text: str) -> set[str]:
    keep = set()
    for line in text.splitlines():
        line = line.strip()
        if len(line) < 25 or line.startswith("###") or re.fullmatch(r"[\w\s.,()=\[\]:'\"-]{0,40}", line):
            continue
        keep.add(line)
    return keep


def cli(*args, root: Path, timeout=600):
    t0 = time.perf_counter()
    proc = subprocess.run([PY, "-m", "course", "--root", str(root), *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - t0


def scratch_course(tmp: Path) -> Path:
    """A copy of the course as an instructor would clone it: no gradebook, no student work."""
    root = tmp / "course-copy"
    root.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root)
    for d in ("course", "solutions", "exercises"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    return root


# ---------------------------------------------------------------------------------------------
# Simulated students for assignment 1 (14 autograded points: 2 sigmoid, 1 tanh, 2 relu, 2 leaky,
# 2 elu, 2 softplus, 3 gelu; plus 2 points graded by hand), each an edit of the released notebook.
# ---------------------------------------------------------------------------------------------
def _solution_code(a, grade_id):
    code = src(cells_by_id(load(nb_path("solutions", a)))[grade_id])
    return "\n".join(l for l in code.splitlines() if "### BEGIN SOLUTION" not in l
                     and "### END SOLUTION" not in l)


def _with_body(signature, body):
    return f"{signature}\n" + "\n".join("    " + l for l in body.strip().splitlines())


A1_FUNCS = ["sigmoid_prime", "tanh_prime", "relu_prime", "leaky_relu_prime", "elu_prime",
            "softplus_prime", "gelu_prime"]
SIG = {"sigmoid_prime": "def sigmoid_prime(x):", "tanh_prime": "def tanh_prime(x):",
       "relu_prime": "def relu_prime(x):", "gelu_prime": "def gelu_prime(x):"}

STUDENTS = {
    # name: (answers overriding the correct solution, edit test cells?, expected score)
    "correct": ({}, False, 14),
    "blank": (None, False, 0),
    # Tuned to the visible tests: a naive sigmoid' that overflows at -1e4 and ReLU'(0) = 1.
    "partial": ({"sigmoid_prime": _with_body(SIG["sigmoid_prime"], "s = 1 / (1 + np.exp(-x))\nreturn s * (1 - s)"),
                 "relu_prime": _with_body(SIG["relu_prime"], "x = as_float_array(x)\nreturn (x >= 0).astype(x.dtype)")},
                False, 10),
    # Wrong everywhere except tanh, and every test cell replaced by `pass`: tests are restored.
    "tampered": ({f: f"def {f}(x, *args, **kwargs):\n    return np.zeros_like(as_float_array(x))"
                  for f in A1_FUNCS if f != "tanh_prime"}, True, 1),
    "infinite_loop": ({"sigmoid_prime": _with_body(SIG["sigmoid_prime"], "while True:\n    pass")}, False, 12),
    # Kills its own (student) process when the tanh test calls it: that test and every later one
    # fail; the sigmoid test before it still counts, and the batch goes on.
    "kernel_killer": ({"tanh_prime": _with_body(SIG["tanh_prime"], "import os\nos._exit(1)")}, False, 2),
    # Calls actgrad's reference implementations: directly, via an alias bound earlier, via the registry.
    "reference_all": ({f: f"import actgrad.activations\ndef {f}(x, *args, **kwargs):\n"
                          f"    return actgrad.activations.{f}(x, *args, **kwargs)" for f in A1_FUNCS},
                      False, 0),
    "reference_alias": ({"sigmoid_prime": "from actgrad.activations import sigmoid_prime as _sp\n"
                                          "def sigmoid_prime(x):\n    return _sp(x)",
                         "relu_prime": "from actgrad import ACTIVATIONS\n_REG = {'r': ACTIVATIONS}\n"
                                       "def relu_prime(x):\n    return _REG['r']['relu'].prime(x)"},
                        False, 10),
}


def make_submission(a, answers, tamper) -> dict:
    nb = load(nb_path("exercises", a))
    if answers is None:
        return nb
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            cell["source"] = answers.get(meta["grade_id"], _solution_code(a, meta["grade_id"]))
        elif meta.get("grade") and tamper:
            cell["source"] = "pass"
    return nb


# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_solution_passes_and_release_fails(a):
    """The self-check (two processes, as grading): the source passes its own visible and hidden
    tests; the release's stubs fail every test."""
    from course.check import validate

    assert validate(nb_path("solutions", a)) == {}
    released = load(nb_path("exercises", a))
    graded = [c for c in released["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
              and not c["metadata"]["nbgrader"].get("solution")]       # the autograded tests
    res = validate(nb_path("exercises", a))
    assert len(res.get("failed", [])) == len(graded) >= 4


@pytest.mark.slow
def test_release_in_sync(tmp_path):
    """The committed exercises/ is byte for byte what `course release --no-db` produces."""
    root = scratch_course(tmp_path)
    shutil.rmtree(root / "exercises")
    proc, _ = cli("release", "--no-db", root=root)
    assert proc.returncode == 0, proc.stderr
    for a in ASSIGNMENTS:
        fresh, committed = nb_path("exercises", a, root), nb_path("exercises", a)
        assert fresh.read_bytes() == committed.read_bytes(), f"{a}: run `python -m course release {a}`"
    assert not (root / "gradebook.db").exists()


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_notebook_structure(a):
    """Header, points, read-only graded tests with hidden parts, no solution or hidden test
    in the release, no outputs, execution off at site build."""
    src_nb, rel_nb = load(nb_path("solutions", a)), load(nb_path("exercises", a))
    assert rel_nb["metadata"]["mystnb"]["execution_mode"] == "off"
    first = src(rel_nb["cells"][0])
    for heading in ("## Learning goals", "## Set up", "## Self-check", "## Submit", "python -m course check"):
        assert heading in first
    graded = [c for c in src_nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    # a graded answer cell (nbgrader's "manually graded answer") must be a written answer
    written = [c for c in graded if c["metadata"]["nbgrader"]["solution"]]
    assert all(c["cell_type"] == "markdown" for c in written), [src(c)[:60] for c in written]
    tests = [c for c in graded if not c["metadata"]["nbgrader"]["solution"]]
    answer_names = {n.name for c in src_nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")
                    and c["cell_type"] == "code" for n in ast.parse(src(c)).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert sum(c["metadata"]["nbgrader"]["points"] for c in tests) >= 10
    assert f"**{sum(c['metadata']['nbgrader']['points'] for c in graded):g} points**" in first
    for c in tests:
        m = c["metadata"]["nbgrader"]
        assert m["locked"] and m["points"] > 0 and not m["solution"]
        assert "### BEGIN HIDDEN TESTS" in src(c), m["grade_id"]
        assert "call_student" not in src(c), f"{m['grade_id']}: call the student's function directly"
        assert any(re.search(rf"\b{f}\b", src(c)) for f in answer_names), \
            f"{m['grade_id']} calls none of the answer functions {sorted(answer_names)}"
    answers = [c for c in src_nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert answers and all("### BEGIN SOLUTION" in src(c) for c in answers)
    rel_text = nb_path("exercises", a).read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in rel_text and "HIDDEN TESTS" not in rel_text
    for line in hidden_lines(src_nb) | solution_lines(src_nb):
        assert line not in rel_text, line
    for c in src_nb["cells"] + rel_nb["cells"]:
        assert not c.get("outputs") and c.get("execution_count") is None


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Fresh course copy -> collect (an LMS zip + loose files) -> ONE autograde call -> feedback -> grades."""
    tmp = tmp_path_factory.mktemp("pipeline")
    root = scratch_course(tmp)
    inbox = tmp / "inbox"
    inbox.mkdir()
    with zipfile.ZipFile(inbox / "lms_download.zip", "w") as zf:
        for name, (answers, tamper, _) in STUDENTS.items():
            nb = make_submission(A1, answers, tamper)
            data = json.dumps(nb, indent=1)
            if name in ("correct", "blank"):  # loose files next to the zip
                (inbox / f"{name}_{A1}.ipynb").write_text(data)
            else:
                zf.writestr(f"{name}_{A1}.ipynb", data)
    out = {"root": root}
    out["collect"] = cli("collect", "a1", str(inbox), root=root)
    out["autograde"] = cli("autograde", "a1", "-j", "1", "--no-sandbox", root=root)
    out["autograde_again"] = cli("autograde", "a1", "-j", "1", "--no-sandbox", root=root)
    out["feedback"] = cli("feedback", "a1", root=root)
    out["grades"] = cli("grades", root=root)
    print({k: round(v[1], 1) for k, v in out.items() if k != "root"})
    return out


@pytest.mark.slow
def test_collect(pipeline):
    proc, _ = pipeline["collect"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = pipeline["root"]
    for name in STUDENTS:
        assert (root / "submitted" / name / A1 / f"{A1}.ipynb").is_file(), name


@pytest.mark.slow
def test_autograde_scores(pipeline):
    """Every simulated student gets exactly the expected score, in one bounded batch."""
    proc, seconds = pipeline["autograde"]
    print(proc.stdout, proc.stderr[-3000:])
    # Every submission is graded, the kernel killer included (its own process died, not the batch).
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "kernel_killer" in proc.stdout and "FAILED" not in proc.stdout
    assert seconds < 240, f"the batch took {seconds:.0f} s"
    rows = {r["student_id"]: r for r in csv.DictReader(open(pipeline["root"] / "grades.csv"))}
    for name, (_, _, expected) in STUDENTS.items():
        assert float(rows[name]["score"]) == expected, (name, rows[name]["score"])
        # 14 autograded points + 2 for the derivation graded by hand (pending: it counts 0 until
        # an instructor grades it in formgrader)
        assert float(rows[name]["max_score"]) == 16
    # Re-running loses nothing and re-grades nothing.
    again, seconds_again = pipeline["autograde_again"]
    assert again.returncode == 0 and "14/16" in again.stdout, again.stdout + again.stderr
    assert seconds_again < seconds, (seconds_again, seconds)


@pytest.mark.slow
def test_feedback_has_no_hidden_tests(pipeline):
    proc, _ = pipeline["feedback"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = pipeline["root"]
    files = sorted((root / "feedback").glob(f"*/{A1}/*.html"))
    assert {f.parts[-3] for f in files} == set(STUDENTS)
    others = [p for p in (root / "feedback").rglob("*") if p.is_file() and p.suffix != ".html"]
    assert not others, f"only HTML belongs in feedback/, found {others}"
    secret = hidden_lines(load(nb_path("solutions", A1)))
    assert len(secret) > 20
    import html as _html
    for f in files:
        text = _html.unescape(re.sub(r"<[^>]+>", "", f.read_text(encoding="utf-8")))
        assert "HIDDEN TESTS" not in text and "_torch_prime" not in text, f
        for line in secret:
            assert line not in text, (f, line)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("course.sandbox").sandbox.check_available()[0],
                    reason="no usable bubblewrap")
def test_every_assignment_sandboxed(tmp_path):
    """Through the instructor's commands, sandboxed and in parallel: the solution (answers as a
    student would submit them) gets full marks on every assignment, the release gets 0."""
    root = scratch_course(tmp_path)
    for a in ASSIGNMENTS:
        for student, answers in (("perfect", {}), ("blank", None)):
            dest = root / "submitted" / student / a
            dest.mkdir(parents=True)
            (dest / f"{a}.ipynb").write_text(json.dumps(make_submission(a, answers, False)))
    proc, seconds = cli("autograde", "-j", "2", root=root)
    assert proc.returncode == 0 and "sandbox" in proc.stderr, proc.stdout + proc.stderr[-3000:]
    from course.nbg import gradebook
    with gradebook(root) as gb:
        for a in ASSIGNMENTS:
            perfect, blank = gb.find_submission(a, "perfect"), gb.find_submission(a, "blank")
            autograded_max = sum(c["metadata"]["nbgrader"]["points"] for c in load(nb_path("solutions", a))["cells"]
                                 if c["metadata"].get("nbgrader", {}).get("grade")
                                 and not c["metadata"]["nbgrader"].get("solution"))
            assert perfect.code_score == autograded_max, (a, "perfect", perfect.code_score, autograded_max)
            assert blank.code_score == 0, (a, "blank", blank.code_score)


@pytest.mark.slow
def test_grades_export(pipeline):
    proc, _ = pipeline["grades"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = pipeline["root"]
    by_q = list(csv.DictReader(open(root / "grades_by_question.csv")))
    partial = {r["question"]: float(r["score"]) for r in by_q if r["student"] == "partial"}
    assert partial["test_sigmoid_prime"] == 0 and partial["test_relu_prime"] == 0
    assert partial["test_gelu_prime"] == 3
    png = (root / "grades.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
