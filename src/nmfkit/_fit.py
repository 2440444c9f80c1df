"""The one outer loop every solver runs in.

It owns what is common to all solvers: the stopping rule, the objective history, the
iteration and wall-clock limits, the callback hook and interrupt handling. A solver only
provides ``step()`` (and ``objective()``).

Stopping rules (a solver names its own in ``stop_rule``; docs/solvers.md has the table):

* "error" — scikit-learn's MU rule, nmfkit's default for every solver: every
  ``check_every`` iterations, with e = √(2·objective), stop when (e_prev − e) / e_init < tol.
  The objective is the loss plus the penalties (``solver.stopping_objective``; "mu" compares
  the loss alone, as scikit-learn's MU does).
* "violation" — scikit-learn's CD rule: after every iteration, stop when the
  projected-gradient violation of the iteration is ≤ tol × that of the first iteration.
  Plain ``solver="cd"`` measures it along its sweeps, as scikit-learn does; the default
  (``solver="auto"``: accelerated HALS, Frobenius, numpy or torch) at the point each
  half-step starts from (``cd.projected_gradient_l1``). The error rule stopped the default
  early where NNDSVDa's start inflates e_init (docs/benchmarks.md, the defaults table).

``tol=0`` runs exactly ``max_iter`` iterations.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["FitResult", "IterationInfo", "run", "record_fit"]

logger = logging.getLogger("nmfkit")


@dataclass
class IterationInfo:
    """What a callback sees after each iteration. Return True from the callback to stop."""

    n_iter: int
    objective: float | None
    elapsed: float
    W: object
    H: object


@dataclass
class FitResult:
    W: object
    H: object
    n_iter: int
    objective: float
    converged: bool
    stop_reason: str  # "tol", "max_iter", "max_time", "callback", "interrupted", "exact"
    history: dict = field(default_factory=dict)


def record_fit(estimator, result: "FitResult") -> None:
    """Store a fit's history on the estimator and warn as scikit-learn does when it stopped
    at ``max_iter`` with ``tol > 0``. Every estimator path (plain, masked, torch) ends here."""
    from sklearn.exceptions import ConvergenceWarning

    estimator.loss_curve_ = list(result.history["objective"])
    estimator.history_ = result.history
    estimator.stop_reason_ = result.stop_reason
    if result.stop_reason == "max_iter" and estimator.tol > 0:
        warnings.warn(
            f"Maximum number of iterations {estimator.max_iter} reached. Increase it to"
            " improve convergence.",
            ConvergenceWarning,
            stacklevel=4,
        )


def _error(f: float) -> float:
    return math.sqrt(2.0 * max(f, 0.0))


class _DeferredInterrupt:
    """Ctrl-C during a fit sets a flag that the loop checks between iterations.

    Installed only in the main thread and only while SIGINT has Python's default handler
    (a caller's own handler, such as the CLI's two-stage one, is left alone). With it the loop
    needs no per-iteration copy of (W, H): an iteration is never cut half-way. A second
    Ctrl-C before the iteration ends raises KeyboardInterrupt as usual (the fit is abandoned).
    Where it cannot be installed the loop falls back to snapshotting the factors — only where
    a KeyboardInterrupt can actually arrive in this thread: not in a worker thread (signals
    reach the main thread only: ``n_init`` restarts on joblib threads), nor where SIGINT is
    ignored or left to the OS (a background job, ``nohup``, a daemon). A snapshot is a copy
    of W and H per iteration, which at large k is most of the fit's working memory (sparse TF-IDF:
    a background run of the benchmark read 64.7 instead of 45.5 MiB at k=50).
    """

    def __init__(self) -> None:
        self.requested = False
        self.installed = False
        self.snapshot_needed = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            try:
                current = signal.getsignal(signal.SIGINT)
                if current is signal.default_int_handler:
                    signal.signal(signal.SIGINT, self._handler)
                    self._previous, self.installed = current, True
                else:  # a caller's handler may raise KeyboardInterrupt mid-iteration
                    self.snapshot_needed = current not in (signal.SIG_IGN, signal.SIG_DFL)
            except (ValueError, OSError):  # e.g. an embedded interpreter
                self.installed, self.snapshot_needed = False, True
        return self

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self._previous)
            self.installed = False


def _warn_interrupted(n_iter: int) -> None:
    warnings.warn(
        f"Fit interrupted by the user after {n_iter} complete iterations; "
        "returning the factors of the last complete iteration.",
        RuntimeWarning,
        stacklevel=4,
    )


def run(
    solver,
    *,
    tol: float,
    max_iter: int,
    max_time: float | None = None,
    callback: Callable[[IterationInfo], bool | None] | None = None,
    check_every: int = 10,
    verbose: int = 0,
) -> FitResult:
    """Iterate ``solver.step()`` until a stopping rule fires; return the factors and history.

    On Ctrl-C the factors of the last completed iteration are returned (never a
    half-updated factor) with a RuntimeWarning, and ``stop_reason == "interrupted"``. Where
    SIGINT has Python's default handler (main thread) the signal is deferred to the end of the
    current iteration, which saves a copy of (W, H) per iteration; otherwise the factors are
    snapshotted before each step and restored if the step raises KeyboardInterrupt.
    """
    start = time.perf_counter()
    f0 = solver.objective()
    hist_iter, hist_obj, hist_time = [0], [f0], [0.0]
    by_violation = getattr(solver, "stop_rule", "error") == "violation"
    if by_violation:
        check_every = 1
        # tol = 0 never reads the violation: a solver that measures it on the side (the
        # accelerated cd's projected gradient) may skip the measurement
        solver.violation_wanted = tol > 0
    v_init = None
    stopping_objective = getattr(solver, "stopping_objective", None) or (lambda f: f)
    e_init = _error(stopping_objective(f0))
    e_prev = e_init
    f_last = f0
    n_iter = 0
    converged = False
    reason = "max_iter"
    snapshot = None
    deferred = _DeferredInterrupt()

    handler = None
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.INFO)
    try:
        deferred.__enter__()
        for n_iter in range(1, max_iter + 1):
            if deferred.snapshot_needed:
                snapshot = solver.get_factors()
            try:
                f = solver.step()
            except KeyboardInterrupt:
                if snapshot is None:  # a second Ctrl-C, or raised by user code: abandon
                    raise
                solver.set_factors(*snapshot)
                snapshot = None
                n_iter -= 1
                reason = "interrupted"
                _warn_interrupted(n_iter)
                break
            snapshot = None
            elapsed = time.perf_counter() - start
            check = tol > 0 and n_iter % check_every == 0
            if f is None and (check or n_iter == max_iter):
                f = solver.objective()
            if f is not None:
                f_last = f
                hist_iter.append(n_iter)
                hist_obj.append(f)
                hist_time.append(elapsed)
            if e_init == 0.0:
                converged, reason = True, "exact"
                break
            if check and by_violation:
                v = float(solver.violation)
                v_init = v if v_init is None else v_init
                logger.info("iteration %d, %.3fs, violation %.6g", n_iter, elapsed, v / v_init
                            if v_init else 0.0)
                if v_init == 0.0 or v / v_init <= tol:
                    converged, reason = True, "tol"
                    break
            elif check:
                e = _error(stopping_objective(f))
                logger.info("iteration %d, %.3fs, error %.6g", n_iter, elapsed, e)
                if (e_prev - e) / e_init < tol:
                    converged, reason = True, "tol"
                    break
                e_prev = e
            if callback is not None:
                info = IterationInfo(n_iter, f, elapsed, solver.W, solver.H)
                if callback(info):
                    reason = "callback"
                    break
            if deferred.requested:
                reason = "interrupted"
                _warn_interrupted(n_iter)
                break
            if max_time is not None and elapsed >= max_time:
                reason = "max_time"
                break
    finally:
        deferred.__exit__()
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

    W, H = solver.finalize()
    if hist_iter[-1] != n_iter and reason != "interrupted":
        f_last = solver.objective()
        hist_iter.append(n_iter)
        hist_obj.append(f_last)
        hist_time.append(time.perf_counter() - start)
    return FitResult(
        W=W,
        H=H,
        n_iter=n_iter,
        objective=f_last,
        converged=converged,
        stop_reason=reason,
        history={"n_iter": hist_iter, "objective": hist_obj, "time": hist_time},
    )


def factorize(
    X,
    W,
    H,
    *,
    solver: str,
    beta: float,
    nx,
    beta_param=None,
    penalties_W=(),
    penalties_H=(),
    update_W: bool = True,
    update_H: bool = True,
    tol: float = 1e-4,
    max_iter: int = 200,
    max_time: float | None = None,
    callback=None,
    random_state=None,
    shuffle: bool = False,
    solver_options: dict | None = None,
    frozen_W=(),
    frozen_H=(),
    smoothing: float = 0.0,
    verbose: int = 0,
    owns_factors: bool = False,
) -> FitResult:
    """Fit W, H ≥ 0 from validated inputs and initial factors with the named solver.

    Data of extreme magnitude is fitted at unit scale (nmfkit._unit_scale: the β-divergence is
    homogeneous); the factors and the history come back on the data's scale.

    ``owns_factors=True`` tells the solver that W and H are the caller's scratch copies,
    referenced nowhere else that matters: it may work in them in place (no second copy).
    """
    from sklearn.utils import check_random_state

    from .solvers import Problem, get_solver

    cls = get_solver(
        solver,
        beta=beta,
        beta_param=beta_param,
        penalties=[*penalties_W, *penalties_H],
        sparse=nx.issparse(X),
        backend=nx.name,
    )
    from ._unit_scale import UnitScale

    # the estimators already fit at unit scale (a no-op for them); direct callers may not
    scale = UnitScale.of(nx.max(X), beta)
    scaled = scale.active
    X = scale.data(X, nx)
    W, H = scale.factor_in(W), scale.factor_in(H)
    penalties_W = scale.penalties(penalties_W)
    penalties_H = scale.penalties(penalties_H)
    Xp, Xt = nx.prepare_X(X)
    problem = Problem(
        X=Xp,
        Xt=Xt,
        W=W,
        H=H,
        beta=beta,
        nx=nx,
        penalties_W=list(penalties_W),
        penalties_H=list(penalties_H),
        update_W=update_W,
        update_H=update_H,
        rng=check_random_state(random_state),
        shuffle=shuffle,
        options=dict(solver_options or {}),
        frozen_W=tuple(frozen_W),
        frozen_H=tuple(frozen_H),
        owns_factors=owns_factors or scaled,
    )
    if smoothing:  # nsNMF, X ≈ W S H: the solver's updates on the smoothed factors
        from .nsnmf import smoothed_solver

        cls = smoothed_solver(cls, smoothing)
    result = run(
        cls(problem),
        tol=tol,
        max_iter=max_iter,
        max_time=max_time,
        callback=callback,
        verbose=verbose,
    )
    return scale.result_out(result)
