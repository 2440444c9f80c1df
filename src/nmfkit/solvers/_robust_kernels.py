"""Host kernels of the robust solver: the n×m work of one iteration in one pass, in buffers
kept for the whole fit (used by :mod:`nmfkit.solvers.robust_mm` on host arrays).

What they replace, and why (ORL faces 400×10304, k = 25, float64, one BLAS thread): every
fresh n×m array costs its page faults — ``W @ H`` into a new array took 18.5 ms, into a kept
buffer 4.4 ms (33 MB arrays are above glibc's largest mmap threshold, so each is mapped and
zeroed again) — and the residual, ψ of it and the target took one pass each over n×m. Here WH
goes into a kept buffer (``np.matmul(..., out=)``), and one compiled pass turns it into the
target T = WH + (M/μ)∘ψ(X − WH), into the objective Σ M ρ(X − WH), or into the pilot's weighted
arrays. The arithmetic is that of :func:`nmfkit.robust.psi` / :func:`nmfkit.robust.rho_sum`
entry by entry (the same formulas, in the same order), so the numpy fit and the torch fit
(which keeps the array expressions) agree to rounding.

numba is a dependency of nmfkit; without it (or for arrays it cannot take: not C-contiguous,
not float32/float64) :func:`available` is False and the solver keeps its array expressions.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

__all__ = ["HAVE_NUMBA", "available", "group_runs", "group_sq_sums", "group_target_inplace",
           "matmul_into", "target_inplace", "rho_total", "weigh"]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None

#: the kinds' codes in the compiled kernels
_CODE = {"huber": 0, "cauchy": 1, "sparse": 2}
_KERNELS = None


def available(*arrays) -> bool:
    """Whether the compiled kernels take these arrays (X and the entry weights): numba
    installed, numpy arrays, C order, one floating dtype (None entries are skipped). The
    factors may have any layout: they reach the kernels only through ``np.matmul``."""
    if not HAVE_NUMBA:
        return False
    given = [a for a in arrays if a is not None]
    if not given:
        return False
    dtype = given[0].dtype
    return all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous
               for a in given) and dtype in (np.float32, np.float64)


def matmul_into(Wt, Hc, out):
    """out ← WH = (Wt)ᵀ Hc, into the kept buffer (no new n×m array)."""
    np.matmul(Wt.T, Hc, out=out)
    return out


# ------------------------------------------------------------------ kernel bodies
# One loop per kind and weighting, the branch outside it, so that each loop vectorises (a
# branch on the kind inside the loop kept Cauchy's target at 18 ms a pass on the faces).
def _target_py(X, Y, code, s, M, inv_mu, weighted):
    N = X.shape[0]
    if code == 0:  # Huber: ψ = clip(r, −δ, δ)
        if weighted:
            for q in range(N):
                Y[q] += min(max(X[q] - Y[q], -s), s) * M[q] * inv_mu
        else:
            for q in range(N):
                Y[q] += min(max(X[q] - Y[q], -s), s)
    elif code == 1:  # Cauchy: ψ = c²r / (c² + r²)
        s2 = s * s
        if weighted:
            for q in range(N):
                r = X[q] - Y[q]
                Y[q] += (r * s2) / (r * r + s2) * M[q] * inv_mu
        else:
            for q in range(N):
                r = X[q] - Y[q]
                Y[q] += (r * s2) / (r * r + s2)
    else:  # one-sided Huber: ψ = min(r, λ)
        if weighted:
            for q in range(N):
                Y[q] += min(X[q] - Y[q], s) * M[q] * inv_mu
        else:
            for q in range(N):
                Y[q] += min(X[q] - Y[q], s)


def _rho_py(X, Y, code, s, M, weighted):
    N = X.shape[0]
    total = 0.0
    if code == 1:  # Cauchy: ½c² log(1 + (r/c)²)
        inv = 1.0 / s
        for q in range(N):
            a = (X[q] - Y[q]) * inv
            v = math.log1p(a * a)
            total += v * M[q] if weighted else v
        return total * (0.5 * s * s)
    for q in range(N):  # Huber and one-sided Huber: ρ = ψ·r − ½ψ²
        r = X[q] - Y[q]
        p = min(max(r, -s), s) if code == 0 else min(r, s)
        v = p * (r - 0.5 * p)
        total += v * M[q] if weighted else v
    return total


def _weigh_py(X, Y, code, s, M, weighted, Om, OX):
    N = X.shape[0]
    if code == 1:  # Cauchy: 1 / (1 + (r/c)²)
        inv = 1.0 / s
        for q in range(N):
            a = (X[q] - Y[q]) * inv
            w = 1.0 / (a * a + 1.0)
            if weighted:
                w *= M[q]
            Om[q] = w
            OX[q] = w * X[q]
            Y[q] *= w
    elif code == 0:  # Huber: δ / max(|r|, δ)
        for q in range(N):
            w = s / max(abs(X[q] - Y[q]), s)
            if weighted:
                w *= M[q]
            Om[q] = w
            OX[q] = w * X[q]
            Y[q] *= w
    else:  # one-sided Huber: λ / max(r, λ)
        for q in range(N):
            w = s / max(X[q] - Y[q], s)
            if weighted:
                w *= M[q]
            Om[q] = w
            OX[q] = w * X[q]
            Y[q] *= w


def _group_sq_py(X, Y, M, starts, run_ids, weighted, out):
    # out[i, g] += Σ_{j ∈ g} M_ij (X_ij − Y_ij)², in float64: per row, the squares in one
    # vectorised pass into a row buffer, then a sum per run of consecutive columns of one
    # group (image tiles: runs of the tile's width along each pixel row)
    n, m = X.shape
    row = np.empty(m, dtype=np.float64)
    for i in range(n):
        if weighted:
            for j in range(m):
                r = X[i, j] - Y[i, j]
                row[j] = r * r * M[i, j]
        else:
            for j in range(m):
                r = X[i, j] - Y[i, j]
                row[j] = r * r
        for q in range(run_ids.shape[0]):
            acc = 0.0
            for j in range(starts[q], starts[q + 1]):
                acc += row[j]
            out[i, run_ids[q]] += acc


def _group_target_py(X, Y, M, starts, run_ids, om, inv_mu, weighted):
    # Y ← Y + ω_{i,g(j)} (M_ij/μ) (X_ij − Y_ij): the target of outliers="groups"; per row,
    # the weights spread over the runs into a row buffer, then one vectorised pass
    n, m = X.shape
    row = np.empty(m, dtype=om.dtype)
    for i in range(n):
        for q in range(run_ids.shape[0]):
            w = om[i, run_ids[q]]
            for j in range(starts[q], starts[q + 1]):
                row[j] = w
        if weighted:
            for j in range(m):
                Y[i, j] += row[j] * (M[i, j] * inv_mu) * (X[i, j] - Y[i, j])
        else:
            for j in range(m):
                Y[i, j] += row[j] * (X[i, j] - Y[i, j])


_GROUP_KERNELS = None


def _group_kernels():
    global _GROUP_KERNELS
    if _GROUP_KERNELS is None:
        import numba

        jit = numba.njit(cache=True, nogil=True, error_model="numpy")
        _GROUP_KERNELS = (jit(_group_sq_py), jit(_group_target_py))
    return _GROUP_KERNELS


def group_runs(labels):
    """(starts, run_ids) of the runs of consecutive equal labels: run q is columns
    starts[q]:starts[q+1], all of group run_ids[q] (int64; len(starts) = runs + 1)."""
    labels = np.asarray(labels, dtype=np.int64)
    cut = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate(([0], cut, [labels.shape[0]])).astype(np.int64)
    return starts, labels[starts[:-1]].copy()


def group_sq_sums(X, Y, runs, n_groups: int, M=None):
    """Σ_{j ∈ g} M_ij (X_ij − Y_ij)² for every row i and group g, as a new (n, G) float64
    array (Y = WH; X and Y are not changed); ``runs`` from :func:`group_runs`."""
    sq, _ = _group_kernels()
    out = np.zeros((X.shape[0], int(n_groups)), dtype=np.float64)
    sq(X, Y, X if M is None else M, runs[0], runs[1], M is not None, out)
    return out


def group_target_inplace(X, Y, runs, om, M=None, inv_mu: float = 1.0):
    """Y ← Y + ω_{i,g(j)} (M_ij·inv_mu) (X_ij − Y_ij) in place, ω (n, G) float64 (Y holds WH
    on entry, the target T = X − S of outliers="groups" on exit when unweighted)."""
    _, target = _group_kernels()
    target(X, Y, X if M is None else M, runs[0], runs[1], om, float(inv_mu), M is not None)
    return Y


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        import numba

        # error_model="numpy": a float division without the ZeroDivisionError check, so it
        # vectorises (with the check, Cauchy's target ran scalar, 13 against 3 ms a pass)
        jit = numba.njit(cache=True, nogil=True, error_model="numpy")
        _KERNELS = tuple(jit(body) for body in (_target_py, _rho_py, _weigh_py))
    return _KERNELS


def _flat(a):
    return a.reshape(-1)


def _mask_args(M, like):
    if M is None:
        return like[:1], False  # a placeholder of the right type; never read
    return _flat(M), True


def target_inplace(X, Y, kind: str, scale: float, M=None, inv_mu: float = 1.0):
    """Y ← Y + (M·inv_mu)∘ψ(X − Y) in place (Y holds WH on entry, the target on exit)."""
    target, _, _ = _kernels()
    Mf, weighted = _mask_args(M, _flat(X))
    target(_flat(X), _flat(Y), _CODE[kind], float(scale), Mf, float(inv_mu), weighted)
    return Y


def rho_total(X, Y, kind: str, scale: float, M=None) -> float:
    """Σ M_ij ρ(X_ij − Y_ij) (Y = WH), accumulated in float64; X and Y are not changed."""
    _, rho, _ = _kernels()
    Mf, weighted = _mask_args(M, _flat(X))
    return float(rho(_flat(X), _flat(Y), _CODE[kind], float(scale), Mf, weighted))


def weigh(X, Y, kind: str, scale: float, M, Om, OX):
    """The weighted arrays of the multiplicative updates at Y = WH: Om ← M∘ω(X − Y) (the
    weights of :func:`nmfkit.robust.weights`), OX ← Om∘X and Y ← Om∘Y (in place)."""
    _, _, weigh_ = _kernels()
    Mf, weighted = _mask_args(M, _flat(X))
    weigh_(_flat(X), _flat(Y), _CODE[kind], float(scale), Mf, weighted, _flat(Om), _flat(OX))
