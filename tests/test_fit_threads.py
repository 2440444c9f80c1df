"""A small fit runs BLAS on one thread (its start and its loop); a large one, or one with
``n_jobs`` set, keeps the threads it is given (nmfkit._threads.small_fit_threads)."""

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from nmfkit import NMF
from nmfkit._threads import SMALL_WORK


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def _seen_during_fit(X, **kw):
    seen = []

    def callback(info):
        seen.append(_blas_threads())

    NMF(3, max_iter=2, tol=0, random_state=0, callback=callback, **kw).fit(X)
    return seen


@pytest.fixture
def two_blas_threads():
    if not _blas_threads():
        pytest.skip("no BLAS library visible to threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        yield


@pytest.mark.parametrize("solver", ["cd", "mu", "auto", "anls"])
def test_a_small_fit_holds_blas_at_one_thread(two_blas_threads, solver):
    X = np.random.default_rng(0).random((60, 40))
    seen = _seen_during_fit(X, solver=solver)
    assert seen and all(t == [1] * len(t) for t in seen)
    assert _blas_threads() == [2] * len(_blas_threads())  # restored after the fit


def test_a_small_sparse_fit_counts_its_stored_entries(two_blas_threads):
    # 3000 × 3000 is 27M multiply-adds per product dense, but 9000 stored entries: small
    X = sp.random(3000, 3000, density=0.001, format="csr", random_state=0)
    assert all(t == [1] * len(t) for t in _seen_during_fit(X, solver="cd"))


def test_a_large_fit_and_n_jobs_keep_their_threads(two_blas_threads):
    n = SMALL_WORK // (3 * 64) + 1  # n·64·k ≥ SMALL_WORK at k = 3
    X = np.random.default_rng(1).random((n, 64))
    assert all(t == [2] * len(t) for t in _seen_during_fit(X, solver="mu"))
    small = np.random.default_rng(2).random((60, 40))
    assert all(t == [2] * len(t) for t in _seen_during_fit(small, solver="mu", n_jobs=2))


def test_the_iterates_are_those_of_a_one_thread_run():
    X = np.random.default_rng(3).random((200, 50))
    a = NMF(5, solver="cd", random_state=0, max_iter=50).fit(X).components_
    with threadpool_limits(limits=1, user_api="blas"):
        b = NMF(5, solver="cd", random_state=0, max_iter=50).fit(X).components_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sq_norm_over_host_threads_equals_one_pass(dtype):
    from nmfkit.backends import get_backend
    from nmfkit.solvers._threads import kernel_threads, run_parts, split_even

    X = np.random.default_rng(0).random((2100, 2048)).astype(dtype)  # above the split size
    nx = get_backend(X)
    calls = []

    def run(part, size):
        calls.append(size)
        return run_parts(part, split_even(size, 3, 4096))

    whole = nx.sq_norm(X)
    split = nx.sq_norm(X, run=run)
    assert calls == [X.size]
    assert split == pytest.approx(whole, rel=1e-13)
    assert whole == pytest.approx(float(np.sum(X.astype(np.float64) ** 2)), rel=1e-12)
    with kernel_threads():
        from nmfkit.solvers._base import Problem

        p = Problem(X=X, Xt=X.T, W=np.ones((2100, 2), dtype), H=np.ones((2, 2048), dtype),
                    beta=2.0, nx=nx)
        assert p.sq_norm_X == pytest.approx(whole, rel=1e-13)


def test_a_small_fit_takes_numpys_kernels_and_never_imports_numba():
    # numba's import and its cached kernels cost a fresh process about 0.25 s, more than a
    # whole small fit: kernel="auto" runs numpy's sweeps below SMALL_WORK, the same path
    # (and numbers) in every process, and a fresh process running it never imports numba
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, nmfkit\n"
        "X = np.random.default_rng(0).random((300, 40))\n"
        "m = nmfkit.NMF(8, random_state=0, max_iter=50).fit(X)\n"
        "n = nmfkit.NMF(8, random_state=0, max_iter=50, solver_options={'kernel': 'numpy'}).fit(X)\n"
        "assert np.array_equal(m.components_, n.components_)\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_large_fit_takes_the_compiled_kernels_when_numba_is_installed():
    from nmfkit.solvers import Problem
    from nmfkit.solvers.cd import CoordinateDescent
    from nmfkit.backends import get_backend

    pytest.importorskip("numba")
    rng = np.random.default_rng(0)
    for n, m, k, compiled in [(300, 40, 8, False), (2000, 400, 8, True)]:
        assert (n * m * k >= SMALL_WORK) == compiled
        X = rng.random((n, m))
        p = Problem(X=X, Xt=X.T, W=rng.random((n, k)), H=rng.random((k, m)), beta=2.0,
                    nx=get_backend(X), options={"inner": True, "extrapolate": True})
        assert CoordinateDescent(p)._compiled is compiled
        p2 = Problem(X=X, Xt=X.T, W=rng.random((n, k)), H=rng.random((k, m)), beta=2.0,
                     nx=get_backend(X), options={"kernel": "numba"})
        assert CoordinateDescent(p2)._compiled  # asked for by name: always compiled
