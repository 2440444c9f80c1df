"""Block principal pivoting's linear solves on torch tensors: grouped, batched, on the device.

:func:`nmfkit.nnls.nnls_bpp` runs one pivoting logic on every backend; the only step that
differs is the solve of each column's problem restricted to its passive set, which numpy does
with one LAPACK solve per distinct passive set (a Python loop over groups). Here the columns
are grouped the same way (one key per passive set, ``torch.unique``), but the groups are
factorised in one batched call and the columns solved in one batched call, so the number of
kernel launches does not grow with the number of distinct passive sets.

Each group's system is the k×k matrix G with its active rows and columns replaced by the
identity, and the right-hand side R masked to the passive set. The coupling between the two
blocks is exactly zero, so LU with partial pivoting never mixes them: the passive block is
solved as numpy solves G_PP, and the active entries come out exactly zero. A singular G_PP
(a dead or collinear component in the passive set; numpy falls back to ``lstsq``) is solved
by the pseudo-inverse, the same minimum-norm least-squares solution.
"""

from __future__ import annotations

import torch

__all__ = ["solve_passive"]

# elements of the gathered (columns, k, k) LU factors per batched solve
_BLOCK_ELEMENTS = 1 << 22
# bits per int64 key word (below the sign bit)
_KEY_BITS = 62


def _group(Pc):
    """(inverse, U): for the columns of Pc (k, B) bool, the index of their distinct passive
    set (0..U-1) and the number U of distinct sets."""
    k = Pc.shape[0]
    words = []
    for s in range(0, max(k, 1), _KEY_BITS):
        blk = Pc[s:s + _KEY_BITS].to(torch.int64)
        w = torch.bitwise_left_shift(
            torch.ones(blk.shape[0], 1, dtype=torch.int64, device=Pc.device),
            torch.arange(blk.shape[0], device=Pc.device)[:, None],
        )
        words.append((blk * w).sum(0))
    keys = words[0] if len(words) == 1 else torch.stack(words, 1)
    uniq, inverse = torch.unique(keys, return_inverse=True, dim=None if len(words) == 1 else 0)
    return inverse.reshape(-1), uniq.shape[0]


def solve_passive(G, R, P, F, Y, cols) -> None:
    """For each column c in ``cols``: F[:, c] = argmin over the passive set P[:, c] (others 0),
    and Y[:, c] = G F[:, c] − R[:, c] (zero on the passive set). In place.

    G : (k, k) float64, R, F, Y : (k, N) float64, P : (k, N) bool, cols : (B,) int64; all on
    one device.
    """
    k = G.shape[0]
    B = cols.shape[0]
    if B == 0:
        return
    Pc = P[:, cols]
    Rc = R[:, cols]
    inverse, U = _group(Pc)
    Pu = torch.zeros(U, k, dtype=torch.bool, device=G.device)
    Pu[inverse] = Pc.T  # every column of a group writes the same row
    pf = Pu.to(G.dtype)
    A = G.repeat(U, 1, 1)  # G with active rows/columns replaced by the identity, in place
    A *= pf[:, :, None]
    A *= pf[:, None, :]
    A.diagonal(dim1=-2, dim2=-1).add_(1.0 - pf)
    LU, piv, info = torch.linalg.lu_factor_ex(A)
    rhs = (Rc * Pc).T.unsqueeze(-1)  # (B, k, 1)
    Fc = torch.empty(B, k, dtype=G.dtype, device=G.device)
    # the first column of each group is solved with its group's factors as they are (most
    # passive sets are a single column's); only the others gather a copy of their factors
    first = torch.full((U,), B, dtype=torch.int64, device=G.device).scatter_reduce_(
        0, inverse, torch.arange(B, device=G.device), reduce="amin")
    Fc[first] = torch.linalg.lu_solve(LU, piv, rhs[first]).squeeze(-1)
    if U < B:
        is_first = torch.zeros(B, dtype=torch.bool, device=G.device)
        is_first[first] = True
        rest = torch.nonzero(~is_first).reshape(-1)
        step = max(1, _BLOCK_ELEMENTS // max(k * k, 1))
        for s in range(0, rest.shape[0], step):
            c = rest[s:s + step]
            g = inverse[c]
            Fc[c] = torch.linalg.lu_solve(LU[g], piv[g], rhs[c]).squeeze(-1)
    bad = info > 0
    if bool(bad.any()):  # rare (dead components); one host decision per solve
        bad_cols = torch.nonzero(bad[inverse]).reshape(-1)
        pinv = torch.linalg.pinv(A[bad], hermitian=True)  # (n_bad, k, k)
        slot = torch.cumsum(bad.to(torch.int64), 0) - 1  # group -> row of pinv
        Fc[bad_cols] = (pinv[slot[inverse[bad_cols]]] @ rhs[bad_cols]).squeeze(-1)
    Fc = Fc.T * Pc  # exact zeros on the active set
    F[:, cols] = Fc
    Yc = G @ Fc - Rc
    Yc.masked_fill_(Pc, 0.0)
    Y[:, cols] = Yc
