r"""Grading support for the course's nbgrader assignments (not part of the public API).

The graded exercises ask students to re-implement functions that :mod:`actgrad` already provides
(``sigmoid_prime``, ``softmax_backward``, ...). A submission that merely calls the package's own
implementation must not earn the points, so every graded test calls the student's function
through :func:`call_student`, which applies two independent checks:

1. **Static check** (:func:`forbidden_references`): the student's function, every notebook-level
   helper it reaches, their closures and default values must not reference ``actgrad`` (or
   another autograd/reference library: ``torch``, ``scipy``, ``jax``, ...). This catches
   ``import actgrad``, ``from actgrad.activations import sigmoid_prime as sp`` done earlier in
   the notebook, and functions rebuilt from actgrad's code objects.
2. **Run-time lockout** (:func:`reference_locked`): while the student's function runs, the code
   object of every Python function in every loaded ``actgrad`` module (and of every method of its
   classes) is swapped for a sentinel that records the call and raises. Swapping ``__code__``
   (instead of rebinding module attributes) also disables every alias bound earlier, e.g.
   ``ACTIVATIONS["relu"].prime`` or ``sp`` above. The original code objects are restored on exit.

Limits (documented for instructors): a student who copies actgrad's *source text* into the notebook,
or who deliberately tampers with this module from inside the notebook, is not caught here; both are
visible in the submitted notebook. Running the kernel in a sandbox is a separate concern.
"""
from __future__ import annotations

import dis
import functools
import inspect
import sys
import types
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FORBIDDEN_ROOTS", "ReferenceUsed", "forbidden_references", "reference_locked",
           "call_student"]

#: Top-level packages a graded answer may not use.
FORBIDDEN_ROOTS = frozenset({"actgrad", "torch", "scipy", "jax", "jaxlib", "tensorflow", "autograd"})

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_THIS_MODULE = __name__


class ReferenceUsed(AssertionError):
    """A graded answer used a reference implementation instead of its own code."""


# --------------------------------------------------------------------------------------------
# 1. Static check
# --------------------------------------------------------------------------------------------
def _root(name) -> str:
    return name.split(".")[0] if isinstance(name, str) else ""


def _is_forbidden(obj) -> bool:
    if isinstance(obj, types.ModuleType):
        return _root(obj.__name__) in FORBIDDEN_ROOTS
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType) and code.co_filename.startswith(_PACKAGE_DIR):
        return True
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        mod = getattr(type(obj), "__module__", None)
    return _root(mod) in FORBIDDEN_ROOTS


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def forbidden_references(fn) -> list[str]:
    r"""Return a description of every forbidden object ``fn`` can reach (empty list: clean).

    Follows global names used by ``fn`` (and by nested functions, lambdas, comprehensions), its
    closure cells, default values, ``import`` statements inside it, and recursively every helper
    function or class defined in the same namespace (the notebook). ``fn`` may be a function,
    a bound method, a ``functools.partial`` or a class.
    """
    found: list[str] = []
    seen: set[int] = set()
    base = fn
    while isinstance(base, functools.partial) or inspect.ismethod(base):
        base = base.func if isinstance(base, functools.partial) else base.__func__
    home = getattr(base, "__module__", None)

    def visit(obj, path: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if _is_forbidden(obj):
            if isinstance(obj, types.ModuleType):
                found.append(f"{path} (module {obj.__name__})")
            else:
                what = getattr(obj, "__qualname__", type(obj).__name__)
                found.append(f"{path} ({getattr(obj, '__module__', '?')}.{what})")
            return
        if isinstance(obj, functools.partial):
            visit(obj.func, path)
            for a in (*obj.args, *obj.keywords.values()):
                visit(a, path)
        elif inspect.ismethod(obj):
            visit(obj.__func__, path)
        elif inspect.isclass(obj) and obj.__module__ == home:
            for name, member in vars(obj).items():
                member = getattr(member, "__func__", member)
                if inspect.isfunction(member):
                    visit(member, f"{path}.{name}")
        elif inspect.isfunction(obj) and obj.__module__ == home:
            _visit_function(obj, path)

    def _visit_function(f, path: str) -> None:
        g = f.__globals__
        for code in _codes(f.__code__):
            for ins in dis.get_instructions(code):
                if ins.opname == "IMPORT_NAME" and _root(ins.argval) in FORBIDDEN_ROOTS:
                    found.append(f"{path}: import {ins.argval}")
            for name in code.co_names:
                if name in g:
                    visit(g[name], f"{path} -> {name}")
        for cell in f.__closure__ or ():
            try:
                visit(cell.cell_contents, f"{path} (closure)")
            except ValueError:  # empty cell
                pass
        for d in (*(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).values()):
            visit(d, f"{path} (default)")

    name = getattr(fn, "__name__", repr(fn))
    if _is_forbidden(fn):
        found.append(f"{name} is itself a reference implementation ({getattr(fn, '__module__', '?')})")
    else:
        visit(fn, name)
    return found


# --------------------------------------------------------------------------------------------
# 2. Run-time lockout
# --------------------------------------------------------------------------------------------
_CALLS: list[str] = []
_SENTINELS: dict[tuple[int, str], types.CodeType] = {}


def _blocked(qualname: str):
    _CALLS.append(qualname)
    raise ReferenceUsed(f"{qualname} is a reference implementation and is disabled while your "
                        "answer is graded: write the computation yourself with NumPy.")


def _sentinel_code(nfree: int, qualname: str) -> types.CodeType:
    key = (nfree, qualname)
    if key not in _SENTINELS:
        free = [f"_free{i}" for i in range(nfree)]
        src = "def _outer():\n"
        src += "".join(f"    {v} = None\n" for v in free)
        src += "    def _locked(*args, **kwargs):\n"
        if free:
            src += "        if False:\n            (" + ", ".join(free) + ",)\n"
        src += (f"        __import__({_THIS_MODULE!r}, fromlist=['_blocked'])._blocked({qualname!r})\n"
                "    return _locked\n")
        ns: dict = {}
        exec(compile(src, f"<locked {qualname}>", "exec"), ns)
        code = ns["_outer"]().__code__
        assert len(code.co_freevars) == nfree
        _SENTINELS[key] = code
    return _SENTINELS[key]


def _reference_functions() -> list[types.FunctionType]:
    """Every Python function (and method) defined by a loaded actgrad module, except this one."""
    out: dict[int, types.FunctionType] = {}

    def add(obj, depth=0):
        if depth > 3:
            return
        obj = getattr(obj, "__func__", obj)  # staticmethod / classmethod / bound method
        if isinstance(obj, functools.partial):
            add(obj.func, depth + 1)
        elif inspect.isfunction(obj):
            if obj.__module__ != _THIS_MODULE and obj.__code__.co_filename.startswith(_PACKAGE_DIR):
                out[id(obj)] = obj
                add(getattr(obj, "__wrapped__", None), depth + 1)
        elif isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                add(f, depth + 1)
        elif inspect.isclass(obj) and _root(obj.__module__) == "actgrad":
            for member in vars(obj).values():
                add(member, depth + 1)
        elif isinstance(obj, dict):
            for v in obj.values():
                add(v, depth + 1)
        elif isinstance(obj, (tuple, list)):
            for v in obj:
                add(v, depth + 1)

    for modname, mod in list(sys.modules.items()):
        if _root(modname) == "actgrad" and modname != _THIS_MODULE and mod is not None:
            for value in list(vars(mod).values()):
                add(value)
    return list(out.values())


@contextmanager
def reference_locked():
    """Within the block, every actgrad function raises :class:`ReferenceUsed` when called.

    On exit the original code is restored; if any reference function was called inside the block
    (even if the caller swallowed the exception), :class:`ReferenceUsed` is raised.
    """
    import actgrad  # noqa: F401  (load every submodule so that all aliases are covered)

    funcs = _reference_functions()
    saved = [(f, f.__code__) for f in funcs]
    start = len(_CALLS)
    try:
        for f, code in saved:
            f.__code__ = _sentinel_code(len(code.co_freevars), f"{f.__module__}.{f.__qualname__}")
        yield
    finally:
        for f, code in saved:
            f.__code__ = code
    calls = _CALLS[start:]
    del _CALLS[start:]
    if calls:
        raise ReferenceUsed("your answer called the reference implementation "
                            + ", ".join(sorted(set(calls))) + "; write the computation yourself.")


def call_student(fn, *args, **kwargs):
    """Call a student's function ``fn(*args, **kwargs)`` for grading.

    Fails with :class:`ReferenceUsed` if ``fn`` (or a helper it uses) references actgrad, torch,
    scipy, ... (static check), or calls any actgrad function at run time (lockout).
    """
    if not callable(fn):
        raise TypeError(f"call_student: expected the function you wrote, got {type(fn).__name__}")
    bad = forbidden_references(fn)
    if bad:
        raise ReferenceUsed(f"{getattr(fn, '__name__', fn)} must be written with NumPy only, but it "
                            "uses a reference library: " + "; ".join(bad))
    with reference_locked():
        return fn(*args, **kwargs)
