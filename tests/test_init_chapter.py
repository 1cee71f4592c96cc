"""Chapter 8's conclusions across seeds, at the chapter's settings (50 layers, width 128),
against the variance-propagation theory of Glorot & Bengio (2010), He et al. (2015) and the
fixed point of Klambauer et al. (2017)."""
import math

import numpy as np
import pytest

from actgrad import experiments as E

SEEDS = (0, 1, 2, 3, 4)


def _factor(v):
    return (v[-1] / v[0]) ** (1 / (len(v) - 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_xavier_shrinks_and_he_keeps_the_scale_over_50_layers(seed):
    kw = dict(depth=50, width=128, n=128, seed=seed)
    xavier = _factor(E.gradient_norms_by_depth("relu", "xavier", **kw).act_std)
    assert xavier == pytest.approx(1 / math.sqrt(2), abs=0.02), \
        f"relu + Xavier, 50 layers, seed {seed}: activation std x{xavier:.3f} per layer, theory 1/sqrt(2) = 0.707"
    he = E.gradient_norms_by_depth("relu", "he", **kw)
    for what, v in (("activation std", he.act_std), ("|dL/dz|", he.delta_norm[::-1])):
        f = _factor(v)
        assert 0.93 < f < 1.07, \
            f"relu + He, 50 layers, seed {seed}: {what} changes x{f:.3f} per layer, expected about 1 (no trend)"


@pytest.mark.parametrize("seed", SEEDS)
def test_tanh_xavier_gradient_shrinks_and_tanh_he_gradient_grows_towards_layer_1(seed):
    kw = dict(depth=50, width=128, n=128, seed=seed)
    x = E.gradient_norms_by_depth("tanh", "xavier", **kw).delta_norm
    h = E.gradient_norms_by_depth("tanh", "he", **kw).delta_norm
    assert x[0] / x[-1] < 0.5, f"tanh + Xavier, seed {seed}: |dL/dz| layer 1 / layer 50 = {x[0] / x[-1]:.3f}, expected < 0.5"
    assert h[0] / h[-1] > 2, f"tanh + He, seed {seed}: |dL/dz| layer 1 / layer 50 = {h[0] / h[-1]:.3f}, expected > 2"


@pytest.mark.parametrize("seed", SEEDS)
def test_selu_lecun_stays_near_mean_0_std_1_for_50_layers(seed):
    p = E.gradient_norms_by_depth("selu", "lecun", depth=50, width=128, n=256, seed=seed)
    assert np.abs(p.act_mean).max() < 0.1, \
        f"selu + LeCun, seed {seed}: activation mean reaches {np.abs(p.act_mean).max():.3f}, expected within 0.1 of 0"
    assert np.all(np.abs(p.act_std - 1) < 0.1), \
        f"selu + LeCun, seed {seed}: activation std in [{p.act_std.min():.3f}, {p.act_std.max():.3f}], expected 1 +- 0.1"


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_default_linear_forgets_the_input_in_a_deep_relu_stack(seed):
    # Var W = 1/(3n) for nn.Linear's default, so the input-dependent part of the activations
    # shrinks by about sqrt(1/6) per ReLU layer until the biases dominate.
    import torch
    torch.manual_seed(seed)
    h, signal = torch.randn(256, 128), []
    with torch.no_grad():
        for _ in range(50):
            h = torch.relu(torch.nn.Linear(128, 128)(h))
            signal.append(h.std(dim=0).mean().item())
    pred5 = signal[0] * math.sqrt(1 / 6) ** 4
    assert signal[4] < pred5, f"torch default, seed {seed}: signal at layer 5 {signal[4]:.2e}, expected below sqrt(1/6)^4 x layer 1 = {pred5:.2e}"
    assert signal[49] < 1e-6 * signal[0], \
        f"torch default, seed {seed}: signal at layer 50 is {signal[49] / signal[0]:.1e} of layer 1's, expected < 1e-6"
