"""actgrad.gradcheck against closed forms, and check_gradients on a correct and a broken model."""
import numpy as np
import pytest

from actgrad import gradcheck as gc
from actgrad.mlp import MLP


def test_numerical_gradient_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    g = gc.numerical_gradient(lambda v: np.sum(v ** 3), x)
    assert g.shape == x.shape and g.dtype == np.float64
    assert gc.rel_error(g, 3 * x0 ** 2) < 1e-8
    np.testing.assert_array_equal(x, x0)  # bitwise restored
    g = gc.numerical_gradient(lambda v: np.sin(v).prod(), x)
    expected = np.cos(x0) * np.sin(x0).prod() / np.sin(x0)
    assert gc.rel_error(g, expected) < 1e-8


def test_numerical_gradient_through_closure_and_restores_on_error():
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(_):
        calls.append(x.copy())  # reads x through the closure
        if len(calls) == 4:
            raise RuntimeError("boom")
        return float(np.dot(x, x))

    with pytest.raises(RuntimeError, match="boom"):
        gc.numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    assert calls[0][0] == 1.0 + 1e-6 and calls[3][1] == 2.0 - 1e-6  # it did perturb in place


def test_numerical_vjp_linear_map():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 3))
    x = rng.standard_normal(3)
    dout = rng.standard_normal(5)
    x0 = x.copy()
    g = gc.numerical_vjp(lambda v: A @ v, x, dout)
    assert gc.rel_error(g, A.T @ dout) < 1e-8
    np.testing.assert_array_equal(x, x0)
    X = rng.standard_normal((4, 3))
    D = rng.standard_normal((4, 3))
    assert gc.rel_error(gc.numerical_vjp(np.tanh, X, D), D * (1 - np.tanh(X) ** 2)) < 1e-8
    with pytest.raises(ValueError, match="dout has shape"):
        gc.numerical_vjp(lambda v: A @ v, x, np.ones(4))


def test_rel_error_basics():
    a = np.array([1.0, -2.0, 0.0])
    assert gc.rel_error(a, a) == 0.0
    assert gc.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # max|a-b| = 1e-3 at entry 0; max(|a|+|b|) = 4 at entry 1
    b = a + np.array([1e-3, 0.0, 1e-4])
    assert gc.rel_error(a, b) == pytest.approx(1e-3 / 4.0, rel=1e-12)
    assert gc.rel_error(1.0, -1.0) == 1.0
    assert np.isnan(gc.rel_error([1.0, np.nan], [1.0, 1.0]))
    with pytest.raises(ValueError, match="do not match"):
        gc.rel_error(np.ones(3), np.ones(4))


def test_numerical_gradient_input_checks():
    with pytest.raises(TypeError, match="floating-point numpy array"):
        gc.numerical_gradient(np.sum, np.arange(3))
    with pytest.raises(TypeError, match="floating-point numpy array"):
        gc.numerical_gradient(np.sum, [1.0, 2.0])
    with pytest.warns(UserWarning, match="float64"):
        gc.numerical_gradient(np.sum, np.ones(2, dtype=np.float32), h=1e-2)
    x = np.ones(3)
    with pytest.raises(ValueError, match="must return a scalar"):
        gc.numerical_gradient(lambda v: v * 2, x)
    np.testing.assert_array_equal(x, np.ones(3))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 3)), rng.integers(0, 4, size=6)


def test_check_gradients_correct_model():
    X, y = _data()
    model = MLP([3, 5, 4], activation="tanh", seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    errs = gc.check_gradients(model, X, y)
    assert set(errs) == set(model.params)
    assert max(errs.values()) < 1e-7, errs
    for k in before:
        np.testing.assert_array_equal(model.params[k], before[k])
    errs = gc.check_gradients(model, X, y, num_checks=5, rng=0)
    assert max(errs.values()) < 1e-7, errs


class _BrokenMLP(MLP):
    def backward(self, dout, caches):
        grads = super().backward(dout, caches)
        grads["W1"] = grads["W1"] * 1.01  # a 1 % bug
        return grads


def test_check_gradients_catches_a_bug():
    X, y = _data()
    errs = gc.check_gradients(_BrokenMLP([3, 5, 4], activation="tanh", seed=0), X, y)
    assert errs["W1"] > 1e-3 and errs["W2"] < 1e-7


def test_check_gradients_warns_on_float32():
    X, y = _data()
    with pytest.warns(UserWarning, match="float64"):
        gc.check_gradients(MLP([3, 5, 4], activation="tanh", seed=0, dtype=np.float32), X, y, h=1e-2,
                           num_checks=2)
