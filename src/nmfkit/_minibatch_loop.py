"""The online loop of ``MiniBatchNMF``: a fit visited in mini-batches of rows.

Each step updates one batch's W rows and H (``est._minibatch_step``: the per-batch work of
:mod:`nmfkit._minibatch_steps`, on any backend); between steps scikit-learn's early stopping
reads the batch objective and H's change in one host transfer. Ctrl-C stops the fit at the end
of the current step where Python's default handler can be deferred (no copies); where a
caller's handler may raise ``KeyboardInterrupt`` mid-step, H, the batch's W rows and the
forgetful sums are kept from before each step and the interrupted step is rolled back.
"""

from __future__ import annotations

import itertools
import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import gen_batches

from . import _fit
from ._minibatch_masked import masked_solve_W, row_slices
from ._minibatch_steps import backend, solve_W

__all__ = ["run_batches", "converged"]

logger = logging.getLogger("nmfkit")


def run_batches(est, X, W, H, update_H: bool, obs=None):
    """Steps over the batches of X until scikit-learn's rule stops them or ``max_iter`` passes
    (W and H, the start, updated in place); returns (W, H, n_iter, n_steps) and sets
    ``est.stop_reason_``. The sums of ``est`` are initialised by the caller."""
    nx = backend(est)
    n_samples = X.shape[0]
    H_buffer = nx.copy(H)
    est._ewa_cost = est._ewa_cost_min = None
    # the batch objective feeds only max_no_improvement and the log: skip it (and its
    # host read on torch) when neither is on
    est._need_cost = update_H and (est.max_no_improvement is not None or est.verbose)
    est._no_improvement = 0

    slices = list(gen_batches(n_samples, est._batch_size))
    obs_b = row_slices(obs, slices) if obs is not None else [None] * len(slices)
    batches = itertools.cycle(zip(slices, obs_b))
    n_steps_per_iter = int(np.ceil(n_samples / est._batch_size))
    n_steps = est.max_iter * n_steps_per_iter
    handler = verbose_handler(est.verbose)
    take_rows = nx.row_taker(X)  # a sparse X on a device: its row pointer read once
    deferred = _fit._DeferredInterrupt()
    deferred.__enter__()
    keep = deferred.snapshot_needed
    done, reason, saved = 0, "max_iter", None
    try:
        for i, (batch, ob) in zip(range(n_steps), batches):
            saved = None  # nothing of this step changed yet
            Xb = take_rows(batch)
            Wb = W[batch]  # a view: updated in place
            saved = (_save_step(est, nx, H, Wb), batch) if keep else None
            cost = est._minibatch_step(Xb, Wb, H, update_H, ob)
            stop = update_H and converged(
                est, Xb.shape[0], cost, H, H_buffer, n_samples, i, n_steps)
            done, saved = i + 1, None  # the step is complete
            if deferred.requested:
                reason = "interrupted"
                break
            if stop:
                reason = "tol"
                break
            if est.tol > 0:
                H_buffer[:] = H
    except KeyboardInterrupt:
        if not keep:  # no copy was kept (a worker thread): nothing to return
            raise
        if saved is not None:
            _restore_step(est, saved[0], H, W, saved[1])
        reason = "interrupted"
    finally:
        deferred.__exit__()
        if handler is not None:
            logger.removeHandler(handler)
    est.stop_reason_ = reason
    if reason == "interrupted":
        warnings.warn(f"Fit interrupted by the user after {done} complete mini-batch "
                      "steps; returning the factors of the last complete step.",
                      RuntimeWarning, stacklevel=4)
    elif est.fresh_restarts and obs is not None:
        W = masked_solve_W(est, obs, H, est._transform_max_iter)
    elif est.fresh_restarts:
        W = solve_W(est, X, H, est._transform_max_iter)
    n_steps = max(done, 1) if reason != "interrupted" else done
    n_iter = int(np.ceil(n_steps / n_steps_per_iter))
    if n_iter == est.max_iter and est.tol > 0 and reason == "max_iter":
        warnings.warn(
            f"Maximum number of iterations {est.max_iter} reached. Increase it to"
            " improve convergence.",
            ConvergenceWarning,
        )
    return W, H, n_iter, n_steps


def _save_step(est, nx, H, Wb):
    """What one mini-batch step changes in place, copied (see :func:`_restore_step`)."""
    return (nx.copy(H), nx.copy(Wb), nx.copy(est._components_numerator),
            nx.copy(est._components_denominator))


def _restore_step(est, saved, H, W, batch) -> None:
    H[:], W[batch] = saved[0], saved[1]
    est._components_numerator, est._components_denominator = saved[2], saved[3]


def converged(est, batch_rows, cost, H, H_buffer, n_samples, step, n_steps):
    """scikit-learn's early stopping: small change of H, or no improvement of the
    exponentially weighted average of the batch cost for ``max_no_improvement`` steps. The
    rule's scalars are read in one host transfer."""
    step += 1
    need_change = est.tol > 0 and step > 1
    norm = diff = 0.0
    if need_change:
        nx = backend(est)
        cost, norm, diff = nx.floats(cost, nx.norm(H), nx.norm(H - H_buffer))
    elif est._need_cost:
        (cost,) = backend(est).floats(cost)
    if step == 1:  # H has not moved yet
        logger.info("Minibatch step %d/%d: mean batch cost: %g", step, n_steps, cost)
        return False
    if est._ewa_cost is None:
        est._ewa_cost = cost
    else:
        alpha = min(batch_rows / (n_samples + 1), 1)
        est._ewa_cost = est._ewa_cost * (1 - alpha) + cost * alpha
    logger.info("Minibatch step %d/%d: mean batch cost: %g, ewa cost: %g",
                step, n_steps, cost, est._ewa_cost)
    if need_change and (diff / norm if norm > 0 else 0.0) <= est.tol:
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


def verbose_handler(verbose):
    """A stream handler on the "nmfkit" logger at INFO level while ``verbose`` (or None)."""
    if not verbose:
        return None
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
