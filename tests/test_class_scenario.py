"""A class as an instructor meets it (issue 15): no grade silently wrong.

* ``scenario``: a scratch course (two 1-point questions, ``tests/scratch_course.py``) collected
  from a folder and an LMS zip full of junk (``__MACOSX``, dot files, a text file, a broken zip,
  another assignment's file), unicode and NFD names, duplicates, a ``../`` entry, files that
  cannot be graded; graded, then resubmissions collected and graded again without ``--force``.
* ``test_concurrent_fresh_gradebook``: two autograde commands at once on a course that has no
  gradebook yet.
* ``test_crash_and_resume_real_a1``: the real a1 (sandboxed if bubblewrap works) interrupted
  with Ctrl-C and with SIGKILL of the process group while a submission executes, then re-run.

Every expected score comes from how the submission was written (each wrong answer costs its one
point), never from the grader.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

import pytest

import scratch_course as sc
from course import sandbox

ROOT = Path(__file__).resolve().parents[1]
A = sc.A
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
FULL = ("    return a + b", '    return "ok"')
ADD_WRONG = ("    return a * b", '    return "ok"')
PART2_WRONG = ("    return a + b", '    return "no"')
ZERO = ("    return 0", "    return None")
OLD, NEW = 1_600_000_000, 1_700_000_000          # 2020 and 2023 (modification times)


def cli(*args, root, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "course", "--root", str(root), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def notebook(root, bodies=None, strip=False, foreign=False) -> bytes:
    """The release with the two answers' bodies; ``strip``: every cell's metadata removed (as
    some editors do); ``foreign``: its grade ids renamed (a notebook of another assignment)."""
    nb = json.loads((root / "exercises" / A / f"{A}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if bodies and meta.get("grade_id") == "add":
            cell["source"] = f"def add(a, b):\n{bodies[0]}"
        if bodies and meta.get("grade_id") == "part2":
            cell["source"] = f"def part2():\n{bodies[1]}"
        if foreign and meta:
            meta["grade_id"] = "other_" + meta["grade_id"]
        if strip:
            cell["metadata"] = {}
    return json.dumps(nb).encode()


def put(path: Path, data: bytes, mtime=OLD) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def read_grades(root) -> dict[str, dict]:
    with open(root / "grades.csv", encoding="utf-8") as fh:
        return {r["student_id"]: r for r in csv.DictReader(fh)}


# student id -> (a1 score cell in grades.csv, status prefix)
EXPECTED = {
    "alice": ("2", "graded"), "bob_smith": ("1", "graded"), "张伟": ("2", "graded"),
    "zoë": ("2", "graded"),          # NFD (zip, newer) and NFC (folder, older): one student
    "carol": ("2", "graded"),        # "carol_... (1).ipynb" is newer than "carol_....ipynb"
    "dave": ("2", "graded"), "иван": ("1", "graded"), "محمد": ("2", "graded"),
    "evil": ("2", "graded"),         # zip entry "../evil_...": placed under submitted/ only
    "erin": ("2", "graded"),         # in a zip inside the zip
    "blank": ("0", "graded"),        # the release unchanged: a real zero
    "notjson": ("", "not gradable"), "stripped": ("", "not gradable"),
    "wrongnb": ("", "not gradable"),
    "frank": ("", "missing"),        # on the roster, submitted nothing
}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    root = sc.build(tmp / "course")
    inbox = tmp / "inbox"
    inbox.mkdir()
    nb = lambda bodies=FULL, **kw: notebook(root, bodies, **kw)   # noqa: E731
    put(inbox / f"alice_{A}.ipynb", nb())
    put(inbox / f"Bob Smith_{A}.ipynb", nb(ADD_WRONG))
    put(inbox / f"张伟_{A}.ipynb", nb())
    put(inbox / f"Zoë_{A}.ipynb", nb(ADD_WRONG), OLD)
    put(inbox / f"carol_{A}.ipynb", nb(ZERO), OLD)
    put(inbox / f"carol_{A} (1).ipynb", nb(), NEW)
    put(inbox / f"blank_{A}.ipynb", nb(None))
    put(inbox / f"notjson_{A}.ipynb", b"{this is not json")
    put(inbox / f"stripped_{A}.ipynb", nb(strip=True))
    put(inbox / f"wrongnb_{A}.ipynb", nb(foreign=True))
    put(inbox / ".DS_Store", b"\0\0")
    put(inbox / "readme.txt", b"hello")
    put(inbox / "broken.zip", b"PK\x03\x04 this is no zip")
    put(inbox / "gina_a2_softmax_cross_entropy.ipynb", nb())
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr(f"erin_{A}.ipynb", nb())
    with zipfile.ZipFile(inbox / "lms.zip", "w") as zf:
        entry = lambda name, data, when=(2022, 1, 1, 0, 0, 0): zf.writestr(   # noqa: E731
            zipfile.ZipInfo(name, when), data)
        entry(f"dave_{A}.ipynb", nb())
        entry(f"__MACOSX/._dave_{A}.ipynb", b"\0\x05\x16\x07 apple double")
        entry(f"Иван_{A}.ipynb", nb(PART2_WRONG))
        entry(f"محمد_{A}.ipynb", nb())
        entry(unicodedata.normalize("NFD", f"Zoë_{A}.ipynb"), nb(), (2024, 1, 1, 0, 0, 0))
        entry(f"../evil_{A}.ipynb", nb())
        entry(f".._{A}.ipynb", nb())
        entry(f"sub/._x_{A}.ipynb", nb())
        entry("inner.zip", inner.getvalue())
    roster = tmp / "roster.csv"
    roster.write_text("ID,First_Name,Last_Name,Email\nfrank,Frank,Li,frank@example.org\n"
                      "Alice,Alice,Ng,alice@example.org\n../x,Bad,Id,\n", encoding="utf-8")
    out = {"root": root, "tmp": tmp}
    out["roster"] = cli("roster", str(roster), root=root)
    out["collect"] = cli("collect", "a1", str(inbox), root=root)
    out["autograde"] = cli("autograde", "a1", "-j", "2", "--no-sandbox", root=root)
    out["grades"] = cli("grades", root=root)
    out["grades_csv"] = read_grades(root)
    out["feedback"] = cli("feedback", "a1", root=root)
    # resubmissions after grading: alice now wrong, Bob now right (collected from a new folder)
    again = tmp / "again"
    again.mkdir()
    put(again / f"alice_{A}.ipynb", nb(ADD_WRONG), NEW)
    put(again / f"bob smith_{A}.ipynb", nb(), NEW)
    out["collect2"] = cli("collect", "a1", str(again), root=root)
    out["autograde2"] = cli("autograde", "a1", "-j", "2", "--no-sandbox", root=root)
    out["grades2"] = cli("grades", root=root)
    return out


def test_collect_names_every_skipped_entry(scenario):
    proc, root = scenario["collect"], scenario["root"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    err = proc.stderr
    assert f"carol_{A} (1).ipynb" in err and f"carol_{A}.ipynb" in err and "duplicate for carol" in err, \
        f"the duplicate warning must name both of carol's files:\n{err}"
    assert "duplicate for zoë" in err, f"NFC and NFD Zoë must be one student (a duplicate):\n{err}"
    assert "broken.zip: not a readable zip" in err, err
    assert "gina_a2_softmax_cross_entropy.ipynb: name is not" in err, err
    assert "Traceback" not in err, err
    students = {p.name for p in (root / "submitted").iterdir()}
    expected = set(EXPECTED) - {"frank"}
    assert students == expected, f"phantom or lost students: {students ^ expected}"
    stamp = (root / "submitted" / "carol" / A / "timestamp.txt").read_text()
    assert stamp.startswith("2023-11-14"), f"carol's submission time must be her newest file's: {stamp}"
    assert all((root / "submitted" / s / A / "timestamp.txt").is_file() for s in expected)
    inside = [root / d for d in ("submitted", "autograded", "feedback")]
    leaked = [p for p in scenario["tmp"].rglob("evil*") if not any(d in p.parents for d in inside)]
    assert not leaked, f"a ../ zip entry was written outside submitted/: {leaked}"


def test_autograde_names_each_bad_file_in_one_line(scenario):
    proc = scenario["autograde"]
    assert proc.returncode == 1, f"failures must give exit 1:\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.splitlines()
    for student, reason in [("notjson", "not a notebook (not JSON"),
                            ("stripped", "cell metadata stripped by an editor"),
                            ("wrongnb", "notebook of another assignment")]:
        hits = [ln for ln in lines if f"submitted/{student}/{A}/{A}.ipynb" in ln and reason in ln]
        assert hits, f"expected one line naming {student}'s file and {reason!r}:\n{proc.stderr}"
    for noise in ("Traceback", "SAWarning", "checksum"):
        assert noise not in proc.stderr, f"{noise!r} in autograde's output:\n{proc.stderr}"


def test_grades_csv_tells_missing_failed_and_zero_apart(scenario):
    assert scenario["grades"].returncode == 0, scenario["grades"].stderr
    rows = scenario["grades_csv"]
    assert set(rows) == set(EXPECTED), f"phantom or lost rows: {set(rows) ^ set(EXPECTED)}"
    for s, (score, status) in EXPECTED.items():
        got = (rows[s][A], rows[s][f"{A} status"])
        assert got[0] == score and got[1].startswith(status), \
            f"grades.csv row {s}: expected score {score!r} status {status!r}..., got {got}"
    assert "cell metadata stripped" in rows["stripped"][f"{A} status"]
    assert rows["frank"]["email"] == "frank@example.org" and rows["frank"]["first_name"] == "Frank"
    assert (rows["alice"]["first_name"], rows["alice"]["last_name"]) == ("Alice", "Ng"), \
        f"the roster's names must survive autograde: {rows['alice']}"
    roster = scenario["roster"]
    assert roster.returncode == 0 and "line 4" in roster.stderr and "'../x'" in roster.stderr, \
        roster.stdout + roster.stderr
    assert rows["notjson"]["score"] == "" and rows["frank"]["score"] == "0", \
        "total: blank when an assignment is not gradable, missing counts 0"


def test_feedback_for_every_submission(scenario):
    proc, root = scenario["feedback"], scenario["root"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pages = {p.parts[-3] for p in (root / "feedback").glob(f"*/{A}/*.html")}
    expected = set(EXPECTED) - {"frank"}
    assert pages == expected, f"feedback pages missing or extra: {pages ^ expected}"
    page = (root / "feedback" / "notjson" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "could not be graded" in page and "not JSON" in page and "What to do" in page, page
    page = (root / "feedback" / "bob_smith" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "AssertionError" in page, "bob's failed visible test (add) must show its error"


def test_resubmissions_are_regraded_without_force(scenario):
    proc = scenario["autograde2"]
    assert scenario["collect2"].returncode == 0, scenario["collect2"].stderr
    assert "up to date" in proc.stdout, proc.stdout
    rows = read_grades(scenario["root"])
    assert rows["alice"][A] == "1", f"alice resubmitted a wrong add: expected 1, got {rows['alice'][A]}"
    assert rows["bob_smith"][A] == "2", f"bob resubmitted a right add: expected 2, got {rows['bob_smith'][A]}"
    assert rows["carol"][A] == "2" and rows["blank"][A] == "0"


def test_unknown_student_and_bad_jobs_are_errors(scenario):
    root = scenario["root"]
    proc = cli("autograde", "a1", "-s", "nobody", "--no-sandbox", root=root)
    assert proc.returncode != 0 and "nobody" in proc.stderr, proc.stdout + proc.stderr
    proc = cli("autograde", "a1", "--jobs", "0", "--no-sandbox", root=root)
    assert proc.returncode != 0 and "--jobs" in proc.stderr, proc.stdout + proc.stderr
    proc = cli("collect", "a1", str(root / "no-such-folder"), root=root)
    assert proc.returncode != 0 and "does not exist" in proc.stderr \
        and "Traceback" not in proc.stderr, proc.stderr


def test_concurrent_fresh_gradebook(tmp_path):
    root = sc.build(tmp_path / "course")
    bodies = {"s1": FULL, "s2": ADD_WRONG, "s3": PART2_WRONG, "s4": ZERO}
    for s, (add, part2) in bodies.items():
        sc.submit(root, s, add_body=add, part2_body=part2)
    (root / "gradebook.db").unlink()     # a fresh clone: no gradebook yet
    args = [sys.executable, "-m", "course", "--root", str(root), "autograde", "a1", "-j", "1",
            "--no-sandbox"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"concurrent autograde failed:\n{out}\n{err}"
        assert "already exists" not in err, err
    assert sc.scores(root) == {"s1": {"test_add": 1.0, "test_part2": 1.0},
                               "s2": {"test_add": 0.0, "test_part2": 1.0},
                               "s3": {"test_add": 1.0, "test_part2": 0.0},
                               "s4": {"test_add": 0.0, "test_part2": 0.0}}


def test_manual_override_survives_regrading(tmp_path):
    """A score given in formgrader (the gradebook's manual_score) reaches grades.csv and stays
    after autograde re-grades the submission (forced, and after a resubmission)."""
    from nbgrader.api import Gradebook

    root = sc.build(tmp_path / "course")
    sc.submit(root, "ann", add_body="    return a * b")          # add wrong: 1 of 2
    assert cli("autograde", "a1", "-j", "1", "--no-sandbox", root=root).returncode == 0
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "scratch") as gb:
        grade = gb.find_grade("test_add", A, A, "ann")
        grade.manual_score = 0.5                       # what formgrader writes
        gb.db.commit()
    for args in (["--force"], []):
        if not args:                                   # a resubmission (part2 now wrong)
            sc.submit(root, "ann", add_body="    return a * b", part2_body='    return "no"')
        proc = cli("autograde", "a1", "-j", "1", "--no-sandbox", *args, root=root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert cli("grades", root=root).returncode == 0
        expected = "1.5" if args else "0.5"
        got = read_grades(root)["ann"][A]
        assert got == expected, f"after autograde {args}: manual 0.5 for test_add must stay; " \
            f"expected {expected}, got {got}"


# --- the real a1, interrupted ------------------------------------------------------------------
A1 = "a1_activation_derivatives"


def real_course(tmp: Path) -> Path:
    """A copy of the real course (config, course/, solutions/, exercises/), as an instructor clones it."""
    from test_exercises import scratch_course
    return scratch_course(tmp)


def a1_submission(answers: bool, sleep: float = 0.0) -> dict:
    """The release with the solution's answers (14 points) or none (0); ``sleep``: a first cell
    of the student's own that sleeps (so a kill lands while the submission executes)."""
    nb = json.loads((ROOT / "exercises" / A1 / f"{A1}.ipynb").read_text(encoding="utf-8"))
    sol = json.loads((ROOT / "solutions" / A1 / f"{A1}.ipynb").read_text(encoding="utf-8"))
    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in sol["cells"]}
    if answers:
        for cell in nb["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution"):
                code = "".join(by_id[meta["grade_id"]]["source"])
                cell["source"] = "\n".join(ln for ln in code.splitlines()
                                           if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln)
    if sleep:
        nb["cells"].insert(0, {"cell_type": "code", "metadata": {}, "outputs": [],
                               "execution_count": None, "source": f"import time\ntime.sleep({sleep})"})
    return nb


def _run_until_executing(root, student, extra, sig):
    """Start autograde in its own process group, wait until ``student``'s submission is being
    graded (its autograded folder exists) and send ``sig`` to the whole group."""
    shutil.rmtree(root / "autograded" / student, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "course", "--root", str(root), "autograde",
                             "a1", "-j", "1", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    t0 = time.time()
    while not (root / "autograded" / student / A1).exists():
        assert proc.poll() is None, f"autograde ended before {student} was graded: {proc.communicate()}"
        assert time.time() - t0 < 300, "autograde never started on the submission"
        time.sleep(0.2)
    time.sleep(2.0)                       # inside the submission's 10 s sleep
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_crash_and_resume_real_a1(tmp_path):
    root = real_course(tmp_path)
    extra = [] if sandbox.check_available()[0] else ["--no-sandbox"]
    for student, nb in (("blank", a1_submission(False)), ("perfect", a1_submission(True)),
                        ("sleeper", a1_submission(True, sleep=10))):
        dest = root / "submitted" / student / A1
        dest.mkdir(parents=True)
        (dest / f"{A1}.ipynb").write_text(json.dumps(nb))
    # Ctrl-C (SIGINT to the process group) while "sleeper" executes: clean stop, summary
    code, out, err = _run_until_executing(root, "sleeper", extra, signal.SIGINT)
    assert code == 130, f"Ctrl-C: expected exit 130, got {code}\n{out}\n{err}"
    assert "interrupted:" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # SIGKILL of the group (a reboot, an OOM kill) while "sleeper" executes again
    code, out, err = _run_until_executing(root, "sleeper", extra, signal.SIGKILL)
    assert code == -signal.SIGKILL, (code, out, err)
    assert cli("grades", root=root).returncode == 0
    rows = read_grades(root)
    assert rows["sleeper"][A1] == "" and rows["sleeper"][f"{A1} status"].startswith("not graded yet"), \
        f"an interrupted grading must not count (NULL is not 0): {rows['sleeper']}"
    assert (rows["perfect"][A1], rows["blank"][A1]) == ("14", "0"), (rows["perfect"], rows["blank"])
    # the re-run grades exactly what was not finished
    proc = cli("autograde", "a1", "-j", "1", *extra, root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cli("grades", root=root).returncode == 0
    rows = read_grades(root)
    got = {s: rows[s][A1] for s in ("blank", "perfect", "sleeper")}
    assert got == {"blank": "0", "perfect": "14", "sleeper": "14"}, \
        f"after the re-run: expected blank 0, perfect 14, sleeper 14; got {got}\n{proc.stdout}"
    assert proc.stdout.count("up to date") == 2, proc.stdout
