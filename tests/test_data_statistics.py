"""X's statistics computed once per fit (``nmfkit.backends.remembered_statistics``) and the
fitted error's threaded residual: the same numbers as computing each anew, for that array
only, and nothing kept beyond the fit."""

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.backends import NumpyBackend, remembered_statistics
from nmfkit.backends._stats import statistic
from nmfkit.losses import beta_divergence
from nmfkit.solvers._threads import kernel_threads, run_parts, split_even


def _counter():
    calls = []

    def compute():
        calls.append(1)
        return float(len(calls))
    return calls, compute


def test_a_statistic_is_computed_once_for_the_scoped_array_only():
    X = np.arange(12.0).reshape(3, 4)
    calls, compute = _counter()
    with remembered_statistics(X):
        assert statistic(X, "max", compute) == 1.0
        assert statistic(X, "max", compute) == 1.0
        assert len(calls) == 1
        assert statistic(X, "min", compute) == 2.0  # each name its own
        same_values = X.copy()  # equal, not the same object: computed anew
        assert statistic(same_values, "max", compute) == 3.0
        assert statistic(same_values, "max", compute) == 4.0
    assert statistic(X, "max", compute) == 5.0  # the scope is over: nothing kept
    assert len(calls) == 5


def test_nested_scopes_add_their_array_and_the_outer_one_owns_the_table():
    X, Y = np.ones((2, 2)), np.zeros((2, 2))
    calls, compute = _counter()
    with remembered_statistics(X):
        with remembered_statistics(Y):
            statistic(Y, "max", compute)
        statistic(Y, "max", compute)  # still remembered: the outer scope holds it
        assert len(calls) == 1
    statistic(Y, "max", compute)
    assert len(calls) == 2


@pytest.mark.parametrize("sparse", [False, True])
def test_the_backend_answers_from_the_first_computation(sparse):
    rng = np.random.default_rng(0)
    A = rng.random((30, 20))
    A[A < 0.5] = 0
    X = sp.csr_matrix(A) if sparse else A
    nx = NumpyBackend()
    plain = (nx.max(X), nx.min(X), nx.sq_norm(X))
    with remembered_statistics(X):
        first = (nx.max(X), nx.min(X), nx.sq_norm(X))
        if sparse:
            X.data[:] = 0.0  # were it computed again, every statistic would read 0
        else:
            X[...] = 0.0
        again = (nx.max(X), nx.min(X), nx.sq_norm(X))
    assert first == again == plain
    assert (nx.max(X), nx.sq_norm(X)) == (0.0, 0.0)  # after the scope: computed anew


def test_a_second_fit_reads_the_changed_data():
    """The statistics live for one fit: X changed in place between two fits (here to a
    magnitude the unit scale must handle) gets its own."""
    rng = np.random.default_rng(1)
    X = rng.random((40, 30)) @ rng.random((30, 25))
    model = nmfkit.NMF(3, random_state=0, max_iter=50)
    model.fit(X)
    X *= 1e-200
    err = model.fit(X).reconstruction_err_
    fresh = nmfkit.NMF(3, random_state=0, max_iter=50).fit(X.copy())
    assert 0 < err < 1e-190
    assert err == fresh.reconstruction_err_
    np.testing.assert_array_equal(model.components_, fresh.components_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_threaded_residual_equals_the_serial_one(dtype):
    rng = np.random.default_rng(2)
    X = rng.random((3001, 700)).astype(dtype)
    W = rng.random((3001, 6)).astype(dtype)
    H = rng.random((6, 700)).astype(dtype)
    serial = beta_divergence(X, W, H, 2.0)
    with kernel_threads() as nt:
        threaded = beta_divergence(
            X, W, H, 2.0, run=lambda part, size: run_parts(part, split_even(size, max(nt, 2))))
    np.testing.assert_allclose(threaded, serial, rtol=1e-12)


@pytest.mark.parametrize("n_jobs", [None, 1])
def test_reconstruction_error_is_the_divergence_of_the_result(n_jobs):
    """Large enough for the threaded residual (n·m·k ≥ 4M): the reported error is
    √(2·D(X | WH)) of the returned factors, and the explained variance its ratio."""
    rng = np.random.default_rng(3)
    X = rng.random((2000, 400)) @ rng.random((400, 300)) / 100
    model = nmfkit.NMF(8, random_state=0, max_iter=30, n_jobs=n_jobs)
    W = model.fit_transform(X)
    H = model.components_
    err = beta_divergence(X, W, H, 2.0, square_root=True)
    np.testing.assert_allclose(model.reconstruction_err_, err, rtol=1e-12)
    total = ((X - X.mean(axis=0)) ** 2).sum()
    np.testing.assert_allclose(model.explained_variance_, 1 - err**2 / total, rtol=1e-9)
