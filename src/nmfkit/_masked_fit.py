"""The masked fit path behind ``NMF(missing_values=...)`` and ``NMF.fit(X, mask=M)``.

Private: :mod:`nmfkit.masked` re-exports these functions. They pick the masked solver,
initialise W and H from the observed entries only, rescale extreme data, run the shared fit
loop (``nmfkit._fit.run``) and set the estimator's fitted attributes.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import validate_data

from .masked import Observed, _check_no_nan, observed_entries, weighted_divergence

__all__ = [
    "factorization_masked",
    "fit_masked",
    "fit_transform_masked",
    "initialize_masked",
    "resolve_masked_solver",
    "transform_masked",
]


# ----------------------------------------------------------------------- the fit path
def resolve_masked_solver(name: str, beta: float, penalties=()):
    """The masked solver class for ``name``: itself when it honours masks, else the masked
    variant registered for it (``masked_for``), else get_solver's error naming those that do."""
    from .solvers import SOLVERS, get_solver

    if name == "auto":
        name = "masked_als" if beta == 2.0 else "masked_mu"
    cls = SOLVERS.get(name)
    if cls is not None and not getattr(cls, "masks", False):
        variants = [n for n, c in sorted(SOLVERS.items())
                    if getattr(c, "masks", False) and name in getattr(c, "masked_for", ())]
        fitting = [n for n in variants if SOLVERS[n].supports_beta(beta)]
        if variants and not fitting:
            ok = sorted(n for n, c in SOLVERS.items()
                        if getattr(c, "masks", False) and c.supports_beta(beta))
            raise ValueError(
                f"solver {name!r} with a mask or missing values runs {variants}, which do not "
                f"handle beta_loss={beta!r}; masked solvers that do: {ok} (e.g. solver='mu')."
            )
        if fitting:
            name = fitting[0]
    return get_solver(name, beta=beta, penalties=penalties, sparse=True, masked=True)


def initialize_masked(obs: Observed, k: int, init, random_state):
    """Initial W, H from the observed entries only.

    'random': |N(0,1)|·√(mean of the observed values / k). The NNDSVD family runs on the
    sparse matrix of observations scaled by n·m/nnz (an unbiased estimate of the full matrix),
    so no dense n × m array is formed.
    """
    from sklearn.utils import check_random_state

    from .init import initialize, resolve_init

    n, m = obs.shape
    dtype = obs.values.dtype
    init = resolve_init(init, k, n, m)
    mean = float(np.mean(obs.values)) if obs.nnz else 1.0
    if init == "random" or obs.nnz == 0:
        rng = check_random_state(random_state)
        avg = math.sqrt((mean if mean > 0 else 1.0) / k)
        H = np.abs(avg * rng.standard_normal(size=(k, m))).astype(dtype)
        W = np.abs(avg * rng.standard_normal(size=(n, k))).astype(dtype)
        return W, H
    Xs = obs.csr(obs.values * dtype.type(n * m / obs.nnz))
    return initialize(Xs, k, init=init, random_state=random_state)


def fit_masked(est, X, obs: Observed, W=None, H=None, update_H: bool = True):
    """Fit the estimator ``est`` (an ``NMF``) to the observed entries; returns (W, H, n_iter).

    Uses the estimator's parameters (rank, init, solver, β, penalties, tol, limits, callback)
    and stores ``loss_curve_``, ``history_`` and ``stop_reason_`` on it, as the unmasked path.
    """
    import warnings

    from sklearn.utils import check_random_state

    from . import _fit
    from .backends import get_backend
    from .penalties import sklearn_penalties
    from .solvers import Problem

    beta = est._beta_loss
    if beta <= 0 and obs.nnz and obs.values.min() <= 0:
        raise ValueError(
            "When beta_loss <= 0 and the observed entries contain zeros, the solver may "
            "diverge. Please add small values to X, or use a positive beta_loss."
        )
    penalties = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, *obs.shape)
    cls = resolve_masked_solver(est.solver, beta, penalties)
    if est.init == "custom" or not update_H:
        W, H = est._check_w_h(X, W, H, update_H)
        if not update_H:
            # a multiplicative update cannot leave zero: start from a flat positive W
            mean = float(np.mean(obs.values)) if obs.nnz else 1.0
            fill = math.sqrt((mean if mean > 0 else 1.0) / H.shape[0]) if cls.multiplicative else 0.0
            W = np.full_like(W, fill)
    else:
        if W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set  init='custom' to use"
                " them as initialization.",
                RuntimeWarning,
            )
        k = obs.shape[1] if est._n_components in (None, "auto") else est._n_components
        est._n_components = k
        W, H = initialize_masked(obs, k, est.init, est.random_state)
    pen_W = [p for p in penalties if p.factor == "W"]
    pen_H = [p for p in penalties if p.factor == "H"]
    # extreme data is fitted at unit scale, as in the unmasked path (nmfkit._fit.factorize):
    # d_β is homogeneous of degree β, so X/s from (W/√s, H/√s) is the same problem
    s = float(np.max(obs.values)) if obs.nnz else 0.0
    scaled = s > 0 and not (_fit._SCALE_RANGE[0] <= s <= _fit._SCALE_RANGE[1])
    if scaled:
        import dataclasses

        root_s, s_beta = math.sqrt(s), s**beta
        obs = dataclasses.replace(obs, values=obs.values * obs.values.dtype.type(1.0 / s))
        W = W * W.dtype.type(1.0 / root_s)
        H = H * H.dtype.type(1.0 / root_s)
        pen_W = _fit._rescaled_penalties(pen_W, root_s, s_beta)
        pen_H = _fit._rescaled_penalties(pen_H, root_s, s_beta)
    nx = get_backend(W)
    Xo = obs.csr()
    problem = Problem(
        X=Xo, Xt=None, W=W, H=H, beta=beta, nx=nx,
        penalties_W=pen_W,
        penalties_H=pen_H,
        update_W=True, update_H=update_H, rng=check_random_state(est.random_state),
        shuffle=est.shuffle, options=dict(est.solver_options or {}), M=obs,
    )
    result = _fit.run(
        cls(problem), tol=est.tol, max_iter=est.max_iter, max_time=est.max_time,
        callback=est.callback, verbose=est.verbose,
    )
    W, H = result.W, result.H
    if scaled:
        W = W * W.dtype.type(root_s)
        H = H * H.dtype.type(root_s)
        result.history["objective"] = [f * s_beta for f in result.history["objective"]]
    _fit.record_fit(est, result)
    return W, H, result.n_iter


# ------------------------------------------------------------------ estimator entry points
def _validate_masked(est, X, reset: bool):
    import scipy.sparse as sp

    X = validate_data(
        est, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan", reset=reset,
    )
    if sp.issparse(X) and est.missing_values != "unobserved" and np.isnan(X.data).any():
        _check_no_nan(X.data, "stored entries of a sparse X")
    return X


def _check_observed_non_negative(est, obs: Observed) -> None:
    if obs.nnz and obs.values.min() < 0:
        q = int(np.argmin(obs.values))
        raise ValueError(
            f"Negative values in data passed to {type(est).__name__} (input X): the smallest "
            f"observed value is {float(obs.values[q])!r} at row {int(obs.rows[q])}, column "
            f"{int(obs.indices[q])}. NMF needs non-negative data: clip or shift it."
        )
    if obs.nnz == 0:
        raise ValueError(
            "No observed entries: every entry of X is missing or has weight 0 in mask."
        )


def fit_transform_masked(est, X, mask=None, W=None, H=None):
    """``NMF.fit_transform`` when a mask or ``missing_values`` is given; returns W.

    Sets the estimator's fitted attributes; ``reconstruction_err_`` is
    √(2·Σ M_ij d_β(X_ij, (WH)_ij)) over the observed entries.
    """
    est._validate_params()
    X = _validate_masked(est, X, reset=True)
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    est._check_params(X)
    W, H, n_iter = fit_masked(est, X, obs, W=W, H=H)
    finals = [est.loss_curve_[-1]]
    if getattr(est, "n_init", 1) > 1:
        # restarts as in the unmasked path: run 0 is the n_init=1 fit, runs 1.. start from
        # init="random" with seeds drawn from random_state; the lowest final objective wins
        from sklearn.base import clone

        from ._restarts import restart_seeds

        for seed in restart_seeds(est.random_state, est.n_init - 1):
            run = clone(est).set_params(init="random", random_state=int(seed), n_init=1)
            run._check_params(X)
            Wr, Hr, nr = fit_masked(run, X, obs)
            finals.append(run.loss_curve_[-1])
            if finals[-1] < min(finals[:-1]):
                W, H, n_iter = Wr, Hr, nr
                for name in est._fitted_attributes():
                    setattr(est, name, getattr(run, name))
    est.reconstruction_err_ = math.sqrt(2.0 * max(weighted_divergence(obs, W, H, est._beta_loss), 0))
    est.n_components_ = H.shape[0]
    est.components_ = H
    est.n_iter_ = n_iter
    est.init_objectives_ = np.array(finals)
    return W


def transform_masked(est, X, mask=None):
    """``NMF.transform`` on data with missing entries: W for new rows, H fixed."""
    X = _validate_masked(est, X, reset=False)
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    fitted = {k: getattr(est, k) for k in est._fitted_attributes() if hasattr(est, k)}
    try:
        est._check_params(X)
        W, _, _ = fit_masked(est, X, obs, H=est.components_, update_H=False)
    finally:
        for k, v in fitted.items():
            setattr(est, k, v)
    return W


def factorization_masked(est, X, W=None, H=None, update_H: bool = True):
    """``non_negative_factorization(..., missing_values=...)``: (W, H, n_iter) on the
    observed entries (``update_H=False``: W for the given H)."""
    if update_H:
        W = fit_transform_masked(est, X, W=W, H=H)
        return W, est.components_, est.n_iter_
    est._validate_params()
    X = _validate_masked(est, X, reset=True)
    obs = observed_entries(X, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    est._check_params(X)
    return fit_masked(est, X, obs, W=W, H=H, update_H=False)
