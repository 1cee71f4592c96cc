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
import importlib
import io
import linecache
import time
import traceback
from pathlib import Path

from . import sandbox as sb
from .proxy import Handle, Proxy
from .student import (OUTPUT_LIMIT, CellTimeout, StudentDied, StudentProcess, _deadline,
                      _time_limit, start_student)

HERE = Path(__file__).resolve().parent


class Node(dict):
    """A notebook node (dict with attribute access), like nbformat's, without importing it."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


def to_node(x):
    """JSON data (a notebook read with ``json``) as nested :class:`Node` objects."""
    if isinstance(x, dict):
        return Node({k: to_node(v) for k, v in x.items()})
    return [to_node(v) for v in x] if isinstance(x, list) else x


def new_output(output_type: str, **fields) -> Node:
    """An nbformat v4 output (what ``nbformat.v4.new_output`` makes, as far as grading needs)."""
    out = Node(output_type=output_type, **fields)
    if output_type in ("execute_result", "display_data"):
        out.setdefault("metadata", Node())
        out["data"] = Node(out.get("data", {}))
    if output_type == "execute_result":
        out.setdefault("execution_count", None)
    return out


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
        self.proc, self.from_student = proc, {}

    def __missing__(self, key):
        if key.startswith("__") or hasattr(builtins, key):
            raise KeyError(key)
        value = self.proc.lookup(key, _deadline())
        self[key] = self.from_student[key] = value
        return value

    def forget_student(self):
        """Before each test cell: the student's cells may have redefined their names (a name
        the tests have rebound since is theirs and stays)."""
        for key, value in self.from_student.items():
            if self.get(key) is value:
                del self[key]
        self.from_student.clear()


class _Capture(io.StringIO):
    def write(self, s):
        room = OUTPUT_LIMIT - self.tell()
        return super().write(s if len(s) <= room else s[:max(room, 0)])


def run_test_cell(ns: Namespace, source: str, name: str, timeout: float) -> list[dict]:
    """Execute one test cell in the grader; its outputs in nbformat (error iff it failed)."""
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
            outputs.append(new_output("stream", name=stream, text=buf.getvalue()))
    if error is not None:
        outputs.append(_error_output(error))
    elif result is not None and not isinstance(result, (Proxy, Handle)):
        outputs.append(new_output("execute_result", data={"text/plain": repr(result)[:OUTPUT_LIMIT]}))
    return outputs


def _error_output(exc: BaseException) -> dict:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)   # the test's frames only
              if not f.filename.startswith(str(HERE))]
    tb = ["Traceback (most recent call last):"] + "".join(traceback.format_list(frames)).splitlines()
    tb += "".join(traceback.format_exception_only(type(exc), exc)).rstrip().splitlines()
    return new_output("error", ename=type(exc).__name__, evalue=str(exc)[:OUTPUT_LIMIT],
                         traceback=tb)


def _student_outputs(reply) -> list[dict]:
    """The student process's outputs for a cell, rebuilt from checked data only."""
    outputs = []
    for item in (reply.get("outputs") if type(reply.get("outputs")) is list else [])[:50]:
        if type(item) is not list or len(item) != 2 or type(item[1]) is not dict:
            continue
        kind, p = item
        if kind == "stream" and p.get("name") in ("stdout", "stderr"):
            outputs.append(new_output("stream", name=p["name"], text=str(p.get("text", ""))[:OUTPUT_LIMIT]))
        elif kind in ("result", "display"):
            data = {k: str(v)[:4 * 2**20] for k, v in p.items()
                    if k in ("text/plain", "image/png")}
            if data:
                outputs.append(new_output("execute_result" if kind == "result" else "display_data",
                                             data=data))
        elif kind == "error":
            tb = p.get("traceback")
            outputs.append(new_output(
                "error", ename=str(p.get("ename", "Error"))[:200], evalue=str(p.get("evalue", ""))[:5000],
                traceback=[str(l)[:2000] for l in tb[:200]] if type(tb) is list else []))
    return outputs


def run_notebook(nb, is_test, *, files_from=None, timeout: float = 30, sandbox: bool = False,
                 limits: sb.Limits = sb.Limits(), startup_timeout: float = 60,
                 withhold=lambda cell: False, spare: bool = False) -> dict:
    """Execute ``nb`` in place: test cells (``is_test(cell)``) here, the others in a student
    process, except those ``withhold(cell)`` says hold test code (they are not run at all).
    Returns ``{"tests": n, "failed": [indices], "student_died": reason or None}``."""
    proc = start_student(files_from, sandbox=sandbox, limits=limits,
                         startup_timeout=startup_timeout, spare=spare)
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
                cell.outputs = [new_output("error", ename="NotRun", evalue="this cell holds "
                                              "test code outside a test cell; it was not run",
                                              traceback=[])]
                continue
            try:
                reply = proc.run_cell(cell.source, time.monotonic() + timeout)
                cell.outputs = _student_outputs(reply)
                if reply.get("status") == "error" and not any(o.output_type == "error" for o in cell.outputs):
                    cell.outputs.append(new_output("error", ename="Error", evalue="", traceback=[]))
            except (CellTimeout, StudentDied) as exc:
                cell.outputs = [_error_output(exc)]
            for o in cell.outputs:
                if o.output_type == "execute_result":
                    o.execution_count = count
    finally:
        proc.close()
    return {"tests": tests, "failed": failed, "student_died": proc.dead if proc.dead and
            "closed" not in proc.dead else None}
