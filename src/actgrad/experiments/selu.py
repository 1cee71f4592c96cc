"""Chapter "Initialization": SELU's (alpha, lambda) from the fixed point mean 0 / variance 1 (Klambauer et al., 2017)."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


__all__ = ['SeluFixedPoint', 'selu_moments', 'selu_fixed_point']


class SeluFixedPoint(NamedTuple):
    """SELU's constants and how Newton's method got there (``residual``: max |F| at the end)."""

    alpha: float
    lam: float
    iterations: int
    residual: float


def _Phi(x):
    """Standard normal CDF via erfc (accurate in both tails)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def selu_moments(alpha, lam):
    r"""Mean and second moment of :math:`\operatorname{selu}(z)` for :math:`z \sim \mathcal N(0,1)`.

    With :math:`\operatorname{selu}(z) = \lambda z` for :math:`z>0`, :math:`\lambda\alpha(e^z-1)`
    otherwise, and :math:`\int_{-\infty}^0 e^{kz}\varphi(z)\,dz = e^{k^2/2}\Phi(-k)`:

    .. math::
        E = \lambda\Big[\tfrac{1}{\sqrt{2\pi}} + \alpha\big(e^{1/2}\Phi(-1) - \tfrac12\big)\Big],\qquad
        E_2 = \lambda^2\Big[\tfrac12 + \alpha^2\big(e^{2}\Phi(-2) - 2e^{1/2}\Phi(-1) + \tfrac12\big)\Big].

    Returns ``(E, E_2)`` as floats (the variance is :math:`E_2 - E^2`).
    """
    pos1, pos2 = 1.0 / math.sqrt(2.0 * math.pi), 0.5
    neg1 = math.exp(0.5) * _Phi(-1.0) - 0.5
    neg2 = math.exp(2.0) * _Phi(-2.0) - 2.0 * math.exp(0.5) * _Phi(-1.0) + 0.5
    return lam * (pos1 + alpha * neg1), lam ** 2 * (pos2 + alpha ** 2 * neg2)


def selu_fixed_point(x0=(1.5, 1.0), tol=1e-15, max_iter=50):
    r"""Solve :math:`E[\operatorname{selu}(z)] = 0`, :math:`E[\operatorname{selu}(z)^2] = 1`
    (:math:`z \sim \mathcal N(0,1)`) for :math:`(\alpha, \lambda)` by Newton's method.

    With zero-mean, unit-variance weights (:math:`\sum_i w_i = 0`, :math:`\sum_i w_i^2 = 1`) a
    standard normal input then gives a standard normal-ish output: (0, 1) is a fixed point of the
    layer map (Klambauer et al., 2017, who report :math:`\alpha \approx 1.6733`,
    :math:`\lambda \approx 1.0507`). The Jacobian is taken by central differences (step 1e-6);
    convergence is quadratic from ``x0``. Raises RuntimeError if it does not converge.
    """
    def F(v):
        m, s = selu_moments(*v)
        return np.array([m, s - 1.0])

    v = np.array(x0, dtype=np.float64)
    h = 1e-6
    for it in range(1, max_iter + 1):
        J = np.column_stack([(F(v + h * e) - F(v - h * e)) / (2 * h) for e in np.eye(2)])
        step = np.linalg.solve(J, F(v))
        v = v - step
        if np.max(np.abs(step)) < tol * max(1.0, np.max(np.abs(v))) * 10:
            break
    else:
        raise RuntimeError(f"selu_fixed_point: Newton did not converge in {max_iter} iterations")
    return SeluFixedPoint(float(v[0]), float(v[1]), it, float(np.max(np.abs(F(v)))))


