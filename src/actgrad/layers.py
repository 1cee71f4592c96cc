r"""Layers with one interface, so that a network is a list of them and backprop is a loop.

Every layer has ``params`` (a dict of arrays, possibly empty, updated **in place** by the optimisers),
``forward(x, train=True) -> (out, cache)`` (``cache``: a NamedTuple of what backward needs) and
``backward(dout, cache) -> (dx, grads)``, with ``dout`` = :math:`\partial\mathcal L/\partial\,\text{out}`,
``dx`` = :math:`\partial\mathcal L/\partial x` and ``grads`` keyed like ``params``. ``train`` matters
only for :class:`BatchNorm1d`; ``layer(x)`` is the evaluation-mode output ``forward(x, train=False)[0]``.
Parameters and statistics have the layer's ``dtype`` (float32 or float64; inputs are converted to it,
outputs and gradients keep it); defaults follow PyTorch (``gamma = 1``, ``beta = 0``, running mean 0,
running variance 1, PReLU slope 0.25). References: batch normalisation :cite:`ioffe2015`, layer
normalisation :cite:`ba2016`, residual connections :cite:`he2016`. The normalisation layers are defined
in :mod:`actgrad.normalization` and re-exported here.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import activations as _A
from ._core import real_scalar
from ._layerbase import Layer, _check_layer, _float_dtype, _positive_int
from .init import init_layer
from .normalization import BatchNorm1d, BatchNormCache, LayerNorm, LayerNormCache

__all__ = ["Layer", "Linear", "Activation", "BatchNorm1d", "LayerNorm", "Residual", "Sequential",
           "LinearCache", "ActivationCache", "BatchNormCache", "LayerNormCache", "SequentialCache"]


class LinearCache(NamedTuple):
    """``x``: the layer input (N, fan_in)."""
    x: np.ndarray


class Linear(Layer):
    r"""Affine layer :math:`y = xW + b`: ``x`` (N, fan_in), ``W`` (fan_in, fan_out) (the transpose of
    ``torch.nn.Linear.weight``), ``b`` (fan_out,), ``y`` (N, fan_out). ``init``: a name of
    :data:`actgrad.init.INITIALIZERS` or a callable; ``seed``: int, Generator or None. Backward:

    .. math:: \frac{\partial\mathcal L}{\partial W} = x^\top\delta,\quad
              \frac{\partial\mathcal L}{\partial b} = \textstyle\sum_n \delta_n,\quad
              \frac{\partial\mathcal L}{\partial x} = \delta W^\top,\qquad \delta = \partial\mathcal L/\partial y.
    """
    _cache_type = LinearCache

    def __init__(self, fan_in, fan_out, init="he", seed=None, dtype=np.float64):
        self.in_features = _positive_int(fan_in, "Linear", "fan_in")
        self.out_features = _positive_int(fan_out, "Linear", "fan_out")
        self.dtype = _float_dtype(dtype, "Linear")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        W, b = init_layer(init, fan_in, fan_out, rng, self.dtype)
        self.params = {"W": W, "b": b}

    def _dout_spec(self, cache):
        return (cache.x.shape[0], self.out_features), self.dtype

    def _forward(self, x, train):
        y = x @ self.params["W"]
        y += self.params["b"]
        return y, LinearCache(x)

    def _backward(self, dout, cache, need_dx):
        grads = {"W": cache.x.T @ dout, "b": np.add.reduce(dout, axis=0)}  # = dout.sum(0), less overhead
        return (dout @ self.params["W"].T if need_dx else None), grads

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, dtype={self.dtype.name})"


class ActivationCache(NamedTuple):
    """``x``: the input (pre-activation) z; ``out``: :math:`\\phi(z)` (the same object for identity)."""
    x: np.ndarray
    out: np.ndarray


class Activation(Layer):
    r"""Activation :math:`y = \phi(x)` (elementwise); backward :math:`\partial\mathcal L/\partial x = \delta\odot\phi'(x)`.

    ``name``: any name of :data:`actgrad.ACTIVATIONS` (``kwargs`` are its options, e.g. ``alpha=0.2``),
    an :class:`actgrad.activations.Activation` record, ``"identity"``, ``"softmax"`` (over the last
    axis; backward :math:`s\odot(\delta - \sum_j \delta_j s_j)`), or ``"prelu"``: :math:`x` if
    :math:`x>0` else :math:`a x` with learnable slopes ``params["a"]`` of shape (num_parameters,),
    initialised to ``init`` = 0.25 as ``torch.nn.PReLU`` (options ``num_parameters=1, init=0.25,
    dtype=np.float64``; with num_parameters > 1, ``x`` must be (N, num_parameters)).
    Shapes: ``y`` and ``dx`` have ``x``'s shape and dtype. The derivative of sigmoid and tanh is taken
    from the cached output (:math:`s(1-s)`, :math:`1-t^2`), as PyTorch does; kinks follow PyTorch.
    """
    _cache_type = ActivationCache

    def __init__(self, name, **kwargs):
        self.params, self.kwargs, self.fn, self.prime, self._any_rank = {}, {}, None, None, True
        if isinstance(name, str) and name in ("identity", "softmax", "prelu"):
            self.name = self.kind = name
        else:
            self.kind = "elementwise"
            self._init_elementwise(name, kwargs)
            kwargs = {}
        if self.kind == "prelu":
            where = "Activation('prelu')"
            n = _positive_int(kwargs.pop("num_parameters", 1), where, "num_parameters")
            self.dtype = _float_dtype(kwargs.pop("dtype", np.float64), where)
            self.params = {"a": np.full(n, real_scalar(kwargs.pop("init", 0.25), where, "init"), self.dtype)}
            if n > 1:  # one slope per unit of x (N, n)
                self.in_features = self.out_features = n
                self._any_rank = False
        if kwargs:
            raise TypeError(f"Activation({name!r}): unexpected keyword arguments {sorted(kwargs)}")

    def _init_elementwise(self, rec, kwargs):
        """``fn``, ``prime``: the record's functions; for built-in ones, the kernels behind them (called on
        the already-float arrays without coercion; each returns a fresh array that backward may scale)."""
        if isinstance(rec, str):
            if rec not in _A.ACTIVATIONS:
                raise ValueError(f"Activation: unknown activation {rec!r}; expected one of "
                                 f"{sorted(_A.ACTIVATIONS) + ['identity', 'prelu', 'softmax']}")
            rec = _A.ACTIVATIONS[rec]
        if not (hasattr(rec, "fn") and hasattr(rec, "prime")):
            raise TypeError(f"Activation: expected a name or a record with .fn and .prime, got {type(rec).__name__}")
        self.name, self.fn, self.prime = getattr(rec, "name", "custom"), rec.fn, rec.prime
        self.kwargs, self._fn_k, self._prime_k, self._from_output_k = dict(kwargs), rec.fn, None, None
        if _A.ACTIVATIONS.get(self.name) is rec:  # built in
            unknown = sorted(set(kwargs) - set(rec.defaults))
            if unknown:
                raise TypeError(f"Activation({self.name!r}): unexpected keyword arguments {unknown}; "
                                f"{self.name} takes {sorted(rec.defaults)}")
            rec.fn(np.zeros(1), **kwargs)  # validate the option values now, not at the first forward
            self._fn_k, self._prime_k = rec.fn.__wrapped__, rec.prime.__wrapped__
            if not kwargs and self.name in ("sigmoid", "tanh"):  # the derivative from the output
                self._from_output_k = getattr(_A, f"{self.name}_prime_from_output").__wrapped__

    def _forward(self, x, train):
        if self.kind == "elementwise":
            out = self._fn_k(x, **self.kwargs) if self.kwargs else self._fn_k(x)
        elif self.kind == "identity":
            out = x
        elif self.kind == "prelu":
            out = _A.prelu(x, self.params["a"])
        else:
            out = _A.softmax(x, axis=-1)
        return out, ActivationCache(x, out)

    def _backward(self, dout, cache, need_dx):
        if self.kind == "elementwise":
            if self._from_output_k is not None:
                d = self._from_output_k(cache.out)
            elif self._prime_k is not None:
                d = self._prime_k(cache.x, **self.kwargs) if self.kwargs else self._prime_k(cache.x)
            else:  # a user's record: its output may be shared, so do not write into it
                return np.asarray(dout * self.prime(cache.x, **self.kwargs), dtype=dout.dtype), {}
            d *= dout
            return d, {}
        if self.kind == "identity":
            return dout, {}
        if self.kind == "prelu":
            dx, da = _A.prelu_backward(dout, cache.x, self.params["a"])
            return dx, {"a": da}
        return _A.softmax_backward(dout, cache.out, axis=-1), {}

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"Activation({self.name!r}{opts})"


class Residual(Layer):
    r"""Residual connection :cite:`he2016` around ``block``: :math:`y = x + F(x)`.

    ``block``: any layer or :class:`Sequential` whose output has its input's shape (else ``ValueError``,
    at construction when the widths are known, otherwise at forward). ``params`` is the block's dict
    and the cache is the block's. Backward gives the gradient an identity path:

    .. math:: \frac{\partial\mathcal L}{\partial x} = \delta + (\partial F/\partial x)^\top\delta,
              \qquad \frac{\partial y}{\partial x} = I + \frac{\partial F}{\partial x}.

    Pitfall: every block adds :math:`F(x)` to :math:`x`, so without normalisation the scale of
    :math:`x` can grow with the number of blocks.
    """

    def __init__(self, block):
        self.block = _check_layer(block, "Residual")
        if None not in (block.in_features, block.out_features) and block.in_features != block.out_features:
            raise ValueError(f"Residual: the block maps {block.in_features} features to {block.out_features}; "
                             "x + block(x) needs equal input and output shapes")
        self.in_features = self.out_features = block.in_features or block.out_features
        self.params, self._cache_type = block.params, block._cache_type

    def _check(self, x):
        return self.block._check(x)

    def _dout_spec(self, cache):
        return self.block._dout_spec(cache)

    def _forward(self, x, train):
        fx, cache = self.block._forward(x, train)
        if fx.shape != x.shape:
            raise ValueError(f"Residual: the block maps shape {x.shape} to {fx.shape}; "
                             "x + block(x) needs equal input and output shapes")
        return fx + x, cache

    def _backward(self, dout, cache, need_dx):
        dfx, grads = self.block._backward(dout, cache, True)
        return dfx + dout, grads

    def __repr__(self):
        return f"Residual({self.block!r})"


class SequentialCache(NamedTuple):
    """``caches``: one cache per layer, in forward order."""
    caches: tuple


class Sequential(Layer):
    r"""Layers applied in order, :math:`y = f_K(\cdots f_2(f_1(x)))`; backward runs them in reverse
    (the chain rule :math:`\partial\mathcal L/\partial x = J_1^\top\cdots J_K^\top\delta`).

    ``params`` is one flat dict keyed ``"<index>.<name>"`` (``"0.W"``, ``"1.gamma"``; nested containers
    give ``"2.0.W"``) holding the layers' own arrays, so an optimiser that updates it in place updates
    the layers (replace entries in place, ``p[...] = v``, never rebind them). ``grads`` has the same
    keys (in backward order, last layer first). ``train`` is passed to every layer. Widths are checked
    at construction where known.
    """
    _cache_type = SequentialCache

    def __init__(self, *layers):
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        self.layers = [_check_layer(l, f"Sequential (layer {i})") for i, l in enumerate(layers)]
        width = None
        for i, layer in enumerate(self.layers):
            if None not in (width, layer.in_features) and width != layer.in_features:
                raise ValueError(f"Sequential: layer {i} ({layer!r}) expects {layer.in_features} features "
                                 f"but the layers before it output {width}")
            width = layer.out_features or width
        self.in_features = next((l.in_features for l in self.layers if l.in_features), None)
        self.out_features = width
        keys = [[(k, f"{i}.{k}") for k in l.params] for i, l in enumerate(self.layers)]
        self.params = {flat: l.params[k] for l, lk in zip(self.layers, keys) for k, flat in lk}
        self._reversed = list(zip(range(len(keys) - 1, -1, -1), self.layers[::-1], keys[::-1]))

    def _check(self, x):
        return self.layers[0]._check(x)

    def _dout_spec(self, cache):
        if len(cache.caches) != len(self.layers):
            raise ValueError(f"Sequential.backward: cache holds {len(cache.caches)} layer caches, "
                             f"expected {len(self.layers)}")
        return self.layers[-1]._dout_spec(cache.caches[-1])

    def _forward(self, x, train):
        caches = ()
        for layer in self.layers:
            x, c = layer._forward(x, train)
            caches += (c,)
        return x, SequentialCache(caches)

    def _backward(self, dout, cache, need_dx):
        grads = {}
        for i, layer, keys in self._reversed:  # the last layer first
            dout, layer_grads = layer._backward(dout, cache.caches[i], need_dx or i > 0)
            for k, flat in keys:
                grads[flat] = layer_grads[k]
        return dout, grads

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self):
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"
