"""Non-negative least-squares kernels on Gram products, shared by every alternating solver.

The problems have the form  min_{F ≥ 0} ½‖M − Uᵀ F‖² + l1·ΣF + ½ l2‖F‖²  and are given only
through their Gram products G = UUᵀ (k×k) and R = U M (k×N), as in TensorLy's
``hals_nnls(UtM, UtU, V)``: one kernel serves the W-update (U = H, M = Xᵀ), the H-update
(U = Wᵀ, M = X), ``transform`` and, later, masked rows and Dask blocks.

F is stored component-major, shape (k, N), C-contiguous, so each coordinate block F[t] is
one contiguous row and its update is a BLAS matrix-vector product.
"""

from __future__ import annotations

import numpy as np

from .backends._numpy import NumpyBackend

_NUMPY = NumpyBackend()

__all__ = ["hals_sweep", "nnls_bpp"]


def hals_sweep(
    F, G, R, l1: float = 0.0, l2: float = 0.0, order=None, penalties=(), nx=None
) -> None:
    """One cyclic pass of HALS (exact block coordinate descent) over the rows of F, in place.

    For each component t (in ``order``, default 0..k−1)::

        F[t] ← max(0, F[t] + (R[t] − l1 − G[t] F − l2·F[t]) / (G[t, t] + l2))

    which minimises the objective exactly in F[t] with the other rows fixed, so the
    objective never increases. A component with G[t, t] + l2 = 0 (a dead component) is left
    unchanged.

    Parameters
    ----------
    F : ndarray (k, N), updated in place.
    G : ndarray (k, k), symmetric positive semi-definite Gram matrix UUᵀ.
    R : ndarray (k, N), cross product U M.
    l1, l2 : penalty weights (L1 shift and L2 addition to the diagonal).
    order : sequence of component indices, default ``range(k)``.
    penalties : further penalty objects (``Penalty.hals_terms`` protocol, e.g. a graph
        penalty) whose gradient joins the numerator and whose curvature majorant joins the
        denominator, elementwise; the update is then a majorise-minimise step, still monotone.
    nx : backend or None (numpy). The sweep is the backend's (torch: no host synchronisation
        per component).
    """
    return (nx or _NUMPY).hals_sweep(F, G, R, l1, l2, order, penalties)


def nnls_bpp(G, R, l1: float = 0.0, l2: float = 0.0, init=None, max_iter: int | None = None,
             nx=None):
    """Exact NNLS by block principal pivoting (Kim & Park 2011), many right-hand sides.

    Solves, column by column, ``min_{F ≥ 0} ½ fᵀ(G + l2·I) f − (r − l1)ᵀ f``, i.e. the
    problem of :func:`hals_sweep` solved to optimality rather than by one sweep. Each column
    exchanges whole blocks of variables between the passive and the active set until the KKT
    conditions hold (F ≥ 0, gradient Y ≥ 0, F·Y = 0); the backup rule (one variable at a time
    after three non-improving full exchanges) makes it finite. Columns with the same passive
    set share one linear solve.

    The pivoting runs on whole (k, N) masks with backend operations, so numpy and torch
    follow the same logic; only the grouped solve differs (numpy: one LAPACK solve per
    distinct passive set; torch: ``nx.solve_passive``, all groups in one batched call). Each
    pivoting round reads back which columns still violate the KKT conditions (the loop's
    stopping test); on torch the grouping (``torch.unique``'s output size) and the check for
    a singular factorisation add two more host reads per round, none per column.

    Parameters
    ----------
    G : array (k, k), symmetric positive semi-definite Gram matrix UUᵀ.
    R : array (k, N), cross product U M.
    l1, l2 : penalty weights (L1 shift, L2 addition to the diagonal).
    init : array (k, N) or None. A previous solution: its support is the first passive
        set (warm start, as in alternating NNLS where it is usually close to optimal).
    max_iter : int or None. Limit on the pivoting rounds, default ``10·k + 50``; when reached
        the (feasible, nearly optimal) projection of the last iterate is returned.
    nx : backend or None (numpy). The arrays' backend (numpy arrays or torch tensors).

    Returns
    -------
    F : array (k, N) ≥ 0, in R's dtype (the arithmetic is float64) and on R's backend.
    """
    if nx is None:
        nx = _NUMPY
    k, N = R.shape
    Gd = nx.copy(nx.asarray(G, dtype=np.float64))
    if l2:
        nx.diag_add(Gd, l2)
    Rd = nx.asarray(R, dtype=np.float64)
    if l1:
        Rd = Rd - l1
    F = nx.empty_like(Rd)
    F[...] = 0.0
    if N == 0 or k == 0:
        return nx.asarray(F, dtype=nx.dtype_of(R))
    scale = max(nx.max(abs(Rd)), nx.max(abs(Gd.diagonal())), float(np.finfo(float).tiny))
    tol = 1e-12 * scale
    solve = nx.solve_passive
    if init is not None:
        P = init > 0
        Y = nx.empty_like(Rd)
        solve(Gd, Rd, P, F, Y, nx.index_range(N, Rd))
    else:
        P = Rd < -np.inf  # all False, on R's device
        Y = -Rd
    # integer state on R's device (the backend may have been built without a device)
    n_inf = nx.index_range(N, Rd) * 0 + (k + 1)  # fewest infeasible variables so far
    chances = n_inf * 0 + 3  # full exchanges left without improvement
    rows = nx.index_range(k, Rd)[:, None]
    limit = 10 * k + 50 if max_iter is None else max_iter
    for _ in range(limit):
        V = (P & (F < -tol)) | (~P & (Y < -tol))  # infeasible variables
        nv = V.sum(0)
        active = nv > 0
        cols = nx.flatnonzero(active)  # the host decision of this round
        if cols.shape[0] == 0:
            break
        better = active & (nv < n_inf)  # fewer infeasibilities: full exchange, 3 chances
        n_inf = nx.where(better, nv, n_inf)
        chances = nx.where(better, 3, chances)
        worse = active & ~better & (chances >= 1)  # not better: full exchange, one chance less
        chances = nx.where(worse, chances - 1, chances)
        full = better | worse
        P ^= V & full[None, :]
        backup = active & ~full  # out of chances: exchange only the last infeasible variable
        last = nx.amax(nx.where(V, rows, -1), 0)
        P ^= (rows == last[None, :]) & backup[None, :]
        solve(Gd, Rd, P, F, Y, cols)
    nx.clip_min(F, 0.0, out=F)
    return nx.asarray(F, dtype=nx.dtype_of(R))
