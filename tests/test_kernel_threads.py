"""The compiled kernels split over host threads (``nmfkit.solvers._threads``) compute what one
thread computes: exactly for HALS blocks, KL rows and the row-split products, to rounding for
the sparse Xᵀ W whose row ranges are summed apart; and the thread count follows the limits a
user sets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit.solvers import _blocked, _hals_kernel, _kl_kernels, _threads

numba = pytest.importorskip("numba")


def _force(monkeypatch, n):
    for mod in (_hals_kernel, _kl_kernels, _blocked):
        monkeypatch.setattr(mod, "n_threads", lambda n=n: n)
        monkeypatch.setattr(mod, "_MIN_SPLIT_WORK", 0)
        if hasattr(mod, "blas_single"):  # as within kernel_threads()
            monkeypatch.setattr(mod, "blas_single", lambda: True)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_hals_blocks_split_is_the_serial_sweep(monkeypatch, order, dtype, threads):
    rng = np.random.default_rng(0)
    k, N = 6, 5 * _hals_kernel.BLOCK + 17  # 6 blocks, the last one partial
    U = rng.random((k, 2 * k))
    G = (U @ U.T).astype(dtype)
    R = (rng.random((k, N)) * k).astype(dtype)
    F0 = np.array(rng.random((k, N)), dtype=dtype, order=order)
    _force(monkeypatch, 1)
    F1 = F0.copy(order="K")
    d1 = _hals_kernel.hals_inner_sweeps(F1, G, R, 0.01, 0.05, [3, 1, 0, 5, 2, 4], 20, 0.05)
    _force(monkeypatch, threads)
    F2 = F0.copy(order="K")
    d2 = _hals_kernel.hals_inner_sweeps(F2, G, R, 0.01, 0.05, [3, 1, 0, 5, 2, 4], 20, 0.05)
    assert np.array_equal(F1, F2) and d1 == d2
    assert 1 < d1 < 20  # the per-block stop did act (some blocks stopped early)
    assert not np.array_equal(F1, F0)


@pytest.mark.parametrize("threads", [2, 3])
def test_kl_rows_split_is_the_serial_update(monkeypatch, threads):
    rng = np.random.default_rng(1)
    X = sp.random(300, 80, density=0.1, format="csr", random_state=2)
    X.data = np.floor(X.data * 10) + 1
    X.data[X.indptr[7]:X.indptr[8]] = 0  # an empty row
    X.eliminate_zeros()
    assert X.indptr[8] == X.indptr[7]
    k = 4
    F0, B = rng.random((k, 300)) + 0.1, rng.random((k, 80)) + 0.1
    out = []
    for n in (1, threads):
        _force(monkeypatch, n)
        F = F0.copy()
        _kl_kernels.kl_cd_update(F, B, X, B.sum(axis=1), 0.01, 0.02, np.arange(k), 2, 1e-12,
                                 True)
        out.append(F)
    assert np.array_equal(out[0], out[1]) and not np.array_equal(out[0], F0)


@pytest.mark.parametrize("threads", [2, 4])
def test_sparse_products_split_are_the_serial_products(monkeypatch, threads):
    X = sp.random(500, 700, density=0.05, format="csr", random_state=3)
    X.sort_indices()
    rng = np.random.default_rng(4)
    k = 5
    Ht = rng.random((700, k))
    W = rng.random((500, k))
    Dt = rng.standard_normal((700, k)).astype(np.float32)
    _force(monkeypatch, threads)
    # X Hᵀ: scipy's product by ranges of rows
    assert np.array_equal(_blocked.csr_dot(X, Ht), X @ Ht)
    # X Ĥᵀ with Ĥ extrapolated entry by entry (rows 40..460), against one thread
    outs = []
    for n in (1, threads):
        _force(monkeypatch, n)
        outs.append(_blocked.row_cross(X, Ht, Dt, 0.7, 40, 460, np.empty((420, k))).copy())
    assert np.array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], X[40:460] @ np.maximum(Ht + 0.7 * Dt, 0), rtol=1e-6)
    # Xᵀ W by blocks of columns, rows split in ranges (each its own buffer), against one
    # range; the same ranges give the same numbers on any number of threads
    res = []
    rows = _threads.split_weighted(X.indptr, threads)
    for split, n in ((False, 1), (True, 1), (True, threads)):
        _force(monkeypatch, n)
        cur = X.indptr[:-1].copy()
        bufs = [np.empty((256, k)) for _ in rows] if split else np.empty((256, k))
        blocks = [_blocked.colblock_cross(X, W, c0, min(700, c0 + 256), cur, bufs, True,
                                          rows if split else None).copy()
                  for c0 in range(0, 700, 256)]
        res.append(np.concatenate(blocks, axis=1))
    assert np.array_equal(res[1], res[2])
    for r in res:
        np.testing.assert_allclose(r, (X.T @ W).T, rtol=1e-12)


def test_fit_is_the_same_on_one_and_two_threads(monkeypatch):
    """A whole "auto" fit (sparse Frobenius: products and sweeps split; KL: rows split)."""
    import nmfkit

    X = sp.random(400, 900, density=0.05, format="csr", random_state=5)
    X.data = np.floor(X.data * 5) + 1
    for beta in (2.0, 1.0):
        fits = []
        for n in (1, 2):
            _force(monkeypatch, n)
            m = nmfkit.NMF(6, solver="auto", beta_loss=beta, init="nndsvda", tol=0,
                           max_iter=15, random_state=0)
            fits.append((m.fit_transform(X), m.components_, m.reconstruction_err_))
        if beta == 1.0:  # KL: rows split, each as on one thread
            assert np.array_equal(fits[0][0], fits[1][0])
            assert np.array_equal(fits[0][1], fits[1][1])
        else:  # Frobenius: Xᵀ W's two row ranges add their sums in another order
            np.testing.assert_allclose(fits[0][0] @ fits[0][1], fits[1][0] @ fits[1][1],
                                       rtol=1e-9, atol=1e-12)
            assert fits[1][2] == pytest.approx(fits[0][2], rel=1e-12)


def test_thread_count_follows_the_limits(monkeypatch):
    from threadpoolctl import threadpool_limits

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    n = _threads.n_threads()
    assert 1 <= n <= _threads._cpus()
    with threadpool_limits(1):
        assert _threads.n_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.n_threads() == 1


def test_split_helpers_cover_every_item_once():
    for n, parts, align in [(10, 3, 1), (1000, 2, 128), (5, 8, 1), (1, 2, 128), (257, 2, 128)]:
        r = _threads.split_even(n, parts, align)
        assert r[0][0] == 0 and r[-1][1] == n and len(r) <= parts
        assert all(b > a for a, b in r) and all(r[i][1] == r[i + 1][0] for i in range(len(r) - 1))
        assert all(a % align == 0 for a, _ in r)
    cum = np.cumsum([0, 5, 0, 0, 100, 1, 1, 1, 1])
    r = _threads.split_weighted(cum, 2)
    assert r[0][0] == 0 and r[-1][1] == 8 and all(b > a for a, b in r)
    assert _threads.split_weighted(np.zeros(1), 2) == []
    assert _threads.run_parts(lambda a, b: a * b, [(2, 3), (4, 5), (6, 7)]) == [6, 20, 42]

    def boom(x):
        if x:
            raise ValueError("part failed")
        return x
    with pytest.raises(ValueError, match="part failed"):
        _threads.run_parts(boom, [(0,), (1,)])


def test_kernel_threads_fixes_the_count_and_limits_blas_meanwhile(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    monkeypatch.setattr(_threads, "_cpus", lambda: 2)

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    before = blas()
    n = _threads.n_threads()
    assert not _threads.blas_single()
    with _threads.kernel_threads() as got:
        assert got == n == _threads.n_threads()
        if n > 1:
            assert all(t == 1 for t in blas()) and _threads.blas_single()
    assert blas() == before and not _threads.blas_single()
    A, B = np.random.default_rng(0).random((37, 11)), np.random.default_rng(1).random((11, 3))
    for parts in (1, 2, 5):
        np.testing.assert_allclose(_threads.matmul_rows(A, B, parts), A @ B, rtol=1e-14)
        np.testing.assert_allclose(_threads.matmul_cols(B.T, A.T, parts), B.T @ A.T,
                                   rtol=1e-14)
        assert _threads.matmul_cols(B.T, A.T, parts).flags.c_contiguous


def test_dense_auto_fit_with_split_products_matches_one_thread(monkeypatch):
    """Dense X: the products split over two threads (BLAS at one thread each) give the fit of
    one thread to rounding."""
    import nmfkit
    from nmfkit.solvers import cd

    monkeypatch.setattr(cd, "_THREADED_WORK", 0)
    rng = np.random.default_rng(6)
    X = rng.random((300, 40)) @ rng.random((40, 250)) + 0.01
    fits = []
    for n in (1, 2):
        monkeypatch.setattr(_threads, "_cpus", lambda n=n: n)
        m = nmfkit.NMF(8, solver="auto", init="nndsvda", tol=0, max_iter=30, random_state=0)
        W = m.fit_transform(X)
        fits.append((W, m.components_, m.reconstruction_err_))
    np.testing.assert_allclose(fits[0][0] @ fits[0][1], fits[1][0] @ fits[1][1], rtol=1e-8,
                               atol=1e-10)
    assert abs(fits[0][2] - fits[1][2]) <= 1e-9 * fits[0][2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_fused_extrapolation_is_numpys_arithmetic(dtype, order):
    """The compiled one-pass max(F + β·D, 0) (and save ← F) gives numpy's numbers exactly."""
    from nmfkit.backends import get_backend

    nx = get_backend("numpy")
    rng = np.random.default_rng(7)
    F = np.array(rng.random((9, 301)), dtype=dtype, order=order)
    F[F < 0.2] = 0
    D = np.array(rng.standard_normal((9, 301)), dtype=np.float32, order=order)
    beta = 0.731
    ref = np.maximum(np.multiply(D, dtype(beta), dtype=dtype) + F, 0)
    got = _blocked._extrapolated(nx, F, D, beta)
    assert got.dtype == dtype and np.array_equal(got, ref)
    G, save = F.copy(order="K"), np.empty_like(F)
    assert _blocked._extrapolated(nx, G, D, beta, out=G, save=save) is G
    assert np.array_equal(G, ref) and np.array_equal(save, F)
    # a block of columns of an F-ordered factor (the sparse layout) is itself F-contiguous
    G = F.copy(order="K")
    blk, dblk = G[:, 100:200], D[:, 100:200]
    save = np.empty_like(blk)
    _blocked._extrapolated(nx, blk, dblk, beta, out=blk, save=save)
    assert np.array_equal(G[:, 100:200], ref[:, 100:200]) and np.array_equal(save, F[:, 100:200])
    assert np.array_equal(G[:, :100], F[:, :100]) and np.array_equal(G[:, 200:], F[:, 200:])


def test_csr_dot_reads_x_in_place(monkeypatch):
    """The row ranges are views of X: no copy of X's arrays (peak memory, the sparse-memory
    benchmark), only the (n, k) result and its parts."""
    import tracemalloc

    _force(monkeypatch, 2)
    X = sp.random(4000, 3000, density=0.02, format="csr", random_state=8)
    B = np.random.default_rng(9).random((3000, 2))
    _blocked.csr_dot(X, B)  # the pool's threads started
    tracemalloc.start()
    try:
        out = _blocked.csr_dot(X, B)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, X @ B)
    assert peak < 0.5 * X.data.nbytes  # a copy of half of X's data alone would exceed it


def test_hals_blocks_stay_on_one_thread_outside_kernel_threads(monkeypatch):
    """Outside kernel_threads() BLAS keeps its threads (and OpenBLAS's spin after a product):
    the sweeps are not split, whatever the size."""
    calls = []
    monkeypatch.setattr(_hals_kernel, "_MIN_SPLIT_WORK", 0)
    monkeypatch.setattr(_hals_kernel, "n_threads", lambda: 4)
    real = _hals_kernel.run_parts
    monkeypatch.setattr(_hals_kernel, "run_parts",
                        lambda fn, parts: calls.append(len(parts)) or real(fn, parts))
    rng = np.random.default_rng(3)
    F, G, R = rng.random((4, 600)), np.eye(4) + 0.1, rng.random((4, 600))
    _hals_kernel.hals_inner_sweeps(F, G, R, 0.0, 0.0, None, 3, 0.0)
    with _threads.kernel_threads():
        held = _threads.blas_single()
        _hals_kernel.hals_inner_sweeps(F, G, R, 0.0, 0.0, None, 3, 0.0)
    assert calls == [1, 4 if held else 1]


@pytest.mark.parametrize("threads", [1, 3])
def test_kl_mu_numerator_is_the_quotient_product(monkeypatch, threads):
    """KL's multiplicative numerator in one compiled pass equals (Q Bᵀ)ᵀ with
    Q = X / max(FᵀB, floor) at X's non-zeros, on any number of threads."""
    _force(monkeypatch, threads)
    rng = np.random.default_rng(10)
    X = sp.random(250, 90, density=0.08, format="csr", random_state=11)
    X.data = np.floor(X.data * 9) + 1
    k = 5
    F, B = rng.random((k, 250)), rng.random((k, 90))
    F[:, 3] = 0  # (FᵀB) = 0 on a row: the floor keeps the quotient finite
    floor = 1e-9
    wh = np.maximum(np.asarray((F.T @ B)[X.nonzero()]).ravel(), floor)
    Q = sp.csr_matrix((X.data / wh, X.indices, X.indptr), shape=X.shape)
    ref = np.asarray(Q @ B.T).T
    got = _kl_kernels.kl_mu_numerator(F, B, X, floor)
    assert got.shape == (k, 250) and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    _force(monkeypatch, 1)
    assert np.array_equal(got, _kl_kernels.kl_mu_numerator(F, B, X, floor))
