r"""Softmax, log-softmax, the softmax VJP and the (teaching-only) softmax Jacobian.

Re-exported by :mod:`actgrad.activations`. Inputs follow the package's coercion rule
(float32 -> float32, float64 -> float64, ints -> float64, a 0-d result for 0-d input is not
possible here because softmax needs an axis: 0-d input raises ``ValueError``).
Rows (slices along ``axis``) containing ``+inf``, or made only of ``-inf``, give ``nan`` as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from ._core import as_float_array, out_dtype

__all__ = ["softmax", "log_softmax", "softmax_backward", "softmax_jacobian"]


def _prep(x, fname: str, axis: int):
    work, dt = as_float_array(x, fname)
    if work.ndim == 0:
        raise ValueError(f"{fname}: input must have at least one dimension, got a 0-d value")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{fname}: axis must be an int, got {type(axis).__name__}")
    if not -work.ndim <= axis < work.ndim:
        raise ValueError(f"{fname}: axis {axis} is out of range for an input with {work.ndim} dimension(s)")
    return work, dt


def _shifted(work: np.ndarray, axis: int):
    """``(x - max(x), finite)`` along axis (a fresh array), with the max of a slice containing NaN or
    +inf, or made only of -inf, replaced by 0; ``finite`` tells whether no slice needed that."""
    if work.ndim == 2 and axis in (1, -1):  # rows: argmax + gather beats max(axis=1) (NaN/inf alike)
        m = work[np.arange(work.shape[0]), work.argmax(axis=1)][:, None]
    else:
        m = work.max(axis=axis, keepdims=True)
    finite = bool(np.isfinite(m).all())
    if not finite:
        m = np.where(np.isfinite(m), m, 0.0)
    return work - m, finite


def _log_softmax_k(work: np.ndarray, axis: int) -> np.ndarray:
    """log_softmax of an already-coerced, non-empty float array (see :func:`log_softmax`)."""
    with np.errstate(under="ignore"):
        if work.ndim == 2 and axis in (1, -1):  # rows (logits): one argmax serves the max and the log1p trick
            rows, idx = np.arange(work.shape[0]), work.argmax(axis=1)
            m = work[rows, idx]
            if np.isfinite(m).all():  # else: the general path below
                z = work - m[:, None]
                e = np.exp(z)
                e[rows, idx] = 0.0    # the max's term is exactly 1: log-sum-exp = log1p(sum of the others)
                rest = e.sum(axis=1, keepdims=True)
                z -= np.log1p(rest, out=rest)
                return z
        z, finite = _shifted(work, axis)
        e = np.exp(z)
        if finite:  # every slice has a finite max: its sum is in [1, n], no NaN/inf anywhere
            ok = None
        else:
            s = np.sum(e, axis=axis, keepdims=True)
            ok = np.isfinite(s) & (s > 0)
        # the max contributes exactly e^0 = 1: log(1 + rest) via log1p keeps log-probs near 0 accurate
        if z.ndim == 2 and axis in (1, -1):
            e[np.arange(z.shape[0]), z.argmax(axis=1)] = 0.0
        else:
            np.put_along_axis(e, np.argmax(z, axis=axis, keepdims=True), 0.0, axis=axis)
        rest = np.sum(e, axis=axis, keepdims=True)
        if ok is None:
            z -= np.log1p(rest, out=rest)
            return z
        lse = np.log1p(np.where(ok, rest, 0.0))
        return np.where(ok, z - lse, np.nan)


def softmax(x, axis: int = -1) -> np.ndarray:
    r"""Softmax along ``axis``.

    .. math:: \mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},\qquad m = \max_j x_j

    Subtracting the max (which changes nothing mathematically) keeps every exponent <= 0,
    so nothing overflows even at x = 1e4.
    Shape: same as ``x``. Range: (0, 1), each slice sums to 1 (entries can underflow to 0).
    """
    work, dt = _prep(x, "softmax", axis)
    if work.size == 0:
        return np.empty(work.shape, dtype=dt)
    with np.errstate(under="ignore"):
        e, finite = _shifted(work, axis)
        np.exp(e, out=e)
        s = np.sum(e, axis=axis, keepdims=True)
        if finite:  # sums in [1, n]
            e /= s
            out = e
        else:
            ok = np.isfinite(s) & (s > 0)
            out = np.divide(e, s, out=np.full(e.shape, np.nan, dtype=e.dtype), where=ok)
    return np.asarray(out, dtype=dt)


def log_softmax(x, axis: int = -1) -> np.ndarray:
    r"""Log-softmax along ``axis``, via the log-sum-exp trick.

    .. math:: \log\mathrm{softmax}(x)_i = (x_i - m) - \log\sum_j e^{x_j - m}
              = (x_i - m) - \operatorname{log1p}\Bigl(\sum_{j \ne j^*} e^{x_j - m}\Bigr)

    (:math:`j^*` = argmax; its term is exactly 1, and ``log1p`` keeps log-probabilities near 0
    accurate to relative precision, better than PyTorch in float32).

    Use this (not ``log(softmax(x))``, which gives ``-inf`` once an entry underflows) inside
    cross-entropy. Shape: same as ``x``. Range: (-inf, 0].
    """
    work, dt = _prep(x, "log_softmax", axis)
    if work.size == 0:
        return np.empty(work.shape, dtype=dt)
    return np.asarray(_log_softmax_k(work, axis), dtype=dt)


def softmax_backward(dout, s, axis: int = -1) -> np.ndarray:
    r"""Vector-Jacobian product of softmax, given its *output* ``s``.

    .. math:: \frac{\partial L}{\partial x} = s \odot \Bigl(g - \sum_j g_j s_j\Bigr),
              \qquad g = \frac{\partial L}{\partial s}

    i.e. :math:`J^\top g` with :math:`J = \mathrm{diag}(s) - s s^\top`, in O(n) per slice
    instead of building J. Shapes: ``dout`` and ``s`` identical, any number of dimensions;
    returns that shape. Raises ``ValueError`` if the shapes differ.
    """
    g, gdt = _prep(dout, "softmax_backward", axis)
    sw, sdt = as_float_array(s, "softmax_backward", "s")
    if g.shape != sw.shape:
        raise ValueError(f"softmax_backward: dout and s must have the same shape, got {g.shape} and {sw.shape}")
    dt = out_dtype(gdt, sdt)
    t = g * sw                                   # dtype >= g's and s's: safe to reuse for g - dot
    dot = np.sum(t, axis=axis, keepdims=True)
    np.subtract(g, dot, out=t)
    t *= sw
    return np.asarray(t, dtype=dt)


def softmax_jacobian(x) -> np.ndarray:
    r"""Full Jacobian of softmax for a 1-D input (for teaching and checking; O(n^2) memory).

    .. math:: J_{ij} = \frac{\partial s_i}{\partial x_j} = s_i(\delta_{ij} - s_j),
              \qquad J = \mathrm{diag}(s) - s s^\top

    Shape: ``x`` is (n,); returns (n, n), symmetric, rows sum to 0, singular (J 1 = 0).
    Raises ``ValueError`` for input that is not 1-D; use :func:`softmax_backward` for batches.
    """
    work, _ = as_float_array(x, "softmax_jacobian")
    if work.ndim != 1:
        raise ValueError(f"softmax_jacobian: x must be 1-D (one vector), got shape {work.shape}; "
                         "use softmax_backward for batches")
    s = softmax(x)
    return np.diag(s) - np.outer(s, s)
