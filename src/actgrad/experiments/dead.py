r"""Chapter "Dead neurons": dead ReLU units per layer, epoch by epoch, while training on the digits.

Several seeds train *at once*: the seeds' networks are stacked along a leading axis and every
matrix product is a batched ``np.matmul``, so five seeds cost little more than one.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import activations as _A
from ..mlp import MLP

__all__ = ["DeadRuns", "dead_fraction_over_seeds", "DeadTrace", "dead_fraction_during_training"]

from ._common import DIVERGENCE_FACTOR, _activation, _check_pos_int, _digits_split, _resolve_init, diverged


class DeadRuns(NamedTuple):
    r"""What :func:`dead_fraction_over_seeds` returns; ``S`` seeds, ``E`` epochs, ``L`` hidden layers.

    ``dead`` ``(S, E+1, L)``: fraction of units with :math:`\phi'(z) = 0` on every training example
    (row 0: before the first step). ``inactive`` ``(S, E+1, L)``: fraction with :math:`z \le 0` on
    every example (the same as dead for ReLU; Leaky ReLU, PReLU and ELU units there still get a
    gradient). ``dead_mask``: per hidden layer a bool array ``(S, E+1, H_l)``, which units are dead.
    ``loss`` ``(S, E+1)``: cross-entropy on the whole training set; ``step_loss`` ``(S, steps)``:
    the mini-batch loss of every SGD step; ``accuracy`` ``(S, E+1)``: test accuracy.
    ``diverged`` ``(S,)``: :func:`actgrad.experiments.diverged` applied to ``step_loss``; a run is
    frozen at its first step over the rule and every later entry is NaN.
    ``slopes`` ``(S, steps+1, sum H_l)``: PReLU's slopes after every step (None otherwise).
    """

    activation: str
    seeds: np.ndarray
    dead: np.ndarray
    inactive: np.ndarray
    dead_mask: tuple
    loss: np.ndarray
    step_loss: np.ndarray
    accuracy: np.ndarray
    diverged: np.ndarray
    slopes: np.ndarray | None


def _phi(act, kw):
    """``(f, f')`` of a hidden layer, both ``(z, slope) -> array`` (slope only used by PReLU)."""
    if act == "prelu":
        return (lambda z, a: _A.prelu(z, a)), (lambda z, a: _A.prelu_prime(z, a))
    spec = _activation(act, "dead_fraction_over_seeds")
    return (lambda z, a: spec.fn(z, **kw)), (lambda z, a: spec.prime(z, **kw))


def _forward(P, X, f, L):
    """Stacked forward pass: ``X (S, N, 64)`` -> logits ``(S, N, 10)``, and per hidden layer
    the pre-activations ``zs`` and the layer inputs ``xs`` (``xs[0] = X``)."""
    zs, xs = [], [X]
    for l in range(1, L + 1):
        z = xs[-1] @ P[f"W{l}"] + P[f"b{l}"]
        if l == L:
            return z, zs, xs
        zs.append(z)
        xs.append(f(z, P.get(f"a{l}")))


def _xent(out, y):
    r"""Softmax cross-entropy per net and its gradient: ``(S,)`` and :math:`(p - \mathrm{onehot}(y))/N`."""
    shifted = out - out.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    onehot = np.zeros_like(out)
    np.put_along_axis(onehot, y[..., None], 1.0, axis=-1)
    return -(logp * onehot).sum(-1).mean(-1), (np.exp(logp) - onehot) / out.shape[1]


def _population_grads(P, X, y, act, L, **kw):
    r"""Loss ``(S,)`` and gradients (same keys and shapes as ``P``) of ``S`` stacked nets.

    With :math:`\delta_l = \partial L/\partial z_l` ``(S, N, n_l)``, starting from
    :math:`\delta_L = (p - \mathrm{onehot}(y))/N`: :math:`\partial L/\partial W_l = x_l^\top \delta_l`,
    :math:`\partial L/\partial b_l = \sum_n \delta_l` and
    :math:`\delta_{l-1} = (\delta_l W_l^\top) \odot \phi'(z_{l-1})` (PReLU: also
    :math:`\partial L/\partial a = \sum_n (\delta_l W_l^\top) \odot \min(z_{l-1}, 0)`).
    """
    f, fprime = _phi(act, kw)
    out, zs, xs = _forward(P, X, f, L)
    loss, d = _xent(out, y)
    g = {}
    for l in range(L, 0, -1):                        # d = dL/dz_l, (S, N, n_l)
        g[f"W{l}"] = xs[l - 1].transpose(0, 2, 1) @ d
        g[f"b{l}"] = d.sum(axis=1, keepdims=True)
        if l > 1:
            da = d @ P[f"W{l}"].transpose(0, 2, 1)
            if act == "prelu":
                d, g[f"a{l - 1}"] = _A.prelu_backward(da, zs[l - 2], P[f"a{l - 1}"])
            else:
                d = da * fprime(zs[l - 2], None)
    return loss, g


def dead_fraction_over_seeds(activation="relu", lr=0.1, bias_init=0.0, seeds=(0, 1, 2, 3, 4),
                             hidden=(100, 100, 100), epochs=5, batch_size=32, init="he", center=False,
                             **activation_kwargs):
    r"""Train ``64 -> hidden -> 10`` on the digits with plain SGD, one net per seed, and track dead units.

    Seed ``s`` fixes the train/test split, the initial weights (:class:`actgrad.mlp.MLP` with
    ``init``) and the mini-batch order. Every hidden bias starts at ``bias_init``. A ReLU unit with
    :math:`z_{nj} = x_n W_{:j} + b_j \le 0` for every training example gets
    :math:`\partial L/\partial W_{:j} = 0` and :math:`\partial L/\partial b_j = 0`. In layer 1 the
    inputs :math:`x_n` never change, so under plain SGD such a unit stays dead; in deeper layers
    the inputs are the layers below, which keep learning, so a dead unit can come back.
    ``center``: subtract the training set's mean pixel from train and test inputs (the pixels
    are in [0, 1], so the raw inputs are not centred). ``activation``: a name of
    :data:`actgrad.activations.ACTIVATIONS` or ``"prelu"`` (slopes start at 0.25).
    Returns :class:`DeadRuns`. Cost: ``epochs * ceil(1347 / batch_size)`` batched steps, about
    0.2 s per epoch for five seeds at the defaults.
    """
    fn = "dead_fraction_over_seeds"
    hidden = tuple(_check_pos_int(h, "hidden layer size", fn) for h in hidden)
    epochs, batch_size = _check_pos_int(epochs, "epochs", fn), _check_pos_int(batch_size, "batch_size", fn)
    seeds = np.array([int(s) for s in seeds])
    if seeds.size < 1:
        raise ValueError(f"{fn}: give at least one seed, got {seeds!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"{fn}: lr must be a number > 0, got {lr!r}")
    f, fprime = _phi(activation, activation_kwargs)
    S, L = len(seeds), len(hidden) + 1
    rngs = [np.random.default_rng(s) for s in seeds]
    nets = [MLP([64, *hidden, 10], activation=activation, init=_resolve_init(init, fn), seed=r,
                **activation_kwargs) for r in rngs]
    P = {k: np.stack([m.params[k][None] for m in nets]) for k in nets[0].params}  # (S, 1, ...) biases
    P.update({k: v[:, 0] for k, v in P.items() if k[0] == "W"})                       # (S, in, out)
    for l in range(1, L):
        P[f"b{l}"][...] = bias_init
    splits = [_digits_split(s) for s in seeds]
    Xtr, ytr = np.stack([d.X_train for d in splits]), np.stack([d.y_train for d in splits])
    Xte, yte = np.stack([d.X_test for d in splits]), np.stack([d.y_test for d in splits])
    if center:
        mu = Xtr.mean(axis=1, keepdims=True)
        Xtr, Xte = Xtr - mu, Xte - mu
    n, per_epoch = Xtr.shape[1], math.ceil(Xtr.shape[1] / batch_size)
    step_loss = np.full((S, epochs * per_epoch), np.nan)
    slopes = np.full((S, epochs * per_epoch + 1, sum(hidden)), np.nan) if activation == "prelu" else None
    dead, inactive = np.full((S, epochs + 1, L - 1), np.nan), np.full((S, epochs + 1, L - 1), np.nan)
    masks = [np.zeros((S, epochs + 1, h), dtype=bool) for h in hidden]
    loss, acc = np.full((S, epochs + 1), np.nan), np.full((S, epochs + 1), np.nan)
    alive, rows = np.ones(S, dtype=bool), np.arange(S)[:, None]
    limit = DIVERGENCE_FACTOR * math.log(10)
    with np.errstate(all="ignore"):
        for e in range(epochs + 1):
            if e:
                order = np.stack([r.permutation(n) for r in rngs])
                for i in range(per_epoch):
                    j = order[:, i * batch_size:(i + 1) * batch_size]
                    step = (e - 1) * per_epoch + i
                    if slopes is not None:
                        slopes[alive, step] = np.concatenate([P[f"a{l}"][:, 0] for l in range(1, L)], 1)[alive]
                    bl, g = _population_grads(P, Xtr[rows, j], ytr[rows, j], activation, L, **activation_kwargs)
                    step_loss[alive, step] = bl[alive]
                    alive &= np.isfinite(bl) & (bl <= limit)
                    for k, p in P.items():
                        p -= lr * np.where(alive.reshape((S,) + (1,) * (p.ndim - 1)), g[k], 0.0)
                if slopes is not None:
                    slopes[alive, -1] = np.concatenate([P[f"a{l}"][:, 0] for l in range(1, L)], 1)[alive]
            out, zs, _ = _forward(P, Xtr, f, L)
            loss[alive, e] = _xent(out, ytr)[0][alive]
            for l, z in enumerate(zs, start=1):
                m = np.all(fprime(z, P.get(f"a{l}")) == 0, axis=1)
                masks[l - 1][:, e] = m & alive[:, None]
                dead[alive, e, l - 1] = m.mean(axis=1)[alive]
                inactive[alive, e, l - 1] = np.all(z <= 0, axis=1).mean(axis=1)[alive]
            acc[alive, e] = (_forward(P, Xte, f, L)[0].argmax(-1) == yte).mean(-1)[alive]
    div = np.array([diverged(step_loss[s]) or not alive[s] for s in range(S)])
    return DeadRuns(activation, seeds, dead, inactive, tuple(masks), loss, step_loss, acc, div, slopes)


class DeadTrace(NamedTuple):
    """One seed of :class:`DeadRuns`: ``dead``, ``inactive`` ``(epochs+1, L)``, ``loss``,
    ``accuracy`` ``(epochs+1,)`` and ``diverged`` (a bool); NaN rows after a divergence."""

    activation: str
    dead: np.ndarray
    inactive: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    diverged: bool


def dead_fraction_during_training(activation="relu", lr=0.1, bias_init=0.0, hidden=(100, 100, 100),
                                  epochs=5, batch_size=32, init="he", seed=0, **activation_kwargs):
    """One seed of :func:`dead_fraction_over_seeds` (same arguments, ``seed`` instead of ``seeds``)."""
    r = dead_fraction_over_seeds(activation, lr, bias_init, (seed,), hidden, epochs, batch_size, init,
                                 **activation_kwargs)
    return DeadTrace(activation, r.dead[0], r.inactive[0], r.loss[0], r.accuracy[0], bool(r.diverged[0]))
