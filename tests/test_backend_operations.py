"""The operations the solvers ask of a backend instead of asking which backend it is.

Each is a ``NumpyBackend`` method (the host definition, or the host code passed in from the
solver layer) that ``TorchBackend`` overrides; each gives the same numbers through either
backend (torch on the CPU), and the host one runs exactly the code it was handed.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit.backends import NumpyBackend
from nmfkit.solvers.cd import _pg_host

torch = pytest.importorskip("torch")
TorchBackend = pytest.importorskip("nmfkit.backends._torch").TorchBackend


def _problem(seed=5):
    rng = np.random.default_rng(seed)
    F = rng.random((5, 80))
    F[rng.random(F.shape) < 0.3] = 0
    U = rng.random((5, 30))
    return F, U @ U.T, rng.random((5, 80)) * 4


def test_compiled_kernels_is_numba_on_the_host_and_never_on_torch():
    assert NumpyBackend.compiled_kernels is (importlib.util.find_spec("numba") is not None)
    assert TorchBackend().compiled_kernels is False


@pytest.mark.parametrize("l1, l2, rows", [(0.0, 0.0, None), (0.2, 0.3, [1, 3]), (0.0, 1.0, [4])])
def test_projected_gradient_sum_runs_the_host_pass_on_numpy_and_equals_it_on_torch(l1, l2, rows):
    F, G, R = _problem()
    seen = []

    def host(*args):
        seen.append(args)
        return _pg_host(*args)

    got = NumpyBackend().projected_gradient_sum(F, G, R, l1, l2, rows, host=host)
    assert len(seen) == 1 and got == _pg_host(F, G, R, l1, l2, rows)
    # the same sum from the definition, term by term
    g = G @ F - R + l1 + l2 * F
    g = np.where(F > 0, g, np.minimum(g, 0.0))
    want = float(np.abs(g if rows is None else g[rows]).sum())
    assert got == pytest.approx(want, rel=1e-12) and got > 0
    dev = TorchBackend().projected_gradient_sum(
        torch.as_tensor(F), torch.as_tensor(G), torch.as_tensor(R), l1, l2, rows, host=host)
    assert len(seen) == 1  # torch never runs the host pass
    assert dev == pytest.approx(got, rel=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_cross_is_the_same_product_a_host_view_and_a_contiguous_tensor(fmt):
    rng = np.random.RandomState(0)
    X = sp.random(40, 30, density=0.2, format=fmt, random_state=1)
    F = rng.rand(4, 30)
    want = (X @ F.T).T
    nx = NumpyBackend()
    R = nx.sparse_cross(X, F)
    np.testing.assert_array_equal(R, want)
    assert R.shape == (4, 40) and R.flags.f_contiguous  # the (n, k) product's view, no copy
    used = []

    def rows_product(A, B):
        used.append(A.format)
        return np.asarray(A @ B)
    np.testing.assert_array_equal(nx.sparse_cross(X, F, rows_product), want)
    assert used == (["csr"] if fmt == "csr" else [])  # CSR rows only
    tnx = TorchBackend(device="cpu")
    Rt = tnx.sparse_cross(tnx.asarray(X), torch.as_tensor(F), rows_product)
    assert Rt.is_contiguous() and tuple(Rt.shape) == (4, 40)
    np.testing.assert_allclose(Rt.numpy(), want, rtol=1e-12)
    assert len(used) <= 1


def test_orientable_reads_the_memory_order_on_the_host_only():
    A = np.ones((6, 8))
    nx = NumpyBackend()
    assert nx.orientable(A) and nx.orientable(np.asfortranarray(A)) and nx.orientable(A.T)
    assert not nx.orientable(A[:, ::2])  # strided: neither order
    assert not TorchBackend().orientable(torch.ones(6, 8))


def test_step_threads_enters_the_host_context_on_numpy_and_one_thread_on_torch():
    import contextlib

    entered = []

    @contextlib.contextmanager
    def host():
        entered.append(1)
        yield 3

    with NumpyBackend().step_threads(host) as nt:
        assert nt == 3
    assert entered == [1]
    with TorchBackend().step_threads(host) as nt:
        assert nt == 1
    assert entered == [1]


def test_kl_half_steps_are_the_host_ones_on_numpy_and_the_device_sweeps_on_torch():
    def host():
        return "host half-step"

    X = np.random.RandomState(0).poisson(2.0, (12, 9)).astype(float)
    assert NumpyBackend().kl_half_steps(X, np.float64, {}, host=host) == "host half-step"
    tnx = TorchBackend(device="cpu")
    half = tnx.kl_half_steps(tnx.asarray(X), torch.float64,
                             {"newton_steps": 1, "mu_warmup": 5}, host=host)
    assert callable(half) and type(half.__self__).__name__ == "TorchKL"


def test_kl_cd_gives_the_host_iterates_on_torch():
    from nmfkit import NMF

    X = np.random.RandomState(0).poisson(2.0, (40, 30)).astype(float)
    kw = dict(solver="cd", beta_loss=1, max_iter=12, tol=0, random_state=0)
    a = NMF(4, **kw).fit(X)
    b = NMF(4, backend="torch", device="cpu", **kw).fit(X)
    np.testing.assert_allclose(np.asarray(b.components_), a.components_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("masked", [False, True])
def test_residual_sample_reads_the_same_entries_on_either_backend(dtype, masked):
    from nmfkit.robust import estimate_scale, estimate_scale_at

    rng = np.random.RandomState(3)
    X, Y = rng.rand(70, 50).astype(dtype), rng.rand(70, 50).astype(dtype)
    M = (rng.rand(70, 50) > 0.3).astype(dtype) if masked else None
    nx, tnx = NumpyBackend(), TorchBackend(device="cpu")
    for limit in (10**6, 333):  # all entries, then a stride
        r = nx.residual_sample(X, Y, M, limit)
        full = (X - Y).reshape(-1) if M is None else (X - Y)[M > 0]
        want = full[:: -(-full.size // limit)] if full.size > limit else full
        np.testing.assert_array_equal(r, want.astype(np.float64))
        assert r.dtype == np.float64 and not np.shares_memory(r, X)
        T = [None if a is None else torch.as_tensor(a) for a in (X, Y, M)]
        rt = tnx.residual_sample(*T, limit)
        assert isinstance(rt, np.ndarray) and rt.dtype == np.float64
        np.testing.assert_array_equal(rt, r)
    T = [None if a is None else torch.as_tensor(a) for a in (X, Y, M)]
    assert estimate_scale_at(tnx, *T) == estimate_scale_at(nx, X, Y, M) \
        == estimate_scale(nx, X - Y, M)


def test_blocked_extrapolation_by_column_blocks_runs_on_a_sparse_tensor():
    # torch's sparse X has no column slices: W^T X is formed once per half-step, then sliced
    from nmfkit import NMF

    X = sp.random(60, 90, density=0.1, format="csr", random_state=2)
    X.data = np.floor(X.data * 9) + 1
    opts = {"inner": True, "extrapolate": True, "block_columns": 16}
    kw = dict(solver="cd", tol=0, max_iter=15, random_state=1, solver_options=opts)
    a = NMF(5, **kw).fit(X)
    b = NMF(5, backend="torch", device="cpu", **kw).fit(X)
    assert a.n_iter_ == b.n_iter_ == 15
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-6)

