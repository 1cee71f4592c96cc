r"""Adaptive activations: Swish with a learnable :math:`\beta`, and an MLP that learns it.

Swish (Ramachandran et al., 2017) with slope parameter :math:`\beta`:

.. math::
    f(x; \beta) = x\,\sigma(\beta x), \qquad
    \frac{\partial f}{\partial x} = \sigma(\beta x) + \beta x\,\sigma(\beta x)\bigl(1-\sigma(\beta x)\bigr), \qquad
    \frac{\partial f}{\partial \beta} = x^2\,\sigma(\beta x)\bigl(1-\sigma(\beta x)\bigr).

:math:`\beta = 1` is SiLU (:func:`actgrad.activations.silu`); :math:`\beta \to \infty` tends to ReLU,
:math:`\beta = 0` gives the linear :math:`x/2`. Learnable PReLU slopes live in
:mod:`actgrad.activations` (``prelu*``) and :class:`actgrad.mlp.MLP` (``activation="prelu"``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import activations as _A
from ._core import as_float_array, x_and_param
from .mlp import MLP, LayerCache

__all__ = ["swish_beta", "swish_beta_prime", "swish_beta_grad_beta", "swish_beta_backward",
           "SwishBetaMLP"]


class _Args(NamedTuple):
    x: np.ndarray
    beta: np.ndarray
    dtype: np.dtype


def _args(x, beta, fname) -> _Args:
    return _Args(*x_and_param(x, beta, fname, "beta"))


def _sig_and_slope(x, beta):
    """:math:`\\sigma(\\beta x)` and :math:`\\sigma'(\\beta x) = \\sigma(1-\\sigma)` (stable closed forms)."""
    with np.errstate(over="ignore", invalid="ignore"):
        bx = beta * x
    return _A.sigmoid(bx), _A.sigmoid_prime(bx)


def swish_beta(x, beta) -> np.ndarray:
    r"""Swish :math:`x\,\sigma(\beta x)`. ``beta``: a scalar or an array broadcasting to ``x`` (e.g. one
    per unit, shape ``(H,)`` for ``x`` of shape ``(N, H)``). Returns ``x``'s shape and dtype.
    Range: about :math:`[-0.278/\beta, \infty)` for :math:`\beta > 0`."""
    a = _args(x, beta, "swish_beta")
    s, _ = _sig_and_slope(a.x, a.beta)
    return np.asarray(a.x * s, dtype=a.dtype)


def swish_beta_prime(x, beta) -> np.ndarray:
    r""":math:`\partial f/\partial x = \sigma(\beta x) + \beta x\,\sigma(\beta x)(1-\sigma(\beta x))`.
    Shape and dtype of ``x``. Pitfall: for :math:`\beta > 0` it exceeds 1 (max about 1.1) and dips below 0."""
    a = _args(x, beta, "swish_beta_prime")
    s, ds = _sig_and_slope(a.x, a.beta)
    return np.asarray(s + a.beta * a.x * ds, dtype=a.dtype)


def swish_beta_grad_beta(x, beta) -> np.ndarray:
    r"""Elementwise :math:`\partial f/\partial\beta = x^2\,\sigma(\beta x)(1-\sigma(\beta x)) \ge 0`.
    Shape and dtype of ``x`` (sum over broadcast axes yourself, or use :func:`swish_beta_backward`)."""
    a = _args(x, beta, "swish_beta_grad_beta")
    _, ds = _sig_and_slope(a.x, a.beta)
    with np.errstate(over="ignore", invalid="ignore"):  # x^2 * 0 for |x| beyond 1e154: 0 is the limit
        g = np.where(ds == 0, 0.0, a.x * a.x * ds)
    return np.asarray(g, dtype=a.dtype)


def swish_beta_backward(dout, x, beta):
    r"""Backward pass of :func:`swish_beta`: returns ``(dx, dbeta)``.

    .. math:: dx = dout \odot \partial f/\partial x, \qquad
              d\beta = \sum_{\text{broadcast axes}} dout \odot x^2\sigma(\beta x)(1-\sigma(\beta x)).

    ``dout`` has ``x``'s shape; ``dx`` has ``x``'s shape, ``dbeta`` has ``beta``'s shape.
    """
    a = _args(x, beta, "swish_beta_backward")
    g, _ = as_float_array(dout, "swish_beta_backward", "dout")
    if g.shape != a.x.shape:
        raise ValueError(f"swish_beta_backward: dout must have shape {a.x.shape}, got {g.shape}")
    dx = g * swish_beta_prime(a.x, a.beta)
    db = g * swish_beta_grad_beta(a.x, a.beta)
    lead = db.ndim - a.beta.ndim
    db = db.sum(axis=tuple(range(lead))) if lead else db
    if a.beta.ndim:
        db = db.sum(axis=tuple(i for i, n in enumerate(a.beta.shape) if n == 1), keepdims=True)
    return np.asarray(dx, dtype=a.dtype), np.asarray(db, dtype=a.dtype).reshape(a.beta.shape)


class SwishBetaMLP(MLP):
    r"""An :class:`actgrad.mlp.MLP` whose hidden layers use Swish with learnable :math:`\beta`.

    Layer ``l < L``: :math:`a_l = z_l\,\sigma(\beta_l z_l)` with ``params["beta{l}"]`` of shape ``(1,)``
    (one :math:`\beta` per layer) or ``(n_l,)`` (``per_unit=True``), initialised to ``beta_init``; the
    output layer is linear. Everything else (``loss``, ``predict``, :func:`actgrad.optim.train`) is
    inherited, so it trains like any MLP and ``grads["beta{l}"]`` comes with the weight gradients.
    """

    def __init__(self, layer_sizes, beta_init: float = 1.0, per_unit: bool = False, init="he", seed=None,
                 dtype=np.float64):
        super().__init__(layer_sizes, activation="identity", init=init, seed=seed, dtype=dtype)
        L, params = self.num_layers, {}
        for l in range(1, L + 1):
            params[f"W{l}"], params[f"b{l}"] = self.params[f"W{l}"], self.params[f"b{l}"]
            if l < L:
                params[f"beta{l}"] = np.full(self.layer_sizes[l] if per_unit else 1, beta_init, dtype=self.dtype)
        self.params = params
        self.activations = ["swish_beta"] * (L - 1) + ["identity"]

    def forward(self, X, train=True):
        """``X`` (N, n_0) -> ``(out, caches)`` as :meth:`actgrad.mlp.MLP.forward` (``train`` has no effect here)."""
        x, caches, p = self._as_input(X), [], self.params
        for l in range(1, self.num_layers + 1):
            z = x @ p[f"W{l}"] + p[f"b{l}"]
            a = swish_beta(z, p[f"beta{l}"]) if l < self.num_layers else z
            caches.append(LayerCache(x, z, a))
            x = a
        return x, caches

    def backward(self, dout, caches):
        """``dout`` (N, n_L) -> grads with the keys of ``params`` (``beta{l}`` included)."""
        p, grads, da = self.params, {}, np.asarray(dout, dtype=self.dtype)
        for l in range(self.num_layers, 0, -1):
            c = caches[l - 1]
            if l < self.num_layers:
                dz, grads[f"beta{l}"] = swish_beta_backward(da, c.z, p[f"beta{l}"])
            else:
                dz = da
            grads[f"W{l}"], grads[f"b{l}"] = c.x.T @ dz, dz.sum(axis=0)
            if l > 1:
                da = dz @ p[f"W{l}"].T
        return {k: grads[k] for k in p}
