"""The torch backend's HALS sweeps: every component's update as a few device kernels, no host
synchronisation inside a sweep (dead components are guarded by ``torch.where``, not a Python
``if`` on a device value). The numpy twins are :mod:`nmfkit.backends._numpy_kernels`.
"""

from __future__ import annotations

import torch

__all__ = ["hals_sweep", "hals_sweep_violation"]


def hals_sweep(F, G, R, l1=0.0, l2=0.0, order=None, penalties=()) -> None:
    """One HALS pass over the rows of F (k, N), in place; see :func:`nmfkit.nnls.hals_sweep`.

    No host synchronisation and three kernels per component: with G' = G + l2·I,
    R' = R − l1 and inv[t] = 1/G'[t, t] (0 for a dead component, which then stays
    unchanged), ``F[t] ← max(0, F[t] + inv[t]·(R'[t] − G'[t] F))`` is one matrix-vector
    product (addmv), one fused multiply-add and one clamp.
    """
    k = F.shape[0]
    order = range(k) if order is None else [int(t) for t in order]
    diag = torch.diagonal(G) + l2
    alive = diag > 0
    if penalties:
        safe = torch.where(alive, diag, torch.ones_like(diag))
        for t in order:
            buf = R[t] - G[t] @ F
            if l1:
                buf -= l1
            if l2:
                buf -= l2 * F[t]
            curv = safe[t]
            for pen in penalties:
                curv = curv + pen.hals_terms(t, F, buf)
            buf /= curv
            buf += F[t]
            F[t] = torch.where(alive[t], buf.clamp_(min=0), F[t])
        return
    G2 = G + l2 * torch.eye(k, dtype=G.dtype, device=G.device) if l2 else G
    R2 = R - l1 if l1 else R
    inv = torch.where(alive, 1.0 / torch.where(alive, diag, torch.ones_like(diag)),
                      torch.zeros_like(diag))
    FT = F.T
    for t in order:
        buf = torch.addmv(R2[t], FT, G2[t], alpha=-1)
        Ft = F[t]
        Ft.addcmul_(buf, inv[t])
        Ft.clamp_(min=0)


def hals_sweep_violation(F, G, R, l1: float = 0.0, l2: float = 0.0, order=None) -> float:
    """``hals_sweep_violation`` on torch tensors: no host synchronisation per component (dead
    components get a zero step instead of a branch); the violation is read once."""
    diag = torch.diagonal(G) + l2
    ih = torch.where(diag > 0, 1.0 / torch.where(diag > 0, diag, 1.0), 0.0)
    violation = torch.zeros((), dtype=torch.float64, device=F.device)
    for t in range(F.shape[0]) if order is None else order:
        g = G[t] @ F - R[t]  # the gradient of row t at the point the sweep has reached
        if l1:
            g += l1
        if l2:
            g += l2 * F[t]
        violation += torch.maximum(-g, g * (F[t] > 0)).sum(dtype=torch.float64)
        F[t] = torch.clamp(F[t] - g * ih[t], min=0)
    return float(violation)
