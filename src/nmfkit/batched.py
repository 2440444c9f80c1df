"""Batched restarts: B independent NMF fits of the same X in one set of batched products.

Model selection (``n_init``, consensus clustering, cNMF-style replicates) fits the same X many
times from different starts. Run one after another, each fit reads X twice per iteration.
Here the B factors are stacked, W of shape (B, n_samples, k) and H of shape (B, k,
n_features), and the two products with X are single wide products over all restarts::

    X Hᵀ  for every b  =  X @ [H₁; …; H_B]ᵀ            (n_samples, B·k), X read once
    Wᵀ X  for every b  =  [W₁ … W_B]ᵀ @ X              (B·k, n_features), X read once

The small products (Gram matrices, W·(HHᵀ)) are batched matrix products (``torch.bmm`` /
``numpy.matmul`` on stacks). On a GPU the wide products are what keeps X's bandwidth cost
shared by the B restarts. The same code runs on numpy and on torch (CPU or CUDA).

Solvers: ``"mu"`` (Lee & Seung multiplicative updates) and ``"cd"`` (HALS, one sweep per
half-iteration, batched across restarts), both for the Frobenius loss, dense or sparse X.
Each restart b started from ``init="random"`` with seed ``seeds[b]`` follows the same
trajectory as a single fit from that start (to rounding), stopping on the single fit's rule
(the relative decrease of √(2·objective) over ``check_every`` iterations below ``tol``), so
the best restart is a valid ``n_init`` result. ``batched_factorize`` is a thin call of the
engine's batched runs (:mod:`nmfkit._batched_runs`), which ``NMF(n_init=r)`` uses on a device.

The update kernels (``_mu_step``, ``_cd_step``, with optional L1/L2 weights) also serve
``NMF(n_init=r)`` on torch through :mod:`nmfkit._batched_runs`, which gives each restart its own
stopping rule and history so that every run equals its single fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._restarts import restart_seeds
from .backends import _is_torch_tensor, get_backend

__all__ = ["BatchedResult", "batched_factorize", "restart_seeds"]


@dataclass
class BatchedResult:
    """The B fits. Arrays are in the input's framework (tensors for tensor input).

    Attributes
    ----------
    W : array (B, n_samples, k)
    H : array (B, k, n_features)
    objectives : ndarray (B,), final ½‖X − W_b H_b‖² of each restart (float64, host).
    seeds : ndarray (B,), the seed of each restart's random initialisation.
    n_iter : int, the most iterations any restart ran (each stops on its own rule).
    history : dict, "n_iter" list and "objective" list of (B,) arrays (a restart that has
        stopped keeps its final objective).
    """

    W: object
    H: object
    objectives: np.ndarray
    seeds: np.ndarray
    n_iter: int
    history: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        """Index of the restart with the lowest final objective."""
        return int(np.argmin(self.objectives))

    def best_factors(self):
        """(W, H) of the best restart: W (n_samples, k), H (k, n_features)."""
        b = self.best
        return self.W[b], self.H[b]


# ------------------------------------------------------------------ framework helpers
def _t(nx, A):
    """Swap the last two axes (a view)."""
    return A.transpose(-1, -2) if nx.name == "torch" else np.swapaxes(A, -1, -2)


def _perm(nx, A, axes):
    return A.permute(*axes) if nx.name == "torch" else np.transpose(A, axes)


def _bsum(nx, A):
    """Σ over the last two axes, per restart, as a float64 host array (B,)."""
    if nx.name == "torch":
        return A.double().sum(dim=(-1, -2)).cpu().numpy()
    return A.astype(np.float64).sum(axis=(-1, -2))


def _cross_XHt(nx, X, H):
    """X H_bᵀ for every b as one product: (B, n_samples, k)."""
    B, k, m = H.shape
    P = nx.matmul(X, H.reshape(B * k, m).T)  # (n, B·k)
    return _perm(nx, P.reshape(X.shape[0], B, k), (1, 0, 2))


def _cross_WtX(nx, X, Xt, W, sparse):
    """W_bᵀ X for every b as one product: (B, k, n_features)."""
    B, n, k = W.shape
    Wc = _perm(nx, W, (1, 0, 2)).reshape(n, B * k)  # [W₁ … W_B], (n, B·k)
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
    P = nx.matmul(A, nx.ascontiguous(_perm(nx, S, (1, 0, 2)).reshape(N, B * k)))
    return _perm(nx, P.reshape(N, B, k), (1, 0, 2))


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
    S64 = S.double() if nx.name == "torch" else S.astype(np.float64)
    total = 0.0
    for pen in graphs:
        A, d = pen._A_d(S64)
        sq = d[:, None] * S64 * S64 - S64 * _graph_A_stack(nx, A, S64)
        v = sq.sum(dim=(-1, -2)) if nx.name == "torch" else sq.sum(axis=(-1, -2))
        total = total + 0.5 * pen.weight * (v.clamp(min=0.0) if nx.name == "torch"
                                            else np.maximum(v, 0.0))
    return total


def _mu_step(nx, X, Xt, W, H, sparse, eps, l1W=0.0, l2W=0.0, l1H=0.0, l2H=0.0,
             frozen_W=(), frozen_H=(), graphs_W=(), graphs_H=()):
    """One MU iteration of every run; frozen components (column t of W, row t of H) are
    restored after the update, bit-identical, as solvers/mu.py does. ``graphs_W/H``:
    :class:`nmfkit.penalties.Graph` penalties on W / H."""
    fW, fH = list(frozen_W), list(frozen_H)
    XHt = _cross_XHt(nx, X, H)
    HHt = H @ _t(nx, H)
    den = _mu_den_penalty(W @ HHt, W, l1W, l2W)
    XHt, den = _mu_graph(nx, XHt, den, W, graphs_W)
    nx.fill_where(den, den == 0, eps)
    kept = nx.copy(W[:, :, fW]) if fW else None
    W *= XHt / den
    if fW:
        W[:, :, fW] = kept
    WtX = _cross_WtX(nx, X, Xt, W, sparse)
    WtW = _t(nx, W) @ W
    den = _mu_den_penalty(WtW @ H, H, l1H, l2H)
    num = WtX
    if graphs_H:  # node-major Hᵀ stack for the affinity products
        numT, denT = _mu_graph(nx, _t(nx, WtX), _t(nx, den), _t(nx, H), graphs_H)
        num, den = _t(nx, numT), _t(nx, denT)
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
        eye = nx.asarray(np.eye(k, dtype=np.float64), dtype=nx.dtype_of(G))
        G = G + l2 * (eye.to(G.device) if nx.name == "torch" else eye)
    if l1:
        R = R - l1
    diag = (G.diagonal(dim1=-2, dim2=-1) if nx.name == "torch"
            else np.diagonal(G, axis1=-2, axis2=-1).copy())  # (B, k)
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


def _cd_step(nx, X, Xt, W, H, sparse, eps=None, l1W=0.0, l2W=0.0, l1H=0.0, l2H=0.0,
             frozen_W=(), frozen_H=(), graphs_W=(), graphs_H=()):
    """One HALS iteration of every run; frozen components are left out of the sweeps."""
    k = H.shape[1]
    oW = [t for t in range(k) if t not in frozen_W] if frozen_W else None
    oH = [t for t in range(k) if t not in frozen_H] if frozen_H else None
    Wt = _t(nx, W)  # (B, k, n), a view: HALS rows of Wᵀ
    RW = _t(nx, _cross_XHt(nx, X, H))  # H Xᵀ, (B, k, n)
    GH = H @ _t(nx, H)
    Wt_c = nx.ascontiguous(Wt)
    _hals_sweep_batched(nx, Wt_c, GH, nx.ascontiguous(RW), l1W, l2W, oW, graphs_W)
    W[...] = _t(nx, Wt_c)
    WtX = _cross_WtX(nx, X, Xt, W, sparse)
    WtW = _t(nx, W) @ W
    _hals_sweep_batched(nx, H, WtW, WtX, l1H, l2H, oH, graphs_H)
    return WtX, WtW


# ------------------------------------------------------------------ public
def batched_factorize(
    X,
    n_components: int,
    *,
    n_restarts: int = 8,
    solver: str = "mu",
    beta_loss="frobenius",
    max_iter: int = 200,
    tol: float = 1e-4,
    check_every: int = 10,
    random_state=None,
    seeds=None,
    backend: str | None = None,
    device=None,
) -> BatchedResult:
    """Fit ``n_restarts`` NMFs of X (Frobenius loss) from random starts, in batched products.

    Parameters
    ----------
    X : array, scipy.sparse matrix or torch tensor (dense or sparse CSR), (n_samples,
        n_features), non-negative.
    n_components : int, the rank k.
    n_restarts : int, the number of restarts B (ignored when ``seeds`` is given).
    solver : {"mu", "cd"}; "cd" is HALS, one sweep per half-iteration.
    beta_loss : "frobenius" or 2 (the batched path handles the Frobenius loss only).
    max_iter, tol, check_every : iterations and the shared stopping rule.
    random_state : int, RandomState or None; draws the restart seeds.
    seeds : sequence of int or None; restart b starts from
        ``nmfkit.init.initialize(X, k, init="random", random_state=seeds[b])``.
    backend, device : as for :class:`nmfkit.NMF` ("torch", "cuda").

    Returns
    -------
    BatchedResult with W (B, n_samples, k), H (B, k, n_features) and the objectives.
    """
    from .losses import beta_loss_to_float

    if beta_loss_to_float(beta_loss) != 2.0:
        raise ValueError(
            f"batched_factorize handles beta_loss='frobenius' only, got {beta_loss!r}; fit "
            "other losses one restart at a time with NMF(n_init=...)."
        )
    if solver not in ("mu", "cd"):
        raise ValueError(f"solver must be 'mu' or 'cd' for batched restarts, got {solver!r}.")
    if not (isinstance(n_components, (int, np.integer)) and n_components >= 1):
        raise ValueError(f"n_components must be an int >= 1, got {n_components!r}.")
    seeds = restart_seeds(random_state, n_restarts) if seeds is None else np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size < 1:
        raise ValueError(f"seeds must be a non-empty 1-D sequence of ints, got {seeds!r}.")
    from ._batched_runs import _stack, factorize_starts
    from ._validation import check_non_negative
    from .init import initial_factors

    nx = get_backend(X, backend=backend, device=device)
    tensor_in = _is_torch_tensor(X)
    if not tensor_in:
        from sklearn.utils import check_array

        X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
        check_non_negative(X, "batched_factorize")
    elif nx.min(X) < 0:
        raise ValueError(
            "Negative values in data passed to batched_factorize: NMF needs non-negative "
            "data; clip or shift X."
        )
    k, B = int(n_components), int(seeds.size)
    X, host_input, nx = nx.place(X, k_total=B * k)
    # random starts, exactly those of nmfkit.init.initialize(init="random", seed)
    starts = [initial_factors(nx, X, k, "random", int(s), on_device=True) for s in seeds]
    with nx.compute_context():
        runs = factorize_starts(X, starts, solver=solver, beta=2.0, nx=nx, tol=tol,
                                max_iter=max_iter, check_every=check_every)
    W = _stack(nx, [r.W for r in runs])
    H = _stack(nx, [r.H for r in runs])
    if host_input and nx.name != "numpy":
        W, H = nx.to_numpy(W), nx.to_numpy(H)
    n_iter = max(r.n_iter for r in runs)
    # each run's objective per iteration, held at its last value once it has stopped
    table = np.array([[h[min(t, len(h) - 1)] for h in (r.history["objective"] for r in runs)]
                      for t in range(n_iter + 1)])
    return BatchedResult(W=W, H=H, objectives=np.array([r.objective for r in runs]),
                         seeds=seeds, n_iter=n_iter,
                         history={"n_iter": list(range(n_iter + 1)), "objective": list(table)})
