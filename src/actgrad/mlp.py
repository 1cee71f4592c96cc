r"""A from-scratch multilayer perceptron, built from :mod:`actgrad.layers`.

Block :math:`l = 1..L` computes

.. math:: z_l = x_l W_l + b_l, \qquad a_l = \phi_l(z_l), \qquad x_{l+1} = a_l,

with :math:`W_l \in \mathbb R^{n_{l-1}\times n_l}` (``(fan_in, fan_out)``, the transpose of
``torch.nn.Linear.weight``) and :math:`\phi_L` the identity unless ``output_activation`` is set.
Each block is a :class:`~actgrad.layers.Sequential` ``Linear -> [norm] -> Activation``, so backward is
one loop over blocks, each a chain rule over its layers. Given :math:`\delta a_l = \partial \mathcal L/\partial a_l`:

.. math::
    \delta z_l = \delta a_l \odot \phi_l'(z_l), \quad
    \frac{\partial\mathcal L}{\partial W_l} = x_l^\top \delta z_l, \quad
    \frac{\partial\mathcal L}{\partial b_l} = \textstyle\sum_n \delta z_l, \quad
    \delta a_{l-1} = \delta z_l W_l^\top.

The factor :math:`\phi'(z_l)` multiplies the gradient once per layer: this is where vanishing
(:math:`|\phi'| < 1`, e.g. sigmoid's :math:`\le 1/4`) and dead units (ReLU's 0) come from.
Options for deep nets: ``norm="batch" | "layer"`` inserts :class:`~actgrad.layers.BatchNorm1d` /
:class:`~actgrad.layers.LayerNorm` between the affine map and the activation of every hidden block
(:math:`a_l = \phi(\mathrm{N}(x_l W_l + b_l))`, so :math:`z_l` is the normalised pre-activation), and
``residual=True`` wraps every hidden block whose width is unchanged (:math:`n_{l-1} = n_l`) in a
:class:`~actgrad.layers.Residual`: :math:`x_{l+1} = x_l + a_l`.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from . import losses as _L
from .layers import Activation, BatchNorm1d, LayerNorm, Linear, Residual, Sequential, SequentialCache

__all__ = ["MLP", "LayerCache", "LOSSES"]


class LayerCache(NamedTuple):
    """What one block's forward pass keeps for backward.

    ``x``: the block input ``(N, fan_in)``; ``z``: the pre-activation (the activation's input, after the
    normalisation if any) ``(N, fan_out)``; ``a``: the activation ``phi(z)`` ``(N, fan_out)`` (the same
    object as ``z`` for a linear layer; a residual block outputs ``x + a``); ``block``: the cache of the
    block's layers (a :class:`~actgrad.layers.SequentialCache`).
    """
    x: np.ndarray
    z: np.ndarray
    a: np.ndarray
    block: SequentialCache = None


LOSSES = {
    "softmax_cross_entropy": _L.softmax_cross_entropy,
    "cross_entropy": _L.softmax_cross_entropy,
    "ce": _L.softmax_cross_entropy,
    "mse": _L.mse,
    "bce": _L.bce_with_logits,
    "bce_with_logits": _L.bce_with_logits,
}
"""Loss names accepted by :meth:`MLP.loss`; each maps ``(out, target) -> (loss, dout)``."""
_CLASSIFICATION = {"softmax_cross_entropy", "cross_entropy", "ce", "bce", "bce_with_logits"}
_NORMS = {None: None, "batch": BatchNorm1d, "layer": LayerNorm}


def _activation(spec, kwargs, width, dtype, prelu_init, where):
    """An :class:`~actgrad.layers.Activation` from a name, ``(name, kwargs)`` pair or record."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
        spec, kwargs = spec
    if spec is None or (isinstance(spec, str) and spec == "linear"):
        spec = "identity"
    if isinstance(spec, str) and spec == "prelu":
        kwargs = {"num_parameters": width, "init": prelu_init, "dtype": dtype, **kwargs}
    try:
        return Activation(spec, **kwargs)
    except (TypeError, ValueError) as e:
        raise type(e)(f"MLP ({where}): {e}") from None


class MLP:
    r"""Fully connected network ``layer_sizes[0] -> ... -> layer_sizes[-1]``.

    Parameters
    ----------
    layer_sizes : sequence of int, e.g. ``[2, 100, 100, 3]`` (``L = len - 1`` layers).
    activation : name in :data:`actgrad.activations.ACTIVATIONS`, ``"prelu"`` (learnable per-unit
        slopes ``a1..a{L-1}``, initialised to ``prelu_init`` = 0.25 as ``torch.nn.PReLU``),
        ``"identity"``, or a list of ``L-1`` such names / ``(name, kwargs)`` pairs, one per hidden layer.
    init : name in :data:`actgrad.init.INITIALIZERS` or a callable ``f(shape, rng, dtype)``; biases
        are zero except for ``"torch"`` (PyTorch ``nn.Linear`` defaults).
    seed : int, Generator or None. dtype : ``np.float32`` or ``np.float64`` (kept end to end).
    output_activation : None (logits / linear output), an activation name, or ``"softmax"``.
    norm : None, ``"batch"`` or ``"layer"``: a normalisation layer before every hidden activation
        (parameters ``gamma{l}``, ``beta{l}``; PyTorch defaults). The bias before a BatchNorm is
        redundant (its gradient is 0) but kept, so every model has the same keys.
    residual : wrap every hidden block with equal input and output width in a residual connection.
    **activation_kwargs : passed to the hidden activation (e.g. ``alpha=0.1`` for leaky_relu).

    Attributes: ``params`` (``W1, b1[, gamma1, beta1][, a1], ..., WL, bL``; the layers' own arrays),
    ``blocks`` (one :class:`~actgrad.layers.Sequential` or :class:`~actgrad.layers.Residual` per
    layer), ``layer_sizes``, ``activations`` (names per layer, output included), ``dtype``.
    """

    def __init__(self, layer_sizes, activation="relu", init="he", seed=None, dtype=np.float64,
                 output_activation=None, prelu_init: float = 0.25, norm=None, residual: bool = False,
                 **activation_kwargs):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                     and s >= 1 for s in sizes):
            raise ValueError(f"MLP: layer_sizes must be >= 2 positive ints, got {layer_sizes!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"MLP: dtype must be float32 or float64, got {self.dtype}")
        if norm not in _NORMS:
            raise ValueError(f"MLP: norm must be None, 'batch' or 'layer', got {norm!r}")
        self.layer_sizes = [int(s) for s in sizes]
        L = self.num_layers = len(sizes) - 1
        if isinstance(activation, (list, tuple)) and not (
                len(activation) == 2 and isinstance(activation[1], dict)):
            if len(activation) != L - 1:
                raise ValueError(f"MLP: got {len(activation)} activations for {L - 1} hidden layers")
            if activation_kwargs:
                raise ValueError("MLP: with a list of activations pass kwargs as (name, kwargs) pairs")
            specs = [(s, {}) for s in activation]
        else:
            specs = [(activation, activation_kwargs)] * (L - 1)
        if output_activation == "prelu":
            raise ValueError("MLP: output_activation='prelu' is not supported")
        specs.append((output_activation, {}))
        self.output_activation, self.norm, self.residual = output_activation, norm, bool(residual)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.blocks, self._acts, self._keys, self.params = [], [], [], {}
        for l, (spec, kw) in enumerate(specs, start=1):
            where = "activation" if l < L else "output_activation"
            layers = [Linear(sizes[l - 1], sizes[l], init=init, seed=rng, dtype=self.dtype)]
            if _NORMS[norm] is not None and l < L:
                layers.append(_NORMS[norm](sizes[l], dtype=self.dtype))
            layers.append(_activation(spec, kw, sizes[l], self.dtype, prelu_init, where))
            block = Sequential(*layers)
            if residual and l < L and sizes[l - 1] == sizes[l]:
                block = Residual(block)
            keys = [(f"{k.rsplit('.', 1)[1]}{l}", k) for k in block.params]  # "0.W" -> "W3"
            self.params.update((key, block.params[k]) for key, k in keys)
            self.blocks.append(block)
            self._acts.append(layers[-1])  # the Activation layers (actgrad.diagnostics reads them)
            self._keys.append(keys)
        self.activations = [a.name for a in self._acts]

    # ------------------------------------------------------------------ forward / backward
    def forward(self, X, train=True):
        r"""``X`` (N, n_0) -> ``(out, caches)``: ``out`` (N, n_L) and one :class:`LayerCache` per layer.

        ``X`` is converted to the model dtype (no copy when it already matches). ``train`` matters
        only with ``norm="batch"``: batch statistics (and running-average updates) if True, the
        running statistics if False."""
        x, caches = self._as_input(X), []
        with np.errstate(under="ignore"):  # as inside actgrad.activations: underflow to 0 is intended
            for block in self.blocks:
                out, c = block._forward(x, train)
                act = c.caches[-1]  # the activation's ActivationCache: (z, a)
                caches.append(LayerCache(x, act.x, act.out, c))
                x = out
        return x, caches

    def backward(self, dout, caches) -> dict[str, np.ndarray]:
        r"""Given ``dout`` = dL/d(out) (N, n_L) and the caches of :meth:`forward`, return
        ``grads`` with the same keys, shapes and dtype as ``params``."""
        if not isinstance(caches, (list, tuple)) or len(caches) != self.num_layers:
            n = len(caches) if isinstance(caches, (list, tuple)) else type(caches).__name__
            raise ValueError(f"MLP.backward: expected {self.num_layers} caches, got {n}")
        if type(caches[-1]) is not LayerCache:  # every cache is checked in the loop below
            raise TypeError("MLP.backward: caches must be the LayerCache list returned by forward")
        g = np.asarray(dout)
        if g.shape != caches[-1].a.shape:
            raise ValueError(f"MLP.backward: dout has shape {g.shape}, expected {caches[-1].a.shape} "
                             "(the shape of the forward output)")
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        grads = dict.fromkeys(self.params)  # filled below, last block first
        with np.errstate(under="ignore"):
            for l in range(self.num_layers - 1, -1, -1):  # the first block needs no dx
                c = caches[l]
                if type(c) is not LayerCache or type(c.block) is not SequentialCache:
                    raise TypeError("MLP.backward: caches must be the LayerCache list returned by forward")
                g, block_grads = self.blocks[l]._backward(g, c.block, l > 0)
                for key, k in self._keys[l]:
                    grads[key] = block_grads[k]
        return grads

    def loss(self, X, y, loss="softmax_cross_entropy"):
        r"""Forward (in training mode) + loss + backward: returns ``(loss: float, grads: dict)``.

        ``loss``: ``"softmax_cross_entropy"`` (``y`` integer labels (N,)), ``"mse"`` (``y`` same
        shape as the output, or (N,) when n_L = 1), ``"bce"`` (with logits; targets in [0, 1]),
        or a callable ``(out, y) -> (loss, dout)``."""
        fn, name = self._loss_fn(loss)
        out, caches = self.forward(X)
        target = self._as_target(y, out, name)
        value, dout = fn(out, target)
        return float(value), self.backward(dout, caches)

    def __call__(self, X) -> np.ndarray:
        """The network output (N, n_L) in evaluation mode (``train=False``; no caches)."""
        return self.forward(X, train=False)[0]

    def predict(self, X) -> np.ndarray:
        """Class labels (N,): argmax of the output, or ``out > 0`` (logit) / ``out > 0.5`` (sigmoid
        output) when there is a single output unit."""
        out = self(X)
        if out.shape[1] == 1:
            thr = 0.5 if self.activations[-1] == "sigmoid" else 0.0
            return (out[:, 0] > thr).astype(np.int64)
        return np.argmax(out, axis=1)

    def copy(self) -> "MLP":
        """An independent deep copy (parameters included)."""
        return copy.deepcopy(self)

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def __repr__(self):
        opts = (f", norm={self.norm!r}" if self.norm else "") + (", residual=True" if self.residual else "")
        return (f"MLP({self.layer_sizes}, activations={self.activations}{opts}, dtype={self.dtype.name}, "
                f"params={self.num_params})")

    # ------------------------------------------------------------------ helpers
    def _as_input(self, X):
        try:
            X = np.asarray(X, dtype=self.dtype)
        except (TypeError, ValueError):
            raise TypeError(f"MLP.forward: X must be a numeric array, got {type(X).__name__}") from None
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"MLP.forward: X must have shape (N, {self.layer_sizes[0]}), got {X.shape}")
        return X

    @staticmethod
    def _loss_fn(loss):
        if callable(loss):
            return loss, getattr(loss, "__name__", "custom")
        try:
            return LOSSES[loss], loss
        except (KeyError, TypeError):
            raise ValueError(f"MLP.loss: unknown loss {loss!r}; expected one of {sorted(LOSSES)} "
                             "or a callable") from None

    def _as_target(self, y, out, name):
        if name in ("softmax_cross_entropy", "cross_entropy", "ce"):
            y = np.asarray(y)
            if y.shape != (out.shape[0],):
                raise ValueError(f"MLP.loss: labels must have shape ({out.shape[0]},), got {y.shape}")
            return y
        if name not in LOSSES:
            return y
        y = np.asarray(y, dtype=self.dtype)
        if y.ndim == 1 and out.shape[1] == 1:
            y = y[:, None]
        if y.shape != out.shape:
            raise ValueError(f"MLP.loss: target must have the output's shape {out.shape}, got {y.shape}")
        return y

