"""The masked fit path behind ``NMF(missing_values=...)`` and ``NMF.fit(X, mask=M)``.

Private: :mod:`nmfkit.masked` re-exports these functions. They pick the masked solver,
initialise W and H from the observed entries only, rescale extreme data, run the shared fit
loop (``nmfkit._fit.run``) and set the estimator's fitted attributes.

On the torch backend (a tensor X or mask, or ``backend="torch"``) the observed entries are
held on the device (``nmfkit.backends._torch_masked``) and ``solver="mu"`` runs there; W and H
come back as tensors for tensor input, as numpy arrays for numpy input.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np
from sklearn.utils.validation import validate_data

from ._unit_scale import UnitScale
from ._validation import check_largest_value
from .masked import (Observed, check_missing_values, check_no_nan, check_observed,
                     observed_entries)

__all__ = [
    "factorization_masked",
    "fit_masked",
    "fit_transform_masked",
    "initialize_masked",
    "resolve_masked_solver",
    "transform_masked",
]


# ----------------------------------------------------------------------- the fit path
def resolve_masked_solver(name: str, beta: float, penalties=(), backend: str = "numpy"):
    """The masked solver class for ``name``: itself when it honours masks, else the masked
    variant registered for it (``masked_for``), else get_solver's error naming those that do.
    ``"auto"`` follows the one rule of ``nmfkit.solvers._auto``."""
    from .solvers import SOLVERS, get_solver
    from .solvers._auto import resolve_solver

    if name == "auto":
        name = resolve_solver(beta, penalties=penalties, backend=backend, masked=True)
    cls = SOLVERS.get(name)
    if cls is not None and not getattr(cls, "masks", False):
        variants = [n for n, c in sorted(SOLVERS.items())
                    if c.masks and name in c.masked_for]
        fitting = [n for n in variants if SOLVERS[n].supports_beta(beta)]
        if variants and not fitting:
            ok = sorted(n for n, c in SOLVERS.items()
                        if c.masks and c.supports_beta(beta))
            raise ValueError(
                f"solver {name!r} with a mask or missing values runs {variants}, which do not "
                f"handle beta_loss={beta!r}; masked solvers that do: {ok} (e.g. solver='mu')."
            )
        if fitting:
            name = fitting[0]
    return get_solver(name, beta=beta, penalties=penalties, sparse=True, masked=True,
                      backend=backend)


def _refuse_unmasked_extensions(est, X, update_H: bool) -> None:
    """Say which extension parameters cannot run on observed entries, instead of ignoring
    them: nsNMF's smoothing and Hoyer's sparseness targets have no masked solver, and a k-NN
    graph cannot be built from rows with missing entries."""
    if float(est.smoothness or 0.0) > 0 and update_H:
        raise ValueError(
            f"smoothness={est.smoothness!r} (nsNMF) cannot be combined with a mask or "
            "missing values: no masked solver fits X ≈ W S H. Use penalties (alpha_W/alpha_H, "
            "l1_ratio=1) for sparser parts, or impute X first (nmfkit.NMFImputer)."
        )
    used = [n for n in ("sparseness_W", "sparseness_H") if getattr(est, n, None) is not None]
    if used:
        raise ValueError(
            f"{', '.join(used)} (Hoyer's constraint, solver='nmfsc') cannot be combined with a "
            "mask or missing values: nmfsc has no masked variant. Use penalties "
            "(alpha_W/alpha_H with l1_ratio=1) for a soft sparseness."
        )
    if (update_H and isinstance(est.graph, str) and float(est.graph_weight) > 0
            and _has_nan(X)):
        raise ValueError(
            f"graph={est.graph!r} builds a k-NN graph from the rows of X, which has missing "
            "entries; give the sample affinity yourself (graph=an (n_samples, n_samples) "
            "matrix) or fit complete data with a mask."
        )


def _has_nan(X) -> bool:
    from .backends import get_backend

    return not get_backend(X).isfinite_all(X)  # X is validated: only NaN can be non-finite


def initialize_masked(obs: Observed, k: int, init, random_state):
    """Initial W, H from the observed entries only.

    'random': |N(0,1)|·√(mean of the observed values / k). The NNDSVD family runs on the
    sparse matrix of observations scaled by n·m/nnz (an unbiased estimate of the full matrix),
    so no dense n × m array is formed.
    """
    from .init import initialize, random_factors, resolve_init

    n, m = obs.shape
    dtype = obs.values.dtype
    init = resolve_init(init, k, n, m)
    mean = float(np.mean(obs.values)) if obs.nnz else 1.0
    if init == "random" or obs.nnz == 0:  # drawn in float64, then X's dtype
        W, H = random_factors(n, m, k, mean if mean > 0 else 1.0, np.float64, random_state)
        return W.astype(dtype), H.astype(dtype)
    Xs = obs.csr(obs.values * dtype.type(n * m / obs.nnz))
    return initialize(Xs, k, init=init, random_state=random_state)


def fit_masked(est, X, obs: Observed, W=None, H=None, update_H: bool = True, nx=None):
    """Fit the estimator ``est`` (an ``NMF``) to the observed entries; returns (W, H, n_iter).

    Uses the estimator's parameters (rank, init, solver, β, penalties, tol, limits, callback)
    and stores ``loss_curve_``, ``history_`` and ``stop_reason_`` on it, as the unmasked path.
    ``nx``: the backend (None: numpy); on torch, ``obs`` is a ``TorchObserved`` and W, H come
    back as tensors on its device.
    """
    import dataclasses

    from sklearn.utils import check_random_state

    from . import _extensions, _fit
    from .backends import get_backend
    from .init import rank_without_custom_start
    from .penalties import sklearn_penalties
    from .solvers import SOLVERS, Problem

    nx = nx or get_backend(X)
    beta = est._beta_loss
    if beta <= 0 and obs.nnz and float(obs.values.min()) <= 0:
        raise ValueError(
            "When beta_loss <= 0 and the observed entries contain zeros, the solver may "
            "diverge. Please add small values to X, or use a positive beta_loss."
        )
    # data of extreme magnitude is fitted at unit scale, from the start on
    check_largest_value(float(obs.values.max()) if obs.nnz else 0.0)
    scale = UnitScale.of(float(obs.values.max()) if obs.nnz else 0.0, beta)
    if scale.active:
        obs = dataclasses.replace(obs, values=scale.values(obs.values))
    penalties = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, *obs.shape)
    _refuse_unmasked_extensions(est, X, update_H)
    extra = _extensions.user_and_graph_penalties(est, X, update_H)
    penalties = [*penalties, *extra]
    try:
        cls = resolve_masked_solver(est.solver, beta, penalties, backend=nx.name)
    except ValueError:
        cls = resolve_masked_solver(est.solver, beta, penalties)  # explained just below
    if nx.name not in cls.backends:  # the registry's list of the backends a solver runs on
        raise ValueError(
            f"solver {est.solver!r} with a mask or missing values runs {cls.name!r}, which has "
            f"no {nx.name} backend; on {nx.name} use solver='mu' (masked multiplicative "
            "updates, every beta_loss), or fit numpy input with backend='numpy'."
        )
    if est.init == "custom" or not update_H:
        from ._engine import given_factors

        W, H = given_factors(est, nx, X, W, H, update_H, scale, False)
        if not update_H:
            # a multiplicative update cannot leave zero: start from a flat positive W
            mean = float(obs.values.sum()) / obs.nnz if obs.nnz else 1.0
            fill = math.sqrt((mean if mean > 0 else 1.0) / H.shape[0]) if cls.multiplicative else 0.0
            W = nx.full(tuple(W.shape), fill, nx.dtype_of(H))
    else:
        k = rank_without_custom_start(est, W, H, obs.shape[1])
        # the start is drawn on the host from the observed entries (a device's read back,
        # O(nnz)), then placed where the fit runs
        W, H = initialize_masked(nx.observed_on_host(obs, Observed.from_coo), k, est.init,
                                 est.random_state)
        dt = nx.dtype_of(obs.values)
        W, H = nx.asarray(W, dtype=dt), nx.asarray(H, dtype=dt)
    frozen_H = ()
    if est.frozen_components is not None and update_H:
        if not cls.supports_frozen:
            ok = sorted(n for n, c in SOLVERS.items()
                        if c.masks and c.supports_frozen
                        and c.supports_beta(beta))
            raise ValueError(
                f"solver {est.solver!r} with a mask or missing values runs {cls.name!r}, which "
                f"cannot keep frozen_components fixed; masked solvers that can: {ok}."
            )
        frozen_H = _extensions.apply_frozen(est.frozen_components, H, scale)
    penalties = scale.penalties(penalties)
    pen_W = [p for p in penalties if p.factor == "W"]
    pen_H = [p for p in penalties if p.factor == "H"]
    Xo = obs.csr()
    problem = Problem(
        X=Xo, Xt=None, W=W, H=H, beta=beta, nx=nx,
        penalties_W=pen_W,
        penalties_H=pen_H,
        update_W=True, update_H=update_H, rng=check_random_state(est.random_state),
        shuffle=est.shuffle, options=dict(est.solver_options or {}), M=obs,
        frozen_H=frozen_H,
    )
    problem.options.pop("allow_tf32", None)  # read by the torch backend
    with nx.compute_context():
        result = _fit.run(
            cls(problem), tol=est.tol, max_iter=est.max_iter, max_time=est.max_time,
            callback=est.callback, verbose=est.verbose,
        )
    from .masked import weighted_divergence

    div = nx.observed_divergence(obs, result.W, result.H, beta, host=weighted_divergence)
    error = scale.error_out(math.sqrt(2.0 * max(float(div), 0.0)))
    scale.result_out(result)
    _fit.record_fit(est, result)
    return result.W, result.H, result.n_iter, error


# ------------------------------------------------------------------ estimator entry points
def _validate_masked(est, X, reset: bool):
    import scipy.sparse as sp

    X = validate_data(
        est, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan", reset=reset,
    )
    if sp.issparse(X) and est.missing_values != "unobserved" and np.isnan(X.data).any():
        check_no_nan(X.data, "stored entries of a sparse X")
    return X


def _entry(est, X, mask, reset: bool):
    """(X, obs, nx, host_input): validated X, its observed set and the backend of the fit."""
    from .backends import get_backend

    nx = get_backend(X, mask, backend=est.backend, device=est.device)
    return nx.prepare_masked(est, X, mask, reset=reset, validate_host=_validate_masked,
                             host_observed=observed_entries, check_no_nan=check_no_nan,
                             check_missing=check_missing_values)


@contextlib.contextmanager
def _fit_threads(est, obs: Observed, H=None):
    """The threads of a fit of observed entries, as the unmasked fit's (``_engine.fit``):
    ``n_jobs`` caps BLAS/OpenMP (and numba) threads; with ``n_jobs=None`` a fit whose
    products are small (observed entries × k under ``_threads.SMALL_WORK``) runs BLAS on
    one thread."""
    from ._threads import small_fit_threads, thread_limits

    k = est.n_components
    if not isinstance(k, numbers.Integral):
        k = H.shape[0] if H is not None else obs.shape[1]
    with small_fit_threads(est.n_jobs, int(obs.nnz) * int(k)), thread_limits(est.n_jobs):
        yield


def fit_transform_masked(est, X, mask=None, W=None, H=None):
    """``NMF.fit_transform`` when a mask or ``missing_values`` is given; returns W.

    Sets the estimator's fitted attributes; ``reconstruction_err_`` is
    √(2·Σ M_ij d_β(X_ij, (WH)_ij)) over the observed entries.
    """
    est._validate_params()
    X, obs, nx, host_input = _entry(est, X, mask, reset=True)
    check_observed(obs, type(est).__name__)
    est._check_params(X)
    with _fit_threads(est, obs, H):
        W, H, n_iter, error = fit_masked(est, X, obs, W=W, H=H, nx=nx)
        finals = [est.loss_curve_[-1]]
        if getattr(est, "n_init", 1) > 1:
            # restarts as in the unmasked path: run 0 is the n_init=1 fit, runs 1.. start
            # from init="random" with seeds drawn from random_state, over n_jobs threads
            # (one BLAS thread each); the lowest final objective wins, ties the earliest
            from sklearn.base import clone

            from ._restarts import parallel_map, restart_seeds

            def one(seed):
                run = clone(est).set_params(init="random", random_state=int(seed), n_init=1)
                run._check_params(X)
                return run, fit_masked(run, X, obs, nx=nx)

            seeds = restart_seeds(est.random_state, est.n_init - 1)
            for run, fitted in parallel_map(one, [(s,) for s in seeds], est.n_jobs, "threads"):
                finals.append(run.loss_curve_[-1])
                if finals[-1] < min(finals[:-1]):
                    W, H, n_iter, error = fitted
                    for name in est._fitted_attributes():
                        setattr(est, name, getattr(run, name))
    est.reconstruction_err_ = error
    if host_input:  # backend="torch" with numpy input: numpy out
        W, H = nx.to_numpy(W), nx.to_numpy(H)
    est.n_components_ = H.shape[0]
    est.components_ = H
    est.n_iter_ = n_iter
    est.init_objectives_ = np.array(finals)
    return W


def transform_masked(est, X, mask=None):
    """``NMF.transform`` on data with missing entries: W for new rows, H fixed."""
    X, obs, nx, host_input = _entry(est, X, mask, reset=False)
    check_observed(obs, type(est).__name__)
    fitted = {k: getattr(est, k) for k in est._fitted_attributes() if hasattr(est, k)}
    try:
        est._check_params(X)
        with _fit_threads(est, obs, est.components_):
            W, _, _, _ = fit_masked(est, X, obs, H=est.components_, update_H=False, nx=nx)
    finally:
        for k, v in fitted.items():
            setattr(est, k, v)
    return nx.to_numpy(W) if host_input else W


def factorization_masked(est, X, W=None, H=None, update_H: bool = True):
    """``non_negative_factorization(..., missing_values=...)``: (W, H, n_iter) on the
    observed entries (``update_H=False``: W for the given H)."""
    if update_H:
        W = fit_transform_masked(est, X, W=W, H=H)
        return W, est.components_, est.n_iter_
    est._validate_params()
    X, obs, nx, host_input = _entry(est, X, None, reset=True)
    check_observed(obs, type(est).__name__)
    est._check_params(X)
    with _fit_threads(est, obs, H):
        W, H, n_iter, _ = fit_masked(est, X, obs, W=W, H=H, update_H=False, nx=nx)
    if host_input:
        W, H = nx.to_numpy(W), nx.to_numpy(H)
    return W, H, n_iter
