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

__all__ = ["hals_sweep"]


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
    nx : backend or None. A backend that provides its own ``hals_sweep`` (torch: no host
        synchronisation per component) runs the sweep instead of this numpy loop.
    """
    if nx is not None and getattr(nx, "hals_sweep", None) is not None and nx.name != "numpy":
        return nx.hals_sweep(F, G, R, l1, l2, order, penalties)
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
