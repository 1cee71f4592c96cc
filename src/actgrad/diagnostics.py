r"""Gradient-flow diagnostics over an MLP's caches, gradients and parameters.

The quantities Glorot & Bengio (2010) and the CS231n notes use to tell a healthy network from a
sick one, as plain functions:

* :func:`layer_stats` - per layer, mean/std of pre-activations :math:`z` and activations
  :math:`a`, the *saturated fraction* and the *dead fraction* (definitions below);
* :func:`gradient_norms` - :math:`\lVert \partial L/\partial W_l \rVert_F` in layer order;
* :func:`grad_to_data_ratio`, :func:`update_to_data_ratio` - the scale-free ratios
  :math:`\lVert g_l\rVert / \lVert W_l\rVert` and :math:`\lVert \Delta W_l\rVert / \lVert W_l\rVert`;
* :func:`model_layer_stats`, :func:`dead_units` - the same, straight from a model and a batch.

Caches are the per-layer records of ``MLP.forward`` (attributes ``x``, ``z``, ``a``: input,
pre-activation, activation, each ``(N, units)``); gradient and parameter dicts use the
``W1, b1, ..., WL, bL`` keys of :class:`actgrad.mlp.MLP`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["LayerStats", "layer_stats", "saturated_mask", "dead_mask", "gradient_norms",
           "grad_to_data_ratio", "update_to_data_ratio", "model_layer_stats", "dead_units",
           "SAT_TOL", "per_layer_factor"]

#: Default relative threshold for saturation: :math:`|f'(z)| < 0.01 \max_u |f'(u)|`.
SAT_TOL = 0.01
_PEAK_GRID = np.linspace(-10.0, 10.0, 4001)


class LayerStats(NamedTuple):
    """Statistics of one layer over one batch (all floats; ``layer`` is 1-based)."""

    layer: int
    pre_mean: float
    pre_std: float
    act_mean: float
    act_std: float
    saturated_fraction: float
    dead_fraction: float


# ----------------------------------------------------------------------------- helpers
def _resolve_prime(activation, fn):
    """Turn a name, an ``ACTIVATIONS`` record (``.prime``) or a callable into ``z -> f'(z)``."""
    if activation is None:
        return None
    if isinstance(activation, str):
        if activation in ("linear", "identity"):
            return lambda z: np.ones_like(np.asarray(z, dtype=np.float64))
        from .activations import ACTIVATIONS  # lazy: keeps this module importable on its own

        if activation not in ACTIVATIONS:
            raise ValueError(f"{fn}: unknown activation {activation!r}; known: "
                             f"{sorted(ACTIVATIONS)} (for prelu pass a callable derivative)")
        return ACTIVATIONS[activation].prime
    prime = getattr(activation, "prime", None)
    if callable(prime):
        return prime
    if callable(activation):
        return activation
    raise TypeError(f"{fn}: activation must be a name, a record with .prime or a callable "
                    f"derivative, got {type(activation).__name__}")


def _peak(prime):
    r""":math:`\max_u |f'(u)|` on a grid over [-10, 10] (0.25 for sigmoid, 1 for tanh/ReLU)."""
    with np.errstate(all="ignore"):
        return float(np.nanmax(np.abs(prime(_PEAK_GRID))))


def _zs_as(cache, i, fn):
    try:
        z, a = (cache.z, cache.a) if hasattr(cache, "z") else (cache[1], cache[2])
    except (TypeError, IndexError):
        raise TypeError(f"{fn}: cache {i} must have .z and .a (LayerCache) or be an (x, z, a) "
                        f"tuple, got {type(cache).__name__}") from None
    z, a = np.asarray(z), np.asarray(a)
    if z.ndim != 2 or z.shape != a.shape:
        raise ValueError(f"{fn}: cache {i} needs z and a of the same 2-D shape (N, units), "
                         f"got {z.shape} and {a.shape}")
    return z, a


def saturated_mask(z, activation, sat_tol=SAT_TOL):
    r"""Elementwise saturation: :math:`|f'(z)| < \text{sat\_tol}\cdot\max_u |f'(u)|`.

    ``z`` array of any shape -> bool array of the same shape. With the default
    ``sat_tol = 0.01`` a sigmoid unit is saturated when :math:`\sigma'(z) < 0.0025`, i.e.
    :math:`|z| \gtrsim 5.99` (output within 0.0025 of 0 or 1), and a tanh unit when
    :math:`1-\tanh^2 z < 0.01`, i.e. :math:`|\tanh z| > 0.995`, :math:`|z| \gtrsim 2.99`.
    For ReLU-like functions it flags the flat (inactive) side. NaN is never saturated.
    """
    prime = _resolve_prime(activation, "saturated_mask")
    if prime is None:
        raise ValueError("saturated_mask: an activation is required")
    if not 0 < sat_tol < 1:
        raise ValueError(f"saturated_mask: sat_tol must be in (0, 1), got {sat_tol!r}")
    with np.errstate(invalid="ignore"):
        return np.abs(prime(np.asarray(z, dtype=np.float64))) < sat_tol * _peak(prime)


def dead_mask(z, activation):
    r"""Per-unit deadness over a batch: unit :math:`j` is dead iff :math:`f'(z_{nj}) = 0`
    exactly for **every** example :math:`n`.

    ``z`` ``(N, units)`` -> bool ``(units,)``. A dead unit passes no gradient to its incoming
    weights on this batch, so gradient descent cannot revive it (Lu et al., 2020, "dying ReLU").
    The verdict is relative to the batch: a unit dead on a small batch may fire on another
    example, so use a large, representative batch. Saturating functions (sigmoid, tanh) only
    have an exactly-zero derivative after floating-point underflow, so they are essentially
    never dead; use :func:`saturated_mask` for them.
    """
    prime = _resolve_prime(activation, "dead_mask")
    if prime is None:
        raise ValueError("dead_mask: an activation is required")
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"dead_mask: z must be (N, units) with N >= 1, got shape {z.shape}")
    return np.all(prime(z) == 0, axis=0)


# ----------------------------------------------------------------------------- layer stats
def layer_stats(caches, activation=None, sat_tol=SAT_TOL):
    r"""Per-layer statistics of one forward pass (Glorot & Bengio, 2010, Figs. 2-6).

    ``caches``: sequence of per-layer caches with ``.z`` (pre-activation) and ``.a``
    (activation), each ``(N, units)`` - e.g. ``model.forward(X)[1]``, or ``[1][:-1]`` for the
    hidden layers only (the output layer has no hidden activation). ``activation``: the hidden
    activation (name, ``ACTIVATIONS`` record or derivative callable), or a list with one such
    spec per cache; needed for the last two fields, which are NaN when it is None.
    :func:`model_layer_stats` fills it in from a model.

    Returns a list of :class:`LayerStats`, one per cache, with

    * ``pre_mean``, ``pre_std``: mean and (population) std of all entries of :math:`z`;
    * ``act_mean``, ``act_std``: the same for :math:`a`;
    * ``saturated_fraction``: share of (example, unit) entries with
      :math:`|f'(z)| < \text{sat\_tol}\cdot\max|f'|` (see :func:`saturated_mask`);
    * ``dead_fraction``: share of units whose derivative is exactly 0 on the **whole batch**
      (see :func:`dead_mask`).

    NaN in the cache propagates to the means and stds.
    """
    fn = "layer_stats"
    if isinstance(caches, (str, bytes)) or not isinstance(caches, Sequence) or not caches:
        raise TypeError(f"{fn}: caches must be a non-empty list of layer caches, "
                        f"got {type(caches).__name__}")
    if isinstance(activation, (list, tuple)):
        if len(activation) != len(caches):
            raise ValueError(f"{fn}: {len(activation)} activations for {len(caches)} caches")
        primes = [_resolve_prime(act, fn) for act in activation]
    else:
        primes = [_resolve_prime(activation, fn)] * len(caches)
    out = []
    for i, (cache, prime) in enumerate(zip(caches, primes)):
        z, a = _zs_as(cache, i, fn)
        z64, a64 = z.astype(np.float64), a.astype(np.float64)
        if prime is None:
            sat = dead = float("nan")
        else:
            sat = float(np.mean(saturated_mask(z64, prime, sat_tol)))
            dead = float(np.mean(dead_mask(z64, prime)))
        out.append(LayerStats(i + 1, float(z64.mean()), float(z64.std()), float(a64.mean()),
                              float(a64.std()), sat, dead))
    return out


# ----------------------------------------------------------------------------- norms & ratios
def _layer_numbers(d, keys, fn):
    if not isinstance(d, Mapping):
        raise TypeError(f"{fn}: expected a dict of arrays, got {type(d).__name__}")
    if isinstance(keys, str):
        keys = (keys,)
    layers = {}
    for prefix in keys:
        pat = re.compile(rf"^{re.escape(prefix)}(\d+)$")
        for k in d:
            m = pat.match(str(k))
            if m:
                layers.setdefault(int(m.group(1)), []).append(k)
    if not layers:
        raise ValueError(f"{fn}: no keys of the form {keys[0]}1, {keys[0]}2, ... in "
                         f"{sorted(map(str, d))}")
    return {l: layers[l] for l in sorted(layers)}


def _norms(d, layers):
    return np.array([np.sqrt(sum(float(np.sum(np.square(np.asarray(d[k], dtype=np.float64))))
                                 for k in ks)) for ks in layers.values()])


def _ratio(num, den):
    """num/den without RuntimeWarnings: x/0 -> inf, 0/0 -> nan."""
    out = np.where(num > 0, np.inf, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def gradient_norms(grads, keys=("W",)):
    r"""Per-layer gradient norms :math:`\lVert \partial L / \partial W_l \rVert_F`, layer order.

    ``grads``: dict ``W1, b1, ..., WL, bL`` (as from ``MLP.backward``). ``keys``: parameter
    prefixes to include; with several (e.g. ``("W", "b")``) a layer's norm is that of all its
    selected parameters concatenated, :math:`\sqrt{\lVert g_{W_l}\rVert^2 + \lVert g_{b_l}\rVert^2}`.
    Returns float64 ``(L,)`` ordered by layer number (``W10`` after ``W9``).
    """
    layers = _layer_numbers(grads, keys, "gradient_norms")
    return _norms(grads, layers)


def grad_to_data_ratio(grads, params, keys=("W",)):
    r"""Per-layer :math:`\lVert \partial L/\partial W_l\rVert_F \,/\, \lVert W_l\rVert_F`.

    Scale-free, so layers of different widths compare; multiplied by the learning rate it is
    (for SGD) the update-to-data ratio. Returns float64 ``(L,)``; a zero weight norm gives
    ``inf`` (``nan`` if the gradient is also zero), without a RuntimeWarning.
    """
    fn = "grad_to_data_ratio"
    layers = _layer_numbers(grads, keys, fn)
    missing = [k for ks in layers.values() for k in ks if k not in params]
    if missing:
        raise ValueError(f"{fn}: params lacks {missing}")
    return _ratio(_norms(grads, layers), _norms(params, layers))


def update_to_data_ratio(old_params, new_params, keys=("W",)):
    r"""Per-layer :math:`\lVert W_l^{\text{new}} - W_l^{\text{old}}\rVert_F / \lVert W_l^{\text{old}}\rVert_F`.

    The CS231n rule of thumb: about :math:`10^{-3}` per step is healthy; much larger means the
    learning rate is too high, much smaller too low. Pass a **copy** of the parameters taken
    before the step (optimizers update in place). Returns float64 ``(L,)``.
    """
    fn = "update_to_data_ratio"
    layers = _layer_numbers(old_params, keys, fn)
    diffs = {}
    for ks in layers.values():
        for k in ks:
            if k not in new_params:
                raise ValueError(f"{fn}: new_params lacks {k!r}")
            old, new = np.asarray(old_params[k]), np.asarray(new_params[k])
            if old.shape != new.shape:
                raise ValueError(f"{fn}: {k} changed shape {old.shape} -> {new.shape}")
            if np.shares_memory(old, new) and old.size:
                raise ValueError(f"{fn}: old and new {k} are the same array; copy the "
                                 "parameters before the optimizer step")
            diffs[k] = new.astype(np.float64) - old
    return _ratio(_norms(diffs, layers), _norms(old_params, layers))


def per_layer_factor(v):
    r"""Geometric-mean change per layer of a per-layer quantity (a norm, a standard deviation):

    .. math:: r = \left(\frac{v_L}{v_1}\right)^{1/(L-1)},

    so that :math:`v_L = r^{L-1} v_1`; :math:`r < 1` shrinks layer by layer, :math:`r > 1` grows.
    Shapes: ``v`` (..., L) with layers on the last axis, L >= 2 -> (...). Only the first and last layer
    enter; for a gradient profile read backward, :math:`1/r` is the growth per layer toward the input.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0 or v.shape[-1] < 2:
        raise ValueError(f"per_layer_factor: need at least two layers on the last axis, got shape {v.shape}")
    return (v[..., -1] / v[..., 0]) ** (1.0 / (v.shape[-1] - 1))


# ----------------------------------------------------------------------------- model helpers
def _model_primes(model, activation, fn):
    """One derivative callable per hidden layer of ``model`` (honouring its kwargs/PReLU slopes)."""
    if not hasattr(model, "forward"):
        raise TypeError(f"{fn}: model must have a forward(X) method, got {type(model).__name__}")
    n_hidden = len(model.layer_sizes) - 2
    if activation is not None:
        return [_resolve_prime(activation, fn)] * n_hidden
    acts = getattr(model, "_acts", None) or getattr(model, "activations", None)
    if acts is None:
        raise ValueError(f"{fn}: cannot tell the model's activations; pass activation=")
    primes = []
    for l, act in enumerate(list(acts)[:n_hidden], start=1):
        kind, name = getattr(act, "kind", None), getattr(act, "name", act)
        if name == "prelu" or kind == "prelu":  # f'(z) = 1 for z > 0, a_l (per unit) otherwise
            slope = np.asarray(model.params[f"a{l}"], dtype=np.float64)
            primes.append(lambda u, s=slope: np.where(u > 0, 1.0, s))
        elif kind == "elementwise" and getattr(act, "prime", None) is not None:
            primes.append(lambda u, p=act.prime, kw=dict(act.kwargs): p(u, **kw))
        else:
            primes.append(_resolve_prime(name, fn))
    return primes


def model_layer_stats(model, X, activation=None, sat_tol=SAT_TOL):
    r""":func:`layer_stats` of the **hidden** layers of ``model`` on the batch ``X``.

    Runs ``model.forward(X)``; each hidden layer uses the model's own activation (with its
    keyword arguments, e.g. a leaky_relu slope, and for PReLU the learned slopes ``a_l``)
    unless ``activation`` overrides it. Returns a list of :class:`LayerStats` (layers 1..L-1).
    """
    fn = "model_layer_stats"
    primes = _model_primes(model, activation, fn)
    caches = list(model.forward(X)[1])[:-1]  # the last layer is the output, not hidden units
    return layer_stats(caches, primes, sat_tol) if caches else []


def dead_units(model, X, activation=None):
    r"""Boolean masks of the dead hidden units of ``model`` on the batch ``X``.

    Runs ``model.forward(X)`` and applies :func:`dead_mask` to every hidden layer's
    pre-activations: unit :math:`j` of layer :math:`l` is dead iff
    :math:`f'(z^{(l)}_{nj}) = 0` for **all** rows of ``X``. The derivative is the model's own
    per-layer activation (with its keyword arguments) unless ``activation`` overrides it; for
    PReLU the learned slopes ``a_l`` are used, so a PReLU unit is dead only if its slope is 0.

    Returns a list of bool arrays, one ``(units_l,)`` per hidden layer;
    ``[m.mean() for m in dead_units(model, X)]`` is the dead fraction per layer.
    """
    fn = "dead_units"
    primes = _model_primes(model, activation, fn)
    caches = list(model.forward(X)[1])[:-1]  # the last layer is the output, not hidden units
    return [dead_mask(_zs_as(c, i, fn)[0], p) for i, (c, p) in enumerate(zip(caches, primes))]
