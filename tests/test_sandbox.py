"""Hostile submissions graded by the instructor's autograde in the bubblewrap sandbox.

Each hostile submission answers part 1 honestly and puts its attack in ``part2()``, which the
hidden test calls: the attack earns the part-2 point exactly when it succeeds. The control run
without the sandbox shows the read and write attacks do succeed there, so these tests can fail.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path

import nbformat
import pytest

import scratch_course as sc
from course import sandbox
from course.autograde import autograde

# nbgrader 0.9.6 + SQLAlchemy 2 warn (SAWarning, a RuntimeWarning) on every new submission.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
AVAILABLE, WHY = sandbox.check_available()
needs_bwrap = pytest.mark.skipif(not AVAILABLE, reason=f"no usable bubblewrap: {WHY}")

SOLUTION = f"../../../solutions/{sc.A}/{sc.A}.ipynb"
READ = f'''    txt = open("{SOLUTION}").read()
    return "ok" if "BEGIN SOLUTION" in txt else "no"'''
# Any one write outside the work folder wins the point (and changes the course tree).
WRITE = f'''    import os, sys, uuid
    won = False
    for path in ["../../../pwned.txt", "{SOLUTION}", "../../../nbgrader_config.py",
                 "../../../submitted/honest/{sc.A}/{sc.A}.ipynb", "../../honest/pwned.txt",
                 os.path.join(sys.prefix, "pwned-" + uuid.uuid4().hex)]:
        try:
            with open(path, "a") as f:
                f.write("# pwned")
            won = True
            if "pwned-" in path:
                os.remove(path)
        except OSError:
            pass
    return "ok" if won else "no"'''
GRADEBOOK = '''    import sqlite3
    db = sqlite3.connect("file:../../../gradebook.db?mode=rw", uri=True)
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


def test_plan_hides_course_and_home_but_keeps_interpreter(tmp_path):
    """The mount plan: tmpfs over hidden folders (outer first), read-only re-binds inside them
    with world-traversable parents, a hidden folder inside a re-bound one hidden again, and no
    re-bind of a hidden path itself."""
    home, course = tmp_path / "home", tmp_path / "home" / "course"
    venv, pyenv, work = course / ".venv", home / ".pyenv" / "bin", course / "autograded" / "s" / "A"
    secret = pyenv / "secret"
    for d in (venv, secret, work, course / "solutions"):
        d.mkdir(parents=True)
    plan = sandbox.Plan(hidden=[str(course), str(home), str(secret)],
                        readable=[str(venv), str(pyenv), str(course), "/usr/lib"],
                        writable=[str(work)], tmp="/private-tmp")  # tmp_path is in /tmp
    args = plan.argv()
    ops = [(args[i], args[i + 1]) for i in range(len(args) - 1)
           if args[i] in ("--tmpfs", "--ro-bind", "--bind", "--dir", "--remount-ro")]
    pos = {op: i for i, op in enumerate(ops)}
    assert ("--tmpfs", "/private-tmp") in pos
    # the course lies inside the hidden home: already empty, only the venv comes back
    assert ("--tmpfs", str(course)) not in pos
    assert pos["--tmpfs", str(home)] < pos["--dir", str(course)] < pos["--ro-bind", str(venv)]
    assert pos["--dir", str(home / ".pyenv")] < pos["--ro-bind", str(pyenv)]
    assert pos["--ro-bind", str(pyenv)] < pos["--tmpfs", str(secret)]
    assert pos["--dir", str(course / "autograded" / "s")] < pos["--bind", str(work)]
    assert ("--ro-bind", str(course)) not in pos          # would re-expose solutions/
    assert ("--ro-bind", "/usr/lib") not in pos           # not hidden: nothing to do
    assert ("--remount-ro", str(home)) in pos and ("--remount-ro", str(secret)) in pos
    assert not any(p == str(course / "solutions") for _, p in ops)


@needs_bwrap
@pytest.mark.slow
def test_real_course_layout(root, tmp_path, monkeypatch):
    """A sandboxed kernel for the real course (its .venv inside the course root) starts, imports
    the package, and sees neither solutions/, the config, the grader's home nor its secrets."""
    import asyncio
    import concurrent.futures

    monkeypatch.setenv("GRADER_SECRET_TOKEN", "hunter2")
    work = tmp_path / "work"
    work.mkdir()
    home = os.path.expanduser("~")
    code = ("import json, os, numpy, actgrad\n"
            f"root, home = {str(root)!r}, {home!r}\n"
            "print(json.dumps([sorted(os.listdir(root)), sorted(os.listdir(home)),"
            " 'GRADER_SECRET_TOKEN' in os.environ, os.getcwd()]))\n")

    async def run():
        km = sandbox.SandboxedKernelManager(kernel_name="python3", course_root=str(root))
        await km.start_kernel(cwd=str(work))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            reply = await kc.execute_interactive(code, timeout=120, output_hook=out.append)
            return reply["content"]["status"]
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    out = []
    # In a thread of its own: an earlier test in this worker (playwright's sync API) may have
    # left an event loop running in the main thread, where asyncio.run() refuses to start.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, run()).result() == "ok"
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    in_root, in_home, secret_seen, cwd = json.loads(text)
    # only what the interpreter needs is there: the venv and the editable package's src/
    assert "solutions" not in in_root and "nbgrader_config.py" not in in_root
    assert set(in_root) <= {".venv", "src"}
    needed = {Path(p).relative_to(home).parts[0] for p in sandbox.interpreter_paths(
        os.path.join(root, ".venv", "bin", "python")) if sandbox._under(p, home) and p != home}
    assert set(in_home) <= needed, (in_home, needed)
    assert not secret_seen and cwd == str(work)


@needs_bwrap
@pytest.mark.slow
def test_hostile_batch(template, tmp_path):
    root = sc.copy_course(template, tmp_path / "course")
    listener = Listener()
    hostile = {"reader": READ, "writer": WRITE, "gradebook": GRADEBOOK,
               "network": NETWORK.format(port=listener.port), "memory": MEMORY,
               "forks": FORKS, "suicide": SUICIDE, "sleeper": SLEEP, "stubborn": STUBBORN,
               "daemon": DAEMON}
    sc.submit(root, "honest")
    for student, body in hostile.items():
        sc.submit(root, student, part2_body=body)
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
    for student in hostile:
        assert not scores[student].get("test_part2"), (student, scores[student])
        if ok[student]:                                       # graded: part 1 still counts
            assert scores[student]["test_add"] == 1.0, student
    assert not ok["suicide"]                                  # nbgrader fails a dead kernel
    # ... and each attack failed on the mechanism meant to stop it
    errors = {s: error_of(root, s) for s in ("reader", "gradebook", "network", "memory", "forks",
                                               "sleeper")}
    assert errors == {"reader": "FileNotFoundError", "gradebook": "OperationalError",
                      "network": "ConnectionRefusedError", "memory": "ENOMEM",
                      "forks": "BlockingIOError", "sleeper": "KeyboardInterrupt"}, errors
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
        sc.submit(root, "reader", part2_body=READ)
        sc.submit(root, "writer", part2_body=WRITE)
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
