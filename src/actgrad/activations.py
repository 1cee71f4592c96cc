r"""Activation functions and their derivatives, in NumPy: the functional core of ``actgrad``.

Every elementwise activation ``f(x, ...)`` comes with ``f_prime(x, ...)`` = df/dx at x (same keyword
arguments), and a record in :data:`ACTIVATIONS` so that models and plots can pick one by name.

Conventions (shared by every function here and in :mod:`actgrad.losses`):

* Input: Python/NumPy scalars, lists or arrays of any shape, of bool/int/float. float32 -> float32,
  float64 -> float64, bool/int -> float64, float16 -> float16 (computed in float32 internally),
  longdouble -> float64. Complex, strings, ``None`` and object arrays raise ``TypeError`` naming
  the function and the type it got.
* Output: always an ``np.ndarray``; a Python float gives a **0-d array** (``float(out)`` or
  ``out.item()`` gives the number back).
* Numerics: no overflow/invalid ``RuntimeWarning`` for any finite input (tested at +-1e4 and at the
  float max); NaN propagates through functions *and* derivatives; +-inf give the mathematical
  limits (e.g. ``silu(-inf) = 0``, ``relu_prime(inf) = 1``) where PyTorch sometimes gives NaN.
* Kinks follow PyTorch autograd: ``relu_prime(0) = 0``, ``leaky_relu_prime(0) = alpha``,
  ``elu_prime(0) = alpha``, ``selu_prime(0) = lambda*alpha``, ``prelu_prime(0, a) = a``.
* Derivatives use closed forms written to avoid cancellation, e.g. :math:`\sigma'(x) = z/(1+z)^2`
  with :math:`z = e^{-|x|}` rather than :math:`s(1-s)`, which loses all digits for x > 36.
  In backprop, where only the cached output is at hand, use :func:`sigmoid_prime_from_output`
  and :func:`tanh_prime_from_output`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._core import (as_float_array, dsigmoid_k, elementwise, expneg_abs_k, nan_like_input, real_scalar,
                    sigmoid_k, step_k, x_and_param)
from ._smooth import gelu, gelu_prime, mish, mish_prime, silu, silu_prime, softplus, softplus_prime
from .softmax import log_softmax, softmax, softmax_backward, softmax_jacobian

__all__ = [
    "sigmoid", "sigmoid_prime", "sigmoid_prime_from_output", "tanh", "tanh_prime", "tanh_prime_from_output",
    "relu", "relu_prime", "leaky_relu", "leaky_relu_prime", "elu", "elu_prime", "selu", "selu_prime",
    "gelu", "gelu_prime", "silu", "silu_prime", "softplus", "softplus_prime", "mish", "mish_prime",
    "prelu", "prelu_prime", "prelu_grad_a", "prelu_backward",
    "softmax", "log_softmax", "softmax_backward", "softmax_jacobian",
    "Activation", "ACTIVATIONS", "get_activation", "SELU_ALPHA", "SELU_LAMBDA",
]

#: SELU constants of Klambauer et al. (2017), eq. (14) :cite:`klambauer2017`.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


@elementwise
def sigmoid(x):
    r"""Logistic sigmoid. :math:`\sigma(x) = \dfrac{1}{1+e^{-x}}`

    Computed as :math:`1/(1+z)` for x >= 0 and :math:`z/(1+z)` for x < 0 with :math:`z = e^{-|x|}`,
    so ``exp`` never overflows. Shape: same as ``x``. Range: (0, 1) (rounds to 0 or 1 for large |x|).
    Pitfall: not zero-centred, and saturates: :math:`\sigma' \le 1/4`.
    """
    return sigmoid_k(x)


@elementwise
def sigmoid_prime(x):
    r""":math:`\sigma'(x) = \sigma(x)\bigl(1-\sigma(x)\bigr) = \dfrac{z}{(1+z)^2},\ z = e^{-|x|}`.

    Shape: same as ``x``. Range: (0, 1/4], maximum 1/4 at 0; decays like :math:`e^{-|x|}`.
    """
    return dsigmoid_k(x)


@elementwise
def sigmoid_prime_from_output(s):
    r""":math:`\sigma'` from the cached output :math:`s = \sigma(x)`: :math:`s(1-s)` (the backprop form).

    Shape: same as ``s``. Loses relative accuracy where s rounds to 1 (x > ~36); harmless in backprop.
    """
    d = 1.0 - s
    d *= s
    return d


@elementwise
def tanh(x):
    r"""Hyperbolic tangent. :math:`\tanh x = \dfrac{e^x - e^{-x}}{e^x + e^{-x}} = 2\sigma(2x) - 1`

    Shape: same as ``x``. Range: (-1, 1), zero-centred. Pitfall: saturates like sigmoid.
    """
    return np.tanh(x)


@elementwise
def tanh_prime(x):
    r""":math:`\tanh'(x) = 1 - \tanh^2 x = \operatorname{sech}^2 x = \dfrac{4z^2}{(1+z^2)^2},\ z = e^{-|x|}`.

    Shape: same as ``x``. Range: (0, 1], maximum 1 at 0; :math:`\tanh'(x) = 4\sigma'(2x)`.
    """
    z2 = expneg_abs_k(x)
    np.square(z2, out=z2)
    d = z2 + 1.0
    np.square(d, out=d)
    z2 *= 4.0
    z2 /= d
    return z2


@elementwise
def tanh_prime_from_output(t):
    r""":math:`\tanh'` from the cached output :math:`t = \tanh x`: :math:`1 - t^2`. Shape: same as ``t``."""
    d = np.square(t)
    return np.subtract(1.0, d, out=d)


@elementwise
def relu(x):
    r"""Rectified linear unit :cite:`nair2010`. :math:`\mathrm{ReLU}(x) = \max(x, 0)`

    Shape: same as ``x``. Range: [0, inf). Pitfall: units whose input stays negative get zero
    gradient ("dying ReLU").
    """
    return np.maximum(x, 0.0)


@elementwise
def relu_prime(x):
    r""":math:`\mathrm{ReLU}'(x) = \mathbb 1[x > 0]`; 0 at x = 0 exactly (PyTorch's subgradient).

    Shape: same as ``x``. Values in {0, 1}; NaN gives NaN.
    """
    return nan_like_input(x, (x > 0).astype(x.dtype))


@elementwise
def leaky_relu(x, alpha: float = 0.01):
    r"""Leaky ReLU :cite:`maas2013`. :math:`\mathrm{LeakyReLU}_\alpha(x) = x` if :math:`x > 0`, else :math:`\alpha x`

    Shape: same as ``x``. Range: (-inf, inf) for alpha > 0. ``alpha`` is PyTorch's ``negative_slope``.
    """
    alpha = real_scalar(alpha, "leaky_relu", "alpha")
    if alpha == 0:
        return np.maximum(x, 0.0)
    ax = x * alpha
    if 0 < alpha <= 1:  # x > 0: alpha*x <= x; x < 0: alpha*x >= x (branch-free, exact)
        return np.maximum(x, ax, out=ax)
    if alpha > 1:
        return np.minimum(x, ax, out=ax)
    return np.where(x > 0, x, ax)


@elementwise
def leaky_relu_prime(x, alpha: float = 0.01):
    r""":math:`1` if :math:`x > 0`, else :math:`\alpha`; equals :math:`\alpha` at 0 exactly, as PyTorch.

    Shape: same as ``x``. NaN gives NaN.
    """
    alpha = real_scalar(alpha, "leaky_relu_prime", "alpha")
    return nan_like_input(x, step_k(x, 1.0, alpha))


def _prelu_args(x, a, fname):
    xw, aw, dt = x_and_param(x, a, fname, "slope a")
    return xw, aw, dt, xw.shape


def prelu(x, a) -> np.ndarray:
    r"""Parametric ReLU :cite:`he2015` with learnable slope ``a``: :math:`x` if :math:`x > 0`, else :math:`a x`.

    Shapes: ``a`` broadcasts against ``x`` with NumPy rules, e.g. x (N, H) with a scalar (shared
    slope) or a (H,) (one slope per unit; PyTorch's per-channel ``num_parameters=H`` on 2-D input).
    Returns ``x``'s shape and dtype (``a`` must broadcast to ``x``'s shape, else ``ValueError``).
    """
    xw, aw, dt, _ = _prelu_args(x, a, "prelu")
    return np.asarray(np.where(xw > 0, xw, aw * xw), dtype=dt)


def prelu_prime(x, a) -> np.ndarray:
    r""":math:`\partial\,\mathrm{PReLU}/\partial x`: 1 if :math:`x > 0`, else :math:`a` (``a`` at 0, as PyTorch).

    Shape and dtype: those of ``x``. NaN in x gives NaN.
    """
    xw, aw, dt, shape = _prelu_args(x, a, "prelu_prime")
    d = np.where(xw > 0, np.ones((), xw.dtype), aw)
    return np.asarray(np.where(np.isnan(xw), xw, np.broadcast_to(d, shape)), dtype=dt)


@elementwise
def prelu_grad_a(x):
    r"""Elementwise :math:`\partial\,\mathrm{PReLU}(x; a)/\partial a = \min(x, 0)` (0 at x = 0, as PyTorch).

    Does not depend on ``a``. Shape: same as ``x``. To get the slope gradient, multiply by the
    upstream gradient and sum over the broadcast axes (see :func:`prelu_backward`).
    """
    return np.minimum(x, 0.0)


def prelu_backward(dout, x, a):
    r"""Backward pass of :func:`prelu`: returns ``(dx, da)``.

    .. math:: dx = dout \odot \mathrm{PReLU}'(x),\qquad
              da = \sum_{\text{broadcast axes}} dout \odot \min(x, 0)

    Shapes: ``dout`` has ``x``'s shape; ``dx`` has ``x``'s shape, ``da`` has ``a``'s
    shape (a 0-d array for scalar ``a``). dtypes follow ``x``.
    """
    xw, aw, dt, shape = _prelu_args(x, a, "prelu_backward")
    g, _ = as_float_array(dout, "prelu_backward", "dout")
    if g.shape != shape:
        raise ValueError(f"prelu_backward: dout must have shape {shape}, got {g.shape}")
    dx = g * np.where(xw > 0, np.ones((), xw.dtype), aw)
    dx = np.where(np.isnan(xw), xw, dx)
    da = g * np.minimum(xw, 0.0)
    lead = da.ndim - aw.ndim                          # sum leading axes, then axes where a has size 1
    da = da.sum(axis=tuple(range(lead))) if lead else da
    da = da.sum(axis=tuple(i for i, n in enumerate(aw.shape) if n == 1), keepdims=True) if aw.ndim else da
    return np.asarray(dx, dtype=dt), np.asarray(da, dtype=dt)


@elementwise
def elu(x, alpha: float = 1.0):
    r"""Exponential linear unit :cite:`clevert2016`. :math:`x` if :math:`x > 0`, else :math:`\alpha(e^x - 1)`

    Uses ``expm1`` on :math:`\min(x, 0)` (accurate near 0, never overflows).
    Shape: same as ``x``. Range: (-alpha, inf). Continuous derivative at 0 only for alpha = 1.
    """
    alpha = real_scalar(alpha, "elu", "alpha")
    return _elu_k(x, alpha)


def _elu_k(x, alpha):
    """max(x, 0) + alpha*expm1(min(x, 0)): one term is exactly 0, so this equals the two branches."""
    e = np.minimum(x, 0.0)
    np.expm1(e, out=e)
    if alpha != 1.0:
        e *= alpha
    e += np.maximum(x, 0.0)
    return e


@elementwise
def elu_prime(x, alpha: float = 1.0):
    r""":math:`1` if :math:`x > 0`, else :math:`\alpha e^x`; equals :math:`\alpha` at 0 exactly, as PyTorch.

    Shape: same as ``x``. NaN gives NaN.
    """
    alpha = real_scalar(alpha, "elu_prime", "alpha")
    return _elu_prime_k(x, alpha)


def _elu_prime_k(x, alpha):
    """exp(min(x, 0)) (exactly 1 for x >= 0) times (1 if x > 0 else alpha); NaN stays NaN."""
    e = np.minimum(x, 0.0)
    np.exp(e, out=e)
    e *= step_k(x, 1.0, alpha)
    return e


@elementwise
def selu(x):
    r"""Scaled ELU :cite:`klambauer2017`. :math:`\lambda x` if :math:`x > 0`, else :math:`\lambda\alpha(e^x - 1)`

    :math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507` (:data:`SELU_ALPHA`, :data:`SELU_LAMBDA`)
    make zero mean / unit variance a fixed point for LeCun-normal weights. Range: (-1.7581, inf).
    """
    with np.errstate(over="ignore"):  # lambda * x rounds to inf only for x > 1.7e308: that is the right answer
        e = _elu_k(x, SELU_ALPHA)
        e *= SELU_LAMBDA
        return e


@elementwise
def selu_prime(x):
    r""":math:`\lambda` if :math:`x > 0`, else :math:`\lambda\alpha e^x`; equals :math:`\lambda\alpha \approx 1.7581` at 0, as PyTorch."""
    e = _elu_prime_k(x, SELU_ALPHA)
    e *= SELU_LAMBDA
    return e


# --- registry --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Activation:
    """Immutable record describing one elementwise activation.

    ``fn(x, **kw)`` and ``prime(x, **kw)`` accept the keyword arguments listed in ``defaults``
    (a fresh dict each time, so the record cannot be mutated through it).
    """

    name: str
    fn: Callable[..., np.ndarray]
    prime: Callable[..., np.ndarray]
    latex: str
    range: str
    zero_centred: bool
    default_items: tuple[tuple[str, Any], ...] = ()

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.default_items)

    def __call__(self, x, **kwargs) -> np.ndarray:
        return self.fn(x, **kwargs)


_SPECS = [
    ("sigmoid", sigmoid, sigmoid_prime, r"\sigma(x) = \frac{1}{1+e^{-x}}", "(0, 1)", False, ()),
    ("tanh", tanh, tanh_prime, r"\tanh x = \frac{e^x-e^{-x}}{e^x+e^{-x}}", "(-1, 1)", True, ()),
    ("relu", relu, relu_prime, r"\max(x, 0)", "[0, inf)", False, ()),
    ("leaky_relu", leaky_relu, leaky_relu_prime, r"\begin{cases}x & x>0\\ \alpha x & x\le 0\end{cases}",
     "(-inf, inf)", False, (("alpha", 0.01),)),
    ("elu", elu, elu_prime, r"\begin{cases}x & x>0\\ \alpha(e^x-1) & x\le 0\end{cases}", "(-alpha, inf)",
     False, (("alpha", 1.0),)),
    ("selu", selu, selu_prime, r"\lambda\begin{cases}x & x>0\\ \alpha(e^x-1) & x\le 0\end{cases}",
     "(-1.7581, inf)", False, ()),
    ("gelu", gelu, gelu_prime, r"x\,\Phi(x) = \frac{x}{2}\left(1+\operatorname{erf}\frac{x}{\sqrt2}\right)",
     "[-0.1700, inf)", False, (("approximate", "none"),)),
    ("silu", silu, silu_prime, r"x\,\sigma(x)", "[-0.2785, inf)", False, ()),
    ("softplus", softplus, softplus_prime, r"\frac{1}{\beta}\log\left(1+e^{\beta x}\right)", "(0, inf)", False,
     (("beta", 1.0), ("threshold", 20.0))),
    ("mish", mish, mish_prime, r"x\tanh\left(\log(1+e^x)\right)", "[-0.3088, inf)", False, ()),
]

#: Name -> :class:`Activation` for every elementwise activation (PReLU, which has a parameter, is not here).
ACTIVATIONS: dict[str, Activation] = {s[0]: Activation(*s) for s in _SPECS}


def get_activation(name) -> Activation:
    """Look up an :class:`Activation` by name (an ``Activation`` is returned unchanged).

    Raises ``ValueError`` listing the known names for an unknown one, ``TypeError`` for a non-string.
    """
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise TypeError(f"get_activation: name must be a str, got {type(name).__name__}")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"get_activation: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
