"""``MiniBatchNMF`` beyond scikit-learn: user penalties and masked (missing-value) batches.

* :func:`batch_penalties` — scikit-learn's alpha/l1_ratio penalties on the batch plus the
  estimator's ``penalties`` (``nmfkit.penalties`` objects), checked for what an online fit can
  honour: a graph on W couples samples of different batches and is refused; a graph on H
  (features) is fine.
* :func:`masked_step` / :func:`masked_solve_W` — the online multiplicative updates on the
  observed entries of a batch only (Ho & Van Dooren's weighted MU, ``solvers.masked_mu``):
  W_b by masked MU with H fixed, then the masked MU numerator Wᵀ(M⊙X⊙(WH)^(β−2)) and
  denominator Wᵀ(M⊙(WH)^(β−1)) of H enter the same forgetful sums A, B as the unmasked path.
  With every entry observed this is the unmasked online MU.
* :func:`masked_hals_step` — online HALS on the observed entries (solver="cd", Frobenius):
  every row of W_b and every column of H has its own Gram, so H keeps forgetful sums
  A_j (k × k) and B_j (k) per feature j.
"""

from __future__ import annotations

import math

import numpy as np

from .backends import get_backend
from .masked import Observed, check_observed, observed_entries, weighted_divergence
from .penalties import Graph, Penalty, sklearn_penalties, split_hals
from .solvers import Problem
from .solvers.mu import MultiplicativeUpdate

__all__ = ["batch_observed", "batch_penalties", "batch_problem", "masked_solve_W", "masked_step", "row_slices"]


def check_penalties(est, n_features: int) -> list:
    """The estimator's ``penalties`` as a validated list (clear errors for what cannot work)."""
    pens = list(est.penalties or [])
    for p in pens:
        if not isinstance(p, Penalty):
            raise TypeError(
                f"MiniBatchNMF(penalties=...) takes nmfkit.penalties objects (L1, L2, Graph), got "
                f"{type(p).__name__}."
            )
        if isinstance(p, Graph) and p.factor == "W":
            raise ValueError(
                "MiniBatchNMF cannot honour Graph(factor='W'): a sample graph couples rows of W "
                "that fall in different mini-batches, and online NMF sees one batch at a time. "
                "Use NMF(penalties=[Graph(...)]) for a sample graph, or Graph(factor='H') for a "
                "graph between features."
            )
        if isinstance(p, Graph) and p.size != n_features:
            raise ValueError(
                f"Graph(factor='H') affinity has {p.size} nodes but X has {n_features} features; "
                "pass an (n_features × n_features) affinity."
            )
        if est.solver not in p.solvers or (est.solver == "anls" and isinstance(p, Graph)):
            raise ValueError(
                f"MiniBatchNMF(solver={est.solver!r}) cannot honour {type(p).__name__} "
                f"(factor={p.factor!r}); use solver='mu' (or 'cd' for a Graph on H)."
            )
    return pens


def batch_penalties(est, n_rows: int, n_features: int) -> list:
    """scikit-learn's penalties scaled on this batch plus the user's, as given."""
    pens = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, n_rows, n_features)
    return [*pens, *check_penalties(est, n_features)]


def batch_problem(est, X, Xt, W, H, nx, M=None) -> Problem:
    """One batch's W-step (H fixed) with the batch's penalties, for a solver of the registry."""
    pens = batch_penalties(est, *X.shape)
    return Problem(X=X, Xt=Xt, W=W, H=H, beta=est._beta_loss, nx=nx, M=M,
                   penalties_W=[p for p in pens if p.factor == "W"],
                   penalties_H=[p for p in pens if p.factor == "H"], update_H=False)


def until_stable(est, nx, current, update, max_iter: int):
    """Call ``update()`` at most ``max_iter`` times, until the relative change of the factor
    ``current()`` (updated in place) is ≤ ``est.tol``: scikit-learn's rule for W, every W-solve
    of the online fit. The last iteration is not tested (it stops anyway); on a device the two
    norms are read in one transfer. Returns the factor."""
    prev = nx.copy(current())
    for it in range(max_iter):
        update()
        F = current()
        if est.tol > 0 and it < max_iter - 1:
            norm, diff = nx.floats(nx.norm(F), nx.norm(F - prev))
            if (diff / norm if norm > 0 else 0.0) <= est.tol:
                break
        prev[:] = F
    return current()


def forget_and_add(est, a, b):
    """The online fit's sums of past batches, in place: A ← ρA + a, B ← ρB + b; (A, B)."""
    A, B = est._components_numerator, est._components_denominator
    A *= est._rho
    B *= est._rho
    A += a
    B += b
    return A, B


def row_slices(obs: Observed, batches) -> list:
    """The observed set of each row slice (a list of Observed, one per slice)."""
    out = []
    for sl in batches:
        s, e = sl.start, sl.stop
        a, b = obs.indptr[s], obs.indptr[e]
        out.append(Observed.from_coo(
            obs.rows[a:b] - s, obs.indices[a:b], obs.values[a:b], obs.weights[a:b],
            (e - s, obs.shape[1]), obs.values.dtype,
        ))
    return out


def batch_observed(est, X, mask) -> Observed:
    """The observed entries of X (mask / missing_values), non-negativity checked."""
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    check_observed(obs, type(est).__name__)
    return obs


def _solver(est, obs: Observed, W, H):
    from .solvers.masked_mu import MaskedMU

    Xs = obs.csr()
    return MaskedMU(batch_problem(est, Xs, None, W, H, get_backend(Xs), M=obs))


def masked_solve_W(est, obs: Observed, H, max_iter: int):
    """W for fixed H on the observed entries: masked MU from √(mean observed / k) until the
    relative change of W is ≤ tol, at most ``max_iter`` iterations; shape (n_rows, k)."""
    if est.solver == "cd":
        return _masked_hals_W(est, obs, H, None, max_iter)
    mean = float(obs.values.mean()) if obs.nnz else 0.0
    avg = math.sqrt(max(mean, 0.0) / est._n_components)
    W = np.full((obs.shape[0], est._n_components), avg, dtype=H.dtype)
    return until_stable(est, get_backend(W), lambda: W, _solver(est, obs, W, H).step, max_iter)


def masked_step(est, obs: Observed, W, H, update_H: bool) -> float:
    """One online masked-MU step on a batch (W_b in place when given, H in place); returns
    the batch objective per row (observed loss + penalties, before H moves)."""
    if est.solver == "cd":
        return masked_hals_step(est, obs, W, H, update_H)
    if est.fresh_restarts or W is None:
        W = masked_solve_W(est, obs, H, est.fresh_restarts_max_iter)
        solver = _solver(est, obs, W, H)
    else:
        solver = _solver(est, obs, W, H)
        solver.step()
    if est._beta_loss < 1:
        W[W < np.finfo(np.float64).eps] = 0.0
    p = solver.p
    cost = (weighted_divergence(obs, W, H, est._beta_loss) + p.penalty_value(W, H)) / obs.shape[0]
    if update_H:
        q, r = solver._quotients(W, H)
        num = np.asarray(obs.csr(q).T @ W).T
        den = np.asarray(obs.csr(r).T @ W).T
        num, den = MultiplicativeUpdate.add_penalties(num, den, H, p.penalties_H, False)
        den = np.where(den <= 0, p.eps, den).astype(H.dtype, copy=False)
        est._mu_accumulate(np.asarray(num, dtype=H.dtype), den, H)
    return cost


# ------------------------------------------------------------------ masked online HALS
def _sweep_batched(F, G, R, l1, l2, skip=()):
    """One HALS sweep on independent problems: F (N, k), G (N, k, k), R (N, k), in place;
    F[:, t] ← max(0, F[:, t] + (R[:, t] − l1 − G[:, t]·F − l2 F[:, t]) / (G[:, t, t] + l2))."""
    for t in range(F.shape[1]):
        if t in skip:
            continue
        d = G[:, t, t] + l2
        step = R[:, t] - l1 - np.einsum("nk,nk->n", G[:, t, :], F) - l2 * F[:, t]
        ok = d > 0  # a row with no observation (or a dead component) is left as it is
        F[ok, t] = np.maximum(F[ok, t] + step[ok] / d[ok], 0.0)


def _outer(F):
    """(N, k·k) rows f fᵀ of F (N, k), flattened."""
    return np.einsum("nk,nl->nkl", F, F).reshape(F.shape[0], -1)


def _masked_hals_W(est, obs: Observed, H, W, sweeps: int):
    """W_b (n_b, k) by HALS on the observed entries, H fixed: row i has its own Gram
    Σ_j M_ij h_j h_jᵀ = (M ⋅ vec(h_j h_jᵀ))_i; from W (in place) or from zero."""
    k = H.shape[0]
    Mw = obs.csr(obs.weights)
    G = np.asarray(Mw @ _outer(H.T)).reshape(-1, k, k)
    R = np.asarray(obs.csr(obs.weights * obs.values) @ H.T)
    l1, l2, _ = split_hals([p for p in batch_penalties(est, *obs.shape) if p.factor == "W"])
    W = np.zeros((obs.shape[0], k), dtype=H.dtype) if W is None else W
    return until_stable(est, get_backend(W), lambda: W, lambda: _sweep_batched(W, G, R, l1, l2),
                        sweeps)


def masked_hals_step(est, obs: Observed, W, H, update_H: bool) -> float:
    """Online masked HALS (Frobenius): W_b by HALS on its observed entries, then per feature
    j the forgetful sums A_j ← ρA_j + Σ_i M_ij w_i w_iᵀ (k × k) and B_j ← ρB_j +
    Σ_i M_ij X_ij w_i, and one HALS sweep of every column h_j on (A_j, B_j). Memory:
    n_features·k² for A."""
    if est.fresh_restarts or W is None:
        W = _masked_hals_W(est, obs, H, None, est.fresh_restarts_max_iter)
    else:
        _masked_hals_W(est, obs, H, W, 1)
    pens = batch_penalties(est, *obs.shape)
    pen = sum(p.value(W.T if p.factor == "W" else H) for p in pens)
    cost = (weighted_divergence(obs, W, H, 2.0) + pen) / obs.shape[0]
    if update_H:
        k, m = H.shape
        if est._components_numerator.ndim != 3:  # first masked step of this fit
            est._components_numerator = np.zeros((m, k, k), dtype=H.dtype)
            est._components_denominator = np.zeros((m, k), dtype=H.dtype)
        Mt = obs.csr(obs.weights).T.tocsr()
        A, B = forget_and_add(
            est, np.asarray(Mt @ _outer(W)).reshape(m, k, k).astype(H.dtype, copy=False),
            np.asarray(obs.csr(obs.weights * obs.values).T @ W).astype(H.dtype, copy=False))
        l1, l2, _ = split_hals([p for p in pens if p.factor == "H"])
        Ht = np.ascontiguousarray(H.T)
        _sweep_batched(Ht, A, B, l1, l2, skip=set(getattr(est, "_frozen", ())))
        H[...] = Ht.T
    return cost
