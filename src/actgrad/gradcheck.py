r"""Numerical gradient checking (central differences), as in CS231n's assignments.

Central differences have truncation error :math:`O(h^2)` and rounding error
:math:`O(\varepsilon / h)`; in float64 (:math:`\varepsilon \approx 2.2\times10^{-16}`) the sweet spot is
:math:`h \approx 10^{-5}\ldots10^{-6}`, giving about 10 correct digits. In float32
(:math:`\varepsilon \approx 1.2\times10^{-7}`) the same ``h`` gives garbage, so check in float64.

Rules of thumb for :func:`rel_error` of a full gradient (CS231n, :cite:`cs231n`):

* ``< 1e-7``: correct;
* ``1e-7 .. 1e-4``: suspicious unless the function has kinks (ReLU, leaky ReLU, max);
* ``> 1e-4``: wrong for smooth functions; ``> 1e-2``: almost surely a bug.

A finite difference that straddles a kink (e.g. ReLU at 0) compares two different one-sided
slopes and can be wrong even for a correct analytic gradient: keep inputs away from kinks.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["numerical_gradient", "numerical_vjp", "rel_error", "check_gradients"]


def _check_x(x, fname):
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{fname}: x must be a floating-point numpy array (it is perturbed in place), "
                        f"got {type(x).__name__}" + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
    if x.dtype != np.float64:
        warnings.warn(f"{fname}: x has dtype {x.dtype}; finite differences are only meaningful in float64",
                      UserWarning, stacklevel=3)


def _scalar(v, fname):
    v = np.asarray(v)
    if v.size != 1:
        raise ValueError(f"{fname}: f must return a scalar, got an array of shape {v.shape}")
    return float(v.reshape(()))


def _central(f, x: np.ndarray, h: float):
    """Yield ``(index, f(x + h e_i), f(x - h e_i))`` for every entry of ``x``, perturbing ``x`` in
    place and restoring it exactly, also when ``f`` raises."""
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i].copy()
        try:
            x[i] = old + h
            fp = f(x)
            x[i] = old - h
            fm = f(x)
        finally:
            x[i] = old
        yield i, fp, fm


def numerical_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    r"""Gradient of a scalar function by central differences:

    .. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}.

    ``f`` is called as ``f(x)`` with ``x`` perturbed **in place** one entry at a time (so ``f`` may
    also ignore its argument and read ``x`` through a closure, e.g. a model parameter). ``x`` is
    restored exactly after each entry, also when ``f`` raises. Returns an array of ``x.shape``
    (float64). Cost: ``2 * x.size`` calls of ``f``.
    """
    _check_x(x, "numerical_gradient")
    grad = np.zeros(x.shape, dtype=np.float64)
    for i, fp, fm in _central(lambda v: _scalar(f(v), "numerical_gradient"), x, h):
        grad[i] = (fp - fm) / (2.0 * h)
    return grad


def numerical_vjp(f, x: np.ndarray, dout, h: float = 1e-6) -> np.ndarray:
    r"""Vector-Jacobian product :math:`(\partial f/\partial x)^\top \text{dout}` by central differences:

    .. math:: g_i \approx \sum_j \text{dout}_j\,\frac{f_j(x + h e_i) - f_j(x - h e_i)}{2h}.

    ``f`` maps an array to an array of ``dout``'s shape -- a layer's forward pass, where ``dout``
    is the upstream gradient. This is what an analytic ``backward(dout)`` must return.
    ``x`` is perturbed in place and always restored. Returns a float64 array of ``x.shape``.
    """
    _check_x(x, "numerical_vjp")
    dout = np.asarray(dout, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    for i, fp, fm in _central(lambda v: np.array(f(v), dtype=np.float64), x, h):
        if fp.shape != dout.shape:
            raise ValueError(f"numerical_vjp: f(x) has shape {fp.shape} but dout has shape {dout.shape}")
        grad[i] = np.sum((fp - fm) * dout) / (2.0 * h)
    return grad


def rel_error(a, b, tiny: float = 1e-300) -> float:
    r"""Relative error of two arrays, normalised by their overall magnitude:

    .. math:: \text{rel}(a, b) = \frac{\max_i |a_i - b_i|}{\max\left(\max_i (|a_i| + |b_i|),\ \text{tiny}\right)}.

    Unlike CS231n's element-wise :math:`\max_i |a_i-b_i| / \max(10^{-8}, |a_i|+|b_i|)`, one global
    denominator means tiny entries (e.g. gradients of nearly dead units) do not blow the error up.
    Range :math:`[0, 1]`; 0 when both are all-zero; NaN if either contains NaN. Shapes must broadcast.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    try:
        diff = np.abs(a - b)
    except ValueError:
        raise ValueError(f"rel_error: shapes {a.shape} and {b.shape} do not match") from None
    if diff.size == 0:
        return 0.0
    if np.isnan(diff).any():
        return float("nan")
    scale = np.max(np.abs(a) + np.abs(b))
    return float(np.max(diff) / max(scale, tiny))


def check_gradients(model, X, y, loss: str = "softmax_cross_entropy", h: float = 1e-6,
                    num_checks: int | None = None, rng=None) -> dict[str, float]:
    r"""Compare ``model.loss``'s analytic gradients with central differences, parameter by parameter.

    ``model`` is an :class:`actgrad.mlp.MLP` (anything with ``params`` and ``loss(X, y, loss=...)``).
    With ``num_checks=None`` every entry is checked (cost ``2 * n_params`` loss evaluations);
    otherwise ``num_checks`` random entries per parameter (drawn from ``rng``, a Generator or seed)
    and the error is computed on those entries only. Returns ``{name: rel_error}`` (see
    :func:`rel_error`). The model must be float64: a float32 model triggers a ``UserWarning``
    and errors around 1e-2 that mean nothing. Parameters are left unchanged.
    """
    dtype = next(iter(model.params.values())).dtype
    if dtype != np.float64:
        warnings.warn(f"check_gradients: model dtype is {dtype}; finite differences need float64 "
                      "(build the model with dtype=np.float64)", UserWarning, stacklevel=2)
    _, grads = model.loss(X, y, loss=loss)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def f(_):
        return model.loss(X, y, loss=loss)[0]

    errors = {}
    for name, p in model.params.items():
        if num_checks is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                num = numerical_gradient(f, p, h)
            errors[name] = rel_error(grads[name], num)
            continue
        idx = rng.integers(p.size, size=min(num_checks, p.size))
        num, ana = np.empty(idx.size), np.asarray(grads[name]).reshape(-1)[idx]
        for k, j in enumerate(idx):
            i = np.unravel_index(j, p.shape)
            old = p[i].copy()
            try:
                p[i] = old + h
                fp = float(f(p))
                p[i] = old - h
                fm = float(f(p))
            finally:
                p[i] = old
            num[k] = (fp - fm) / (2.0 * h)
        errors[name] = rel_error(ana, num)
    return errors
