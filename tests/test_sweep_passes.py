"""The compiled HALS sweep's unrolled update (rows of the block eight, then four, then one per
pass over the accumulator) is the HALS update for every k, whatever its remainder; and the
blocked extrapolation's elementwise passes and Gram products split over host threads
(``_blocked``) compute what one thread computes: exactly for the elementwise passes, to
rounding (and symmetric) for the Gram summed over column ranges."""

from __future__ import annotations

import numpy as np
import pytest

from nmfkit.nnls import hals_sweep
from nmfkit.solvers import _blocked, _hals_kernel

numba = pytest.importorskip("numba")


@pytest.mark.parametrize("k", [1, 3, 4, 5, 8, 9, 12, 13, 17, 49])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unrolled_sweeps_are_hals_sweeps(k, dtype):
    rng = np.random.default_rng(k)
    N = _hals_kernel.BLOCK + 37  # a full block and a partial one
    U = rng.random((k, 2 * k + 1))
    G = U @ U.T
    F0 = rng.random((k, N))
    R = G @ rng.random((k, N))  # an interior solution: few coordinates clipped at zero
    order = rng.permutation(k)
    ref = F0.copy()
    for _ in range(4):
        hals_sweep(ref, G, R, 0.02, 0.1, order)
    F = F0.astype(dtype)
    done = _hals_kernel.hals_inner_sweeps(F, G.astype(dtype), R.astype(dtype), 0.02, 0.1,
                                          order, 4, 0.0)
    assert done == 4  # delta = 0: every sweep runs
    tol = 2e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(F, ref, rtol=tol, atol=tol * np.abs(ref).max())
    assert (F >= 0).all() and not np.array_equal(F, F0.astype(dtype))


def _force(monkeypatch, n):
    monkeypatch.setattr(_blocked, "n_threads", lambda: n)
    monkeypatch.setattr(_blocked, "blas_single", lambda: n > 1)  # as within kernel_threads()
    monkeypatch.setattr(_blocked, "_MIN_SPLIT_ENTRIES", 1)
    monkeypatch.setattr(_blocked, "_MIN_SPLIT_GRAM", 1)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [2, 3])
def test_split_passes_are_the_serial_passes(monkeypatch, order, dtype, threads):
    from nmfkit.backends import get_backend

    nx = get_backend("numpy")
    rng = np.random.default_rng(1)
    k, N = 7, 1003
    F0 = np.array(rng.random((k, N)), dtype=dtype, order=order)
    D = np.array(rng.standard_normal((k, N)), dtype=np.float32, order=order)
    outs = []
    for n in (1, threads):
        _force(monkeypatch, n)
        F, save = F0.copy(order="K"), np.empty_like(F0)
        _blocked._extrapolated(nx, F, D, 0.7, out=F, save=save)
        E = _blocked._extrapolated(nx, F0, D, 0.3)
        step = np.empty_like(D)
        _blocked._subtract(nx, F, save, step)
        outs.append((F, save, E, step, _blocked._gram(F)))
    (F1, s1, E1, d1, G1), (F2, s2, E2, d2, G2) = outs
    assert np.array_equal(s1, F0) and np.array_equal(s2, F0)
    assert np.array_equal(F1, F2) and np.array_equal(E1, E2) and np.array_equal(d1, d2)
    assert (F1 >= 0).all() and (F1 == 0).any()  # the clip acted
    np.testing.assert_array_equal(d1, (F1.astype(np.float64) - F0).astype(np.float32))
    rt = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(G2, G1, rtol=rt)
    np.testing.assert_array_equal(G2, G2.T)
    np.testing.assert_allclose(G1, F1.astype(np.float64) @ F1.T.astype(np.float64), rtol=rt * 10)
