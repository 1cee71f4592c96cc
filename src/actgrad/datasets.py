r"""Small, offline, seeded datasets for the course.

Everything here is either generated from an explicit ``np.random.default_rng(seed)`` or loaded
from data bundled with scikit-learn (the 8x8 digits of :func:`sklearn.datasets.load_digits`,
which ships inside the package: nothing is downloaded). Features are ``float64`` of shape
``(N, D)``, labels ``int64`` of shape ``(N,)``.

>>> X, y = spirals(n_per_class=50, n_classes=3, seed=0)
>>> X.shape, y.shape, X.dtype, y.dtype
((150, 2), (150,), dtype('float64'), dtype('int64'))
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

__all__ = ["Split", "Dataset", "spirals", "xor", "digits", "one_hot", "train_test_split"]


class Split(NamedTuple):
    """A train/test split: ``X_*`` float64 ``(N, D)``, ``y_*`` int64 ``(N,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


class Dataset(NamedTuple):
    """An unsplit dataset: ``X`` float64 ``(N, D)``, ``y`` int64 ``(N,)``."""

    X: np.ndarray
    y: np.ndarray


def _rng(seed, fn):
    """An explicit Generator from an int seed or an existing Generator (never global state)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(f"{fn}: seed must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _pos_int(value, name, fn, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _nonneg_float(value, name, fn):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{fn}: {name} must be a finite float >= 0, got {value!r}")
    return float(value)


def spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    r"""Interleaved 2-D spirals, one arm per class (the classic non-linearly-separable toy set).

    Arm :math:`k` has :math:`n` points with radius :math:`r_i = i/(n-1) \in [0, 1]`, angle
    :math:`\theta_i = 4(k + r_i) + \varepsilon_i` (radians),
    :math:`\varepsilon_i \sim \mathcal N(0, \text{noise}^2)`, and
    :math:`x_i = (r_i \sin\theta_i,\; r_i \cos\theta_i)`.
    Each arm sweeps 4 radians and starts 4 radians after the previous one; a linear model
    cannot separate them, a small MLP can.

    Returns ``(X, y)``: ``X`` float64 ``(n_per_class * n_classes, 2)`` inside the unit disc,
    ``y`` int64 with exactly ``n_per_class`` examples of each class ``0..n_classes-1``, in class
    order (shuffle before mini-batching).
    """
    fn = "spirals"
    n = _pos_int(n_per_class, "n_per_class", fn, minimum=2)
    k = _pos_int(n_classes, "n_classes", fn, minimum=2)
    noise = _nonneg_float(noise, "noise", fn)
    rng = _rng(seed, fn)
    r = np.linspace(0.0, 1.0, n)
    X = np.empty((n * k, 2), dtype=np.float64)
    y = np.repeat(np.arange(k, dtype=np.int64), n)
    for c in range(k):
        theta = 4.0 * (c + r) + noise * rng.standard_normal(n)
        X[c * n:(c + 1) * n, 0] = r * np.sin(theta)
        X[c * n:(c + 1) * n, 1] = r * np.cos(theta)
    return Dataset(X, y)


def xor(n=200, noise=0.1, seed=0):
    r"""The XOR problem: four Gaussian blobs at the corners :math:`(\pm1, \pm1)`.

    A point drawn around corner :math:`(s_1, s_2)` has label :math:`y = [s_1 \ne s_2]`, i.e. 1 in
    the second and fourth quadrants: the smallest problem no linear classifier solves
    (Minsky & Papert). ``noise`` is the standard deviation of each blob.

    Returns ``(X, y)``: ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)`` in shuffled order; the four
    corners get ``n // 4`` points each, the first ``n % 4`` corners one more.
    """
    fn = "xor"
    n = _pos_int(n, "n", fn, minimum=4)
    noise = _nonneg_float(noise, "noise", fn)
    rng = _rng(seed, fn)
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])
    labels = np.array([0, 0, 1, 1], dtype=np.int64)
    idx = rng.permutation(np.arange(n) % 4)
    X = corners[idx] + noise * rng.standard_normal((n, 2))
    return Dataset(X, labels[idx])


def one_hot(y, n_classes=None):
    r"""One-hot encode integer labels: :math:`Y_{ij} = [y_i = j]`.

    ``y`` int array ``(N,)`` with values in ``0..n_classes-1`` -> float64 ``(N, n_classes)``.
    ``n_classes`` defaults to ``y.max() + 1``.
    """
    fn = "one_hot"
    arr = np.asarray(y)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"{fn}: y must be a 1-D integer array, got dtype {arr.dtype} "
                        f"and shape {arr.shape}")
    arr = arr.astype(np.int64)
    if n_classes is None:
        n_classes = int(arr.max()) + 1 if arr.size else 0
    n_classes = _pos_int(n_classes, "n_classes", fn, minimum=0)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{fn}: labels must lie in [0, {n_classes}), got range "
                         f"[{arr.min()}, {arr.max()}]")
    out = np.zeros((arr.size, n_classes), dtype=np.float64)
    out[np.arange(arr.size), arr] = 1.0
    return out


def train_test_split(X, y, test_size=0.25, seed=0, stratify=True):
    r"""Shuffle and split ``(X, y)`` into a :class:`Split`.

    ``test_size`` is a fraction in (0, 1) or an int count. With ``stratify=True`` each class is
    split separately, so class proportions match in both parts up to rounding (each class
    contributes ``round(test_size * n_c)`` test examples). Rows are shuffled with
    ``np.random.default_rng(seed)``; the same seed gives the same split.
    """
    fn = "train_test_split"
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"{fn}: X and y need the same length with y 1-D, got shapes "
                         f"{X.shape} and {y.shape}")
    n = len(y)
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 0 < test_size < n:
            raise ValueError(f"{fn}: integer test_size must be in [1, {n - 1}], got {test_size}")
        frac = test_size / n
    elif isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        frac = float(test_size)
    else:
        raise ValueError(f"{fn}: test_size must be a fraction in (0, 1) or an int, "
                         f"got {test_size!r}")
    rng = _rng(seed, fn)
    if stratify:
        test_idx = []
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            test_idx.append(members[:int(round(frac * len(members)))])
        test_idx = np.concatenate(test_idx)
    else:
        test_idx = rng.permutation(n)[:int(round(frac * n))]
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~mask))
    test_idx = rng.permutation(np.flatnonzero(mask))
    return Split(X[train_idx], y[train_idx], X[test_idx], y[test_idx])


def digits(split=True, test_size=0.25, seed=0, scale=True):
    r"""The 8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes).

    Source: the UCI "Optical Recognition of Handwritten Digits" test set, as shipped in
    :func:`sklearn.datasets.load_digits` (no download). Each row is a flattened 8x8 image with
    integer intensities 0..16; with ``scale=True`` they are divided by 16 so
    :math:`x \in [0, 1]^{64}`.

    Returns a :class:`Split` ``(X_train, y_train, X_test, y_test)`` (stratified, seeded, see
    :func:`train_test_split`) when ``split=True``, otherwise a :class:`Dataset` ``(X, y)`` in
    scikit-learn's order. ``X`` float64 ``(N, 64)``, ``y`` int64 ``(N,)``.
    """
    fn = "digits"
    if not isinstance(split, bool) or not isinstance(scale, bool):
        raise TypeError(f"{fn}: split and scale must be bool, got {split!r}, {scale!r}")
    from sklearn.datasets import load_digits  # bundled data, imported lazily (slow import)

    raw = load_digits()
    X = np.asarray(raw.data, dtype=np.float64)
    if scale:
        X = X / 16.0
    y = np.asarray(raw.target, dtype=np.int64)
    if not split:
        return Dataset(X, y)
    return train_test_split(X, y, test_size=test_size, seed=seed, stratify=True)
