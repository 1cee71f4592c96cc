r"""Chapter "Normalization and residual connections": deep nets on the digits with and without
batch normalization (Ioffe & Szegedy, 2015), layer normalization (Ba et al., 2016) and residual
connections (He et al., 2016), built from :mod:`actgrad.layers`.

Every network is ``Linear(64, width) -> depth blocks -> Linear(width, 10)``; the blocks differ:

============== =====================================================================
``plain``       ``Linear -> phi``
``batchnorm``   ``Linear -> BatchNorm1d -> phi``
``layernorm``   ``Linear -> LayerNorm -> phi``
``residual``    ``x + Linear(phi(x))`` (the same layers, with an identity path around them)
``residual_bn`` ``x + Linear(phi(BatchNorm1d(x)))`` (normalization inside the residual branch)
============== =====================================================================
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import layers as _L
from ..losses import softmax_cross_entropy
from ..optim import SGD
from ._common import _activation, _check_pos_int, _digits_split, diverged

__all__ = ["VARIANTS", "deep_net", "weight_key", "GradientProfile", "gradient_profile", "DeepTraining",
           "train_deep_net", "LrSweep", "lr_sweep"]

#: The block types compared in the chapter, in plotting order.
VARIANTS = ("plain", "batchnorm", "layernorm", "residual", "residual_bn")

_DEFAULT_INIT = {"relu": "he", "leaky_relu": "he"}  # everything else: Xavier (Glorot & Bengio, 2010)


def _block(variant, activation, width, init, rng, branch_scale):
    lin = _L.Linear(width, width, init=init, seed=rng)
    act = _L.Activation(activation)
    if variant == "plain":
        return _L.Sequential(lin, act)
    if variant == "batchnorm":
        return _L.Sequential(lin, _L.BatchNorm1d(width), act)
    if variant == "layernorm":
        return _L.Sequential(lin, _L.LayerNorm(width), act)
    lin.params["W"] *= branch_scale
    if variant == "residual":
        return _L.Residual(_L.Sequential(act, lin))
    return _L.Residual(_L.Sequential(_L.BatchNorm1d(width), act, lin))


def deep_net(variant="plain", activation="sigmoid", depth=30, width=32, n_in=64, n_out=10,
             init=None, seed=0, branch_scale=None):
    r"""``Sequential(Linear(n_in, width), block_1, ..., block_depth, Linear(width, n_out))``.

    Block :math:`l` maps :math:`h_{l-1} \mapsto h_l` (width to width) as in the module table;
    its weight :math:`W_l` is ``params[weight_key(variant, l)]``. ``init``: a name of
    :data:`actgrad.init.INITIALIZERS` (default ``"he"`` for ReLU, ``"xavier"`` otherwise); biases 0,
    gamma 1, beta 0. ``seed``: int or Generator; one generator draws every weight in order.
    ``branch_scale`` (residual variants only, default :math:`1/\sqrt{\text{depth}}`) multiplies the
    residual branches' initial weights: each branch adds a variance of about
    :math:`\text{branch\_scale}^2 \cdot c` to the stream, so ``depth`` of them add about :math:`c`
    instead of growing the stream's variance with depth (pitfall: with ``branch_scale=1`` and ReLU
    the stream's variance doubles per block).
    """
    fn = "deep_net"
    if variant not in VARIANTS:
        raise ValueError(f"{fn}: unknown variant {variant!r}; expected one of {VARIANTS}")
    depth, width = _check_pos_int(depth, "depth", fn), _check_pos_int(width, "width", fn)
    _activation(activation, fn)
    init = init or _DEFAULT_INIT.get(activation, "xavier")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    stem = _L.Linear(n_in, width, init=init, seed=rng)
    branch_scale = 1.0 / math.sqrt(depth) if branch_scale is None else float(branch_scale)
    blocks = [_block(variant, activation, width, init, rng, branch_scale) for _ in range(depth)]
    head = _L.Linear(width, n_out, init="xavier", seed=rng)
    return _L.Sequential(stem, *blocks, head)


def _forward_backward(net, X, y, measure=False):
    """Loss, the flat grads and, with ``measure``, ||dL/dh_{l-1}|| entering each block l and the
    spread of each block's output h_l across the batch (std over examples, mean over features)."""
    caches, spread, h = [], np.empty(len(net) - 2), X
    for i, layer in enumerate(net.layers):
        h, c = layer.forward(h, train=True)
        caches.append(c)
        if measure and 1 <= i <= len(net) - 2:
            spread[i - 1] = h.std(axis=0).mean()
    loss, dout = softmax_cross_entropy(h, y)
    signal, grads = np.empty(len(net) - 2), {}
    for i in range(len(net) - 1, -1, -1):
        dout, g = net[i].backward(dout, caches[i])
        grads.update({f"{i}.{k}": v for k, v in g.items()})
        if measure and 1 <= i <= len(net) - 2:
            signal[i - 1] = np.linalg.norm(dout)
    return loss, grads, signal, spread


_LINEAR_INDEX = {"residual": 1, "residual_bn": 2}  # position of the Linear inside the block (else 0)


def weight_key(variant, l):
    """The key of block ``l``'s weight in ``deep_net(variant).params`` (blocks are numbered from 1)."""
    return f"{l}.{_LINEAR_INDEX.get(variant, 0)}.W"


def _weight_norms(grads, variant, depth):
    return np.array([np.linalg.norm(grads[weight_key(variant, l)]) for l in range(1, depth + 1)])


class GradientProfile(NamedTuple):
    r"""One forward/backward pass of the cross-entropy on a batch of digits, at initialization.

    ``weight_grad`` (depth,): :math:`\lVert \partial L/\partial W_l \rVert_F` of block ``l = 1..depth``
    (index ``l-1``). ``signal`` (depth,): :math:`\lVert \partial L/\partial h_{l-1} \rVert_F`, the
    gradient that reaches the input of block ``l``. ``spread`` (depth,): how much the block outputs
    :math:`h_l` differ between examples (std over the batch, averaged over features); 0 means every
    example is mapped to the same vector. ``loss``: the loss of the pass."""

    variant: str
    activation: str
    weight_grad: np.ndarray
    signal: np.ndarray
    spread: np.ndarray
    loss: float


def gradient_profile(variant="plain", activation="sigmoid", depth=30, width=32, n=256, seed=0):
    r"""Per-block gradient norms of :func:`deep_net` at initialization on ``n`` training digits.

    Training mode (batch statistics for BatchNorm); the data split and the weights use ``seed``.
    The product of the blocks' Jacobians decides ``signal`` (a row vector, multiplied on the right):
    a ``plain`` block multiplies it by :math:`\operatorname{diag}\phi'(z_l)\,W_l^\top`, a
    ``residual`` block by :math:`I + W_l^\top \operatorname{diag}\phi'(h_{l-1})`, whose identity
    keeps it from vanishing. Pitfall: ``signal`` at block 1 of a vanishing net can be ~1e-20.
    """
    fn = "gradient_profile"
    n = _check_pos_int(n, "n", fn, minimum=2)
    data = _digits_split(seed)
    net = deep_net(variant, activation, depth, width, seed=seed)
    with np.errstate(over="ignore", invalid="ignore"):
        loss, grads, signal, spread = _forward_backward(net, data.X_train[:n], data.y_train[:n], measure=True)
    return GradientProfile(variant, activation, _weight_norms(grads, variant, depth), signal, spread, loss)


class DeepTraining(NamedTuple):
    r"""Mini-batch SGD on the digits.

    ``loss`` (epochs+1,): the loss of the first mini-batch before any step (index 0), then the
    mean mini-batch loss of each epoch; NaN after divergence. ``accuracy`` (epochs+1,): test
    accuracy (evaluation mode) before training and after each epoch. ``weight_grad``
    (epochs+1, depth): :math:`\lVert\partial L/\partial W_l\rVert_F` on the first step (row 0),
    then averaged over each epoch's steps. ``diverged``: the book's rule
    (:func:`actgrad.experiments.diverged`) applied to every step's loss; training stops there."""

    variant: str
    activation: str
    lr: float
    loss: np.ndarray
    accuracy: np.ndarray
    weight_grad: np.ndarray
    diverged: bool


def train_deep_net(variant="plain", activation="sigmoid", depth=30, width=32, lr=0.1, epochs=10,
                   batch_size=64, seed=0):
    r"""Train :func:`deep_net` with plain SGD (step :math:`\theta \leftarrow \theta - \eta\,g`) on
    the digits (75 % train / 25 % test, split by ``seed``; weights and batch order from ``seed``).

    Returns a :class:`DeepTraining`. A step whose loss is non-finite or above
    :math:`10 \ln 10` marks the run diverged and ends it (the rest of ``loss`` and ``accuracy``
    is NaN). Cost: about ``epochs * 21`` steps of ``depth`` blocks.
    """
    fn = "train_deep_net"
    epochs = _check_pos_int(epochs, "epochs", fn)
    batch_size = _check_pos_int(batch_size, "batch_size", fn, minimum=2)
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"{fn}: lr must be a positive finite number, got {lr!r}")
    rng = np.random.default_rng(seed)
    data = _digits_split(seed)
    net = deep_net(variant, activation, depth, width, seed=rng)
    opt = SGD(lr)
    n = len(data.y_train)
    loss = np.full(epochs + 1, np.nan)
    acc = np.full(epochs + 1, np.nan)
    wg = np.full((epochs + 1, depth), np.nan)
    acc[0] = _test_accuracy(net, data)
    is_diverged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for e in range(1, epochs + 1):
            order = rng.permutation(n)
            losses, norms = [], []
            for start in range(0, n - batch_size + 1, batch_size):   # full batches only (BatchNorm)
                j = order[start:start + batch_size]
                step_loss, grads, _, _ = _forward_backward(net, data.X_train[j], data.y_train[j])
                if e == 1 and not losses:
                    loss[0], wg[0] = step_loss, _weight_norms(grads, variant, depth)
                if diverged([step_loss]):
                    is_diverged = True
                    break
                losses.append(step_loss)
                norms.append(_weight_norms(grads, variant, depth))
                opt.step(net.params, grads)
            if is_diverged:
                break
            loss[e], wg[e] = np.mean(losses), np.mean(norms, axis=0)
            acc[e] = _test_accuracy(net, data)
    return DeepTraining(variant, activation, float(lr), loss, acc, wg, is_diverged)


def _test_accuracy(net, data):
    with np.errstate(all="ignore"):
        return float(np.mean(np.argmax(net(data.X_test), axis=1) == data.y_test))


class LrSweep(NamedTuple):
    r""":func:`train_deep_net` over a grid of learning rates and seeds for one variant.

    ``runs[i][j]``: the :class:`DeepTraining` of ``lrs[i]`` and ``seeds[j]``. ``final_loss``
    (n_lr, n_seeds): the last epoch's mean mini-batch loss (NaN if diverged). ``diverged``
    (n_lr, n_seeds): the book's rule."""

    variant: str
    activation: str
    lrs: tuple
    seeds: tuple
    runs: list
    final_loss: np.ndarray
    diverged: np.ndarray


def lr_sweep(variant="plain", activation="sigmoid", lrs=(0.01, 0.1, 1.0), seeds=(0, 1, 2), **kwargs):
    """Run :func:`train_deep_net` for every learning rate and seed (``kwargs`` are passed on:
    ``depth``, ``width``, ``epochs``, ``batch_size``); ``runs`` has ``len(lrs) * len(seeds)`` runs."""
    lrs, seeds = tuple(float(lr) for lr in lrs), tuple(seeds)
    if not lrs or not seeds:
        raise ValueError(f"lr_sweep: need at least one lr and one seed, got {lrs!r}, {seeds!r}")
    runs = [[train_deep_net(variant, activation, lr=lr, seed=s, **kwargs) for s in seeds] for lr in lrs]
    div = np.array([[r.diverged for r in row] for row in runs])
    final = np.array([[np.nan if r.diverged else r.loss[-1] for r in row] for row in runs])
    return LrSweep(variant, activation, lrs, seeds, runs, final, div)
