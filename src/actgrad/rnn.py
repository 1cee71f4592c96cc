r"""Recurrent layers in NumPy: a vanilla tanh RNN and an LSTM, forward and backward through time.

CS231n-style forward/backward pairs over a whole sequence, time-major like ``torch.nn.RNN`` and
``torch.nn.LSTM`` (``batch_first=False``). Weights are stored as ``x @ Wx`` (PyTorch stores the
transpose): ``torch.nn.RNN`` has ``weight_ih = Wx.T``, ``weight_hh = Wh.T`` and
``bias_ih + bias_hh = b``; the same holds for ``torch.nn.LSTM`` with the four gates stacked in
PyTorch's order (input, forget, cell candidate, output).

Backpropagation through time (BPTT) runs the recurrence backwards. :func:`rnn_hidden_grads` and
:func:`lstm_state_grads` return the *total* gradients :math:`\partial L/\partial h_t` (and
:math:`\partial L/\partial c_t`) at every step, the quantity whose norm vanishes or explodes with
the distance :math:`T - t` :cite:`bengio1994,pascanu2013`.

dtype: float32 in, float32 out; float64 in, float64 out (mixed inputs use NumPy's promotion; ints
become float64, float16 is computed and returned in float32). Gates use the overflow-free sigmoid kernel of :mod:`actgrad.activations`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._core import as_float_array, sigmoid_k

__all__ = ["RNNCache", "LSTMCache", "rnn_forward", "rnn_backward", "rnn_hidden_grads",
           "lstm_forward", "lstm_backward", "lstm_state_grads"]


class RNNCache(NamedTuple):
    """What :func:`rnn_backward` needs: inputs ``x`` (T, N, D), ``h0`` (N, H), ``Wx`` (D, H),
    ``Wh`` (H, H) and the hidden states ``hs`` (T, N, H)."""

    x: np.ndarray
    h0: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hs: np.ndarray


class LSTMCache(NamedTuple):
    """What :func:`lstm_backward` needs: ``x`` (T, N, D), ``h0``, ``c0`` (N, H), ``Wx`` (D, 4H),
    ``Wh`` (H, 4H), hidden and cell states ``hs``, ``cs`` (T, N, H), the activated gates
    ``gates`` (T, N, 4H) in the order i, f, g, o, ``tanh_c`` = tanh(cs) (T, N, H) and the name of
    the ``gate`` function ("sigmoid", or "relu" for the counterfactual experiment)."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    hs: np.ndarray
    cs: np.ndarray
    gates: np.ndarray
    tanh_c: np.ndarray
    gate: str = "sigmoid"


# ----------------------------------------------------------------------------- argument checks
def _arrays(fn, **named):
    """Coerce to float arrays of one common dtype (float32 stays float32)."""
    work = {k: as_float_array(v, fn, k)[0] for k, v in named.items()}
    dt = np.result_type(*work.values())
    return {k: v.astype(dt, copy=False) for k, v in work.items()}


def _expect(fn, name, arr, shape):
    if arr.shape != tuple(shape):
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)}, got {arr.shape}")


def _check(fn, x, states, Wx, Wh, b, gates):
    """Validate shapes: x (T, N, D), each state (N, H), Wx (D, gH), Wh (H, gH), b (gH,)."""
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"{fn}: x must be a non-empty 3-D array (T, N, D) (time first, as PyTorch's "
                         f"default batch_first=False), got shape {x.shape}")
    T, N, D = x.shape
    if Wh.ndim != 2 or Wh.shape[0] == 0 or Wh.shape[1] != gates * Wh.shape[0]:
        raise ValueError(f"{fn}: Wh must have shape (H, {'4*H' if gates > 1 else 'H'}), got {Wh.shape}")
    H = Wh.shape[0]
    _expect(fn, "Wx", Wx, (D, gates * H))
    _expect(fn, "b", b, (gates * H,))
    for name, s in states.items():
        _expect(fn, name, s, (N, H))
    return T, N, D, H


# ----------------------------------------------------------------------------- vanilla RNN
def rnn_forward(x, h0, Wx, Wh, b):
    r"""Forward pass of a tanh RNN over a whole sequence.

    .. math:: h_t = \tanh\!\big(x_t W_x + h_{t-1} W_h + b\big), \qquad t = 1, \dots, T.

    Shapes: ``x`` (T, N, D), ``h0`` (N, H), ``Wx`` (D, H), ``Wh`` (H, H), ``b`` (H,).
    Returns ``(hs, cache)`` with ``hs`` (T, N, H) (``hs[-1]`` is :math:`h_T`) and an
    :class:`RNNCache`. Equal to ``torch.nn.RNN(D, H)`` with ``weight_ih = Wx.T``,
    ``weight_hh = Wh.T``, ``bias_ih + bias_hh = b``. Range: :math:`h_t \in (-1, 1)`.
    Pitfall: the Jacobian :math:`\partial h_t/\partial h_{t-1}` involves :math:`W_h^\top`; its
    spectral radius decides whether gradients vanish or explode over time (see :func:`rnn_hidden_grads`).
    """
    fn = "rnn_forward"
    a = _arrays(fn, x=x, h0=h0, Wx=Wx, Wh=Wh, b=b)
    T, N, _, H = _check(fn, a["x"], {"h0": a["h0"]}, a["Wx"], a["Wh"], a["b"], 1)
    xw = a["x"] @ a["Wx"] + a["b"]                       # input part of every step at once
    hs = np.empty((T, N, H), dtype=xw.dtype)
    h = a["h0"]
    for t in range(T):
        h = np.tanh(xw[t] + h @ a["Wh"], out=hs[t])
    return hs, RNNCache(a["x"], a["h0"], a["Wx"], a["Wh"], hs)


def _prev(h0, hs):
    """The states h_{t-1} for t = 1..T, i.e. [h0, h_1, ..., h_{T-1}] as (T, N, H)."""
    return np.concatenate([h0[None], hs[:-1]])


def _weight_grads(x, hprev, da, Wx, Wh):
    """dx, dWx, dWh, db from the pre-activation gradients da (T, N, gH) of every step at once."""
    T, N, D = x.shape
    flat = da.reshape(T * N, -1)
    return (da @ Wx.T, x.reshape(T * N, D).T @ flat, hprev.reshape(T * N, -1).T @ flat,
            flat.sum(axis=0))


def _rnn_bptt(dhs, cache, fn):
    x, h0, Wx, Wh, hs = cache
    dhs = np.asarray(as_float_array(dhs, fn, "dhs")[0], dtype=hs.dtype)
    _expect(fn, "dhs", dhs, hs.shape)
    dh_total = np.empty_like(hs)
    da = 1.0 - hs * hs                                   # tanh' from the output, every step at once
    dh_next = np.zeros_like(h0)
    for t in range(hs.shape[0] - 1, -1, -1):
        dh = np.add(dhs[t], dh_next, out=dh_total[t])   # dL/dh_t: from the output and from step t+1
        da[t] *= dh                                      # dL/da_t = dL/dh_t * (1 - h_t^2)
        dh_next = da[t] @ Wh.T
    dx, dWx, dWh, db = _weight_grads(x, _prev(h0, hs), da, Wx, Wh)
    return (dx, dh_next, dWx, dWh, db), dh_total


def rnn_backward(dhs, cache):
    r"""Backpropagation through time for :func:`rnn_forward`.

    With :math:`\delta_t = \partial L/\partial h_t` (the upstream ``dhs[t]`` plus what flows back
    from step :math:`t+1`) and :math:`a_t` the pre-activation:

    .. math:: \frac{\partial L}{\partial a_t} = \delta_t \odot (1 - h_t^2),\quad
              \delta_{t-1} = \mathrm{dhs}_{t-1} + \frac{\partial L}{\partial a_t} W_h^\top,\quad
              \frac{\partial L}{\partial W_h} = \sum_t h_{t-1}^\top \frac{\partial L}{\partial a_t}.

    ``dhs`` (T, N, H): the gradient of the loss with respect to every output ``hs[t]`` (zeros
    where the loss does not read it). Returns ``(dx, dh0, dWx, dWh, db)`` with the shapes of
    ``x``, ``h0``, ``Wx``, ``Wh``, ``b``, in the cache's dtype.
    """
    return _rnn_bptt(dhs, cache, "rnn_backward")[0]


def rnn_hidden_grads(dhs, cache):
    r"""The total gradients :math:`\partial L/\partial h_t` for every step, shape (T, N, H).

    By the chain rule, :math:`\partial h_t/\partial h_{t-1} = \operatorname{diag}(1 - h_t^2)\,W_h^\top`
    (in column convention), so :math:`\lVert\partial L/\partial h_t\rVert \le
    \lVert W_h\rVert_2^{\,T-t}\,\lVert\partial L/\partial h_T\rVert` when only :math:`h_T` is read:
    geometric decay when the spectral norm of :math:`W_h` is below 1 :cite:`pascanu2013`.
    Same arguments as :func:`rnn_backward`.
    """
    return _rnn_bptt(dhs, cache, "rnn_hidden_grads")[1]


# ----------------------------------------------------------------------------- LSTM
def lstm_forward(x, h0, c0, Wx, Wh, b, *, gate="sigmoid"):
    r"""Forward pass of an LSTM :cite:`hochreiter1997,gers2000` over a whole sequence.

    .. math::
        [a^i, a^f, a^g, a^o] = x_t W_x + h_{t-1} W_h + b,\quad
        i_t, f_t, o_t = \sigma(a^i), \sigma(a^f), \sigma(a^o),\quad g_t = \tanh a^g,\\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh c_t.

    Shapes: ``x`` (T, N, D), ``h0``, ``c0`` (N, H), ``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,),
    gate blocks in PyTorch's order (input, forget, cell, output). Returns
    ``(hs, (hT, cT), cache)`` with ``hs`` (T, N, H) and an :class:`LSTMCache`; equal to
    ``torch.nn.LSTM(D, H)`` with ``weight_ih = Wx.T``, ``weight_hh = Wh.T``, ``bias_ih + bias_hh = b``.
    The gates are sigmoids, so :math:`f_t \in (0, 1)`: the cell path
    :math:`\partial c_t/\partial c_{t-1} = \operatorname{diag}(f_t)` can carry a gradient over many
    steps (f near 1) but never amplify it. ``gate="relu"`` replaces the three sigmoids by ReLU (not
    an LSTM any more; only for showing why gates are sigmoids: then :math:`f_t \in [0, \infty)`).
    """
    fn = "lstm_forward"
    if gate not in ("sigmoid", "relu"):
        raise ValueError(f"{fn}: gate must be 'sigmoid' or 'relu', got {gate!r}")
    a = _arrays(fn, x=x, h0=h0, c0=c0, Wx=Wx, Wh=Wh, b=b)
    T, N, _, H = _check(fn, a["x"], {"h0": a["h0"], "c0": a["c0"]}, a["Wx"], a["Wh"], a["b"], 4)
    xw = a["x"] @ a["Wx"] + a["b"]
    dt = xw.dtype
    hs, cs, tanh_c = (np.empty((T, N, H), dtype=dt) for _ in range(3))
    gates = np.empty((T, N, 4 * H), dtype=dt)
    h, c = a["h0"], a["c0"]
    for t in range(T):
        pre = xw[t] + h @ a["Wh"]
        g = gates[t]
        g[:] = sigmoid_k(pre) if gate == "sigmoid" else np.maximum(pre, 0.0)  # i, f, (overwritten), o
        np.tanh(pre[:, 2 * H:3 * H], out=g[:, 2 * H:3 * H])
        i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        c = np.add(f * c, i * gg, out=cs[t])
        h = np.multiply(o, np.tanh(c, out=tanh_c[t]), out=hs[t])
    cache = LSTMCache(a["x"], a["h0"], a["c0"], a["Wx"], a["Wh"], hs, cs, gates, tanh_c, gate)
    return hs, (hs[-1].copy(), cs[-1].copy()), cache


def _lstm_bptt(dhs, cache, dhT, dcT, fn):
    x, h0, c0, Wx, Wh, hs, cs, gates, tanh_c, gate = cache
    dt = hs.dtype
    T, N, H = hs.shape
    dhs = np.asarray(as_float_array(dhs, fn, "dhs")[0], dtype=dt)
    _expect(fn, "dhs", dhs, hs.shape)
    nxt = []
    for name, v in (("dhT", dhT), ("dcT", dcT)):
        v = np.zeros((N, H), dtype=dt) if v is None else np.asarray(as_float_array(v, fn, name)[0], dtype=dt)
        _expect(fn, name, v, (N, H))
        nxt.append(v)
    dh_next, dc_next = nxt
    local = gates * (1.0 - gates) if gate == "sigmoid" else (gates > 0).astype(dt)  # gate derivatives
    local[..., 2 * H:3 * H] = 1.0 - gates[..., 2 * H:3 * H] ** 2                     # tanh candidate
    o_dtanh = gates[..., 3 * H:] * (1.0 - tanh_c ** 2)   # dh_t -> dc_t: o_t (1 - tanh^2 c_t)
    cprev = _prev(c0, cs)
    da = np.empty_like(gates)
    dh_total, dc_total = np.empty_like(hs), np.empty_like(cs)
    for t in range(T - 1, -1, -1):
        g, d = gates[t], da[t]
        dh = np.add(dhs[t], dh_next, out=dh_total[t])
        dc = np.add(dc_next, dh * o_dtanh[t], out=dc_total[t])
        np.multiply(dc, g[:, 2 * H:3 * H], out=d[:, :H])                # input gate   <- g_t
        np.multiply(dc, cprev[t], out=d[:, H:2 * H])                    # forget gate  <- c_{t-1}
        np.multiply(dc, g[:, :H], out=d[:, 2 * H:3 * H])                # candidate    <- i_t
        np.multiply(dh, tanh_c[t], out=d[:, 3 * H:])                    # output gate  <- tanh c_t
        d *= local[t]
        dh_next = d @ Wh.T
        dc_next = dc * g[:, H:2 * H]                                    # the additive cell path: f_t
    dx, dWx, dWh, db = _weight_grads(x, _prev(h0, hs), da, Wx, Wh)
    return (dx, dh_next, dc_next, dWx, dWh, db), (dh_total, dc_total)


def lstm_backward(dhs, cache, dhT=None, dcT=None):
    r"""Backpropagation through time for :func:`lstm_forward`.

    With :math:`\delta^h_t, \delta^c_t` the total gradients at step :math:`t`:

    .. math::
        \delta^c_t = \delta^c_{t+1} \odot f_{t+1} + \delta^h_t \odot o_t \odot (1 - \tanh^2 c_t),\quad
        \frac{\partial L}{\partial a^f_t} = \delta^c_t \odot c_{t-1} \odot f_t (1 - f_t),\ \dots,\quad
        \delta^h_{t-1} = \mathrm{dhs}_{t-1} + \frac{\partial L}{\partial a_t} W_h^\top.

    ``dhs`` (T, N, H): gradient with respect to every ``hs[t]``; ``dhT``, ``dcT`` (N, H) or None
    (zeros): gradients with respect to the returned final state ``(hT, cT)``. Returns
    ``(dx, dh0, dc0, dWx, dWh, db)`` with the shapes of the corresponding inputs.
    """
    return _lstm_bptt(dhs, cache, dhT, dcT, "lstm_backward")[0]


def lstm_state_grads(dhs, cache, dhT=None, dcT=None):
    r"""Total gradients ``(dh, dc)``, each (T, N, H): :math:`\partial L/\partial h_t` and
    :math:`\partial L/\partial c_t` for every step (same arguments as :func:`lstm_backward`).

    Along the cell path alone, :math:`\partial c_T/\partial c_t = \operatorname{diag}\big(\prod_{s=t+1}^T f_s\big)`:
    a product of numbers in (0, 1) that stays near 1 when the forget gates are open.
    """
    return _lstm_bptt(dhs, cache, dhT, dcT, "lstm_state_grads")[1]
