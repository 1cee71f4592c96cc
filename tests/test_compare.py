"""actgrad.compare: the activation sweep is plain SGD+momentum on the digits, checked step for step
against an independent PyTorch run from the same initial weights and mini-batch order; its loss at
initialisation against PyTorch's cross-entropy; activation_cost against an independent timeit; and
chapter 12's conclusions across five seeds."""
import math

import numpy as np
import pytest
import torch

import actgrad
from actgrad import compare, datasets
from actgrad.mlp import MLP

TORCH_ACT = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid,
             "gelu": torch.nn.GELU, "selu": torch.nn.SELU}


def torch_run(activation, hidden, seed, epochs, lr, momentum, batch_size):
    """The same training in PyTorch (float64): weights copied from a fresh actgrad MLP with the same
    seed and init (initial state only), batches from the same permutations, torch.optim.SGD."""
    d = datasets.digits(split=True, test_size=0.25, seed=0)
    init_model = MLP([64, *hidden, 10], activation=activation, init=compare.default_init(activation), seed=seed)
    layers, sizes = [], [64, *hidden, 10]
    for l in range(1, len(sizes)):
        lin = torch.nn.Linear(sizes[l - 1], sizes[l]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(init_model.params[f"W{l}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(init_model.params[f"b{l}"].copy()))
        layers.append(lin)
        if l < len(sizes) - 1:
            layers.append(TORCH_ACT[activation]())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    X, y = torch.from_numpy(d.X_train), torch.from_numpy(d.y_train)
    rng = np.random.default_rng(seed)
    losses, accs = [], []
    for _ in range(epochs):
        perm = rng.permutation(len(X))
        total = 0.0
        for s in range(0, len(X), batch_size):
            idx = torch.from_numpy(perm[s:s + batch_size])
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(X))
        with torch.no_grad():
            accs.append(float((net(torch.from_numpy(d.X_test)).argmax(1).numpy() == d.y_test).mean()))
    return np.array(losses), np.array(accs)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sweep_matches_torch_sgd(activation):
    kw = dict(hidden=(16, 16), epochs=2, lr=0.05, momentum=0.9, batch_size=64)
    res = compare.activation_sweep([activation], seeds=(3,), **kw)
    loss_t, acc_t = torch_run(activation, seed=3, **kw)
    np.testing.assert_allclose(res.curves("loss")[activation][0], loss_t, rtol=1e-9)
    np.testing.assert_allclose(res.curves("val_accuracy")[activation][0], acc_t, atol=1e-12)


def test_sweep_shapes_and_determinism():
    a = compare.activation_sweep(["relu", "sigmoid"], seeds=(0, 1), hidden=(8,), epochs=2)
    b = compare.activation_sweep(["relu", "sigmoid"], seeds=(0, 1), hidden=(8,), epochs=2)
    assert a.activations == ("relu", "sigmoid") and a.seeds == (0, 1)
    for name in a.activations:
        assert a.curves("val_accuracy")[name].shape == (2, 2), \
            f"SweepResult.curves('val_accuracy')[{name!r}]: expected (seeds, epochs) = (2, 2)"
        np.testing.assert_array_equal(a.curves("loss")[name], b.curves("loss")[name])
        assert a.final()[name].shape == (2,), f"SweepResult.final()[{name!r}]: expected one value per seed"
        assert a.grad_ratio()[name].shape == (2,), f"SweepResult.grad_ratio()[{name!r}]: expected one value per seed"
        assert a.seconds[name] > 0, f"SweepResult.seconds[{name!r}] should be a positive duration"
    # different seeds give different initial weights, hence different trajectories
    assert not np.array_equal(a.curves("loss")["relu"][0], a.curves("loss")["relu"][1]), \
        "activation_sweep: seeds 0 and 1 gave identical loss curves; is the seed passed to MLP and the batch order?"


def test_grad_ratio_is_first_over_last_layer_mean_norm():
    res = compare.activation_sweep(["tanh"], seeds=(0,), hidden=(8, 8), epochs=1)
    h = res.histories["tanh"][0]
    assert h.grad_norms.shape[1] == 3, f"History.grad_norms: expected one column per weight layer (3), got {h.grad_norms.shape}"
    expected = np.mean(h.grad_norms[:, 0]) / np.mean(h.grad_norms[:, 2])
    assert res.grad_ratio()["tanh"][0] == pytest.approx(expected)


def test_default_init_pairs():
    for act, expected in (("sigmoid", "xavier_sigmoid"), ("tanh", "xavier"), ("selu", "lecun"), ("relu", "he"),
                          ("gelu", "he")):
        assert compare.default_init(act) == expected, \
            f"default_init({act!r}) = {compare.default_init(act)!r}, expected {expected!r} (matched to the slope at 0)"


@pytest.mark.parametrize("bad", [["nope"], [], ["relu", "swish"]])
def test_bad_activation_lists_raise(bad):
    with pytest.raises(ValueError, match="activation_sweep"):
        compare.activation_sweep(bad, seeds=(0,), epochs=1)


def test_bad_field_raises():
    res = compare.activation_sweep(["relu"], seeds=(0,), hidden=(4,), epochs=1)
    with pytest.raises(ValueError, match="curves"):
        res.curves("weights")


# ----------------------------------------------------------------------------- activation_cost
def _independent_ratio(name, n=200_000, repeats=9):
    """Forward+backward time of `name` over ReLU's, timed here with timeit (min of repeats)."""
    import timeit
    rng = np.random.default_rng(123)
    z, delta = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    t = {}
    for a in ("relu", name):
        rec = actgrad.ACTIVATIONS[a]
        t[a] = min(timeit.repeat(lambda: (rec.fn(z), delta * rec.prime(z)), number=3, repeat=repeats))
    return t[name] / t["relu"]


def test_activation_cost_relu_is_the_reference_and_fields_are_consistent():
    c = compare.activation_cost(["sigmoid", "mish"], n=100_000, repeats=5)
    assert c.names == ("relu", "sigmoid", "mish"), \
        f"activation_cost(['sigmoid', 'mish']).names: expected relu added as the reference first, got {c.names}"
    assert c.ratio["relu"] == 1.0, f"activation_cost: ratio['relu'] must be exactly 1, got {c.ratio['relu']}"
    assert (c.n, c.repeats, c.dtype) == (100_000, 5, "float32"), f"activation_cost settings: got {c.n, c.repeats, c.dtype}"
    for a in c.names:
        assert c.samples[a].shape == (5,) and np.all(c.samples[a] > 0), \
            f"activation_cost: samples[{a!r}] should be 5 positive timings, got {c.samples[a]}"
        assert c.seconds[a] == pytest.approx(np.median(c.samples[a])), \
            f"activation_cost: seconds[{a!r}] should be the median of its samples"
        assert c.ratio[a] == pytest.approx(c.seconds[a] / c.seconds["relu"])


def test_activation_cost_agrees_with_an_independent_timing():
    # Mish needs exp, log1p and tanh per element (and more for its derivative); ReLU a comparison.
    # Timings on a shared machine are noisy, so the check is loose: same side of 1, same order.
    c = compare.activation_cost(["mish", "leaky_relu"], n=200_000, repeats=7)
    indep = _independent_ratio("mish")
    assert c.ratio["mish"] > 2 and indep > 2, \
        f"mish forward+backward should cost well over 2x ReLU: activation_cost {c.ratio['mish']:.2f}, timeit {indep:.2f}"
    assert 1 / 3 < c.ratio["mish"] / indep < 3, \
        (f"activation_cost ratio for mish {c.ratio['mish']:.2f} vs an independent timeit ratio {indep:.2f}: "
         "differ by more than 3x; is each sample timing exactly one forward and one backward pass on the same array?")
    assert c.ratio["leaky_relu"] < c.ratio["mish"], \
        f"leaky_relu (a comparison and a multiply) should be cheaper than mish, got {c.ratio}"


@pytest.mark.parametrize("kwargs, err", [
    (dict(names=["nope"]), ValueError), (dict(names=["relu", "relu"]), ValueError),
    (dict(names="relu"), TypeError), (dict(n=10), ValueError), (dict(repeats=1), ValueError),
    (dict(n=2.5e5), ValueError), (dict(dtype=np.int32), TypeError), (dict(dtype="complex128"), TypeError),
])
def test_activation_cost_rejects_bad_arguments(kwargs, err):
    with pytest.raises(err, match="activation_cost"):
        compare.activation_cost(**kwargs)


# ----------------------------------------------------------------------------- inits and loss at init
def test_xavier_sigmoid_is_glorot_uniform_with_gain_four():
    # Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)); std = b / sqrt(3)
    W = compare.XAVIER_SIGMOID.weight((400, 600), np.random.default_rng(0))
    b = 4.0 * math.sqrt(6 / (400 + 600))
    assert np.abs(W).max() <= b and np.abs(W).max() > 0.99 * b, \
        f"XAVIER_SIGMOID: weights should fill U(-{b:.4f}, {b:.4f}), max |W| = {np.abs(W).max():.4f}"
    assert W.std() == pytest.approx(b / math.sqrt(3), rel=0.01), \
        f"XAVIER_SIGMOID: std {W.std():.4f}, expected gain 4 x Xavier = {b / math.sqrt(3):.4f}"
    assert 1 / actgrad.activations.sigmoid_prime(0.0) == compare.SIGMOID_GAIN, "SIGMOID_GAIN should be 1/sigma'(0)"


def test_init_loss_matches_torch_and_init_dict_is_honoured():
    res = compare.activation_sweep(["tanh", "sigmoid"], seeds=(0, 1), hidden=(16,), epochs=1,
                                   init={"sigmoid": "xavier"})
    d = datasets.digits(split=True, test_size=0.25, seed=0)
    for act, init in (("tanh", "xavier"), ("sigmoid", "xavier")):
        for i, seed in enumerate((0, 1)):
            m = MLP([64, 16, 10], activation=act, init=init, seed=seed)
            h = torch.from_numpy(d.X_train) @ torch.from_numpy(m.params["W1"]) + torch.from_numpy(m.params["b1"])
            h = torch.tanh(h) if act == "tanh" else torch.sigmoid(h)
            logits = h @ torch.from_numpy(m.params["W2"]) + torch.from_numpy(m.params["b2"])
            expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(d.y_train)).item()
            assert res.init_loss[act][i] == pytest.approx(expected, rel=1e-10), \
                (f"activation_sweep init_loss[{act!r}][seed {seed}] = {res.init_loss[act][i]}, torch cross-entropy "
                 f"of the same initial net {expected}; was the init dict ignored?")


# ----------------------------------------------------------------------------- chapter 12's conclusions
CH12 = dict(seeds=(0, 1, 2, 3, 4), hidden=(64, 64, 64), epochs=8, lr=0.1, momentum=0.9, batch_size=128)
RELU_FAMILY = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus", "mish"]


@pytest.fixture(scope="module")
def ch12_sweep():
    return compare.activation_sweep(**CH12), compare.activation_sweep(["sigmoid"], init="xavier", **CH12)


def test_sigmoid_stalls_with_gain_one_and_trains_with_gain_four(ch12_sweep):
    res, res_x = ch12_sweep
    x_best, g4_final = res_x.best()["sigmoid"], res.final()["sigmoid"]
    assert np.all(x_best < 0.3), f"sigmoid + Xavier gain 1: expected near-chance accuracy on every seed, best {x_best}"
    assert np.all(g4_final > 0.85), f"sigmoid + Xavier gain 4: expected > 0.85 on every seed, final {g4_final}"
    others = [a for a in res.activations if a not in ("sigmoid", "softplus")]
    assert g4_final.mean() < min(res.final()[a].mean() for a in others), \
        "the text says gain-4 sigmoid's mean stays below tanh's and every ReLU-family mean except softplus's"
    assert res_x.grad_ratio()["sigmoid"].max() < 0.1 < res.grad_ratio()["sigmoid"].min(), \
        "first/last gradient ratio should be tiny with gain 1 and much larger with gain 4"


def test_tanh_is_among_the_best(ch12_sweep):
    res, _ = ch12_sweep
    final = res.final()
    best = max(final, key=lambda a: final[a].mean())
    gap = final[best].mean() - final["tanh"].mean()
    assert gap <= max(final[best].std(), final["tanh"].std()), \
        f"tanh's mean final accuracy {final['tanh'].mean():.3f} should be within one seed std of the best ({best})"


def test_softplus_is_the_low_end_of_the_relu_family_and_the_rest_are_close(ch12_sweep):
    res, _ = ch12_sweep
    final = res.final()
    means = {a: final[a].mean() for a in RELU_FAMILY}
    seed_std = np.mean([final[a].std() for a in RELU_FAMILY])
    assert min(means, key=means.get) == "softplus", f"softplus should have the lowest mean of the family: {means}"
    rest = [means[a] for a in RELU_FAMILY if a != "softplus"]
    assert np.median(rest) - means["softplus"] > 2 * seed_std, \
        f"softplus ({means['softplus']:.3f}) should be below the family's median by more than two seed stds ({seed_std:.3f})"
    assert max(rest) - min(rest) < 3 * seed_std, \
        f"without softplus the family's means should span under three seed stds; {rest}, std {seed_std:.3f}"


def test_loss_at_init_flags_the_two_non_centred_cases(ch12_sweep):
    res, res_x = ch12_sweep
    ln10 = math.log(10)
    for a in ("tanh", "relu", "gelu", "silu", "mish", "selu"):
        assert np.all(np.abs(res.init_loss[a] / ln10 - 1) < 0.25), \
            f"{a}: loss at init {res.init_loss[a]} should be close to ln 10 = {ln10:.3f}"
    assert np.all(np.abs(res_x.init_loss["sigmoid"] / ln10 - 1) < 0.25), \
        f"sigmoid + Xavier gain 1: loss at init {res_x.init_loss['sigmoid']} should be close to ln 10"
    for a in ("sigmoid", "softplus"):
        assert res.init_loss[a].mean() > 1.25 * ln10, \
            f"{a} (gain-4 sigmoid / softplus with He): the text says the loss at init is well above ln 10, got {res.init_loss[a]}"
