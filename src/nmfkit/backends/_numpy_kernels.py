"""The numpy backend's kernels for alternating NNLS: one HALS sweep (with or without
scikit-learn's projected-gradient violation) and block principal pivoting's grouped solve.
The torch backend has its own (``_torch_hals``, ``_torch_bpp``); solvers reach either through
``nx``. Host loops over the k components; each step is one BLAS matrix-vector product.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hals_sweep", "hals_sweep_violation", "solve_passive"]


def hals_sweep(F, G, R, l1: float = 0.0, l2: float = 0.0, order=None, penalties=()) -> None:
    """One cyclic HALS pass over the rows of F (k, N), in place (see
    :func:`nmfkit.nnls.hals_sweep`); a component with G[t, t] + l2 ≤ 0 is left unchanged.
    ``penalties``: objects with ``hals_terms(t, F, buf)`` whose curvature joins the step."""
    k = F.shape[0]
    if order is None:
        order = range(k)
    buf = np.empty(F.shape[1], dtype=F.dtype)
    for t in order:
        hess = G[t, t] + l2
        if hess <= 0:
            continue
        np.dot(G[t], F, out=buf)  # (G F)[t], includes G[t, t]·F[t]
        np.subtract(R[t], buf, out=buf)
        if l1:
            buf -= l1
        if l2:
            buf -= l2 * F[t]
        if penalties:
            curv = hess
            for pen in penalties:
                curv = curv + pen.hals_terms(t, F, buf)
            buf /= curv
        else:
            buf /= hess
        buf += F[t]
        np.maximum(buf, 0, out=F[t])


def hals_sweep_violation(F, G, R, l1: float = 0.0, l2: float = 0.0, order=None) -> float:
    """:func:`hals_sweep` (no extra penalties) returning the sum of |projected gradient| over
    the sweep's coordinates, each taken just before its component is updated —
    scikit-learn's ``_update_cdnmf_fast`` measure (see
    :func:`nmfkit.solvers._hals_kernel.hals_sweep_violation`)."""
    k = F.shape[0]
    if order is None:
        order = range(k)
    buf = np.empty(F.shape[1], dtype=F.dtype)
    pg = np.empty_like(buf)
    violation = 0.0
    for t in order:
        np.dot(G[t], F, out=buf)  # (G F)[t], includes G[t, t]·F[t]
        np.subtract(R[t], buf, out=buf)  # −gradient (before the penalty terms)
        if l1:
            buf -= l1
        if l2:
            buf -= l2 * F[t]
        # |projected gradient| = max(−g, g·[F > 0]): |g| where F > 0, max(0, −g) where F = 0
        # (buf = −g; three passes, about one matrix-vector product's time)
        np.multiply(buf, F[t] > 0, out=pg)
        np.negative(pg, out=pg)
        np.maximum(pg, buf, out=pg)
        violation += float(pg.sum())
        hess = G[t, t] + l2
        if hess <= 0:
            continue
        buf /= hess
        buf += F[t]
        np.maximum(buf, 0, out=F[t])
    return violation


def solve_passive(G, R, P, F, Y, cols) -> None:
    """For each column c in ``cols``: F[:, c] = argmin over the passive set P[:, c] (others 0)
    and Y[:, c] = G F[:, c] − R[:, c] (the gradient, zero on the passive set).

    Columns sharing a passive set share one factorisation of G_PP (Kim & Park's grouping).
    """
    Pc = P[:, cols]
    keys = np.packbits(Pc, axis=0).T  # (len(cols), ceil(k/8))
    if keys.shape[1] == 0:
        keys = np.zeros((len(cols), 1), np.uint8)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    for grp in np.split(order, bounds):
        gc = cols[grp]
        idx = np.flatnonzero(Pc[:, grp[0]])
        Rg = R[:, gc]
        if idx.size == 0:
            F[:, gc] = 0.0
            Y[:, gc] = -Rg
            continue
        Gpp = G[np.ix_(idx, idx)]
        try:
            Fp = np.linalg.solve(Gpp, Rg[idx])
        except np.linalg.LinAlgError:  # singular G_PP (dead or collinear components)
            Fp = np.linalg.lstsq(Gpp, Rg[idx], rcond=None)[0]
        Fg = np.zeros((G.shape[0], gc.size))
        Fg[idx] = Fp
        F[:, gc] = Fg
        Yg = G[:, idx] @ Fp - Rg
        Yg[idx] = 0.0
        Y[:, gc] = Yg
