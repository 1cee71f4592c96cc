r"""Chapter "Outlook: adaptive activation functions": adaptive activations (PReLU's slopes, Swish's :math:`\beta`) recorded while training."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import adaptive as _AD
from .. import datasets as _D
from .. import losses as _L
from .. import optim as _O
from ..mlp import MLP

__all__ = ["AdaptiveRuns", "train_recording_slopes", "SwishRuns", "train_swish_beta"]

from ._common import _check_pos_int, diverged


class AdaptiveRuns(NamedTuple):
    r"""What :func:`train_recording_slopes` returns (``S`` seeds, ``E`` epochs, ``L`` hidden layers of ``H``).

    ``init_loss`` ``(S,)``: training-set cross-entropy before the first step (about :math:`\ln 10`).
    ``loss`` ``(S, E)``: mean mini-batch loss of each epoch. ``accuracy`` ``(S, E+1)``: test
    accuracy (column 0 at initialisation). ``slopes`` ``(S, E+1, L, H)``: PReLU's slopes after each
    epoch (None for other activations). ``models``: the trained nets. ``diverged`` ``(S,)``:
    :func:`actgrad.experiments.diverged` on the initial and per-epoch losses.
    """

    activation: str
    seeds: np.ndarray
    init_loss: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    slopes: np.ndarray | None
    models: list
    diverged: np.ndarray


def train_recording_slopes(activation="prelu", seeds=(0, 1, 2, 3, 4), hidden=(64, 64, 64), epochs=8, lr=0.1,
                           momentum=0.9, batch_size=128, data_seed=0):
    r"""Train ``64 -> hidden -> 10`` on the digits with SGD + momentum, one run per seed, epoch by epoch.

    Run ``s``: ``MLP(..., activation, init="he", seed=s)``, :func:`actgrad.optim.train` with
    ``SGD(lr, momentum)`` and mini-batches shuffled by ``default_rng(s)``; the split is fixed by
    ``data_seed``. For ``activation="prelu"`` the slopes :math:`a_j` (one per unit, initialised at
    0.25, learned through :math:`\partial\,\mathrm{PReLU}/\partial a = \min(z, 0)`) are recorded
    after every epoch. Returns :class:`AdaptiveRuns`. Cost: about 0.2 s per run at the defaults.
    """
    fn = "train_recording_slopes"
    epochs = _check_pos_int(epochs, "epochs", fn)
    seeds = np.array([int(s) for s in seeds])
    if seeds.size < 1:
        raise ValueError(f"{fn}: give at least one seed, got {seeds!r}")
    hidden = tuple(_check_pos_int(h, "hidden layer size", fn) for h in hidden)
    if activation == "prelu" and len(set(hidden)) != 1:
        raise ValueError(f"{fn}: recording PReLU slopes needs equal hidden widths, got {hidden!r}")
    d = _D.digits(split=True, test_size=0.25, seed=data_seed)
    S, L = len(seeds), len(hidden)
    init_loss, loss = np.full(S, np.nan), np.full((S, epochs), np.nan)
    acc = np.full((S, epochs + 1), np.nan)
    slopes = np.full((S, epochs + 1, L, hidden[0]), np.nan) if activation == "prelu" else None
    models = []
    with np.errstate(all="ignore"):
        for i, s in enumerate(seeds):
            model = MLP([64, *hidden, 10], activation=activation, init="he", seed=int(s))
            opt, rng = _O.SGD(lr, momentum=momentum), np.random.default_rng(int(s))
            init_loss[i] = _L.softmax_cross_entropy(model(d.X_train), d.y_train)[0]
            for e in range(epochs + 1):
                if e:
                    h = _O.train(model, d.X_train, d.y_train, opt, epochs=1, batch_size=batch_size, seed=rng,
                                 progress=False)
                    loss[i, e - 1] = h.loss[-1]
                acc[i, e] = np.mean(model.predict(d.X_test) == d.y_test)
                if slopes is not None:
                    slopes[i, e] = [model.params[f"a{l}"] for l in range(1, L + 1)]
            models.append(model)
    div = np.array([diverged(np.r_[init_loss[i], loss[i]]) for i in range(S)])
    return AdaptiveRuns(activation, seeds, init_loss, loss, acc, slopes, models, div)


class SwishRuns(NamedTuple):
    r"""What :func:`train_swish_beta` returns (``S`` seeds, ``E`` epochs).

    ``init_loss`` ``(S,)`` (about :math:`\ln 3` on three classes), ``loss`` ``(S, E)`` mean
    mini-batch loss per epoch, ``beta`` ``(S, E+1, 2)`` the two layers' :math:`\beta` (column 0:
    ``beta_init``), ``accuracy`` ``(S,)`` final training accuracy, ``models`` the trained nets,
    ``diverged`` ``(S,)``.
    """

    seeds: np.ndarray
    init_loss: np.ndarray
    loss: np.ndarray
    beta: np.ndarray
    accuracy: np.ndarray
    models: list
    diverged: np.ndarray


def train_swish_beta(seeds=(0, 1, 2, 3, 4), epochs=40, lr=0.01, batch_size=30, beta_init=1.0, data_seed=0):
    r"""Fit :class:`actgrad.adaptive.SwishBetaMLP` ``[2, 32, 32, 3]`` (one learnable :math:`\beta` per
    hidden layer, :math:`f(x;\beta) = x\,\sigma(\beta x)`) to the spirals with Adam, recording :math:`\beta`.

    Seed ``s`` fixes the initial weights and the batch order; the 300 points are fixed by
    ``data_seed``. :math:`\partial f/\partial\beta = x^2\sigma(\beta x)(1-\sigma(\beta x))`.
    Returns :class:`SwishRuns`. Cost: about 0.3 s per seed at the defaults.
    """
    fn = "train_swish_beta"
    epochs = _check_pos_int(epochs, "epochs", fn)
    seeds = np.array([int(s) for s in seeds])
    if seeds.size < 1:
        raise ValueError(f"{fn}: give at least one seed, got {seeds!r}")
    X, y = _D.spirals(n_per_class=100, seed=data_seed)
    S = len(seeds)
    init_loss, loss = np.full(S, np.nan), np.full((S, epochs), np.nan)
    beta, acc, models = np.full((S, epochs + 1, 2), np.nan), np.full(S, np.nan), []
    with np.errstate(all="ignore"):
        for i, s in enumerate(seeds):
            model = _AD.SwishBetaMLP([2, 32, 32, 3], beta_init=beta_init, seed=int(s))
            opt, rng = _O.Adam(lr), np.random.default_rng(int(s))
            init_loss[i] = _L.softmax_cross_entropy(model(X), y)[0]
            beta[i, 0] = [model.params["beta1"][0], model.params["beta2"][0]]
            for e in range(1, epochs + 1):
                h = _O.train(model, X, y, opt, epochs=1, batch_size=batch_size, seed=rng, progress=False)
                loss[i, e - 1] = h.loss[-1]
                beta[i, e] = [model.params["beta1"][0], model.params["beta2"][0]]
            acc[i] = np.mean(model.predict(X) == y)
            models.append(model)
    div = np.array([diverged(np.r_[init_loss[i], loss[i]], n_classes=3) for i in range(S)])
    return SwishRuns(seeds, init_loss, loss, beta, acc, models, div)

