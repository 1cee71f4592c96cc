"""actgrad.activations against independent oracles: PyTorch autograd (float64 and float32),
mpmath at 50 digits, math.erf, and mathematical limits/identities.

Every test runs with NumPy overflow/invalid/divide turned into exceptions and all warnings as errors.
"""
import dataclasses
import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import actgrad.activations as A
from actgrad import _smooth

torch.set_num_threads(1)


pytestmark = pytest.mark.usefixtures("strict_numerics")


_rng = np.random.default_rng(0)
GRID = np.concatenate([
    [0.0, 1e-8, -1e-8, 1.0, -1.0, 3.0, -3.0, 20.0, -20.0, 1e3, -1e3, 1e4, -1e4, 0.5, -0.75, 5.0, -5.0, 19.999, 20.001],
    3.0 * _rng.standard_normal(40),
])

# (activation name, kwargs, torch forward taking a tensor)
CASES = [
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("relu", {}, F.relu),
    ("leaky_relu", {}, lambda t: F.leaky_relu(t, 0.01)),
    ("leaky_relu", {"alpha": 0.2}, lambda t: F.leaky_relu(t, 0.2)),
    ("elu", {}, F.elu),
    ("elu", {"alpha": 2.5}, lambda t: F.elu(t, alpha=2.5)),
    ("selu", {}, F.selu),
    ("gelu", {}, F.gelu),
    ("gelu", {"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
    ("silu", {}, F.silu),
    ("softplus", {}, F.softplus),
    ("softplus", {"beta": 2.0, "threshold": 10.0}, lambda t: F.softplus(t, beta=2.0, threshold=10.0)),
    ("mish", {}, F.mish),
]
IDS = [f"{n}-{kw}" if kw else n for n, kw, _ in CASES]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-15), np.float32: dict(rtol=1e-5, atol=1e-7)}


def torch_value_and_grad(tfn, x):
    t = torch.tensor(x, requires_grad=True)
    y = tfn(t)
    (g,) = torch.autograd.grad(y.sum(), t)
    return y.detach().numpy(), g.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw,tfn", CASES, ids=IDS)
def test_matches_torch_autograd(name, kw, tfn, dtype):
    x = GRID.astype(dtype)
    rec = A.ACTIVATIONS[name]
    y, d = rec.fn(x, **kw), rec.prime(x, **kw)
    assert y.dtype == dtype and d.dtype == dtype and y.shape == x.shape
    # the truth: torch in float64 on the very same (float32-representable) inputs
    ty, td = torch_value_and_grad(tfn, x.astype(np.float64))
    np.testing.assert_allclose(y, ty, **TOL[dtype])
    np.testing.assert_allclose(d, td, **TOL[dtype])
    if dtype == np.float32:
        # torch's own float32 kernels: agree to 1e-5 relative up to torch's float32 cancellation in
        # tails (e.g. F.gelu(-3.) in float32 is 1.3e-4 relative off, via 1 + erf(x/sqrt 2))
        ty32, td32 = torch_value_and_grad(tfn, x)
        np.testing.assert_allclose(y, ty32, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(d, td32, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw,tfn", CASES, ids=IDS)
def test_kinks_at_exact_zero_follow_torch(name, kw, tfn):
    for zero in (0.0, -0.0):
        ty, td = torch_value_and_grad(tfn, np.array([zero]))
        rec = A.ACTIVATIONS[name]
        assert float(rec.fn(zero, **kw)) == ty[0]
        assert float(rec.prime(zero, **kw)) == pytest.approx(td[0], rel=1e-15, abs=0)


def test_documented_kink_values():
    # the contract's own statements, independently of torch
    assert A.relu_prime(0.0) == 0 and A.leaky_relu_prime(0.0, alpha=0.3) == pytest.approx(0.3)
    assert A.elu_prime(0.0, alpha=2.5) == 2.5
    assert A.selu_prime(0.0) == pytest.approx(1.0507009873554805 * 1.6732632423543772)


def test_softplus_threshold_boundary_follows_torch():
    x = np.array([20.0, np.nextafter(20.0, 21), np.nextafter(20.0, 19), 5.0, 5.0 + 1e-12])
    for beta, thr in [(1.0, 20.0), (4.0, 20.0)]:
        ty, td = torch_value_and_grad(lambda t: F.softplus(t, beta=beta, threshold=thr), x)
        d = A.softplus_prime(x, beta=beta, threshold=thr)
        np.testing.assert_allclose(d, td, rtol=1e-15)
        assert (d == 1.0).tolist() == (td == 1.0).tolist()  # same branch on each side of the boundary
        np.testing.assert_allclose(A.softplus(x, beta=beta, threshold=thr), ty, rtol=1e-15)


# --- independent high-precision oracle ---------------------------------------------------------
mpmath.mp.dps = 50
_mpsig = lambda x: 1 / (1 + mpmath.exp(-x))
_mpsp = lambda x: mpmath.log1p(mpmath.exp(x))
_mpPhi = lambda x: mpmath.ncdf(x)
_k, _c = mpmath.sqrt(2 / mpmath.pi), mpmath.mpf("0.044715")
MP = {
    "sigmoid": (_mpsig, {}),
    "tanh": (mpmath.tanh, {}),
    "gelu": (lambda x: x * _mpPhi(x), {}),
    "gelu_tanh": (lambda x: x / 2 * (1 + mpmath.tanh(_k * (x + _c * x ** 3))), {"approximate": "tanh"}),
    "silu": (lambda x: x * _mpsig(x), {}),
    "softplus": (_mpsp, {"threshold": 1e300}),
    "mish": (lambda x: x * mpmath.tanh(_mpsp(x)), {}),
    "elu": (lambda x: x if x > 0 else mpmath.expm1(x), {}),
    "selu": (lambda x: A.SELU_LAMBDA * (x if x > 0 else A.SELU_ALPHA * mpmath.expm1(x)), {}),
}
TAILS = [-700.0, -100.0, -30.0, -20.0, -8.0, -2.5, -0.3, 1e-8, 0.3, 2.5, 8.0, 20.0, 30.0]


@pytest.mark.parametrize("key", list(MP))
def test_relative_accuracy_against_mpmath_including_tails(key):
    """Stronger than the torch comparison: relative error <= 1e-12 even where values are tiny
    (torch returns 0 for e.g. tanh'(20) or gelu(-30)). 800 digits so that 1 + tanh(u) and the
    numerical derivative of tanh near -1 keep all their digits."""
    f, kw = MP[key]
    name = key.split("_")[0]
    pts = [x for x in TAILS if not (key == "gelu" and x < -37)]  # x*Phi(x) underflows below -37
    y = A.ACTIVATIONS[name].fn(np.array(pts), **kw)
    d = A.ACTIVATIONS[name].prime(np.array(pts), **kw)
    with mpmath.workdps(800):
        for xi, yi, di in zip(pts, y, d):
            ref_y = float(f(mpmath.mpf(xi)))
            ref_d = float(mpmath.diff(f, mpmath.mpf(xi)))
            # gelu: rounding x/sqrt(2) alone costs 2 (x^2/2) eps relative in erfc, ~1e-13 at x = -30
            assert yi == pytest.approx(ref_y, rel=1e-12, abs=1e-300), (key, xi)
            assert di == pytest.approx(ref_d, rel=1e-12, abs=1e-300), (key, xi)


@pytest.mark.parametrize("x", [-3.0, -1.0, 0.0, 1.0, 3.0])
def test_gelu_published_values(x):
    exact = x * 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # GELU(x) = x Phi(x), Hendrycks & Gimpel
    assert float(A.gelu(x)) == pytest.approx(exact, rel=1e-14, abs=1e-16)
    assert float(A.gelu(x)) == pytest.approx(F.gelu(torch.tensor(x, dtype=torch.float64)).item(), rel=1e-14, abs=1e-16)
    phi = math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    assert float(A.gelu_prime(x)) == pytest.approx(0.5 * (1 + math.erf(x / math.sqrt(2))) + x * phi, rel=1e-13)


def test_gelu_without_scipy(monkeypatch):
    monkeypatch.setattr(_smooth, "_erfc_scipy", None)
    for dtype in (np.float64, np.float32):
        x = GRID.astype(dtype)
        ty, td = torch_value_and_grad(F.gelu, x.astype(np.float64))
        assert A.gelu(x).dtype == dtype
        np.testing.assert_allclose(A.gelu(x), ty, **TOL[dtype])
        np.testing.assert_allclose(A.gelu_prime(x), td, **TOL[dtype])


def test_prime_from_output_helpers():
    x = np.linspace(-6, 6, 41)
    _, ts = torch_value_and_grad(torch.sigmoid, x)
    _, tt = torch_value_and_grad(torch.tanh, x)
    np.testing.assert_allclose(A.sigmoid_prime_from_output(A.sigmoid(x)), ts, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(A.tanh_prime_from_output(A.tanh(x)), tt, rtol=1e-10, atol=1e-15)


# --- PReLU ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prelu_matches_torch(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 4)).astype(dtype)
    x[0] = 0.0
    a = np.array([0.25, -0.1, 0.0, 1.5], dtype=dtype)
    dout = rng.standard_normal((7, 4)).astype(dtype)
    tx, ta = torch.tensor(x, requires_grad=True), torch.tensor(a, requires_grad=True)
    ty = F.prelu(tx, ta)
    gx, ga = torch.autograd.grad(ty, (tx, ta), grad_outputs=torch.tensor(dout))
    tol = TOL[dtype]
    np.testing.assert_allclose(A.prelu(x, a), ty.detach().numpy(), **tol)
    dx, da = A.prelu_backward(dout, x, a)
    assert dx.shape == x.shape and da.shape == a.shape and dx.dtype == dtype and da.dtype == dtype
    np.testing.assert_allclose(dx, gx.numpy(), **tol)
    np.testing.assert_allclose(da, ga.numpy(), **tol)
    np.testing.assert_allclose(dout * A.prelu_prime(x, a), gx.numpy(), **tol)
    np.testing.assert_allclose((dout * A.prelu_grad_a(x)).sum(axis=0), ga.numpy(), **tol)
    # one shared slope
    tx, ta = torch.tensor(x, requires_grad=True), torch.tensor([0.3], dtype=tx.dtype, requires_grad=True)
    gx, ga = torch.autograd.grad(F.prelu(tx, ta), (tx, ta), grad_outputs=torch.tensor(dout))
    dx, da = A.prelu_backward(dout, x, 0.3)
    assert da.shape == ()
    np.testing.assert_allclose(dx, gx.numpy(), **tol)
    np.testing.assert_allclose(da, ga.numpy()[0], **tol)


def test_prelu_errors():
    with pytest.raises(ValueError, match="prelu"):
        A.prelu(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match="prelu_backward"):
        A.prelu_backward(np.ones((2, 4)), np.ones((3, 4)), np.ones(4))
    with pytest.raises(TypeError, match="prelu"):
        A.prelu(np.ones(3), "a")


# --- coercion, dtypes, special values ------------------------------------------------------------
ALL = [(n, kw) for n, kw, _ in CASES]


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_input_kinds_and_dtypes(name, kw):
    rec = A.ACTIVATIONS[name]
    for f in (rec.fn, rec.prime):
        out = f(0.5, **kw)
        assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64
        assert f(np.float32(0.5), **kw).dtype == np.float32 and f(np.float32(0.5), **kw).shape == ()
        assert f(2, **kw).dtype == np.float64 and f(True, **kw).dtype == np.float64
        lst = f([[1, -2, 3], [0, 4, -5]], **kw)
        assert lst.shape == (2, 3) and lst.dtype == np.float64
        np.testing.assert_array_equal(lst, f(np.array([[1.0, -2, 3], [0, 4, -5]]), **kw))
        h = f(np.array([-3.0, -0.5, 0.0, 0.5, 3.0, 65504.0, -65504.0], dtype=np.float16), **kw)
        assert h.dtype == np.float16
        ref = f(np.array([-3.0, -0.5, 0.0, 0.5, 3.0, 65504.0, -65504.0], dtype=np.float16).astype(np.float64), **kw)
        fits = np.abs(ref) <= 65504  # float16 max; beyond it the correctly rounded result is +-inf
        np.testing.assert_allclose(h.astype(np.float64)[fits], ref[fits], rtol=2e-3, atol=1e-4)
        np.testing.assert_array_equal(h[~fits], np.sign(ref[~fits]) * np.inf)
        assert f(np.array([], dtype=np.float32), **kw).shape == (0,)


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_input_not_modified_and_fresh_output(name, kw):
    x = GRID.copy()
    for f in (A.ACTIVATIONS[name].fn, A.ACTIVATIONS[name].prime):
        y = f(x, **kw)
        assert not np.shares_memory(x, y)
        np.testing.assert_array_equal(x, GRID)


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("bad", ["abc", None, [1, "a"], 1j, np.array([1 + 0j]), np.array([1.0], dtype=object), {1: 2}])
def test_non_numeric_input_raises_typeerror(name, kw, bad):
    rec = A.ACTIVATIONS[name]
    for f in (rec.fn, rec.prime):
        with pytest.raises(TypeError, match=f.__name__):
            f(bad, **kw)


def test_ragged_and_bad_kwargs():
    with pytest.raises(ValueError, match="relu"):
        A.relu([[1, 2], [3]])
    with pytest.raises(ValueError, match="approximate"):
        A.gelu(1.0, approximate="erf")
    with pytest.raises(ValueError, match="beta"):
        A.softplus(1.0, beta=0)
    with pytest.raises(TypeError, match="alpha"):
        A.leaky_relu(1.0, alpha="0.1")


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_nan_propagates_and_huge_finite_inputs_are_quiet(name, kw, dtype):
    rec = A.ACTIVATIONS[name]
    big = np.finfo(dtype).max
    x = np.array([np.nan, 1.0, -big, big, -1e30 if dtype != np.float16 else -6e4], dtype=dtype)
    for f in (rec.fn, rec.prime):
        y = f(x, **kw)
        assert np.isnan(y[0]) and not np.isnan(y[1:]).any()


LIMITS = {  # name: (f(-inf), f(+inf), f'(-inf), f'(+inf)) -- mathematical limits
    "sigmoid": (0, 1, 0, 0), "tanh": (-1, 1, 0, 0), "relu": (0, np.inf, 0, 1),
    "leaky_relu": (-np.inf, np.inf, 0.01, 1), "elu": (-1, np.inf, 0, 1),
    "selu": (-A.SELU_LAMBDA * A.SELU_ALPHA, np.inf, 0, A.SELU_LAMBDA), "gelu": (0, np.inf, 0, 1),
    "silu": (0, np.inf, 0, 1), "softplus": (0, np.inf, 0, 1), "mish": (0, np.inf, 0, 1),
}


@pytest.mark.parametrize("name", list(LIMITS))
def test_infinities_give_limits(name):
    rec = A.ACTIVATIONS[name]
    fm, fp, dm, dp = LIMITS[name]
    x = np.array([-np.inf, np.inf])
    np.testing.assert_allclose(rec.fn(x), [fm, fp], rtol=1e-15)
    np.testing.assert_allclose(rec.prime(x), [dm, dp], rtol=1e-15)
    if name == "gelu":
        np.testing.assert_allclose(A.gelu(x, approximate="tanh"), [0, np.inf])


# --- registry -------------------------------------------------------------------------------------
def test_registry_contents_and_immutability():
    assert set(A.ACTIVATIONS) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
                                  "softplus", "mish"}
    for name, rec in A.ACTIVATIONS.items():
        assert rec.name == name and rec.fn is getattr(A, name) and rec.prime is getattr(A, name + "_prime")
        assert isinstance(rec.latex, str) and rec.latex and isinstance(rec.range, str)
        with pytest.raises(dataclasses.FrozenInstanceError):
            rec.fn = A.relu
        d = rec.defaults
        d["junk"] = 1
        assert "junk" not in rec.defaults
        assert rec.defaults.keys() <= set(rec.fn.__code__.co_varnames) | set(getattr(rec.fn, "__wrapped__", rec.fn).__code__.co_varnames)
    assert A.ACTIVATIONS["softplus"].defaults == {"beta": 1.0, "threshold": 20.0}
    assert A.get_activation("mish") is A.ACTIVATIONS["mish"]
    assert A.get_activation(A.ACTIVATIONS["relu"]) is A.ACTIVATIONS["relu"]


def test_registry_metadata_is_true():
    x = np.linspace(-12, 12, 24001)
    for name, rec in A.ACTIVATIONS.items():
        y = rec.fn(x)
        odd = np.allclose(rec.fn(-x), -y, atol=1e-12)
        assert rec.zero_centred == odd, name
        lo = rec.range.split(",")[0].strip()
        bound = {"-inf": -np.inf, "-alpha": -rec.defaults.get("alpha", 1.0)}.get(lo[1:], None)
        bound = float(lo[1:]) if bound is None else bound
        assert y.min() >= bound - 1e-4, name
        if lo[0] == "[" and np.isfinite(bound):  # a closed bound is attained (to the 4 printed digits)
            assert y.min() == pytest.approx(bound, abs=1e-4), name


def test_get_activation_errors():
    with pytest.raises(ValueError, match="swish.*known:.*relu.*mish"):
        A.get_activation("swish")
    with pytest.raises(ValueError, match="known"):
        A.get_activation("prelu")
    with pytest.raises(TypeError, match="get_activation"):
        A.get_activation(None)
    with pytest.raises(KeyError):
        A.ACTIVATIONS["nope"]


# --- identities (hypothesis) ---------------------------------------------------------------------
finite = st.floats(-1e4, 1e4, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(finite)
def test_identities(x):
    assert float(A.tanh_prime(x)) == pytest.approx(4 * float(A.sigmoid_prime(2 * x)), rel=1e-12, abs=1e-300)
    assert float(A.softplus_prime(x, threshold=1e300)) == pytest.approx(float(A.sigmoid(x)), rel=1e-14, abs=1e-300)
    assert float(A.tanh(x)) == pytest.approx(2 * float(A.sigmoid(2 * x)) - 1, rel=1e-12, abs=1e-15)
    assert float(A.silu(x)) == pytest.approx(x * float(A.sigmoid(x)), rel=1e-14, abs=1e-300)


# --- softmax family ---------------------------------------------------------------------------------
def _softmax_input(dtype):
    x = 3.0 * np.random.default_rng(3).standard_normal((3, 4, 5))
    x[0, 0, :] = [1e4, -1e4, 0.0, 1e4, 5.0]
    x[1, 1, :] = -1e4
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_log_softmax_and_vjp_match_torch(dtype, axis):
    x = _softmax_input(dtype)
    dout = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    ts = torch.softmax(t, dim=axis)
    (tvjp,) = torch.autograd.grad(ts, t, grad_outputs=torch.tensor(dout.astype(np.float64)))
    s = A.softmax(x, axis=axis)
    assert s.dtype == dtype and s.shape == x.shape
    np.testing.assert_allclose(s, ts.detach().numpy(), **TOL[dtype])
    ls = A.log_softmax(x, axis=axis)
    assert ls.dtype == dtype
    np.testing.assert_allclose(ls, torch.log_softmax(t, dim=axis).detach().numpy(), rtol=TOL[dtype]["rtol"])
    g = A.softmax_backward(dout, s, axis=axis)
    assert g.dtype == dtype and g.shape == x.shape
    np.testing.assert_allclose(g, tvjp.numpy(), **TOL[dtype])


def test_softmax_nonfinite_rows_like_torch():
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [-np.inf, 0.0], [np.nan, 1.0]])
    t = torch.tensor(x)
    np.testing.assert_array_equal(A.softmax(x), torch.softmax(t, dim=1).numpy())
    np.testing.assert_array_equal(A.log_softmax(x), torch.log_softmax(t, dim=1).numpy())


def test_softmax_jacobian_matches_torch():
    x = np.array([0.3, -1.2, 2.0, 1e3, 0.0])
    J = A.softmax_jacobian(x)
    TJ = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, 0), torch.tensor(x)).numpy()
    np.testing.assert_allclose(J, TJ, rtol=1e-10, atol=1e-15)
    assert A.softmax_jacobian(np.float32([1, 2])).dtype == np.float32
    assert A.softmax_jacobian([1, 2, 3]).shape == (3, 3)


def test_softmax_errors():
    with pytest.raises(ValueError, match="softmax_backward.*same shape"):
        A.softmax_backward(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="softmax_jacobian.*1-D"):
        A.softmax_jacobian(np.ones((2, 3)))
    with pytest.raises(ValueError, match="softmax_jacobian.*1-D"):
        A.softmax_jacobian(1.0)
    with pytest.raises(ValueError, match="softmax"):
        A.softmax(1.0)
    with pytest.raises(ValueError, match="axis"):
        A.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(TypeError, match="log_softmax"):
        A.log_softmax(["a", "b"])


rows = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-1e4, 1e4))


@settings(max_examples=100, deadline=None)
@given(rows, st.floats(-1e3, 1e3))
def test_softmax_rows_sum_to_one_and_shift_invariant(x, c):
    s = A.softmax(x)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-12)
    assert (s >= 0).all() and (s <= 1).all()
    np.testing.assert_allclose(A.softmax(x + c), s, atol=1e-9)
    np.testing.assert_allclose(np.exp(A.log_softmax(x)), s, atol=1e-12)
