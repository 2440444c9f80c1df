"""Restarts: many NMF fits of the same data from different seeds, in parallel with joblib.

``fit_restarts`` keeps every run (for consensus clustering and stability, see
:mod:`nmfkit._consensus`); ``best_of`` and ``fit_n_init`` keep the best run and are the path
behind ``NMF(n_init=...)`` on numpy. ``fit_starts`` is that path on torch: the runs share one
set of batched products (:mod:`nmfkit._batched_runs`) when the solver and options allow it,
else they run one after another. Public names are re-exported from :mod:`nmfkit.selection`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["Restarts", "fit_restarts", "restart_seeds", "best_of", "fit_n_init", "fit_starts"]

logger = logging.getLogger("nmfkit")


def restart_seeds(random_state, n: int) -> np.ndarray:
    """n independent integer seeds drawn from ``random_state`` (int, RandomState or None)."""
    rng = check_random_state(random_state)
    return rng.randint(np.iinfo(np.int32).max, size=n)


def _parallel(fn, items, n_jobs, prefer):
    items = list(items)
    if n_jobs in (None, 1) or len(items) <= 1:
        return [fn(*it) for it in items]
    from joblib import Parallel, delayed

    from ._threads import thread_limits

    # one BLAS thread per run: n_jobs runs × a full BLAS pool each would oversubscribe the cores
    with thread_limits(1 if prefer == "threads" else None):
        return Parallel(n_jobs=n_jobs, prefer=prefer)(delayed(fn)(*it) for it in items)


def best_of(fit_one, n_init: int, *, n_jobs=None, prefer: str = "threads"):
    """Run ``fit_one(i)`` for i = 0..n_init−1 and keep the result of lowest ``.objective``.

    Returns (best result, ndarray of every run's final objective, index of the best). Ties
    keep the lowest index, so run 0 wins unless another run is strictly better.
    """
    results = _parallel(fit_one, [(i,) for i in range(n_init)], n_jobs, prefer)
    objectives = np.array([float(r.objective) for r in results])
    best = int(np.argmin(objectives))
    return results[best], objectives, best


@dataclass
class Restarts:
    """The factors of several NMF runs on the same data, one entry per run.

    Attributes
    ----------
    W : list of ndarray (n_samples, k)
    H : list of ndarray (k, n_features)
    objectives : ndarray (n_runs,), the final objective (loss + penalties) of each run.
    seeds : ndarray (n_runs,), the ``random_state`` of each run.
    n_not_converged : int, runs that stopped at ``max_iter``.
    """

    W: list
    H: list
    objectives: np.ndarray
    seeds: np.ndarray
    n_not_converged: int = 0
    reconstruction_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.objectives))

    @property
    def best(self):
        """(W, H) of the run with the lowest objective."""
        i = self.best_index
        return self.W[i], self.H[i]


def fit_restarts(
    X,
    n_components: int,
    *,
    n_runs: int = 10,
    random_state=None,
    n_jobs=None,
    prefer: str = "threads",
    **nmf_params,
) -> Restarts:
    """Fit ``NMF(n_components, **nmf_params)`` from ``n_runs`` seeds (init="random" by default).

    Parameters
    ----------
    X : array-like or sparse matrix (n_samples, n_features), non-negative.
    n_components : int
    n_runs : int, default=10
    random_state : int, RandomState or None; the seeds of the runs are drawn from it.
    n_jobs : int or None; runs in parallel with joblib (``prefer`` "threads" or "processes").
    **nmf_params : any other :class:`nmfkit.NMF` parameter (solver, beta_loss, max_iter, ...).

    Returns
    -------
    Restarts
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ._estimator import NMF

    if int(n_runs) < 1:
        raise ValueError(f"n_runs must be a positive int; got {n_runs!r}.")
    params = {"init": "random", **nmf_params}
    seeds = restart_seeds(random_state, int(n_runs))

    def one(seed):
        model = NMF(n_components=n_components, random_state=int(seed), **params)
        W = model.fit_transform(X)
        # stop_reason_, not a caught warning: catch_warnings is not thread-safe
        late = model.stop_reason_ == "max_iter" and model.tol > 0
        return W, model.components_, float(model.loss_curve_[-1]), model.reconstruction_err_, late

    with warnings.catch_warnings():
        # each run records its own ConvergenceWarning; report a count instead of n_runs warnings
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = _parallel(one, [(s,) for s in seeds], n_jobs, prefer)
    return Restarts(
        W=[o[0] for o in out],
        H=[o[1] for o in out],
        objectives=np.array([o[2] for o in out]),
        seeds=seeds,
        n_not_converged=sum(o[4] for o in out),
        reconstruction_errors=np.array([o[3] for o in out]),
    )


def fit_n_init(estimator, X, W0, H0, fit_kwargs: dict):
    """The ``n_init > 1`` path of :class:`nmfkit.NMF`: best of ``n_init`` fits.

    Run 0 starts from (W0, H0), the initialisation a single fit would use, with the
    estimator's own ``random_state``: so ``n_init > 1`` is never worse than ``n_init=1``. Runs
    1..n_init−1 start from ``init="random"`` with seeds drawn from ``random_state``. Runs go in
    parallel over ``estimator.n_jobs`` joblib workers (threads).

    Returns (best FitResult, ndarray (n_init,) of every run's final objective).
    """
    from . import _fit
    from .init import initialize

    seeds = restart_seeds(estimator.random_state, estimator.n_init - 1)

    def fit_one(i):
        if i == 0:
            return _fit.factorize(X, W0, H0, **fit_kwargs)
        seed = int(seeds[i - 1])
        W, H = initialize(X, H0.shape[0], init="random", random_state=seed)
        # frozen components keep their given values in every restart
        frozen_H = list(fit_kwargs.get("frozen_H", ()))
        frozen_W = list(fit_kwargs.get("frozen_W", ()))
        if frozen_H:
            H[frozen_H] = H0[frozen_H]
        if frozen_W:
            W[:, frozen_W] = W0[:, frozen_W]
        return _fit.factorize(X, W, H, **{**fit_kwargs, "random_state": seed})

    best, objectives, _ = best_of(fit_one, estimator.n_init, n_jobs=estimator.n_jobs)
    return best, objectives


def fit_starts(X, starts, fit_kwargs: dict, *, batched: bool = True):
    """Fit X from each start and keep the best: the ``n_init`` path of the torch backend.

    Parameters
    ----------
    X : validated X on the fit's backend.
    starts : list of (W0 (n_samples, k), H0 (k, n_features), seed); run 0 is the start a
        single fit uses, the seed is that run's ``random_state``.
    fit_kwargs : keyword arguments of :func:`nmfkit._fit.factorize` (without ``random_state``).
    batched : run the starts as one batch when :func:`nmfkit._batched_runs.batchable` allows
        (each run then equals its sequential fit to rounding); False: one after another.

    Returns (best FitResult, ndarray (len(starts),) of every run's final objective); ties keep
    the lowest index, as the sequential path does.
    """
    from . import _fit
    from ._batched_runs import batchable, factorize_starts

    why = batchable(**fit_kwargs) if batched and len(starts) > 1 else "a single start"
    if why is None:
        results = factorize_starts(X, [(W0, H0) for W0, H0, _ in starts], **fit_kwargs)
    else:
        if batched and len(starts) > 1:
            logger.debug("n_init runs one after another: %s", why)
        results = [_fit.factorize(X, W0, H0, **{**fit_kwargs, "random_state": seed})
                   for W0, H0, seed in starts]
    objectives = np.array([float(r.objective) for r in results])
    best = int(np.argmin(objectives))
    return results[best], objectives
