r"""Chapter "Gradients through time": a tanh RNN versus an LSTM on a task with a long dependency.

* :func:`recall_task` - generated sequences whose label is the symbol shown at the *first* step,
  followed by ``T - 1`` distractor symbols: the gradient must travel ``T - 1`` steps back.
* :func:`init_recurrent` - PyTorch's default initialisation of ``nn.RNN``/``nn.LSTM`` plus a
  linear read-out, optionally with the recurrent matrix rescaled to a given spectral radius.
* :func:`recurrent_loss` - loss, gradients and :math:`\lVert\partial L/\partial h_t\rVert` for every
  step (:func:`actgrad.rnn.rnn_hidden_grads`, :func:`actgrad.rnn.lstm_state_grads`).
* :func:`forget_path_gain` - the LSTM's direct cell-path factor :math:`\prod_s f_s`, with sigmoid
  or (counterfactual) ReLU gates.
* :func:`train_recurrent` - Adam or SGD with optional norm clipping, recording the gradient norm
  before clipping, the update norm and the per-step gradient norms before and after training.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import losses as _L
from .. import optim as _O
from .. import rnn as _R
from ._common import _check_pos_int, _total_norm, diverged as _diverged

__all__ = ["recall_task", "spectral_radius", "init_recurrent", "RecurrentPass", "recurrent_loss",
           "forget_path_gain", "RecurrentTrace", "train_recurrent"]

_CELLS = ("rnn", "lstm")


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _cell(cell, fn):
    if cell not in _CELLS:
        raise ValueError(f"{fn}: cell must be one of {_CELLS}, got {cell!r}")
    return cell


def recall_task(T, n, n_classes=4, seed=None, dtype=np.float64):
    r"""A batch of the "recall the first symbol" task: ``(x, y)``.

    Every step shows one of ``n_classes`` symbols (one-hot in the first K inputs); the first step
    also sets a marker input (the last one). The label is the symbol of the first step, read from
    :math:`h_T`: the gradient that could teach it must cross :math:`T - 1` recurrent steps, and it
    arrives through the same input weights as the short-range gradients of the distractors.
    Chance: accuracy :math:`1/K`, loss :math:`\ln K`.

    Shapes: ``x`` (T, n, K + 1) in ``dtype``, ``y`` (n,) int64. ``seed``: an int or a
    ``np.random.Generator`` (drawn from, so successive calls give fresh batches).
    """
    fn = "recall_task"
    T, n = _check_pos_int(T, "T", fn), _check_pos_int(n, "n", fn)
    K = _check_pos_int(n_classes, "n_classes", fn, minimum=2)
    rng = _rng(seed)
    symbols = rng.integers(K, size=(T, n))
    x = np.zeros((T, n, K + 1), dtype=dtype)
    x[np.arange(T)[:, None], np.arange(n)[None, :], symbols] = 1.0
    x[0, :, K] = 1.0
    return x, symbols[0].copy()


def spectral_radius(W):
    r"""Largest modulus of the eigenvalues of a square matrix, :math:`\rho(W) = \max_k |\lambda_k|`.

    :math:`\rho(W) \le \lVert W\rVert_2`; for the powers :math:`\lVert W^k\rVert^{1/k} \to \rho(W)`
    (Gelfand), so :math:`\rho` decides whether products of many Jacobians shrink or grow.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"spectral_radius: W must be a square matrix, got shape {W.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def init_recurrent(cell, n_in, hidden, n_classes, radius=None, forget_bias=0.0, seed=None,
                   dtype=np.float64):
    r"""Parameters ``{"Wx", "Wh", "b", "Wy", "by"}`` of a one-layer RNN/LSTM with a linear read-out.

    As PyTorch's defaults: every weight and both biases of ``nn.RNN``/``nn.LSTM`` from
    :math:`U(-1/\sqrt H, 1/\sqrt H)` (``b`` is the sum of the two biases), and ``nn.Linear(H, K)``
    for the read-out (:math:`U(-1/\sqrt H, 1/\sqrt H)`). Shapes: ``Wx`` (D, gH), ``Wh`` (H, gH),
    ``b`` (gH,) with g = 1 (rnn) or 4 (lstm); ``Wy`` (H, K), ``by`` (K,).
    ``radius`` (rnn only): rescale ``Wh`` so that its spectral radius is exactly ``radius``
    (PyTorch's default gives about :math:`1/\sqrt3 \approx 0.58`). ``forget_bias`` is added to the
    LSTM forget-gate bias (:cite:`gers2000` recommend a positive value; PyTorch adds none).
    """
    fn = "init_recurrent"
    _cell(cell, fn)
    D, H, K = (_check_pos_int(v, name, fn) for v, name in ((n_in, "n_in"), (hidden, "hidden"),
                                                           (n_classes, "n_classes")))
    g = 4 if cell == "lstm" else 1
    rng, k = _rng(seed), 1.0 / math.sqrt(H)
    p = {"Wx": rng.uniform(-k, k, (D, g * H)), "Wh": rng.uniform(-k, k, (H, g * H)),
         "b": rng.uniform(-k, k, g * H) + rng.uniform(-k, k, g * H),
         "Wy": rng.uniform(-k, k, (H, K)), "by": rng.uniform(-k, k, K)}
    if radius is not None:
        if cell != "rnn":
            raise ValueError(f"{fn}: radius applies to the rnn cell only, got cell={cell!r}")
        if not radius > 0:
            raise ValueError(f"{fn}: radius must be > 0, got {radius!r}")
        p["Wh"] *= radius / spectral_radius(p["Wh"])
    if forget_bias:
        if cell != "lstm":
            raise ValueError(f"{fn}: forget_bias applies to the lstm cell only")
        p["b"][H:2 * H] += forget_bias
    return {name: v.astype(dtype) for name, v in p.items()}


class RecurrentPass(NamedTuple):
    """One forward/backward pass: mean cross-entropy ``loss`` (float), ``grads`` (dict keyed like
    the parameters), ``dh_norms`` (T,) :math:`\\lVert\\partial L/\\partial h_t\\rVert_F` over the
    batch, and ``logits`` (N, K)."""

    loss: float
    grads: dict
    dh_norms: np.ndarray
    logits: np.ndarray


def recurrent_loss(params, x, y, cell="rnn", gate="sigmoid"):
    r"""Cross-entropy of the read-out of the last state, its gradients and the per-step norms.

    .. math:: z = h_T W_y + b_y,\qquad L = \mathrm{CE}(z, y),\qquad
              \frac{\partial L}{\partial h_t}\ \text{for } t = 1..T \text{ by BPTT}.

    ``params`` from :func:`init_recurrent`; ``x`` (T, N, D), ``y`` (N,). ``h_0 = c_0 = 0``.
    Only :math:`h_T` is read, so ``dh_norms[t]`` measures what reaches step ``t`` from the loss.
    ``gate``: the LSTM's gate function, "sigmoid" or "relu" (the counterfactual of the chapter).
    """
    fn = "recurrent_loss"
    _cell(cell, fn)
    if np.ndim(x) != 3:
        raise ValueError(f"{fn}: x must be a 3-D array (T, N, D), got shape {np.shape(x)}")
    N, H = np.shape(x)[1], params["Wh"].shape[0]
    z0 = np.zeros((N, H), dtype=params["Wh"].dtype)
    if cell == "rnn":
        hs, cache = _R.rnn_forward(x, z0, params["Wx"], params["Wh"], params["b"])
    else:
        hs, _, cache = _R.lstm_forward(x, z0, z0, params["Wx"], params["Wh"], params["b"], gate=gate)
    logits = hs[-1] @ params["Wy"] + params["by"]
    loss, dlogits = _L.softmax_cross_entropy(logits, y)
    dhs = np.zeros_like(hs)
    dhs[-1] = dlogits @ params["Wy"].T
    # one BPTT pass gives both the parameter gradients and the per-step state gradients
    if cell == "rnn":
        (dx, dh0, dWx, dWh, db), dh = _R._rnn_bptt(dhs, cache, fn)
    else:
        (dx, dh0, dc0, dWx, dWh, db), (dh, dc) = _R._lstm_bptt(dhs, cache, None, None, fn)
    grads = {"Wx": dWx, "Wh": dWh, "b": db, "Wy": hs[-1].T @ dlogits, "by": dlogits.sum(axis=0)}
    dh_norms = np.sqrt(np.sum(np.square(dh, dtype=np.float64), axis=(1, 2)))
    return RecurrentPass(loss, grads, dh_norms, logits)


def forget_path_gain(params, x, gate="sigmoid"):
    r"""The LSTM's direct cell-path factor :math:`\partial c_T/\partial c_1 = \prod_{s=2}^{T} f_s`, per unit.

    Runs :func:`actgrad.rnn.lstm_forward` from :math:`h_0 = c_0 = 0` and multiplies the forget
    gates of steps 2..T. Shapes: ``params`` from :func:`init_recurrent` (lstm), ``x`` (T, N, D);
    returns (N, H). With sigmoid gates every factor is in (0, 1); with ``gate="relu"`` a factor
    can be exactly 0 or above 1, so the product can be 0 or grow without bound.
    """
    H = params["Wh"].shape[0]
    if params["Wh"].shape[1] != 4 * H:
        raise ValueError(f"forget_path_gain: params must be an LSTM's (Wh of shape (H, 4H)), got {params['Wh'].shape}")
    z0 = np.zeros((np.shape(x)[1], H), dtype=params["Wh"].dtype)
    with np.errstate(over="ignore"):
        _, _, cache = _R.lstm_forward(x, z0, z0, params["Wx"], params["Wh"], params["b"], gate=gate)
        return np.prod(cache.gates[1:, :, H:2 * H], axis=0)


class RecurrentTrace(NamedTuple):
    """One training run. Per step ``(steps,)``: ``loss`` (mini-batch), ``grad_norm`` (global norm
    *before* clipping), ``update_norm`` (:math:`\\lVert\\theta_{s+1}-\\theta_s\\rVert`). On a fixed
    evaluation batch: ``dh_init``, ``dh_final`` (T,) per-step gradient norms before/after training
    and ``accuracy`` after training. ``radius`` (2,): spectral radius of the recurrent matrix
    before/after (for the LSTM, of its candidate block). ``diverged`` follows
    :func:`actgrad.experiments.diverged`; after a non-finite loss the rest is NaN."""

    loss: np.ndarray
    grad_norm: np.ndarray
    update_norm: np.ndarray
    dh_init: np.ndarray
    dh_final: np.ndarray
    accuracy: float
    radius: np.ndarray
    diverged: bool


def _radius(params, cell):
    Wh = params["Wh"]
    H = Wh.shape[0]
    return spectral_radius(Wh if cell == "rnn" else Wh[:, 2 * H:3 * H])


def train_recurrent(cell="rnn", T=20, hidden=32, n_classes=4, steps=300, batch=32, lr=1e-2,
                    optimizer="adam", clip_norm=None, radius=None, forget_bias=0.0, gate="sigmoid",
                    eval_size=256, seed=0):
    r"""Train a one-layer RNN/LSTM on :func:`recall_task` with fresh batches every step.

    Each step: :func:`recurrent_loss`, then optionally ``clip_grad_norm``
    (:math:`g \leftarrow g\min(1, c/\lVert g\rVert)`), then ``optimizer`` ("adam" or "sgd", as
    ``torch.optim``). With SGD and clipping, :math:`\lVert\Delta\theta\rVert \le \eta c` at every
    step; clipping only ever shrinks a gradient, so it cannot revive a vanishing one.
    ``gate``: the LSTM's gate function (see :func:`recurrent_loss`). Everything random comes from
    ``np.random.default_rng(seed)``.
    """
    fn = "train_recurrent"
    _cell(cell, fn)
    steps = _check_pos_int(steps, "steps", fn)
    batch = _check_pos_int(batch, "batch", fn)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"{fn}: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    rng = np.random.default_rng(seed)
    params = init_recurrent(cell, n_classes + 1, hidden, n_classes, radius=radius,
                            forget_bias=forget_bias, seed=rng)
    opt = _O.Adam(lr=lr) if optimizer == "adam" else _O.SGD(lr=lr)
    x_ev, y_ev = recall_task(T, eval_size, n_classes, seed=rng)
    dh_init = recurrent_loss(params, x_ev, y_ev, cell, gate).dh_norms
    r0 = _radius(params, cell)
    loss, gnorm, unorm = (np.full(steps, np.nan) for _ in range(3))
    with np.errstate(all="ignore"):
        for s in range(steps):
            x, y = recall_task(T, batch, n_classes, seed=rng)
            out = recurrent_loss(params, x, y, cell, gate)
            loss[s] = out.loss
            if clip_norm is not None:
                gnorm[s] = _O.clip_grad_norm(out.grads, clip_norm)
            else:
                gnorm[s] = _total_norm(out.grads)
            old = {k: v.copy() for k, v in params.items()}
            opt.step(params, out.grads)
            unorm[s] = math.sqrt(sum(float(np.sum((params[k] - old[k]) ** 2)) for k in params))
            if not (math.isfinite(loss[s]) and math.isfinite(unorm[s])):
                break
        final = recurrent_loss(params, x_ev, y_ev, cell, gate)
    acc = float(np.mean(np.argmax(final.logits, axis=1) == y_ev))
    return RecurrentTrace(loss, gnorm, unorm, dh_init, final.dh_norms, acc,
                          np.array([r0, _radius(params, cell) if np.all(np.isfinite(params["Wh"])) else np.nan]),
                          _diverged(loss, n_classes))
