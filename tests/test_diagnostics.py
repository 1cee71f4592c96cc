"""actgrad.diagnostics on hand-built caches whose answers are known by construction, and
against independent NumPy / PyTorch computations of the documented definitions."""
import warnings
from typing import NamedTuple

import numpy as np
import pytest

from actgrad import diagnostics as G
from actgrad.mlp import MLP


class Cache(NamedTuple):  # the test's own (x, z, a) record, independent of actgrad.mlp
    x: np.ndarray
    z: np.ndarray
    a: np.ndarray


def relu_cache(z):
    z = np.asarray(z, dtype=np.float64)
    return Cache(None, z, np.maximum(z, 0))


def np_relu_prime(z):
    return (np.asarray(z) > 0).astype(np.float64)


# ----------------------------------------------------------------------------- dead units
@pytest.mark.parametrize("act", ["relu", np_relu_prime])
def test_dead_fraction_by_construction(act):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(64, 4))
    z[:, 0] = -np.abs(z[:, 0]) - 0.1   # all negative -> dead
    z[:, 1] = np.abs(z[:, 1]) + 0.1    # all positive -> alive
    z[:, 2] = 0.0                      # exactly 0: ReLU'(0) = 0 (PyTorch) -> dead
    z[0, 3] = 5.0                      # one example fires -> alive
    z[1:, 3] = -1.0
    np.testing.assert_array_equal(G.dead_mask(z, act), [True, False, True, False])
    (s,) = G.layer_stats([relu_cache(z)], act)
    assert s.dead_fraction == 0.5
    (s,) = G.layer_stats([relu_cache(-np.abs(z) - 1)], act)
    assert s.dead_fraction == 1.0


def test_dead_mask_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 30)) - 1.5
    z[:, :3] = 0.0
    zt = torch.tensor(z, requires_grad=True)
    torch.relu(zt).sum().backward()
    expected = (zt.grad.numpy() == 0).all(axis=0)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(G.dead_mask(z, "relu"), expected)


def test_leaky_relu_never_dead_and_sigmoid_not_dead():
    z = -np.abs(np.random.default_rng(2).normal(size=(50, 5))) - 1
    assert not G.dead_mask(z, "leaky_relu").any()
    assert not G.dead_mask(z, "sigmoid").any()


# ----------------------------------------------------------------------------- saturation
def test_tanh_saturated_fraction_matches_definition():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, size=(200, 50))
    (s,) = G.layer_stats([Cache(None, z, np.tanh(z))], "tanh", sat_tol=0.01)
    # definition: 1 - tanh(z)^2 < 0.01 * max(1 - tanh^2) = 0.01  <=>  |tanh z| > sqrt(0.99)
    expected = np.mean(np.abs(np.tanh(z)) > np.sqrt(0.99))
    assert 0.2 < expected < 0.6
    assert s.saturated_fraction == pytest.approx(expected, abs=1e-12)


def test_sigmoid_saturation_threshold_closed_form():
    # sigma'(z) = 1 / (4 cosh^2(z/2)) < 0.01 * 1/4  <=>  |z| > 2 arccosh(10)
    edge = 2 * np.arccosh(10.0)
    z = np.array([0.0, edge - 1e-6, edge + 1e-6, -edge - 1e-6, 50.0, -800.0])
    np.testing.assert_array_equal(G.saturated_mask(z, "sigmoid"),
                                  [False, False, True, True, True, True])
    # a different tolerance moves the edge: |z| > 2 arccosh(sqrt(1/tol))
    tol = 0.2
    edge2 = 2 * np.arccosh(np.sqrt(1 / tol))
    np.testing.assert_array_equal(G.saturated_mask([edge2 - 1e-6, edge2 + 1e-6], "sigmoid", tol),
                                  [False, True])


def test_layer_stats_means_stds_and_order():
    rng = np.random.default_rng(4)
    zs = [rng.normal(i, i + 1, size=(30, 7 + i)) for i in range(3)]
    stats = G.layer_stats([Cache(None, z, np.tanh(z)) for z in zs], "tanh")
    assert [s.layer for s in stats] == [1, 2, 3]
    for s, z in zip(stats, zs):
        assert s.pre_mean == pytest.approx(z.mean()) and s.pre_std == pytest.approx(z.std())
        assert s.act_mean == pytest.approx(np.tanh(z).mean())
        assert s.act_std == pytest.approx(np.tanh(z).std())
    # without an activation the derivative-based fields are NaN, the rest still computed
    (s,) = G.layer_stats([Cache(None, zs[0], zs[0])])
    assert np.isnan(s.saturated_fraction) and np.isnan(s.dead_fraction)
    assert s.pre_std == pytest.approx(zs[0].std())


def test_layer_stats_per_layer_activations_and_nan():
    z = np.array([[-1.0, 2.0], [-3.0, 4.0]])
    stats = G.layer_stats([relu_cache(z), Cache(None, z, z)], ["relu", "linear"])
    assert stats[0].dead_fraction == 0.5 and stats[1].dead_fraction == 0.0
    z = z.copy()
    z[0, 0] = np.nan
    (s,) = G.layer_stats([relu_cache(z)], "relu")
    assert np.isnan(s.pre_mean)


@pytest.mark.parametrize("caches, act, exc", [
    ("abc", None, TypeError), ([], None, TypeError), ([object()], None, TypeError),
    ([Cache(None, np.zeros(3), np.zeros(3))], None, ValueError),
    ([Cache(None, np.zeros((2, 3)), np.zeros((2, 4)))], None, ValueError),
    ([relu_cache(np.zeros((2, 2)))], "swish3000", ValueError),
    ([relu_cache(np.zeros((2, 2)))], 3.0, TypeError),
    ([relu_cache(np.zeros((2, 2)))], ["relu", "tanh"], ValueError),
])
def test_layer_stats_bad_input(caches, act, exc):
    with pytest.raises(exc, match="layer_stats"):
        G.layer_stats(caches, act)


# ----------------------------------------------------------------------------- norms & ratios
def _params(rng, sizes):
    p = {}
    for l, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        p[f"W{l}"], p[f"b{l}"] = rng.normal(size=(m, n)), rng.normal(size=n)
    return p


def test_gradient_norms_layer_order_and_values():
    rng = np.random.default_rng(5)
    sizes = [3] + [4 + i for i in range(11)]   # 11 layers: W10 and W11 must follow W9
    g = _params(rng, sizes)
    expected = [np.linalg.norm(g[f"W{l}"]) for l in range(1, 12)]
    np.testing.assert_allclose(G.gradient_norms(g), expected, rtol=1e-13)
    both = [np.sqrt(np.linalg.norm(g[f"W{l}"]) ** 2 + np.linalg.norm(g[f"b{l}"]) ** 2)
            for l in range(1, 12)]
    np.testing.assert_allclose(G.gradient_norms(g, keys=("W", "b")), both, rtol=1e-13)
    np.testing.assert_allclose(G.gradient_norms(g, keys="b"),
                               [np.linalg.norm(g[f"b{l}"]) for l in range(1, 12)], rtol=1e-13)
    with pytest.raises(ValueError, match="gradient_norms"):
        G.gradient_norms({"weight": np.ones(2)})
    with pytest.raises(TypeError, match="gradient_norms"):
        G.gradient_norms([np.ones(2)])


def test_grad_and_update_to_data_ratios():
    rng = np.random.default_rng(6)
    params, grads = _params(rng, [5, 8, 3]), _params(rng, [5, 8, 3])
    expected = [np.linalg.norm(grads[k]) / np.linalg.norm(params[k]) for k in ("W1", "W2")]
    np.testing.assert_allclose(G.grad_to_data_ratio(grads, params), expected, rtol=1e-13)
    lr = 1e-3
    new = {k: v - lr * grads[k] for k, v in params.items()}
    np.testing.assert_allclose(G.update_to_data_ratio(params, new), lr * np.array(expected),
                               rtol=1e-9)
    with pytest.raises(ValueError, match="same array"):
        G.update_to_data_ratio(params, params)
    with pytest.raises(ValueError, match="lacks"):
        G.grad_to_data_ratio(grads, {"W1": params["W1"]})


def test_ratio_with_zero_weights_is_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = G.grad_to_data_ratio({"W1": np.ones((2, 2)), "W2": np.zeros(2)},
                                 {"W1": np.zeros((2, 2)), "W2": np.zeros(2)})
    assert r[0] == np.inf and np.isnan(r[1])


# ----------------------------------------------------------------------------- with a real MLP
def _first_layer_z(model, X):  # independent recomputation of layer 1's pre-activation
    return X @ model.params["W1"] + model.params["b1"]


def test_dead_units_on_mlp_match_numpy():
    X = np.random.default_rng(7).normal(size=(256, 2))
    model = MLP([2, 16, 16, 3], activation="relu", seed=0)
    model.params["b1"][:5] = -100.0           # five units of layer 1 pushed to the flat side
    masks = G.dead_units(model, X)
    assert [m.shape for m in masks] == [(16,), (16,)]
    expected = np.all(_first_layer_z(model, X) <= 0, axis=0)
    assert expected[:5].all()
    np.testing.assert_array_equal(masks[0], expected)
    stats = G.model_layer_stats(model, X)
    assert len(stats) == 2
    assert stats[0].dead_fraction == pytest.approx(expected.mean())
    assert stats[0].pre_mean == pytest.approx(_first_layer_z(model, X).mean())


def test_dead_units_honours_activation_kwargs_and_prelu():
    X = np.random.default_rng(8).normal(size=(64, 2))
    leaky = MLP([2, 6, 2], activation="leaky_relu", seed=1)
    leaky.params["b1"][:] = -100.0
    assert not G.dead_units(leaky, X)[0].any()             # slope 0.01 keeps gradients alive
    flat = MLP([2, 6, 2], activation="leaky_relu", alpha=0.0, seed=1)
    flat.params["b1"][:] = -100.0
    assert G.dead_units(flat, X)[0].all()                   # alpha = 0 is a ReLU
    prelu = MLP([2, 6, 2], activation="prelu", seed=1)
    prelu.params["b1"][:] = -100.0
    assert not G.dead_units(prelu, X)[0].any()
    prelu.params["a1"][:3] = 0.0
    np.testing.assert_array_equal(G.dead_units(prelu, X)[0], [True] * 3 + [False] * 3)
    # an explicit activation overrides the model's
    assert G.dead_units(leaky, X, activation="relu")[0].all()
    with pytest.raises(TypeError, match="dead_units"):
        G.dead_units(object(), X)


def test_per_layer_factor_recovers_a_geometric_profile():
    """Closed form: v_l = c r^(l-1) has factor r whatever c, for a batch of profiles at once."""
    r = np.array([0.25, 0.9, 1.0, 1.7])
    c = np.array([3.0, 1e-6, 2.0, 5e3])
    v = c[:, None] * r[:, None] ** np.arange(20)          # (4 profiles, 20 layers)
    got = G.per_layer_factor(v)
    np.testing.assert_allclose(got, r, rtol=1e-12, err_msg="per_layer_factor(c * r**arange(20)) should be r")
    assert got.shape == (4,), f"per_layer_factor of shape (4, 20): expected shape (4,), got {got.shape}"
    with pytest.raises(ValueError, match="at least two layers"):
        G.per_layer_factor(np.ones((3, 1)))
