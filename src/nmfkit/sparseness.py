"""Hoyer's sparseness and the projection onto a sparseness level (Hoyer 2004, JMLR 5).

sparseness(x) = (√N − ‖x‖₁/‖x‖₂) / (√N − 1) ∈ [0, 1]: 0 when all entries are equal, 1 when
one is non-zero. For a target s and a fixed ‖x‖₂ the set {x ≥ 0, sparseness(x) = s} is
{x ≥ 0, ‖x‖₂ = L2, ‖x‖₁ = L1} with L1 = (√N − (√N − 1)s)·L2; :func:`project` finds the
closest point of that set (Hoyer's Figure 1 algorithm: alternately project onto the
hyperplane Σx = L1 and the sphere ‖x‖₂ = L2 inside it, zeroing negative entries, at most N
rounds). The constrained solver built on it is ``solver="nmfsc"``
(:mod:`nmfkit.solvers.nmfsc`).
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import hoyer_sparseness

__all__ = ["hoyer_sparseness", "project", "project_rows", "l1_for"]


def l1_for(n: int, sparseness: float, l2: float = 1.0) -> float:
    """The L1 norm that a length-n vector with L2 norm ``l2`` has at the given sparseness."""
    return (math.sqrt(n) - (math.sqrt(n) - 1.0) * sparseness) * l2


def project(x, l1: float, l2: float) -> np.ndarray:
    """The non-negative vector closest to x with ‖·‖₁ = l1 and ‖·‖₂ = l2 (Hoyer 2004).

    Requires l2 ≤ l1 ≤ √N·l2 (otherwise no such vector exists). Returns float64.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    N = x.size
    if N == 1:
        return np.array([l2])
    s = x + (l1 - x.sum()) / N
    zero = np.zeros(N, dtype=bool)
    for _ in range(N + 1):
        free = ~zero
        nf = int(free.sum())
        m = np.where(free, l1 / nf, 0.0)
        d = s - m
        if float(d @ d) <= 1e-24 * max(float(m @ m), 1e-300):
            # s is uniform on the free set (e.g. x = 0): the direction is undefined, so move
            # towards the first free entry (Hoyer's algorithm needs some asymmetry)
            d = -m.copy()
            d[np.flatnonzero(free)[0]] += l1
        # solve ‖m + α d‖² = l2² for α ≥ 0
        a = float(d @ d)
        b = 2.0 * float(m @ d)
        c = float(m @ m) - l2 * l2
        if a <= 0:
            s = m
        else:
            disc = max(b * b - 4 * a * c, 0.0)
            alpha = (-b + math.sqrt(disc)) / (2 * a)
            s = m + alpha * d
        if (s >= 0).all():
            return s
        zero |= s < 0
        s[zero] = 0.0
        free = ~zero
        c_shift = (s.sum() - l1) / max(int(free.sum()), 1)
        s[free] -= c_shift
    return np.maximum(s, 0.0)


def project_rows(F, sparseness: float, l2=None) -> np.ndarray:
    """Each row F[t] projected to Hoyer sparseness ``sparseness``, in F's dtype.

    ``l2`` is None (keep each row's current L2 norm; a zero row stays zero), a float, or an
    array of per-row norms.
    """
    F = np.asarray(F)
    k, N = F.shape
    out = np.empty_like(F)
    norms = np.sqrt((np.asarray(F, dtype=np.float64) ** 2).sum(axis=1))
    if l2 is not None:
        norms = np.broadcast_to(np.asarray(l2, dtype=np.float64), (k,))
    for t in range(k):
        if norms[t] <= 0:
            out[t] = 0.0
            continue
        out[t] = project(F[t], l1_for(N, sparseness, norms[t]), norms[t])
    return out
