"""actgrad.optim against torch.optim / torch.nn.utils step by step, and a real training run."""
import math

import numpy as np
import pytest
import torch

from actgrad import datasets, gradcheck, optim
from actgrad.mlp import MLP

SHAPES = {"W1": (4, 3), "b1": (3,), "a1": (3,)}


def _run_both(make_ours, make_torch, steps=6, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tparams = [torch.tensor(p.astype(np.float64), requires_grad=True) for p in params.values()]
    opt, topt = make_ours(), make_torch(tparams)
    for _ in range(steps):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        for tp, g in zip(tparams, grads.values()):
            tp.grad = torch.tensor(g.astype(np.float64))
        opt.step(params, grads)
        topt.step()
    return params, [tp.detach().numpy() for tp in tparams]


SGD_CASES = [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True), dict(weight_decay=0.1),
             dict(momentum=0.5, dampening=0.3, weight_decay=0.01), dict(momentum=0.9, nesterov=True, weight_decay=1e-3)]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw):
    ours, theirs = _run_both(lambda: optim.SGD(0.1, **kw), lambda ps: torch.optim.SGD(ps, lr=0.1, **kw))
    for p, tp in zip(ours.values(), theirs):
        np.testing.assert_allclose(p, tp, rtol=1e-13, atol=1e-14)


ADAM_CASES = [dict(), dict(betas=(0.5, 0.9), eps=1e-3), dict(weight_decay=0.1)]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_matches_torch(cls, kw):
    ours, theirs = _run_both(lambda: getattr(optim, cls)(1e-2, **kw),
                             lambda ps: getattr(torch.optim, cls)(ps, lr=1e-2, **kw), steps=10)
    for p, tp in zip(ours.values(), theirs):
        np.testing.assert_allclose(p, tp, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opt", [optim.SGD(0.1, momentum=0.9, weight_decay=0.01), optim.Adam(1e-2)])
def test_float32_params_stay_float32(opt):
    ours, theirs = _run_both(lambda: opt, lambda ps: torch.optim.SGD(ps, lr=0.0), dtype=np.float32)
    assert all(p.dtype == np.float32 for p in ours.values())
    assert all(s.dtype == np.float32 for st in opt.state.values() for s in st.values() if hasattr(s, "dtype"))


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(-1.0)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(1e-3, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="shape"):
        optim.SGD(0.1).step({"W1": np.zeros((2, 2))}, {"W1": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="unknown params"):
        optim.SGD(0.1).step({"W1": np.zeros(2)}, {"W2": np.zeros(2)})


def _grads(scale, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in SHAPES.items()}


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("scale", [0.01, 10.0])  # below and above max_norm
def test_clip_grad_norm_matches_torch(norm_type, scale):
    grads = _grads(scale)
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for tp, g in zip(tparams, grads.values()):
        tp.grad = torch.tensor(g)
    t_total = torch.nn.utils.clip_grad_norm_(tparams, max_norm=1.0, norm_type=norm_type)
    total = optim.clip_grad_norm(grads, 1.0, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(t_total), rel=1e-12)
    for g, tp in zip(grads.values(), tparams):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-13, atol=1e-16)
    if scale == 10.0:  # it did clip: the new joint norm is max_norm (up to the 1e-6 guard)
        assert optim.clip_grad_norm(grads, 1e9, norm_type=norm_type) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_list_float32_and_nonfinite():
    g = [np.array([3.0, 4.0], dtype=np.float32)]
    assert optim.clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    assert g[0].dtype == np.float32 and np.linalg.norm(g[0]) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm([np.array([np.inf, 1.0])], 1.0, error_if_nonfinite=True)
    g = [np.array([np.nan, 1.0])]
    assert math.isnan(optim.clip_grad_norm(g, 1.0)) and np.isnan(g[0]).all()
    with pytest.raises(TypeError, match="numpy arrays"):
        optim.clip_grad_norm([[1.0, 2.0]], 1.0)


def test_clip_grad_value_matches_torch():
    grads = _grads(2.0)
    grads["b1"][0] = np.nan
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for tp, g in zip(tparams, grads.values()):
        tp.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tparams, clip_value=0.5)
    assert optim.clip_grad_value(grads, 0.5) is None
    for g, tp in zip(grads.values(), tparams):
        np.testing.assert_array_equal(g, tp.grad.numpy())


def test_train_reaches_095_on_spirals():
    X, y = datasets.spirals(100, 3, seed=0)
    model = MLP([2, 100, 3], activation="relu", seed=0)
    hist = optim.train(model, X, y, optim.Adam(1e-2), epochs=100, batch_size=64, seed=0, progress=False)
    assert hist.accuracy[-1] >= 0.95
    # independent accuracy check, and the recorded history is consistent
    assert np.mean(np.argmax(model(X), axis=1) == y) == hist.accuracy[-1]
    steps = 100 * math.ceil(300 / 64)
    assert len(hist.loss) == 100 and len(hist.step_loss) == steps
    assert hist.grad_norms.shape == (steps, 2) and hist.layer_names == ["W1", "W2"]
    assert hist.loss[-1] < 0.2 < hist.loss[0]
    assert hist.steps_per_epoch == 5
    np.testing.assert_allclose(hist.epoch_grad_norms()[3], hist.grad_norms[15:20].mean(0))
    assert np.all(hist.grad_norms > 0) and np.all(np.asarray(hist.grad_norm_total) >= hist.grad_norms.max(1))


def test_train_records_grad_norms_and_clips():
    X, y = datasets.spirals(20, 3, seed=1)
    model = MLP([2, 8, 3], activation="tanh", seed=0)
    _, g = model.copy().loss(X, y)
    before = {k: v.copy() for k, v in model.params.items()}
    hist = optim.train(model, X, y, optim.SGD(1.0), epochs=1, batch_size=len(X), clip_norm=1e-3, seed=0,
                       progress=False, X_val=X[:10], y_val=y[:10])
    # one full-batch step: recorded norms are the pre-clipping ones, the update has length 1e-3
    np.testing.assert_allclose(hist.grad_norms[0], [np.linalg.norm(g["W1"]), np.linalg.norm(g["W2"])], rtol=1e-12)
    step = math.sqrt(sum(np.sum((model.params[k] - before[k]) ** 2) for k in before))
    assert step == pytest.approx(1e-3, rel=1e-3)
    assert len(hist.val_loss) == len(hist.val_accuracy) == 1


def test_train_regression_and_errors():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    model = MLP([3, 1], seed=0)
    hist = optim.train(model, X, y, optim.SGD(0.1), epochs=50, batch_size=16, loss="mse", seed=0, progress=False)
    assert hist.accuracy == [] and hist.loss[-1] < 1e-6
    assert gradcheck.rel_error(model.params["W1"][:, 0], [1.0, -2.0, 0.5]) < 1e-3
    with pytest.raises(ValueError, match="batch_size"):
        optim.train(model, X, y, optim.SGD(0.1), epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="rows"):
        optim.train(model, X, y[:5], optim.SGD(0.1), epochs=1, loss="mse")


def test_train_progress_bar(capsys):
    X, y = datasets.spirals(10, 3, seed=2)
    hist = optim.train(MLP([2, 4, 3], seed=0), X, y, optim.SGD(0.1), epochs=2, batch_size=8, seed=0)
    err = capsys.readouterr().err
    assert "train" in err and "2/2" in err and "acc=" in err
    assert len(hist.accuracy) == 2
