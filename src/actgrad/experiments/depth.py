"""Chapter "Vanishing and exploding gradients": gradient norms layer by layer through a deep MLP at initialization (Glorot & Bengio, 2010); Nielsen's per-layer speed of learning (Nielsen, 2015, ch. 5)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations as _A
from .. import datasets as _D
from ..mlp import MLP

__all__ = ['DepthProfile', 'gradient_norms_by_depth', 'SpeedOfLearning', 'nielsen_speed_of_learning']

from ._common import _resolve_init, _check_pos_int, _activation

class DepthProfile(NamedTuple):
    """Per-layer statistics of one pass (layer ``l = 1..depth`` at index ``l-1``).

    ``act_mean``, ``act_std``: mean/std of the activations :math:`a_l` (depth,).
    ``delta_norm``: :math:`\\lVert \\partial L/\\partial z_l \\rVert_F` (depth,).
    ``grad_norm``: :math:`\\lVert \\partial L/\\partial W_l \\rVert_F` (depth,).
    ``activations``, ``deltas``: the raw ``(n, width)`` arrays per layer, or None unless
    ``keep_values=True`` (for histograms). ``params``, ``X``, ``G``: the weights, the input
    batch and the upstream gradient used (so the pass can be re-run elsewhere, e.g. in PyTorch).
    """

    activation: str
    init: str
    act_mean: np.ndarray
    act_std: np.ndarray
    delta_norm: np.ndarray
    grad_norm: np.ndarray
    activations: list | None
    deltas: list | None
    params: dict
    X: np.ndarray
    G: np.ndarray


def gradient_norms_by_depth(activation="sigmoid", init="xavier", depth=20, width=256, n=256,
                            seed=0, keep_values=False):
    r"""Forward a Gaussian batch through ``depth`` square layers and backpropagate a random
    upstream gradient, keeping every layer's statistics.

    Every layer (the last included) is :math:`z_l = a_{l-1} W_l + b_l`, :math:`a_l = \phi(z_l)`,
    with :math:`a_0 = X \sim \mathcal N(0, 1)^{n \times \text{width}}`. The scalar being
    differentiated is :math:`L = \sum_{ij} G_{ij}\, (a_L)_{ij}` with a fixed
    :math:`G \sim \mathcal N(0, 1/n^2)`, so :math:`\partial L/\partial a_L = G` does not depend on
    any loss. Backward is the product of Jacobians written out:

    .. math:: \delta_l = \partial L/\partial z_l = (\delta_{l+1} W_{l+1}^\top) \odot \phi'(z_l),
       \qquad \partial L/\partial W_l = a_{l-1}^\top \delta_l .

    Each factor :math:`W^\top \operatorname{diag}\phi'` scales the gradient by about
    :math:`\sqrt{\text{width}\cdot\operatorname{Var}W\cdot E[\phi'(z)^2]}`: about 1/4 for sigmoid
    with Xavier (:math:`\sigma' \le 1/4`), about 1 for ReLU with He. ``init``: a name of
    :data:`actgrad.init.INITIALIZERS`, a callable, or a float weight std. Biases follow the
    init (zero except ``"torch"``). Pitfall: ``keep_values=True`` keeps ``2*depth`` arrays
    of shape ``(n, width)``.
    """
    fn = "gradient_norms_by_depth"
    depth, width, n = (_check_pos_int(v, k, fn) for v, k in ((depth, "depth"), (width, "width"), (n, "n")))
    act = _activation(activation, fn)
    rng = np.random.default_rng(seed)
    model = MLP([width] * (depth + 1), activation=activation, init=_resolve_init(init, fn),
                seed=rng, output_activation=activation)
    X = rng.standard_normal((n, width))
    G = rng.standard_normal((n, width)) / n
    _, caches = model.forward(X)
    delta_norm, grad_norm, deltas = np.empty(depth), np.empty(depth), [None] * depth
    da = G
    for l in range(depth, 0, -1):
        c = caches[l - 1]
        dz = da * act.prime(c.z)
        deltas[l - 1] = dz
        delta_norm[l - 1] = np.linalg.norm(dz)
        grad_norm[l - 1] = np.linalg.norm(c.x.T @ dz)
        da = dz @ model.params[f"W{l}"].T
    acts = [c.a for c in caches]
    return DepthProfile(activation, init if isinstance(init, str) else repr(init),
                        np.array([a.mean() for a in acts]), np.array([a.std() for a in acts]),
                        delta_norm, grad_norm, acts if keep_values else None,
                        deltas if keep_values else None, model.params, X, G)


# ============================================================================ Nielsen ch. 5
class SpeedOfLearning(NamedTuple):
    """``speeds`` (epochs+1, n_hidden): :math:`\\lVert \\partial C/\\partial b^l\\rVert` of each hidden
    layer on the whole training set, before training (row 0) and after each epoch.
    ``loss`` and ``accuracy`` (epochs+1,): cross-entropy cost and test accuracy at the same times.
    ``init_params``: a copy of the parameters before training; ``X``, ``y``: the training subset."""

    hidden_layers: tuple
    speeds: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    init_params: dict
    X: np.ndarray
    y: np.ndarray


def _nielsen_cost(out, Y):
    r"""Nielsen's cross-entropy cost for sigmoid outputs, averaged over the batch:
    :math:`C = -\frac1N\sum_{n,k} [y\ln\sigma(o) + (1-y)\ln(1-\sigma(o))]`, computed stably from
    the logits :math:`o`; :math:`\partial C/\partial o = (\sigma(o) - y)/N`."""
    N = out.shape[0]
    cost = np.sum(np.logaddexp(0.0, out) - Y * out) / N  # -log sig(o)*y - log(1-sig(o))*(1-y)
    return cost, (_A.sigmoid(out) - Y) / N


def nielsen_speed_of_learning(hidden_layers=(30, 30), epochs=30, lr=0.1, batch_size=10,
                              n_train=1000, seed=0):
    r"""Reproduce Nielsen (2015, ch. 5, "The vanishing gradient problem") on the 8x8 digits.

    Network ``64 -> hidden_layers -> 10``, sigmoid everywhere (the outputs too), Nielsen's
    initialisation :math:`W \sim \mathcal N(0, 1/n_\text{in})`, :math:`b \sim \mathcal N(0, 1)`,
    his cross-entropy cost (see :func:`_nielsen_cost`), mini-batch SGD with ``lr``/``batch_size``
    on ``n_train`` training images. The *speed of learning* of hidden layer :math:`l` is the norm
    of its bias gradient, :math:`\lVert\delta^l\rVert = \lVert \partial C/\partial b^l \rVert`,
    measured on the full training subset. Nielsen reports, for MNIST at the start of training,
    ratios first/last of about 0.2 (two hidden layers), 0.04 (three) and 0.01 (four).
    """
    fn = "nielsen_speed_of_learning"
    hidden = tuple(_check_pos_int(h, "hidden layer size", fn) for h in hidden_layers)
    if not hidden:
        raise ValueError(f"{fn}: need at least one hidden layer, got {hidden_layers!r}")
    epochs = _check_pos_int(epochs, "epochs", fn, minimum=0)
    batch_size = _check_pos_int(batch_size, "batch_size", fn)
    rng = np.random.default_rng(seed)
    data = _D.digits(split=True, test_size=0.25, seed=seed)
    n_train = min(_check_pos_int(n_train, "n_train", fn), len(data.y_train))
    X, y = data.X_train[:n_train], data.y_train[:n_train]
    Y = _D.one_hot(y, 10)
    model = MLP([64, *hidden, 10], activation="sigmoid", init="lecun", seed=rng)
    for l in range(1, model.num_layers + 1):  # Nielsen's default_weight_initializer
        model.params[f"b{l}"][...] = rng.standard_normal(model.params[f"b{l}"].shape)
    init_params = {k: v.copy() for k, v in model.params.items()}
    nh = len(hidden)
    speeds, loss, acc = np.empty((epochs + 1, nh)), np.empty(epochs + 1), np.empty(epochs + 1)

    def measure(e):
        out, caches = model.forward(X)
        loss[e], dout = _nielsen_cost(out, Y)
        g = model.backward(dout, caches)
        speeds[e] = [np.linalg.norm(g[f"b{l}"]) for l in range(1, nh + 1)]
        acc[e] = np.mean(model.predict(data.X_test) == data.y_test)

    measure(0)
    for e in range(1, epochs + 1):
        order = rng.permutation(n_train)
        for i in range(0, n_train, batch_size):
            j = order[i:i + batch_size]
            out, caches = model.forward(X[j])
            g = model.backward(_nielsen_cost(out, Y[j])[1], caches)
            for k, p in model.params.items():
                p -= lr * g[k]
        measure(e)
    return SpeedOfLearning(hidden, speeds, loss, acc, init_params, X, y)


