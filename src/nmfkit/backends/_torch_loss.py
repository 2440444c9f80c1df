"""β-divergence objective values computed on the torch device, never copying X to the host.

The same formulas and conventions as :mod:`nmfkit.losses` (which dispatches here for torch
tensors): sums are accumulated in float64 on the device, WH is formed in row blocks of at
most ``_BLOCK_ELEMENTS`` entries for a dense X, and only at X's stored entries (a sampled
product) for a sparse X. Only the final scalar crosses to the host.
"""

from __future__ import annotations

import math

import torch

__all__ = ["beta_divergence_torch"]

_BLOCK_ELEMENTS = 1 << 22


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


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


def beta_divergence_torch(nx, X, W, H, beta: float) -> float:
    """D_β(X | WH) for torch tensors X (dense or sparse CSR), W (n, k), H (k, m)."""
    n_samples, n_features = X.shape
    sparse = nx.issparse(X)
    if sparse:
        X, _ = nx.prepare_X(X)
        data = X.values()
        X_scale = float(data.abs().double().mean()) if data.numel() else 1.0
    else:
        X_scale = float(X.abs().double().mean()) if X.numel() else 1.0
    fi = torch.finfo(W.dtype if W.dtype.is_floating_point else torch.float64)
    floor = fi.eps * max(X_scale, fi.tiny)
    W64, H64 = W.double(), H.double()

    if beta == 2.0:
        if sparse:
            sq_X = nx.sq_norm(X)
            cross = torch.sum(nx.matmul(X, H.T).double() * W64)
            gram = torch.sum((W64.T @ W64) * (H64 @ H64.T))
            return max(0.5 * (sq_X - 2.0 * float(cross) + float(gram)), 0.0)
        total = torch.zeros((), dtype=torch.float64, device=W.device)
        for rows in _row_blocks(n_samples, n_features):
            R = X[rows].double() - W64[rows] @ H64
            total += torch.sum(R * R)
        return 0.5 * float(total)

    if sparse:
        WH_nz = nx.sampled_dot(W64, H64, X)
        res = _terms(X.values(), WH_nz, beta, floor)
        if beta == 1.0:
            res = res + torch.dot(W64.sum(dim=0), H64.sum(dim=1))
        elif beta == 0.0:
            res = res - n_samples * n_features
        else:
            total = torch.zeros((), dtype=torch.float64, device=W.device)
            for rows in _row_blocks(n_samples, n_features):
                WH = W64[rows] @ H64
                if beta < 0:
                    WH.clamp_(min=floor)
                total += torch.sum(WH**beta)
            res = res + total * (beta - 1) / (beta * (beta - 1))
        out = float(res)
    else:
        res = torch.zeros((), dtype=torch.float64, device=W.device)
        for rows in _row_blocks(n_samples, n_features):
            WH = W64[rows] @ H64
            Xb = X[rows]
            res += _terms(Xb.reshape(-1), WH.reshape(-1), beta, floor)
            if beta == 1.0:
                res += WH.sum()
            elif beta == 0.0:
                res -= Xb.numel()
            else:
                WH.clamp_(min=floor if beta < 0 else 0.0)
                res += torch.sum(WH**beta) * (beta - 1) / (beta * (beta - 1))
        out = float(res)
    if not math.isfinite(out):
        out = float(torch.finfo(torch.float64).max)
    return out
