"""Unit tests of the course layer: the feedback scrubber (by markers and by content), collection
patterns, and the self-check's exit code. (The two-process grading itself: test_twoproc.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course import ASSIGNMENTS  # noqa: E402
from course.collect import default_regexp  # noqa: E402
from course.nbg import resolve_assignments  # noqa: E402
from course.scrub import hidden_lines, redact, scrub_source  # noqa: E402


def test_scrub_source_removes_hidden_region():
    src = "a = 1\n### BEGIN HIDDEN TESTS\nassert secret(1)\n### END HIDDEN TESTS\nb = 2\n"
    out, hidden = scrub_source(src, "# hidden")
    assert hidden and "secret" not in out and out.startswith("a = 1\n# hidden\n") and "b = 2" in out
    out, hidden = scrub_source("x = 1\n    ### BEGIN HIDDEN TESTS\n    assert secret()\n", "# hidden")
    assert hidden and "secret" not in out                        # unterminated region
    assert scrub_source("x = 1", "# h") == ("x = 1", False)


def test_hidden_lines_are_found_by_content_anywhere():
    test = ("x = visible_input()\nassert f(x) == 1\n### BEGIN HIDDEN TESTS\n"
            "secret_case = canary_7731(np.arange(9))\nassert f(x) == 1\n)\n### END HIDDEN TESTS\n")
    lines = hidden_lines([test])
    # hidden and long enough; a line also in the visible part, and a bare ")" say nothing
    assert lines == {"secret_case = canary_7731(np.arange(9))"}, lines
    leaked = "student printed: >>> secret_case = canary_7731(np.arange(9)) <<<"
    text, found = redact(leaked, lines)
    assert found and "canary_7731" not in text, text
    assert redact("nothing here", lines) == ("nothing here", False)
    # an unterminated region hides everything after its marker
    assert "tail_secret_line = 42 + 1" in hidden_lines(["a = 1\n### BEGIN HIDDEN TESTS\ntail_secret_line = 42 + 1\n"])


def test_check_checksum_agrees_with_nbgrader():
    """course.check computes nbgrader's cell checksum without importing nbgrader (slow)."""
    import json

    import nbformat
    from nbgrader.utils import compute_checksum

    from course.check import checksum
    from course.twoproc import to_node

    n = 0
    for a in ASSIGNMENTS:
        for kind in ("exercises", "solutions"):
            path = ROOT / kind / a / f"{a}.ipynb"
            mine = to_node(json.loads(path.read_text(encoding="utf-8")))
            theirs = nbformat.read(path, as_version=4)
            for c, t in zip(mine.cells, theirs.cells):
                if "grade_id" in t.metadata.get("nbgrader", {}):
                    c.source = "".join(c.source) if isinstance(c.source, list) else c.source
                    assert checksum(c) == compute_checksum(t), f"{a} {kind} {t.metadata.nbgrader.grade_id}"
                    n += 1
    edited = to_node(json.loads((ROOT / "exercises" / ASSIGNMENTS[0] / f"{ASSIGNMENTS[0]}.ipynb").read_text()))
    cell = next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade"))
    cell.source = "".join(cell.source) + "\npass"
    assert checksum(cell) != cell.metadata.nbgrader.checksum, "an edited test cell must be detected"
    assert n > 40, n


def test_collect_pattern():
    import re
    rx = re.compile(default_regexp("a1_activation_derivatives"))
    for name, student in [("/in/alice_a1_activation_derivatives.ipynb", "alice"),
                          ("/in/extracted/bob_smith_a1_activation_derivatives (1).ipynb", "bob_smith"),
                          ("carol-7_a1_activation_derivatives-late.ipynb", "carol-7")]:
        m = rx.match(name)
        assert m and m["student_id"] == student and m["file_id"] == "a1_activation_derivatives"
    assert not rx.match("/in/alice_a2_softmax_cross_entropy.ipynb")


def test_resolve_assignments():
    assert resolve_assignments(["a3"]) == ["a3_backprop"]
    assert resolve_assignments(None) == list(ASSIGNMENTS)
    with pytest.raises(SystemExit):
        resolve_assignments(["a9"])


@pytest.mark.slow
def test_check_command_exit_codes():
    a = "a4_gradient_flow"
    run = lambda p: subprocess.run([sys.executable, "-m", "course", "check", str(p)], cwd=ROOT,
                                   capture_output=True, text=True, timeout=600)
    stub = run(ROOT / "exercises" / a / f"{a}.ipynb")
    assert stub.returncode == 1 and "FAIL" in stub.stdout and "NotImplementedError" in stub.stdout
    good = run(ROOT / "solutions" / a / f"{a}.ipynb")
    assert good.returncode == 0 and "PASS" in good.stdout, good.stdout + good.stderr


def _test_cell(source, outputs):
    import nbformat
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_feedback_shows_visible_failures_and_hides_hidden_ones():
    """A failure on a visible line keeps its message; on a hidden line only a note says so."""
    import nbformat

    from course.scrub import ScrubHiddenTests
    src = ("x = visible_case()\nassert f(x) == 1, 'f(visible) wrong'\n### BEGIN HIDDEN TESTS\n"
           "secret_input_7 = 42\nassert f(secret_input_7) == 2, 'hidden message 7'\n### END HIDDEN TESTS")

    def error(line, msg):
        return {"output_type": "error", "ename": "AssertionError", "evalue": msg,
                "traceback": ["Traceback (most recent call last):",
                              f'  File "<test t>", line {line}, in <module>', f"AssertionError: {msg}"]}

    nb = nbformat.v4.new_notebook()
    nb.cells = [_test_cell(src, [error(2, "f(visible) wrong")]),
                _test_cell(src, [error(5, "hidden message 7")]),
                _test_cell(src, [])]
    out, _ = ScrubHiddenTests().preprocess(nb, {})
    shown = [json.dumps(c.outputs) for c in out.cells]
    assert "f(visible) wrong" in shown[0] and "visible test of this cell failed" in shown[0], \
        f"a visible failure must reach the student with its message: {shown[0]}"
    assert "hidden message 7" not in shown[1] and "secret_input_7" not in shown[1] \
        and "a hidden test failed" in shown[1], f"a hidden failure must show only a note: {shown[1]}"
    assert "passed" in shown[2], shown[2]
    for c in out.cells:
        assert "secret_input_7" not in c.source and "hidden message 7" not in c.source, c.source


def test_failure_reasons_are_one_line_with_the_file():
    from course.gradestate import reason_from_log
    where = "submitted/ann/a1_activation_derivatives"
    cases = [("[ERROR] OSError: [Errno 28] No space left on device: 'x.ipynb'", "disk full"),
             ("PermissionError: [Errno 30] Read-only file system: '/c/autograded'", "read-only"),
             ("Traceback ...\n  File x\nValueError: bad cell\n", "ValueError: bad cell")]
    for log, expected in cases:
        got = reason_from_log(log, where)
        assert got.startswith(where) and expected in got and "\n" not in got, \
            f"reason_from_log({log!r}): expected one line with {where} and {expected!r}, got {got!r}"
