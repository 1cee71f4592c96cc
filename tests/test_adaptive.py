"""actgrad.adaptive: Swish with learnable beta, against PyTorch autograd (float64) and finite differences."""
import numpy as np
import pytest
import torch

from actgrad import activations as A
from actgrad import adaptive as AD
from actgrad import datasets, optim
from actgrad.gradcheck import numerical_gradient, rel_error


def torch_swish(x, beta):
    xt = torch.tensor(x, requires_grad=True)
    bt = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    return xt, bt, xt * torch.sigmoid(bt * xt)


@pytest.mark.parametrize("beta", [1.0, 0.3, 2.5, -0.7, 0.0])
def test_value_and_partials_match_autograd(beta):
    x = np.concatenate([np.linspace(-12, 12, 241), [-1e3, -1e-9, 0.0, 1e-9, 1e3]])
    xt, _, y = torch_swish(x, beta)
    dx, = torch.autograd.grad(y.sum(), xt)
    np.testing.assert_allclose(AD.swish_beta(x, beta), y.detach().numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(AD.swish_beta_prime(x, beta), dx.numpy(), rtol=1e-10, atol=1e-15)
    # d/dbeta elementwise: one autograd call per element is slow, so use a per-element beta vector
    bvec = torch.full((x.size,), beta, dtype=torch.float64, requires_grad=True)
    yb = torch.tensor(x) * torch.sigmoid(bvec * torch.tensor(x))
    db, = torch.autograd.grad(yb.sum(), bvec)
    # autograd forms sigma*(1-sigma) from a rounded sigma, which loses digits in the tails
    # (checked against mpmath below), so the comparison with it is absolute there
    np.testing.assert_allclose(AD.swish_beta_grad_beta(x, beta), db.numpy(), rtol=1e-10, atol=1e-12)


def test_beta_gradient_tails_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    for x, beta in [(8.0, 2.5), (-9.0, 2.5), (30.0, 1.0), (-40.0, 0.9), (700.0, 1.0)]:
        s = 1 / (1 + mpmath.exp(-mpmath.mpf(beta) * x))
        exact = float(mpmath.mpf(x) ** 2 * s * (1 - s))
        assert float(AD.swish_beta_grad_beta(x, beta)) == pytest.approx(exact, rel=1e-12)


def test_beta_gradient_closed_form_and_finite_differences():
    x = np.linspace(-4, 4, 17)
    for beta in (0.5, 1.0, 2.0):
        s = 1 / (1 + np.exp(-beta * x))
        np.testing.assert_allclose(AD.swish_beta_grad_beta(x, beta), x ** 2 * s * (1 - s), rtol=1e-12, atol=1e-15)
        for xi in x:
            num = numerical_gradient(lambda b: AD.swish_beta(xi, b[0]), np.array([beta]))
            assert num[0] == pytest.approx(float(AD.swish_beta_grad_beta(xi, beta)), rel=1e-6, abs=1e-9)


def test_beta_one_is_silu():
    x = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(AD.swish_beta(x, 1.0), A.silu(x), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(AD.swish_beta_prime(x, 1.0), A.silu_prime(x), rtol=1e-12, atol=1e-300)


def test_backward_reduces_over_broadcast_axes_like_autograd():
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((7, 5)) * 3, rng.standard_normal((7, 5))
    for beta in (np.array(1.3), np.array([0.8]), rng.uniform(0.2, 2.0, 5)):
        xt, bt, y = torch_swish(x, beta)
        dx_t, db_t = torch.autograd.grad(y, (xt, bt), grad_outputs=torch.tensor(g))
        dx, db = AD.swish_beta_backward(g, x, beta)
        assert db.shape == beta.shape
        np.testing.assert_allclose(dx, dx_t.numpy(), rtol=1e-12)
        np.testing.assert_allclose(db, db_t.numpy(), rtol=1e-12)


def test_dtypes_and_errors():
    x32 = np.linspace(-3, 3, 7, dtype=np.float32)
    assert AD.swish_beta(x32, 1.5).dtype == np.float32
    assert AD.swish_beta_backward(np.ones_like(x32), x32, np.float32(1.5))[1].dtype == np.float32
    with pytest.raises(ValueError, match="swish_beta"):
        AD.swish_beta(np.zeros((3, 4)), np.ones(3))
    with pytest.raises(TypeError, match="swish_beta"):
        AD.swish_beta("abc", 1.0)
    with np.errstate(all="raise"):
        assert np.all(np.isfinite(AD.swish_beta_grad_beta(np.array([-1e4, 1e4, 1e200]), 1.0)))


@pytest.mark.parametrize("per_unit", [False, True])
def test_swish_mlp_gradients_match_torch(per_unit):
    rng = np.random.default_rng(1)
    model = AD.SwishBetaMLP([6, 5, 4, 3], beta_init=0.7, per_unit=per_unit, seed=2)
    model.params["beta1"] += rng.uniform(-0.3, 0.3, model.params["beta1"].shape)
    X, y = rng.standard_normal((9, 6)), rng.integers(0, 3, 9)
    loss, grads = model.loss(X, y)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(X)
    for l in (1, 2):
        z = h @ tp[f"W{l}"] + tp[f"b{l}"]
        h = z * torch.sigmoid(tp[f"beta{l}"] * z)
    out = h @ tp["W3"] + tp["b3"]
    lt = torch.nn.functional.cross_entropy(out, torch.tensor(y))
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    assert list(grads) == list(model.params)
    for k in model.params:
        assert grads[k].shape == model.params[k].shape
        assert rel_error(grads[k], tp[k].grad.numpy()) < 1e-12, k


def test_swish_mlp_trains_with_actgrad_train_and_moves_beta():
    X, y = datasets.spirals(n_per_class=60, seed=0)
    model = AD.SwishBetaMLP([2, 32, 32, 3], beta_init=1.0, seed=0)
    hist = optim.train(model, X, y, optim.Adam(0.01), epochs=40, batch_size=32, seed=0, progress=False)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert abs(float(model.params["beta1"][0]) - 1.0) > 1e-3
