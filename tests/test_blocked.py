"""Extrapolated HALS by blocks of columns (solvers/_blocked.py): the blocks change memory, not
the algorithm; the objective never increases; the block products equal scipy's."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.solvers import _blocked
from nmfkit.solvers._blocked import HAVE_NUMBA, colblock_cross

KERNELS = ["numpy"] + (["numba"] if HAVE_NUMBA else [])


def _sparse(n=300, m=700, k=6, density=0.08, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    X[rng.random((n, m)) > density] = 0.0
    return sp.csr_matrix(X)


def _fit(X, block_columns, kernel="auto", k=6, max_iter=25, curve=None):
    opts = {"inner": True, "extrapolate": True, "block_columns": block_columns,
            "kernel": kernel}
    cb = None if curve is None else (lambda info: curve.append(info.objective))
    m = NMF(k, solver="cd", init="random", random_state=0, tol=0, max_iter=max_iter,
            solver_options=opts, callback=cb)
    W = m.fit_transform(X)
    return W, m.components_


@pytest.mark.parametrize("kernel", KERNELS)
def test_blocks_give_the_same_fit_as_one_block(kernel):
    """Columns of each half-iteration's subproblem are independent and the restart decision
    is global: blocks of 128 columns (rows 3 blocks, features 6) follow the one-block fit
    (to rounding: sums accumulate in another order; the numpy sweeps stop per block)."""
    X = _sparse()
    c1, cb = [], []
    W1, H1 = _fit(X, 10**9, kernel, curve=c1)
    Wb, Hb = _fit(X, 128, kernel, curve=cb)
    np.testing.assert_allclose(cb, c1, rtol=1e-6)
    d = np.linalg.norm(Wb @ Hb - W1 @ H1) / np.linalg.norm(W1 @ H1)
    assert d < 1e-4, d


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_blocked_objective_never_increases(sparse, alpha):
    X = _sparse(density=0.3)
    X = X if sparse else X.toarray()
    curve, f = [], []

    def cb(info):
        curve.append(info.objective)
        f.append(beta_divergence(X, info.W, info.H, 2.0))

    m = NMF(6, solver="auto", init="random", random_state=1, tol=0, max_iter=60,
            alpha_W=alpha, alpha_H=alpha, l1_ratio=0.5, callback=cb,
            solver_options={"block_columns": 128})
    m.fit(X)
    curve = np.array(curve)
    assert np.all(np.diff(curve) <= 1e-10 * curve[0]), np.diff(curve).max()
    if alpha == 0:  # the reported objective is the true one
        np.testing.assert_allclose(curve, f, rtol=1e-9)


def test_float32_blocked_matches_float64():
    X = _sparse()
    W64, H64 = _fit(X, 128)
    W32, H32 = _fit(X.astype(np.float32), 128)
    assert W32.dtype == H32.dtype == np.float32
    e64 = np.linalg.norm(X.toarray() - W64 @ H64)
    e32 = np.linalg.norm(X.toarray() - W32 @ H32)
    assert e32 == pytest.approx(e64, rel=1e-3)


@pytest.mark.parametrize("compiled", [False] + ([True] if HAVE_NUMBA else []))
def test_column_block_products_equal_scipy(compiled):
    X = _sparse(200, 500)
    W = np.random.default_rng(0).random((200, 7))
    full = (X.T @ W).T
    cursor, out = X.indptr[:-1].copy(), np.empty((128, 7))
    for c0 in range(0, 500, 128):
        R = colblock_cross(X, W, c0, min(500, c0 + 128), cursor, out, compiled)
        np.testing.assert_allclose(R, full[:, c0:c0 + 128], rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba kernel")
def test_row_block_extrapolated_product_equals_scipy():
    rng = np.random.default_rng(0)
    X = _sparse(200, 500)
    H = np.asfortranarray(rng.random((7, 500)))
    D = np.asfortranarray((rng.random((7, 500)) - 0.5).astype(np.float32))
    Hh = np.maximum(H + np.float64(0.8) * D.astype(np.float64), 0)
    out = np.empty((64, 7))
    for r0 in range(0, 200, 64):
        r1 = min(200, r0 + 64)
        _blocked._kernel("row")(X.indptr, X.indices, X.data, H.T, D.T, 0.8, r0, r1, out)
        np.testing.assert_allclose(out[: r1 - r0], (X[r0:r1] @ Hh.T), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_working_memory_beyond_the_factors_is_bounded(kernel):
    """Sparse X, k=40: the fit holds W, H, the last step in float32 (half of W, H) and a few
    (k, block) buffers — not a second copy of the factors nor a whole WᵀX (docs/benchmarks.md,
    W6). Without numba, scipy's slices add a copy of a block of X's rows and of a block of
    that."""
    X = _sparse(1500, 6000, k=8, density=0.01)
    k, B = 40, 512
    opts = {"block_columns": B, "kernel": kernel}
    NMF(k, solver="auto", init="random", random_state=0, tol=0, max_iter=2,
        solver_options=opts).fit(X)  # kernels compiled before measuring
    tracemalloc.start()
    m = NMF(k, solver="auto", init="random", random_state=0, tol=0, max_iter=8,
            solver_options=opts)
    W = m.fit_transform(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    wh = W.nbytes + m.components_.nbytes
    x_rows = 0 if kernel == "numba" else 2 * (X.data.nbytes + X.indices.nbytes) * B / X.shape[0]
    assert peak <= 1.5 * wh + 6 * k * B * 8 + x_rows, (peak / wh)


def test_initialize_h_order_f_same_values():
    X = _sparse()
    for init in ("random", "nndsvda"):
        W1, H1 = initialize(X, 5, init=init, random_state=0)
        W2, H2 = initialize(X, 5, init=init, random_state=0, h_order="F")
        assert H2.flags.f_contiguous and np.array_equal(H1, H2) and np.array_equal(W1, W2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "128", True])
def test_block_columns_validated(bad):
    with pytest.raises(ValueError, match="block_columns"):
        NMF(3, solver="auto", max_iter=2, solver_options={"block_columns": bad}).fit(_sparse())
