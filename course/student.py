"""The student process of two-process grading, seen from the grader (``course.twoproc``).

:class:`StudentProcess` starts ``course/student_server.py`` (sandboxed with bubblewrap when
grading, see ``course.sandbox``) in a fresh folder holding copies of the submission's files
except notebooks, and exchanges ``course.wire`` messages with it under a deadline: on time-out
it interrupts the student's code (SIGINT), and kills the process if that does not help. A
student process that dies, hangs or breaks the protocol is marked dead, and every later request
fails with :class:`StudentDied`.

What comes back is data only (``course.wire``); any other object stays in the student process
as a :class:`Handle`, and a student function is a :class:`Proxy`. Arguments go as data; what
the student's code changed in place in them (dicts, lists, arrays, ``numpy.random.Generator``)
is copied back into the grader's own objects, so identities are kept. The student's
exceptions are re-raised here under their own name (builtin types as themselves).
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import multiprocessing.util
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import sandbox as sb
from .proxy import Handle, Proxy, StudentError, _copy_into, _exception, _warning_filters  # noqa: F401
from .wire import Decoder, Encoder, WireError, pack, unpack_header

HERE = Path(__file__).resolve().parent
OUTPUT_LIMIT = 100_000
GRACE = 2.0                 # seconds a student process gets to honour an interrupt

class StudentDied(RuntimeError):
    """The student process stopped (crashed, killed after a time limit, or broke the protocol)."""


class CellTimeout(TimeoutError):
    pass


def student_source() -> str:
    """The code the student process runs: the data format, then the server loop."""
    boot = "import sys\nsys.path[:0] = sys.argv[1:3]   # SITE (NumPy, matplotlib), WORKDIR\n"
    return boot + (HERE / "wire.py").read_text() + "\n" + (HERE / "student_server.py").read_text()


# ---------------------------------------------------------------------------------------------
# The student process
# ---------------------------------------------------------------------------------------------
_SPARE: dict = {}           # (pid, sandbox, limits) -> a process started ahead, no files yet
_CLEANUP: dict = {}         # the pid that registered _close_spares


def start_student(files_from=None, *, sandbox: bool = False, limits: sb.Limits = sb.Limits(),
                  startup_timeout: float = 60, spare: bool = False) -> "StudentProcess":
    """A fresh student process for one submission. ``spare``: take the one started ahead (if
    any) and start the next one now, so its start-up (Python, NumPy, bwrap: about 0.2 s)
    overlaps with nbgrader's own work on the next submission. A spare has never run any
    student's code, and is only ever used for one submission."""
    key = (os.getpid(), sandbox, limits)
    proc = _SPARE.pop(key, None) if spare else None
    if proc is not None and proc.proc.poll() is not None:
        proc.close()
        proc = None
    if proc is None:
        proc = StudentProcess(sandbox=sandbox, limits=limits, startup_timeout=startup_timeout,
                              wait=False)
    try:
        if files_from:
            proc.add_files(files_from)
        proc.wait_ready()
    except BaseException:
        proc.close()
        raise
    if spare:
        if _CLEANUP.get("pid") != os.getpid():   # once per process, forked workers included
            _CLEANUP["pid"] = os.getpid()        # (a multiprocessing worker skips atexit)
            atexit.register(_close_spares)
            multiprocessing.util.Finalize(None, _close_spares, exitpriority=10)
        _SPARE[key] = StudentProcess(sandbox=sandbox, limits=limits,
                                     startup_timeout=startup_timeout, wait=False)
    return proc


def _close_spares() -> None:
    """Stop this process's spares (a forked worker never touches its parent's)."""
    for key in [k for k in _SPARE if k[0] == os.getpid()]:
        _SPARE.pop(key).close()


class StudentProcess:
    """One submission's student process, working in a fresh folder that holds copies of the
    submission's files except notebooks (``files_from``). ``sandbox``: run it in bubblewrap."""

    def __init__(self, files_from=None, *, sandbox: bool = False, limits: sb.Limits = sb.Limits(),
                 startup_timeout: float = 60, wait: bool = True):
        self.tmp = tempfile.mkdtemp(prefix="course-student-")
        self.workdir, self.mpldir = os.path.join(self.tmp, "work"), os.path.join(self.tmp, "mpl")
        os.mkdir(self.workdir)
        os.mkdir(self.mpldir)
        try:
            if files_from:
                _copy_files(Path(files_from), Path(self.workdir))
            for cache in _font_caches():
                shutil.copy(cache, self.mpldir)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.dead: str | None = None
        self.handles: dict[int, Handle] = {}
        site, items = sb.allowed_packages()
        argv = [sb.student_python(), "-I", "-S", "-c", student_source()]
        env = {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": self.mpldir,
               **{k: v for k, v in os.environ.items() if k in sb.ENV_KEEP}}
        uid = -1
        if sandbox:
            uid = sb.sandbox_uid()
            if uid >= 0:
                sb.chown_tree(self.tmp, uid, uid)
            cmd = sb.student_argv([*argv, site, self.workdir], workdir=self.workdir,
                                  mpldir=self.mpldir, limits=limits, uid=uid)
        else:   # not a security boundary: a view of the allowed packages only, for consistency
            view = os.path.join(self.tmp, "site")
            os.mkdir(view)
            for name in items:
                os.symlink(os.path.join(site, name), os.path.join(view, name))
            cmd = [*argv, view, self.workdir]
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errfile, cwd=self.workdir, env=env,
                                     start_new_session=True)
        self.rfd, self.wfd = self.proc.stdout.fileno(), self.proc.stdin.fileno()
        os.set_blocking(self.wfd, False)
        self.uid, self.startup_timeout, self.started = uid if sandbox else -1, startup_timeout, False
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait for the process's hello (it imports NumPy first); raise RuntimeError if none."""
        if self.started:
            return
        try:
            hello, _ = self._receive(time.monotonic() + self.startup_timeout)
        except (StudentDied, CellTimeout, WireError) as exc:
            self.errfile.seek(0)
            log = self.errfile.read(4000).decode(errors="replace")
            self.close()
            raise RuntimeError(f"the student process did not start: {exc}\n{log}") from None
        if hello.get("ready") is not True:
            self.close()
            raise RuntimeError(f"the student process did not start: {hello}")
        self.started = True

    def add_files(self, src) -> None:
        """Copy a submission's files into the work folder (before any student code runs)."""
        _copy_files(Path(src), Path(self.workdir))
        if self.uid >= 0:
            sb.chown_tree(self.workdir, self.uid, self.uid)

    # -- transport ----------------------------------------------------------------------------
    def _wait(self, fd, deadline, write=False):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CellTimeout()
            r, w, _ = select.select([] if write else [fd], [fd] if write else [], [], min(left, 1.0))
            if r or w:
                return

    def _read(self, n, deadline):
        chunks = []
        while n:
            self._wait(self.rfd, deadline)
            b = os.read(self.rfd, min(n, 1 << 20))
            if not b:
                raise StudentDied("the student process exited")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _receive(self, deadline):
        (n,) = struct.unpack("<Q", self._read(8, deadline))
        if n > 64 * 2**20:
            raise WireError("reply header too large")
        header, sizes = unpack_header(self._read(n, deadline))
        return header, [self._read(s, deadline) for s in sizes]

    def _send(self, header, buffers, deadline):
        data = memoryview(pack(header, buffers))
        while data:
            self._wait(self.wfd, deadline, write=True)
            try:
                data = data[os.write(self.wfd, data):]
            except BrokenPipeError:
                raise StudentDied("the student process exited") from None

    def request(self, header, buffers=(), deadline=None):
        """Send one request and return the reply; on time-out, interrupt (then kill)."""
        if self.dead:
            raise StudentDied(self.dead)
        self.wait_ready()
        deadline = deadline if deadline is not None else time.monotonic() + 60
        try:
            self._send(header, buffers, deadline)
            return self._receive(deadline)
        except CellTimeout:
            if self._interrupt():
                raise CellTimeout("the student's code did not finish in time (interrupted)") from None
            self.kill("it did not finish in time and ignored the interrupt")
            raise CellTimeout("the student's code did not finish in time; the student process "
                              "was stopped") from None
        except (StudentDied, WireError, OSError, ValueError, struct.error) as exc:
            self.kill(f"it broke off: {exc}")
            raise StudentDied(self.dead) from None
        except BaseException:           # e.g. the grader's own alarm during the exchange
            self.kill("interrupted during an exchange")
            raise

    def _interrupt(self) -> bool:
        """SIGINT to the student's code; True if it answered (KeyboardInterrupt) within GRACE."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self._receive(time.monotonic() + GRACE)
            return True
        except BaseException:
            return False

    def kill(self, why: str) -> None:
        if not self.dead:
            self.dead = f"the student process was stopped: {why}"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        self.kill("closed")
        for f in (self.proc.stdout, self.errfile):
            with contextlib.suppress(Exception):
                f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- values -------------------------------------------------------------------------------
    def _handle(self, n: int) -> "Handle":
        if n not in self.handles:
            self.handles[n] = Handle(self, n)
        return self.handles[n]

    def _other(self, x):
        if isinstance(x, (Handle, Proxy)) and x._proc is self:
            return x._ref
        raise TypeError(f"cannot pass a {type(x).__name__} to the student's code: only data "
                        "(NumPy arrays, numbers, str, None, lists/tuples/dicts of these)")

    def run_cell(self, code: str, deadline: float) -> dict:
        reply, _ = self.request({"op": "run", "code": code}, deadline=deadline)
        return reply

    def lookup(self, name: str, deadline: float):
        reply, buffers = self.request({"op": "get", "name": name}, deadline=deadline)
        kind = reply.get("kind")
        if kind == "callable":
            return Proxy(self, name)
        if kind == "module":
            mod = str(reply.get("module", ""))
            if mod.split(".")[0] in ("numpy", "matplotlib") or mod in sys.stdlib_module_names:
                return importlib.import_module(mod)
            raise KeyError(name)
        if kind == "value":
            return self._decode(reply.get("value"), buffers)
        raise KeyError(name)

    def _decode(self, tree, buffers, node=None):
        try:
            return Decoder(buffers, self._handle, node=node)(tree)
        except WireError as exc:
            raise StudentError(f"the student process answered with something that is not data: {exc}") from None
        except Exception as exc:        # malformed structure
            raise StudentError(f"malformed answer from the student process: {type(exc).__name__}") from None

    def call(self, op: str, target: dict, args=(), kwargs=None, attr=None):
        """``op`` (call/attr/item/len) on a student object; returns data or a Handle."""
        enc = Encoder(self._other, define=True)
        header = {"op": op, "target": target, "args": enc(tuple(args)),
                  "kwargs": enc(dict(kwargs or {})), "attr": attr, "warnings": _warning_filters()}
        reply, buffers = self.request(header, enc.buffers, deadline=_deadline())
        for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
            text = reply.get(name)
            if isinstance(text, str) and text:
                stream.write(text[:OUTPUT_LIMIT])
        back = reply.get("back")
        if type(back) is not list or len(back) != len(enc.order):
            raise StudentError("malformed answer from the student process")
        node = lambda i: enc.order[i]  # noqa: E731
        for orig, b in zip(enc.order, back):
            if type(b) is dict and "v" in b:
                _copy_into(orig, self._decode(b["v"], buffers, node))
        error = reply.get("error")
        if error is not None:
            raise _exception(error)
        return self._decode(reply.get("result"), buffers, node)


_DEADLINE = threading.local()


def _deadline() -> float:
    return getattr(_DEADLINE, "value", None) or time.monotonic() + 60


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Deadline for the student's answers, and an alarm for the grader's own code."""
    _DEADLINE.value = time.monotonic() + seconds
    use_alarm = threading.current_thread() is threading.main_thread()

    def on_alarm(signum, frame):
        raise CellTimeout(f"the test did not finish within {seconds:g} s")
    old = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    if use_alarm:
        signal.setitimer(signal.ITIMER_REAL, seconds + 2 * GRACE + 1)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        _DEADLINE.value = None


@functools.lru_cache(maxsize=1)
def _font_caches() -> tuple[str, ...]:
    """The grader's matplotlib font cache files (a fresh config dir would rebuild it, ~1 s)."""
    try:
        import matplotlib
    except ImportError:
        return ()
    return tuple(str(p) for p in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))


COPY_LIMIT = (200, 50 * 2**20)   # at most this many files / bytes of a submission are copied


def _copy_files(src: Path, dest: Path, budget=None) -> None:
    """A submission's regular files and folders (data it reads), without notebooks, links,
    hidden entries or our own scratch folders, up to COPY_LIMIT (the rest is left out)."""
    budget = budget if budget is not None else list(COPY_LIMIT)
    for path in sorted(src.iterdir()):
        if (path.is_symlink() or path.name.startswith((".", "course-student-"))
                or path.suffix == ".ipynb" or budget[0] <= 0):
            continue
        if path.is_dir():
            (dest / path.name).mkdir()
            _copy_files(path, dest / path.name, budget)
        elif path.is_file() and path.stat().st_size <= budget[1]:
            shutil.copyfile(path, dest / path.name)
            budget[0] -= 1
            budget[1] -= path.stat().st_size
