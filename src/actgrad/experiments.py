r"""The gradient-flow experiments of the book's chapters 7-10, as seeded, vectorised functions.

Each function returns a :class:`typing.NamedTuple` of NumPy arrays, so a chapter can plot it and
``tests/test_experiments.py`` can assert on it against independent oracles (PyTorch autograd,
published constants, closed forms).

* :func:`gradient_norms_by_depth` - one forward/backward pass through a deep square MLP: the
  product of Jacobians, layer by layer (Glorot & Bengio, 2010).
* :func:`nielsen_speed_of_learning` - Nielsen's (2015, ch. 5) per-layer "speed of learning"
  :math:`\lVert \partial C/\partial b^l \rVert` of sigmoid nets on the bundled 8x8 digits.
* :func:`selu_moments`, :func:`selu_fixed_point` - SELU's :math:`(\alpha, \lambda)` from the
  fixed point mean 0 / variance 1 (Klambauer et al., 2017).
* :func:`dead_fraction_during_training` - dead ReLU units per layer, epoch by epoch.
* :func:`train_with_clipping` - plain SGD with optional norm/value clipping and weight decay,
  recording the gradient norm before clipping and the size of every update.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from . import activations as _A
from . import datasets as _D
from . import diagnostics as _G
from . import init as _I
from . import losses as _L
from . import optim as _O
from .mlp import MLP

__all__ = ["DepthProfile", "gradient_norms_by_depth", "SpeedOfLearning", "nielsen_speed_of_learning",
           "SeluFixedPoint", "selu_moments", "selu_fixed_point", "DeadTrace",
           "dead_fraction_during_training", "ClipTrace", "train_with_clipping"]


def _resolve_init(init, fn):
    """A name, a LayerInit/callable, or a float ``std`` (plain N(0, std^2) weights)."""
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        if not init > 0:
            raise ValueError(f"{fn}: a numeric init is a weight std and must be > 0, got {init!r}")
        return functools.partial(_I.normal, std=float(init))
    if isinstance(init, str) or callable(init):
        return init
    raise TypeError(f"{fn}: init must be a name, a callable or a float std, got {type(init).__name__}")


def _check_pos_int(value, name, fn, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _activation(name, fn):
    if name not in _A.ACTIVATIONS:
        raise ValueError(f"{fn}: unknown activation {name!r}; known: {sorted(_A.ACTIVATIONS)}")
    return _A.ACTIVATIONS[name]


# ============================================================================ depth profile
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


# ============================================================================ SELU
class SeluFixedPoint(NamedTuple):
    """SELU's constants and how Newton's method got there (``residual``: max |F| at the end)."""

    alpha: float
    lam: float
    iterations: int
    residual: float


def _Phi(x):
    """Standard normal CDF via erfc (accurate in both tails)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def selu_moments(alpha, lam):
    r"""Mean and second moment of :math:`\operatorname{selu}(z)` for :math:`z \sim \mathcal N(0,1)`.

    With :math:`\operatorname{selu}(z) = \lambda z` for :math:`z>0`, :math:`\lambda\alpha(e^z-1)`
    otherwise, and :math:`\int_{-\infty}^0 e^{kz}\varphi(z)\,dz = e^{k^2/2}\Phi(-k)`:

    .. math::
        E = \lambda\Big[\tfrac{1}{\sqrt{2\pi}} + \alpha\big(e^{1/2}\Phi(-1) - \tfrac12\big)\Big],\qquad
        E_2 = \lambda^2\Big[\tfrac12 + \alpha^2\big(e^{2}\Phi(-2) - 2e^{1/2}\Phi(-1) + \tfrac12\big)\Big].

    Returns ``(E, E_2)`` as floats (the variance is :math:`E_2 - E^2`).
    """
    pos1, pos2 = 1.0 / math.sqrt(2.0 * math.pi), 0.5
    neg1 = math.exp(0.5) * _Phi(-1.0) - 0.5
    neg2 = math.exp(2.0) * _Phi(-2.0) - 2.0 * math.exp(0.5) * _Phi(-1.0) + 0.5
    return lam * (pos1 + alpha * neg1), lam ** 2 * (pos2 + alpha ** 2 * neg2)


def selu_fixed_point(x0=(1.5, 1.0), tol=1e-15, max_iter=50):
    r"""Solve :math:`E[\operatorname{selu}(z)] = 0`, :math:`E[\operatorname{selu}(z)^2] = 1`
    (:math:`z \sim \mathcal N(0,1)`) for :math:`(\alpha, \lambda)` by Newton's method.

    With zero-mean, unit-variance weights (:math:`\sum_i w_i = 0`, :math:`\sum_i w_i^2 = 1`) a
    standard normal input then gives a standard normal-ish output: (0, 1) is a fixed point of the
    layer map (Klambauer et al., 2017, who report :math:`\alpha \approx 1.6733`,
    :math:`\lambda \approx 1.0507`). The Jacobian is taken by central differences (step 1e-6);
    convergence is quadratic from ``x0``. Raises RuntimeError if it does not converge.
    """
    def F(v):
        m, s = selu_moments(*v)
        return np.array([m, s - 1.0])

    v = np.array(x0, dtype=np.float64)
    h = 1e-6
    for it in range(1, max_iter + 1):
        J = np.column_stack([(F(v + h * e) - F(v - h * e)) / (2 * h) for e in np.eye(2)])
        step = np.linalg.solve(J, F(v))
        v = v - step
        if np.max(np.abs(step)) < tol * max(1.0, np.max(np.abs(v))) * 10:
            break
    else:
        raise RuntimeError(f"selu_fixed_point: Newton did not converge in {max_iter} iterations")
    return SeluFixedPoint(float(v[0]), float(v[1]), it, float(np.max(np.abs(F(v)))))


# ============================================================================ training helpers
def _digits_split(seed):
    return _D.digits(split=True, test_size=0.25, seed=seed)


def _accuracy(model, X, y):
    with np.errstate(all="ignore"):
        return float(np.mean(model.predict(X) == y))


def _total_norm(grads):
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


# ============================================================================ dead units
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


# ============================================================================ clipping
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
