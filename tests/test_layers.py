"""actgrad.layers against PyTorch autograd (float64, copied parameters) and finite differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actgrad import gradcheck, optim
from actgrad.activations import ACTIVATIONS
from actgrad.activations import Activation as ACT_RECORD
from actgrad.layers import (Activation, ActivationCache, BatchNorm1d, BatchNormCache, LayerNorm, Linear,
                            LinearCache, Residual, Sequential, SequentialCache)

pytestmark = pytest.mark.usefixtures("strict_numerics")

TORCH_ACT = {  # independent oracle: torch.nn.functional for every name in the registry
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
    "leaky_relu": lambda z, alpha=0.01: F.leaky_relu(z, negative_slope=alpha),
    "elu": lambda z, alpha=1.0: F.elu(z, alpha=alpha), "selu": F.selu,
    "gelu": lambda z, approximate="none": F.gelu(z, approximate=approximate), "silu": F.silu,
    "softplus": lambda z, beta=1.0, threshold=20.0: F.softplus(z, beta=beta, threshold=threshold),
    "mish": F.mish, "identity": lambda z: z, "softmax": lambda z: torch.softmax(z, dim=-1),
}


def rel(a, b):
    """Relative error with a floor of 1 on the scale: every quantity here is O(1), and some are 0 in exact
    arithmetic (the bias gradient of a layer followed by BatchNorm), where a plain relative error is noise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(a) + np.abs(b), initial=0.0), 1.0))


def torch_run(fn, x, dout, params=()):
    """Forward ``fn(x, *params)`` and backward ``dout`` in torch float64: (out, dx, [dparams])."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    out = fn(xt, *ps)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), xt.grad.numpy(), [p.grad.numpy() for p in ps]


def assert_close(got, want, what, tol=1e-12, hint=""):
    err = rel(got, want)
    assert np.shape(got) == np.shape(want), f"{what}: shape {np.shape(got)}, expected {np.shape(want)}"
    assert err < tol, f"{what}: rel. error {err:.2e} vs PyTorch (tol {tol:.0e}). {hint}"


def data(*shape, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


# ----------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("init,n", [("he", 5), ("xavier", 5), ("torch", 5), ("he", 1)])
def test_linear_matches_torch(init, n):
    lin = Linear(4, 3, init=init, seed=1)
    assert lin.params["W"].shape == (4, 3) and lin.params["b"].shape == (3,), "Linear: W (fan_in, fan_out), b (fan_out,)"
    x, d = data(n, 4), data(n, 3, seed=1)
    out, cache = lin.forward(x)
    dx, g = lin.backward(d, cache)
    t_out, t_dx, (t_dW, t_db) = torch_run(lambda x, W, b: F.linear(x, W.T, b), x, d,
                                          (lin.params["W"], lin.params["b"]))
    assert isinstance(cache, LinearCache), f"Linear.forward cache is {type(cache).__name__}"
    assert_close(out, t_out, "Linear forward")
    assert_close(dx, t_dx, "Linear dx", hint="dx = dout @ W.T")
    assert_close(g["W"], t_dW, "Linear dW", hint="dW = x.T @ dout, shape (fan_in, fan_out)")
    assert_close(g["b"], t_db, "Linear db", hint="db sums dout over the batch")
    assert list(g) == ["W", "b"], f"Linear grads keys {list(g)}, expected ['W', 'b']"


def test_linear_seed_and_float32():
    a, b = Linear(6, 4, seed=3), Linear(6, 4, seed=3, dtype=np.float32)
    assert a.params["W"].std() > 0 and np.array_equal(a.params["W"], Linear(6, 4, seed=3).params["W"]), \
        "Linear(seed=3) twice must give the same weights"
    assert all(p.dtype == np.float32 for p in b.params.values()), "float32 Linear must hold float32 params"
    np.testing.assert_allclose(b.params["W"], a.params["W"], rtol=1e-6, err_msg="float32 and float64 "
                               "Linear from one seed should hold the same numbers up to rounding")
    x = data(3, 6)
    for xin in (x, x.astype(np.float32)):
        out, c = b.forward(xin)
        dx, g = b.backward(np.ones((3, 4)), c)
        dts = [out.dtype, dx.dtype] + [v.dtype for v in g.values()]
        assert all(dt == np.float32 for dt in dts), f"float32 Linear on {xin.dtype} input gave dtypes {dts}"


# ----------------------------------------------------------------------------- Activation
@pytest.mark.parametrize("name", sorted(ACTIVATIONS) + ["identity", "softmax"])
def test_activation_matches_torch(name):
    x, d = data(6, 5, scale=2.0), data(6, 5, seed=1)
    layer = Activation(name)
    out, cache = layer.forward(x)
    dx, g = layer.backward(d, cache)
    t_out, t_dx, _ = torch_run(TORCH_ACT[name], x, d)
    assert isinstance(cache, ActivationCache) and layer.params == {} and g == {}, \
        f"Activation({name!r}): no params, no grads, an ActivationCache"
    assert_close(out, t_out, f"Activation({name!r}) forward")
    assert_close(dx, t_dx, f"Activation({name!r}) backward", tol=1e-10)
    out32, c32 = layer.forward(x.astype(np.float32))
    dx32, _ = layer.backward(d.astype(np.float32), c32)
    assert out32.dtype == dx32.dtype == np.float32, f"Activation({name!r}) float32 gave {out32.dtype}, {dx32.dtype}"
    assert rel(dx32, t_dx) < 1e-5, f"Activation({name!r}) float32 backward off by {rel(dx32, t_dx):.1e}"


def test_activation_from_a_custom_record():
    cube = ACT_RECORD("cube", lambda x: np.asarray(x) ** 3, lambda x: 3 * np.asarray(x) ** 2, "x^3", "R", True)
    layer = Activation(cube)
    x, d = data(1, 4), data(1, 4, seed=1)  # batch size 1
    out, c = layer.forward(x)
    t_out, t_dx, _ = torch_run(lambda z: z ** 3, x, d)
    assert layer.name == "cube", f"Activation(record).name is {layer.name!r}, expected the record's name"
    assert_close(out, t_out, "Activation(custom record) forward")
    assert_close(layer.backward(d, c)[0], t_dx, "Activation(custom record) backward", hint="dx = dout * prime(x)")


@pytest.mark.parametrize("name,kw", [("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5}),
                                     ("gelu", {"approximate": "tanh"}), ("softplus", {"beta": 2.0, "threshold": 1.0})])
def test_activation_kwargs(name, kw):
    x, d = data(4, 7, scale=2.0), data(4, 7, seed=2)
    layer = Activation(name, **kw)
    out, c = layer.forward(x)
    t_out, t_dx, _ = torch_run(lambda z: TORCH_ACT[name](z, **kw), x, d)
    assert_close(out, t_out, f"Activation({name!r}, {kw}) forward", hint="are the kwargs passed on?")
    assert_close(layer.backward(d, c)[0], t_dx, f"Activation({name!r}, {kw}) backward", tol=1e-10)


@pytest.mark.parametrize("n", [1, 5])
def test_prelu_matches_torch(n):
    layer = Activation("prelu", num_parameters=n)
    assert layer.params["a"].shape == (n,) and np.all(layer.params["a"] == 0.25), \
        f"PReLU slopes: expected {n} values of 0.25 (torch.nn.PReLU's init), got {layer.params['a']}"
    layer.params["a"][:] = np.linspace(-0.3, 0.6, n)  # distinct slopes: a mix-up between units shows
    x, d = data(6, 5, scale=2.0), data(6, 5, seed=1)
    out, c = layer.forward(x)
    dx, g = layer.backward(d, c)
    t_out, t_dx, (t_da,) = torch_run(F.prelu, x, d, (layer.params["a"],))
    assert_close(out, t_out, "PReLU forward")
    assert_close(dx, t_dx, "PReLU dx")
    assert_close(g["a"], t_da, "PReLU da", hint="da sums dout * min(x, 0) over the batch (per unit)")
    l32 = Activation("prelu", num_parameters=n, dtype=np.float32)
    out32, c32 = l32.forward(x)
    dx32, g32 = l32.backward(d, c32)
    assert {out32.dtype, dx32.dtype, g32["a"].dtype} == {np.dtype(np.float32)}, "float32 PReLU must stay float32"


def test_activation_numerics_float32_extremes():
    x = np.array([[-1e4, -30.0, 0.0, 30.0, 1e4]], dtype=np.float32)
    for name in sorted(ACTIVATIONS) + ["softmax"]:
        layer = Activation(name)
        out, c = layer.forward(x)  # strict_numerics: any overflow warning fails the test
        dx, _ = layer.backward(np.ones_like(x), c)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx)) and out.dtype == np.float32, \
            f"Activation({name!r}) at +-1e4 in float32: out {out}, dx {dx}"


# ----------------------------------------------------------------------------- BatchNorm1d
def test_batchnorm_train_steps_match_torch():
    bn, tbn = BatchNorm1d(4, momentum=0.2), torch.nn.BatchNorm1d(4, momentum=0.2).double()
    assert np.all(bn.params["gamma"] == 1) and np.all(bn.params["beta"] == 0) and \
        np.all(bn.running_mean == 0) and np.all(bn.running_var == 1), "BatchNorm1d defaults: gamma 1, beta 0, mean 0, var 1"
    for step in range(4):
        bn.params["gamma"][:] = 1.0 + 0.1 * np.arange(4) + step   # as if an optimiser had moved them
        bn.params["beta"][:] = -0.2 * step
        with torch.no_grad():
            tbn.weight.copy_(torch.tensor(bn.params["gamma"]))
            tbn.bias.copy_(torch.tensor(bn.params["beta"]))
        tbn.weight.grad = tbn.bias.grad = None
        x, d = data(7, 4, seed=step, scale=3.0, shift=2.0), data(7, 4, seed=10 + step)
        out, c = bn.forward(x, train=True)
        dx, g = bn.backward(d, c)
        t_out, t_dx, _ = torch_run(tbn, x, d)
        assert_close(out, t_out, f"BatchNorm1d train forward, step {step}", hint="biased batch variance")
        assert_close(dx, t_dx, f"BatchNorm1d train dx, step {step}", tol=1e-10,
                     hint="the batch mean and variance depend on x too")
        assert_close(g["gamma"], tbn.weight.grad.numpy(), "BatchNorm1d dgamma")
        assert_close(g["beta"], tbn.bias.grad.numpy(), "BatchNorm1d dbeta")
        assert_close(bn.running_mean, tbn.running_mean.numpy(), f"running_mean after {step + 1} steps")
        assert_close(bn.running_var, tbn.running_var.numpy(), f"running_var after {step + 1} steps",
                     hint="the running variance uses the unbiased (N-1) estimate")
    tbn.eval()
    x, d = data(5, 4, seed=99), data(5, 4, seed=98)
    out, c = bn.forward(x, train=False)
    dx, g = bn.backward(d, c)
    t_out, t_dx, _ = torch_run(tbn, x, d)
    assert_close(out, t_out, "BatchNorm1d eval forward", hint="train=False must use the running statistics")
    assert_close(dx, t_dx, "BatchNorm1d eval dx", hint="in eval mode the statistics are constants")
    assert_close(bn(x), t_out, "BatchNorm1d __call__ (evaluation mode)")
    mean_before = bn.running_mean.copy()
    bn.forward(x, train=False)
    assert np.array_equal(bn.running_mean, mean_before), "train=False must not update the running statistics"


def test_batchnorm_batch_size_one():
    bn, tbn = BatchNorm1d(3), torch.nn.BatchNorm1d(3).double()
    x = data(1, 3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        tbn(torch.tensor(x))  # the oracle: PyTorch refuses batch size 1 in training, too
    with pytest.raises(ValueError, match=r"BatchNorm1d.forward: expected more than 1 value .* shape \(1, 3\)"):
        bn.forward(x, train=True)
    assert np.all(bn.running_mean == 0), "a refused batch must not touch the running statistics"
    bn.forward(data(4, 3, seed=1))
    tbn(torch.tensor(data(4, 3, seed=1)))
    tbn.eval()
    d = data(1, 3, seed=2)
    out, c = bn.forward(x, train=False)
    t_out, t_dx, _ = torch_run(tbn, x, d)
    assert_close(out, t_out, "BatchNorm1d eval with N = 1")
    assert_close(bn.backward(d, c)[0], t_dx, "BatchNorm1d eval dx with N = 1")


def test_batchnorm_float32():
    b64, b32 = BatchNorm1d(5), BatchNorm1d(5, dtype=np.float32)
    x, d = data(8, 5, scale=2.0, shift=1.0), data(8, 5, seed=1)
    for train in (True, False):
        o64, c64 = b64.forward(x, train)
        o32, c32 = b32.forward(x.astype(np.float32), train)
        dx64, g64 = b64.backward(d, c64)
        dx32, g32 = b32.backward(d.astype(np.float32), c32)
        arrays = {"out": o32, "dx": dx32, **g32, "running_mean": b32.running_mean, "running_var": b32.running_var,
                  **b32.params}
        bad = {k: v.dtype for k, v in arrays.items() if v.dtype != np.float32}
        assert not bad, f"BatchNorm1d(dtype=float32), train={train}: these are not float32: {bad}"
        assert rel(o32, o64) < 1e-5 and rel(dx32, dx64) < 1e-5, f"float32 BatchNorm1d drifts from float64 (train={train})"


# ----------------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("shape", [(6, 5), (1, 5), (2, 3, 5)])
def test_layernorm_matches_torch(shape):
    ln, tln = LayerNorm(5), torch.nn.LayerNorm(5).double()
    ln.params["gamma"][:] = np.linspace(0.5, 2.0, 5)
    ln.params["beta"][:] = np.linspace(-1, 1, 5)
    with torch.no_grad():
        tln.weight.copy_(torch.tensor(ln.params["gamma"]))
        tln.bias.copy_(torch.tensor(ln.params["beta"]))
    x, d = data(*shape, scale=3.0, shift=1.0), data(*shape, seed=1)
    out, c = ln.forward(x)
    dx, g = ln.backward(d, c)
    t_out, t_dx, _ = torch_run(tln, x, d)
    assert_close(out, t_out, f"LayerNorm forward {shape}", hint="normalise over the last axis, biased variance")
    assert_close(dx, t_dx, f"LayerNorm dx {shape}", tol=1e-10)
    assert_close(g["gamma"], tln.weight.grad.numpy(), f"LayerNorm dgamma {shape}", hint="sum over all but the last axis")
    assert_close(g["beta"], tln.bias.grad.numpy(), f"LayerNorm dbeta {shape}")
    assert_close(ln.forward(x, train=False)[0], t_out, "LayerNorm is the same in evaluation mode")
    l32 = LayerNorm(5, dtype=np.float32)
    o32, c32 = l32.forward(x)
    dx32, g32 = l32.backward(d, c32)
    dts = {o32.dtype, dx32.dtype, *(v.dtype for v in g32.values()), *(v.dtype for v in l32.params.values())}
    assert dts == {np.dtype(np.float32)}, f"LayerNorm(dtype=float32) gave dtypes {dts}"


# ----------------------------------------------------------------------------- finite differences
def _net():
    return Sequential(Linear(3, 4, seed=0), BatchNorm1d(4), Activation("tanh"),
                      Residual(Sequential(Linear(4, 4, init="xavier", seed=1), LayerNorm(4),
                                          Activation("prelu", num_parameters=4))),
                      Linear(4, 2, seed=2))


@pytest.mark.parametrize("make", [lambda: Linear(3, 4, seed=0), lambda: BatchNorm1d(3), lambda: LayerNorm(3),
                                  lambda: Activation("prelu", num_parameters=3), lambda: Activation("softmax"),
                                  _net], ids=["linear", "batchnorm", "layernorm", "prelu", "softmax", "net"])
def test_backward_matches_finite_differences(make):
    layer = make()
    rng = np.random.default_rng(4)
    for p in layer.params.values():
        p += 0.3 * rng.standard_normal(p.shape)  # move off the defaults (e.g. beta = 0)
    x = data(5, 3, seed=5, scale=1.5)
    out, c = layer.forward(x)
    d = rng.standard_normal(out.shape)
    dx, grads = layer.backward(d, c)
    num = gradcheck.numerical_vjp(lambda v: layer.forward(v)[0], x, d)
    assert rel(dx, num) < 1e-7, f"{layer!r}: dx vs finite differences {rel(dx, num):.1e}"
    assert sorted(grads) == sorted(layer.params), f"{layer!r}: grads keys {list(grads)} != params keys {list(layer.params)}"
    for k, p in layer.params.items():
        num = gradcheck.numerical_vjp(lambda _: layer.forward(x)[0], p, d)
        assert rel(grads[k], num) < 1e-7, f"{layer!r}: grad {k!r} vs finite differences {rel(grads[k], num):.1e}"


# ----------------------------------------------------------------------------- Residual, Sequential
def test_sequential_and_residual_match_torch_in_both_modes():
    net = _net()
    for p in net.params.values():
        p += 0.2 * np.random.default_rng(7).standard_normal(p.shape)
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                               torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.PReLU(4),
                               torch.nn.Linear(4, 2)).double()
    tp = dict(zip(["0.W", "0.b", "1.gamma", "1.beta", "3.0.W", "3.0.b", "3.1.gamma", "3.1.beta", "3.2.a",
                   "4.W", "4.b"], tnet.parameters()))
    assert list(tp) == list(net.params), f"Sequential keys {list(net.params)}"
    with torch.no_grad():
        for k, t in tp.items():
            t.copy_(torch.tensor(net.params[k].T if k.endswith("W") else net.params[k]))

    def tforward(x):
        h = tnet[2](tnet[1](tnet[0](x)))
        h = h + tnet[5](tnet[4](tnet[3](h)))          # the residual block
        return tnet[6](h)

    for step, train in enumerate([True, True, False]):
        tnet.train(train)
        for t in tp.values():
            t.grad = None
        x, d = data(6, 3, seed=step), data(6, 2, seed=20 + step)
        out, c = net.forward(x, train=train)
        dx, g = net.backward(d, c)
        t_out, t_dx, _ = torch_run(tforward, x, d)
        assert isinstance(c, SequentialCache) and isinstance(c.caches[1], BatchNormCache), "cache layout"
        assert_close(out, t_out, f"Sequential forward (train={train})", hint="is train passed down?")
        assert_close(dx, t_dx, f"Sequential dx (train={train})", tol=1e-10)
        for k, t in tp.items():
            want = t.grad.numpy().T if k.endswith("W") else t.grad.numpy()
            assert_close(g[k], want, f"Sequential grad {k!r} (train={train})", tol=1e-10,
                         hint="the residual adds dout to the block's dx")


def test_sequential_params_are_the_layers_arrays():
    net = _net()
    assert net.params["3.1.gamma"] is net[3].block[1].params["gamma"] and net.params["0.W"] is net[0].params["W"], \
        "Sequential.params must hold the layers' own arrays (same objects), not copies"
    assert net[3].params is net[3].block.params, "Residual.params must be its block's"
    x = data(4, 3)
    before = net(x)
    _, grads = net.backward(np.ones((4, 2)), net.forward(x)[1])
    optim.SGD(lr=0.5).step(net.params, grads)
    assert not np.allclose(net(x), before), "an optimiser step on Sequential.params did not change the output"
    assert np.array_equal(net[0].params["W"], net.params["0.W"]), "layer and Sequential params diverged"


def test_residual_identity_path():
    block = Sequential(Linear(3, 3, init="zeros", seed=0), Activation("relu"))
    res = Residual(block)
    x, d = data(4, 3), data(4, 3, seed=1)
    out, c = res.forward(x)
    dx, g = res.backward(d, c)
    np.testing.assert_array_equal(out, x, err_msg="Residual with a zero block must be the identity")
    np.testing.assert_array_equal(dx, d, err_msg="Residual with a zero block must pass dout through: dx = dout + 0")
    assert list(g) == ["0.W", "0.b"], f"Residual grads keys {list(g)}, expected the block's"


def test_bad_input():
    with pytest.raises(ValueError, match=r"Linear\(3, 2, dtype=float64\).forward: x must have shape \(N, 3\), got \(2, 4\)"):
        Linear(3, 2).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3, .*\).forward: x must have shape \(N, 3\)"):
        BatchNorm1d(3).forward(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match=r"LayerNorm\(3, .*\).forward: x must have shape \(\.\.\., 3\), got \(2, 4\)"):
        LayerNorm(3).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Activation\('prelu'\).forward: x must have shape \(N, 3\)"):
        Activation("prelu", num_parameters=3).forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match="Sequential: layer 2 .* expects 4 features but the layers before it output 5"):
        Sequential(Linear(3, 5), Activation("relu"), Linear(4, 2))
    with pytest.raises(ValueError, match="Residual: the block maps 3 features to 2"):
        Residual(Sequential(Linear(3, 2), Activation("relu")))
    with pytest.raises(TypeError, match="Sequential .*expected an actgrad.layers layer, got ufunc"):
        Sequential(Linear(3, 2), np.tanh)
    with pytest.raises(ValueError, match="unknown activation 'relu6x'"):
        Activation("relu6x")
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['alpha'\]"):
        Activation("relu", alpha=0.1)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Linear(3, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="fan_out must be a positive int"):
        Linear(3, 0)
    lin = Linear(3, 2)
    out, c = lin.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Linear.backward: dout has shape \(4, 3\), expected \(4, 2\)"):
        lin.backward(np.ones((4, 3)), c)
    with pytest.raises(TypeError, match="cache must be the LinearCache returned by Linear.forward"):
        lin.backward(out, (np.ones((4, 3)),))
    with pytest.raises(TypeError, match=r"Linear\(3, 2, dtype=float64\).forward: x must be a real numeric array"):
        lin.forward([["a", "b", "c"]])


def test_normalization_layers_are_the_same_classes_in_layers_and_normalization():
    import actgrad
    from actgrad import layers, normalization
    for name in ("BatchNorm1d", "LayerNorm", "BatchNormCache", "LayerNormCache"):
        assert getattr(layers, name) is getattr(normalization, name), (
            f"actgrad.layers.{name} is not actgrad.normalization.{name}: re-export the class, do not redefine it")
    missing = [n for n in layers.__all__ if not hasattr(layers, n)]
    assert not missing, f"actgrad.layers.__all__ names {missing}, which the module does not define or import"
    assert actgrad.layers is layers and actgrad.rnn.__name__ == "actgrad.rnn", (
        "import actgrad should expose actgrad.layers and actgrad.rnn as attributes (see actgrad/__init__.py)")
