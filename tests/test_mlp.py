"""actgrad.mlp.MLP against PyTorch autograd (float64, copied weights) and finite differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actgrad import gradcheck
from actgrad.activations import ACTIVATIONS
from actgrad.layers import Residual, Sequential
from actgrad.mlp import MLP, LayerCache

# independent oracle: torch.nn.functional for every activation name in the registry
TORCH_ACT = {
    "sigmoid": lambda z: torch.sigmoid(z),
    "tanh": lambda z: torch.tanh(z),
    "relu": lambda z: F.relu(z),
    "leaky_relu": lambda z, alpha=0.01: F.leaky_relu(z, negative_slope=alpha),
    "elu": lambda z, alpha=1.0: F.elu(z, alpha=alpha),
    "selu": lambda z: F.selu(z),
    "gelu": lambda z, approximate="none": F.gelu(z, approximate=approximate),
    "silu": lambda z: F.silu(z),
    "softplus": lambda z, beta=1.0, threshold=20.0: F.softplus(z, beta=beta, threshold=threshold),
    "mish": lambda z: F.mish(z),
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}
NAMES = sorted(ACTIVATIONS) + ["prelu"]
LOSS_SIZES = {"softmax_cross_entropy": 3, "mse": 2, "bce": 1}


def torch_reference(model, X, target, loss, hidden, out_act=None):
    """Forward/backward in torch float64 with the model's weights copied (torch Linear weight = W.T)."""
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.params.items()}
    x = torch.tensor(X, dtype=torch.float64)
    zs, As = [], []
    for l in range(1, model.num_layers + 1):
        z = F.linear(x, p[f"W{l}"].T, p[f"b{l}"])
        if l < model.num_layers:
            name, kw = hidden[l - 1]
            x = F.prelu(z, p[f"a{l}"]) if name == "prelu" else TORCH_ACT[name](z, **kw)
        else:
            x = z if out_act is None else TORCH_ACT[out_act](z)
        zs.append(z)
        As.append(x)
    if loss == "softmax_cross_entropy":
        L = F.cross_entropy(x, torch.tensor(target))
    elif loss == "mse":
        L = F.mse_loss(x, torch.tensor(target))
    else:
        L = F.binary_cross_entropy_with_logits(x, torch.tensor(target))
    L.backward()
    return L.item(), {k: v.grad.numpy() for k, v in p.items()}, zs, As


def _arrays(cache):
    """Every array in a (nested) cache tuple: x, z, a and the arrays in the block's layer caches."""
    for v in cache:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, tuple):
            yield from _arrays(v)


def _problem(loss, n_in=4, N=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, n_in))
    k = LOSS_SIZES[loss]
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, k, size=N)
    elif loss == "mse":
        y = rng.standard_normal((N, k))
    else:
        y = rng.random((N, k))  # soft targets in [0, 1]
    return X, y, k


@pytest.mark.parametrize("loss", list(LOSS_SIZES))
@pytest.mark.parametrize("act", NAMES)
def test_gradients_match_torch(act, loss):
    X, y, k = _problem(loss)
    model = MLP([4, 7, 6, k], activation=act, seed=1)
    if act == "prelu":  # distinct slopes so that a mix-up between units shows
        for l in (1, 2):
            model.params[f"a{l}"][:] = np.linspace(-0.3, 0.6, model.params[f"a{l}"].size)
    value, grads = model.loss(X, y, loss=loss)
    t_value, t_grads, zs, As = torch_reference(model, X, y, loss, [(act, {})] * 2)
    assert value == pytest.approx(t_value, rel=1e-12)
    assert list(grads) == list(model.params)
    for key, g in grads.items():
        assert g.shape == model.params[key].shape and g.dtype == np.float64
        assert gradcheck.rel_error(g, t_grads[key]) < 1e-10, (key, gradcheck.rel_error(g, t_grads[key]))
    out, caches = model.forward(X)
    assert len(caches) == 3 and all(isinstance(c, LayerCache) for c in caches)
    np.testing.assert_array_equal(caches[0].x, X)
    for c, z, a in zip(caches, zs, As):
        np.testing.assert_allclose(c.z, z.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c.a, a.detach().numpy(), rtol=1e-12, atol=1e-14)
    if act == "prelu":
        assert {"a1", "a2"} <= set(grads) and "a3" not in model.params


@pytest.mark.parametrize("act", NAMES)
def test_gradients_match_finite_differences(act):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((5, 3)), rng.integers(0, 3, size=5)
    model = MLP([3, 6, 5, 3], activation=act, seed=3)
    _, caches = model.forward(X)
    assert min(np.abs(c.z).min() for c in caches) > 1e-4  # no finite difference straddles a kink
    errs = gradcheck.check_gradients(model, X, y, h=1e-6)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("act,kw", [
    ("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}), ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
])
def test_activation_kwargs(act, kw):
    X, y, k = _problem("softmax_cross_entropy")
    model = MLP([4, 8, 8, k], activation=act, seed=0, **kw)
    value, grads = model.loss(X, y)
    t_value, t_grads, _, _ = torch_reference(model, X, y, "softmax_cross_entropy", [(act, kw)] * 2)
    assert value == pytest.approx(t_value, rel=1e-12)
    for key in grads:
        assert gradcheck.rel_error(grads[key], t_grads[key]) < 1e-10


def test_list_of_activations_and_output_activation():
    X, y, k = _problem("mse")
    for out_act in ("sigmoid", "tanh", "softmax"):
        model = MLP([4, 6, 5, 4, k], activation=["tanh", ("leaky_relu", {"alpha": 0.3}), "prelu"],
                    output_activation=out_act, seed=4)
        assert model.activations == ["tanh", "leaky_relu", "prelu", out_act]
        value, grads = model.loss(X, y, loss="mse")
        t_value, t_grads, _, _ = torch_reference(
            model, X, y, "mse", [("tanh", {}), ("leaky_relu", {"alpha": 0.3}), ("prelu", {})], out_act)
        assert value == pytest.approx(t_value, rel=1e-12)
        assert set(grads) == set(model.params) == set(t_grads)
        for key in grads:
            assert gradcheck.rel_error(grads[key], t_grads[key]) < 1e-10, key
    model = MLP([4, 6, 5, k], activation=["identity", "relu"], seed=4)  # a linear hidden layer
    value, grads = model.loss(X, y, loss="mse")
    t_value, t_grads, _, _ = torch_reference(model, X, y, "mse", [("identity", {}), ("relu", {})])
    assert value == pytest.approx(t_value, rel=1e-12)
    assert max(gradcheck.rel_error(grads[key], t_grads[key]) for key in grads) < 1e-10


def test_backward_matches_numerical_vjp():
    rng = np.random.default_rng(5)
    model = MLP([3, 4, 2], activation="silu", seed=0)
    X = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 2))
    grads = model.backward(dout, model.forward(X)[1])
    num = gradcheck.numerical_vjp(lambda W: model(X), model.params["W1"], dout)
    assert gradcheck.rel_error(grads["W1"], num) < 1e-7


def test_float32_end_to_end():
    X, y, k = _problem("softmax_cross_entropy")
    m64 = MLP([4, 16, 16, k], activation="gelu", seed=0)
    m32 = MLP([4, 16, 16, k], activation="gelu", seed=0, dtype=np.float32)
    for loss, target in (("softmax_cross_entropy", y), ("mse", np.zeros((9, k))),
                         ("bce", np.full((9, k), 0.5))):
        for X_in in (X, X.astype(np.float32)):
            out, caches = m32.forward(X_in)
            assert out.dtype == np.float32
            assert all(a.dtype == np.float32 for c in caches for a in _arrays(c)), "float32 model cached non-float32 arrays"
            v32, g32 = m32.loss(X_in, target, loss=loss)
            v64, g64 = m64.loss(X, target, loss=loss)
            assert v32 == pytest.approx(v64, rel=1e-4)
            for key in g32:
                assert g32[key].dtype == np.float32, key
                assert gradcheck.rel_error(g32[key], g64[key]) < 1e-4
    p32 = MLP([4, 5, 3], activation="prelu", seed=0, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in p32.loss(X, y)[1].values())
    assert p32.predict(X).shape == (9,)


def test_init_and_prelu_defaults():
    m = MLP([4, 5, 3], activation="prelu", init="torch", seed=0)
    assert list(m.params) == ["W1", "b1", "a1", "W2", "b2"]
    np.testing.assert_array_equal(m.params["a1"], np.full(5, 0.25))
    assert np.any(m.params["b1"] != 0)
    m = MLP([4, 5, 3], init="xavier", seed=0)
    assert not np.any(m.params["b1"]) and m.params["W1"].shape == (4, 5)
    m2 = MLP([4, 5, 3], init="xavier", seed=0)
    np.testing.assert_array_equal(m.params["W2"], m2.params["W2"])
    m3 = MLP([4, 5, 3], init=lambda shape, rng, dtype: np.ones(shape, dtype), seed=0)
    np.testing.assert_array_equal(m3.params["W1"], np.ones((4, 5)))


def test_predict():
    m = MLP([2, 3], activation="relu", seed=0)
    m.params["W1"][:] = [[1, 0, 0], [0, 0, 1]]
    np.testing.assert_array_equal(m.predict([[1.0, 0.0], [0.0, 1.0], [-1, -2]]), [0, 2, 1])
    b = MLP([2, 1], seed=0)
    b.params["W1"][:] = [[1.0], [0.0]]
    np.testing.assert_array_equal(b.predict([[1.0, 0.0], [-1.0, 0.0]]), [1, 0])


def test_bad_input():
    with pytest.raises(ValueError, match="unknown activation 'relu6x'"):
        MLP([2, 3, 2], activation="relu6x")
    with pytest.raises(ValueError, match="unknown init"):
        MLP([2, 3, 2], init="kaiminng")
    with pytest.raises(ValueError, match="layer_sizes"):
        MLP([2])
    with pytest.raises(ValueError, match="layer_sizes"):
        MLP([2, 0, 1])
    with pytest.raises(ValueError, match="2 activations for 1 hidden"):
        MLP([2, 3, 2], activation=["relu", "tanh"])
    with pytest.raises(TypeError, match="dtype"):
        MLP([2, 3, 2], dtype=np.int32)
    m = MLP([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\), got \(4, 3\)"):
        m.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"X must have shape"):
        m.forward(np.ones(2))
    with pytest.raises(TypeError, match="numeric"):
        m.forward([["a", "b"]])
    out, caches = m.forward(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"dout has shape \(4, 3\), expected \(4, 2\)"):
        m.backward(np.ones((4, 3)), caches)
    with pytest.raises(ValueError, match="expected 2 caches, got 1"):
        m.backward(np.ones((4, 2)), caches[:1])
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        m.loss(np.ones((4, 2)), np.zeros(4, dtype=int), loss="hinge")
    with pytest.raises(ValueError, match="labels must have shape"):
        m.loss(np.ones((4, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="target must have the output's shape"):
        m.loss(np.ones((4, 2)), np.zeros((4, 3)), loss="mse")


# ----------------------------------------------------------------------------- norm= and residual=
def torch_deep_reference(model, X, y, train=True, stats=None):
    """Cross-entropy loss and grads of the same net in torch float64, built from torch.nn.functional
    (F.batch_norm with explicit running statistics, which it updates in place like nn.BatchNorm1d)."""
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in model.params.items()}
    L = model.num_layers
    stats = stats if stats is not None else {l: (torch.zeros(model.layer_sizes[l], dtype=torch.float64),
                                                 torch.ones(model.layer_sizes[l], dtype=torch.float64))
                                             for l in range(1, L)}
    x = torch.tensor(X, dtype=torch.float64)
    for l in range(1, L + 1):
        z = F.linear(x, p[f"W{l}"].T, p[f"b{l}"])
        if l == L:
            x = z
            break
        if model.norm == "batch":
            z = F.batch_norm(z, *stats[l], p[f"gamma{l}"], p[f"beta{l}"], training=train, momentum=0.1, eps=1e-5)
        elif model.norm == "layer":
            z = F.layer_norm(z, (z.shape[1],), p[f"gamma{l}"], p[f"beta{l}"], eps=1e-5)
        a = torch.tanh(z)
        x = x + a if model.residual and model.layer_sizes[l - 1] == model.layer_sizes[l] else a
    out = x.detach().numpy()
    loss = F.cross_entropy(x, torch.tensor(y))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}, out, stats


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_norm_and_residual_match_torch(norm, residual):
    rng = np.random.default_rng(6)
    model = MLP([4, 6, 6, 6, 3], activation="tanh", norm=norm, residual=residual, seed=0)
    want_keys = [k for l in (1, 2, 3) for k in (f"W{l}", f"b{l}") + ((f"gamma{l}", f"beta{l}") if norm else ())]
    assert list(model.params) == want_keys + ["W4", "b4"], f"MLP(norm={norm!r}) params keys {list(model.params)}"
    kinds = [type(b).__name__ for b in model.blocks]
    want = ["Sequential"] + ["Residual" if residual else "Sequential"] * 2 + ["Sequential"]
    assert kinds == want, f"residual={residual}: blocks {kinds}, expected {want} (residual only where widths match)"
    for k in model.params:  # move gamma/beta off 1/0 so that a mix-up between units shows
        if k.startswith(("gamma", "beta")):
            model.params[k] += rng.uniform(-0.5, 0.5, model.params[k].shape)
    stats = None
    for step in range(3):
        X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, size=8)
        value, grads = model.loss(X, y)
        t_value, t_grads, _, stats = torch_deep_reference(model, X, y, stats=stats)
        assert value == pytest.approx(t_value, rel=1e-12), f"MLP(norm={norm!r}, residual={residual}) loss, step {step}"
        for k in model.params:
            err = gradcheck.rel_error(grads[k], t_grads[k])
            tol = 1e-10 if np.abs(t_grads[k]).max() > 1e-8 else 1e30  # b_l before BatchNorm: 0 up to rounding
            assert err < tol and np.abs(grads[k] - t_grads[k]).max() < 1e-12, \
                f"MLP(norm={norm!r}, residual={residual}) grad {k}: rel. error {err:.1e} vs torch at step {step}"
    X = rng.standard_normal((5, 4))
    out = model(X)  # evaluation mode: BatchNorm uses the running statistics of the 3 steps
    _, _, t_out, _ = torch_deep_reference(model, X, np.zeros(5, dtype=np.int64), train=False, stats=stats)
    np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-14,
                               err_msg=f"MLP(norm={norm!r}) in evaluation mode vs torch (running statistics?)")


def test_batchnorm_mlp_gradcheck_and_float32():
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((6, 3)), rng.integers(0, 3, size=6)
    model = MLP([3, 5, 5, 3], activation="gelu", norm="batch", residual=True, seed=1)
    errs = gradcheck.check_gradients(model, X, y, h=1e-6)
    _, grads = model.loss(X, y)
    for k in ("b1", "b2"):  # BatchNorm subtracts the batch mean: a bias before it has zero gradient
        assert np.abs(grads[k]).max() < 1e-12, f"grad {k} before BatchNorm should be 0, got {grads[k]}"
        del errs[k]         # (so its relative error is rounding noise over rounding noise)
    assert max(errs.values()) < 1e-6, f"MLP(norm='batch', residual=True) vs finite differences: {errs}"
    m32 = MLP([3, 5, 5, 3], activation="gelu", norm="layer", residual=True, seed=1, dtype=np.float32)
    out, caches = m32.forward(X)
    _, g32 = m32.loss(X, y)
    dts = {out.dtype, *(a.dtype for c in caches for a in _arrays(c)), *(g.dtype for g in g32.values()),
           *(p.dtype for p in m32.params.values())}
    assert dts == {np.dtype(np.float32)}, f"float32 MLP(norm='layer') gave dtypes {dts}"


def test_norm_options_share_arrays_and_check_input():
    model = MLP([3, 4, 4, 2], norm="batch", residual=True, seed=0)
    bn = model.blocks[1].block.layers[1]
    assert isinstance(model.blocks[1], Residual) and isinstance(model.blocks[0], Sequential), "block types"
    assert model.params["gamma2"] is bn.params["gamma"], "MLP.params must hold the layers' own arrays"
    twin = model.copy()
    assert twin.params["W2"] is twin.blocks[1].params["0.W"] and twin.params["W2"] is not model.params["W2"], \
        "MLP.copy must copy the arrays once and keep params and layers sharing them"
    X = np.random.default_rng(0).standard_normal((6, 3))
    mean = bn.running_mean.copy()
    model.predict(X)
    assert np.array_equal(bn.running_mean, mean), "predict / __call__ must not update BatchNorm's running statistics"
    model.forward(X)
    assert not np.array_equal(bn.running_mean, mean), "forward(train=True) must update the running statistics"
    with pytest.raises(ValueError, match="norm must be None, 'batch' or 'layer', got 'group'"):
        MLP([2, 3, 2], norm="group")
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        model.loss(X[:1], np.zeros(1, dtype=int))
