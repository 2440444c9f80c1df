"""Compiled HALS with repeated sweeps, by blocks of columns (numba; used by "cd" with ``inner``).

HALS's subproblem min_{F ≥ 0} ½⟨F, GF⟩ − ⟨R, F⟩ + l1·ΣF + ½ l2‖F‖² separates over the N
columns of F (k, N). One HALS sweep updates the rows t = 0..k−1 in turn; because columns are
independent, doing all k updates on a block of columns before moving to the next block gives
exactly the same sweep. This kernel copies a block of ``BLOCK`` columns into a small
contiguous (k, BLOCK) buffer, repeats the sweep on it while it is in cache (Gillis & Glineur's
inner iterations, up to ``n_sweeps``), stopping the block once a sweep moves it by less than
√``delta2`` times its first sweep's move, and writes it back. Within a block each coordinate
update is a (1, k) × (k, BLOCK) product whose BLOCK lanes are independent, so it runs in the
CPU's vector units: measured on this project's 2-core AMD EPYC (AVX-512), 20 sweeps of a
(20, 10000) float32 factor take 6 ms against 81 ms for the former column-by-column kernel
(whose k-term dot products ran one column at a time, ~2 GFlop/s), and (49, 10304) float64
47 ms against 272 ms. The repeated sweeps then cost O(k²) flops per column from L1/L2 cache.

The blocks are independent, so within ``cd``'s ``kernel_threads()`` (BLAS held at one
thread) they are split into contiguous ranges of blocks run at the same time on host threads
(``_threads``: as many as BLAS may use, two on the benchmark machine), each with its own
buffers: the same arithmetic in the same order, bit for bit the serial result. Elsewhere
(robust fits, small problems) they stay on one thread. A ``prange`` version had been 2× faster in isolation on the two cores, but
inside a fit it slowed both the sweeps and the BLAS products that follow them (ORL faces, 40
iterations: sweeps 0.50 → 0.90 s, X Hᵀ 0.25 → 0.53 s): numba's and OpenBLAS's thread pools
spin and competed for the same cores. The pool's threads sleep between calls instead.

Compiled with ``fastmath`` and lazily on first use. numba is a dependency of nmfkit; where it
is missing, the numpy sweep in ``nmfkit.nnls.hals_sweep`` is used instead.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..backends import get_backend
from ._threads import blas_single, n_threads, run_parts, split_even

__all__ = ["BLOCK", "HAVE_NUMBA", "hals_inner_sweeps", "hals_sweep_violation"]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
BLOCK = 128  # columns per block: k·BLOCK values stay in cache while the block is swept
# k²·N·sweeps below which the blocks stay on one thread (about 0.2 ms of sweeps: a thread's
# hand-over costs some 30–60 µs)
_MIN_SPLIT_WORK = 1 << 22
_COMPILED = None


def _hals_block_py(F, G, R, l1, l2, order, ih, n_sweeps, delta2, j0, Fb, Rb, acc):
    """All sweeps of the columns j0 .. j0+BLOCK of F in the (k, BLOCK) buffers Fb, Rb."""
    k, N = F.shape
    B = Fb.shape[1]
    jb = min(B, N - j0)
    Fb[:, jb:] = 0.0  # padding columns stay at exactly zero
    Rb[:, jb:] = 0.0
    if F.strides[0] > F.strides[1]:  # C order: a component's block is contiguous
        for s in range(k):
            for b in range(jb):
                Fb[s, b] = F[s, j0 + b]
    else:  # F order (sample-major storage): a column's k values are contiguous
        for b in range(jb):
            for s in range(k):
                Fb[s, b] = F[s, j0 + b]
    if R.strides[0] > R.strides[1]:
        for s in range(k):
            for b in range(jb):
                Rb[s, b] = R[s, j0 + b] - l1
    else:
        for b in range(jb):
            for s in range(k):
                Rb[s, b] = R[s, j0 + b] - l1
    first = 0.0
    done = 0
    k4 = k - k % 4
    k8 = k - k % 8
    for it in range(n_sweeps):
        done += 1
        move = 0.0
        for tt in range(order.shape[0]):
            t = order[tt]
            h = ih[t]
            if h == 0.0:  # G[t, t] + l2 <= 0: a dead component stays as it is
                continue
            for b in range(B):
                acc[b] = Rb[t, b] - l2 * Fb[t, b]
            # eight (then four) rows of Fb per pass over acc: fewer of acc's loads and
            # stores, which bound the one-row loop (one thread, 3 sweeps: k = 49 float64
            # 16 → 23 GFlop/s, k = 20 float32 24 → 34)
            for s in range(0, k8, 8):
                g0, g1, g2, g3 = G[t, s], G[t, s + 1], G[t, s + 2], G[t, s + 3]
                g4, g5, g6, g7 = G[t, s + 4], G[t, s + 5], G[t, s + 6], G[t, s + 7]
                for b in range(B):
                    acc[b] -= ((g0 * Fb[s, b] + g1 * Fb[s + 1, b]) + (
                        g2 * Fb[s + 2, b] + g3 * Fb[s + 3, b])) + ((
                        g4 * Fb[s + 4, b] + g5 * Fb[s + 5, b]) + (
                        g6 * Fb[s + 6, b] + g7 * Fb[s + 7, b]))
            for s in range(k8, k4, 4):
                g0, g1, g2, g3 = G[t, s], G[t, s + 1], G[t, s + 2], G[t, s + 3]
                for b in range(B):
                    acc[b] -= (g0 * Fb[s, b] + g1 * Fb[s + 1, b]) + (
                        g2 * Fb[s + 2, b] + g3 * Fb[s + 3, b])
            for s in range(k4, k):
                g = G[t, s]
                for b in range(B):
                    acc[b] -= g * Fb[s, b]
            for b in range(B):
                f = Fb[t, b]
                v = max(f + acc[b] * h, 0.0)
                d = v - f
                move += d * d
                Fb[t, b] = v
        if it == 0:
            first = move
        elif move <= delta2 * first:
            break
    if F.strides[0] > F.strides[1]:
        for s in range(k):
            for b in range(jb):
                F[s, j0 + b] = Fb[s, b]
    else:
        for b in range(jb):
            for s in range(k):
                F[s, j0 + b] = Fb[s, b]
    return done


def _hals_blocks_py(F, G, R, l1, l2, order, n_sweeps, delta2, B, i0, i1):
    """The blocks i0 .. i1 − 1 (of ``B`` columns each) of F; returns the sweeps done."""
    k, N = F.shape
    ih = np.zeros(k, dtype=F.dtype)
    for t in range(k):
        h = G[t, t] + l2
        if h > 0:
            ih[t] = 1.0 / h
    Fb = np.empty((k, B), dtype=F.dtype)
    Rb = np.empty((k, B), dtype=F.dtype)
    acc = np.empty(B, dtype=F.dtype)
    total = 0
    for i in range(i0, i1):
        total += _block(F, G, R, l1, l2, order, ih, n_sweeps, delta2, i * B, Fb, Rb, acc)
    return total


_block = None


def _kernel():
    global _block, _COMPILED
    if _COMPILED is None:
        import numba

        _block = numba.njit(cache=True, nogil=True, fastmath=True)(_hals_block_py)
        _COMPILED = numba.njit(cache=True, nogil=True, fastmath=True)(_hals_blocks_py)
    return _COMPILED


def hals_inner_sweeps(F, G, R, l1: float, l2: float, order, n_sweeps: int,
                      delta: float) -> float:
    """Up to ``n_sweeps`` HALS sweeps on each block of columns of F (k, N), in place.

    G : (k, k) Gram matrix, R : (k, N) cross product, l1 / l2 penalty weights, order : the
    components to update (frozen ones left out), delta : the relative-move stopping rule
    (per block of ``BLOCK`` columns).

    Returns the mean number of sweeps per block (the stopping rule's effect, for the cost
    model and diagnostics).
    """
    order = np.asarray(range(F.shape[0]) if order is None else order, dtype=np.int64)
    G = np.ascontiguousarray(G, dtype=F.dtype)
    R = np.asarray(R, dtype=F.dtype)  # C or F order (a transposed product): both compiled
    k, N = F.shape
    n_blocks = -(-N // BLOCK)
    args = (F, G, R, F.dtype.type(l1), F.dtype.type(l2), order, int(n_sweeps),
            float(delta) ** 2, BLOCK)
    kern = _kernel()
    parts = 1
    # split only while BLAS is held at one thread (cd's kernel_threads()): else OpenBLAS's
    # idle threads, spinning after the last product, hold the core the second part needs
    if n_blocks > 1 and k * k * N * int(n_sweeps) >= _MIN_SPLIT_WORK and blas_single():
        parts = n_threads()
    done = run_parts(kern, [(*args, i0, i1) for i0, i1 in split_even(n_blocks, parts)])
    return sum(done) / max(1, n_blocks)


def hals_sweep_violation(F, G, R, l1: float = 0.0, l2: float = 0.0, order=None,
                         nx=None) -> float:
    """One HALS sweep of F (k, N) in place, returning scikit-learn's CD violation.

    The update is ``nmfkit.nnls.hals_sweep``'s (numpy, one component at a time). Before
    component t is updated, the gradient of its coordinates is g = (G F)[t] + l1 + l2·F[t]
    − R[t], at the point the sweep has reached; the projected gradient is g where F > 0
    and min(0, g) where F = 0, and the violation is the sum of its absolute values over
    every coordinate of the sweep — exactly what scikit-learn's ``_update_cdnmf_fast``
    accumulates. Its ``solver="cd"`` stops when the violation of an iteration (W and H
    sweeps) falls to ``tol`` times that of the first iteration.

    A dead component (G[t, t] + l2 ≤ 0) contributes to the violation and is left unchanged.
    The sweep is the backend's (``nx``, numpy by default): on torch it runs on the tensors'
    device, with one host read.
    """
    return (nx or get_backend()).hals_sweep_violation(F, G, R, l1, l2, order)
