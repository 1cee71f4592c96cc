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
    assert abs(fp.alpha - SELU_ALPHA) < 1e-6
    assert abs(fp.lam - SELU_LAMBDA) < 1e-6
    assert abs(fp.alpha - SELU_ALPHA) < 1e-12 and abs(fp.lam - SELU_LAMBDA) < 1e-12
    assert fp.residual < 1e-12


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
    assert got[0] == pytest.approx(m1, abs=1e-10)
    assert got[1] == pytest.approx(m2, abs=1e-10)


def test_actgrad_selu_is_self_normalizing_by_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    s = actgrad.activations.selu(z)
    assert abs(s.mean()) < 5e-3 and abs(s.var() - 1) < 5e-3


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
        np.testing.assert_allclose(prof.deltas[l], dz, rtol=1e-9, atol=1e-15 * np.abs(dz).max())
        assert prof.delta_norm[l] == pytest.approx(np.linalg.norm(dz), rel=1e-10)
        assert prof.grad_norm[l] == pytest.approx(W.grad.norm().item(), rel=1e-10)
    np.testing.assert_allclose(prof.act_std[-1], torch.as_tensor(prof.activations[-1]).std(
        unbiased=False).item(), rtol=1e-12)


def _per_layer_factor(v):
    """Geometric-mean growth per layer from layer 1 to layer L."""
    return (v[-1] / v[0]) ** (1 / (len(v) - 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_xavier_gradients_shrink_about_fourfold_per_layer(seed):
    # sigma' <= 1/4 and width*Var(W) = 1 for square Xavier layers: each backward step multiplies
    # the gradient by about 1/4 (a bit less because sigma'(z) < 1/4 away from z = 0).
    prof = E.gradient_norms_by_depth("sigmoid", "xavier", depth=20, width=128, n=128, seed=seed)
    factor = _per_layer_factor(prof.grad_norm)  # layer 20 vs layer 1
    assert 3.5 < factor < 5.0
    assert np.all(np.diff(prof.grad_norm) > 0)  # monotone: every earlier layer gets less


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_he_preserves_signal_and_gradient(seed):
    prof = E.gradient_norms_by_depth("relu", "he", depth=20, width=128, n=128, seed=seed)
    assert 0.9 < _per_layer_factor(prof.grad_norm) < 1.1
    assert 0.5 < prof.act_std[-1] / prof.act_std[0] < 2.0


def test_relu_xavier_halves_activation_variance_per_layer():
    # Var z_l = width * Var W * E[relu(z)^2] = 1 * Var z_{l-1} / 2  ->  std x 1/sqrt(2) per layer.
    prof = E.gradient_norms_by_depth("relu", "xavier_normal", depth=20, width=128, n=128, seed=0)
    assert _per_layer_factor(prof.act_std) == pytest.approx(1 / math.sqrt(2), abs=0.05)


# ----------------------------------------------------------------------------- Nielsen ch. 5
@pytest.mark.parametrize("hidden", [(30, 30), (30, 30, 30), (30, 30, 30, 30)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nielsen_speed_increases_from_first_to_last_hidden_layer(hidden, seed):
    s = E.nielsen_speed_of_learning(hidden, epochs=0, seed=seed)
    assert np.all(np.diff(s.speeds[0]) > 0)
    ratio = s.speeds[0, 0] / s.speeds[0, -1]
    if len(hidden) >= 3:
        assert ratio < 0.1
    else:  # two hidden layers: ~0.2 here, as in Nielsen's book (0.012 / 0.060); not below 0.1
        assert ratio < 0.5


def test_nielsen_four_hidden_layers_stays_below_tenth_while_training():
    s = E.nielsen_speed_of_learning((30, 30, 30, 30), epochs=3, seed=0)
    assert np.all(s.speeds[:, 0] / s.speeds[:, -1] < 0.1)
    assert np.all(np.diff(s.speeds, axis=1) > 0)


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
    assert s.loss[0] == pytest.approx(cost.item(), rel=1e-12)
    want = [p[f"b{l}"].grad.norm().item() for l in (1, 2, 3)]
    np.testing.assert_allclose(s.speeds[0], want, rtol=1e-10)


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
