"""Grading in two processes: the submission's own cells in a student process, the tests here.

:func:`run_notebook` executes a notebook the way nbclient would (outputs and execution counts
in every code cell), but splits it: every cell except the test cells goes, one cell at a time,
to a :class:`StudentProcess` (``course/student_server.py``; sandboxed with bubblewrap when
grading, see ``course.sandbox``); the test cells run in this process (the grader), where every
name the student's cells define is bound, on first use, to

* a :class:`Proxy` (functions and classes), which calls into the student process,
* a copy of the value, if it is data (``course.wire``: NumPy arrays, numbers, str, None,
  lists/tuples/dicts of these), or
* a :class:`Handle` to an object that stays in the student process (a3's caches), which
  can be passed back into calls.

Arguments are sent as data; what the student's function changed in place (a dict of
parameters, an array, a ``numpy.random.Generator``) is copied back into the grader's objects.
Names of builtins (``abs``, ``len``, ``isinstance`` ...) and names a test cell binds itself are
never taken from the student. The student process never receives a test cell, and nothing it
answers is more than data, so a test fails exactly when the values are wrong (or the student
process dies or runs out of time: then every remaining test of that notebook fails).
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import importlib
import io
import linecache
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
import traceback
import warnings
from pathlib import Path

import numpy as np

from . import sandbox as sb
from .wire import Decoder, Encoder, WireError, pack, unpack_header

HERE = Path(__file__).resolve().parent
OUTPUT_LIMIT = 100_000
GRACE = 2.0                 # seconds a student process gets to honour an interrupt
_INTERNAL = {str(HERE / "twoproc.py"), str(HERE / "wire.py")}


class StudentDied(RuntimeError):
    """The student process stopped (crashed, killed after a time limit, or broke the protocol)."""


class StudentError(Exception):
    """The student's code raised an exception of its own type (its name and message are here)."""


class CellTimeout(TimeoutError):
    pass


def student_source() -> str:
    """The code the student process runs: the data format, then the server loop."""
    boot = "import sys\nsys.path[:0] = sys.argv[1:3]   # SITE (NumPy, matplotlib), WORKDIR\n"
    return boot + (HERE / "wire.py").read_text() + "\n" + (HERE / "student_server.py").read_text()


# ---------------------------------------------------------------------------------------------
# The student process
# ---------------------------------------------------------------------------------------------
class StudentProcess:
    """One submission's student process, working in a fresh folder that holds copies of the
    submission's files except notebooks (``files_from``). ``sandbox``: run it in bubblewrap."""

    def __init__(self, files_from=None, *, sandbox: bool = False, limits: sb.Limits = sb.Limits(),
                 startup_timeout: float = 60):
        self.tmp = tempfile.mkdtemp(prefix="course-student-")
        self.workdir, self.mpldir = os.path.join(self.tmp, "work"), os.path.join(self.tmp, "mpl")
        os.mkdir(self.workdir)
        os.mkdir(self.mpldir)
        if files_from:
            _copy_files(Path(files_from), Path(self.workdir))
        for cache in _font_caches():
            shutil.copy(cache, self.mpldir)
        self.dead: str | None = None
        self.handles: dict[int, Handle] = {}
        site, items = sb.allowed_packages()
        argv = [sb.student_python(), "-I", "-S", "-c", student_source()]
        env = {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
               "MPLCONFIGDIR": self.mpldir,
               **{k: v for k, v in os.environ.items() if k in sb.ENV_KEEP}}
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
        try:
            hello, _ = self._receive(time.monotonic() + startup_timeout)
        except (StudentDied, CellTimeout) as exc:
            self.errfile.seek(0)
            log = self.errfile.read(4000).decode(errors="replace")
            self.close()
            raise RuntimeError(f"the student process did not start: {exc}\n{log}") from None
        if hello.get("ready") is not True:
            self.close()
            raise RuntimeError(f"the student process did not start: {hello}")

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
        if isinstance(x, Handle) and x._proc is self:
            return {"H": x._id}
        if isinstance(x, Proxy) and x._proc is self:
            return {"P": x._name}
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


class Proxy:
    """A function (or class) defined by the student's cells, called in the student process."""
    __slots__ = ("_proc", "_name")

    def __init__(self, proc, name):
        self._proc, self._name = proc, name

    def __call__(self, *args, **kwargs):
        return self._proc.call("call", {"P": self._name}, args, kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._proc.call("attr", {"P": self._name}, attr=attr)

    def __repr__(self):
        return f"<student's {self._name}>"


class Handle:
    """An object that stays in the student process (not data); can be passed back in."""
    __slots__ = ("_proc", "_id")

    def __init__(self, proc, n):
        self._proc, self._id = proc, n

    def __call__(self, *args, **kwargs):
        return self._proc.call("call", {"H": self._id}, args, kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._proc.call("attr", {"H": self._id}, attr=attr)

    def __getitem__(self, key):
        return self._proc.call("item", {"H": self._id}, (key,))

    def __len__(self):
        n = self._proc.call("len", {"H": self._id})
        if type(n) is not int or n < 0:
            raise TypeError("the student object's len() is not a non-negative int")
        return n

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"<student object #{self._id}>"


def _copy_into(orig, new) -> None:
    """Make the grader's ``orig`` equal to ``new`` (its state in the student process), in place."""
    if type(orig) is np.ndarray and type(new) is np.ndarray:
        if orig.shape != new.shape:
            with contextlib.suppress(AttributeError, ValueError):
                orig.shape = new.shape
        if orig.shape == new.shape and orig.flags.writeable:
            np.copyto(orig, new, casting="unsafe")
    elif type(orig) is list and type(new) is list:
        orig[:] = new
    elif type(orig) is dict and type(new) is dict:
        orig.clear()
        orig.update(new)
    elif type(orig) is np.random.Generator and type(new) is np.random.Generator:
        with contextlib.suppress(TypeError, ValueError):
            orig.bit_generator.state = new.bit_generator.state


def _exception(error) -> BaseException:
    """The student's exception, re-raised here: builtin types as themselves, others as
    StudentError, with the student's traceback in the message."""
    if type(error) is not dict:
        return StudentError("malformed error from the student process")
    ename, evalue = str(error.get("ename", "Error"))[:200], str(error.get("evalue", ""))[:5000]
    tb = error.get("traceback")
    tb = "\n".join(str(l) for l in tb[-40:]) if type(tb) is list else ""
    cls = getattr(builtins, ename, None)
    message = f"{evalue}\n\n--- in the student's code ---\n{tb[-5000:]}" if tb else evalue
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        with contextlib.suppress(Exception):
            return cls(message)
    return _student_error_class(ename)(message)


@functools.lru_cache(maxsize=256)
def _student_error_class(ename: str) -> type:
    """A StudentError subclass named like the student's exception (e.g. OperationalError)."""
    if not ename.isidentifier() or ename.startswith("_"):
        return StudentError
    return type(ename, (StudentError,), {"__module__": "student"})


def _warning_filters() -> list:
    out = []
    for action, message, category, module, lineno in warnings.filters[:50]:
        if getattr(builtins, getattr(category, "__name__", ""), None) is category:
            out.append([action, getattr(message, "pattern", "") or "", category.__name__,
                        getattr(module, "pattern", "") or "", lineno])
    return out


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


def _copy_files(src: Path, dest: Path) -> None:
    """Regular files and folders of a submission, without notebooks and without links."""
    for path in sorted(src.iterdir()):
        if path.is_symlink() or path.name == ".ipynb_checkpoints" or path.suffix == ".ipynb":
            continue
        if path.is_dir():
            (dest / path.name).mkdir()
            _copy_files(path, dest / path.name)
        elif path.is_file():
            shutil.copyfile(path, dest / path.name)


def preimport(root, assignments) -> list[str]:
    """Import what the assignments' test cells import (instructor code), so that a grading
    process pays for ``import torch`` once, not once per submission. Returns the modules."""
    import nbformat

    names = set()
    for a in assignments:
        for path in sorted((Path(root) / "solutions" / a).glob("*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                    with contextlib.suppress(SyntaxError):
                        for node in ast.walk(ast.parse(cell.source)):
                            if isinstance(node, ast.Import):
                                names |= {n.name for n in node.names}
                            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                                names.add(node.module)
    done = []
    for name in sorted(names):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
            done.append(name)
    return done


# ---------------------------------------------------------------------------------------------
# The grader: test cells here, everything else in the student process
# ---------------------------------------------------------------------------------------------
class Namespace(dict):
    """The test cells' globals: a name they do not bind (and that is no builtin) is looked up
    in the student process, once per test cell."""

    def __init__(self, proc: StudentProcess):
        super().__init__(__name__="__main__", __builtins__=builtins)
        self.proc, self.from_student = proc, set()

    def __missing__(self, key):
        if key.startswith("__") or hasattr(builtins, key):
            raise KeyError(key)
        value = self.proc.lookup(key, _deadline())
        self[key] = value
        self.from_student.add(key)
        return value

    def forget_student(self):
        """Before each test cell: the student's cells may have redefined their names."""
        for key in self.from_student:
            self.pop(key, None)
        self.from_student.clear()


class _Capture(io.StringIO):
    def write(self, s):
        room = OUTPUT_LIMIT - self.tell()
        return super().write(s if len(s) <= room else s[:max(room, 0)])


def run_test_cell(ns: Namespace, source: str, name: str, timeout: float) -> list[dict]:
    """Execute one test cell in the grader; its outputs in nbformat (error iff it failed)."""
    import nbformat.v4 as v4

    ns.forget_student()
    filename = f"<test {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    out, err, outputs = _Capture(), _Capture(), []
    result = error = None
    try:
        with _time_limit(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            tree = ast.parse(source, filename)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, filename, "exec"), ns)
            if last is not None:
                result = eval(compile(ast.Expression(last.value), filename, "eval"), ns)
    except Exception as exc:            # the test failed: the cell's error output
        error = exc
    finally:
        linecache.cache.pop(filename, None)
    for stream, buf in (("stdout", out), ("stderr", err)):
        if buf.getvalue():
            outputs.append(v4.new_output("stream", name=stream, text=buf.getvalue()))
    if error is not None:
        outputs.append(_error_output(error))
    elif result is not None and not isinstance(result, (Proxy, Handle)):
        outputs.append(v4.new_output("execute_result", data={"text/plain": repr(result)[:OUTPUT_LIMIT]}))
    return outputs


def _error_output(exc: BaseException) -> dict:
    import nbformat.v4 as v4

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename not in _INTERNAL
              and not f.filename.startswith(str(HERE))]
    tb = ["Traceback (most recent call last):"] + "".join(traceback.format_list(frames)).splitlines()
    tb += "".join(traceback.format_exception_only(type(exc), exc)).rstrip().splitlines()
    return v4.new_output("error", ename=type(exc).__name__, evalue=str(exc)[:OUTPUT_LIMIT],
                         traceback=tb)


def _student_outputs(reply) -> list[dict]:
    """The student process's outputs for a cell, rebuilt from checked data only."""
    import nbformat.v4 as v4

    outputs = []
    for item in (reply.get("outputs") if type(reply.get("outputs")) is list else [])[:50]:
        if type(item) is not list or len(item) != 2 or type(item[1]) is not dict:
            continue
        kind, p = item
        if kind == "stream" and p.get("name") in ("stdout", "stderr"):
            outputs.append(v4.new_output("stream", name=p["name"], text=str(p.get("text", ""))[:OUTPUT_LIMIT]))
        elif kind in ("result", "display"):
            data = {k: str(v)[:4 * 2**20] for k, v in p.items()
                    if k in ("text/plain", "image/png")}
            if data:
                outputs.append(v4.new_output("execute_result" if kind == "result" else "display_data",
                                             data=data))
        elif kind == "error":
            tb = p.get("traceback")
            outputs.append(v4.new_output(
                "error", ename=str(p.get("ename", "Error"))[:200], evalue=str(p.get("evalue", ""))[:5000],
                traceback=[str(l)[:2000] for l in tb[:200]] if type(tb) is list else []))
    return outputs


def run_notebook(nb, is_test, *, files_from=None, timeout: float = 30, sandbox: bool = False,
                 limits: sb.Limits = sb.Limits(), startup_timeout: float = 60,
                 withhold=lambda cell: False) -> dict:
    """Execute ``nb`` in place: test cells (``is_test(cell)``) here, the others in a student
    process, except those ``withhold(cell)`` says hold test code (they are not run at all).
    Returns ``{"tests": n, "failed": [indices], "student_died": reason or None}``."""
    import nbformat.v4 as v4

    proc = StudentProcess(files_from, sandbox=sandbox, limits=limits,
                          startup_timeout=startup_timeout)
    ns = Namespace(proc)
    count, failed, tests = 0, [], 0
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            count += 1
            cell.execution_count = count
            if is_test(cell):
                tests += 1
                name = cell.metadata.get("nbgrader", {}).get("grade_id", str(index))
                cell.outputs = run_test_cell(ns, cell.source, name, timeout)
                for o in cell.outputs:
                    if o.output_type == "execute_result":
                        o.execution_count = count
                if any(o.output_type == "error" for o in cell.outputs):
                    failed.append(index)
                continue
            if withhold(cell):
                cell.outputs = [v4.new_output("error", ename="NotRun", evalue="this cell holds "
                                              "test code outside a test cell; it was not run",
                                              traceback=[])]
                continue
            try:
                reply = proc.run_cell(cell.source, time.monotonic() + timeout)
                cell.outputs = _student_outputs(reply)
                if reply.get("status") == "error" and not any(o.output_type == "error" for o in cell.outputs):
                    cell.outputs.append(v4.new_output("error", ename="Error", evalue="", traceback=[]))
            except (CellTimeout, StudentDied) as exc:
                cell.outputs = [_error_output(exc)]
            for o in cell.outputs:
                if o.output_type == "execute_result":
                    o.execution_count = count
    finally:
        proc.close()
    return {"tests": tests, "failed": failed, "student_died": proc.dead if proc.dead and
            "closed" not in proc.dead else None}
