r"""Loss functions returning ``(loss, gradient)`` pairs, CS231n style.

Each returns the mean loss as a **Python float** (accumulated in float64 whatever the input dtype)
and the gradient with respect to the first argument as an array of that argument's shape and
float dtype (float32 -> float32, float64 -> float64, ints -> float64), scaled for the mean,
exactly as PyTorch's ``reduction="mean"``. Inputs follow :mod:`actgrad.activations`' coercion rule.
"""
from __future__ import annotations

import math

import numpy as np

from ._core import as_float_array, sigmoid_k, softplus_k
from .softmax import log_softmax

__all__ = ["softmax_cross_entropy", "mse", "bce_with_logits"]


def _same_shape(a: np.ndarray, b: np.ndarray, fname: str, names: tuple[str, str]) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{fname}: {names[0]} and {names[1]} must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{fname}: got empty input (shape {a.shape}); the mean is undefined")


def softmax_cross_entropy(logits, y) -> tuple[float, np.ndarray]:
    r"""Mean softmax cross-entropy over a batch, and its gradient w.r.t. the logits.

    .. math:: L = -\frac1N\sum_{n=1}^N \log\mathrm{softmax}(z_n)_{y_n},\qquad
              \frac{\partial L}{\partial z_n} = \frac1N\bigl(\mathrm{softmax}(z_n) - e_{y_n}\bigr)

    The fused gradient :math:`p - \text{onehot}` never forms :math:`1/p`, and the loss uses
    log-sum-exp, so logits of +-1e4 are fine. Same as ``F.cross_entropy(logits, y)``.

    Shapes: ``logits`` (N, C) float; ``y`` (N,) integers in [0, C). Returns ``(loss, dlogits)``
    with ``dlogits`` of shape (N, C). Raises ``ValueError`` for wrong shapes or out-of-range labels,
    ``TypeError`` for non-integer labels.
    """
    fname = "softmax_cross_entropy"
    z, dt = as_float_array(logits, fname, "logits")
    if z.ndim != 2:
        raise ValueError(f"{fname}: logits must be 2-D (N, C), got shape {z.shape}")
    n, c = z.shape
    if n == 0 or c == 0:
        raise ValueError(f"{fname}: logits must be non-empty, got shape {z.shape}")
    if isinstance(y, (str, bytes)) or y is None:
        raise TypeError(f"{fname}: y must be integer class labels, got {type(y).__name__}")
    yy = np.asarray(y)
    if yy.dtype.kind not in "iu":
        raise TypeError(f"{fname}: y must be integer class labels, got dtype {yy.dtype}")
    if yy.shape != (n,):
        raise ValueError(f"{fname}: y must have shape ({n},) to match logits {z.shape}, got {yy.shape}")
    if np.minimum.reduce(yy) < 0 or np.maximum.reduce(yy) >= c:
        raise ValueError(f"{fname}: labels must be in [0, {c}), got min {yy.min()} and max {yy.max()}")
    if dt != z.dtype:  # float16 logits: round them to float16 first, as the public function would
        z = z.astype(dt).astype(z.dtype)
    base = np.arange(0, n * c, c)  # flat (row-major) index of each row's first entry; 1-D fancy indexing
    at_y = base + yy                # with these is several times cheaper than with (rows, cols) pairs
    with np.errstate(under="ignore", invalid="ignore"):
        logp = _log_softmax_rows(z, base)
        loss = -float(np.add.reduce(logp.ravel()[at_y], dtype=np.float64)) / n  # summed in float64
        if not math.isfinite(loss):  # NaN or +-inf in some row: the general path (NaN where PyTorch has NaN)
            logp = np.ascontiguousarray(log_softmax(z, axis=1))
            loss = -float(np.add.reduce(logp.ravel()[at_y], dtype=np.float64)) / n
        p = np.exp(logp, out=logp)  # the softmax
    p.ravel()[at_y] -= 1.0  # p is C-contiguous: ravel() is a view
    p /= n
    return loss, np.asarray(p, dtype=dt)


def _log_softmax_rows(z, base):
    r"""log_softmax of the rows of ``z`` (N, C) as a fresh C-contiguous array (``base``: the flat index
    of each row's first entry): :math:`(z - m) - \operatorname{log1p}\sum_{j \ne j^*} e^{z_j - m}` with
    :math:`m = z_{j^*}` the row max, whose own term is exactly 1 (see :func:`actgrad.softmax.log_softmax`).
    A row whose max is NaN or +-inf comes out NaN, and only such a row does (with a finite max every
    term is in [0, 1]): the caller checks the loss."""
    at_max = base + z.argmax(axis=1)  # the first NaN, if there is one
    logp = np.subtract(z, z.ravel()[at_max][:, None], order="C")
    e = np.exp(logp)
    e.ravel()[at_max] = 0.0
    rest = np.add.reduce(e, axis=1, keepdims=True)   # the non-max terms, in [0, C - 1]
    logp -= np.log1p(rest, out=rest)
    return logp


def mse(pred, target) -> tuple[float, np.ndarray]:
    r"""Mean squared error over **all** elements, and its gradient w.r.t. ``pred``.

    .. math:: L = \frac1M\sum_{i=1}^M (p_i - t_i)^2,\qquad \frac{\partial L}{\partial p} = \frac{2}{M}(p - t)

    Same as ``F.mse_loss(pred, target)`` (``reduction="mean"``). Shapes: ``pred`` and ``target``
    identical (no broadcasting: PyTorch only warns, we raise ``ValueError``); ``dpred`` has that shape.
    """
    fname = "mse"
    p, dt = as_float_array(pred, fname, "pred")
    t, _ = as_float_array(target, fname, "target")
    _same_shape(p, t, fname, ("pred", "target"))
    diff = p.astype(np.float64) - t.astype(np.float64)
    loss = float(np.mean(diff * diff))
    return loss, np.asarray(diff * (2.0 / diff.size), dtype=dt)


def bce_with_logits(logits, target) -> tuple[float, np.ndarray]:
    r"""Mean binary cross-entropy on logits, and its gradient w.r.t. the logits.

    .. math:: L = \frac1M\sum_i \Bigl(\mathrm{softplus}(z_i) - t_i z_i\Bigr)
              = -\frac1M\sum_i\bigl(t_i\log\sigma(z_i) + (1-t_i)\log(1-\sigma(z_i))\bigr),
              \qquad \frac{\partial L}{\partial z} = \frac1M\bigl(\sigma(z) - t\bigr)

    Computed with the overflow-free softplus, so logits of +-1e4 are fine; same as
    ``F.binary_cross_entropy_with_logits(logits, target)``. Shapes: identical, any; ``target``
    values in [0, 1] (soft labels allowed; outside raises ``ValueError``).
    """
    fname = "bce_with_logits"
    z, dt = as_float_array(logits, fname, "logits")
    t, _ = as_float_array(target, fname, "target")
    _same_shape(z, t, fname, ("logits", "target"))
    if np.any((t < 0) | (t > 1)):
        raise ValueError(f"{fname}: target values must be in [0, 1], got min {t.min()} and max {t.max()}")
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    with np.errstate(under="ignore"):
        loss = float(np.mean(softplus_k(z64) - t64 * z64))
        grad = (sigmoid_k(z64) - t64) / z64.size
    return loss, np.asarray(grad, dtype=dt)
