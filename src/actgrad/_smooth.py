r"""Smooth activations: GELU (exact and tanh), SiLU/Swish, Softplus, Mish, with derivatives.

Public names are re-exported by :mod:`actgrad.activations`; import them from there.
Products ``x * g(x)`` clamp ``x`` where ``g`` has already underflowed to exactly 0, so
``x = -inf`` gives the limit ``0`` instead of ``-inf * 0 = nan`` (PyTorch returns ``nan`` there).
"""
from __future__ import annotations

import math

import numpy as np

from ._core import (dsigmoid_from_parts_k, elementwise, expneg_abs_k, real_scalar, sigmoid_k, sigmoid_parts_k,
                    softplus_k)

try:  # SciPy's erfc is vectorised C; the fallback is math.erfc element by element (exact, slower)
    from scipy.special import erfc as _erfc_scipy
except ImportError:  # pragma: no cover - exercised by tests through _erfc_math directly
    _erfc_scipy = None

__all__ = ["gelu", "gelu_prime", "silu", "silu_prime", "softplus", "softplus_prime", "mish", "mish_prime"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_K_TANH = math.sqrt(2.0 / math.pi)   # GELU tanh approximation, Hendrycks & Gimpel (2016)
_C_TANH = 0.044715

_erfc_math_u = np.frompyfunc(math.erfc, 1, 1)


def _erfc_math(x: np.ndarray) -> np.ndarray:
    return np.asarray(_erfc_math_u(np.asarray(x, dtype=np.float64)), dtype=np.float64).astype(x.dtype, copy=False)


def _Phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF as erfc(-x/sqrt 2)/2: accurate in the left tail, unlike (1 + erf)/2. Fresh array."""
    t = np.divide(x, -_SQRT2)                        # = -x/sqrt 2 exactly
    t = _erfc_scipy(t, out=t) if _erfc_scipy is not None else _erfc_math(t)
    t *= 0.5
    return t


def _sigmoid_and_dsigmoid(v: np.ndarray):
    """(sigma(v), sigma'(v)) sharing exp(-|v|) and 1 + exp(-|v|) (same values as the separate kernels)."""
    z = expneg_abs_k(v)
    s, d = sigmoid_parts_k(v, z)
    return s, dsigmoid_from_parts_k(z, d)


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@elementwise
def gelu(x, approximate: str = "none"):
    r"""Gaussian Error Linear Unit :cite:`hendrycks2016`.

    .. math:: \mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\bigl(1 + \operatorname{erf}(x/\sqrt2)\bigr)

    ``approximate="tanh"``:
    :math:`\tfrac{x}{2}\bigl(1+\tanh\bigl(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\bigr)\bigr)`, computed as
    :math:`x\,\sigma\bigl(2\sqrt{2/\pi}(x+0.044715x^3)\bigr)` to avoid cancellation for x < 0.

    Shape: same as ``x``. Range: about [-0.17, inf); minimum -0.1700 at x = -0.7518.
    Pitfall: not monotone on x < -0.75; ``approximate`` is a string as in PyTorch, not a bool.
    """
    _check_approximate(approximate)
    if approximate == "tanh":
        xc = np.clip(x, -1e5, 1e5)                  # sigma(2u) is exactly 0 or 1 far before 1e5
        w = xc * _C_TANH
        w *= xc
        s = sigmoid_k(_two_u(xc, w))
        s *= np.maximum(x, -1e5, out=xc)
        return s
    p = _Phi(x)
    p *= np.maximum(x, -40.0)                      # Phi(-40) underflows to 0 in float64
    return p


def _two_u(xc, w):
    """2u = 2 sqrt(2/pi) (x + 0.044715 x^3) given x and w = 0.044715 x x (overwritten and returned)."""
    w *= xc
    w += xc
    w *= _K_TANH
    w *= 2.0
    return w


@elementwise
def gelu_prime(x, approximate: str = "none"):
    r"""Derivative of :func:`gelu`.

    .. math:: \mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x),\qquad \varphi(x) = e^{-x^2/2}/\sqrt{2\pi}

    tanh form: :math:`\sigma(2u) + 2x\,\sigma'(2u)\,\sqrt{2/\pi}\,(1 + 3\cdot0.044715\,x^2)`,
    :math:`u = \sqrt{2/\pi}(x + 0.044715x^3)`.
    Shape: same as ``x``. Range: about [-0.13, 1.13]; equals 1/2 at 0 (no kink).
    """
    _check_approximate(approximate)
    if approximate == "tanh":
        xc = np.clip(x, -1e5, 1e5)
        x2 = np.square(xc)
        s, ds = _sigmoid_and_dsigmoid(_two_u(xc, x2 * _C_TANH))
        xc *= 2.0                                   # s + 2x sigma'(2u) sqrt(2/pi) (1 + 3c x^2)
        ds *= xc
        ds *= _K_TANH
        x2 *= 3.0 * _C_TANH
        x2 += 1.0
        ds *= x2
        s += ds
        return s
    xc = np.clip(x, -40.0, 40.0)                     # phi(40) = exp(-800) = 0
    e = xc * -0.5
    e *= xc
    np.exp(e, out=e)
    e *= _INV_SQRT_2PI
    e *= xc
    p = _Phi(x)
    p += e
    return p


@elementwise
def silu(x):
    r"""SiLU / Swish with :math:`\beta = 1` :cite:`hendrycks2016,ramachandran2017`.

    .. math:: \mathrm{SiLU}(x) = x\,\sigma(x) = \frac{x}{1+e^{-x}}

    Shape: same as ``x``. Range: about [-0.2785, inf); minimum at x = -1.2785. Not monotone.
    """
    s = sigmoid_k(x)
    s *= np.maximum(x, -800.0)
    return s


@elementwise
def silu_prime(x):
    r"""Derivative of :func:`silu`.

    .. math:: \mathrm{SiLU}'(x) = \sigma(x) + x\,\sigma(x)\bigl(1-\sigma(x)\bigr)

    Shape: same as ``x``. Range: about [-0.0998, 1.0998]; equals 1/2 at 0.
    """
    s, ds = _sigmoid_and_dsigmoid(x)
    ds *= np.clip(x, -800.0, 800.0)
    s += ds
    return s


def _softplus_args(beta, threshold):
    beta = real_scalar(beta, "softplus", "beta")
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    return beta, real_scalar(threshold, "softplus", "threshold")


@elementwise
def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    r"""Softplus, a smooth ReLU, with PyTorch's ``beta`` and ``threshold``.

    .. math:: \mathrm{softplus}_\beta(x) = \tfrac1\beta\log\bigl(1 + e^{\beta x}\bigr),
              \quad\text{and } x \text{ itself where } \beta x > \text{threshold}

    Computed as :math:`(\max(\beta x,0) + \log(1+e^{-|\beta x|}))/\beta`, which never overflows.
    Shape: same as ``x``. Range: (0, inf). Pitfall: the threshold switch (as in PyTorch) makes
    the function jump by about :math:`e^{-\text{threshold}}/\beta` there.
    """
    beta, threshold = _softplus_args(beta, threshold)
    with np.errstate(over="ignore"):   # |beta*x| -> inf only for |x| near the float max: limit is right
        bx = x * beta if beta != 1.0 else x
    out = softplus_k(bx)
    if beta != 1.0:
        out /= beta
    big = bx > threshold
    if big.any():  # masked copy: fast when the mask is sparse or uniform, as it is here
        np.copyto(out, x, where=big)
    return out


@elementwise
def softplus_prime(x, beta: float = 1.0, threshold: float = 20.0):
    r"""Derivative of :func:`softplus`: :math:`\sigma(\beta x)`, and exactly 1 where :math:`\beta x > \text{threshold}`.

    At :math:`\beta x = \text{threshold}` exactly the sigmoid branch is used, as in PyTorch.
    Shape: same as ``x``. Range: (0, 1]. NaN gives NaN.
    """
    beta, threshold = _softplus_args(beta, threshold)
    with np.errstate(over="ignore"):
        bx = x * beta if beta != 1.0 else x
    out = sigmoid_k(bx)                 # NaN -> NaN (and NaN > threshold is False)
    big = bx > threshold
    if big.any():
        np.copyto(out, 1.0, where=big)
    return out


@elementwise
def mish(x):
    r"""Mish :cite:`misra2019`.

    .. math:: \mathrm{Mish}(x) = x\tanh\bigl(\mathrm{softplus}(x)\bigr) = x\tanh\bigl(\log(1+e^x)\bigr)

    Softplus here is the unthresholded, overflow-free one. Shape: same as ``x``.
    Range: about [-0.3088, inf); minimum at x = -1.1924. Not monotone.
    """
    t = softplus_k(x)
    np.tanh(t, out=t)
    t *= np.maximum(x, -800.0)
    return t


@elementwise
def mish_prime(x):
    r"""Derivative of :func:`mish`.

    .. math:: \mathrm{Mish}'(x) = \tanh(\mathrm{sp}(x)) + x\,\sigma(x)\,\operatorname{sech}^2(\mathrm{sp}(x)),
              \quad \mathrm{sp} = \mathrm{softplus}

    :math:`\operatorname{sech}^2 s = 4w/(1+w)^2` with :math:`w = e^{-2s}` avoids :math:`1-\tanh^2` cancellation.
    Shape: same as ``x``. Range: about [-0.11, 1.12]; equals 0.6 at 0.
    """
    z = expneg_abs_k(x)                     # shared by softplus and sigmoid
    s, d = sigmoid_parts_k(x, z)
    sp = np.log1p(z, out=z)
    sp += np.maximum(x, 0.0)                # = softplus_k(x)
    w = np.negative(sp, out=d)              # w = exp(-sp)^2
    np.exp(w, out=w)
    np.square(w, out=w)
    q = w + 1.0                             # sech^2 = 4w / (1 + w)^2
    np.square(q, out=q)
    w *= 4.0
    w /= q
    np.clip(x, -800.0, 800.0, out=q)
    q *= s
    q *= w
    np.tanh(sp, out=sp)
    sp += q
    return sp
