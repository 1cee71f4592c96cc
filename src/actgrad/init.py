r"""Weight initialisation schemes for a dense layer ``x @ W + b``.

Convention: our weight matrix has shape ``(fan_in, fan_out)`` (the transpose of
``torch.nn.Linear.weight``, which is ``(fan_out, fan_in)``), so ``fan_in = shape[0]``.

Every initialiser has the signature ``f(shape, rng, dtype=np.float64, **options)`` and draws
from an explicit :class:`numpy.random.Generator`. Samples are drawn in float64 and then cast,
so a float32 and a float64 model built from the same seed hold the same numbers up to rounding.

The variance formulas (see :cite:`glorot2010`, :cite:`he2015`, :cite:`lecun1998`):

=====================  ===============================================================
scheme                 :math:`\operatorname{Var}[W_{ij}]`
=====================  ===============================================================
Xavier / Glorot        :math:`g^2 \cdot 2 / (n_\text{in} + n_\text{out})`
He / Kaiming           :math:`g^2 / n_\text{mode}` with :math:`g=\sqrt2` for ReLU
LeCun                  :math:`1 / n_\text{in}`
PyTorch ``nn.Linear``  :math:`1 / (3 n_\text{in})` (uniform on :math:`\pm 1/\sqrt{n_\text{in}}`)
=====================  ===============================================================

A uniform distribution on :math:`[-B, B]` has variance :math:`B^2/3`, hence every uniform variant
uses the bound :math:`B = \sqrt{3}\,\sigma`.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "calculate_gain", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "lecun_normal", "lecun_uniform", "normal", "zeros", "torch_linear_default", "torch_linear_bias",
    "INITIALIZERS", "get_initializer", "init_layer", "LayerInit",
]

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""Recommended gain :math:`g` for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    ==========================  ====================================================
    nonlinearity                gain
    ==========================  ====================================================
    linear, conv*, sigmoid      :math:`1`
    tanh                        :math:`5/3`
    relu                        :math:`\sqrt{2}`
    leaky_relu (slope ``a``)    :math:`\sqrt{2 / (1 + a^2)}`, ``a`` defaults to 0.01
    selu                        :math:`3/4`
    ==========================  ====================================================

    The gain multiplies the standard deviation: :math:`\sigma = g / \sqrt{n}`. The SELU value 3/4
    is PyTorch's choice to keep self-normalisation stable; the SELU paper itself uses LeCun init
    (gain 1) :cite:`klambauer2017`. Unknown names raise ``ValueError``.
    """
    if not isinstance(nonlinearity, str):
        raise TypeError(f"calculate_gain: nonlinearity must be a str, got {type(nonlinearity).__name__}")
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{list(_LINEAR_LIKE) + ['tanh', 'relu', 'leaky_relu', 'selu']}")


def _fans(shape, fname: str) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{fname}: shape must be a (fan_in, fan_out) tuple, got {shape!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"{fname}: shape must be (fan_in, fan_out) with positive sizes, got {shape}")
    return shape


def _check_rng(rng, fname: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fname}: rng must be a numpy.random.Generator "
                        f"(np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng


def _uniform(shape, bound, rng, dtype, fname):
    shape = _fans(shape, fname)
    _check_rng(rng, fname)
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def _normal(shape, std, rng, dtype, fname):
    shape = _fans(shape, fname)
    _check_rng(rng, fname)
    return (std * rng.standard_normal(shape)).astype(dtype, copy=False)


def _fan(shape, mode: str, fname: str) -> int:
    fan_in, fan_out = _fans(shape, fname)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"{fname}: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def xavier_uniform(shape, rng, dtype=np.float64, gain: float = 1.0) -> np.ndarray:
    r"""Glorot/Xavier uniform :cite:`glorot2010`: :math:`W \sim U(-B, B)`,
    :math:`B = g\sqrt{6/(n_\text{in}+n_\text{out})}`, so :math:`\operatorname{Var}[W] = g^2\,2/(n_\text{in}+n_\text{out})`.

    ``shape = (fan_in, fan_out)``; returns an array of that shape and ``dtype``. Derived for
    activations that are linear around 0 (tanh, gain 1 in the paper; PyTorch suggests 5/3).
    """
    fan_in, fan_out = _fans(shape, "xavier_uniform")
    return _uniform(shape, gain * math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype, "xavier_uniform")


def xavier_normal(shape, rng, dtype=np.float64, gain: float = 1.0) -> np.ndarray:
    r"""Glorot/Xavier normal: :math:`W \sim \mathcal N(0, \sigma^2)`, :math:`\sigma = g\sqrt{2/(n_\text{in}+n_\text{out})}`.

    ``shape = (fan_in, fan_out)``. Compromise between keeping forward (``fan_in``) and backward
    (``fan_out``) variances constant.
    """
    fan_in, fan_out = _fans(shape, "xavier_normal")
    return _normal(shape, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype, "xavier_normal")


def kaiming_uniform(shape, rng, dtype=np.float64, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "relu") -> np.ndarray:
    r"""He/Kaiming uniform :cite:`he2015`: :math:`W \sim U(-B, B)`, :math:`B = \sqrt{3}\,g/\sqrt{n_\text{mode}}`.

    :math:`g` = ``calculate_gain(nonlinearity, a)`` (``a`` is the leaky-ReLU slope, used only when
    ``nonlinearity="leaky_relu"``); :math:`n_\text{mode}` is ``fan_in`` (preserves forward variance)
    or ``fan_out`` (preserves backward variance). ``shape = (fan_in, fan_out)``.
    Note PyTorch's default ``nonlinearity`` is ``"leaky_relu"`` with ``a=0``, which gives the same
    gain :math:`\sqrt2` as our default ``"relu"``.
    """
    n = _fan(shape, mode, "kaiming_uniform")
    std = calculate_gain(nonlinearity, a) / math.sqrt(n)
    return _uniform(shape, math.sqrt(3.0) * std, rng, dtype, "kaiming_uniform")


def kaiming_normal(shape, rng, dtype=np.float64, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "relu") -> np.ndarray:
    r"""He/Kaiming normal :cite:`he2015`: :math:`W \sim \mathcal N(0, \sigma^2)`, :math:`\sigma = g/\sqrt{n_\text{mode}}`.

    For ReLU :math:`\sigma^2 = 2/n_\text{in}`: half the units are zeroed, so the factor 2 keeps
    :math:`\mathbb E[a^2]` constant across layers. ``shape = (fan_in, fan_out)``.
    """
    n = _fan(shape, mode, "kaiming_normal")
    return _normal(shape, calculate_gain(nonlinearity, a) / math.sqrt(n), rng, dtype, "kaiming_normal")


def lecun_normal(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""LeCun normal :cite:`lecun1998`: :math:`W \sim \mathcal N(0, 1/n_\text{in})`.

    The init SELU's self-normalisation assumes :cite:`klambauer2017`. (JAX/Keras draw from a
    truncated normal rescaled to the same variance; we use a plain normal.)
    """
    fan_in, _ = _fans(shape, "lecun_normal")
    return _normal(shape, 1.0 / math.sqrt(fan_in), rng, dtype, "lecun_normal")


def lecun_uniform(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""LeCun uniform: :math:`W \sim U(-\sqrt{3/n_\text{in}}, \sqrt{3/n_\text{in}})`, variance :math:`1/n_\text{in}`."""
    fan_in, _ = _fans(shape, "lecun_uniform")
    return _uniform(shape, math.sqrt(3.0 / fan_in), rng, dtype, "lecun_uniform")


def normal(shape, rng, dtype=np.float64, std: float = 0.01) -> np.ndarray:
    r"""Plain :math:`\mathcal N(0, \text{std}^2)`, ignoring the fan (CS231n's ``0.01 * randn``).

    Too small a ``std`` makes activations shrink layer after layer (vanishing signal); too large
    a ``std`` saturates tanh/sigmoid or explodes ReLU nets. Use ``functools.partial(normal, std=...)``
    to pass a custom std to :class:`actgrad.mlp.MLP`.
    """
    if not std >= 0:
        raise ValueError(f"normal: std must be >= 0, got {std!r}")
    return _normal(shape, std, rng, dtype, "normal")


def zeros(shape, rng=None, dtype=np.float64) -> np.ndarray:
    r"""All zeros: :math:`W = 0`. Every hidden unit then gets the same gradient (symmetry is never
    broken); only useful as a counter-example."""
    return np.zeros(_fans(shape, "zeros"), dtype=dtype)


def torch_linear_default(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""PyTorch ``nn.Linear`` default weight: ``kaiming_uniform_(a=sqrt(5))``.

    Gain :math:`\sqrt{2/(1+5)} = 1/\sqrt3`, so :math:`B = \sqrt3 \cdot (1/\sqrt3)/\sqrt{n_\text{in}} = 1/\sqrt{n_\text{in}}`:
    :math:`W \sim U(-1/\sqrt{n_\text{in}}, 1/\sqrt{n_\text{in}})`, :math:`\operatorname{Var}[W] = 1/(3 n_\text{in})`
    -- a third of LeCun's variance, so deep ReLU stacks of default layers shrink the signal.
    """
    fan_in, _ = _fans(shape, "torch_linear_default")
    return _uniform(shape, 1.0 / math.sqrt(fan_in), rng, dtype, "torch_linear_default")


def torch_linear_bias(shape, rng, dtype=np.float64) -> np.ndarray:
    r"""PyTorch ``nn.Linear`` default bias: :math:`b \sim U(-1/\sqrt{n_\text{in}}, 1/\sqrt{n_\text{in}})`,
    returned with shape ``(fan_out,)`` for ``shape = (fan_in, fan_out)``."""
    fan_in, fan_out = _fans(shape, "torch_linear_bias")
    _check_rng(rng, "torch_linear_bias")
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=fan_out).astype(dtype, copy=False)


def _zero_bias(shape, rng=None, dtype=np.float64) -> np.ndarray:
    return np.zeros(_fans(shape, "bias")[1], dtype=dtype)


def _partial(fn, **kw):
    def f(shape, rng, dtype=np.float64):
        return fn(shape, rng, dtype, **kw)
    f.__name__ = fn.__name__
    f.__doc__ = f"{fn.__name__} with {kw}.\n\n{fn.__doc__}"
    return f


class LayerInit(NamedTuple):
    """An initialisation scheme: ``weight(shape, rng, dtype)`` and ``bias(shape, rng, dtype)``."""
    name: str
    weight: Callable
    bias: Callable

    def __call__(self, shape, rng, dtype=np.float64) -> np.ndarray:
        """Calling the scheme draws a weight matrix, so it can stand in for a weight callable."""
        return self.weight(shape, rng, dtype)


def _entry(name, weight, bias=_zero_bias):
    return LayerInit(name, weight, bias)


INITIALIZERS: dict[str, LayerInit] = {
    "he": _entry("he", kaiming_normal),
    "kaiming": _entry("kaiming", kaiming_normal),
    "he_normal": _entry("he_normal", kaiming_normal),
    "he_uniform": _entry("he_uniform", kaiming_uniform),
    "kaiming_uniform": _entry("kaiming_uniform", kaiming_uniform),
    "xavier": _entry("xavier", xavier_uniform),
    "glorot": _entry("glorot", xavier_uniform),
    "xavier_uniform": _entry("xavier_uniform", xavier_uniform),
    "xavier_normal": _entry("xavier_normal", xavier_normal),
    "xavier_tanh": _entry("xavier_tanh", _partial(xavier_uniform, gain=5.0 / 3.0)),
    "lecun": _entry("lecun", lecun_normal),
    "lecun_normal": _entry("lecun_normal", lecun_normal),
    "lecun_uniform": _entry("lecun_uniform", lecun_uniform),
    "normal": _entry("normal", normal),
    "zeros": _entry("zeros", zeros),
    "torch": _entry("torch", torch_linear_default, torch_linear_bias),
}
"""Initialisation schemes by name. ``"he"`` = Kaiming normal (ReLU gain, fan_in), ``"xavier"`` =
Glorot uniform (gain 1), ``"lecun"`` = LeCun normal, ``"normal"`` = N(0, 0.01^2), ``"torch"`` =
PyTorch ``nn.Linear`` defaults (weight *and* bias). All but ``"torch"`` use zero biases."""


def get_initializer(init) -> LayerInit:
    """Resolve ``init`` (a name in :data:`INITIALIZERS`, a :class:`LayerInit`, or a weight callable
    ``f(shape, rng, dtype)`` paired with zero biases) to a :class:`LayerInit`."""
    if isinstance(init, LayerInit):
        return init
    if isinstance(init, str):
        try:
            return INITIALIZERS[init]
        except KeyError:
            raise ValueError(f"get_initializer: unknown init {init!r}; "
                             f"expected one of {sorted(INITIALIZERS)} or a callable") from None
    if callable(init):
        return LayerInit(getattr(init, "__name__", "custom"), init, _zero_bias)
    raise TypeError(f"get_initializer: init must be a name or a callable, got {type(init).__name__}")


def init_layer(init, fan_in: int, fan_out: int, rng, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(W, b)`` with shapes ``(fan_in, fan_out)`` and ``(fan_out,)`` for scheme ``init``."""
    scheme = get_initializer(init)
    shape = (fan_in, fan_out)
    W = np.asarray(scheme.weight(shape, rng, dtype), dtype=dtype)
    b = np.asarray(scheme.bias(shape, rng, dtype), dtype=dtype)
    if W.shape != shape or b.shape != (fan_out,):
        raise ValueError(f"init_layer: initializer {scheme.name!r} returned shapes {W.shape}, {b.shape}; "
                         f"expected {shape}, {(fan_out,)}")
    return W, b
