"""actgrad.init against closed-form variances and torch.nn.init (an independent oracle)."""
import math

import numpy as np
import pytest
import torch

from actgrad import init

FAN_IN, FAN_OUT = 300, 800  # asymmetric so that a fan_in/fan_out mix-up shows


def _torch_sample(fn, **kw):
    torch.manual_seed(0)
    w = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)  # torch weight is (fan_out, fan_in)
    fn(w, **kw)
    return w.numpy()


@pytest.mark.parametrize("nl,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
    ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("selu", None), ("leaky_relu", None), ("leaky_relu", 0.0), ("leaky_relu", 0.2),
    ("leaky_relu", 1), ("leaky_relu", math.sqrt(5)),
])
def test_calculate_gain_matches_torch(nl, param):
    assert init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-15)


def test_calculate_gain_bad_input():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swishy")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", True)


# (our initializer, kwargs, closed-form variance, torch initializer, torch kwargs)
CASES = [
    ("xavier_uniform", {}, 2 / (FAN_IN + FAN_OUT), torch.nn.init.xavier_uniform_, {}),
    ("xavier_uniform", {"gain": 5 / 3}, (5 / 3) ** 2 * 2 / (FAN_IN + FAN_OUT), torch.nn.init.xavier_uniform_,
     {"gain": 5 / 3}),
    ("xavier_normal", {}, 2 / (FAN_IN + FAN_OUT), torch.nn.init.xavier_normal_, {}),
    ("kaiming_uniform", {}, 2 / FAN_IN, torch.nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    ("kaiming_normal", {}, 2 / FAN_IN, torch.nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("kaiming_normal", {"mode": "fan_out"}, 2 / FAN_OUT, torch.nn.init.kaiming_normal_,
     {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_uniform", {"a": 0.2, "nonlinearity": "leaky_relu"}, 2 / (1 + 0.04) / FAN_IN,
     torch.nn.init.kaiming_uniform_, {"a": 0.2, "nonlinearity": "leaky_relu"}),
    ("kaiming_normal", {"nonlinearity": "tanh"}, (5 / 3) ** 2 / FAN_IN, torch.nn.init.kaiming_normal_,
     {"nonlinearity": "tanh"}),
    ("lecun_normal", {}, 1 / FAN_IN, torch.nn.init.kaiming_normal_, {"nonlinearity": "linear"}),
    ("lecun_uniform", {}, 1 / FAN_IN, torch.nn.init.kaiming_uniform_, {"nonlinearity": "linear"}),
    ("torch_linear_default", {}, 1 / (3 * FAN_IN), torch.nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
    ("normal", {"std": 0.05}, 0.05 ** 2, torch.nn.init.normal_, {"std": 0.05}),
]


@pytest.mark.parametrize("name,kw,var,tfn,tkw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_empirical_variance(name, kw, var, tfn, tkw):
    W = getattr(init, name)((FAN_IN, FAN_OUT), np.random.default_rng(1), **kw)
    assert W.shape == (FAN_IN, FAN_OUT) and W.dtype == np.float64
    # 240k samples: the relative standard error of a variance estimate is about sqrt(2/n) < 0.3 %
    assert W.var() == pytest.approx(var, rel=0.02)
    assert abs(W.mean()) < 5 * math.sqrt(var / W.size)
    Wt = _torch_sample(tfn, **tkw)
    assert W.var() == pytest.approx(Wt.var(), rel=0.03)
    if "uniform" in name or name == "torch_linear_default":
        bound = math.sqrt(3 * var)
        assert np.abs(W).max() <= bound and np.abs(W).max() > 0.999 * bound
        assert np.abs(Wt).max() <= bound * (1 + 1e-12)


def test_torch_linear_default_matches_nn_linear():
    torch.manual_seed(0)
    lin = torch.nn.Linear(FAN_IN, FAN_OUT, dtype=torch.float64)
    rng = np.random.default_rng(0)
    W = init.torch_linear_default((FAN_IN, FAN_OUT), rng)
    b = init.torch_linear_bias((FAN_IN, FAN_OUT), rng)
    assert b.shape == (FAN_OUT,)
    bound = 1 / math.sqrt(FAN_IN)
    assert np.abs(lin.weight.detach().numpy()).max() <= bound
    assert np.abs(W).max() <= bound and np.abs(b).max() <= bound
    assert W.var() == pytest.approx(lin.weight.detach().numpy().var(), rel=0.03)
    assert b.var() == pytest.approx(bound ** 2 / 3, rel=0.2)


@pytest.mark.parametrize("name", sorted(init.INITIALIZERS))
def test_registry_dtype_shape_and_seed(name):
    W64, b64 = init.init_layer(name, 20, 30, np.random.default_rng(5), np.float64)
    W32, b32 = init.init_layer(name, 20, 30, np.random.default_rng(5), np.float32)
    assert W64.shape == (20, 30) and b64.shape == (30,)
    assert W32.dtype == np.float32 and b32.dtype == np.float32
    np.testing.assert_allclose(W32, W64, rtol=1e-6, atol=1e-7)
    W64b, _ = init.init_layer(name, 20, 30, np.random.default_rng(5), np.float64)
    np.testing.assert_array_equal(W64, W64b)
    if name == "torch":
        assert np.any(b64 != 0)
    else:
        assert not np.any(b64)


def test_registry_names_mean_what_they_say():
    rng = np.random.default_rng(3)
    scheme = init.get_initializer("torch")
    assert init.get_initializer(scheme) is scheme and scheme((5, 2), rng).shape == (5, 2)
    assert init.INITIALIZERS["he"].weight((4000, 50), rng).var() == pytest.approx(2 / 4000, rel=0.03)
    assert init.INITIALIZERS["lecun"].weight((4000, 50), rng).var() == pytest.approx(1 / 4000, rel=0.03)
    assert init.INITIALIZERS["xavier"].weight((4000, 50), rng).var() == pytest.approx(2 / 4050, rel=0.03)
    assert init.INITIALIZERS["normal"].weight((4000, 50), rng).std() == pytest.approx(0.01, rel=0.03)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown init 'hee'"):
        init.get_initializer("hee")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init.xavier_uniform((3, 4), 0)
    with pytest.raises(ValueError, match=r"shape must be \(fan_in, fan_out\)"):
        init.kaiming_normal((3, 4, 5), rng)
    with pytest.raises(ValueError, match="mode must be"):
        init.kaiming_normal((3, 4), rng, mode="fan_avg")
    with pytest.raises(ValueError, match="std must be"):
        init.normal((3, 4), rng, std=-1.0)
    with pytest.raises(ValueError, match="returned shapes"):
        init.init_layer(lambda shape, rng, dtype: np.zeros(3), 3, 4, rng)
