"""What the grader holds of the student's objects, and how their changes come back.

A :class:`Proxy` is a function (or class) the student's cells defined, called in the student
process; a :class:`Handle` is an object that is not data and so stays there (a3's caches),
usable as an argument, callable, and readable by attribute, item and length, always answered
with data or another handle. :func:`_copy_into` mirrors in-place changes into the grader's own
argument objects; :func:`_exception` re-raises the student's exception under its own name.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import warnings

import numpy as np


class StudentError(Exception):
    """The student's code raised an exception of its own type (its name and message are here)."""


class _Remote:
    """Something in the student process, named on the wire by ``_ref``; calls and attribute reads go there."""
    __slots__ = ("_proc", "_ref")

    def __call__(self, *args, **kwargs):
        return self._proc.call("call", self._ref, args, kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._proc.call("attr", self._ref, attr=attr)


class Proxy(_Remote):
    """A function (or class) defined by the student's cells, called in the student process."""
    __slots__ = ("_name",)

    def __init__(self, proc, name):
        self._proc, self._name, self._ref = proc, name, {"P": name}

    def __repr__(self):
        return f"<student's {self._name}>"


class Handle(_Remote):
    """An object that stays in the student process (not data); can be passed back in."""
    __slots__ = ("_id",)

    def __init__(self, proc, n):
        self._proc, self._id, self._ref = proc, n, {"H": n}

    def __getitem__(self, key):
        return self._proc.call("item", self._ref, (key,))

    def __len__(self):
        n = self._proc.call("len", self._ref)
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
