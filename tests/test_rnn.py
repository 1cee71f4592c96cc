"""actgrad.rnn and actgrad.experiments.through_time against independent oracles: PyTorch autograd in
float64 (nn.RNN, nn.LSTM, and step-by-step RNNCell/LSTMCell for the per-step state gradients),
central differences, the norm bound of the chapter's derivation, and the chapter's conclusions
(book/10b_gradients_through_time.ipynb) asserted across three seeds."""
import math
import warnings

import numpy as np
import pytest
import torch

from actgrad import rnn
from actgrad.experiments import diverged
from actgrad.experiments import through_time as TT
from actgrad.gradcheck import numerical_gradient, rel_error

SEEDS = (0, 1, 2)
HINT_T = ("hint: actgrad stores x @ Wx, PyTorch stores the transpose (weight_ih = Wx.T); "
          "the LSTM gate order is i, f, g, o")


def _data(T, N, D, H, g, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arr = lambda *s: rng.normal(0, 0.5, s).astype(dtype)
    return dict(x=arr(T, N, D), h0=arr(N, H), c0=arr(N, H), Wx=arr(D, g * H), Wh=arr(H, g * H),
                b=arr(g * H), dhs=arr(T, N, H), dhT=arr(N, H), dcT=arr(N, H))


def _torch_net(kind, d):
    D, gH = d["Wx"].shape
    net = getattr(torch.nn, kind)(D, d["Wh"].shape[0]).double()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.tensor(d["Wx"].T))
        net.weight_hh_l0.copy_(torch.tensor(d["Wh"].T))
        net.bias_ih_l0.copy_(torch.tensor(d["b"]) * 0.25)   # any split of b into two biases
        net.bias_hh_l0.copy_(torch.tensor(d["b"]) * 0.75)
    return net


def _close(name, got, want, tol=1e-10, hint=HINT_T):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    assert err < tol, f"{name}: max |actgrad - torch| = {err:.3e} > {tol:g}; {hint}"


# ----------------------------------------------------------------------------- vs PyTorch
@pytest.mark.parametrize("T,N,D,H", [(6, 3, 4, 5), (1, 1, 2, 3), (9, 2, 1, 1)])
def test_rnn_forward_backward_match_torch(T, N, D, H):
    d = _data(T, N, D, H, 1, seed=T + H)
    hs, cache = rnn.rnn_forward(d["x"], d["h0"], d["Wx"], d["Wh"], d["b"])
    net = _torch_net("RNN", d)
    x, h0 = torch.tensor(d["x"], requires_grad=True), torch.tensor(d["h0"][None], requires_grad=True)
    out, hT = net(x, h0)
    _close("rnn_forward hs", hs, out)
    (out * torch.tensor(d["dhs"])).sum().backward()
    dx, dh0, dWx, dWh, db = rnn.rnn_backward(d["dhs"], cache)
    _close("rnn_backward dx", dx, x.grad)
    _close("rnn_backward dh0", dh0, h0.grad[0])
    _close("rnn_backward dWx", dWx, net.weight_ih_l0.grad.T)
    _close("rnn_backward dWh", dWh, net.weight_hh_l0.grad.T)
    _close("rnn_backward db", db, net.bias_ih_l0.grad,
           hint="hint: db is the gradient of each of PyTorch's two biases (they enter as a sum)")


@pytest.mark.parametrize("final_grads", [False, True])
@pytest.mark.parametrize("T,N,D,H", [(6, 3, 4, 5), (1, 1, 2, 3)])
def test_lstm_forward_backward_match_torch(T, N, D, H, final_grads):
    d = _data(T, N, D, H, 4, seed=T * 10 + H)
    hs, (hT, cT), cache = rnn.lstm_forward(d["x"], d["h0"], d["c0"], d["Wx"], d["Wh"], d["b"])
    net = _torch_net("LSTM", d)
    x = torch.tensor(d["x"], requires_grad=True)
    h0 = torch.tensor(d["h0"][None], requires_grad=True)
    c0 = torch.tensor(d["c0"][None], requires_grad=True)
    out, (thT, tcT) = net(x, (h0, c0))
    _close("lstm_forward hs", hs, out)
    _close("lstm_forward hT", hT, thT[0])
    _close("lstm_forward cT", cT, tcT[0])
    loss = (out * torch.tensor(d["dhs"])).sum()
    dhT, dcT = (d["dhT"], d["dcT"]) if final_grads else (None, None)
    if final_grads:
        loss = loss + (thT[0] * torch.tensor(dhT)).sum() + (tcT[0] * torch.tensor(dcT)).sum()
    loss.backward()
    dx, dh0, dc0, dWx, dWh, db = rnn.lstm_backward(d["dhs"], cache, dhT=dhT, dcT=dcT)
    hint = HINT_T + ("; dhT adds to dhs[-1] (hT is hs[-1]) and dcT starts the cell gradient"
                     if final_grads else "")
    _close("lstm_backward dx", dx, x.grad, hint=hint)
    _close("lstm_backward dh0", dh0, h0.grad[0], hint=hint)
    _close("lstm_backward dc0", dc0, c0.grad[0], hint=hint)
    _close("lstm_backward dWx", dWx, net.weight_ih_l0.grad.T, hint=hint)
    _close("lstm_backward dWh", dWh, net.weight_hh_l0.grad.T, hint=hint)
    _close("lstm_backward db", db, net.bias_ih_l0.grad, hint=hint)


def _torch_state_grads(kind, d):
    """Total dL/dh_t (and dL/dc_t) by stepping a torch cell and retaining every state's grad."""
    D, gH = d["Wx"].shape
    H = d["Wh"].shape[0]
    cell = (torch.nn.RNNCell if kind == "rnn" else torch.nn.LSTMCell)(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(d["Wx"].T)); cell.weight_hh.copy_(torch.tensor(d["Wh"].T))
        cell.bias_ih.copy_(torch.tensor(d["b"])); cell.bias_hh.zero_()
    h, c = torch.tensor(d["h0"]), torch.tensor(d["c0"])
    hs, cs = [], []
    for t in range(d["x"].shape[0]):
        if kind == "rnn":
            h = cell(torch.tensor(d["x"][t]), h)
        else:
            h, c = cell(torch.tensor(d["x"][t]), (h, c))
            c.retain_grad(); cs.append(c)
        h.retain_grad(); hs.append(h)
    loss = sum((h_t * torch.tensor(g)).sum() for h_t, g in zip(hs, d["dhs"]))
    loss.backward()
    return np.stack([h.grad.numpy() for h in hs]), (np.stack([c.grad.numpy() for c in cs]) if cs else None)


def test_rnn_hidden_grads_match_torch_per_step():
    d = _data(7, 3, 4, 5, 1, seed=3)
    _, cache = rnn.rnn_forward(d["x"], d["h0"], d["Wx"], d["Wh"], d["b"])
    want, _ = _torch_state_grads("rnn", d)
    _close("rnn_hidden_grads", rnn.rnn_hidden_grads(d["dhs"], cache), want,
           hint="hint: dL/dh_t is the upstream dhs[t] plus what flows back from step t+1")


def test_lstm_state_grads_match_torch_per_step():
    d = _data(7, 3, 4, 5, 4, seed=4)
    _, _, cache = rnn.lstm_forward(d["x"], d["h0"], d["c0"], d["Wx"], d["Wh"], d["b"])
    want_h, want_c = _torch_state_grads("lstm", d)
    dh, dc = rnn.lstm_state_grads(d["dhs"], cache)
    _close("lstm_state_grads dh", dh, want_h)
    _close("lstm_state_grads dc", dc, want_c, hint="hint: dc_t = dc_{t+1} * f_{t+1} + dh_t * o_t * (1 - tanh^2 c_t)")


# ----------------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("kind,gate", [("rnn", None), ("lstm", "sigmoid"), ("lstm", "relu")])
def test_backward_matches_central_differences(kind, gate):
    g = 1 if kind == "rnn" else 4
    d = _data(4, 2, 3, 3, g, seed=7)
    if kind == "rnn":
        fwd = lambda: rnn.rnn_forward(d["x"], d["h0"], d["Wx"], d["Wh"], d["b"])
        _, cache = fwd()
        names, grads = ("x", "h0", "Wx", "Wh", "b"), rnn.rnn_backward(d["dhs"], cache)
        f = lambda _: float(np.sum(fwd()[0] * d["dhs"]))
    else:
        fwd = lambda: rnn.lstm_forward(d["x"], d["h0"], d["c0"], d["Wx"], d["Wh"], d["b"], gate=gate)
        _, _, cache = fwd()
        names = ("x", "h0", "c0", "Wx", "Wh", "b")
        grads = rnn.lstm_backward(d["dhs"], cache, dhT=d["dhT"], dcT=d["dcT"])

        def f(_):
            hs, (hT, cT), _ = fwd()
            return float(np.sum(hs * d["dhs"]) + np.sum(hT * d["dhT"]) + np.sum(cT * d["dcT"]))
    for name, got in zip(names, grads):
        num = numerical_gradient(f, d[name])
        err = rel_error(got, num)
        assert err < 1e-7, (f"{kind} ({gate}) backward: d{name} differs from central differences, "
                            f"rel_error {err:.2e}")


# ----------------------------------------------------------------------------- dtypes, numerics, errors
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_float32_in_float32_out_and_close_to_float64(kind):
    d64 = _data(5, 2, 3, 4, 1 if kind == "rnn" else 4, seed=11)
    d32 = {k: v.astype(np.float32) for k, v in d64.items()}
    outs = {}
    for key, d in (("32", d32), ("64", d64)):
        if kind == "rnn":
            hs, cache = rnn.rnn_forward(d["x"], d["h0"], d["Wx"], d["Wh"], d["b"])
            outs[key] = (hs, *rnn.rnn_backward(d["dhs"], cache), rnn.rnn_hidden_grads(d["dhs"], cache))
        else:
            hs, (hT, cT), cache = rnn.lstm_forward(d["x"], d["h0"], d["c0"], d["Wx"], d["Wh"], d["b"])
            outs[key] = (hs, hT, cT, *rnn.lstm_backward(d["dhs"], cache, d["dhT"], d["dcT"]),
                         *rnn.lstm_state_grads(d["dhs"], cache))
    for i, (a, b) in enumerate(zip(outs["32"], outs["64"])):
        assert a.dtype == np.float32, f"{kind} output {i}: float32 inputs gave {a.dtype}; keep the input dtype"
        assert b.dtype == np.float64, f"{kind} output {i}: float64 inputs gave {b.dtype}"
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5), f"{kind} output {i}: float32 result far from float64"


def test_large_inputs_do_not_overflow_and_nan_propagates():
    d = _data(4, 2, 3, 3, 4, seed=5)
    d["x"] = d["x"] * 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hs, (hT, cT), cache = rnn.lstm_forward(d["x"], d["h0"], d["c0"], d["Wx"], d["Wh"], d["b"])
        grads = rnn.lstm_backward(d["dhs"], cache)
        hr, rc = rnn.rnn_forward(d["x"], d["h0"], d["Wx"][:, :3], d["Wh"][:, :3], d["b"][:3])
        rnn.rnn_backward(d["dhs"], rc)
    assert np.all(np.isfinite(hs)) and all(np.all(np.isfinite(g)) for g in grads), \
        "lstm at |x| ~ 1e4: non-finite values; use the overflow-free sigmoid kernel"
    x = d["x"].copy(); x[2, 1, 0] = np.nan
    hs, _ = rnn.rnn_forward(x, d["h0"], d["Wx"][:, :3], d["Wh"][:, :3], d["b"][:3])
    assert np.isnan(hs[2:, 1]).all() and np.isfinite(hs[:, 0]).all(), "NaN in x[2, 1] must reach h_t (t >= 2) of sequence 1 only"


@pytest.mark.parametrize("bad,match", [
    (dict(x=np.zeros((3, 4))), r"rnn_forward: x must be a non-empty 3-D array"),
    (dict(x=np.zeros((0, 2, 3))), r"rnn_forward: x must be a non-empty 3-D array"),
    (dict(Wh=np.zeros((4, 5))), r"rnn_forward: Wh must have shape \(H, H\)"),
    (dict(Wx=np.zeros((2, 4))), r"rnn_forward: Wx must have shape \(3, 4\), got \(2, 4\)"),
    (dict(b=np.zeros(5)), r"rnn_forward: b must have shape \(4,\)"),
    (dict(h0=np.zeros((3, 4))), r"rnn_forward: h0 must have shape \(2, 4\)"),
])
def test_rnn_forward_bad_shapes_raise(bad, match):
    args = dict(x=np.zeros((5, 2, 3)), h0=np.zeros((2, 4)), Wx=np.zeros((3, 4)), Wh=np.zeros((4, 4)), b=np.zeros(4))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        rnn.rnn_forward(**args)


def test_lstm_bad_arguments_raise():
    args = dict(x=np.zeros((5, 2, 3)), h0=np.zeros((2, 4)), c0=np.zeros((2, 4)), Wx=np.zeros((3, 16)),
                Wh=np.zeros((4, 16)), b=np.zeros(16))
    with pytest.raises(ValueError, match=r"lstm_forward: Wh must have shape \(H, 4\*H\)"):
        rnn.lstm_forward(**{**args, "Wh": np.zeros((4, 4))})
    with pytest.raises(ValueError, match=r"lstm_forward: c0 must have shape \(2, 4\)"):
        rnn.lstm_forward(**{**args, "c0": np.zeros((2, 5))})
    with pytest.raises(ValueError, match=r"lstm_forward: gate must be 'sigmoid' or 'relu'"):
        rnn.lstm_forward(**args, gate="tanh")
    with pytest.raises(TypeError, match=r"lstm_forward: x must be a real number or array"):
        rnn.lstm_forward(**{**args, "x": "abc"})
    hs, _, cache = rnn.lstm_forward(**args)
    with pytest.raises(ValueError, match=r"lstm_backward: dhs must have shape \(5, 2, 4\)"):
        rnn.lstm_backward(np.zeros((5, 2, 3)), cache)
    with pytest.raises(ValueError, match=r"lstm_backward: dcT must have shape \(2, 4\)"):
        rnn.lstm_backward(np.zeros_like(hs), cache, dcT=np.zeros(4))
    _, rc = rnn.rnn_forward(args["x"], args["h0"], args["Wx"][:, :4], args["Wh"][:, :4], args["b"][:4])
    with pytest.raises(ValueError, match=r"rnn_backward: dhs must have shape \(5, 2, 4\)"):
        rnn.rnn_backward(np.zeros((4, 2, 4)), rc)


# ----------------------------------------------------------------------------- experiment helpers
def test_recall_task_label_is_the_first_symbol():
    x, y = TT.recall_task(12, 50, 4, seed=3)
    assert x.shape == (12, 50, 5) and y.shape == (50,), f"recall_task shapes {x.shape}, {y.shape}"
    assert np.array_equal(x[0, :, :4].argmax(1), y), "the label must be the symbol shown at step 1"
    assert np.all(x[:, :, :4].sum(2) == 1), "every step shows exactly one symbol"
    assert np.array_equal(x[:, :, 4], np.r_[[np.ones(50)], np.zeros((11, 50))]), "marker only at step 1"
    x2, y2 = TT.recall_task(12, 50, 4, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2), "same seed must give the same batch"
    with pytest.raises(ValueError, match="recall_task: T must be an int >= 1"):
        TT.recall_task(0, 5)


def test_init_recurrent_sets_the_spectral_radius():
    for rho in (0.5, 2.5):
        p = TT.init_recurrent("rnn", 5, 16, 4, radius=rho, seed=1)
        got = float(torch.linalg.eigvals(torch.tensor(p["Wh"])).abs().max())
        assert got == pytest.approx(rho, rel=1e-10), f"init_recurrent(radius={rho}): eigenvalues give {got}"
    with pytest.raises(ValueError, match="init_recurrent: radius applies to the rnn cell only"):
        TT.init_recurrent("lstm", 5, 16, 4, radius=1.0)
    with pytest.raises(ValueError, match="init_recurrent: cell must be one of"):
        TT.init_recurrent("gru", 5, 16, 4)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_recurrent_loss_matches_torch_autograd(cell):
    p = TT.init_recurrent(cell, 5, 6, 4, seed=2, forget_bias=1.0 if cell == "lstm" else 0.0)
    x, y = TT.recall_task(7, 9, 4, seed=2)
    out = TT.recurrent_loss(p, x, y, cell)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    h = c = torch.zeros(9, 6, dtype=torch.float64)
    hs = []
    for t in range(7):
        a = torch.tensor(x[t]) @ tp["Wx"] + h @ tp["Wh"] + tp["b"]
        if cell == "rnn":
            h = torch.tanh(a)
        else:
            i, f, g, o = a.split(6, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        h.retain_grad(); hs.append(h)
    loss = torch.nn.functional.cross_entropy(h @ tp["Wy"] + tp["by"], torch.tensor(y))
    loss.backward()
    assert out.loss == pytest.approx(loss.item(), rel=1e-12), f"recurrent_loss({cell}) loss"
    for k in p:
        _close(f"recurrent_loss({cell}) grad {k}", out.grads[k], tp[k].grad, hint="")
    want = np.array([float(torch.linalg.norm(h_t.grad)) for h_t in hs])
    _close(f"recurrent_loss({cell}) dh_norms", out.dh_norms, want, hint="")


# ----------------------------------------------------------------------------- the chapter's conclusions
def _dh_profile(cell, seed, T, **kw):
    rng = np.random.default_rng(seed)
    p = TT.init_recurrent(cell, 5, 32, 4, seed=rng, **kw)
    x, y = TT.recall_task(T, 256, 4, seed=rng)
    return p, TT.recurrent_loss(p, x, y, cell).dh_norms


@pytest.mark.parametrize("seed", SEEDS)
def test_gradient_obeys_the_spectral_norm_bound(seed):
    """||dL/dh_t|| <= ||Wh||_2^(T-t) ||dL/dh_T|| (the derivation), here with ||Wh||_2 = 0.9."""
    rng = np.random.default_rng(seed)
    p = TT.init_recurrent("rnn", 5, 32, 4, seed=rng)
    p["Wh"] *= 0.9 / np.linalg.norm(p["Wh"], 2)
    x, y = TT.recall_task(40, 64, 4, seed=rng)
    d = TT.recurrent_loss(p, x, y, "rnn").dh_norms
    bound = d[-1] * 0.9 ** np.arange(39, -1, -1)
    assert np.all(d <= bound * (1 + 1e-9)), \
        f"seed {seed}: ||dL/dh_t|| exceeds 0.9^(T-t) ||dL/dh_T|| at t = {np.flatnonzero(d > bound * (1 + 1e-9))}"


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_rnn_gradient_decays_geometrically_below_radius_one(rho):
    for seed in SEEDS:
        _, d = _dh_profile("rnn", seed, 50, radius=rho)
        logd = np.log(d)
        slope, icpt = np.polyfit(np.arange(50), logd, 1)
        resid = logd - (slope * np.arange(50) + icpt)
        r2 = 1 - resid.var() / logd.var()
        factor = math.exp(-slope)
        assert factor < 1 and r2 > 0.99, (f"rho={rho}, seed {seed}: per-step factor {factor:.3f} "
                                          f"(expected < 1), straight-line fit R^2 {r2:.4f} (expected > 0.99)")
        assert 0.5 * rho < factor < 1.05 * rho, f"rho={rho}, seed {seed}: per-step factor {factor:.3f} not near rho"


@pytest.mark.parametrize("rho", [1.5, 2.5])
def test_rnn_gradient_grows_above_radius_one(rho):
    for seed in SEEDS:
        _, d = _dh_profile("rnn", seed, 50, radius=rho)
        assert d[0] / d[-1] > 1, f"rho={rho}, seed {seed}: ||dL/dh_1|| / ||dL/dh_T|| = {d[0] / d[-1]:.2e}, expected > 1"


def test_forget_path_gain_bounded_for_sigmoid_gates_not_for_relu():
    for seed in SEEDS:
        for bias in (0.0, 1.0, 3.0):
            rng = np.random.default_rng(seed)
            p = TT.init_recurrent("lstm", 5, 32, 4, forget_bias=bias, seed=rng)
            x, _ = TT.recall_task(30, 256, 4, seed=rng)
            sig, relu = TT.forget_path_gain(p, x, "sigmoid"), TT.forget_path_gain(p, x, "relu")
            assert np.all((sig > 0) & (sig < 1)), f"seed {seed}, bias {bias}: sigmoid cell-path factor outside (0, 1)"
            gates = rnn.lstm_forward(x, np.zeros((256, 32)), np.zeros((256, 32)), p["Wx"], p["Wh"], p["b"])[2].gates
            assert np.allclose(sig, np.prod(gates[1:, :, 32:64], axis=0)), "forget_path_gain is the product of f_2..f_T"
            if bias == 0.0:
                assert np.mean(relu == 0) > 0.5, f"seed {seed}: ReLU gates at bias 0 should cut most paths to exactly 0"
            if bias == 3.0:
                assert np.median(relu) > 1e6, f"seed {seed}: ReLU gates at bias 3 should blow the path up (median {np.median(relu):.1e})"


TASK = dict(T=30, hidden=32, n_classes=4, steps=300, batch=32, lr=3e-3)   # as in the chapter


@pytest.fixture(scope="module")
def task_runs():
    models = {"rnn": dict(cell="rnn"), "lstm0": dict(cell="lstm"), "lstm3": dict(cell="lstm", forget_bias=3.0),
              "relu3": dict(cell="lstm", forget_bias=3.0, gate="relu")}
    return {k: [TT.train_recurrent(seed=s, **TASK, **kw) for s in SEEDS] for k, kw in models.items()}


def test_only_the_lstm_with_open_forget_gates_learns_the_long_dependency(task_runs):
    for k in ("rnn", "lstm0", "lstm3"):
        for s, r in zip(SEEDS, task_runs[k]):
            assert not diverged(r.loss, 4), f"{k}, seed {s}: diverged"
            ratio = r.dh_init[0] / r.dh_init[-1]
            if k == "lstm3":  # seeds 0-9 end at 0.945-1.0, but Adam's loss spikes make the accuracy at a fixed
                # step noisy: with OpenBLAS's generic kernel seed 1 ends at 0.76-0.78 (0.72 after 400 steps). "Learns"
                # = far above chance (0.25) and every RNN / default-LSTM run (0.17-0.30 over seeds 0-9)
                assert r.accuracy >= 0.7, f"LSTM (forget bias 3), seed {s}: accuracy {r.accuracy:.2f} < 0.7"
                assert ratio > 1e-2, f"LSTM (forget bias 3), seed {s}: ||dL/dh_1||/||dL/dh_T|| at init {ratio:.1e}"
            else:
                assert r.accuracy <= 0.4, f"{k}, seed {s}: accuracy {r.accuracy:.2f}, expected chance level (0.25)"
                assert ratio < 1e-4, f"{k}, seed {s}: ||dL/dh_1||/||dL/dh_T|| at init {ratio:.1e}, expected vanishing"


def test_after_training_only_the_open_gate_lstm_carries_the_gradient_to_step_1(task_runs):
    """The chapter: after training, the working LSTM's gradient at step 1 is at least of the order of
    the one at step T; in the two others it still vanishes. Seeds 0-9, this machine's and OpenBLAS's generic
    kernel: LSTM ratio 0.29-480, the others at most 5e-6."""
    for k in ("rnn", "lstm0", "lstm3"):
        for s, r in zip(SEEDS, task_runs[k]):
            ratio = r.dh_final[0] / r.dh_final[-1]
            if k == "lstm3":
                assert ratio > 0.1, (f"LSTM (forget bias 3), seed {s}: after training ||dL/dh_1||/||dL/dh_T|| = "
                                     f"{ratio:.1e}, expected at least of the same order (> 0.1)")
            else:
                assert ratio < 1e-3, (f"{k}, seed {s}: after training ||dL/dh_1||/||dL/dh_T|| = {ratio:.1e}, "
                                      "expected still vanishing (< 1e-3)")


def test_relu_gates_give_much_larger_gradient_spikes(task_runs):
    relu = max(np.nanmax(r.grad_norm) for r in task_runs["relu3"])
    sig = max(np.nanmax(r.grad_norm) for r in task_runs["lstm3"])
    assert relu > 3 * sig, f"largest gradient norm with ReLU gates {relu:.0f}, with sigmoid gates {sig:.0f}"


def test_clipping_bounds_the_update_of_an_exploding_rnn_and_is_inert_when_gradients_vanish():
    sgd = dict(T=30, hidden=32, n_classes=4, steps=300, batch=32, lr=1.0, optimizer="sgd")
    free = [TT.train_recurrent(seed=s, radius=2.5, **sgd) for s in SEEDS]
    clip = [TT.train_recurrent(seed=s, radius=2.5, clip_norm=1.0, **sgd) for s in SEEDS]
    for s, f, c in zip(SEEDS, free, clip):
        assert np.nanmax(c.update_norm) <= 1.0 * (1 + 1e-6), \
            f"seed {s}: clipped SGD update {np.nanmax(c.update_norm):.3g} exceeds lr * c = 1"
        assert not c.diverged, f"seed {s}: the clipped run diverged"
        assert np.nanmax(f.update_norm) > 100, f"seed {s}: without clipping the largest update is only {np.nanmax(f.update_norm):.3g}"
        assert np.nanmax(c.grad_norm) > 10, f"seed {s}: raw gradient of the clipped run only reached {np.nanmax(c.grad_norm):.3g}"
    assert max(np.nanmax(c.grad_norm) for c in clip) > 100, "clipping bounds the step, not the raw gradient: expected spikes > 100"
    assert any(f.diverged for f in free), "no unclipped exploding run diverged; the chapter says some do"
    for s in SEEDS:
        a = TT.train_recurrent(seed=s, **sgd)
        b = TT.train_recurrent(seed=s, clip_norm=1.0, **sgd)
        assert np.nanmax(a.grad_norm) < 1, f"seed {s}: vanishing RNN gradient norm reached {np.nanmax(a.grad_norm):.3g}"
        assert np.array_equal(a.loss, b.loss), f"seed {s}: clipping changed a run whose gradients never exceed c"
