"""Chapter "Exploding gradients and clipping": plain SGD with optional gradient clipping and weight decay.

Records raw gradient norms and update sizes.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import optim as _O
from ..mlp import MLP

__all__ = ['ClipTrace', 'train_with_clipping', 'threshold_from_healthy', 'BIG_STD', 'ClipStudy', 'clipping_study']

from ._common import _resolve_init, _check_pos_int, _activation, _digits_split, _accuracy, _total_norm
from ._common import diverged as _diverged_rule

class ClipTrace(NamedTuple):
    r"""One SGD run. Per step ``(steps,)``: ``loss`` (mini-batch), ``grad_norm`` (global gradient
    norm *before* clipping), ``first_grad_norm`` (:math:`\lVert\partial L/\partial W_1\rVert`
    before clipping), ``update_norm`` (:math:`\lVert\theta_{t+1}-\theta_t\rVert` over all
    parameters), ``clipped`` (1.0 if clipping changed the gradient on that step, else 0.0).
    Per epoch ``(epochs+1,)``, entry 0 at initialisation: ``train_loss`` (full training set) and
    ``accuracy`` (test). A non-finite loss or update stops training; the rest is NaN.
    ``diverged``: the book's rule (:func:`actgrad.experiments.diverged`: non-finite or above
    :math:`10\ln 10`) applied to ``train_loss`` at the end of every epoch; the loss at
    initialisation, ``train_loss[0]``, is a diagnostic of the init (about :math:`\ln 10`) and
    not judged by the rule."""

    loss: np.ndarray
    grad_norm: np.ndarray
    first_grad_norm: np.ndarray
    update_norm: np.ndarray
    clipped: np.ndarray
    train_loss: np.ndarray
    accuracy: np.ndarray
    diverged: bool

    def clip_fraction(self) -> float:
        """Fraction of the steps taken on which clipping was active (0.0 without clipping)."""
        return float(np.nanmean(self.clipped))

    def best_accuracy(self) -> float:
        """Best test accuracy over the epochs (NaN epochs after a divergence ignored)."""
        return float(np.nanmax(self.accuracy))


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
    loss, gnorm, g1, unorm, clipped = (np.full(steps, np.nan) for _ in range(5))
    train_loss, acc = np.full(epochs + 1, np.nan), np.full(epochs + 1, np.nan)
    stopped, t = False, 0
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
                    clipped[t] = float(gnorm[t] + 1e-6 > clip_norm)  # clip_grad_norm's coefficient < 1
                else:
                    gnorm[t] = _total_norm(g)
                    clipped[t] = 0.0
                    if clip_value is not None:
                        clipped[t] = float(any(np.any(np.abs(v) > clip_value) for v in g.values()))
                        _O.clip_grad_value(g, clip_value)
                sq = 0.0
                for k, p in model.params.items():
                    step = lr * (g[k] + weight_decay * p) if weight_decay else lr * g[k]
                    p -= step
                    sq += float(np.sum(step * step))
                unorm[t] = math.sqrt(sq)
                if not (np.isfinite(loss[t]) and np.isfinite(sq)):
                    stopped = True
                    break
                t += 1
            if stopped:
                break
            train_loss[e] = model.loss(data.X_train, data.y_train)[0]
            acc[e] = _accuracy(model, data.X_test, data.y_test)
            if not np.isfinite(train_loss[e]):
                break
    return ClipTrace(loss, gnorm, g1, unorm, clipped, train_loss, acc, _diverged_rule(train_loss[1:]))


def threshold_from_healthy(traces, q=95.0):
    r"""A clipping threshold from healthy runs: the ``q``-th percentile of their raw gradient norms.

    ``traces``: :class:`ClipTrace` s of runs *without* clipping that did not diverge (pooled over
    seeds). With :math:`c` at the 95th percentile, clipping the same net is active on about 5% of
    its steps: it trims the rare spikes and leaves ordinary steps alone. Pitfall: a threshold far
    below the typical norm (e.g. 1.0 when the median norm is 40) clips every step, which turns SGD
    into normalised-gradient descent with step :math:`\eta c`.
    """
    fn = "threshold_from_healthy"
    traces = list(traces)
    if not traces or not all(isinstance(t, ClipTrace) for t in traces):
        raise TypeError(f"{fn}: give a non-empty list of ClipTrace, got {traces!r:.80}")
    if any(t.diverged or np.nanmax(t.clipped) > 0 for t in traces):
        raise ValueError(f"{fn}: the runs must be healthy: not diverged and trained without clipping")
    if not 0 < q < 100:
        raise ValueError(f"{fn}: q must be a percentile in (0, 100), got {q!r}")
    norms = np.concatenate([t.grad_norm[np.isfinite(t.grad_norm)] for t in traces])
    return float(np.percentile(norms, q))


# ----------------------------------------------------------------------------- the chapter's grid
#: He x 1.5 weight std for width 64: every ReLU layer scales activations and gradients by ~1.5.
BIG_STD = 1.5 * math.sqrt(2 / 64)


class ClipStudy(NamedTuple):
    """What :func:`clipping_study` returns: ``threshold`` (the healthy runs' 95th percentile of
    the raw gradient norm), ``seeds``, and ``runs``: label -> list of :class:`ClipTrace`, one
    per seed. :meth:`summary` reduces each label over seeds."""

    threshold: float
    seeds: tuple
    runs: dict

    def summary(self, label) -> dict:
        """Per-seed arrays ``(seeds,)`` for one label: ``diverged``, ``init_loss``
        (``train_loss[0]``), ``clip_fraction``, ``final_acc`` (last epoch; NaN if diverged),
        ``best_acc`` (best epoch), ``median_grad_norm`` (raw, over the steps taken)."""
        rs = self.runs[label]
        return {"diverged": np.array([r.diverged for r in rs]),
                "init_loss": np.array([r.train_loss[0] for r in rs]),
                "clip_fraction": np.array([r.clip_fraction() for r in rs]),
                "final_acc": np.array([r.accuracy[-1] for r in rs]),
                "best_acc": np.array([r.best_accuracy() for r in rs]),
                "median_grad_norm": np.array([np.nanmedian(r.grad_norm) for r in rs])}


def clipping_study(seeds=(0, 1, 2, 3, 4), epochs=5, lr=0.05, q=95.0):
    r"""The chapter's experiment: one 11-layer, width-64 net on the digits, every treatment, every seed.

    First the **healthy** net (ReLU, He init, no clipping) is trained for every seed; the clipping
    threshold :math:`c` is the ``q``-th percentile of its raw gradient norms
    (:func:`threshold_from_healthy`). Then, with the same seeds (same data split, initial-weight
    draw and batch order): ``"He + clip c"`` (the control: same net, clipped), ``"He x1.5"``
    (weight std :data:`BIG_STD`), ``"He x1.5 + weight decay"`` (:math:`\lambda = 5\cdot10^{-4}`),
    ``"He x1.5 + clip 1"``, ``"He x1.5 + clip c"``, ``"He x1.5 + clip value 0.1"``, and an
    11-layer ``"sigmoid"`` net (Xavier init, lr 0.1; vanishing gradients) with and without
    ``clip c``. Cost: about 40 runs of :func:`train_with_clipping`, ~10 s on one core.
    """
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 1:
        raise ValueError("clipping_study: give at least one seed")
    run = lambda **kw: [train_with_clipping(lr=lr, epochs=epochs, seed=s, **kw) for s in seeds]  # noqa: E731
    runs = {"He": run(init="he")}
    c = threshold_from_healthy(runs["He"], q)
    sig = dict(activation="sigmoid", init="xavier", lr=2 * lr)
    runs.update({
        "He + clip c": run(init="he", clip_norm=c),
        "He x1.5": run(init=BIG_STD),
        "He x1.5 + weight decay": run(init=BIG_STD, weight_decay=5e-4),
        "He x1.5 + clip 1": run(init=BIG_STD, clip_norm=1.0),
        "He x1.5 + clip c": run(init=BIG_STD, clip_norm=c),
        "He x1.5 + clip value 0.1": run(init=BIG_STD, clip_value=0.1),
        "sigmoid": [train_with_clipping(epochs=epochs, seed=s, **sig) for s in seeds],
        "sigmoid + clip c": [train_with_clipping(epochs=epochs, seed=s, clip_norm=c, **sig) for s in seeds],
    })
    return ClipStudy(c, seeds, runs)
