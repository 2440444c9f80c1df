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

Blocks are independent, so they run in parallel on numba's threads (``prange``) when the fit
runs in the main thread with more than one thread allowed (``n_jobs``): 2× on 2 cores for
the shapes above.

Compiled with ``fastmath`` and lazily on first use; numba is optional
(``pip install "nmfkit[fast]"``) and the numpy sweep in ``nmfkit.nnls.hals_sweep`` is used
without it.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np

__all__ = ["BLOCK", "HAVE_NUMBA", "hals_inner_sweeps"]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
BLOCK = 128  # columns per block: k·BLOCK values stay in cache while the block is swept
_COMPILED = {}


def _hals_block_py(F, G, R, l1, l2, order, ih, n_sweeps, delta2, j0, Fb, Rb, acc):
    """All sweeps of the columns j0 .. j0+BLOCK of F in the (k, BLOCK) buffers Fb, Rb."""
    k, N = F.shape
    B = Fb.shape[1]
    jb = min(B, N - j0)
    for s in range(k):
        for b in range(B):
            if b < jb:
                Fb[s, b] = F[s, j0 + b]
                Rb[s, b] = R[s, j0 + b] - l1
            else:  # padding columns stay at exactly zero
                Fb[s, b] = 0.0
                Rb[s, b] = 0.0
    first = 0.0
    for it in range(n_sweeps):
        move = 0.0
        for tt in range(order.shape[0]):
            t = order[tt]
            h = ih[t]
            if h == 0.0:  # G[t, t] + l2 <= 0: a dead component stays as it is
                continue
            for b in range(B):
                acc[b] = Rb[t, b] - l2 * Fb[t, b]
            for s in range(k):
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
    for s in range(k):
        for b in range(jb):
            F[s, j0 + b] = Fb[s, b]


def _hals_blocks_py(F, G, R, l1, l2, order, n_sweeps, delta2, B):
    k, N = F.shape
    ih = np.zeros(k, dtype=F.dtype)
    for t in range(k):
        h = G[t, t] + l2
        if h > 0:
            ih[t] = 1.0 / h
    n_blocks = (N + B - 1) // B
    Fb = np.empty((k, B), dtype=F.dtype)
    Rb = np.empty((k, B), dtype=F.dtype)
    acc = np.empty(B, dtype=F.dtype)
    for i in range(n_blocks):
        _block(F, G, R, l1, l2, order, ih, n_sweeps, delta2, i * B, Fb, Rb, acc)


def _hals_blocks_par_py(F, G, R, l1, l2, order, n_sweeps, delta2, B):
    k, N = F.shape
    ih = np.zeros(k, dtype=F.dtype)
    for t in range(k):
        h = G[t, t] + l2
        if h > 0:
            ih[t] = 1.0 / h
    n_blocks = (N + B - 1) // B
    for i in prange(n_blocks):  # noqa: F821 - numba.prange, injected at compile time
        Fb = np.empty((k, B), dtype=F.dtype)
        Rb = np.empty((k, B), dtype=F.dtype)
        acc = np.empty(B, dtype=F.dtype)
        _block(F, G, R, l1, l2, order, ih, n_sweeps, delta2, i * B, Fb, Rb, acc)


_block = None


def _kernel(parallel: bool):
    global _block
    if parallel not in _COMPILED:
        import numba

        if _block is None:
            _block = numba.njit(cache=True, nogil=True, fastmath=True)(_hals_block_py)
        glb = {**globals(), "_block": _block, "prange": numba.prange}
        src = _hals_blocks_par_py if parallel else _hals_blocks_py
        fn = type(src)(src.__code__, glb, src.__name__)
        _COMPILED[parallel] = numba.njit(cache=True, nogil=True, fastmath=True,
                                         parallel=parallel)(fn)
    return _COMPILED[parallel]


def _use_threads(N: int) -> bool:
    """Run the blocks in parallel? Only from the main thread (numba's default threading layer
    must not be entered by two threads at once, and restarts run fits in worker threads),
    with more than one numba thread allowed (``n_jobs`` / ``thread_limits`` set it) and at
    least two blocks per thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    import numba

    n = numba.get_num_threads()
    return n > 1 and N >= 2 * n * BLOCK


def hals_inner_sweeps(F, G, R, l1: float, l2: float, order, n_sweeps: int, delta: float,
                      parallel: bool | None = None) -> None:
    """Up to ``n_sweeps`` HALS sweeps on each block of columns of F (k, N), in place.

    G : (k, k) Gram matrix, R : (k, N) cross product, l1 / l2 penalty weights, order : the
    components to update (frozen ones left out), delta : the relative-move stopping rule
    (per block of ``BLOCK`` columns), parallel : run the blocks on numba's threads (None:
    decide from the thread count and the size, see ``_use_threads``). The result does not
    depend on ``parallel``: blocks are independent.
    """
    order = np.asarray(range(F.shape[0]) if order is None else order, dtype=np.int64)
    G = np.ascontiguousarray(G, dtype=F.dtype)
    R = np.ascontiguousarray(R, dtype=F.dtype)
    if parallel is None:
        parallel = _use_threads(F.shape[1])
    _kernel(bool(parallel))(F, G, R, F.dtype.type(l1), F.dtype.type(l2), order,
                            int(n_sweeps), float(delta) ** 2, BLOCK)
