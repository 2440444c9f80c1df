"""The one fit of ``NMF`` and ``non_negative_factorization``, on every backend.

Validated X (a numpy array, a scipy.sparse matrix or a torch tensor) and the estimator's
parameters become one fit, in one order, whatever the backend:

1. the backend (``get_backend``: from the input, or ``backend=``/``device=``), configured by
   the solver options it reads (TF32 on torch); the checks of X that need its values;
2. ``solver="auto"`` resolved by the one rule (``nmfkit.solvers._auto``) for this backend;
3. X placed where the fit runs (torch: the device memory is checked before X moves);
4. extreme magnitudes brought to unit scale (``nmfkit._unit_scale``) before the start;
5. the start: custom W/H, a fixed H (``update_H=False``), or an initialisation;
6. penalties and extensions (``nmfkit._extensions``), ``auto`` again now that they are known;
7. the fit: one start, or the ``n_init`` starts (threads on numpy, one batch on a device);
8. the result back on the data's scale and in the caller's array type.

The observed-entries fit (a mask or missing values) is :mod:`nmfkit._masked_fit`; it takes its
custom starts from :func:`given_factors` here. A robust loss (``loss=``, ``outliers=``,
:mod:`nmfkit._robust_fit`) runs in this fit, observed entries included
(:func:`fit_transform_observed`).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _extensions, _fit, _robust_fit
from ._threads import SMALL_WORK, small_fit_threads, thread_limits
from ._unit_scale import UnitScale
from ._validation import (
    check_init_factor,
    check_largest_value,
    check_non_negative,
    check_zeros_for_beta,
)
from .backends import get_backend, is_tensor
from .init import initial_factors, rank_without_custom_start
from .losses import beta_divergence
from .penalties import Penalty, sklearn_penalties
from .solvers import SOLVERS
from .solvers._blocked import csr_dot, csr_tdot
from .solvers._threads import (blas_single, kernel_threads, matmul_cols, matmul_rows,
                               n_threads, run_parts, split_even)
from .solvers.cd import CoordinateDescent
from .solvers._auto import auto_options, resolve_solver

__all__ = ["fit", "fit_transform_observed", "fitted_divergence", "given_factors", "start",
           "transform_observed"]


def _check_values(est, X) -> None:
    """The checks of X's values: sign and location of a negative entry, zeros with β ≤ 0,
    magnitude, read where X lives (host data on the host, before it moves; a tensor on its
    device, where validation has already read its sign)."""
    check_non_negative(X, f"{type(est).__name__} (input X)")
    check_zeros_for_beta(X, est._beta_loss)
    check_largest_value(get_backend(X).max(X))


def _resolve(est, X, nx, penalties) -> None:
    """``solver="auto"`` → the solver the one rule picks for this backend and these penalties;
    a robust loss (``loss=``, ``outliers=``) is fitted by the robust solver."""
    if _robust_fit.kind(est) is not None:
        est._solver = "robust"
    elif est.solver == "auto":
        est._solver = resolve_solver(est._beta_loss, sparse=nx.issparse(X),
                                     n_components=est._n_components, penalties=penalties,
                                     backend=nx.name)


def given_factors(est, nx, X, W, H, update_H: bool, scale: UnitScale, multiplicative: bool):
    """A custom start (``init="custom"``) or the fixed H of ``update_H=False``: checked on the
    host (they are small), copied to X's backend, device and dtype, brought to unit scale.

    For a fixed H, W starts flat and positive for a multiplicative solver (it cannot leave
    zero) and at zero otherwise. Returns (W, H), the fit's own copies.
    """
    import warnings

    n, m = X.shape
    whom = type(est).__name__
    dtype = nx.dtype_of(X)

    def own(F, shape, which):
        given = get_backend(F)  # F's own framework (None is refused just below)
        host = check_init_factor(None if F is None else given.to_numpy(F), shape,
                                 f"{whom} (input {which})")
        if est._n_components == "auto":
            est._n_components = host.shape[0] if which == "H" else host.shape[1]
        strict = is_tensor(F) or not is_tensor(X)  # numpy W/H follow a tensor X
        if strict and np.dtype(host.dtype) != np.dtype(str(dtype).replace("torch.", "")):
            raise TypeError(
                f"{which} should have the same dtype as X. Got {which}.dtype = {host.dtype}; "
                f"X.dtype = {dtype}. Cast it with {given.cast_hint}."
            )
        return scale.factor_in(nx.asarray(np.array(host, copy=True), dtype=dtype))

    if update_H:
        H = own(H, (est._n_components, m), "H")
        W = own(W, (n, est._n_components), "W")
        return W, H
    if W is not None:
        warnings.warn("When update_H=False, the provided initial W is not used.", RuntimeWarning)
    H = own(H, (est._n_components, m), "H")
    k = H.shape[0]
    if multiplicative:
        W = nx.full((n, k), float(np.sqrt(max(nx.mean_value(X), 0.0) / k)), dtype)
    else:
        W = nx.zeros((n, k), dtype)
    return W, H


def start(est, X, W, H, update_H: bool, scale: UnitScale = UnitScale(), nx=None,
          sample_major: bool = False):
    """The start of a fit (also MiniBatchNMF's): the custom or fixed factors
    (:func:`given_factors`; W flat and positive for a fixed H when the solver, or a robust
    fit's first steps, are multiplicative) or the estimator's ``init`` (random, NNDSVD
    family) for X on its backend ``nx`` (None: X's own), H F-ordered when ``sample_major``.
    The default fit (``init=None``, ``solver="auto"``) takes the cheaper SVD of
    :func:`nmfkit.init.initialize`; a solver named as in scikit-learn starts exactly where
    scikit-learn starts."""
    nx = nx or get_backend(X)
    if est.init == "custom" or not update_H:
        solver = getattr(est, "_solver", None) or est.solver
        multiplicative = (getattr(SOLVERS.get(solver), "multiplicative", False)
                          or _robust_fit.multiplicative(est))
        return given_factors(est, nx, X, W, H, update_H, scale, multiplicative)
    k = rank_without_custom_start(est, W, H, X.shape[1])
    cheap = est.init is None and getattr(est, "solver", None) == "auto"
    products = _threaded_products(nx, X, k) if cheap else None
    if products is None:
        return initial_factors(nx, X, k, est.init, est.random_state,
                               h_order="F" if sample_major else "C",
                               power_iterations=None if cheap else "auto")
    with kernel_threads():  # the SVD's products on the kernels' threads, BLAS on one
        return initial_factors(nx, X, k, est.init, est.random_state,
                               h_order="F" if sample_major else "C", products=products)


def _threaded_products(nx, X, k):
    """(X @ Q, Xᵀ @ Q) on the solvers' host threads for the default start's randomized SVD
    (run inside ``kernel_threads()``), or None (a device; a small X, whose fit runs no
    compiled kernel; a sparse X other than CSR with sorted indices).

    Sparse CSR X: scikit-learn's products run on one thread (on the TF-IDF workload the SVD
    was about a third of the default fit). Dense X: the products are split over the threads,
    each part one single-threaded BLAS call, so that the range finder's QR, LU and SVD of
    thin matrices run on one BLAS thread — with OpenBLAS's two threads they took 0.4 s each
    instead of 2 ms whenever another process held a core (the dense benchmark's start:
    2.1 s against 0.43 s on one thread, at load 2)."""
    if nx.issparse(X):
        if (getattr(X, "format", None) != "csr" or not X.has_sorted_indices
                or not CoordinateDescent.compiled_for(nx, float(X.nnz), int(k) + 10)):
            return None
        return (lambda Q: csr_dot(X, np.ascontiguousarray(Q)), lambda Q: csr_tdot(X, Q))
    if not CoordinateDescent.compiled_for(nx, float(X.shape[0]) * X.shape[1], int(k) + 10):
        return None

    def xq(Q):
        return matmul_rows(X, np.asarray(Q, dtype=X.dtype), n_threads())

    def xtq(Q):  # (Qᵀ X)ᵀ by ranges of X's columns
        return matmul_cols(np.ascontiguousarray(np.asarray(Q, dtype=X.dtype).T), X,
                           n_threads()).T
    return xq, xtq


def _sample_major(est, nx, X) -> bool:
    """Whether H is kept F-ordered (cd on sparse numpy X, Frobenius: no C-order copies)."""
    return est._solver == "cd" and CoordinateDescent.sample_major_for(
        nx, nx.issparse(X), float(est._beta_loss))


def _restart_starts(est, nx, X, W, H, frozen_H):
    """Run 0 = the single fit's start; runs 1.. start from ``init="random"`` with seeds drawn
    from ``random_state`` (so n_init > 1 is never worse than n_init = 1); frozen rows kept."""
    from ._restarts import restart_seeds

    starts = [(W, H, est.random_state)]
    for seed in restart_seeds(est.random_state, est.n_init - 1):
        Wr, Hr = initial_factors(nx, X, H.shape[0], "random", int(seed), on_device=True)
        if frozen_H:
            Hr[list(frozen_H)] = H[list(frozen_H)]
        starts.append((Wr, Hr, int(seed)))
    return starts


def fit(est, X, W=None, H=None, update_H: bool = True, weights=None):
    """Fit the estimator ``est`` to validated X; returns (W, H, n_iter) in X's framework
    (numpy for numpy input fitted on another backend). Sets the fitted history attributes.

    ``weights``: dense entry weights of a robust fit of observed entries (X dense, 0 where
    unobserved; :func:`nmfkit._robust_fit.fit_transform_observed`).

    A small problem (``nmfkit._threads.small_fit_threads``) runs start and loop with BLAS on
    one thread.
    """
    k = est.n_components if isinstance(est.n_components, numbers.Integral) else (
        H.shape[0] if H is not None else X.shape[1])
    with small_fit_threads(est.n_jobs, _work(X, k)):
        return _fit_planned(est, X, W, H, update_H, weights)


def _work(X, k) -> int:
    """Multiply-adds of one product X Hᵀ: n·m·k, or nnz·k for a scipy sparse X."""
    stored = getattr(X, "nnz", None)  # scipy's stored entries; else every entry
    return (X.shape[0] * X.shape[1] if stored is None else stored) * int(k)


def fitted_divergence(est, X, W, H, nx=None) -> float:
    """D_β(X | WH) of a fit's result (its ``reconstruction_err_``), under the fit's thread
    rules (``n_jobs``; a small problem's one BLAS thread). A large dense Frobenius residual is
    formed by ranges of rows on the kernels' threads, BLAS at one thread in each: the
    residual's subtraction and squares ran on one thread while BLAS threaded only its
    product."""
    beta = est._beta_loss
    work = _work(X, W.shape[1])
    with small_fit_threads(getattr(est, "n_jobs", None), work):
        nx = nx or get_backend(X)
        if beta == 2.0 and not nx.issparse(X) and work >= SMALL_WORK:
            with nx.step_threads(kernel_threads) as nt:  # torch: its own threads (1)
                if nt > 1 and blas_single():
                    def run(part, size):
                        return run_parts(part, split_even(size, nt))
                    return beta_divergence(X, W, H, beta, nx=nx, run=run)
        return beta_divergence(X, W, H, beta, nx=nx)


def _fit_planned(est, X, W, H, update_H, weights):
    est._check_params(X)
    robust = _robust_fit.kind(est)
    _robust_fit.check_robust(est, update_H)
    nx = get_backend(X, backend=est.backend, device=est.device)
    _extensions.check_backend(est, nx.name)  # Hoyer sparseness (nmfsc) is numpy-only
    options = dict(est.solver_options or {})
    nx = nx.configured(options)  # reads (and removes) the backend's own options
    _check_values(est, X)
    beta = est._beta_loss
    n, m = X.shape
    known = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, n, m)
    known += [p for p in (est.penalties or []) if isinstance(p, Penalty)]
    _resolve(est, X, nx, known)
    k = est._n_components if est._n_components not in (None, "auto") else (
        H.shape[0] if H is not None else m)
    runs = max(1, int(getattr(est, "n_init", 1))) if update_H else 1
    if _robust_fit.needs_dense(robust) and nx.issparse(X):
        X = _robust_fit.densified(X, nx)  # every residual is weighed, zeros of X included
    X, host_input, nx = nx.place(X, k_total=int(k) * runs,
                                 dense_WH=(beta != 2.0 and est._solver == "mu")
                                 or _robust_fit.needs_dense(robust),
                                 kl_cd=beta == 1.0 and est._solver == "cd")

    # data of extreme magnitude is fitted at unit scale, from the start on (L2,1 is a loss
    # of degree 1 in X, the others of degree 2)
    scale = UnitScale.of(nx.max(X), 1.0 if robust == "l21" else beta)
    X = scale.data(X, nx)
    W, H = start(est, X, W, H, update_H, scale, nx, _sample_major(est, nx, X))

    ext = _extensions.prepare(est, X, W, H, update_H, scale=scale)
    penalties = [*sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, n, m),
                 *ext.pop("penalties")]
    _resolve(est, X, nx, penalties)  # again, now that the graph penalty is known too
    options.update(ext.pop("solver_options") or {})
    if robust is not None:
        if weights is not None:
            weights = nx.asarray(weights, dtype=nx.dtype_of(X))
        robust_options, W, H = _robust_fit.prepare(est, nx, X, W, H, scale, update_H, weights)
        options.update(robust_options)
    elif est.solver == "auto":
        options = {**auto_options(est._solver, beta), **options}
    penalties = scale.penalties(penalties)
    fit_kwargs = dict(
        solver=est._solver, beta=beta, beta_param=est.beta_loss, nx=nx,
        penalties_W=[p for p in penalties if p.factor == "W"],
        penalties_H=[p for p in penalties if p.factor == "H"],
        update_H=update_H, tol=est.tol, max_iter=est.max_iter, max_time=est.max_time,
        callback=est.callback, shuffle=est.shuffle, solver_options=options or None,
        verbose=est.verbose, **ext,
    )
    if _sample_major(est, nx, X):
        H = np.asfortranarray(H)  # cd's sample-major layout on sparse X (no C-order copies)
    if update_H and runs > 1:
        from ._restarts import fit_starts

        starts = _restart_starts(est, nx, X, W, H, ext.get("frozen_H", ()))
        if robust is not None:  # each restart's own pilot (the scale stays run 0's)
            starts[1:] = [(*_robust_fit.restart_start(est, nx, X, Wr, Hr, weights), seed)
                          for Wr, Hr, seed in starts[1:]]
        with nx.compute_context():  # one batch on a device when the solver allows it
            result, objectives = fit_starts(X, starts, fit_kwargs, n_jobs=est.n_jobs,
                                            batched=nx.batches_restarts)
    else:
        with thread_limits(est.n_jobs), nx.compute_context():
            # W, H are this fit's own copies: the solver may work in them in place
            result = _fit.factorize(X, W, H, owns_factors=True, random_state=est.random_state,
                                    **fit_kwargs)
        objectives = [result.objective]
    if robust is not None and update_H:  # what the fit down-weighted, at unit scale
        _robust_fit.record_scores(est, nx, X, result.W, result.H, scale, weights, host_input)
    scale.result_out(result)
    if update_H:
        est.init_objectives_ = np.array([scale.objective_out(f) for f in objectives])
    _fit.record_fit(est, result)
    Wr, Hr = result.W, result.H
    if host_input:
        Wr, Hr = nx.to_numpy(Wr), nx.to_numpy(Hr)
    return Wr, _extensions.finish(est, Hr, update_H), result.n_iter


def fit_transform_observed(est, X, mask=None, W=None, H=None):
    """``NMF.fit_transform`` of a robust model (``loss=``, ``outliers=``) with a mask or
    missing values: X dense with entry weights (:func:`nmfkit._robust_fit.observed_dense`),
    then the one fit. Returns W; ``reconstruction_err_`` is √(Σ M_ij (X − WH)²_ij) over the
    observed entries."""
    est._validate_params()
    X, Xd, Md = _robust_fit.observed_dense(est, X, mask, reset=True)
    est._check_params(Xd)
    W, H, n_iter = fit(est, Xd, W=W, H=H, weights=Md)
    R = Xd - W @ H
    est.reconstruction_err_ = float(np.sqrt(np.vdot(Md * R, R)))
    est.n_components_ = H.shape[0]
    est.components_ = H
    est.n_iter_ = n_iter
    return W


def transform_observed(est, X):
    """``NMF.transform`` of a robust model fitted with missing values: W for new rows under
    the same robust loss and scale, H fixed; the fitted attributes are left as they were."""
    keep = (*est._fitted_attributes(), "outlier_scores_", "outlier_entry_scores_", "outliers_",
            "_robust_scale")
    fitted = {k: getattr(est, k) for k in keep if hasattr(est, k)}
    try:
        X, Xd, Md = _robust_fit.observed_dense(est, X, None, reset=False)
        est._check_params(Xd)
        W, _, _ = fit(est, Xd, H=est.components_, update_H=False, weights=Md)
    finally:
        for k, v in fitted.items():
            setattr(est, k, v)
    return W
