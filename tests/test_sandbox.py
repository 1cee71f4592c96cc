"""Hostile submissions graded by the instructor's autograde with the student process in the
bubblewrap sandbox (``course.sandbox``).

Each hostile submission answers part 1 honestly and puts its attack in ``part2()``, which the
hidden test calls: the attack earns the part-2 point exactly when it succeeds. The control run
without the sandbox shows the read and write attacks do succeed there, so these tests can fail.
(Attacks on the grade itself, rather than on the machine: test_hostile_grading.py.)
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

import scratch_course as sc
from course import sandbox
from course.autograde import autograde

ROOT = Path(__file__).resolve().parents[1]

# nbgrader 0.9.6 + SQLAlchemy 2 warn (SAWarning, a RuntimeWarning) on every new submission.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
AVAILABLE, WHY = sandbox.check_available()
needs_bwrap = pytest.mark.skipif(not AVAILABLE, reason=f"no usable bubblewrap: {WHY}")

# The course root is passed in (absolute paths): the student process works in a throw-away folder.
SOLUTION = "{root}/solutions/%s/%s.ipynb" % (sc.A, sc.A)
READ = '''    txt = open("%s").read()
    return "ok" if "BEGIN SOLUTION" in txt else "no"''' % SOLUTION
# Any one write outside the work folder wins the point (and changes the course tree).
WRITE = '''    import os, sys, uuid
    won = False
    for path in ["{root}/pwned.txt", "%s", "{root}/nbgrader_config.py",
                 "{root}/submitted/honest/%s/%s.ipynb", "{root}/autograded/honest/pwned.txt",
                 os.path.join(sys.prefix, "pwned-" + uuid.uuid4().hex)]:
        try:
            with open(path, "a") as f:
                f.write("# pwned")
            won = True
            if "pwned-" in path:
                os.remove(path)
        except OSError:
            pass
    return "ok" if won else "no"''' % (SOLUTION, sc.A, sc.A)
GRADEBOOK = '''    import sqlite3
    db = sqlite3.connect("file:{root}/gradebook.db?mode=rw", uri=True)
    db.execute("INSERT INTO student (id) VALUES ('pwned')")
    db.execute("UPDATE grade SET manual_score = 100")
    db.commit()
    return "ok"'''
NETWORK = '''    import socket
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    return "ok"'''
MEMORY = '''    import mmap
    chunks = []
    while True:                       # 256 MB mappings, untouched: RLIMIT_AS counts them all
        chunks.append(mmap.mmap(-1, 2**28))'''
FORKS = '''    import os, time
    n = 0
    for _ in range(2000):
        if os.fork() == 0:
            time.sleep(2)
            os._exit(0)
        n += 1
    return "ok" if n == 2000 else "no"'''
SUICIDE = '''    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)'''
SLEEP = '''    import time
    time.sleep(10**6)'''
# Leaves a detached process behind, to outlive grading (it wants persistence, not the point).
DAEMON = '''    import subprocess
    subprocess.Popen(["sleep", "600"], start_new_session=True)
    return "no"'''
STUBBORN = '''    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(1)'''


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return sc.build(tmp_path_factory.mktemp("sandbox") / "template")


def error_of(root, student):
    """The exception name the hidden test cell of ``student``'s graded notebook raised."""
    nb = nbformat.read(root / "autograded" / student / sc.A / f"{sc.A}.ipynb", as_version=4)
    errors = [o for o in nb.cells[-1].outputs if o.output_type == "error"]
    if not errors:
        return None
    if errors[0].ename == "OSError" and errors[0].evalue.startswith("[Errno 12]"):
        return "ENOMEM"             # mmap's way of saying MemoryError
    return errors[0].ename


def orphans() -> list[int]:
    """PIDs of sandboxed processes (root graders' throw-away uids) whose grader has exited."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
        except FileNotFoundError:
            continue
        if uid >= sandbox.UID_BASE and not os.path.exists(f"/proc/{(uid - sandbox.UID_BASE) // 8}"):
            out.append(int(pid))
    return out


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@needs_bwrap
def test_student_mounts_only_the_interpreter_and_allowed_packages(tmp_path):
    """The student process's root: /usr, the base interpreter, NumPy/matplotlib and their
    requirements, its two folders; never the course, the venv as a whole, home, /run, /var."""
    work, mpl = tmp_path / "work", tmp_path / "mpl"
    args = sandbox.student_argv(["python"], workdir=str(work), mpldir=str(mpl))
    binds = [args[i + 1] for i in range(len(args) - 1) if args[i] in ("--bind", "--ro-bind")]
    site, items = sandbox.allowed_packages()
    assert "numpy" in items and "matplotlib" in items, items
    for forbidden in ("torch", "scipy", "sklearn", "actgrad", "nbgrader", "jupyter_client"):
        assert not any(i.split("-")[0].split(".")[0] == forbidden for i in items), (forbidden, items)
    allowed_roots = ["/usr", os.path.realpath(sys.base_prefix), str(work), str(mpl), *sandbox.ETC_FILES,
                     *(os.path.join(site, i) for i in items)]
    for b in binds:
        assert any(b == r or b.startswith(r.rstrip("/") + "/") for r in allowed_roots), \
            f"student_argv binds {b}, which is none of the allowed places"
    for path in (str(ROOT), os.path.expanduser("~"), "/run", "/var", "/var/run", site, "/"):
        assert path not in binds, f"{path} must not be mounted into the student process"
    assert "--unshare-net" in args and "--unshare-pid" in args and "--die-with-parent" in args


@needs_bwrap
@pytest.mark.slow
def test_real_course_layout(monkeypatch):
    """A sandboxed student process for the real course: NumPy imports, the course's other
    packages do not (by any route), the course, home and secrets are not there, no host Unix
    socket can be found anywhere, and no package folder of torch/scipy/sklearn/actgrad exists."""
    from course.student import StudentProcess

    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    code = (
        "import json, os, stat, importlib, sys, numpy\n"
        "res = {}\n"
        "for name in ('actgrad', 'torch', 'scipy', 'sklearn', 'nbgrader'):\n"
        "    for how, f in (('import', lambda n: __import__(n)), ('importlib', importlib.import_module)):\n"
        "        try:\n"
        "            f(name); res[how + ' ' + name] = 'imported'\n"
        "        except ModuleNotFoundError:\n"
        "            res[how + ' ' + name] = 'ModuleNotFoundError'\n"
        "found, sockets = [], []\n"
        "for top in ('/', ):\n"
        "    for d, dirs, files in os.walk(top):\n"
        "        if d in ('/proc', '/sys', '/dev'):\n"
        "            dirs[:] = []; continue\n"
        "        found += [os.path.join(d, x) for x in dirs if x in ('torch', 'scipy', 'sklearn', 'actgrad')]\n"
        "        for x in files:\n"
        "            try:\n"
        "                if stat.S_ISSOCK(os.lstat(os.path.join(d, x)).st_mode): sockets.append(os.path.join(d, x))\n"
        "            except OSError: pass\n"
        f"res['root'] = os.path.exists({str(ROOT)!r}) and os.listdir({str(ROOT)!r})\n"
        f"res['site'] = sorted(os.listdir({sandbox.allowed_packages()[0]!r}))\n"
        f"res['home'] = os.path.exists({os.path.expanduser('~')!r}) and os.listdir({os.path.expanduser('~')!r})\n"
        "res['secret'] = 'GRADER_SECRET_TOKEN' in os.environ\n"
        "res['found'], res['sockets'] = found, sockets\n"
        "res['run'] = [p for p in ('/run', '/var/run', '/var') if os.path.exists(p)]\n"
        "print(json.dumps(res))\n")
    proc = StudentProcess(sandbox=True)
    try:
        reply = proc.run_cell(code, time.monotonic() + 120)
    finally:
        proc.close()
    assert reply["status"] == "ok", reply
    res = json.loads(reply["outputs"][0][1]["text"])
    for key, value in res.items():
        if key.startswith(("import", "importlib")):
            assert value == "ModuleNotFoundError", f"{key} in the student process: {value}"
    # the course folder holds only the path to the allowed packages (they live in its .venv)
    assert not res["root"] or res["root"] == [".venv"], f"the course folder shows {res['root']}"
    assert res["site"] == list(sandbox.allowed_packages()[1]), res["site"]
    home = res["home"]
    assert not home or set(home) <= {".pyenv"}, f"the grader's home shows {home}"
    assert not res["secret"] and res["found"] == [] and res["sockets"] == [] and res["run"] == [], res


@needs_bwrap
@pytest.mark.slow
def test_hostile_batch(template, tmp_path):
    root = sc.copy_course(template, tmp_path / "course")
    listener = Listener()
    hostile = {"reader": READ, "writer": WRITE, "gradebook": GRADEBOOK,
               "network": NETWORK.replace("{port}", str(listener.port)), "memory": MEMORY,
               "forks": FORKS, "suicide": SUICIDE, "sleeper": SLEEP, "stubborn": STUBBORN,
               "daemon": DAEMON}
    sc.submit(root, "honest")
    for student, body in hostile.items():
        sc.submit(root, student, part2_body=body.replace("{root}", str(root)))
    before = sc.tree_digest(root)

    t0 = time.perf_counter()
    results = autograde([sc.A], root=root, jobs=2, sandbox=True, progress=False, timeout=10)
    elapsed = time.perf_counter() - t0

    assert sc.tree_digest(root) == before                   # nothing outside the work folders
    assert listener.accepted == 0
    assert not (root / "autograded" / "honest" / "pwned.txt").exists()
    ok = {r.student: r.ok for r in results}
    scores = sc.scores(root)
    assert ok["honest"] and scores["honest"] == {"test_add": 1.0, "test_part2": 1.0}
    assert all(ok.values()), {s: r.log[-500:] for s, r in zip(ok, results) if not r.ok}
    for student in hostile:     # every submission is graded; part 1 counts, the attack does not
        assert scores[student] == {"test_add": 1.0, "test_part2": 0.0}, (student, scores[student])
    # ... and each attack failed on the mechanism meant to stop it
    errors = {s: error_of(root, s) for s in ("reader", "gradebook", "network", "memory", "forks",
                                               "sleeper", "suicide", "stubborn")}
    assert errors == {"reader": "FileNotFoundError", "gradebook": "OperationalError",
                      "network": "ConnectionRefusedError", "memory": "ENOMEM",
                      "forks": "BlockingIOError", "sleeper": "CellTimeout",
                      "suicide": "StudentDied", "stubborn": "CellTimeout"}, errors
    with sqlite3.connect(root / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM student WHERE id='pwned'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM grade WHERE manual_score=100").fetchone()[0] == 0
    # two sleepers cost 1 and 2 timeouts of 10 s; everything else a few seconds each
    assert elapsed < 300, elapsed
    if os.geteuid() == 0:   # sandbox uids encode the grading process: none may outlive it
        assert not orphans(), "sandboxed processes outlived their grader"


@needs_bwrap
@pytest.mark.slow
def test_honest_scores_equal_and_attacks_work_without_sandbox(template, tmp_path):
    """Control: the same honest/reader/writer batch without the sandbox. Honest scores are the
    same as sandboxed; the reader and the writer *do* win there (the attacks are real)."""
    roots = {}
    for mode in ("sandboxed", "unsandboxed"):
        root = roots[mode] = sc.copy_course(template, tmp_path / mode)
        sc.submit(root, "honest")
        sc.submit(root, "wrong", add_body="    return a - b", part2_body="    return None")
        sc.submit(root, "reader", part2_body=READ.replace("{root}", str(root)))
        sc.submit(root, "writer", part2_body=WRITE.replace("{root}", str(root)))
        autograde([sc.A], root=root, jobs=1, sandbox=mode == "sandboxed", progress=False,
                  timeout=10)
    sandboxed, unsandboxed = sc.scores(roots["sandboxed"]), sc.scores(roots["unsandboxed"])
    for student in ("honest", "wrong"):
        assert sandboxed[student] == unsandboxed[student]
    assert sandboxed["honest"] == {"test_add": 1.0, "test_part2": 1.0}
    assert sandboxed["wrong"] == {"test_add": 0.0, "test_part2": 0.0}
    assert unsandboxed["reader"]["test_part2"] == 1.0 == unsandboxed["writer"]["test_part2"]
    assert sandboxed["reader"]["test_part2"] == 0.0 == sandboxed["writer"]["test_part2"]
    assert (roots["unsandboxed"] / "pwned.txt").exists()
    assert not (roots["sandboxed"] / "pwned.txt").exists()


def test_announce_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "check_available",
                        lambda: (False, f"bubblewrap (bwrap) is not installed; {sandbox.INSTALL_HINT}"))
    assert sandbox.announce() is False
    err = capsys.readouterr().err
    assert "NOT sandboxed" in err and "apt-get install bubblewrap" in err and "--no-sandbox" in err
    assert sandbox.announce(disabled=True) is False
    assert "sandbox OFF" in capsys.readouterr().err
