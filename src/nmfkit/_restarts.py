"""Restarts: one fit from several starts, in parallel with joblib or as one batch.

``fit_starts`` keeps the best run and is the path behind
``NMF(n_init=...)`` on every backend: on a device the runs share one set of batched products
(:mod:`nmfkit._batched_runs`) when the solver and options allow it, on numpy they run over
``n_jobs`` threads.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["restart_seeds", "parallel_map", "fit_starts"]

logger = logging.getLogger("nmfkit")


def restart_seeds(random_state, n: int) -> np.ndarray:
    """n independent integer seeds drawn from ``random_state`` (int, RandomState or None)."""
    rng = check_random_state(random_state)
    return rng.randint(np.iinfo(np.int32).max, size=n)


def parallel_map(fn, items, n_jobs, prefer):
    """``[fn(*it) for it in items]``, over ``n_jobs`` joblib workers (one BLAS thread each)."""
    items = list(items)
    if n_jobs in (None, 1) or len(items) <= 1:
        return [fn(*it) for it in items]
    from joblib import Parallel, delayed

    from ._threads import thread_limits

    # one BLAS thread per run: n_jobs runs × a full BLAS pool each would oversubscribe the cores
    with thread_limits(1 if prefer == "threads" else None):
        return Parallel(n_jobs=n_jobs, prefer=prefer)(delayed(fn)(*it) for it in items)


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

        results = parallel_map(one, starts, n_jobs, "threads")
    objectives = np.array([float(r.objective) for r in results])
    best = int(np.argmin(objectives))
    return results[best], objectives
