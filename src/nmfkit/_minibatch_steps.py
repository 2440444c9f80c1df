"""The per-batch work of ``MiniBatchNMF``, written once on the backend namespace ``nx`` (numpy,
or torch on a device): the call's validation and start, online MU (the MU numerator and
denominator of H in forgetful sums), online HALS / ANLS for the Frobenius loss and the batch
objective. Steps on observed entries only are :mod:`nmfkit._minibatch_masked`, the loop over
batches :mod:`nmfkit._minibatch_loop`, the estimator :mod:`nmfkit.minibatch`.

What the device path cannot run (masks / missing values, a ``Graph`` penalty) is refused with an
error that names the alternative; on the CPU the torch fit starts from exactly numpy's initial
factors (same ``random_state``), so both backends follow the same trajectory to rounding.
"""

from __future__ import annotations

import numpy as np

from ._engine import given_factors
from ._masked_fit import _validate_masked
from ._minibatch_masked import (
    batch_observed,
    batch_penalties,
    batch_problem,
    forget_and_add,
    masked_step,
    until_stable,
)
from ._unit_scale import UnitScale
from ._validation import (
    check_largest_value,
    check_non_negative,
    check_zeros_for_beta,
    split_masked_array,
    validate_input,
)
from .backends import get_backend
from .init import initial_factors, rank_without_custom_start
from .losses import beta_divergence, beta_loss_to_float
from .nnls import hals_sweep, nnls_bpp
from .penalties import L1, L2, Graph, split_hals
from .solvers.mu import MultiplicativeUpdate

def backend(est):
    """The backend of the current public call (``validate_X`` sets it; numpy by default)."""
    nx = getattr(est, "_nx", None)
    return nx if nx is not None else get_backend()


# ------------------------------------------------------------------ a call's data and start
def validate_X(est, X, mask, reset: bool):
    """Validated X (CSR when sparse) and its observed set (None when all observed); sets
    ``est._nx``, the backend of this call (a tensor X is validated on its device). A numpy
    masked array's masked entries are missing entries (never silently dropped)."""
    X, mask = split_masked_array(X, mask, type(est).__name__)
    masked = mask is not None or est.missing_values is not None
    est._nx = get_backend(X, backend=est.backend, device=est.device)
    if not est._nx.host_arrays:
        _refuse_on_device(est, masked)
    X = _validate_masked(est, X, reset=reset) if masked else validate_input(est, X, reset=reset)
    if hasattr(X, "format") and X.format == "csc":
        X = X.tocsr()  # row batches
    if not masked:
        check_non_negative(X, "MiniBatchNMF (input X)")
        return X, None
    if est.solver == "anls":
        raise ValueError(
            f"MiniBatchNMF with a mask or missing_values needs solver='mu' (online masked "
            f"MU, any loss) or 'cd' (online masked HALS, Frobenius); got "
            f"solver={est.solver!r}."
        )
    if est.solver == "cd" and any(isinstance(p, Graph) for p in (est.penalties or [])):
        raise ValueError(
            "MiniBatchNMF(solver='cd') with a mask takes L1/L2 penalties only; use solver='mu' "
            "for a Graph penalty on masked data."
        )
    return X, batch_observed(est, X, mask)


def place(est, X, batch_rows=None):
    """(X where this call runs, whether it came from the host, the backend bound there);
    on a device its free memory is checked first for X, the factors and one batch."""
    k = est.n_components if isinstance(est.n_components, int) else X.shape[1]
    itemsize = np.dtype(str(X.dtype).replace("torch.", "")).itemsize
    extra = 3 * (batch_rows or X.shape[0]) * X.shape[1] * itemsize  # one batch's WH
    X, host, est._nx = est._nx.place(X, k_total=int(k), extra_bytes=extra)
    return X, host, est._nx


def unit_scale(est, X, obs, nx, fitting: bool = True) -> UnitScale:
    """The scale at which X is fitted (exactly 1 for ordinary data). Penalty weights and
    frozen components are given on the data's scale and do not follow it here: extreme
    data with either is refused, with the fix."""
    top = (float(obs.values.max()) if obs.nnz else 0.0) if obs is not None else nx.max(X)
    check_largest_value(top)
    scale = UnitScale.of(top, beta_loss_to_float(est.beta_loss))
    if fitting and scale.active and (
            est.frozen_components is not None or est.penalties
            or float(est.alpha_W) > 0 or (est.alpha_H != "same" and float(est.alpha_H) > 0)):
        raise ValueError(
            f"MiniBatchNMF fits data whose largest value is {top:.3g} at unit scale, where "
            "penalties and frozen_components given on the data's scale would not hold; "
            "divide X by a constant (e.g. X / X.max()) and scale them with it, or use "
            "NMF, which rescales them too."
        )
    return scale


def _refuse_on_device(est, masked: bool) -> None:
    """Refuse, naming the alternative, what the device (torch) path cannot run."""
    if masked:
        raise ValueError(
            "MiniBatchNMF with a mask or missing_values runs on the numpy backend only. Pass "
            "numpy arrays (X.cpu().numpy(), and the mask as numpy), or use nmfkit.NMF with "
            "missing_values on numpy."
        )
    if any(isinstance(p, Graph) for p in (est.penalties or [])):
        raise ValueError(
            "MiniBatchNMF(penalties=[Graph(...)]) runs on the numpy backend only; on torch the "
            "penalties L1 and L2 (and alpha_W / alpha_H) are supported. Pass numpy arrays for a "
            "graph penalty."
        )


def check_zeros(nx, X, beta: float) -> None:
    """scikit-learn's refusal of zeros in X for β ≤ 0, on any backend (X ≥ 0: a zero is
    its minimum, implicit zeros of a sparse X included)."""
    if beta <= 0:
        check_zeros_for_beta(np.array([nx.min(X)]), beta)


def init_factors(est, X, W, H, obs):
    """Initial (W, H) on X's backend, device and dtype: the given ones with ``init="custom"``,
    else ``init``'s start (exactly numpy's numbers on the host); from the observed entries
    only with a mask (``nmfkit._masked_fit.initialize_masked``, as ``NMF`` does)."""
    if obs is not None:
        from ._masked_fit import initialize_masked

        check_zeros_for_beta(obs.values[None, :], est._beta_loss)
        if est.init == "custom":
            return est._check_w_h(obs.csr(), W, H, True)
        # from the observed entries only: held-out values must not leak into the start
        if est._n_components == "auto":
            est._n_components = X.shape[1]
        return initialize_masked(obs, est._n_components, est.init, est.random_state)
    nx = backend(est)
    check_zeros(nx, X, est._beta_loss)
    if est.init == "custom":
        return given_factors(est, nx, X, W, H, True, UnitScale(), False)
    k = rank_without_custom_start(est, W, H, X.shape[1])
    return initial_factors(nx, X, k, est.init, est.random_state)


# ------------------------------------------------------------------ online HALS / ANLS
def _hals_W(est, X, W, H, max_iter):
    """W ≥ 0 for fixed H by HALS sweeps (from W, or from zero), until the relative change
    is ≤ tol or ``max_iter`` sweeps; returns W (n, k). The sweep is the backend's (no host
    read per component on a device); the tol test reads two norms per sweep."""
    nx = backend(est)
    pens = batch_penalties(est, *X.shape)
    l1, l2, extra = split_hals([p for p in pens if p.factor == "W"])
    G = H @ H.T
    R = nx.ascontiguous(nx.matmul(X, H.T).T)  # H Xᵀ, (k, n)
    if est.solver == "anls":  # exact NNLS by block principal pivoting, warm-started
        return nnls_bpp(G, R, l1, l2, init=None if W is None else W.T, nx=nx).T
    Wt = nx.zeros(R.shape, nx.dtype_of(R)) if W is None else nx.ascontiguous(W.T)

    def sweep():
        hals_sweep(Wt, G, R, l1, l2, None, extra, nx=nx)

    return until_stable(est, nx, lambda: Wt, sweep, max_iter).T


def _online_hals_step(est, X, W, H, update_H):
    """Online HALS (Mairal et al. 2010's surrogate, solved by exact block coordinate
    descent): W_b by HALS sweeps with H fixed, then A ← ρA + W_bᵀW_b, B ← ρB + W_bᵀX_b and
    one HALS sweep of H on (A, B) — or, with solver="anls", both NNLS problems solved exactly
    by block principal pivoting. Frobenius only."""
    nx = backend(est)
    if est.fresh_restarts or W is None:
        Wb = _hals_W(est, X, None, H, est.fresh_restarts_max_iter)
    else:
        Wb = _hals_W(est, X, W, H, 1)
        W[...] = Wb
    Wb = nx.ascontiguous(Wb)
    pens = batch_penalties(est, *X.shape)
    cost = batch_cost(nx, X, Wb, H, 2.0, pens) if _wants_cost(est) else 0.0
    if update_H:
        _, Xt = nx.prepare_X(X)
        A, B = forget_and_add(est, Wb.T @ Wb, nx.matmul(Xt, Wb).T)
        l1, l2, extra = split_hals([p for p in pens if p.factor == "H"])
        frozen = list(getattr(est, "_frozen", ()))
        free = [t for t in range(H.shape[0]) if t not in frozen]
        if est.solver == "anls" and frozen:
            # solve for the free rows only, the frozen rows' contribution moved to the right
            Af = A[free]
            H[free] = nnls_bpp(Af[:, free], B[free] - Af[:, frozen] @ H[frozen], l1, l2,
                               init=H[free], nx=nx)
        elif est.solver == "anls":
            H[...] = nnls_bpp(A, B, l1, l2, init=H, nx=nx)
        else:
            hals_sweep(H, A, B, l1, l2, free if frozen else None, extra, nx=nx)
    return cost


# ------------------------------------------------------------------ online MU
def mu_batch_solver(est, X, W, H, prepared=None):
    """nmfkit's MU solver on one batch, H fixed (W updated in place); ``prepared`` is
    ``nx.prepare_X(X)`` when the caller has it already."""
    nx = backend(est)
    Xp, Xt = nx.prepare_X(X) if prepared is None else prepared
    return MultiplicativeUpdate(batch_problem(est, Xp, Xt, W, H, nx))


def solve_W(est, X, H, max_iter, prepared=None):
    """W for fixed H: MU iterations from the constant √(mean(X)/k) (scikit-learn's; computed
    on the device) until the relative change of W is ≤ tol (scikit-learn's rule), at most
    ``max_iter``; HALS / ANLS sweeps for solver "cd" / "anls". The rule reads two norms per
    iteration (on a device, in one host read)."""
    if est.solver in ("cd", "anls"):
        return _hals_W(est, X, None, H, max_iter)
    nx = backend(est)
    k = est._n_components
    W = nx.broadcast_to(nx.astype(nx.sqrt(nx.mean(X) / k), nx.dtype_of(X)), (X.shape[0], k))
    solver = mu_batch_solver(est, X, W, H, prepared)
    return until_stable(est, nx, lambda: solver.p.W, solver.update_W, max_iter)


def step(est, X, W, H, update_H, obs=None):
    """One batch step (W_b in place when given, H in place) without the frozen-row
    bookkeeping (see ``MiniBatchNMF._minibatch_step``); returns the batch objective per row."""
    if obs is not None:
        return masked_step(est, obs, W, H, update_H)
    if est.solver in ("cd", "anls"):
        return _online_hals_step(est, X, W, H, update_H)
    nx = backend(est)
    if nx.issparse(X) and est._beta_loss != 2.0:
        prepared = (X, None)  # Xᵀ serves only β = 2's H terms: skip the CSR transpose
    else:
        prepared = nx.prepare_X(X)  # once per batch (torch: the CSR transpose of sparse X_b)
    if est.fresh_restarts or W is None:
        W = solve_W(est, X, H, est.fresh_restarts_max_iter, prepared)
        solver = mu_batch_solver(est, X, W, H, prepared)
    else:
        solver = mu_batch_solver(est, X, W, H, prepared)
        solver.update_W()
    if est._beta_loss < 1:
        nx.fill_where(W, W < np.finfo(np.float64).eps, 0.0)
    p = solver.p
    cost = batch_cost(nx, X, W, H, est._beta_loss, [*p.penalties_W, *p.penalties_H]) if (
        _wants_cost(est)) else 0.0
    if update_H:
        mu_accumulate(est, *solver.h_terms(W, H)[:2], H)
    return cost


def mu_accumulate(est, num, den, H):
    """A ← ρA + num ⊙ H^(1/γ), B ← ρB + den, H = (A / B)^γ (in place)."""
    nx = backend(est)
    if est._gamma != 1:
        H **= 1.0 / est._gamma
    num *= H
    A, B = forget_and_add(est, num, den)
    nx.divide(A, B, out=H)
    if est._gamma != 1:
        H **= est._gamma
    if est._beta_loss <= 1:
        nx.fill_where(H, H < np.finfo(np.float64).eps, 0.0)


# ------------------------------------------------------------------ the batch objective
def _wants_cost(est) -> bool:
    """Whether the step must return the batch objective (the stopping rule or log uses it)."""
    return bool(getattr(est, "_need_cost", True))


def batch_cost(nx, X, W, H, beta: float, penalties: list):
    """D_β(X_b | W_b H) + the penalties, divided by the batch's rows: a float on numpy; on
    a device a float64 device scalar, so that the stopping rule reads it together with H's
    change in one host transfer (``nmfkit._minibatch_loop.converged``)."""
    if nx.name == "numpy":  # the host β-divergence is nmfkit.losses'; the device one, torch's
        pen = sum(p.value(W.T if p.factor == "W" else H) for p in penalties)
        return (beta_divergence(X, W, H, beta, nx=nx) + pen) / X.shape[0]
    total = nx.beta_divergence(X, W, H, beta, on_device=True)
    for p in penalties:  # L1 / L2 only on a device (a Graph is refused there)
        F = nx.astype(W.T if p.factor == "W" else H, "float64")
        if type(p) is L1:
            total = total + p.weight * nx.sum(F)
        elif type(p) is L2:
            total = total + 0.5 * p.weight * nx.inner(F, F)
    return total / X.shape[0]
