r"""Smooth activations: GELU (exact and tanh), SiLU/Swish, Softplus, Mish, with derivatives.

Public names are re-exported by :mod:`actgrad.activations`; import them from there.
Products ``x * g(x)`` clamp ``x`` where ``g`` has already underflowed to exactly 0, so
``x = -inf`` gives the limit ``0`` instead of ``-inf * 0 = nan`` (PyTorch returns ``nan`` there).
"""
from __future__ import annotations

import math

import numpy as np

from ._core import dsigmoid_k, elementwise, real_scalar, sigmoid_k, softplus_k

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


def _erfc(x: np.ndarray) -> np.ndarray:
    return _erfc_scipy(x) if _erfc_scipy is not None else _erfc_math(x)


def _Phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF as erfc(-x/sqrt 2)/2: accurate in the left tail, unlike (1 + erf)/2."""
    return 0.5 * _erfc(-x / _SQRT2)


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
        u = _K_TANH * (xc + _C_TANH * xc * xc * xc)
        return np.maximum(x, -1e5) * sigmoid_k(2.0 * u)
    return np.maximum(x, -40.0) * _Phi(x)          # Phi(-40) underflows to 0 in float64


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
        x2 = xc * xc
        u = _K_TANH * (xc + _C_TANH * x2 * xc)
        return sigmoid_k(2.0 * u) + 2.0 * xc * dsigmoid_k(2.0 * u) * _K_TANH * (1.0 + 3.0 * _C_TANH * x2)
    xc = np.clip(x, -40.0, 40.0)                     # phi(40) = exp(-800) = 0
    return _Phi(x) + xc * (_INV_SQRT_2PI * np.exp(-0.5 * xc * xc))


@elementwise
def silu(x):
    r"""SiLU / Swish with :math:`\beta = 1` :cite:`hendrycks2016,ramachandran2017`.

    .. math:: \mathrm{SiLU}(x) = x\,\sigma(x) = \frac{x}{1+e^{-x}}

    Shape: same as ``x``. Range: about [-0.2785, inf); minimum at x = -1.2785. Not monotone.
    """
    return np.maximum(x, -800.0) * sigmoid_k(x)


@elementwise
def silu_prime(x):
    r"""Derivative of :func:`silu`.

    .. math:: \mathrm{SiLU}'(x) = \sigma(x) + x\,\sigma(x)\bigl(1-\sigma(x)\bigr)

    Shape: same as ``x``. Range: about [-0.0998, 1.0998]; equals 1/2 at 0.
    """
    return sigmoid_k(x) + np.clip(x, -800.0, 800.0) * dsigmoid_k(x)


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
        bx = x * beta
    return np.where(bx > threshold, x, softplus_k(bx) / beta)


@elementwise
def softplus_prime(x, beta: float = 1.0, threshold: float = 20.0):
    r"""Derivative of :func:`softplus`: :math:`\sigma(\beta x)`, and exactly 1 where :math:`\beta x > \text{threshold}`.

    At :math:`\beta x = \text{threshold}` exactly the sigmoid branch is used, as in PyTorch.
    Shape: same as ``x``. Range: (0, 1]. NaN gives NaN.
    """
    beta, threshold = _softplus_args(beta, threshold)
    with np.errstate(over="ignore"):
        bx = x * beta
    return np.where(bx > threshold, np.where(np.isnan(x), x, 1.0), sigmoid_k(bx))


@elementwise
def mish(x):
    r"""Mish :cite:`misra2019`.

    .. math:: \mathrm{Mish}(x) = x\tanh\bigl(\mathrm{softplus}(x)\bigr) = x\tanh\bigl(\log(1+e^x)\bigr)

    Softplus here is the unthresholded, overflow-free one. Shape: same as ``x``.
    Range: about [-0.3088, inf); minimum at x = -1.1924. Not monotone.
    """
    return np.maximum(x, -800.0) * np.tanh(softplus_k(x))


@elementwise
def mish_prime(x):
    r"""Derivative of :func:`mish`.

    .. math:: \mathrm{Mish}'(x) = \tanh(\mathrm{sp}(x)) + x\,\sigma(x)\,\operatorname{sech}^2(\mathrm{sp}(x)),
              \quad \mathrm{sp} = \mathrm{softplus}

    :math:`\operatorname{sech}^2 s = 4w/(1+w)^2` with :math:`w = e^{-2s}` avoids :math:`1-\tanh^2` cancellation.
    Shape: same as ``x``. Range: about [-0.11, 1.12]; equals 0.6 at 0.
    """
    sp = softplus_k(x)
    w = np.exp(-sp) ** 2
    sech2 = 4.0 * w / ((1.0 + w) * (1.0 + w))
    return np.tanh(sp) + np.clip(x, -800.0, 800.0) * sigmoid_k(x) * sech2
