"""Compiled HALS with repeated sweeps, column by column (numba; used by "cd" with ``inner``).

HALS's subproblem min_{F ≥ 0} ½⟨F, GF⟩ − ⟨R, F⟩ + l1·ΣF + ½ l2‖F‖² separates over the N
columns of F (k, N). One HALS sweep updates the rows t = 0..k−1 in turn; because columns are
independent, doing all k updates of column j before moving to column j+1 gives exactly the
same sweep. This kernel does that, and repeats the sweep on the column while it is in
cache (Gillis & Glineur's inner iterations, up to ``n_sweeps``), stopping a column once a
sweep moves it by less than √``delta2`` times its first sweep's move. The repeated sweeps
then cost O(k²) flops per column from L1 cache instead of k memory-bound passes over F, which
is what makes many inner sweeps worth their time on a CPU.

Compiled with ``fastmath`` (the k-term dot product vectorises; measured on this 2-core
machine: ORL faces k=49 time to scikit-learn's objective 6.7 s → 5.3 s). Compiled lazily on
first use; numba is optional (``pip install "nmfkit[fast]"``) and the
numpy sweep in ``nmfkit.nnls.hals_sweep`` is used without it.
"""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["HAVE_NUMBA", "hals_inner_sweeps"]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
_COMPILED = None


def _hals_cols_py(F, G, R, l1, l2, order, n_sweeps, delta2):
    k, N = F.shape
    f = np.empty(k)
    r = np.empty(k)
    for j in range(N):
        for s in range(k):
            f[s] = F[s, j]
            r[s] = R[s, j]
        first = 0.0
        for it in range(n_sweeps):
            move = 0.0
            for tt in range(order.shape[0]):
                t = order[tt]
                hess = G[t, t] + l2
                if hess <= 0:
                    continue
                acc = 0.0
                for s in range(k):
                    acc += G[t, s] * f[s]
                v = f[t] + (r[t] - l1 - acc - l2 * f[t]) / hess
                if v < 0:
                    v = 0.0
                d = v - f[t]
                move += d * d
                f[t] = v
            if it == 0:
                first = move
            elif move <= delta2 * first:
                break
        for s in range(k):
            F[s, j] = f[s]


def _kernel():
    global _COMPILED
    if _COMPILED is None:
        import numba

        _COMPILED = numba.njit(cache=True, nogil=True, fastmath=True)(_hals_cols_py)
    return _COMPILED


def hals_inner_sweeps(F, G, R, l1: float, l2: float, order, n_sweeps: int, delta: float) -> None:
    """Up to ``n_sweeps`` HALS sweeps on each column of F (k, N), in place (see module doc).

    G : (k, k) Gram matrix, R : (k, N) cross product, l1 / l2 penalty weights, order : the
    components to update (frozen ones left out), delta : the relative-move stopping rule.
    """
    order = np.asarray(range(F.shape[0]) if order is None else order, dtype=np.int64)
    _kernel()(F, np.ascontiguousarray(G), np.ascontiguousarray(R), float(l1), float(l2),
              order, int(n_sweeps), float(delta) ** 2)
