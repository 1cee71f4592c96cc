r"""A from-scratch multilayer perceptron with explicit forward/backward passes.

Layer :math:`l = 1..L` computes

.. math:: z_l = x_l W_l + b_l, \qquad a_l = \phi_l(z_l), \qquad x_{l+1} = a_l,

with :math:`W_l \in \mathbb R^{n_{l-1}\times n_l}` (``(fan_in, fan_out)``, the transpose of
``torch.nn.Linear.weight``) and :math:`\phi_L` the identity unless ``output_activation`` is set.
Backward, given :math:`\delta a_l = \partial \mathcal L/\partial a_l` of shape ``(N, n_l)``:

.. math::
    \delta z_l = \delta a_l \odot \phi_l'(z_l), \quad
    \frac{\partial\mathcal L}{\partial W_l} = x_l^\top \delta z_l, \quad
    \frac{\partial\mathcal L}{\partial b_l} = \textstyle\sum_n \delta z_l, \quad
    \delta a_{l-1} = \delta z_l W_l^\top.

The factor :math:`\phi'(z_l)` multiplies the gradient once per layer: this is where vanishing
(:math:`|\phi'| < 1`, e.g. sigmoid's :math:`\le 1/4`) and dead units (ReLU's 0) come from.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from . import activations as _A
from . import losses as _L
from .init import init_layer

__all__ = ["MLP", "LayerCache", "LOSSES"]


class LayerCache(NamedTuple):
    """What one layer's forward pass keeps for backward (all ``(N, ·)`` arrays).

    ``x``: the layer input ``(N, fan_in)``; ``z``: pre-activation ``x @ W + b`` ``(N, fan_out)``;
    ``a``: activation ``phi(z)`` ``(N, fan_out)`` (the same object as ``z`` for a linear layer).
    """
    x: np.ndarray
    z: np.ndarray
    a: np.ndarray


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


class _Act(NamedTuple):
    name: str
    kind: str  # "elementwise" | "prelu" | "identity" | "softmax"
    fn: object = None
    prime: object = None
    from_output: object = None  # derivative computed from the activation, as PyTorch does
    kwargs: dict = {}
    fn_k: object = None         # built-in activations: the kernels behind fn / prime / from_output,
    prime_k: object = None      # called directly on the (N, n) float arrays of the model (no input
    from_output_k: object = None  # coercion); each returns a fresh array that backward scales in place


def _kernel(f):
    return getattr(f, "__wrapped__", None)


def _resolve(spec, kwargs, where):
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
        spec, kwargs = spec
    if spec is None or spec in ("identity", "linear"):
        return _Act("identity", "identity")
    if isinstance(spec, str):
        if spec == "prelu":
            return _Act("prelu", "prelu")
        if spec == "softmax":
            return _Act("softmax", "softmax")
        try:
            rec = _A.get_activation(spec)
        except (ValueError, KeyError):
            raise ValueError(f"MLP: unknown {where} {spec!r}; expected one of "
                             f"{sorted(_A.ACTIVATIONS) + ['prelu', 'identity']}") from None
        name = spec
    elif hasattr(spec, "fn") and hasattr(spec, "prime"):
        rec, name = spec, getattr(spec, "name", "custom")
    else:
        raise TypeError(f"MLP: {where} must be a name, a (name, kwargs) pair or an ACTIVATIONS record, "
                        f"got {type(spec).__name__}")
    from_output = None
    if not kwargs and name in ("sigmoid", "tanh"):
        from_output = getattr(_A, f"{name}_prime_from_output", None)
    if rec is not _A.ACTIVATIONS.get(name):  # a user's record: call it as given
        return _Act(name, "elementwise", rec.fn, rec.prime, from_output, dict(kwargs))
    return _Act(name, "elementwise", rec.fn, rec.prime, from_output, dict(kwargs),
                _kernel(rec.fn), _kernel(rec.prime), _kernel(from_output))


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
    **activation_kwargs : passed to the hidden activation (e.g. ``alpha=0.1`` for leaky_relu).

    Attributes: ``params`` (``W1, b1[, a1], ..., WL, bL``), ``layer_sizes``, ``activations``
    (names per layer, output included), ``dtype``.
    """

    def __init__(self, layer_sizes, activation="relu", init="he", seed=None, dtype=np.float64,
                 output_activation=None, prelu_init: float = 0.25, **activation_kwargs):
        sizes = list(layer_sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                     and s >= 1 for s in sizes):
            raise ValueError(f"MLP: layer_sizes must be >= 2 positive ints, got {layer_sizes!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"MLP: dtype must be float32 or float64, got {self.dtype}")
        self.layer_sizes = [int(s) for s in sizes]
        L = self.num_layers = len(sizes) - 1
        if isinstance(activation, (list, tuple)) and not (
                len(activation) == 2 and isinstance(activation[1], dict)):
            if len(activation) != L - 1:
                raise ValueError(f"MLP: got {len(activation)} activations for {L - 1} hidden layers")
            if activation_kwargs:
                raise ValueError("MLP: with a list of activations pass kwargs as (name, kwargs) pairs")
            hidden = [_resolve(s, {}, "activation") for s in activation]
        else:
            hidden = [_resolve(activation, activation_kwargs, "activation")] * (L - 1)
        out = _resolve(output_activation, {}, "output_activation")
        if out.kind == "prelu":
            raise ValueError("MLP: output_activation='prelu' is not supported")
        self._acts = hidden + [out]
        self.activations = [a.name for a in self._acts]
        self.output_activation = output_activation
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for l in range(1, L + 1):
            W, b = init_layer(init, sizes[l - 1], sizes[l], rng, self.dtype)
            self.params[f"W{l}"], self.params[f"b{l}"] = W, b
            if self._acts[l - 1].kind == "prelu":
                self.params[f"a{l}"] = np.full(sizes[l], prelu_init, dtype=self.dtype)

    # ------------------------------------------------------------------ forward / backward
    def forward(self, X):
        r"""``X`` (N, n_0) -> ``(out, caches)``: ``out`` (N, n_L) and one :class:`LayerCache` per layer.

        ``X`` is converted to the model dtype (no copy when it already matches)."""
        X = self._as_input(X)
        caches, x, p = [], X, self.params
        with np.errstate(under="ignore"):  # as inside actgrad.activations: underflow to 0 is intended
            for l, act in enumerate(self._acts, start=1):
                z = x @ p[f"W{l}"]
                z += p[f"b{l}"]
                if act.kind == "identity":
                    a = z
                elif act.kind == "prelu":
                    a = _A.prelu(z, p[f"a{l}"])
                elif act.kind == "softmax":
                    a = _A.softmax(z, axis=-1)
                elif act.fn_k is not None:
                    a = act.fn_k(z, **act.kwargs)
                else:
                    a = act.fn(z, **act.kwargs)
                caches.append(LayerCache(x, z, a))
                x = a
        return x, caches

    def backward(self, dout, caches) -> dict[str, np.ndarray]:
        r"""Given ``dout`` = dL/d(out) (N, n_L) and the caches of :meth:`forward`, return
        ``grads`` with the same keys, shapes and dtype as ``params``."""
        if not isinstance(caches, (list, tuple)) or len(caches) != self.num_layers:
            n = len(caches) if isinstance(caches, (list, tuple)) else type(caches).__name__
            raise ValueError(f"MLP.backward: expected {self.num_layers} caches, got {n}")
        if not all(isinstance(c, LayerCache) for c in caches):
            raise TypeError("MLP.backward: caches must be the LayerCache list returned by forward")
        da = np.asarray(dout)
        if da.shape != caches[-1].a.shape:
            raise ValueError(f"MLP.backward: dout has shape {da.shape}, expected {caches[-1].a.shape} "
                             "(the shape of the forward output)")
        if da.dtype != self.dtype:
            da = da.astype(self.dtype)
        p, grads = self.params, {}
        with np.errstate(under="ignore"):
            for l in range(self.num_layers, 0, -1):
                c, act = caches[l - 1], self._acts[l - 1]
                if act.kind == "identity":
                    dz = da
                elif act.kind == "prelu":
                    dz, grads[f"a{l}"] = _A.prelu_backward(da, c.z, p[f"a{l}"])
                elif act.kind == "softmax":
                    dz = _A.softmax_backward(da, c.a, axis=-1)
                elif act.from_output_k is not None and c.a.dtype == da.dtype:
                    dz = act.from_output_k(c.a)  # fresh: scale in place (same values as da * f'(.))
                    dz *= da
                elif act.prime_k is not None and c.z.dtype == da.dtype:
                    dz = act.prime_k(c.z, **act.kwargs)
                    dz *= da
                elif act.from_output is not None:
                    dz = da * act.from_output(c.a)
                else:
                    dz = da * act.prime(c.z, **act.kwargs)
                grads[f"W{l}"] = c.x.T @ dz
                grads[f"b{l}"] = dz.sum(axis=0)
                if l > 1:
                    da = dz @ p[f"W{l}"].T
        return {k: grads[k] for k in p}

    def loss(self, X, y, loss="softmax_cross_entropy"):
        r"""Forward + loss + backward: returns ``(loss: float, grads: dict)``.

        ``loss``: ``"softmax_cross_entropy"`` (``y`` integer labels (N,)), ``"mse"`` (``y`` same
        shape as the output, or (N,) when n_L = 1), ``"bce"`` (with logits; targets in [0, 1]),
        or a callable ``(out, y) -> (loss, dout)``."""
        fn, name = self._loss_fn(loss)
        out, caches = self.forward(X)
        target = self._as_target(y, out, name)
        value, dout = fn(out, target)
        return float(value), self.backward(dout, caches)

    def __call__(self, X) -> np.ndarray:
        """The network output (N, n_L) (no caches)."""
        return self.forward(X)[0]

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
        return (f"MLP({self.layer_sizes}, activations={self.activations}, dtype={self.dtype.name}, "
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

