r"""Normalisation layers, :class:`BatchNorm1d` :cite:`ioffe2015` and :class:`LayerNorm` :cite:`ba2016`.

They follow the layer interface of :mod:`actgrad.layers` (``forward(x, train) -> (out, cache)``,
``backward(dout, cache) -> (dx, grads)``; ``params`` ``gamma`` and ``beta`` updated in place) and are
re-exported there: ``actgrad.layers.BatchNorm1d is actgrad.normalization.BatchNorm1d``. Defaults follow
PyTorch (``gamma = 1``, ``beta = 0``, running mean 0, running variance 1, ``eps = 1e-5``, ``momentum = 0.1``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._core import real_scalar
from ._layerbase import Layer, _float_dtype, _positive_int

__all__ = ["BatchNorm1d", "LayerNorm", "BatchNormCache", "LayerNormCache"]


class _Norm(Layer):
    r"""What BatchNorm1d and LayerNorm share: F features, ``eps``, and the affine map
    :math:`y = \gamma\odot\hat x + \beta` with its gradients (summed over every axis but the last)."""

    def __init__(self, num_features, eps=1e-5, dtype=np.float64):
        name = type(self).__name__
        F = self.in_features = self.out_features = _positive_int(num_features, name, "num_features")
        self.eps = real_scalar(eps, name, "eps")
        if self.eps <= 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps!r}")
        self.dtype = _float_dtype(dtype, name)
        self.params = {"gamma": np.ones(F, self.dtype), "beta": np.zeros(F, self.dtype)}

    def _affine(self, xhat):
        y = xhat * self.params["gamma"]
        y += self.params["beta"]
        return y

    def _affine_grads(self, dout, xhat):
        F = self.in_features
        return {"gamma": (dout * xhat).reshape(-1, F).sum(axis=0), "beta": dout.reshape(-1, F).sum(axis=0)}

    def __repr__(self):
        return f"{type(self).__name__}({self.in_features}, eps={self.eps}, dtype={self.dtype.name})"


class BatchNormCache(NamedTuple):
    """``xhat``: the normalised input (N, F); ``inv_std``: :math:`1/\\sqrt{\\sigma^2+\\epsilon}` (F,) of the
    statistics used; ``train``: True if they were the batch's (backward then flows through them)."""
    xhat: np.ndarray
    inv_std: np.ndarray
    train: bool


class BatchNorm1d(_Norm):
    r"""Batch normalisation :cite:`ioffe2015` of ``x`` (N, F), per feature, as ``torch.nn.BatchNorm1d``.

    .. math:: \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}},\qquad y = \gamma\odot\hat x + \beta.

    Training: :math:`\mu, \sigma^2` are the batch mean and *biased* variance (over N), and the running
    statistics move towards the batch's with ``momentum`` :math:`m`:
    :math:`\hat\mu \leftarrow (1-m)\hat\mu + m\mu`, :math:`\hat\sigma^2 \leftarrow (1-m)\hat\sigma^2 +
    m\,\tfrac{N}{N-1}\sigma^2` (*unbiased*); N = 1 raises ``ValueError`` as PyTorch does.
    ``train=False`` uses :math:`\hat\mu, \hat\sigma^2` (attributes ``running_mean``, ``running_var``).
    Backward (closed form, training; :math:`\delta = \partial\mathcal L/\partial y`):

    .. math:: \frac{\partial\mathcal L}{\partial\gamma} = \sum_n \delta_n\odot\hat x_n,\quad
              \frac{\partial\mathcal L}{\partial\beta} = \sum_n \delta_n,\quad
              \frac{\partial\mathcal L}{\partial x} = \frac{\gamma}{N\sqrt{\sigma^2+\epsilon}}\odot
              \Bigl(N\delta - \frac{\partial\mathcal L}{\partial\beta}
              - \hat x\odot\frac{\partial\mathcal L}{\partial\gamma}\Bigr);

    in evaluation mode the statistics are constants: :math:`\partial\mathcal L/\partial x =
    \gamma\,\delta/\sqrt{\hat\sigma^2+\epsilon}`. Pitfall: the output of one example depends on the
    others in its batch (small batches give noisy statistics).
    """
    _cache_type = BatchNormCache

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float64):
        super().__init__(num_features, eps, dtype)
        self.momentum = real_scalar(momentum, "BatchNorm1d", "momentum")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1], got {momentum!r}")
        self.running_mean = np.zeros(self.in_features, self.dtype)
        self.running_var = np.ones(self.in_features, self.dtype)

    def _forward(self, x, train):
        if train:
            n = x.shape[0]
            if n < 2:
                raise ValueError(f"BatchNorm1d.forward: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape} (use a batch of N >= 2, or train=False)")
            mean = x.mean(axis=0)
            xc = x - mean
            var = np.mean(xc * xc, axis=0)
            m = self.momentum
            self.running_mean *= 1.0 - m
            self.running_mean += m * mean
            self.running_var *= 1.0 - m
            self.running_var += (m * n / (n - 1)) * var
        else:
            xc, var = x - self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xc *= inv_std                                   # xc is fresh: it becomes xhat
        return self._affine(xc), BatchNormCache(xc, inv_std, train)

    def _backward(self, dout, cache, need_dx):
        grads = self._affine_grads(dout, cache.xhat)
        scale = self.params["gamma"] * cache.inv_std
        if not cache.train:
            return dout * scale, grads
        n = dout.shape[0]
        dx = dout * n
        dx -= grads["beta"]
        dx -= cache.xhat * grads["gamma"]
        dx *= scale / n
        return dx, grads


class LayerNormCache(NamedTuple):
    """``xhat``: the normalised input (..., F); ``inv_std``: :math:`1/\\sqrt{\\sigma^2+\\epsilon}` (..., 1)."""
    xhat: np.ndarray
    inv_std: np.ndarray


class LayerNorm(_Norm):
    r"""Layer normalisation :cite:`ba2016` over the last axis of ``x`` (..., F), as ``torch.nn.LayerNorm(F)``.

    .. math:: \hat x = \frac{x - \mu}{\sqrt{\sigma^2+\epsilon}},\quad y = \gamma\odot\hat x + \beta,\qquad
              \mu = \tfrac1F\textstyle\sum_j x_j,\ \sigma^2 = \tfrac1F\sum_j (x_j-\mu)^2

    per example (so train and evaluation are the same, and any batch size works). Backward, with
    :math:`g = \gamma\odot\delta` and means over the last axis:

    .. math:: \frac{\partial\mathcal L}{\partial x} = \frac{1}{\sqrt{\sigma^2+\epsilon}}
              \Bigl(g - \overline{g} - \hat x\odot\overline{g\odot\hat x}\Bigr),\quad
              \frac{\partial\mathcal L}{\partial\gamma} = \sum \delta\odot\hat x,\quad
              \frac{\partial\mathcal L}{\partial\beta} = \sum \delta

    (the last two summed over every axis but the last). Pitfall: with F = 1, :math:`\hat x = 0`.
    """
    _cache_type, _any_rank = LayerNormCache, True

    def _forward(self, x, train):
        xc = x - x.mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + self.eps)
        xc *= inv_std
        return self._affine(xc), LayerNormCache(xc, inv_std)

    def _backward(self, dout, cache, need_dx):
        g = dout * self.params["gamma"]
        dx = g - g.mean(axis=-1, keepdims=True)
        dx -= cache.xhat * np.mean(g * cache.xhat, axis=-1, keepdims=True)
        dx *= cache.inv_std
        return dx, self._affine_grads(dout, cache.xhat)
