"""Restarts: many NMF fits of the same data from different seeds, in parallel with joblib.

``fit_restarts`` keeps every run (for consensus clustering and stability, see
:mod:`nmfkit._consensus`); ``fit_starts`` keeps the best run and is the path behind
``NMF(n_init=...)`` on every backend: on a device the runs share one set of batched products
(:mod:`nmfkit._batched_runs`) when the solver and options allow it, on numpy they run over
``n_jobs`` threads. Public names are re-exported from :mod:`nmfkit.selection`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["Restarts", "fit_restarts", "restart_seeds", "fit_starts"]

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


def fit_starts(X, starts, fit_kwargs: dict, *, batched: bool = True, n_jobs=None):
    """Fit X from each start and keep the best: the ``n_init`` path of every backend.

    Parameters
    ----------
    X : validated X on the fit's backend.
    starts : list of (W0 (n_samples, k), H0 (k, n_features), seed); run 0 is the start a
        single fit uses, the seed is that run's ``random_state``.
    fit_kwargs : keyword arguments of :func:`nmfkit._fit.factorize` (without ``random_state``).
    batched : run the starts as one batch when :func:`nmfkit._batched_runs.batchable` allows
        (each run then equals its sequential fit to rounding); False: one after another, or
        over ``n_jobs`` joblib threads.
    n_jobs : int or None, threads for unbatched starts (None or 1: sequential).

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
        def one(W0, H0, seed):
            return _fit.factorize(X, W0, H0, **{**fit_kwargs, "random_state": seed})

        results = _parallel(one, starts, n_jobs, "threads")
    objectives = np.array([float(r.objective) for r in results])
    best = int(np.argmin(objectives))
    return results[best], objectives
