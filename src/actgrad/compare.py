r"""Comparing activations on equal terms: the same MLP, data, optimiser and seeds, one activation at a time.

Used by the book's chapter 12 (*Choosing an activation*) and the FAQ. One call of
:func:`activation_sweep` trains ``64 -> hidden -> 10`` on the bundled 8x8 digits
(:func:`actgrad.datasets.digits`, one fixed stratified split) with SGD + momentum for every
activation and every seed, and keeps each run's :class:`actgrad.optim.History`.

Fair-comparison rules, as in the literature (e.g. Ramachandran et al., 2017): identical
architecture, data split, optimiser, learning rate, epochs and mini-batch order per seed; only
the activation and its matching initialisation (:data:`DEFAULT_INIT`) change. A single learning
rate for all activations is itself a choice: the best rate differs per activation, so small
differences in the results are not a ranking.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from . import activations as _A
from . import datasets as _D
from . import optim as _O
from .mlp import MLP

__all__ = ["DEFAULT_INIT", "default_init", "SweepResult", "activation_sweep"]

#: The initialisation each activation is usually paired with: Glorot/Xavier for the symmetric
#: squashing functions (Glorot & Bengio, 2010), LeCun normal for SELU (Klambauer et al., 2017),
#: He/Kaiming for the ReLU family and its smooth relatives (He et al., 2015). Others: ``"he"``.
DEFAULT_INIT = {"sigmoid": "xavier", "tanh": "xavier", "selu": "lecun", "prelu": "he"}


def default_init(activation: str) -> str:
    """The init name :func:`activation_sweep` uses for ``activation`` (``"he"`` unless listed in
    :data:`DEFAULT_INIT`)."""
    return DEFAULT_INIT.get(activation, "he")


class SweepResult(NamedTuple):
    r"""What :func:`activation_sweep` returns.

    ``activations`` and ``seeds``: the grid. ``histories``: name -> list of
    :class:`actgrad.optim.History`, one per seed (per epoch: ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy`` on the test split; per step: ``grad_norms`` ``(steps, L)``).
    ``seconds``: name -> total wall-clock seconds of its runs (training only).
    """

    activations: tuple
    seeds: tuple
    histories: dict
    seconds: dict

    def curves(self, field: str = "loss") -> dict:
        """name -> array ``(seeds, epochs)`` of a per-epoch History field (``"loss"``,
        ``"accuracy"``, ``"val_loss"``, ``"val_accuracy"``), ready for
        :func:`actgrad.plotting.plot_training_curves`."""
        if field not in ("loss", "accuracy", "val_loss", "val_accuracy"):
            raise ValueError(f"SweepResult.curves: unknown field {field!r}")
        return {a: np.array([getattr(h, field) for h in hs], dtype=np.float64)
                for a, hs in self.histories.items()}

    def final(self, field: str = "val_accuracy") -> dict:
        """name -> array ``(seeds,)``: the last epoch's value of ``field``."""
        return {a: c[:, -1] for a, c in self.curves(field).items()}

    def grad_ratio(self) -> dict:
        r"""name -> array ``(seeds,)``: :math:`\overline{\lVert\partial L/\partial W_1\rVert} /
        \overline{\lVert\partial L/\partial W_L\rVert}`, the first layer's mean gradient norm over
        all steps divided by the last layer's. Far below 1 means the first layer barely learns."""
        return {a: np.array([h.grad_norms[:, 0].mean() / h.grad_norms[:, -1].mean() for h in hs])
                for a, hs in self.histories.items()}


def activation_sweep(activations=None, seeds=(0, 1, 2), hidden=(64, 64, 64), epochs=8, lr=0.05,
                     momentum=0.9, batch_size=64, init="auto", data_seed=0, dtype=np.float64):
    r"""Train the same MLP on the digits with each activation and seed; return a :class:`SweepResult`.

    Run ``(a, s)``: ``MLP([64, *hidden, 10], activation=a, init=default_init(a), seed=s)``
    trained by :func:`actgrad.optim.train` with ``SGD(lr, momentum)`` on softmax cross-entropy,
    mini-batches shuffled with ``seed=s``, evaluated on the test split after every epoch.
    ``activations``: names in :data:`actgrad.activations.ACTIVATIONS` or ``"prelu"`` (default: all
    of ACTIVATIONS). ``init``: ``"auto"`` (:func:`default_init`) or one init name for all.
    Cost: ``len(activations) * len(seeds) * epochs * ceil(1347 / batch_size)`` SGD steps; about
    0.1 s per run at the defaults with one BLAS thread. Pitfall: NaN/inf in a run (divergence) is
    recorded, not raised, so check the curves.
    """
    fn = "activation_sweep"
    names = tuple(_A.ACTIVATIONS) if activations is None else tuple(activations)
    for a in names:
        if a != "prelu" and a not in _A.ACTIVATIONS:
            raise ValueError(f"{fn}: unknown activation {a!r}; known: {sorted(_A.ACTIVATIONS) + ['prelu']}")
    seeds = tuple(int(s) for s in seeds)
    if not names or not seeds:
        raise ValueError(f"{fn}: need at least one activation and one seed, got {names!r}, {seeds!r}")
    hidden = tuple(int(h) for h in hidden)
    data = _D.digits(split=True, test_size=0.25, seed=data_seed)
    histories, seconds = {}, {}
    for a in names:
        histories[a], t0 = [], time.perf_counter()
        for s in seeds:
            model = MLP([64, *hidden, 10], activation=a, init=default_init(a) if init == "auto" else init,
                        seed=s, dtype=dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                h = _O.train(model, data.X_train, data.y_train, _O.SGD(lr, momentum=momentum),
                             epochs=epochs, batch_size=batch_size, seed=s, progress=False,
                             X_val=data.X_test, y_val=data.y_test)
            histories[a].append(h)
        seconds[a] = time.perf_counter() - t0
    return SweepResult(names, seeds, histories, seconds)
