"""Chapter 10: plain SGD with optional gradient clipping and weight decay, recording raw gradient norms and update sizes."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import optim as _O
from ..mlp import MLP

__all__ = ['ClipTrace', 'train_with_clipping']

from ._common import _resolve_init, _check_pos_int, _activation, _digits_split, _accuracy, _total_norm

class ClipTrace(NamedTuple):
    """One SGD run. Per step ``(steps,)``: ``loss`` (mini-batch), ``grad_norm`` (global gradient
    norm *before* clipping), ``first_grad_norm`` (:math:`\\lVert\\partial L/\\partial W_1\\rVert`
    before clipping), ``update_norm`` (:math:`\\lVert\\theta_{t+1}-\\theta_t\\rVert` over all
    parameters). Per epoch ``(epochs+1,)``: ``train_loss`` (full training set) and ``accuracy``
    (test). After divergence (non-finite loss) training stops; the rest is NaN."""

    loss: np.ndarray
    grad_norm: np.ndarray
    first_grad_norm: np.ndarray
    update_norm: np.ndarray
    train_loss: np.ndarray
    accuracy: np.ndarray
    diverged: bool


def train_with_clipping(activation="relu", init="he", hidden=(64,) * 10, lr=0.05, epochs=5,
                        batch_size=32, clip_norm=None, clip_value=None, weight_decay=0.0, seed=0):
    r"""Plain SGD on the digits with optional gradient clipping and (coupled) weight decay.

    Each step, as ``clip_grad_norm_`` then ``torch.optim.SGD(weight_decay=...)``:

    .. math:: g \leftarrow g\cdot\min\!\Big(1, \frac{c}{\lVert g\rVert + 10^{-6}}\Big)
       \ (\text{or } g \leftarrow \operatorname{clip}(g, -v, v)),\qquad
       \theta \leftarrow \theta - \eta\,(g + \lambda\theta).

    So with norm clipping :math:`\lVert\Delta\theta\rVert \le \eta(c + \lambda\lVert\theta\rVert)`:
    clipping bounds the *step*, whatever the gradient. It only ever shrinks a gradient, so it
    cannot help a net whose early layers get almost none (vanishing gradients).
    ``init``: a name, callable or float weight std (e.g. ``1.5 * sqrt(2/64)`` for "He x 1.5").
    """
    fn = "train_with_clipping"
    if clip_norm is not None and clip_value is not None:
        raise ValueError(f"{fn}: pass clip_norm or clip_value, not both")
    hidden = tuple(_check_pos_int(h, "hidden layer size", fn) for h in hidden)
    epochs, batch_size = _check_pos_int(epochs, "epochs", fn), _check_pos_int(batch_size, "batch_size", fn)
    _activation(activation, fn)
    rng = np.random.default_rng(seed)
    data = _digits_split(seed)
    model = MLP([64, *hidden, 10], activation=activation, init=_resolve_init(init, fn), seed=rng)
    n = len(data.y_train)
    steps = epochs * (-(-n // batch_size))
    loss, gnorm, g1, unorm = (np.full(steps, np.nan) for _ in range(4))
    train_loss, acc = np.full(epochs + 1, np.nan), np.full(epochs + 1, np.nan)
    diverged, t = False, 0
    with np.errstate(all="ignore"):
        train_loss[0] = model.loss(data.X_train, data.y_train)[0]
        acc[0] = _accuracy(model, data.X_test, data.y_test)
        for e in range(1, epochs + 1):
            order = rng.permutation(n)
            for i in range(0, n, batch_size):
                j = order[i:i + batch_size]
                loss[t], g = model.loss(data.X_train[j], data.y_train[j])
                g1[t] = np.linalg.norm(g["W1"])
                if clip_norm is not None:
                    gnorm[t] = _O.clip_grad_norm(g, clip_norm)
                else:
                    gnorm[t] = _total_norm(g)
                    if clip_value is not None:
                        _O.clip_grad_value(g, clip_value)
                sq = 0.0
                for k, p in model.params.items():
                    step = lr * (g[k] + weight_decay * p) if weight_decay else lr * g[k]
                    p -= step
                    sq += float(np.sum(step * step))
                unorm[t] = math.sqrt(sq)
                if not (np.isfinite(loss[t]) and np.isfinite(sq)):
                    diverged = True
                    break
                t += 1
            if diverged:
                break
            train_loss[e] = model.loss(data.X_train, data.y_train)[0]
            acc[e] = _accuracy(model, data.X_test, data.y_test)
            if not np.isfinite(train_loss[e]):
                diverged = True
                break
    return ClipTrace(loss, gnorm, g1, unorm, train_loss, acc, diverged)
