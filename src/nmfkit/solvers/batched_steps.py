"""The update rules of batched restarts: one MU or HALS iteration of B fits of the same X at once.

The B factors are stacked, W of shape (B, n_samples, k) and H of shape (B, k, n_features), and
the two products with X are single wide products over all restarts::

    X Hᵀ  for every b  =  X @ [H₁; …; H_B]ᵀ            (n_samples, B·k), X read once
    Wᵀ X  for every b  =  [W₁ … W_B]ᵀ @ X              (B·k, n_features), X read once

The small products (Gram matrices, W·(HHᵀ)) are batched matrix products on the stacks. Every
operation is a call of the backend ``nx`` (numpy, or torch on a device), so one code serves
both; on a GPU the wide products keep X's bandwidth cost shared by the B restarts. L1/L2
weights, frozen components and :class:`nmfkit.penalties.Graph` penalties are honoured exactly as
the single-fit solvers (``solvers/mu.py``, ``nnls.hals_sweep``) honour them. The loop that runs
these steps, with a stopping rule per run, is :mod:`nmfkit._batched_runs`.
"""

from __future__ import annotations

__all__ = ["mu_step", "cd_step", "graph_values"]


def _cross_XHt(nx, X, H):
    """X H_bᵀ for every b as one product: (B, n_samples, k)."""
    B, k, m = H.shape
    P = nx.matmul(X, H.reshape(B * k, m).T)  # (n, B·k)
    return nx.permute(P.reshape(X.shape[0], B, k), (1, 0, 2))


def _cross_WtX(nx, X, Xt, W, sparse):
    """W_bᵀ X for every b as one product: (B, k, n_features)."""
    B, n, k = W.shape
    Wc = nx.permute(W, (1, 0, 2)).reshape(n, B * k)  # [W₁ … W_B], (n, B·k)
    P = nx.matmul(Xt, Wc).T if sparse else Wc.T @ X  # (B·k, m)
    return P.reshape(B, k, X.shape[1])


def _mu_den_penalty(den, F, l1, l2):
    if l1:
        den += l1
    if l2:
        den = den + l2 * F
    return den


def _graph_A_stack(nx, A, S):
    """A @ S_b for every b of a node-major stack S (B, N, k), as one product: (B, N, k)."""
    B, N, k = S.shape
    P = nx.matmul(A, nx.ascontiguous(nx.permute(S, (1, 0, 2)).reshape(N, B * k)))
    return nx.permute(P.reshape(N, B, k), (1, 0, 2))


def _mu_graph(nx, num, den, S, graphs):
    """Graph (GNMF) MU terms on a node-major stack S (B, N, k), as penalties.Graph gives them
    to one fit: numerator + λ(D S + A S), denominator + 2λ D S."""
    for pen in graphs:
        A, d = pen._A_d(S)
        DS = d[:, None] * S
        num = num + pen.weight * (DS + _graph_A_stack(nx, A, S))
        den = den + (2.0 * pen.weight) * DS
    return num, den


def graph_values(nx, S, graphs):
    """Σ of ½λ·tr(S_bᵀ L S_b) over the graphs, per run, float64 on the device: (B,)."""
    if not graphs:
        return 0.0
    S64 = nx.astype(S, "float64")
    total = 0.0
    for pen in graphs:
        A, d = pen._A_d(S64)
        sq = d[:, None] * S64 * S64 - S64 * _graph_A_stack(nx, A, S64)
        total = total + 0.5 * pen.weight * nx.clip_min(nx.sum(sq, axis=(-1, -2)), 0.0)
    return total


def mu_step(nx, X, Xt, W, H, sparse, eps, l1W=0.0, l2W=0.0, l1H=0.0, l2H=0.0,
            frozen_W=(), frozen_H=(), graphs_W=(), graphs_H=()):
    """One MU iteration of every run, in place; returns (Wᵀ X, Wᵀ W) of the new W for the
    objective. Frozen components (column t of W, row t of H) are restored after the update,
    bit-identical, as solvers/mu.py does. ``graphs_W/H``: Graph penalties on W / H."""
    fW, fH = list(frozen_W), list(frozen_H)
    XHt = _cross_XHt(nx, X, H)
    HHt = H @ nx.mT(H)
    den = _mu_den_penalty(W @ HHt, W, l1W, l2W)
    XHt, den = _mu_graph(nx, XHt, den, W, graphs_W)
    nx.fill_where(den, den == 0, eps)
    kept = nx.copy(W[:, :, fW]) if fW else None
    W *= XHt / den
    if fW:
        W[:, :, fW] = kept
    WtX = _cross_WtX(nx, X, Xt, W, sparse)
    WtW = nx.mT(W) @ W
    den = _mu_den_penalty(WtW @ H, H, l1H, l2H)
    num = WtX
    if graphs_H:  # node-major Hᵀ stack for the affinity products
        numT, denT = _mu_graph(nx, nx.mT(WtX), nx.mT(den), nx.mT(H), graphs_H)
        num, den = nx.mT(numT), nx.mT(denT)
    nx.fill_where(den, den == 0, eps)
    kept = nx.copy(H[:, fH]) if fH else None
    H *= num / den
    if fH:
        H[:, fH] = kept
    return WtX, WtW


def _hals_sweep_batched(nx, F, G, R, l1=0.0, l2=0.0, order=None, graphs=()):
    """One HALS pass over the k rows of each F_b (B, k, N), in place, no host sync.

    With penalties l1‖F‖₁ + ½l2‖F‖²: R − l1 and G + l2·I, as in :func:`nmfkit.nnls.hals_sweep`.
    ``order``: the components to update (default all; frozen ones are left out). ``graphs``:
    Graph penalties on F, as ``Graph.hals_terms`` (gradient λ L F[t], curvature 2λ D); the
    affinity product of component t is one (N, N) × (N, B) product for all runs.
    """
    k = F.shape[1]
    if l2:
        G = G + l2 * nx.eye(k, G)
    if l1:
        R = R - l1
    diag = nx.diagonal(G)  # (B, k)
    alive = diag > 0
    safe = nx.where(alive, diag, 1.0)
    parts = [(pen.weight, *pen._A_d(F)) for pen in graphs]
    for t in (range(k) if order is None else order):
        GF = (G[:, t : t + 1, :] @ F)[:, 0, :]  # (B, N)
        if parts:
            num, curv = R[:, t, :] - GF, safe[:, t : t + 1]
            Ft = F[:, t, :]
            for lam, A, d in parts:
                num = num - lam * (d * Ft - nx.matmul(A, nx.ascontiguous(Ft.T)).T)
                curv = curv + (2.0 * lam) * d
            new = Ft + num / curv
        else:
            new = F[:, t, :] + (R[:, t, :] - GF) / safe[:, t : t + 1]
        new = nx.clip_min(new, 0)
        F[:, t, :] = nx.where(alive[:, t : t + 1], new, F[:, t, :])


def cd_step(nx, X, Xt, W, H, sparse, eps=None, l1W=0.0, l2W=0.0, l1H=0.0, l2H=0.0,
            frozen_W=(), frozen_H=(), graphs_W=(), graphs_H=()):
    """One HALS iteration of every run, in place (frozen components are left out of the
    sweeps); returns (Wᵀ X, Wᵀ W) of the new W."""
    k = H.shape[1]
    oW = [t for t in range(k) if t not in frozen_W] if frozen_W else None
    oH = [t for t in range(k) if t not in frozen_H] if frozen_H else None
    RW = nx.mT(_cross_XHt(nx, X, H))  # H Xᵀ, (B, k, n)
    GH = H @ nx.mT(H)
    Wt_c = nx.ascontiguous(nx.mT(W))  # HALS rows of Wᵀ
    _hals_sweep_batched(nx, Wt_c, GH, nx.ascontiguous(RW), l1W, l2W, oW, graphs_W)
    W[...] = nx.mT(Wt_c)
    WtX = _cross_WtX(nx, X, Xt, W, sparse)
    WtW = nx.mT(W) @ W
    _hals_sweep_batched(nx, H, WtW, WtX, l1H, l2H, oH, graphs_H)
    return WtX, WtW
