"""actgrad.experiments against independent oracles: published constants (SELU), numerical
quadrature, PyTorch autograd (float64), the variance-propagation theory of Glorot & Bengio (2010)
and He et al. (2015), and Nielsen's (2015, ch. 5) reported ordering of per-layer learning speeds."""
import math

import numpy as np
import pytest
import torch

import actgrad
from actgrad import experiments as E

# Klambauer et al. (2017), the constants printed in the paper and used by torch.nn.SELU.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


# ----------------------------------------------------------------------------- SELU
def test_selu_fixed_point_matches_published_constants():
    fp = E.selu_fixed_point()
    got, want = (fp.alpha, fp.lam), (SELU_ALPHA, SELU_LAMBDA)
    assert abs(fp.alpha - SELU_ALPHA) < 1e-6 and abs(fp.lam - SELU_LAMBDA) < 1e-6, \
        f"selu_fixed_point(): (alpha, lambda) = {got}, Klambauer et al. (2017) print {want}; " \
        "check the fixed-point equations mean 0, second moment 1 for z ~ N(0, 1)"
    assert abs(fp.alpha - SELU_ALPHA) < 1e-12 and abs(fp.lam - SELU_LAMBDA) < 1e-12, \
        f"selu_fixed_point(): {got} agrees with {want} only roughly; the solver stops too early"
    assert fp.residual < 1e-12, f"selu_fixed_point(): residual {fp.residual:.1e}, expected < 1e-12"


@pytest.mark.parametrize("alpha,lam", [(1.0, 1.0), (2.5, 0.7), (SELU_ALPHA, SELU_LAMBDA)])
def test_selu_moments_match_quadrature(alpha, lam):
    from scipy import integrate  # test-only oracle

    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    f = lambda z: lam * z if z > 0 else lam * alpha * math.expm1(z)
    m1 = sum(integrate.quad(lambda z: f(z) * phi(z), a, b, epsabs=1e-14, epsrel=1e-13)[0]
             for a, b in ((-np.inf, 0), (0, np.inf)))
    m2 = sum(integrate.quad(lambda z: f(z) ** 2 * phi(z), a, b, epsabs=1e-14, epsrel=1e-13)[0]
             for a, b in ((-np.inf, 0), (0, np.inf)))
    got = E.selu_moments(alpha, lam)
    assert got[0] == pytest.approx(m1, abs=1e-10), \
        f"selu_moments({alpha}, {lam})[0] (mean) = {got[0]!r}, quadrature gives {m1!r}"
    assert got[1] == pytest.approx(m2, abs=1e-10), \
        f"selu_moments({alpha}, {lam})[1] (second moment E[f(z)^2], not the variance) = {got[1]!r}, " \
        f"quadrature gives {m2!r}"


def test_actgrad_selu_is_self_normalizing_by_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    s = actgrad.activations.selu(z)
    assert abs(s.mean()) < 5e-3 and abs(s.var() - 1) < 5e-3, \
        f"selu(z), z ~ N(0, 1), 2e6 samples: mean {s.mean():.4f}, var {s.var():.4f}; expected 0 and 1 " \
        "(+- 5e-3, Monte Carlo error ~1e-3): check SELU_ALPHA / SELU_LAMBDA"


# ----------------------------------------------------------------------------- depth profiles
def _torch_depth_pass(prof, activation):
    f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    a = torch.tensor(prof.X)
    zs, L = [], len(prof.act_std)
    Ws = [torch.tensor(prof.params[f"W{l}"], requires_grad=True) for l in range(1, L + 1)]
    for l in range(1, L + 1):
        z = a @ Ws[l - 1] + torch.tensor(prof.params[f"b{l}"])
        z.retain_grad()
        zs.append(z)
        a = f(z)
    (a * torch.tensor(prof.G)).sum().backward()
    return zs, Ws


@pytest.mark.parametrize("activation,init", [("tanh", "xavier"), ("relu", "he"), ("sigmoid", 0.5)])
def test_depth_profile_matches_torch_autograd(activation, init):
    prof = E.gradient_norms_by_depth(activation, init, depth=6, width=16, n=8, seed=3, keep_values=True)
    zs, Ws = _torch_depth_pass(prof, activation)
    for l, (z, W) in enumerate(zip(zs, Ws)):
        dz = z.grad.numpy()
        np.testing.assert_allclose(prof.deltas[l], dz, rtol=1e-9, atol=1e-15 * np.abs(dz).max(),
                                   err_msg=f"gradient_norms_by_depth({activation!r}, {init!r}): dL/dz of "
                                           f"layer {l + 1} differs from torch autograd")
        assert prof.delta_norm[l] == pytest.approx(np.linalg.norm(dz), rel=1e-10), \
            f"delta_norm[{l}] = {prof.delta_norm[l]!r}, torch gives {np.linalg.norm(dz)!r}"
        assert prof.grad_norm[l] == pytest.approx(W.grad.norm().item(), rel=1e-10), \
            f"grad_norm[{l}] = {prof.grad_norm[l]!r}, torch gives {W.grad.norm().item()!r} " \
            "(dL/dW_l = a_(l-1)^T delta_l: the layer's input, not its output)"
    np.testing.assert_allclose(prof.act_std[-1], torch.as_tensor(prof.activations[-1]).std(
        unbiased=False).item(), rtol=1e-12, err_msg="act_std of the last layer (population std)")


def _per_layer_factor(v):
    """Geometric-mean growth per layer from layer 1 to layer L."""
    return (v[-1] / v[0]) ** (1 / (len(v) - 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_xavier_gradients_shrink_about_fourfold_per_layer(seed):
    # sigma' <= 1/4 and width*Var(W) = 1 for square Xavier layers: each backward step multiplies
    # the gradient by about 1/4 (a bit less because sigma'(z) < 1/4 away from z = 0).
    prof = E.gradient_norms_by_depth("sigmoid", "xavier", depth=20, width=128, n=128, seed=seed)
    factor = _per_layer_factor(prof.grad_norm)  # layer 20 vs layer 1
    assert 3.5 < factor < 5.0, \
        f"sigmoid + Xavier, seed {seed}: gradient norm grows {factor:.2f}x per layer from layer 1 " \
        "to 20, expected about 4 (= 1/sigma'(0) with width*Var W = 1)"
    assert np.all(np.diff(prof.grad_norm) > 0), \
        f"sigmoid + Xavier, seed {seed}: grad_norm not increasing with the layer: {prof.grad_norm}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigmoid_layers_with_large_weights_need_not_shrink_the_gradient(seed):
    # Chapter 3: only the activation's factor is bounded by 1/4, not the layer's. With weight std
    # 16/sqrt(width) the W^T in every backward factor outweighs sigma' <= 1/4.
    prof = E.gradient_norms_by_depth("sigmoid", 16 / math.sqrt(128), depth=20, width=128, n=128,
                                     seed=seed)
    growth = 1 / _per_layer_factor(prof.grad_norm)  # going backward, layer 20 -> layer 1
    assert growth > 1.1, \
        f"sigmoid, weight std 16/sqrt(128), seed {seed}: the gradient changes by {growth:.3f}x per " \
        "layer going backward; expected growth (> 1.1), since large weights offset sigma' <= 1/4"


def _tanh_mean_field_growth(weight_var, iters=500):
    # Mean-field theory of deep tanh nets (Poole et al., 2016; Schoenholz et al., 2017), zero
    # biases: pre-activation variance q* = s_w^2 E[tanh(sqrt(q*) xi)^2], and the gradient norm is
    # multiplied by sqrt(chi) = sqrt(s_w^2 E[tanh'(sqrt(q*) xi)^2]) per layer going backward.
    xi, w = np.polynomial.hermite_e.hermegauss(201)
    w = w / w.sum()
    q = 1.0
    for _ in range(iters):
        q = weight_var * np.sum(w * np.tanh(np.sqrt(q) * xi) ** 2)
    return math.sqrt(weight_var * np.sum(w * (1 - np.tanh(np.sqrt(q) * xi) ** 2) ** 2))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_tanh_with_he_weights_grows_the_gradient_mildly(seed):
    # Chapter 7: with He weights (width*Var W = 2, too large for tanh) the gradient grows going
    # backward, but mildly, as mean-field theory predicts (about 1.05 per layer), not explosively.
    prof = E.gradient_norms_by_depth("tanh", "he", depth=20, width=128, n=128, seed=seed)
    growth = 1 / _per_layer_factor(prof.grad_norm)
    want = _tanh_mean_field_growth(2.0)
    assert 1.0 < growth < 1.15, \
        f"tanh + He, seed {seed}: gradient grows {growth:.3f}x per layer going backward; expected " \
        "mild growth (between 1 and 1.15)"
    assert growth == pytest.approx(want, rel=0.03), \
        f"tanh + He, seed {seed}: per-layer growth {growth:.4f}, mean-field theory {want:.4f}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_he_preserves_signal_and_gradient(seed):
    prof = E.gradient_norms_by_depth("relu", "he", depth=20, width=128, n=128, seed=seed)
    factor = _per_layer_factor(prof.grad_norm)
    assert 0.9 < factor < 1.1, \
        f"relu + He, seed {seed}: gradient norm changes {factor:.3f}x per layer, expected about 1"
    ratio = prof.act_std[-1] / prof.act_std[0]
    assert 0.5 < ratio < 2.0, f"relu + He, seed {seed}: activation std layer 20 / layer 1 = {ratio:.2f}"


def test_relu_xavier_halves_activation_variance_per_layer():
    # Var z_l = width * Var W * E[relu(z)^2] = 1 * Var z_{l-1} / 2  ->  std x 1/sqrt(2) per layer.
    prof = E.gradient_norms_by_depth("relu", "xavier_normal", depth=20, width=128, n=128, seed=0)
    got = _per_layer_factor(prof.act_std)
    assert got == pytest.approx(1 / math.sqrt(2), abs=0.05), \
        f"relu + Xavier: activation std changes {got:.3f}x per layer, theory 1/sqrt(2) = 0.707 " \
        "(Var z_l = width Var W E[relu(z)^2] = Var z_(l-1) / 2)"


# ----------------------------------------------------------------------------- Nielsen ch. 5
# Nielsen (2015, ch. 5) on MNIST, first/last hidden-layer speed at the start of training:
# 0.012/0.060 = 0.2 (two hidden layers), 0.012/0.283 = 0.04 (three), 0.003/0.285 = 0.01 (four).
# What he shows is a trend: the ratio falls with depth, each added sigmoid layer costing a factor
# of about 4-5. Chapter 7 runs exactly these settings.
NIELSEN_DEPTHS = (2, 3, 4)
NIELSEN_SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def nielsen_runs():
    return {h: [E.nielsen_speed_of_learning((30,) * h, epochs=10, seed=s) for s in NIELSEN_SEEDS]
            for h in NIELSEN_DEPTHS}


def test_nielsen_ratio_falls_with_depth_each_layer_costing_a_factor_well_above_one(nielsen_runs):
    ratio = {h: np.array([r.speeds[0, 0] / r.speeds[0, -1] for r in rs]) for h, rs in nielsen_runs.items()}
    for shallow, deep in zip(NIELSEN_DEPTHS, NIELSEN_DEPTHS[1:]):
        factor = ratio[shallow] / ratio[deep]  # per seed
        assert np.all(factor > 2), \
            f"nielsen_speed_of_learning, seeds {NIELSEN_SEEDS}: going from {shallow} to {deep} hidden " \
            f"layers divides first/last by {np.round(factor, 2)}; expected > 2 in every seed (Nielsen: ~4-5)"
    mean_factor = np.mean([ratio[a] / ratio[b] for a, b in zip(NIELSEN_DEPTHS, NIELSEN_DEPTHS[1:])])
    assert 3 < mean_factor < 8, \
        f"mean cost of an added sigmoid layer {mean_factor:.2f}, Nielsen's figures give about 4-5"
    assert 0.1 < ratio[2].mean() < 0.4, \
        f"two hidden layers: first/last {ratio[2].mean():.3f} (mean of 5 seeds); Nielsen reports about 0.2"


def test_nielsen_first_hidden_layer_is_slowest_at_every_epoch(nielsen_runs):
    for h, rs in nielsen_runs.items():
        for seed, r in zip(NIELSEN_SEEDS, rs):
            bad = np.flatnonzero(~np.all(np.diff(r.speeds, axis=1) > 0, axis=1))
            assert bad.size == 0, \
                f"nielsen_speed_of_learning({h} hidden layers, seed={seed}): speeds not increasing " \
                f"from the first to the last hidden layer at epochs {bad}: {r.speeds[bad]}"


def test_nielsen_deeper_nets_are_harder_to_train(nielsen_runs):
    # After 10 epochs the 2-hidden-layer nets learn; the 3- and 4-hidden-layer nets still sit at
    # the cost of predicting 0.1 for every class whatever the image, 10 * H(0.1), at chance accuracy.
    prior = -10 * (0.1 * math.log(0.1) + 0.9 * math.log(0.9))
    acc2 = np.array([r.accuracy[-1] for r in nielsen_runs[2]])
    assert np.all(acc2 > 0.3), f"2 hidden layers, 10 epochs: test accuracy {acc2} (5 seeds), expected > 0.3"
    for h in (3, 4):
        acc = np.array([r.accuracy[-1] for r in nielsen_runs[h]])
        cost = np.array([r.loss[-1] for r in nielsen_runs[h]])
        assert np.all(acc < 0.15), f"{h} hidden layers, 10 epochs: test accuracy {acc}, expected chance (~0.1)"
        assert np.all(np.abs(cost - prior) < 0.1), \
            f"{h} hidden layers, 10 epochs: cost {cost}, expected the class-prior cost {prior:.3f}"
        assert np.all(acc < acc2.min()), f"{h} hidden layers beat 2 hidden layers in some seed: {acc} vs {acc2}"


def test_nielsen_speeds_match_torch_autograd():
    s = E.nielsen_speed_of_learning((30, 30, 30), epochs=0, seed=4)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in s.init_params.items()}
    a = torch.tensor(s.X)
    for l in range(1, 5):
        a = a @ p[f"W{l}"] + p[f"b{l}"]
        if l < 4:
            a = torch.sigmoid(a)
    Y = torch.nn.functional.one_hot(torch.tensor(s.y), 10).double()
    cost = torch.nn.functional.binary_cross_entropy_with_logits(a, Y, reduction="sum") / len(s.y)
    cost.backward()
    assert s.loss[0] == pytest.approx(cost.item(), rel=1e-12), \
        f"nielsen_speed_of_learning: cost {s.loss[0]!r}, torch's summed BCE-with-logits / N gives {cost.item()!r}"
    want = [p[f"b{l}"].grad.norm().item() for l in (1, 2, 3)]
    np.testing.assert_allclose(s.speeds[0], want, rtol=1e-10,
                               err_msg="speeds[0] = ||dC/db^l|| per hidden layer vs torch autograd")


# Dead units (chapter 9): tests/test_experiments_dead.py, across five seeds.


# ----------------------------------------------------------------------------- clipping
BIG = 1.5 * math.sqrt(2 / 64)  # He x 1.5: ReLU activations grow 1.5x per layer


def test_norm_clipping_bounds_every_update_and_rescues_exploding_net():
    kw = dict(activation="relu", init=BIG, lr=0.05, epochs=2, seed=0)
    free = E.train_with_clipping(**kw)
    clipped = E.train_with_clipping(clip_norm=1.0, **kw)
    assert free.diverged and not clipped.diverged
    assert np.nanmax(clipped.grad_norm) > 10  # the gradients themselves are large ...
    assert np.all(clipped.update_norm <= 0.05 * 1.0 * (1 + 1e-9))  # ... the steps are not
    assert clipped.accuracy[-1] > 0.3


def test_value_clipping_bounds_each_component():
    tr = E.train_with_clipping("relu", init=BIG, lr=0.05, epochs=1, clip_value=0.01, seed=0)
    n_params = sum(64 * o + o for o in [64] * 10 + [10])
    assert not tr.diverged
    assert np.all(tr.update_norm <= 0.05 * 0.01 * math.sqrt(n_params) * (1 + 1e-9))


def test_clipping_does_not_fix_vanishing_gradients():
    kw = dict(activation="sigmoid", init="xavier", hidden=(64,) * 8, lr=0.1, epochs=1, seed=0)
    free = E.train_with_clipping(**kw)
    clipped = E.train_with_clipping(clip_norm=1.0, **kw)
    for tr in (free, clipped):
        assert np.nanmedian(tr.first_grad_norm) < 1e-4  # layer 1 of 11 gets ~nothing
        assert tr.accuracy[-1] < 0.2  # still at chance level
    # clipping only ever shrinks: no update is larger than without clipping's bound lr*||g||
    assert np.all(clipped.update_norm <= 0.1 * np.minimum(clipped.grad_norm, 1.0) * (1 + 1e-9))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="gradient_norms_by_depth"):
        E.gradient_norms_by_depth("nope")
    with pytest.raises(ValueError, match="train_with_clipping"):
        E.train_with_clipping(clip_norm=1.0, clip_value=1.0)
    with pytest.raises(ValueError, match="nielsen_speed_of_learning"):
        E.nielsen_speed_of_learning((), epochs=1)
