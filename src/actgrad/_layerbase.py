"""The base class and input checks shared by :mod:`actgrad.layers` and :mod:`actgrad.normalization`.

Private: use ``actgrad.layers.Layer``; the interface is described in :mod:`actgrad.layers`.
"""
from __future__ import annotations

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype, where):
    if np.dtype(dtype) not in _FLOATS:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {np.dtype(dtype)}")
    return np.dtype(dtype)


def _as_float(x, where, dtype=None, argname="x"):
    """``x`` as an array of ``dtype`` (default: x's own float32/float64, anything else real -> float64)."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):  # ragged nested lists and the like
        a = np.empty(0, dtype=object)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {argname} must be a real numeric array, got {type(x).__name__} of dtype {a.dtype}")
    if dtype is None:
        dtype = a.dtype if a.dtype in _FLOATS else np.float64
    return a.astype(dtype, copy=False)


def _positive_int(n, where, name):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {n!r}")
    return int(n)


class Layer:
    """Base class. A subclass sets ``params``, ``dtype`` (None: the input's), ``in_features`` /
    ``out_features`` (None: any width) and implements ``_forward(x, train)`` and
    ``_backward(dout, cache, need_dx)`` on checked arrays (``need_dx=False``: the first layer of a
    network may skip ``dx`` and return None). ``_dout_spec(cache)`` gives the expected ``dout``
    ``(shape, dtype)``; by default those of the cache's first array (the output's, for shape-preserving layers)."""

    params: dict
    dtype = in_features = out_features = None
    _any_rank = False  # True: x (..., F); False: x (N, F)
    _cache_type: type = tuple

    def _dout_spec(self, cache):
        return cache[0].shape, self.dtype or cache[0].dtype

    def _check(self, x):
        """``x`` converted to the layer's dtype; ``ValueError`` unless its shape fits."""
        where, F = f"{self!r}.forward", self.in_features
        x = _as_float(x, where, self.dtype)
        if self._any_rank:
            if x.ndim == 0 or (F and x.shape[-1] != F):
                raise ValueError(f"{where}: x must have shape (..., {F or 'F'}), got {x.shape}")
        elif x.ndim != 2 or (F and x.shape[1] != F):
            raise ValueError(f"{where}: x must have shape (N, {F or 'F'}), got {x.shape}")
        return x

    def forward(self, x, train=True):
        """``x`` -> ``(out, cache)``; see the class docstring for the formula and shapes."""
        x = self._check(x)
        with np.errstate(under="ignore"):  # underflow to 0 is the intended result everywhere
            return self._forward(x, bool(train))

    def backward(self, dout, cache):
        """``dout`` (the shape of ``out``) and the cache of :meth:`forward` -> ``(dx, grads)``."""
        name = type(self).__name__
        if not isinstance(cache, self._cache_type):
            raise TypeError(f"{name}.backward: cache must be the {self._cache_type.__name__} returned by "
                            f"{name}.forward, got {type(cache).__name__}")
        shape, dtype = self._dout_spec(cache)
        dout = _as_float(dout, f"{name}.backward", dtype, "dout")
        if dout.shape != shape:
            raise ValueError(f"{name}.backward: dout has shape {dout.shape}, expected {shape} "
                             "(the shape of the forward output)")
        with np.errstate(under="ignore"):
            return self._backward(dout, cache, True)

    def __call__(self, x):
        """The evaluation-mode output ``forward(x, train=False)[0]`` (no side effects)."""
        return self.forward(x, train=False)[0]


def _check_layer(layer, where):
    if not isinstance(layer, Layer):
        raise TypeError(f"{where}: expected an actgrad.layers layer, got {type(layer).__name__}")
    return layer
