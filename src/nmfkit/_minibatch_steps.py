"""The per-batch steps of ``MiniBatchNMF``: online HALS / ANLS for the Frobenius loss, the MU
numerator and denominator of H on one batch, and the verbose log handler. MU and HALS are
written on the backend namespace ``nx`` (numpy or torch, see ``_minibatch_backend``).

Kept apart from the estimator (``nmfkit.minibatch``) so each file stays short; the functions
take the estimator for its parameters (penalties, tol, forgetting factor, accumulators).
"""

from __future__ import annotations

import logging

import numpy as np

from ._minibatch_backend import batch_cost, constant_start, read_rule, rel_change
from ._minibatch_masked import batch_penalties, masked_step
from .backends import get_backend
from .nnls import hals_sweep, nnls_bpp
from .penalties import split_hals
from .solvers import Problem
from .solvers.mu import MultiplicativeUpdate

logger = logging.getLogger("nmfkit")


def _backend(est):
    """The backend of the current public call (``validate_X`` sets it; numpy by default)."""
    nx = getattr(est, "_nx", None)
    return nx if nx is not None else get_backend()


def _wants_cost(est) -> bool:
    """Whether the step must return the batch objective (the stopping rule or log uses it)."""
    return bool(getattr(est, "_need_cost", True))


def _hals_W(est, X, W, H, max_iter):
    """W ≥ 0 for fixed H by HALS sweeps (from W, or from zero), until the relative change
    is ≤ tol or ``max_iter`` sweeps; returns W (n, k). On torch the sweep is the backend's
    (no host read per component); the tol test reads two norms per sweep."""
    nx = _backend(est)
    pens = batch_penalties(est, *X.shape)
    l1, l2, extra = split_hals([p for p in pens if p.factor == "W"])
    G = H @ H.T
    R = nx.ascontiguous(nx.matmul(X, H.T).T)  # H Xᵀ, (k, n)
    if est.solver == "anls":  # exact NNLS by block principal pivoting, warm-started
        return nnls_bpp(G, R, l1, l2, init=None if W is None else W.T, nx=nx).T
    Wt = nx.zeros(R.shape, nx.dtype_of(R)) if W is None else nx.ascontiguous(W.T)
    prev = nx.copy(Wt)
    for it in range(max_iter):
        hals_sweep(Wt, G, R, l1, l2, None, extra, nx=nx)
        if est.tol > 0 and it < max_iter - 1:  # the last sweep stops anyway
            norm, diff = rel_change(nx, Wt, prev)
            if norm == 0 or diff <= est.tol * norm:
                break
        prev[:] = Wt
    return Wt.T


def _online_hals_step(est, X, W, H, update_H):
    """Online HALS (Mairal et al. 2010's surrogate, solved by exact block coordinate
    descent): W_b by HALS sweeps with H fixed, then A ← ρA + W_bᵀW_b, B ← ρB + W_bᵀX_b and
    one HALS sweep of H on (A, B) — or, with solver="anls", both NNLS problems solved exactly
    by block principal pivoting. Frobenius only."""
    nx = _backend(est)
    if est.fresh_restarts or W is None:
        Wb = _hals_W(est, X, None, H, est.fresh_restarts_max_iter)
    else:
        Wb = _hals_W(est, X, W, H, 1)
        W[...] = Wb
    Wb = nx.ascontiguous(Wb)
    pens = batch_penalties(est, *X.shape)
    cost = batch_cost(nx, X, Wb, H, 2.0, pens) if _wants_cost(est) else 0.0
    if update_H:
        A, B = est._components_numerator, est._components_denominator
        A *= est._rho
        B *= est._rho
        A += Wb.T @ Wb
        _, Xt = nx.prepare_X(X)
        B += nx.matmul(Xt, Wb).T
        l1, l2, extra = split_hals([p for p in pens if p.factor == "H"])
        frozen = list(getattr(est, "_frozen", ()))
        free = [t for t in range(H.shape[0]) if t not in frozen]
        if est.solver == "anls" and frozen:
            # solve for the free rows only, the frozen rows' contribution moved to the right
            Bf = B[free] - A[np.ix_(free, frozen)] @ H[frozen]
            H[free] = nnls_bpp(A[np.ix_(free, free)], Bf, l1, l2, init=H[free])
        elif est.solver == "anls":
            H[...] = nnls_bpp(A, B, l1, l2, init=H, nx=nx)
        else:
            hals_sweep(H, A, B, l1, l2, free if frozen else None, extra, nx=nx)
    return cost


def _h_terms(solver, W, H):
    """MU numerator ∇⁻_H and denominator ∇⁺_H (penalties included) on the solver's batch."""
    return solver.h_terms(W, H)[:2]


# ------------------------------------------------------------------ online MU
def mu_batch_solver(est, X, W, H, prepared=None):
    """nmfkit's MU solver on one batch, H fixed (W updated in place); ``prepared`` is
    ``nx.prepare_X(X)`` when the caller has it already."""
    nx = _backend(est)
    Xp, Xt = nx.prepare_X(X) if prepared is None else prepared
    pens = batch_penalties(est, *X.shape)
    problem = Problem(
        X=Xp, Xt=Xt, W=W, H=H, beta=est._beta_loss, nx=nx,
        penalties_W=[p for p in pens if p.factor == "W"],
        penalties_H=[p for p in pens if p.factor == "H"],
        update_H=False,
    )
    return MultiplicativeUpdate(problem)


def mu_solve_W(est, X, H, max_iter, prepared=None):
    """W for fixed H: MU iterations from the constant √(mean(X)/k) until the relative
    change of W is ≤ tol (scikit-learn's rule), at most ``max_iter``. The rule reads two
    norms per iteration (on torch, one host read)."""
    if est.solver in ("cd", "anls"):
        return _hals_W(est, X, None, H, max_iter)
    nx = _backend(est)
    W = constant_start(nx, X, est._n_components)
    W_buffer = nx.copy(W)
    solver = mu_batch_solver(est, X, W, H, prepared)
    for it in range(max_iter):
        solver._update_W()
        W = solver.p.W
        if est.tol > 0 and it < max_iter - 1:  # the last iteration stops anyway
            norm, diff = rel_change(nx, W, W_buffer)
            W_diff = diff / norm if norm > 0 else 0.0
            if W_diff <= est.tol:
                break
        W_buffer[:] = W
    return W


def step_free(est, X, W, H, update_H, obs=None):
    """One batch step without the frozen-row bookkeeping (see ``MiniBatchNMF._minibatch_step``)."""
    if obs is not None:
        return masked_step(est, obs, W, H, update_H)
    if est.solver in ("cd", "anls"):
        return _online_hals_step(est, X, W, H, update_H)
    nx = _backend(est)
    if nx.name != "numpy" and nx.issparse(X) and est._beta_loss != 2.0:
        prepared = (X, None)  # Xᵀ serves only β = 2's H terms: skip the CSR transpose
    else:
        prepared = nx.prepare_X(X)  # once per batch (torch: the CSR transpose of sparse X_b)
    if est.fresh_restarts or W is None:
        W = mu_solve_W(est, X, H, est.fresh_restarts_max_iter, prepared)
        solver = mu_batch_solver(est, X, W, H, prepared)
    else:
        solver = mu_batch_solver(est, X, W, H, prepared)
        solver._update_W()
    if est._beta_loss < 1:
        nx.fill_where(W, W < np.finfo(np.float64).eps, 0.0)
    p = solver.p
    cost = batch_cost(nx, X, W, H, est._beta_loss, [*p.penalties_W, *p.penalties_H]) if (
        _wants_cost(est)) else 0.0
    if update_H:
        mu_accumulate(est, *_h_terms(solver, W, H), H)
    return cost


def mu_accumulate(est, num, den, H):
    """A ← ρA + num ⊙ H^(1/γ), B ← ρB + den, H = (A / B)^γ (in place)."""
    nx = _backend(est)
    A, B = est._components_numerator, est._components_denominator
    if est._gamma != 1:
        H **= 1.0 / est._gamma
    num *= H
    A *= est._rho
    B *= est._rho
    A += num
    B += den
    nx.divide(A, B, out=H)
    if est._gamma != 1:
        H **= est._gamma
    if est._beta_loss <= 1:
        nx.fill_where(H, H < np.finfo(np.float64).eps, 0.0)


def converged(est, batch_rows, batch_cost, H, H_buffer, n_samples, step, n_steps):
    """scikit-learn's early stopping: small change of H, or no improvement of the
    exponentially weighted average of the batch cost for ``max_no_improvement`` steps."""
    step += 1
    need_change = est.tol > 0 and step > 1
    if est._need_cost or need_change:  # torch: one host read for the rule's scalars
        batch_cost, norm, diff = read_rule(
            _backend(est), batch_cost, H, H_buffer, need_change
        )
    if step == 1:  # H has not moved yet
        logger.info("Minibatch step %d/%d: mean batch cost: %g", step, n_steps, batch_cost)
        return False
    if est._ewa_cost is None:
        est._ewa_cost = batch_cost
    else:
        alpha = min(batch_rows / (n_samples + 1), 1)
        est._ewa_cost = est._ewa_cost * (1 - alpha) + batch_cost * alpha
    logger.info(
        "Minibatch step %d/%d: mean batch cost: %g, ewa cost: %g",
        step, n_steps, batch_cost, est._ewa_cost,
    )
    H_diff = diff / norm if need_change and norm > 0 else 0.0
    if need_change and H_diff <= est.tol:
        logger.info("Converged (small H change) at step %d/%d", step, n_steps)
        return True
    if est._ewa_cost_min is None or est._ewa_cost < est._ewa_cost_min:
        est._no_improvement = 0
        est._ewa_cost_min = est._ewa_cost
    else:
        est._no_improvement += 1
    if est.max_no_improvement is not None and est._no_improvement >= est.max_no_improvement:
        logger.info("Converged (no improvement of the objective) at step %d/%d", step, n_steps)
        return True
    return False


def _verbose_handler(verbose):
    if not verbose:
        return None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
