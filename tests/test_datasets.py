"""actgrad.datasets: shapes, dtypes, seeding, and closed-form / scikit-learn oracles."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from actgrad import datasets as D


# ----------------------------------------------------------------------------- spirals
def test_spirals_shapes_dtypes_balance():
    X, y = D.spirals(n_per_class=40, n_classes=4, seed=1)
    assert X.shape == (160, 2) and X.dtype == np.float64
    assert y.shape == (160,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [40, 40, 40, 40])
    assert np.all(np.linalg.norm(X, axis=1) <= 1 + 1e-12)


def test_spirals_noise_free_geometry():
    # noise=0: radius i/(n-1) and angle 4(k + r) exactly, recovered with atan2
    n, k = 25, 3
    X, y = D.spirals(n_per_class=n, n_classes=k, noise=0.0, seed=0)
    r = np.linspace(0, 1, n)
    for c in range(k):
        P = X[y == c]
        np.testing.assert_allclose(np.hypot(P[:, 0], P[:, 1]), r, atol=1e-12)
        theta = np.arctan2(P[1:, 0], P[1:, 1])  # x = r sin(t), y = r cos(t)
        diff = np.angle(np.exp(1j * (theta - 4 * (c + r[1:]))))
        np.testing.assert_allclose(diff, 0, atol=1e-9)


def test_spirals_seeding():
    a, b = D.spirals(seed=3), D.spirals(seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, D.spirals(seed=4).X)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(D.spirals(seed=g1).X, D.spirals(seed=g2).X)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(n_classes=1), ValueError), (dict(n_per_class=0), ValueError),
    (dict(noise=-0.1), ValueError), (dict(noise=float("nan")), ValueError),
    (dict(seed="x"), TypeError), (dict(seed=1.5), TypeError), (dict(n_classes=2.0), ValueError),
])
def test_spirals_bad_args(kwargs, exc):
    with pytest.raises(exc, match="spirals"):
        D.spirals(**kwargs)


# ----------------------------------------------------------------------------- xor
def test_xor_labels_and_balance():
    X, y = D.xor(n=202, noise=0.1, seed=0)
    assert X.shape == (202, 2) and X.dtype == np.float64 and y.dtype == np.int64
    # label 1 iff the coordinates have opposite signs (noise 0.1 around +-1 never crosses 0)
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(int))
    quadrant = (X[:, 0] > 0) * 2 + (X[:, 1] > 0)
    assert sorted(np.bincount(quadrant, minlength=4)) == [50, 50, 51, 51]


def test_xor_noise_free_corners_and_seeding():
    X, y = D.xor(n=40, noise=0.0, seed=5)
    assert set(map(tuple, X)) == {(1.0, 1.0), (-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0)}
    np.testing.assert_array_equal(D.xor(seed=2).X, D.xor(seed=2).X)
    assert not np.allclose(D.xor(seed=2).X, D.xor(seed=3).X)
    with pytest.raises(ValueError, match="xor"):
        D.xor(n=3)


# ----------------------------------------------------------------------------- digits
def test_digits_unsplit_matches_sklearn_scaled():
    raw = load_digits()
    X, y = D.digits(split=False)
    assert X.dtype == np.float64 and y.dtype == np.int64 and X.shape == (1797, 64)
    np.testing.assert_array_equal(X, raw.data / 16.0)
    np.testing.assert_array_equal(y, raw.target)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(D.digits(split=False, scale=False).X, raw.data)


def _sorted_rows(X, y):
    A = np.column_stack([X, y])
    return A[np.lexsort(A.T[::-1])]


def test_digits_split_is_a_stratified_partition():
    raw = load_digits()
    s = D.digits(test_size=0.25, seed=0)
    assert s.X_train.shape[1] == s.X_test.shape[1] == 64
    assert len(s.X_train) + len(s.X_test) == 1797
    assert abs(len(s.X_test) - 0.25 * 1797) <= 10
    # train + test is exactly the data set (as a multiset of (pixels, label) rows)
    np.testing.assert_array_equal(
        _sorted_rows(np.vstack([s.X_train, s.X_test]), np.concatenate([s.y_train, s.y_test])),
        _sorted_rows(raw.data / 16.0, raw.target))
    full, test = np.bincount(raw.target), np.bincount(s.y_test, minlength=10)
    assert np.all(np.abs(test - 0.25 * full) <= 1)
    assert 0.0 <= s.X_train.min() and s.X_train.max() <= 1.0


def test_digits_split_seeding():
    a, b, c = D.digits(seed=1), D.digits(seed=1), D.digits(seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_train, c.y_train)
    with pytest.raises(TypeError, match="digits"):
        D.digits(split="yes")


# ----------------------------------------------------------------------------- helpers
def test_one_hot_matches_eye():
    y = np.array([2, 0, 1, 2, 4])
    np.testing.assert_array_equal(D.one_hot(y), np.eye(5)[y])
    np.testing.assert_array_equal(D.one_hot(y, 7), np.eye(7)[y])
    assert D.one_hot(y).dtype == np.float64
    with pytest.raises(ValueError, match="one_hot"):
        D.one_hot(y, 3)
    with pytest.raises(ValueError, match="one_hot"):
        D.one_hot([-1, 0])
    with pytest.raises(TypeError, match="one_hot"):
        D.one_hot([0.5, 1.0])


def test_train_test_split_counts_and_errors():
    X = np.arange(20.0).reshape(10, 2)
    y = np.array([0] * 5 + [1] * 5)
    s = D.train_test_split(X, y, test_size=4, seed=0)
    assert len(s.X_test) == 4 and len(s.X_train) == 6
    np.testing.assert_array_equal(np.bincount(s.y_test), [2, 2])
    np.testing.assert_array_equal(np.sort(np.concatenate([s.X_train[:, 0], s.X_test[:, 0]])),
                                  X[:, 0])
    # rows stay paired with their labels
    np.testing.assert_array_equal(s.y_train, (s.X_train[:, 0] >= 10).astype(int))
    for bad in (0, 1.0, 10, -0.2, "a"):
        with pytest.raises(ValueError, match="train_test_split"):
            D.train_test_split(X, y, test_size=bad)
    with pytest.raises(ValueError, match="train_test_split"):
        D.train_test_split(X, y[:-1])
