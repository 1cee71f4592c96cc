"""Two-process grading (``course.wire``, ``course.student``, ``course.twoproc``): what crosses
between the grader and the student process, and how a notebook is split between them.

The expected values are written out by hand (closed forms, identities), never taken from the
code under test. One student process serves all tests of this module (unsandboxed, for speed;
the sandbox is tested in test_sandbox.py and test_hostile_grading.py).
"""
from __future__ import annotations

import time
import warnings

import nbformat
import numpy as np
import pytest

from course import wire
from course.student import CellTimeout, Handle, Proxy, StudentDied, StudentError, StudentProcess
from course.twoproc import Namespace, run_notebook, run_test_cell

STUDENT_CELL = '''
import numpy as np
from typing import NamedTuple

class Cache(NamedTuple):
    x: np.ndarray

def scale(x, k=2.0):
    return np.asarray(x) * k, Cache(np.asarray(x))

def unscale(cache):
    return cache.x

def clip_inplace(d, limit):
    for k in d:
        np.clip(d[k], -limit, limit, out=d[k])
    d["new"] = [1, 2]
    return len(d)

def draw(rng, n):
    return rng.normal(size=n)

def sub_array(x):
    class Sub(np.ndarray):
        pass
    return np.asarray(x).view(Sub)

def obj_array():
    return np.array([1, "a"], dtype=object)

def warn():
    return np.float64(1.0) / np.float64(0.0)

def boom():
    raise KeyError("no such key")

def custom_boom():
    class QuotaError(Exception):
        pass
    raise QuotaError("over")

def forever():
    while True:
        pass

CONST = {"a": (1, 2.5, None, True), 3: "x"}
abs = lambda v: 0.0
'''


@pytest.fixture(scope="module")
def proc():
    p = StudentProcess()
    reply = p.run_cell(STUDENT_CELL, time.monotonic() + 60)
    assert reply["status"] == "ok", reply
    yield p
    p.close()


def deadline():
    return time.monotonic() + 30


def test_wire_round_trip_and_refusals():
    values = [None, True, 3, -2**70, 1.5, float("nan"), float("-inf"), 2 + 3j, "é",
              [1, (2, [3])], {"k": 1, (1, 2): [None]}, np.arange(6, dtype=np.float32).reshape(2, 3),
              np.float32(1.25), np.array(7, dtype=np.int16), np.zeros((0, 3))]
    enc = wire.Encoder(lambda x: pytest.fail(f"{x!r} should be data"))
    trees = [enc(v) for v in values]
    dec = wire.Decoder(enc.buffers, handle=lambda n: pytest.fail("no handles here"))
    for v, t in zip(values, trees):
        got = dec(t)
        assert type(got) is type(v), f"round trip of {v!r}: type {type(got)} != {type(v)}"
        if isinstance(v, np.ndarray):
            assert got.dtype == v.dtype and got.shape == v.shape and np.array_equal(got, v), (v, got)
        elif isinstance(v, float) and v != v:
            assert got != got, "NaN must stay NaN"
        else:
            assert got == v, f"round trip of {v!r} gave {got!r}"
    # not data: subclasses and object arrays are handed to `other` (a handle), never encoded
    class MyFloat(float):
        pass
    others = []
    enc2 = wire.Encoder(lambda x: others.append(x) or {"H": 0})
    for x in (MyFloat(1.0), np.array([1, "a"], dtype=object), np.ma.masked_array([1.0]), object()):
        assert enc2(x) == {"H": 0}, f"{type(x)} must not be encoded as data"
    assert len(others) == 4, f"expected 4 values handed to `other`, got {others}"
    # a forged header cannot build an object array or a mismatched shape
    bad = wire.Decoder([b"12345678"], handle=lambda n: None)
    for tree in ({"A": 0, "dtype": "|O", "shape": [1]}, {"A": 0, "dtype": "<f8", "shape": [2]},
                 {"A": 5, "dtype": "<f8", "shape": [1]}, {"Z": 1}, {"G": "Evil", "state": {}}):
        with pytest.raises(wire.WireError):
            bad(tree)


def test_proxy_returns_data_and_handles_round_trip(proc):
    ns = Namespace(proc)
    scale = ns["scale"]
    assert isinstance(scale, Proxy), type(scale)
    out, cache = scale(np.arange(3.0), k=3.0)
    assert type(out) is np.ndarray and out.tolist() == [0.0, 3.0, 6.0], out
    assert isinstance(cache, Handle), f"a NamedTuple stays in the student process, got {type(cache)}"
    back = ns["unscale"](cache)
    assert back.tolist() == [0.0, 1.0, 2.0], f"unscale(handle): expected [0, 1, 2], got {back}"
    assert cache.x.tolist() == [0.0, 1.0, 2.0], "attributes of a handle come back as data"
    assert ns["CONST"] == {"a": (1, 2.5, None, True), 3: "x"}, f"CONST as data: got {ns['CONST']}"
    with pytest.raises(KeyError):
        ns["abs"]          # a student's name never shadows a builtin in the tests
    with pytest.raises(KeyError):
        ns["never_defined"]


def test_names_the_tests_bind_stay_theirs(proc):
    ns = Namespace(proc)
    out = run_test_cell(ns, "first = CONST['a'][1]\nCONST = 'tests own value'", "own1", 10)
    assert not out, f"reading the student's CONST, then rebinding it: {out}"
    ns.forget_student()
    assert ns["CONST"] == "tests own value", f"a name the test rebound came back from the student: {ns['CONST']!r}"
    assert ns["first"] == 2.5, ns["first"]


def test_in_place_changes_are_copied_back_with_identity(proc):
    ns = Namespace(proc)
    d = {"W": np.array([-5.0, 0.5, 5.0]), "b": np.array([3.0])}
    ids = {k: id(v) for k, v in d.items()}
    n = ns["clip_inplace"](d, 1.0)
    assert n == 3, f"clip_inplace(d, 1.0): expected 3 keys, got {n}"
    assert d["W"].tolist() == [-1.0, 0.5, 1.0] and d["b"].tolist() == [1.0], d
    assert all(id(d[k]) == ids[k] for k in ids), "arrays changed in place keep their identity"
    assert d["new"] == [1, 2], "keys the student added appear in the grader's dict"
    rng = np.random.default_rng(7)
    first = ns["draw"](rng, 3)
    second = ns["draw"](rng, 3)
    expected = np.random.default_rng(7).normal(size=6)
    np.testing.assert_array_equal(np.concatenate([first, second]), expected,
                                  err_msg="the generator's state must advance in the grader too")


def test_non_data_and_errors(proc):
    ns = Namespace(proc)
    assert isinstance(ns["sub_array"]([1.0, 2.0]), Handle), "an ndarray subclass is not data"
    assert isinstance(ns["obj_array"](), Handle), "an object array is not data"
    with pytest.raises(KeyError, match="no such key"):
        ns["boom"]()
    with pytest.raises(StudentError) as info:
        ns["custom_boom"]()
    assert type(info.value).__name__ == "QuotaError" and "over" in str(info.value), \
        f"custom_boom(): expected QuotaError('over'), got {type(info.value).__name__}: {info.value}"
    with pytest.raises(TypeError, match="only data"):
        ns["scale"](lambda: 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the test's filter applies in the student process
        with pytest.raises(RuntimeWarning):
            ns["warn"]()


def test_test_cell_outputs_and_time_limit(proc):
    ns = Namespace(proc)
    ok = run_test_cell(ns, "out, _ = scale([1.0])\nassert out[0] == 2.0\nprint('fine')", "t1", 10)
    assert [o.output_type for o in ok] == ["stream"] and ok[0].text == "fine\n", ok
    bad = run_test_cell(ns, "assert abs(-3) == 3\nassert scale([1.0])[0][0] == 5.0, 'five'", "t2", 10)
    assert bad[-1].output_type == "error" and bad[-1].ename == "AssertionError", bad
    assert bad[-1].evalue == "five", bad[-1].evalue
    t0 = time.perf_counter()
    slow = run_test_cell(ns, "forever()", "t3", 1)
    assert slow[-1].output_type == "error" and slow[-1].ename == "CellTimeout", slow
    assert time.perf_counter() - t0 < 6, "the time limit must hold"
    # interrupted, not killed: the student process still answers
    again = ns["scale"]([2.0])[0]
    assert again.tolist() == [4.0], f"scale([2.0]) after an interrupt: expected [4.0], got {again}"


def test_dead_student_fails_remaining_tests():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def f():\n    return 1\ndef die():\n    import os\n    os._exit(3)"),
                nbformat.v4.new_code_cell("assert f() == 1"),
                nbformat.v4.new_code_cell("die()"),
                nbformat.v4.new_code_cell("assert f() == 1"),
                nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nsecret = 1")]
    tests = {1, 2, 3}
    res = run_notebook(nb, lambda c: nb.cells.index(c) in tests, timeout=10,
                       withhold=lambda c: "BEGIN HIDDEN" in c.source)
    assert res["failed"] == [2, 3], res
    assert nb.cells[3].outputs[-1].ename == "StudentDied", nb.cells[3].outputs
    assert nb.cells[4].outputs[0].ename == "NotRun", "a hidden test in a student cell must not run"
    counts = [c.execution_count for c in nb.cells]
    assert counts == [1, 2, 3, 4, 5], f"execution counts: expected 1..5, got {counts}"


def test_student_process_cannot_import_the_course_packages(proc):
    code = ("import importlib, sys\nres = {}\n"
            "for n in ('actgrad', 'torch', 'scipy', 'sklearn'):\n"
            "    try:\n        importlib.import_module(n); res[n] = 'imported'\n"
            "    except ModuleNotFoundError:\n        res[n] = 'missing'\n"
            "res")
    reply = proc.run_cell(code, deadline())
    result = [p for kind, p in reply["outputs"] if kind == "result"]
    assert result and result[0]["text/plain"] == str({n: "missing" for n in ("actgrad", "torch", "scipy", "sklearn")}), reply


def test_dead_process_refuses_requests():
    p = StudentProcess()
    try:
        with pytest.raises((StudentDied, CellTimeout)):
            p.run_cell("import os\nos._exit(0)", deadline())
        with pytest.raises(StudentDied):
            p.run_cell("1", deadline())
    finally:
        p.close()


def test_spare_processes_are_fresh_and_used_once(tmp_path):
    """start_student(spare=True) hands out the process started ahead, with the submission's
    files copied in, and starts the next one; no process ever serves two submissions."""
    from course import student

    (tmp_path / "data.txt").write_text("42")
    (tmp_path / "sub.ipynb").write_text("{}")
    first = student.start_student(tmp_path, spare=True)
    second = student.start_student(tmp_path, spare=True)
    try:
        assert first is not second and first.proc.pid != second.proc.pid, "two submissions, one process"
        first.run_cell("leak = 'from the first submission'", deadline())
        with pytest.raises(KeyError):
            second.lookup("leak", deadline())      # a fresh interpreter, not a reused one
        reply = second.run_cell("import os\nsorted(os.listdir('.')), open('data.txt').read()", deadline())
        result = [p for kind, p in reply["outputs"] if kind == "result"]
        assert result and result[0]["text/plain"] == "(['data.txt'], '42')", \
            f"the work folder must hold the submission's files but no notebook: {reply}"
    finally:
        first.close()
        second.close()
        student._close_spares()
    assert not student._SPARE, f"spares left running: {student._SPARE}"
