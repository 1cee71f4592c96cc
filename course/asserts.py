"""Assertion helpers for the assignments' test cells: every failure says what failed and why.

A test cell calls the student's function through :func:`run` (or :func:`check`, which also
compares), then compares with :func:`close` and states other rules with :func:`expect`::

    from course.asserts import check, close, expect, run
    d = check(sigmoid_prime, x, want=oracle(x), rtol=1e-5)        # call, compare, return
    loss, dZ = run(softmax_cross_entropy, Z, y, uses="log_softmax")
    close(dZ, oracle_grad, "dlogits", rtol=1e-6)

A failure raises ``AssertionError`` whose message names

* the call, its arguments summarized (shape, dtype and range of arrays; keyword values, which
  are the ones that differ from the defaults),
* expected versus got: shape, dtype, how many elements differ, the largest relative error and
  where (with the input value there, for elementwise functions), a few values side by side,
* a hint where the mismatch looks like a common mistake (booleans instead of floats, float32
  promoted to float64, a constant factor such as a missing 1/N, variance for standard
  deviation, the wrong sign, non-finite values from ``log(softmax)``, an overflow in the
  unselected branch of ``np.where``, a wrong axis) or like one of the ``mistakes`` the test
  lists (a candidate wrong answer and what it means),
* a cascade: ``uses="softmax"`` says the test calls the student's ``softmax`` too; if its own
  test failed earlier in the notebook, the message says to fix that first.

RuntimeWarnings (overflow, invalid value, divide by zero) are errors inside :func:`run`, as the
notebooks state. The helpers keep their state (the current call, the functions whose tests
failed) in the test cells' global namespace, so one notebook never sees another's. NumPy only:
students run the visible tests without PyTorch.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

_CALL, _FAILED, _USES, _FN = "__course_call__", "__course_failed__", "__course_uses__", "__course_fn__"


def _ns() -> dict:
    """The globals of the test cell that called a helper."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def _name(fn) -> str:
    slot = getattr(type(fn), "__slots__", ())
    if "_name" in slot:                              # the grader's Proxy of a student function
        return fn._name
    return getattr(fn, "__name__", type(fn).__name__)


def _num(v) -> str:
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)


def summarize(v) -> str:
    """A short description of an argument: arrays by dtype, shape and range."""
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return f"np.{v.dtype}({_num(v.item())})"
        if v.size and v.dtype.kind in "fiu":
            finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
            rng = f" in [{_num(finite.min())}, {_num(finite.max())}]" if finite.size else ""
            if v.size <= 6:
                rng = " [" + ", ".join(_num(t) for t in v.ravel().tolist()) + "]"
            return f"{v.dtype} {v.shape}{rng}"
        return f"{v.dtype} {v.shape}"
    if isinstance(v, dict):
        inner = [f"{k}: {x.dtype}{x.shape}" if isinstance(x, np.ndarray) else f"{k}: {summarize(x)}"
                 for k, x in list(v.items())[:8]]
        return "{" + ", ".join(inner) + (", ..." if len(v) > 8 else "") + "}"
    if isinstance(v, (list, tuple)) and len(v) > 4:
        return f"{type(v).__name__} of {len(v)}"
    if isinstance(v, (float, np.floating, int, np.integer, str, bool, type(None), list, tuple)):
        return repr(v)
    return "cache" if "Handle" in type(v).__name__ else type(v).__name__


def describe_call(fn, args, kwargs) -> str:
    parts = [summarize(a) for a in args] + [f"{k}={summarize(v)}" for k, v in kwargs.items()]
    return f"{_name(fn)}({', '.join(parts)})"


_WARNING_HINTS = {
    "overflow": "an exponent became large and positive. np.where evaluates BOTH branches, so the "
                "branch it does not select still overflows: clip the exponent first "
                "(np.exp(np.minimum(x, 0))) or write the formula with exp(-|x|) or the max trick",
    "divide by zero": "log(0) or 1/0: e.g. np.log(softmax(z)) when softmax underflows to 0; "
                      "use the log-sum-exp form",
    "invalid value": "inf - inf, 0 * inf or inf / inf, usually after an overflow: keep every "
                     "exponent <= 0",
}


def _fail(ns, message: str, hint: str | None = None):
    """Raise the AssertionError for the current call, with the hint and the cascade note."""
    fn = ns.get(_FN)
    ns.setdefault(_FAILED, set()).add(fn)
    lines = [f"{ns.get(_CALL, 'the test')}: {message}"]
    if hint:
        lines.append(f"Hint: {hint}")
    bad = [f"`{d}`" for d in ns.get(_USES, ()) if d in ns.get(_FAILED, ()) and d != fn]
    if bad:
        lines.append(f"This test calls your {', '.join(bad)}; "
                     f"{'its own test fails' if len(bad) == 1 else 'their own tests fail'} too: fix that first.")
    raise AssertionError("\n".join(lines))


def run(fn, *args, uses=(), **kwargs):
    """Call ``fn(*args, **kwargs)`` with RuntimeWarnings as errors; a failure names the call."""
    ns = _ns()
    ns[_CALL], ns[_FN] = describe_call(fn, args, kwargs), _name(fn)
    ns[_USES] = (uses,) if isinstance(uses, str) else tuple(uses)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            return fn(*args, **kwargs)
        except RuntimeWarning as w:
            hint = next((h for k, h in _WARNING_HINTS.items() if k in str(w)), None)
            _fail(ns, f"raised RuntimeWarning: {w} (the tests treat warnings as errors)", hint)
        except NotImplementedError:
            _fail(ns, "raised NotImplementedError: replace `raise NotImplementedError()` with your code")
        except AssertionError:
            raise
        except Exception as e:
            msg = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)
            _fail(ns, f"raised {type(e).__name__}: {msg}")


def expect(condition, message: str, hint: str | None = None) -> None:
    """Assert ``condition`` about the current call; the message says what was expected."""
    if not condition:
        _fail(_ns(), message, hint)


def _candidates(g, w):
    """Hints for a mismatch of same-shaped float arrays that looks like a common mistake."""
    with np.errstate(all="ignore"):
        if np.all(np.isfinite(w)) and not np.all(np.isfinite(g)):
            return ("your result has inf/NaN where the answer is finite: e.g. log of a softmax "
                    "that underflowed to 0 (use log_softmax / log-sum-exp), or an overflowing exp")
        mask = np.abs(w) > 1e-12 * max(np.abs(w).max(), 1e-300)
        if mask.sum() >= 1 and np.all(np.isfinite(g)):
            r = g[mask] / w[mask]
            c = float(np.median(r))
            if np.allclose(r, c, rtol=1e-6) and abs(c - 1) > 1e-6 and np.allclose(g[~mask], 0, atol=1e-9):
                if np.isclose(c, -1):
                    return "your values are the expected ones with the sign flipped"
                n = c if c > 1 else 1 / c
                what = f"{_num(c)} times the expected ones"
                if abs(n - round(n)) < 1e-6:
                    return (f"your values are {what}: a factor {int(round(n))} too "
                            f"{'large' if c > 1 else 'small'} (a missing or extra 1/N, a 2, or a mean "
                            "where a sum is wanted?)")
                return f"your values are {what} (a constant factor off)"
        if np.all(w >= 0) and np.any(np.abs(w - w ** 2) > 1e-3 * np.abs(w)):
            if np.allclose(g, w ** 2, rtol=1e-6, atol=0):
                return "your values are the squares of the expected ones: variance where the standard deviation is wanted?"
            if np.allclose(g ** 2, w, rtol=1e-6, atol=0):
                return "your values are the square roots of the expected ones: standard deviation where the variance is wanted?"
    return None


def close(got, want, what: str | None = None, rtol: float = 1e-7, atol: float = 0.0,
          dtype=None, exact: bool = False, hint: str | None = None, mistakes: dict | None = None,
          inputs=None):
    """Compare ``got`` with ``want`` (shape, dtype, values); the message names the call.

    ``dtype``: the dtype ``got`` must have (default: ``want``'s if ``want`` is a float array).
    ``mistakes``: ``{message: wrong_answer}``; a got that matches a wrong answer gets its message.
    ``inputs``: an array of the input, shown at the worst element for elementwise functions.
    """
    ns = _ns()
    label = f"{what}: " if what else ""
    if isinstance(want, (int, float, np.number)) and not isinstance(want, bool) and np.ndim(got) == 0:
        want_a = np.asarray(want, dtype=np.float64)
        scalar = True
    else:
        want_a, scalar = np.asarray(want), False
    if not scalar and not isinstance(got, (np.ndarray, np.generic, float, int)) and not (
            isinstance(want, (list, tuple)) and isinstance(got, (list, tuple))):
        _fail(ns, f"{label}expected a NumPy array, got {type(got).__name__} {summarize(got)}")
    got_a = np.asarray(got)
    if dtype is None and isinstance(want, np.ndarray) and want_a.dtype.kind == "f":
        dtype = want_a.dtype
    if got_a.dtype == bool and want_a.dtype != bool:
        _fail(ns, f"{label}expected {want_a.dtype} values, got booleans",
              "return floats of the input's dtype, e.g. (x > 0).astype(x.dtype)")
    if not scalar and got_a.shape != want_a.shape:
        h = hint
        if got_a.shape == want_a.shape[::-1]:
            h = "your result is transposed"
        elif got_a.size < want_a.size or got_a.ndim != want_a.ndim:
            axis = ("check which axis you reduce over (axis=0 is the batch, axis=-1 the "
                    "features) and keepdims=True")
            h = f"{h}; {axis}" if h else axis
        _fail(ns, f"{label}expected shape {want_a.shape}, got {got_a.shape}", h)
    if dtype is not None and got_a.dtype != np.dtype(dtype):
        h = ("float32 in must give float32 out: a float64 constant or array (np.array(..., dtype="
             "float), np.ones(n)) promotes; convert with .astype(x.dtype)"
             if np.dtype(dtype) == np.float32 else "convert the input with as_float_array first")
        _fail(ns, f"{label}expected dtype {np.dtype(dtype)}, got {got_a.dtype}", h)
    g, w = got_a.astype(np.float64), want_a.astype(np.float64)
    with np.errstate(all="ignore"):
        if exact:
            bad = ~((g == w) | (np.isnan(g) & np.isnan(w)))
        else:
            bad = ~(np.isclose(g, w, rtol=rtol, atol=atol) | (np.isnan(g) & np.isnan(w)))
        if not bad.any():
            return got
        err = np.where(bad, np.abs(g - w) / np.maximum(np.abs(w), 1e-300), 0.0)
        err = np.where(np.isnan(err), np.inf, err)
    idx = np.unravel_index(int(np.argmax(err)), w.shape) if w.ndim else ()
    at = f" at index {tuple(int(i) for i in idx)}" if w.ndim else ""
    if inputs is not None and np.shape(inputs) == w.shape and w.ndim:
        at += f" (input {_num(np.asarray(inputs)[idx].item())})"
    tol = "exactly" if exact else f"rtol={rtol:g}, atol={atol:g}"
    if w.size == 1:
        h = next((m for m, wrong in (mistakes or {}).items()
                  if np.isclose(float(g.ravel()[0]), float(np.ravel(wrong)[0]), rtol=max(rtol, 1e-9))), None)
        h = f"{h}; {hint}" if h and hint else h or hint
        _fail(ns, f"{label}expected {_num(w.ravel()[0].item())}, got {_num(g.ravel()[0].item())} "
                  f"(relative error {_num(float(err.ravel()[0]))}; {tol})", h)
    lines = [f"{label}{int(bad.sum())} of {w.size} values differ ({tol}); largest relative error "
             f"{_num(float(err[idx]))}{at}: expected {_num(w[idx].item())}, got {_num(g[idx].item())}"]
    if w.ndim and w.size > 1:
        flat = np.flatnonzero(bad.ravel())[:4]
        lines.append("  first differences (index: expected vs got): " + "; ".join(
            f"{tuple(int(i) for i in np.unravel_index(k, w.shape))}: {_num(w.ravel()[k])} vs "
            f"{_num(g.ravel()[k])}" for k in flat))
    h = None
    for message, wrong in (mistakes or {}).items():
        with np.errstate(all="ignore"):
            if np.shape(wrong) == g.shape and np.allclose(g, np.asarray(wrong, dtype=np.float64),
                                                          rtol=max(rtol, 1e-9), atol=max(atol, 1e-12)):
                h = message
                break
    h = h or _candidates(g, w)
    if hint:
        h = f"{h}; {hint}" if h else hint
    _fail(ns, "\n".join(lines), h)


def check(fn, *args, want, rtol: float = 1e-7, atol: float = 0.0, dtype=None, exact=False,
          hint=None, mistakes=None, uses=(), **kwargs):
    """``run(fn, *args, **kwargs)`` then ``close(result, want, ...)``; returns the result.

    The first array argument is shown at the worst element when it has the result's shape."""
    got = run(fn, *args, uses=uses, **kwargs)
    first = next((a for a in args if isinstance(a, np.ndarray)), None)
    return close(got, want, None, rtol=rtol, atol=atol, dtype=dtype, exact=exact, hint=hint,
                 mistakes=mistakes, inputs=first)


def raises(exc_type, fn, *args, **kwargs):
    """Expect ``fn(*args, **kwargs)`` to raise ``exc_type``."""
    ns = _ns()
    ns[_CALL], ns[_FN], ns[_USES] = describe_call(fn, args, kwargs), _name(fn), ()
    try:
        fn(*args, **kwargs)
    except exc_type:
        return
    except Exception as e:
        _fail(ns, f"expected {exc_type.__name__}, got {type(e).__name__}: {e}")
    _fail(ns, f"expected {exc_type.__name__}, but it returned normally")
