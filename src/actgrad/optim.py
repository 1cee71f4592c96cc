r"""Optimisers, gradient clipping and a minibatch training loop for :class:`actgrad.mlp.MLP`.

Update rules follow ``torch.optim`` exactly (same order of operations, same defaults), so a
NumPy run and a PyTorch run from the same weights and gradients agree to rounding.
Optimisers update a ``params`` dict **in place**: ``opt.step(model.params, grads)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "clip_grad_value", "History", "train"]


class Optimizer:
    """Base class: per-parameter state keyed by name; ``lr`` may be changed between steps."""

    def __init__(self, lr: float):
        if not lr >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr!r}")
        self.lr = float(lr)
        self.state: dict[str, dict] = {}

    def step(self, params: dict, grads: dict) -> None:
        missing = [k for k in grads if k not in params]
        if missing:
            raise KeyError(f"{type(self).__name__}.step: grads for unknown params {missing}")
        for k, g in grads.items():
            p = params[k]
            if g.shape != p.shape:
                raise ValueError(f"{type(self).__name__}.step: grad {k!r} has shape {g.shape}, "
                                 f"param has {p.shape}")
            self._update(k, p, g, self.state.setdefault(k, {}))

    def reset(self) -> None:
        """Forget the state (momentum buffers, Adam moments, step counts)."""
        self.state.clear()


class SGD(Optimizer):
    r"""Stochastic gradient descent as ``torch.optim.SGD``:

    .. math::
        g \leftarrow g + \lambda\theta, \quad
        b \leftarrow \mu b + (1-\tau) g \ (b_1 = g), \quad
        g \leftarrow g + \mu b \text{ (Nesterov) or } b, \quad
        \theta \leftarrow \theta - \eta g,

    with learning rate :math:`\eta` (``lr``), momentum :math:`\mu`, dampening :math:`\tau`, weight
    decay :math:`\lambda` (an L2 term added to the gradient, applied to every parameter passed).
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, dampening: float = 0.0):
        super().__init__(lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.nesterov, self.dampening = bool(nesterov), float(dampening)

    def _update(self, k, p, g, st):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += g if self.dampening == 0 else (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015, arXiv:1412.6980) as ``torch.optim.Adam`` (no AMSGrad):

    .. math::
        g \leftarrow g + \lambda\theta,\quad
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\\
        \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
        \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}.

    Note :math:`\epsilon` is added *after* bias-correcting :math:`\sqrt v`, as in PyTorch.
    ``weight_decay`` is the coupled L2 form; use :class:`AdamW` for decoupled decay.
    """

    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1) or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: invalid betas={betas}, eps={eps} "
                             f"or weight_decay={weight_decay}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)

    def _update(self, k, p, g, st):
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        if not st:
            st["step"], st["exp_avg"], st["exp_avg_sq"] = 0, np.zeros_like(p), np.zeros_like(p)
        st["step"] += 1
        t, m, v = st["step"], st["exp_avg"], st["exp_avg_sq"]
        m += (1.0 - b1) * (g - m)  # torch: exp_avg.lerp_(grad, 1 - beta1)
        v *= b2
        v += (1.0 - b2) * (g * g)
        step_size = self.lr / (1.0 - b1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1.0 - b2 ** t)
        denom += self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    r"""AdamW (decoupled weight decay, Loshchilov & Hutter) as ``torch.optim.AdamW``:
    :math:`\theta \leftarrow \theta(1 - \eta\lambda)` before the Adam step. Default ``weight_decay=0.01``."""

    decoupled = True

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(lr, betas, eps, weight_decay)


def _arrays(grads, fname):
    arrays = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not all(isinstance(g, np.ndarray) for g in arrays):
        raise TypeError(f"{fname}: grads must be a dict or list of numpy arrays (modified in place)")
    return arrays


def clip_grad_norm(grads, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    r"""Rescale gradients in place so their joint norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``:

    .. math:: \|g\| = \Big(\sum_k \|g_k\|_p^p\Big)^{1/p}, \qquad
              g_k \leftarrow g_k \cdot \min\Big(1, \frac{\text{max\_norm}}{\|g\| + 10^{-6}}\Big).

    ``grads``: dict or list of arrays. ``norm_type`` may be ``inf`` (max-abs). Returns the total
    norm **before** clipping (a float). The direction of the update is kept; only its length shrinks.
    A non-finite norm raises ``RuntimeError`` if ``error_if_nonfinite``, else yields NaN gradients as PyTorch.
    """
    arrays = _arrays(grads, "clip_grad_norm")
    if not arrays:
        return 0.0
    p = float(norm_type)
    norms = np.array([np.linalg.norm(g.ravel(), ord=p) if g.size else 0.0 for g in arrays])
    total = float(np.linalg.norm(norms, ord=p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm: the total norm of order {norm_type} is non-finite ({total})")
    coef = min(float(max_norm) / (total + 1e-6), 1.0) if not math.isnan(total) else float("nan")
    with np.errstate(invalid="ignore"):
        for g in arrays:
            g *= coef
    return total


def clip_grad_value(grads, clip_value: float) -> None:
    r"""Clamp every gradient entry in place to :math:`[-c, c]`, as ``torch.nn.utils.clip_grad_value_``.
    Unlike norm clipping this changes the gradient's direction. NaN stays NaN."""
    c = float(clip_value)
    for g in _arrays(grads, "clip_grad_value"):
        np.clip(g, -c, c, out=g)


@dataclass
class History:
    r"""What :func:`train` records.

    Per epoch: ``loss`` (mean training minibatch loss), ``accuracy`` (training accuracy after the
    epoch, classification losses only), ``val_loss``/``val_accuracy`` (if validation data given).
    Per step: ``step_loss``, ``grad_norms`` (array ``[steps, L]``: Frobenius norm of each layer's
    :math:`\partial\mathcal L/\partial W_l` before clipping; column ``l-1`` is layer ``l``, named in
    ``layer_names``) and ``grad_norm_total`` (joint 2-norm of all gradients before clipping);
    ``steps_per_epoch`` and :meth:`epoch_grad_norms` give the per-epoch means.
    """
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    grad_norms: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    grad_norm_total: list = field(default_factory=list)
    layer_names: list = field(default_factory=list)
    steps_per_epoch: int = 0

    def epoch_grad_norms(self) -> np.ndarray:
        """Mean of ``grad_norms`` over each epoch's steps: array ``[epochs, L]``."""
        n = self.steps_per_epoch
        if not n or len(self.grad_norms) == 0:
            return np.zeros((0, len(self.layer_names)))
        return self.grad_norms.reshape(-1, n, self.grad_norms.shape[1]).mean(axis=1)


def _accuracy(model, X, y) -> float:
    return float(np.mean(model.predict(X) == np.asarray(y).reshape(-1)))


def train(model, X, y, optimizer, epochs: int = 10, batch_size: int = 64, loss="softmax_cross_entropy",
          clip_norm: float | None = None, seed=None, progress: bool = True, X_val=None, y_val=None) -> History:
    r"""Minibatch training: each epoch shuffles ``X`` (with ``seed``, an int or Generator), then for
    every batch computes ``model.loss``, records gradient norms, optionally clips to ``clip_norm``
    (:func:`clip_grad_norm`) and calls ``optimizer.step``. Shows a ``tqdm`` bar over epochs unless
    ``progress=False``. Returns a :class:`History`. ``X`` (N, n_0); ``y`` labels (N,) or targets.
    """
    from .mlp import LOSSES, _CLASSIFICATION  # local import: mlp needs the whole functional core

    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"train: epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"train: batch_size must be a positive int, got {batch_size!r}")
    X = model._as_input(X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"train: X has {len(X)} rows but y has {len(y)}")
    if (X_val is None) != (y_val is None):
        raise ValueError("train: pass both X_val and y_val, or neither")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    classify = isinstance(loss, str) and loss in _CLASSIFICATION
    names = [f"W{l}" for l in range(1, model.num_layers + 1)]
    n = len(X)
    hist, norms = History(layer_names=names, steps_per_epoch=-(-n // batch_size)), []
    bar = tqdm(range(epochs), desc="train", unit="epoch", disable=not progress, leave=True)
    for _ in bar:
        perm = rng.permutation(n)
        total = 0.0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            value, grads = model.loss(X[idx], y[idx], loss=loss)
            total += value * len(idx)
            hist.step_loss.append(value)
            norms.append([float(np.linalg.norm(grads[k].ravel())) for k in names])
            g_all = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
            hist.grad_norm_total.append(g_all)
            if clip_norm is not None:
                clip_grad_norm(grads, clip_norm)
            optimizer.step(model.params, grads)
        hist.loss.append(total / n)
        post = {"loss": f"{hist.loss[-1]:.4f}"}
        if classify:
            hist.accuracy.append(_accuracy(model, X, y))
            post["acc"] = f"{hist.accuracy[-1]:.3f}"
        if X_val is not None:
            out = model(X_val)
            fn = LOSSES[loss] if isinstance(loss, str) else loss
            hist.val_loss.append(float(fn(out, model._as_target(y_val, out, loss))[0]))
            post["val_loss"] = f"{hist.val_loss[-1]:.4f}"
            if classify:
                hist.val_accuracy.append(_accuracy(model, X_val, y_val))
                post["val_acc"] = f"{hist.val_accuracy[-1]:.3f}"
        bar.set_postfix(post, refresh=False)
    bar.close()
    hist.grad_norms = np.array(norms, dtype=np.float64).reshape(len(norms), len(names))
    return hist
