"""Chapter 9: dead ReLU units per layer, epoch by epoch, while training on the digits."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import diagnostics as _G
from .. import losses as _L
from ..mlp import MLP

__all__ = ['DeadTrace', 'dead_fraction_during_training']

from ._common import _resolve_init, _check_pos_int, _activation, _digits_split, _accuracy

class DeadTrace(NamedTuple):
    """Per hidden layer, before training (row 0) and after each epoch ``(epochs+1, n_hidden)``:

    ``dead``: fraction of units with :math:`\\phi'(z) = 0` on every training example
    (:func:`actgrad.diagnostics.dead_units`: they get no gradient at all);
    ``inactive``: fraction with :math:`z \\le 0` on every example (dead for ReLU; for Leaky ReLU,
    PReLU and ELU such units still receive a small gradient). ``loss`` (epochs+1,) training
    cross-entropy, ``accuracy`` (epochs+1,) test accuracy. ``diverged``: True if the loss became
    non-finite (training then stops and the remaining rows are NaN)."""

    activation: str
    dead: np.ndarray
    inactive: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    diverged: bool


def dead_fraction_during_training(activation="relu", lr=0.1, bias_init=0.0, hidden=(100, 100, 100),
                                  epochs=5, batch_size=32, init="he", seed=0, **activation_kwargs):
    r"""Train ``64 -> hidden -> 10`` on the digits with plain SGD and track dead units per epoch.

    Every hidden bias starts at ``bias_init`` (the output bias at 0). A ReLU unit with
    :math:`z_j = x W_{:j} + b_j \le 0` for every input gets :math:`\partial L/\partial W_{:j} = 0`
    and :math:`\partial L/\partial b_j = 0`: nothing can bring it back. A negative ``bias_init``
    starts units dead; a large ``lr`` pushes them there with one big step (Lu et al., 2020).
    ``activation``: a name of :data:`actgrad.activations.ACTIVATIONS` or ``"prelu"``.
    Cost: ``epochs * 1347 / batch_size`` SGD steps, about 0.1 s per epoch at the defaults.
    """
    fn = "dead_fraction_during_training"
    hidden = tuple(_check_pos_int(h, "hidden layer size", fn) for h in hidden)
    epochs, batch_size = _check_pos_int(epochs, "epochs", fn), _check_pos_int(batch_size, "batch_size", fn)
    if activation != "prelu":
        _activation(activation, fn)
    rng = np.random.default_rng(seed)
    data = _digits_split(seed)
    model = MLP([64, *hidden, 10], activation=activation, init=_resolve_init(init, fn), seed=rng,
                **activation_kwargs)
    for l in range(1, len(hidden) + 1):
        model.params[f"b{l}"][...] = bias_init
    nh, n = len(hidden), len(data.y_train)
    dead, inactive = np.full((epochs + 1, nh), np.nan), np.full((epochs + 1, nh), np.nan)
    loss, acc = np.full(epochs + 1, np.nan), np.full(epochs + 1, np.nan)
    diverged = False
    with np.errstate(all="ignore"):
        for e in range(epochs + 1):
            if e:
                order = rng.permutation(n)
                for i in range(0, n, batch_size):
                    j = order[i:i + batch_size]
                    _, g = model.loss(data.X_train[j], data.y_train[j])
                    for k, p in model.params.items():
                        p -= lr * g[k]
            out, caches = model.forward(data.X_train)
            loss[e] = _L.softmax_cross_entropy(out, data.y_train)[0]
            if not np.isfinite(loss[e]):
                diverged = True
                break
            inactive[e] = [np.mean(np.all(c.z <= 0, axis=0)) for c in caches[:-1]]
            dead[e] = [m.mean() for m in _G.dead_units(model, data.X_train)]
            acc[e] = _accuracy(model, data.X_test, data.y_test)
    return DeadTrace(activation, dead, inactive, loss, acc, diverged)


