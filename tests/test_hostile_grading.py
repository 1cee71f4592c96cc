"""Submissions that attack the grade itself, graded in one batch with honest ones through the
instructor's commands (``python -m course collect/autograde/feedback/grades``).

The scratch course (``scratch_course.canary_notebook``) has two questions: ``square`` (1 point)
and ``double`` (2 points). Every hostile submission answers ``square`` honestly and attacks
``double`` with a wrong answer plus a trick that, under the old one-process design, made a
failing test count as passed, reached a reference implementation, or leaked the hidden tests.
Each must score exactly 1 (the attack earns nothing), no hidden test or solution may leak (the
canary strings planted in them appear in no student's feedback and in no output of a student's
own cells), and the honest students' grades and feedback are intact.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import scratch_course as sc
from test_sandbox import orphans
from course import sandbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
SANDBOX = sandbox.check_available()[0]
CANARIES = (sc.CANARY_HIDDEN, sc.CANARY_HIDDEN_NAME, sc.CANARY_SOLUTION)
SQUARE = "def square(x):\n    return x * x"
DOUBLE = "def double(x):\n    return 2 * x"

# name: the whole answer cell for `double` (a wrong answer plus the attack)
ATTACKS = {
    "ast_transformer": '''
import ast
class Swallow(ast.NodeTransformer):      # wraps every later cell in try/except
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])
        return ast.fix_missing_locations(ast.Module(
            body=[ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])],
            type_ignores=[]))
try:
    get_ipython().ast_transformers.append(Swallow())
except NameError:
    pass
def double(x):
    return x''',
    "displayhook": '''
import sys
def double(x):
    sys.displayhook(1.0)                 # nbgrader stopped at the first execute_result
    raise RuntimeError("not done")''',
    "post_run_cell": '''
def _clear(result):
    result.error_in_exec = None
try:
    get_ipython().events.register("post_run_cell", _clear)
except NameError:
    pass
def double(x):
    raise NotImplementedError()''',
    "settrace": '''
import sys
def _tracer(frame, event, arg):
    if event == "exception":
        raise SystemExit(0)
    return _tracer
sys.settrace(_tracer)
def double(x):
    return x''',
    "builtins": '''
import builtins
builtins.isinstance = lambda *a: True
builtins.AssertionError = type("AssertionError", (Exception,), {})
isinstance = lambda *a: True            # shadow the builtins the test uses
abs = lambda x: 0.0
len = lambda x: 4
type = lambda x: __import__("numpy").ndarray
def double(x):
    return x''',
    "numpy_testing": '''
import numpy as np, numpy.testing
np.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
np.allclose = lambda *a, **k: True
def double(x):
    return x''',
    "liar": '''
import numpy as np
class Liar(np.ndarray):
    def __eq__(self, other):
        return True
    __array_priority__ = 1e9
class LiarFloat(float):
    def __eq__(self, other):
        return True
    def __sub__(self, other):
        return 0.0
    def __lt__(self, other):
        return True
def double(x):
    if np.ndim(x) == 0:
        return LiarFloat(x)
    return np.asarray(x, dtype=float).view(Liar)''',
    "huge_output": '''
print("A" * 20_000_000)
def double(x):
    print("B" * 20_000_000)
    return x''',
    "fork": '''
import os, time
def double(x):
    if os.fork() == 0:                   # a child that wants to outlive grading
        time.sleep(300)
        os._exit(0)
    return x''',
    "never_returns": '''
def double(x):
    while True:
        pass''',
    "stubborn": '''
import signal, time
def double(x):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.05)''',
    "marker_printer": '''
print("### BEGIN " + "HIDDEN TESTS")    # the marker text in the student's own output
print("### END " + "HIDDEN TESTS")
def double(x):
    return x''',
    "file_writer": '''
import os
loot = []
for d, dirs, files in os.walk("/"):
    if d.startswith(("/proc", "/sys", "/dev", "/usr")):
        dirs[:] = []
        continue
    for f in files:
        if f.endswith((".ipynb", ".db", ".py")) and "site-packages" not in d:
            try:
                loot.append(d + "/" + f + ":\\n" + open(os.path.join(d, f)).read())
            except (OSError, UnicodeDecodeError):
                pass
print("\\n".join(loot))                  # whatever it found lands in its own outputs
for name in ("loot.txt", "feedback.html", "a1_activation_derivatives.html"):
    with open(name, "w") as f:
        f.write("LOOT" + "-MARK " + "\\n".join(loot))
def double(x):
    return x''',
    "torch_sys_modules": '''
import sys
def double(x):
    torch = sys.modules["torch"]
    return (torch.as_tensor(x) * 2).numpy()''',
    "torch_importlib": '''
import importlib
def double(x):
    return (importlib.import_module("torch").as_tensor(x) * 2).numpy()''',
    "torch_dunder_import": '''
def double(x):
    return (__import__("torch").as_tensor(x) * 2).numpy()''',
    "reference_package": '''
try:
    from actgrad.activations import relu as _ref
except ImportError:
    import importlib
    _ref = importlib.import_module("scipy").special.expit
def double(x):
    return _ref(x)''',
    "history_reader": '''
def double(x):
    import sys, gc
    seen = [repr(v) for k, v in globals().items() if k in ("In", "Out", "_ih", "_oh")]
    for obj in gc.get_objects():
        if isinstance(obj, str) and "HIDDEN" in obj:
            seen.append(obj)
    print("\\n".join(seen))
    return x''',
    "kill_parent": '''
import os, signal
def double(x):
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(1, signal.SIGKILL)
    return x''',
}
HONEST = ("honest", "honest_too")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One scratch course, every submission collected, ONE autograde (2 workers), feedback, grades."""
    tmp = tmp_path_factory.mktemp("hostile")
    root = sc.build(tmp / "course", sc.canary_notebook())
    inbox = tmp / "inbox"
    inbox.mkdir()
    (tmp / "blank").mkdir()
    subs = {s: {"square": SQUARE, "double": DOUBLE} for s in HONEST}
    subs["wrong"] = {"square": SQUARE, "double": "def double(x):\n    return x"}
    subs.update({s: {"square": SQUARE, "double": code.strip()} for s, code in ATTACKS.items()})
    for student, answers in subs.items():
        sc.submit_cells(root, student, answers)
    sc.submit_cells(root, "blank", {})
    for path in (root / "submitted").glob(f"*/{sc.A}/{sc.A}.ipynb"):
        (inbox / f"{path.parts[-3]}_{sc.A}.ipynb").write_bytes(path.read_bytes())
    import shutil
    shutil.rmtree(root / "submitted")

    def cli(*args):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "course", "--root", str(root), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        return proc, time.perf_counter() - t0

    out = {"root": root, "students": set(subs) | {"blank"}}
    out["collect"] = cli("collect", "a1", str(inbox))
    grade_args = ["autograde", "a1", "-j", "2", "--timeout", "5"]
    out["autograde"] = cli(*grade_args, *([] if SANDBOX else ["--no-sandbox"]))
    out["feedback"] = cli("feedback", "a1")
    out["grades"] = cli("grades")
    return out


def test_batch_completes(batch):
    proc, seconds = batch["collect"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc, seconds = batch["autograde"]
    assert proc.returncode == 0, f"autograde failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "FAILED" not in proc.stdout, proc.stdout
    assert seconds < 300, f"the hostile batch took {seconds:.0f} s"


def test_every_attack_scores_zero_on_the_attacked_question(batch):
    scores = sc.scores(batch["root"])
    assert set(scores) == batch["students"], set(scores) ^ batch["students"]
    for s in HONEST:
        assert scores[s] == {"test_square": 1.0, "test_double": 2.0}, (s, scores[s])
    assert scores["blank"] == {"test_square": 0.0, "test_double": 0.0}, scores["blank"]
    assert scores["wrong"] == {"test_square": 1.0, "test_double": 0.0}, scores["wrong"]
    for attack in ATTACKS:
        assert scores[attack] == {"test_square": 1.0, "test_double": 0.0}, \
            f"attack {attack!r}: expected square 1 and double 0 (the attack must earn nothing), got {scores[attack]}"


def test_grades_export_agrees(batch):
    proc, _ = batch["grades"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(batch["root"] / "grades.csv"))}
    expected = {s: 3.0 if s in HONEST else 0.0 if s == "blank" else 1.0 for s in batch["students"]}
    assert rows == expected, {s: (rows.get(s), e) for s, e in expected.items() if rows.get(s) != e}


def _student_outputs(nb) -> str:
    """Everything the student's own cells printed or displayed (their process's outputs)."""
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            out.append(json.dumps(cell.get("outputs", [])))
    return "\n".join(out)


def test_no_hidden_test_or_solution_reaches_a_student(batch):
    root = batch["root"]
    for s in batch["students"]:
        nb = nbformat.read(root / "autograded" / s / sc.A / f"{sc.A}.ipynb", as_version=4)
        seen = _student_outputs(nb)
        for canary in CANARIES:
            assert canary not in seen, f"{s}: {canary} reached the student's own process"
    written = [p for p in (root / "autograded").rglob("*") if p.is_file() and p.suffix != ".ipynb"]
    assert not written, f"files the student process wrote reached the graded folder: {written}"


def test_feedback_for_everyone_only_html_no_canary(batch):
    proc, _ = batch["feedback"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = batch["root"]
    files = [p for p in (root / "feedback").rglob("*") if p.is_file()]
    htmls = {p.parts[-3]: p for p in files if p.suffix == ".html"}
    assert set(htmls) == batch["students"], set(htmls) ^ batch["students"]
    assert all(p.suffix == ".html" for p in files), [p.name for p in files if p.suffix != ".html"]
    for s, path in htmls.items():
        raw = path.read_text(encoding="utf-8")
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        for canary in CANARIES:
            assert canary not in raw and canary not in text, f"{s}'s feedback shows {canary}"
        assert "LOOT-MARK" not in text, f"{s}: a file the student wrote reached its feedback"
        assert path.stat().st_size < 3 * 2**20, f"{s}'s feedback is {path.stat().st_size} bytes"
    for s in HONEST:   # intact: their own code and full score
        text = html.unescape(re.sub(r"<[^>]+>", "", htmls[s].read_text(encoding="utf-8")))
        assert "return 2 * x" in text and "3 / 3" in text.replace("3.0", "3"), s


@pytest.mark.skipif(not SANDBOX, reason="processes are contained only in the bubblewrap sandbox")
def test_no_student_process_survives(batch):
    if os.geteuid() != 0:
        pytest.skip("sandbox uids are only known for root graders")
    left = orphans()    # sandbox uids encode the grading process: its own may not outlive it
    assert not left, f"student processes outlived their grader: {left}"
