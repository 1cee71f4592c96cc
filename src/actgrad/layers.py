r"""Layers with one interface, so that a network is a list of them and backprop is a loop.

Every layer has ``params`` (a dict of arrays, possibly empty, updated **in place** by the optimisers),
``forward(x, train=True) -> (out, cache)`` (``cache``: a NamedTuple of what backward needs) and
``backward(dout, cache) -> (dx, grads)``, with ``dout`` = :math:`\partial\mathcal L/\partial\,\text{out}`,
``dx`` = :math:`\partial\mathcal L/\partial x` and ``grads`` keyed like ``params``. ``train`` matters
only for :class:`BatchNorm1d`; ``layer(x)`` is the evaluation-mode output ``forward(x, train=False)[0]``.
Parameters and statistics have the layer's ``dtype`` (float32 or float64; inputs are converted to it,
outputs and gradients keep it); defaults follow PyTorch (``gamma = 1``, ``beta = 0``, running mean 0,
running variance 1, PReLU slope 0.25). References: batch normalisation :cite:`ioffe2015`, layer
normalisation :cite:`ba2016`, residual connections :cite:`he2016`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import activations as _A
from ._core import real_scalar
from .init import init_layer

__all__ = ["Layer", "Linear", "Activation", "BatchNorm1d", "LayerNorm", "Residual", "Sequential",
           "LinearCache", "ActivationCache", "BatchNormCache", "LayerNormCache", "SequentialCache"]

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


def _check_layer(layer, where):
    if not isinstance(layer, Layer):
        raise TypeError(f"{where}: expected an actgrad.layers layer, got {type(layer).__name__}")
    return layer


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
