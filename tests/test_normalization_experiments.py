"""The chapter "Normalization and residual connections": the experiment's gradients against PyTorch
autograd, and the chapter's conclusions asserted across three seeds (so the prose and the evidence
cannot drift apart).

Oracles: PyTorch autograd in float64 (the same network rebuilt from the NumPy parameters), the
book's divergence rule (``actgrad.experiments.diverged``: non-finite or > 10 ln K) and the loss of a
uniform guess, ln 10."""
import math

import numpy as np
import pytest
import torch

from actgrad.experiments import normalization as N

SEEDS = (0, 1, 2)
LN10 = math.log(10)
# The chapter's settings: sigmoid, 30 blocks of width 32, SGD for 6 epochs at a good and a bad rate.
GOOD_LR, BAD_LR = 0.03, 3.0


# ----------------------------------------------------------------------------- against PyTorch
def _torch_forward(net, variant, X):
    """The same network in PyTorch (float64, training mode), from the NumPy parameters.
    Returns the logits and the list of block inputs h_0..h_{depth-1} (with retained gradients)."""
    P = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}

    def lin(prefix, h):
        return h @ P[prefix + "W"] + P[prefix + "b"]

    def bn(prefix, h):
        return torch.nn.functional.batch_norm(h, None, None, P[prefix + "gamma"], P[prefix + "beta"],
                                              training=True, eps=1e-5)

    def ln(prefix, h):
        return torch.nn.functional.layer_norm(h, (h.shape[1],), P[prefix + "gamma"], P[prefix + "beta"], 1e-5)

    h = lin("0.", torch.tensor(X))
    inputs = []
    for l in range(1, len(net) - 1):
        h.retain_grad()
        inputs.append(h)
        p = f"{l}."
        if variant == "plain":
            h = torch.sigmoid(lin(p + "0.", h))
        elif variant == "batchnorm":
            h = torch.sigmoid(bn(p + "1.", lin(p + "0.", h)))
        elif variant == "layernorm":
            h = torch.sigmoid(ln(p + "1.", lin(p + "0.", h)))
        elif variant == "residual":
            h = h + lin(p + "1.", torch.sigmoid(h))
        else:
            h = h + lin(p + "2.", torch.sigmoid(bn(p + "0.", h)))
    return lin(f"{len(net) - 1}.", h), inputs, P


@pytest.mark.parametrize("variant", N.VARIANTS)
def test_gradients_and_signal_match_torch_autograd(variant):
    rng = np.random.default_rng(3)
    X, y = rng.random((16, 64)), rng.integers(0, 10, 16)
    net = N.deep_net(variant, "sigmoid", depth=4, width=6, seed=1, branch_scale=0.7)
    loss, grads, signal, _ = N._forward_backward(net, X, y, measure=True)
    logits, inputs, P = _torch_forward(net, variant, X)
    t_loss = torch.nn.functional.cross_entropy(logits, torch.tensor(y))
    t_loss.backward()
    assert abs(loss - t_loss.item()) < 1e-12, f"{variant}: loss {loss} vs torch {t_loss.item()}"
    assert sorted(grads) == sorted(P), f"{variant}: grad keys {sorted(grads)} vs params {sorted(P)}"
    for k, t in P.items():
        np.testing.assert_allclose(grads[k], t.grad.numpy(), rtol=1e-9, atol=1e-13,
                                   err_msg=f"{variant}: dL/d{k} vs torch autograd")
    np.testing.assert_allclose(signal, [h.grad.norm().item() for h in inputs], rtol=1e-9,
                               err_msg=f"{variant}: ||dL/dh_(l-1)|| vs torch autograd")
    for l in range(1, 5):
        assert N.weight_key(variant, l) in net.params and net.params[N.weight_key(variant, l)].shape == (6, 6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="deep_net.*variant"):
        N.deep_net("resnet")
    with pytest.raises(ValueError, match="train_deep_net.*lr"):
        N.train_deep_net(lr=-1.0)


# ----------------------------------------------------------------------------- at initialization
@pytest.fixture(scope="module")
def profiles():
    return {(a, v): [N.gradient_profile(v, a, depth=30, seed=s) for s in SEEDS]
            for a in ("sigmoid", "tanh", "relu") for v in N.VARIANTS}


def _ratios(ps):
    return np.array([p.signal[0] / p.signal[-1] for p in ps])


def test_plain_sigmoid_vanishes_and_batchnorm_and_residual_keep_the_gradient(profiles):
    plain, bn = _ratios(profiles["sigmoid", "plain"]), _ratios(profiles["sigmoid", "batchnorm"])
    res, res_bn = _ratios(profiles["sigmoid", "residual"]), _ratios(profiles["sigmoid", "residual_bn"])
    assert np.all(plain < 1e-15), f"plain sigmoid, first/last block gradient {plain}: expected < 1e-15"
    for name, r in (("batchnorm", bn), ("residual", res), ("residual_bn", res_bn)):
        assert np.all((0.2 < r) & (r < 5)), f"sigmoid {name}: first/last block gradient {r}, expected in (0.2, 5)"


def test_layernorm_does_not_rescue_sigmoid_and_examples_collapse(profiles):
    ps = profiles["sigmoid", "layernorm"]
    r = _ratios(ps)
    assert np.all(r < 1e-9), f"sigmoid layernorm, first/last block gradient {r}: expected < 1e-9"
    spread_last = np.array([p.spread[-1] for p in ps])
    spread_bn = np.array([p.spread[-1] for p in profiles["sigmoid", "batchnorm"]])
    assert np.all(spread_last < 1e-9) and np.all(spread_bn > 0.1), (spread_last, spread_bn)


def test_identity_path_keeps_every_block_above_half_the_top_gradient(profiles):
    for a in ("sigmoid", "tanh", "relu"):
        for v in ("residual", "residual_bn"):
            for s, p in zip(SEEDS, profiles[a, v]):
                low = p.signal.min() / p.signal[-1]
                assert low > 0.5, f"{a} {v} seed {s}: min over blocks / last block = {low:.3g}"


def test_batchnorm_with_relu_grows_the_gradient_towards_the_input(profiles):
    r = _ratios(profiles["relu", "batchnorm"])
    assert np.all(r > 100), f"relu batchnorm, first/last block gradient {r}: expected > 100"


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def sweeps():
    return {v: N.lr_sweep(v, "sigmoid", lrs=(GOOD_LR, BAD_LR), seeds=SEEDS, epochs=6) for v in N.VARIANTS}


def test_at_a_good_rate_plain_and_layernorm_stay_at_chance_the_others_learn(sweeps):
    for v in ("plain", "layernorm"):
        final = sweeps[v].final_loss[0]
        assert np.all(final > 0.98 * LN10), f"{v} at lr {GOOD_LR}: final loss {final}, expected ~ln 10"
        acc = [r.accuracy[-1] for r in sweeps[v].runs[0]]
        assert max(acc) < 0.2, f"{v}: test accuracy {acc}"
    bn, res, res_bn = (sweeps[v].final_loss[0] for v in ("batchnorm", "residual", "residual_bn"))
    assert np.all(bn < 1.6) and np.all(res < 1.2) and np.all(res_bn < 0.6), (bn, res, res_bn)
    assert np.all(res_bn < res) and np.all(res < bn), f"per seed: residual_bn {res_bn} < residual {res} < batchnorm {bn}"
    assert not any(sweeps[v].diverged[0].any() for v in N.VARIANTS)


def test_plain_first_block_gradient_stays_vanished_during_training(sweeps):
    for r in sweeps["plain"].runs[0]:
        assert np.all(r.weight_grad[:, 0] < 1e-15), r.weight_grad[:, 0]


def test_normalization_is_not_a_cure_for_a_bad_learning_rate(sweeps):
    for v in ("residual", "residual_bn"):
        assert sweeps[v].diverged[1].all(), f"{v} at lr {BAD_LR}: diverged {sweeps[v].diverged[1]}"
        for r in sweeps[v].runs[1]:
            assert np.isnan(r.loss[-1]), "a diverged run stops"
    bn = sweeps["batchnorm"]
    assert not bn.diverged[1].any()
    # "learns far less". Over seeds 0-9 the final loss rose by 0.29-0.65 and the test accuracy fell from
    # 0.84-0.92 to 0.13-0.22; a last-bit change in the loss's rounding moved one of our seeds' rise from
    # 0.46 to 0.27, so the margins are set from that spread, not from three lucky runs.
    assert np.all(bn.final_loss[1] > bn.final_loss[0] + 0.15), \
        f"batchnorm final loss per seed at lr {GOOD_LR}: {bn.final_loss[0]}, at lr {BAD_LR}: {bn.final_loss[1]}"
    acc = np.array([r.accuracy[-1] for r in bn.runs[1]])
    good = np.array([r.accuracy[-1] for r in bn.runs[0]])
    assert np.all(acc < 0.4) and np.all(good - acc > 0.4), \
        f"batchnorm test accuracy per seed at lr {GOOD_LR}: {good}, at lr {BAD_LR}: {acc}"


def test_other_ratios_quoted_in_the_chapter(profiles):
    tanh_ln, tanh_bn = _ratios(profiles["tanh", "layernorm"]), _ratios(profiles["tanh", "batchnorm"])
    relu_plain = _ratios(profiles["relu", "plain"])
    assert np.all(tanh_ln > 1), f"tanh layernorm keeps the gradient: ratios {tanh_ln}"
    assert np.all(tanh_bn > 10), f"tanh batchnorm grows the gradient towards the input: ratios {tanh_bn}"
    assert np.all((0.1 < relu_plain) & (relu_plain < 1)), f"relu plain: ratios {relu_plain}"
    for a in ("sigmoid", "tanh", "relu"):
        for v in ("residual", "residual_bn"):
            r = _ratios(profiles[a, v])
            assert np.all(r < 4), f"{a} {v}: residual variants stay within a factor of 4, ratios {r}"


def test_during_training_first_and_last_block_gradients_stay_comparable(sweeps):
    for v in ("batchnorm", "residual", "residual_bn"):
        for r in sweeps[v].runs[0]:
            ratio = r.weight_grad[:, 0] / r.weight_grad[:, -1]
            assert np.all((0.3 < ratio) & (ratio < 10)), f"{v}: ||dW_1|| / ||dW_30|| per epoch {ratio}"


def test_bad_rate_plain_still_at_chance_and_residuals_diverge_in_the_first_epoch(sweeps):
    assert np.all(sweeps["plain"].final_loss[1] > 0.98 * LN10), sweeps["plain"].final_loss[1]
    for v in ("residual", "residual_bn"):
        for r in sweeps[v].runs[1]:
            assert np.isnan(r.loss[1]), f"{v} at lr {BAD_LR}: diverged after epoch 1, loss {r.loss}"


def test_unscaled_relu_residual_stream_explodes_and_the_scaled_one_does_not():
    from actgrad.datasets import digits
    X = digits(split=True, seed=0).X_train[:256]
    for seed in SEEDS:
        growth = {}
        for scale in (1.0, None):
            net = N.deep_net("residual", "relu", depth=30, branch_scale=scale, seed=seed)
            h = h0 = net[0](X)
            for l in range(1, 31):
                h = net[l](h)
            growth[scale] = h.std() / h0.std()
        assert growth[1.0] > 1e3 and growth[None] < 3, f"seed {seed}: stream std growth over 30 blocks {growth}"
