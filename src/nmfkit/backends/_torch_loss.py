"""β-divergence objective values computed on the torch device, never copying X to the host.

The same formulas and conventions as :mod:`nmfkit.losses` (which dispatches here for torch
tensors): sums are accumulated in float64 on the device, WH is formed in row blocks of at
most ``BLOCK_ELEMENTS`` entries (``backends._numpy.row_blocks``) for a dense X, and only at X's stored entries (a sampled
product) for a sparse X. Only the final scalar crosses to the host.
"""

from __future__ import annotations

import torch

from ._numpy import row_blocks

__all__ = ["beta_divergence_torch"]


def _terms(Xd, WHd, beta: float, floor: float):
    """Σ over the given entries with X > 0 of the X-dependent part (float64 device scalar)."""
    Xd = Xd.double()
    WHd = torch.clamp(WHd.double(), min=floor)
    pos = Xd > 0
    # zero the X = 0 entries instead of compacting them: no host synchronisation
    Xs = torch.where(pos, Xd, torch.ones_like(Xd))
    if beta == 1.0:
        t = Xd * torch.log(Xs / WHd) - Xd
    elif beta == 0.0:
        q = Xs / WHd
        t = torch.where(pos, q - torch.log(q), torch.zeros_like(q))
    else:
        t = torch.where(pos, Xs**beta - beta * Xs * WHd ** (beta - 1), torch.zeros_like(Xd))
        t = t / (beta * (beta - 1))
    return t.sum()


def beta_divergence_torch(nx, X, W, H, beta: float, *, on_device: bool = False):
    """D_β(X | WH) for torch tensors X (dense or sparse CSR), W (n, k), H (k, m): a float, or
    (``on_device``) a float64 0-d tensor left on the device, so that a caller can read it
    together with other scalars in one transfer (``nx.floats``). Never NaN or inf."""
    n, m = X.shape
    sparse = nx.issparse(X)
    if sparse:
        X, _ = nx.prepare_X(X)
    W64, H64 = W.double(), H.double()
    zero = torch.zeros((), dtype=torch.float64, device=W.device)
    if beta == 2.0:
        if sparse:
            v = X.values().double()
            cross = torch.sum(nx.matmul(X, H.T).double() * W64)
            gram = torch.sum((W64.T @ W64) * (H64 @ H64.T))
            res = torch.clamp(0.5 * (torch.dot(v, v) - 2.0 * cross + gram), min=0.0)
        else:
            res = zero
            for rows in row_blocks(n, m):
                R = X[rows].double() - W64[rows] @ H64
                res = res + torch.sum(R * R)
            res = 0.5 * res
    else:  # quotients floored at eps times X's mean magnitude (dtype-aware)
        data = X.values() if sparse else X
        fi = torch.finfo(W.dtype if W.dtype.is_floating_point else torch.float64)
        scale = data.abs().double().mean() if data.numel() else torch.ones(
            (), dtype=torch.float64, device=W.device)
        floor = torch.clamp(scale, min=fi.tiny) * fi.eps
        pow_scale = (beta - 1) / (beta * (beta - 1)) if beta not in (0.0, 1.0) else 0.0
        if sparse:
            res = _terms(X.values(), nx.sampled_dot(W64, H64, X), beta, floor)
            if beta == 1.0:
                res = res + torch.dot(W64.sum(dim=0), H64.sum(dim=1))
            elif beta == 0.0:
                res = res - n * m
            else:
                for rows in row_blocks(n, m):
                    WH = W64[rows] @ H64
                    if beta < 0:
                        WH = torch.maximum(WH, floor)
                    res = res + torch.sum(WH**beta) * pow_scale
        else:
            res = zero
            for rows in row_blocks(n, m):
                WH = W64[rows] @ H64
                Xb = X[rows]
                res = res + _terms(Xb.reshape(-1), WH.reshape(-1), beta, floor)
                if beta == 1.0:
                    res = res + WH.sum()
                elif beta == 0.0:
                    res = res - Xb.numel()
                else:
                    WH = torch.maximum(WH, floor) if beta < 0 else WH.clamp_(min=0.0)
                    res = res + torch.sum(WH**beta) * pow_scale
    big = torch.finfo(torch.float64).max
    res = torch.where(torch.isfinite(res), res, torch.full_like(res, big))
    return res if on_device else float(res)
