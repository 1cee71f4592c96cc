"""actgrad.losses against torch.nn.functional values and autograd gradients (float64 and float32),
including extreme logits, with NumPy floating-point errors and all warnings turned into exceptions."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from actgrad.losses import bce_with_logits, mse, softmax_cross_entropy

torch.set_num_threads(1)
TOL = {np.float64: dict(rtol=1e-10, atol=1e-15), np.float32: dict(rtol=1e-5, atol=1e-7)}


pytestmark = pytest.mark.usefixtures("strict_numerics")


def torch_loss_and_grad(fn, a, *rest):
    t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    loss = fn(t, *rest)
    (g,) = torch.autograd.grad(loss, t)
    return loss.item(), g.numpy()


def _logits(rng, n, c, dtype, scale=3.0):
    z = scale * rng.standard_normal((n, c))
    z[0, :] = [1e4, -1e4] + [0.0] * (c - 2)     # extreme rows: one huge, one tiny, a tie
    z[1, :] = -1e4
    z[2, :2] = [1e3, 1e3]
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_matches_torch(dtype):
    rng = np.random.default_rng(0)
    z = _logits(rng, 9, 5, dtype)
    y = rng.integers(0, 5, size=9)
    y[0] = 1  # the label with logit -1e4 against a 1e4 competitor: loss 2e4
    loss, dz = softmax_cross_entropy(z, y)
    tl, tg = torch_loss_and_grad(F.cross_entropy, z.astype(np.float64), torch.tensor(y))
    assert isinstance(loss, float) and dz.dtype == dtype and dz.shape == z.shape
    assert loss == pytest.approx(tl, rel=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(dz, tg, **TOL[dtype])
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-6)   # rows of p - onehot sum to 0


def test_softmax_cross_entropy_accepts_lists_and_int_logits():
    loss, dz = softmax_cross_entropy([[1, 2, 3], [3, 2, 1]], [2, 0])
    tl, tg = torch_loss_and_grad(F.cross_entropy, np.array([[1.0, 2, 3], [3, 2, 1]]), torch.tensor([2, 0]))
    assert loss == pytest.approx(tl, rel=1e-14) and dz.dtype == np.float64
    np.testing.assert_allclose(dz, tg, rtol=1e-12)


@pytest.mark.parametrize("layout", ["fortran", "reversed columns", "every other row"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_any_memory_layout(layout, dtype):
    """The kernel indexes rows through flat (row-major) indices: non-contiguous logits, including rows
    that need the NaN/inf path, must give PyTorch's values too."""
    rng = np.random.default_rng(3)
    base = (3 * rng.standard_normal((12, 6))).astype(dtype)
    with_inf = base.copy()
    with_inf[5, 2] = np.inf  # a row on the general path (PyTorch: NaN loss, NaN gradient in that row)
    as_layout = {"fortran": np.asfortranarray, "reversed columns": lambda a: a[:, ::-1].copy()[:, ::-1],
                 "every other row": lambda a: np.repeat(a, 2, axis=0)[::2]}[layout]
    z, z_inf = as_layout(base), as_layout(with_inf)
    assert not z.flags.c_contiguous, "the test needs non-contiguous logits"
    y = rng.integers(0, 6, size=12)
    loss, dz = softmax_cross_entropy(z, y)
    tl, tg = torch_loss_and_grad(F.cross_entropy, base.astype(np.float64), torch.tensor(y))
    assert loss == pytest.approx(tl, rel=1e-12 if dtype == np.float64 else 1e-6), \
        f"softmax_cross_entropy({layout} logits): loss {loss}, PyTorch {tl}"
    np.testing.assert_allclose(dz, tg, **TOL[dtype], err_msg=f"gradient for {layout} logits")
    loss, dz = softmax_cross_entropy(z_inf, y)
    assert np.isnan(loss), f"softmax_cross_entropy({layout} logits with an inf): expected a NaN loss, got {loss}"
    finite = np.arange(12) != 5
    _, tg = torch_loss_and_grad(F.cross_entropy, base[finite].astype(np.float64), torch.tensor(y[finite]))
    np.testing.assert_allclose(dz[finite], tg * (11 / 12), **TOL[dtype],  # the mean is over 12 rows, not 11
                               err_msg=f"finite rows of {layout} logits with an inf row")
    assert np.isnan(dz[5]).all(), f"the inf row's gradient should be NaN as in PyTorch, got {dz[5]}"


@pytest.mark.parametrize("z,y,exc,msg", [
    (np.zeros((3, 4)), [0, 1, 4], ValueError, r"\[0, 4\)"),
    (np.zeros((3, 4)), [0, -1, 2], ValueError, r"\[0, 4\)"),
    (np.zeros((3, 4)), [0, 1], ValueError, r"shape \(3,\)"),
    (np.zeros((3, 4)), [[0], [1], [2]], ValueError, r"shape \(3,\)"),
    (np.zeros((3, 4)), [0.0, 1.0, 2.0], TypeError, "integer"),
    (np.zeros((3, 4)), None, TypeError, "integer"),
    (np.zeros(4), [0], ValueError, "2-D"),
    (np.zeros((0, 4)), np.zeros(0, int), ValueError, "non-empty"),
    ("logits", [0], TypeError, "softmax_cross_entropy"),
])
def test_softmax_cross_entropy_errors(z, y, exc, msg):
    with pytest.raises(exc, match=msg):
        softmax_cross_entropy(z, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 5)])
def test_mse_matches_torch(dtype, shape):
    rng = np.random.default_rng(1)
    p = (rng.standard_normal(shape) * 10).astype(dtype)
    t = (rng.standard_normal(shape) * 10).astype(dtype)
    p.flat[0], t.flat[0] = 1e4, -1e4
    loss, dp = mse(p, t)
    tl, tg = torch_loss_and_grad(F.mse_loss, p.astype(np.float64), torch.tensor(t.astype(np.float64)))
    assert isinstance(loss, float) and dp.dtype == dtype and dp.shape == shape
    assert loss == pytest.approx(tl, rel=1e-12)
    np.testing.assert_allclose(dp, tg, **TOL[dtype])


def test_mse_errors():
    with pytest.raises(ValueError, match="same shape"):
        mse(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        mse([], [])
    with pytest.raises(TypeError, match="mse"):
        mse(["a"], [1.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_matches_torch(dtype):
    rng = np.random.default_rng(2)
    z = (3 * rng.standard_normal((6, 4))).astype(dtype)
    t = rng.uniform(size=(6, 4)).astype(dtype)
    t[0] = [0, 1, 0.5, 1]
    z[0] = [1e4, -1e4, 1e4, 1e4]        # confident and wrong (2e4 each), confident and right (0)
    z[1, :2] = [-1e3, 1e3]
    t[1, :2] = [1, 0]
    loss, dz = bce_with_logits(z, t)
    tl, tg = torch_loss_and_grad(F.binary_cross_entropy_with_logits, z.astype(np.float64),
                                 torch.tensor(t.astype(np.float64)))
    assert isinstance(loss, float) and dz.dtype == dtype and dz.shape == z.shape
    assert loss == pytest.approx(tl, rel=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(dz, tg, **TOL[dtype])


def test_bce_with_logits_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce_with_logits([0.0, 1.0], [0.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        bce_with_logits(np.zeros((2, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="bce_with_logits"):
        bce_with_logits([0.0], [None])


def test_losses_propagate_nan():
    assert np.isnan(mse([np.nan, 1.0], [0.0, 0.0])[0])
    assert np.isnan(bce_with_logits([np.nan], [1.0])[0])
    assert np.isnan(softmax_cross_entropy([[np.nan, 0.0]], [1])[0])
