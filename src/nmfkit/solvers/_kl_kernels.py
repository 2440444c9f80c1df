"""Coordinate-descent kernels for the generalised Kullback–Leibler loss (Hsieh & Dhillon 2011).

One call updates every row of a component-major factor F (k, N) with the basis B (k, M)
fixed, for the problem  min_{F ≥ 0} Σ_{(i,j) ∈ nz(X)} −X_ij log (FᵀB)_ij + Σ_i Σ_t F_ti b_t
+ l1·ΣF + ½ l2‖F‖², with b_t = Σ_j B_tj (the Σ WH term of the divergence, which needs no X).
X is given in CSR form (N × M): the W-update passes (X, H), the H-update (Xᵀ, W).

Each variable F_ti gets ``newton_steps`` one-dimensional Newton steps on exact first and
second derivatives, which cost O(nnz of row i) given (FᵀB)_ij at the row's non-zeros, kept up
to date after every step: a full sweep is O(nnz·k). Safeguard: the one-dimensional objective
has a decreasing second derivative, so a Newton step that *increases* F_ti never overshoots;
a step that decreases it is accepted only if the exact change of the objective is ≤ 0, and
halved otherwise — each step, hence each sweep, is non-increasing.

Two implementations with identical arithmetic: a numba kernel when numba is installed
(``pip install "nmfkit[fast]"``; rows split in contiguous ranges over host threads, each row
computed as the serial kernel does), and a numpy fallback vectorised over rows.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ._threads import n_threads, run_parts, split_weighted

__all__ = ["kl_cd_update", "kl_mu_numerator", "HAVE_NUMBA"]

_MAX_HALVINGS = 30
# nnz·k below which the rows stay on one thread (a hand-over costs some 30–60 µs)
_MIN_SPLIT_WORK = 1 << 16

#: numba is optional (``pip install "nmfkit[fast]"``); it is imported on first use only
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
_COMPILED = None

# the kernel body loops over rows with ``prange``; numba.prange once compiled
prange = range


def _kl_rows_py(F, Bt, indptr, indices, data, hsum, l1, l2, order, newton_steps, floor,
                r0, r1):
    """The kernel body (compiled by numba), rows r0 .. r1 − 1. Bt is the basis transposed,
    (M, k), so that the k values B[:, j] of one non-zero are contiguous; they are gathered
    once per row."""
    k, N = F.shape
    for i in prange(r0, r1):
        a = indptr[i]
        nz = indptr[i + 1] - a
        wh = np.empty(nz)
        loc = np.empty((k, nz))  # B[:, j] for the row's non-zeros, component-major
        for e in range(nz):
            j = indices[a + e]
            acc = 0.0
            for t in range(k):
                b = Bt[j, t]
                loc[t, e] = b
                acc += F[t, i] * b
            wh[e] = max(acc, floor)
        for tt in range(order.shape[0]):
            t = order[tt]
            bt = loc[t]
            w = float(F[t, i])
            for _ in range(newton_steps):
                g = hsum[t] + l1 + l2 * w
                h = l2
                for e in range(nz):
                    q = data[a + e] / wh[e]
                    g -= bt[e] * q
                    h += bt[e] * bt[e] * q / wh[e]
                if h > 0:
                    s = -g / h
                else:
                    s = -w if g > 0 else 0.0
                if s < -w:
                    s = -w
                if s < 0:
                    ok = False
                    for _h in range(_MAX_HALVINGS):
                        d = s * (hsum[t] + l1) + l2 * (s * w + 0.5 * s * s)
                        for e in range(nz):
                            arg = 1.0 + s * bt[e] / wh[e]
                            if arg <= 0:
                                d = np.inf
                                break
                            d -= data[a + e] * np.log(arg)
                        if d <= 0:
                            ok = True
                            break
                        s *= 0.5
                    if not ok:
                        s = 0.0
                if s == 0:
                    break
                w += s
                for e in range(nz):
                    wh[e] = max(wh[e] + s * bt[e], floor)
            F[t, i] = w


def _kl_rows_numba():
    """The compiled kernel (compiled, or loaded from numba's cache, on first use)."""
    global _COMPILED
    if _COMPILED is None:
        import numba

        globals()["prange"] = numba.prange  # read by numba when it compiles the body
        # serial (no parallel=True): numba's parallel rows gained nothing on this 2-core
        # machine (word-count corpus: 0.42 s vs 0.40 s per half-sweep) and cost 25 ms of
        # thread start-up per call on small problems, fighting BLAS's threads. The rows are
        # split over host threads instead (kl_cd_update, ``_threads``)
        _COMPILED = numba.njit(cache=True, nogil=True)(_kl_rows_py)
    return _COMPILED


def _kl_rows_numpy(F, B, rows, indices, data, hsum, l1, l2, order, newton_steps, floor):
    """The same updates as the numba kernel, one component at a time over all rows."""
    k, N = F.shape
    Bt = np.ascontiguousarray(B.T)
    Ft = np.ascontiguousarray(F.T)
    wh = np.empty(data.shape[0])
    block = 1 << 16
    for s0 in range(0, data.shape[0], block):
        sl = slice(s0, s0 + block)
        wh[sl] = np.einsum("ij,ij->i", Ft[rows[sl]], Bt[indices[sl]], dtype=np.float64)
    np.maximum(wh, floor, out=wh)
    for t in order:
        w = F[t].astype(np.float64)
        bt = B[t, indices].astype(np.float64)
        for _ in range(newton_steps):
            q = data / wh
            g = (hsum[t] + l1) + l2 * w - np.bincount(rows, bt * q, minlength=N)
            h = l2 + np.bincount(rows, bt * bt * q / wh, minlength=N)
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where(h > 0, -g / np.where(h > 0, h, 1.0), np.where(g > 0, -w, 0.0))
            np.maximum(s, -w, out=s)
            pending = s < 0
            for _h in range(_MAX_HALVINGS):
                if not pending.any():
                    break
                arg = 1.0 + s[rows] * bt / wh
                with np.errstate(divide="ignore", invalid="ignore"):
                    lg = np.where(arg > 0, np.log(np.where(arg > 0, arg, 1.0)), -np.inf)
                d = s * (hsum[t] + l1) + l2 * (s * w + 0.5 * s * s) - np.bincount(
                    rows, data * lg, minlength=N
                )
                pending &= ~(d <= 0)
                s[pending] *= 0.5
            s[pending] = 0.0
            if not s.any():
                break
            w += s
            wh += s[rows] * bt
            np.maximum(wh, floor, out=wh)
        F[t] = w


def kl_cd_update(F, B, X, hsum, l1: float, l2: float, order, newton_steps: int, floor: float,
                 use_numba: bool, rows=None) -> None:
    """Update F (k, N) in place by one KL coordinate-descent sweep (see the module docstring).

    Parameters
    ----------
    F : ndarray (k, N), C-contiguous, the factor being updated (Wᵀ or H).
    B : ndarray (k, M), the fixed factor (H or Wᵀ).
    X : CSR matrix (N, M) with strictly positive stored values (X or Xᵀ).
    hsum : ndarray (k,), float64, the row sums of B.
    l1, l2 : L1 and L2 penalty weights on F.
    order : int array, the order of the components.
    newton_steps : Newton steps per variable.
    floor : the smallest value (FᵀB)_ij may take at a non-zero (keeps quotients finite).
    use_numba : use the compiled kernel (requires numba).
    rows : optional int array, the row index of each stored value (numpy path cache).
    """
    order = np.asarray(order, dtype=np.int64)
    if use_numba:
        # rows are independent: contiguous ranges of about equal non-zeros (plus k per row)
        # run at the same time on host threads, each row exactly as the serial kernel does it
        args = (F, np.ascontiguousarray(B.T), X.indptr, X.indices, X.data, hsum, float(l1),
                float(l2), order, int(newton_steps), float(floor))
        N = F.shape[1]
        parts = n_threads() if X.nnz * F.shape[0] >= _MIN_SPLIT_WORK else 1
        ranges = [(0, N)] if parts == 1 else split_weighted(
            X.indptr + F.shape[0] * np.arange(N + 1), parts)
        run_parts(_kl_rows_numba(), [(*args, r0, r1) for r0, r1 in ranges])
        return
    if rows is None:
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    _kl_rows_numpy(F, B, rows, X.indices, X.data, hsum, float(l1), float(l2), order,
                   int(newton_steps), float(floor))


def _mu_rows_py(F, Bt, indptr, indices, data, floor, r0, r1, numT):
    """numT[i] = Σ_e q_e B[:, j_e] over row i's non-zeros, q_e = x_e / max((FᵀB)_ij, floor):
    the numerator of KL's multiplicative update, rows r0 .. r1 − 1, one pass over X."""
    k = F.shape[0]
    f = np.empty(k, dtype=numT.dtype)
    for i in range(r0, r1):
        for t in range(k):
            f[t] = F[t, i]
            numT[i, t] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            acc = 0.0
            for t in range(k):
                acc += f[t] * Bt[j, t]
            q = data[p] / max(acc, floor)
            for t in range(k):
                numT[i, t] += q * Bt[j, t]


_MU_COMPILED = None


def kl_mu_numerator(F, B, X, floor: float):
    """(Q Bᵀ)ᵀ, (k, N), Q = X / max(FᵀB, floor) at X's non-zeros (X CSR, N × M): KL's
    multiplicative-update numerator in one compiled pass over X (numba), rows split over host
    threads. scipy's product and the blocked sampled dot it replaces made three passes and a
    copy of X's pattern (word-count corpus, k=10: 46 ms a half-step on one thread)."""
    global _MU_COMPILED
    if _MU_COMPILED is None:
        import numba

        _MU_COMPILED = numba.njit(cache=True, nogil=True)(_mu_rows_py)
    N = F.shape[1]
    numT = np.empty((N, F.shape[0]), dtype=np.result_type(F.dtype, B.dtype, X.dtype))
    args = (F, np.ascontiguousarray(B.T), X.indptr, X.indices, X.data, float(floor))
    parts = n_threads() if X.nnz * F.shape[0] >= _MIN_SPLIT_WORK else 1
    ranges = [(0, N)] if parts == 1 else split_weighted(
        X.indptr + F.shape[0] * np.arange(N + 1), parts)
    run_parts(_MU_COMPILED, [(*args, r0, r1, numT) for r0, r1 in ranges])
    return numT.T
