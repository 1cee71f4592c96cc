"""Private core of the functional API: input coercion and three stable kernels.

Shared by :mod:`actgrad.activations`, :mod:`actgrad.softmax` and :mod:`actgrad.losses`.

One rule for the whole functional core:

* accepted: Python/NumPy scalars, (nested) lists and arrays of bool, int, uint or real float;
* float32 -> float32, float64 -> float64, bool/int/uint -> float64,
  float16 -> float16 (computed internally in float32, then rounded back; no overflow in the
  intermediate steps), longdouble -> float64 (NumPy's extended precision is not supported);
* rejected with ``TypeError`` naming the calling function and the type it got: complex numbers,
  strings, bytes, ``None``, object arrays, datetimes; ragged lists raise ``ValueError``;
* every function returns an ``np.ndarray``; a 0-d input (e.g. a Python float) gives a 0-d array,
  never a NumPy scalar.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

__all__ = ["as_float_array", "x_and_param", "out_dtype", "elementwise", "real_scalar", "sigmoid_k", "dsigmoid_k", "softplus_k",
           "nan_like_input", "step_k", "expneg_abs_k", "sigmoid_parts_k", "dsigmoid_from_parts_k"]


def as_float_array(x: Any, fname: str, argname: str = "x") -> tuple[np.ndarray, np.dtype]:
    """Return ``(work, out_dtype)``: ``work`` is a float32/float64 array to compute with.

    ``work`` may share memory with ``x`` (callers must not write into it).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{fname}: {argname} must be a real number or array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise ValueError(f"{fname}: could not convert {argname} ({type(x).__name__}) to an array: {exc}") from None
    dt = arr.dtype
    if dt.kind in "biu":
        return arr.astype(np.float64), np.dtype(np.float64)
    if dt.kind == "f":
        if dt == np.float16:
            return arr.astype(np.float32), dt
        if dt in (np.float32, np.float64):
            return arr, dt
        return arr.astype(np.float64), np.dtype(np.float64)
    what = type(x).__name__ if not isinstance(x, np.ndarray) else f"ndarray of dtype {dt}"
    if isinstance(x, (list, tuple)):
        what = f"{type(x).__name__} converting to dtype {dt}"
    raise TypeError(f"{fname}: {argname} must be real numbers (bool, int or float), got {what}")


def out_dtype(*dtypes: np.dtype) -> np.dtype:
    """Common output dtype of several coerced inputs (float16 < float32 < float64)."""
    return np.result_type(*dtypes)


def real_scalar(value: Any, fname: str, argname: str) -> float:
    """Validate a real, finite hyper-parameter (alpha, beta, ...) and return it as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fname}: {argname} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{fname}: {argname} must be finite, got {value}")
    return value


def x_and_param(x: Any, p: Any, fname: str, pname: str) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Coerce ``x`` and a parameter ``p`` (PReLU's slope, Swish's beta) that must broadcast to
    ``x``'s shape without enlarging it; ``p`` is returned in ``x``'s working dtype."""
    xw, dt = as_float_array(x, fname)
    pw, _ = as_float_array(p, fname, pname)
    try:
        ok = np.broadcast_shapes(xw.shape, pw.shape) == xw.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fname}: {pname} of shape {pw.shape} does not broadcast to x's shape {xw.shape}")
    return xw, pw.astype(xw.dtype, copy=False), dt


def elementwise(core: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Wrap ``core(work_array, **kwargs)`` with coercion and the dtype/0-d output rule."""

    @functools.wraps(core)
    def wrapper(x, *args, **kwargs):
        work, dt = as_float_array(x, core.__name__)
        with np.errstate(under="ignore"):  # underflow to 0 is the intended result everywhere
            if work.ndim == 0:  # kernels work in place on their temporaries: give them a 1-element array
                out = core(work.reshape(1), *args, **kwargs).reshape(())
            else:
                out = core(work, *args, **kwargs)
        if dt == np.float16:  # rounding a float32 result above 65504 to float16 inf is correct: no warning
            with np.errstate(over="ignore"):
                return np.asarray(out, dtype=dt)
        return np.asarray(out, dtype=dt)  # np.asarray keeps 0-d results as 0-d arrays

    return wrapper


# --- kernels on already-coerced float arrays -------------------------------------------------
# Speed notes (10^6 float32, one core): a simple ufunc pass costs ~0.2-0.4 ms, a fresh output array
# ~0.15 ms more (page faults), but np.where / masked np.copyto on a random mask ~5 ms. So kernels
# select branch-free (max/min, exp(min(x, 0)), masks cast to 0/1) and update their own temporaries
# in place (never the input, which may be the caller's array). Kernels need ndim >= 1 (see above).

def nan_like_input(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Piecewise derivatives built from comparisons map NaN to a constant: put NaN back into ``d``.

    ``d`` (fresh, same shape as ``x``) is modified in place; one reduction when there is no NaN.
    """
    if x.size and np.isnan(x.max()):  # max propagates NaN
        np.copyto(d, x, where=np.isnan(x))
    return d


def step_k(x: np.ndarray, hi: float, lo: float) -> np.ndarray:
    """``hi`` where x > 0, else ``lo`` (also for NaN), exactly, in x's dtype."""
    d = (x > 0).astype(x.dtype)                       # 1.0 / 0.0
    if hi == 1.0 and 0.0 <= lo <= 1.0:
        return np.maximum(d, lo, out=d)
    if hi == 1.0 and lo > 1.0:
        n = (x <= 0).astype(x.dtype)
        n *= lo
        return np.maximum(n, d, out=n)
    n = 1.0 - d                                       # one of the two terms is exactly 0: exact sum
    d *= hi
    n *= lo
    d += n
    return d


def expneg_abs_k(x: np.ndarray) -> np.ndarray:
    """A fresh array z = exp(-|x|) in (0, 1] (never overflows)."""
    z = np.abs(x)
    np.negative(z, out=z)
    return np.exp(z, out=z)


def sigmoid_parts_k(x: np.ndarray, z: np.ndarray):
    """Given z = exp(-|x|): ``(sigma(x), 1 + z)``, sigma = exp(min(x, 0)) / (1 + z), i.e. 1/(1+z) for
    x >= 0 and z/(1+z) for x < 0 without a branch (exp(min(x, 0)) is exactly 1 for x >= 0)."""
    s = np.minimum(x, 0.0)
    np.exp(s, out=s)
    d = z + 1.0
    s /= d
    return s, d


def sigmoid_k(x: np.ndarray) -> np.ndarray:
    """sigma(x) via z = exp(-|x|): 1/(1+z) for x >= 0, z/(1+z) otherwise (never overflows)."""
    d = expneg_abs_k(x)
    d += 1.0                                          # as sigmoid_parts_k, without keeping z
    s = np.minimum(x, 0.0)
    np.exp(s, out=s)
    s /= d
    return s


def dsigmoid_from_parts_k(z: np.ndarray, d: np.ndarray) -> np.ndarray:
    """z/(1+z)^2 given z and d = 1 + z; overwrites (and returns) ``z``; ``d`` is squared in place."""
    np.square(d, out=d)
    z /= d
    return z


def dsigmoid_k(x: np.ndarray) -> np.ndarray:
    """sigma'(x) = z/(1+z)^2 with z = exp(-|x|) (even in x; no cancellation unlike s(1-s))."""
    z = expneg_abs_k(x)
    return dsigmoid_from_parts_k(z, z + 1.0)


def softplus_k(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) as max(x, 0) + log1p(exp(-|x|)) (never overflows; inf -> inf, -inf -> 0)."""
    z = expneg_abs_k(x)
    np.log1p(z, out=z)
    z += np.maximum(x, 0.0)
    return z
