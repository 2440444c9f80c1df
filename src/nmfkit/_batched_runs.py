"""Several fits of the same X from given starts, run as one batch: ``NMF(n_init=r)`` on torch.

Each run follows its own single fit (:func:`nmfkit._fit.factorize`): the same updates, the same
stopping rule (scikit-learn's, checked every ``check_every`` iterations, per run), the same
history and stop reason, the same rescaling of extreme data. But the r runs share one set of
batched products (the kernels of :mod:`nmfkit.solvers.batched_steps`): X is read twice per iteration for all
of them, not 2r times. A run that stops leaves the batch; the others go on. Objective values
stay on the device (a (max_iter + 1, r) float64 buffer) and are read back only when the
stopping rule needs them and once at the end, so the loop does not wait on the device at every
iteration.

Scope (:func:`batchable` returns why not otherwise): solvers ``"mu"`` and ``"cd"`` (plain HALS:
no ``inner`` sweeps, no ``extrapolate``), the Frobenius loss, L1/L2 and Graph (GNMF) penalties,
dense or sparse X, frozen components; no nsNMF, ``shuffle``, ``callback``, ``max_time`` or
``verbose``. The caller (:func:`nmfkit._restarts.fit_starts`) then runs the starts one after
another.
"""

from __future__ import annotations

import time

import numpy as np

from .solvers.batched_steps import cd_step, graph_values, mu_step

__all__ = ["batchable", "factorize_starts"]


def batchable(*, solver, beta, penalties_W=(), penalties_H=(), update_W=True, update_H=True,
              callback=None, max_time=None, shuffle=False, solver_options=None, frozen_W=(),
              frozen_H=(), smoothing=0.0, verbose=0, **_other) -> str | None:
    """None when starts with these ``_fit.factorize`` arguments can run as one batch, else the
    reason they cannot (for the debug log)."""
    from .penalties import Graph, has_hals_form
    from .solvers import SOLVERS

    if solver not in ("mu", "cd"):
        return f"solver {solver!r} (batched: 'mu', 'cd')"
    if float(beta) != 2.0:
        return f"beta_loss {beta!r} (batched: Frobenius)"
    if not (update_W and update_H):
        return "a factor is fixed"
    if not all(has_hals_form(p) or type(p) is Graph for p in [*penalties_W, *penalties_H]):
        return "a penalty other than L1/L2/Graph"
    if smoothing:
        return "nsNMF smoothing"
    if callback is not None or max_time is not None or shuffle or verbose:
        return "callback, max_time, shuffle or verbose"
    opts = dict(solver_options or {})
    defaults = SOLVERS[solver].default_options
    if any(key not in defaults for key in opts):
        return f"solver_options {sorted(opts)}"
    opts = {**defaults, **opts}
    if solver == "cd" and (opts["inner"] or opts["extrapolate"]):
        return "cd with inner sweeps or extrapolation"
    if (solver == "cd" and _other.get("tol", 0) > 0
            and not any(type(p) is Graph for p in [*penalties_W, *penalties_H])):
        return "cd stops by scikit-learn's violation rule, measured in each run's own sweeps"
    return None


def _objectives(nx, sq_X, WtX, W, H, WtW, pens, graphs=((), ())):
    """½‖X − W_b H_b‖² from the Gram products plus the L1/L2 terms, float64 on the device."""
    l1W, l2W, l1H, l2H = pens

    def f64(A):
        return nx.astype(A, "float64")

    def bsum(A):  # Σ over the last two axes, per run: (b,)
        return nx.sum(A, axis=(-1, -2))

    cross = bsum(f64(WtX) * f64(H))
    gram = bsum(f64(WtW) * f64(H @ nx.mT(H)))
    f = nx.clip_min(0.5 * (sq_X - 2.0 * cross + gram), 0.0)
    for l1, l2, F in ((l1W, l2W, W), (l1H, l2H, H)):
        if l1 or l2:
            F64 = f64(F)
            if l1:
                f = f + l1 * bsum(F64)
            if l2:
                f = f + 0.5 * l2 * bsum(F64 * F64)
    return f + graph_values(nx, W, graphs[0]) + graph_values(nx, nx.mT(H), graphs[1])


def _index(nx, idx):
    """Run indices as an index array on the backend's device."""
    return nx.asarray(np.asarray(idx, dtype=np.int64))


# ------------------------------------------------------------------ the batched fit
def factorize_starts(X, starts, *, solver: str, beta: float, nx, penalties_W=(), penalties_H=(),
                     tol: float = 1e-4, max_iter: int = 200, check_every: int = 10,
                     frozen_W=(), frozen_H=(), **_other) -> list:
    """One :class:`nmfkit._fit.FitResult` per start, as ``_fit.factorize`` would return it.

    Parameters
    ----------
    X : validated X (array, sparse matrix or tensor), (n_samples, n_features).
    starts : list of (W0 (n_samples, k), H0 (k, n_features)) in X's framework; not modified.
    solver, beta, nx, penalties_W, penalties_H, tol, max_iter, frozen_W, frozen_H : as for
        ``_fit.factorize``
        (check :func:`batchable` first; other keyword arguments are ignored).
    """
    from . import _fit
    from .losses import beta_divergence
    from .penalties import Graph, split_hals

    from ._unit_scale import UnitScale

    scale = UnitScale.of(nx.max(X), beta)  # extreme data at unit scale (a no-op otherwise)
    X = scale.data(X, nx)
    starts = [(scale.factor_in(W), scale.factor_in(H)) for W, H in starts]
    penalties_W = scale.penalties(penalties_W)
    penalties_H = scale.penalties(penalties_H)
    X, Xt = nx.prepare_X(X)
    sparse = nx.issparse(X)
    pens = (*split_hals(penalties_W)[:2], *split_hals(penalties_H)[:2])
    graphs = ([p for p in penalties_W if type(p) is Graph],
              [p for p in penalties_H if type(p) is Graph])
    # the first objective exactly as a single fit computes it (Solver.objective)
    f0 = np.array([
        beta_divergence(X, W0, H0, 2.0, nx=nx) + sum(p.value(W0.T) for p in penalties_W)
        + sum(p.value(H0) for p in penalties_H) for W0, H0 in starts
    ])
    W = nx.stack([W0 for W0, _ in starts])  # (r, n, k), a copy
    H = nx.stack([H0 for _, H0 in starts])  # (r, k, m)
    r = len(starts)
    eps = nx.eps(nx.dtype_of(W))
    sq_X = nx.sq_norm(X)
    step = mu_step if solver == "mu" else cd_step
    e_init = np.sqrt(2.0 * np.maximum(f0, 0.0))
    e_prev = e_init.copy()
    hist = nx.full((max_iter + 1, r), np.nan, np.float64)
    act = np.arange(r)  # the run in each slot of the working batch
    act_dev = _index(nx, act)
    done: dict = {}  # run -> (W, H, n_iter, reason)
    times = [0.0]
    start = time.perf_counter()
    deferred = _fit._DeferredInterrupt()
    ctx = nx.compute_context()
    ctx.__enter__()
    deferred.__enter__()
    try:
        for it in range(1, max_iter + 1):
            WtX, WtW = step(nx, X, Xt, W, H, sparse, eps, *pens, frozen_W, frozen_H, *graphs)
            f = _objectives(nx, sq_X, WtX, W, H, WtW, pens, graphs)
            hist[it, act_dev] = f
            times.append(time.perf_counter() - start)
            reasons = {}
            if it == 1:
                reasons.update({j: "exact" for j in range(act.size) if e_init[act[j]] == 0.0})
            if tol > 0 and it % check_every == 0:
                e = np.sqrt(2.0 * np.maximum(nx.to_numpy(f), 0.0))
                for j, run in enumerate(act):
                    if j in reasons:
                        continue
                    if (e_prev[run] - e[j]) / e_init[run] < tol:
                        reasons[j] = "tol"
                    else:
                        e_prev[run] = e[j]
            if deferred.requested:
                reasons.update({j: "interrupted" for j in range(act.size) if j not in reasons})
                _fit._warn_interrupted(it)
            elif it == max_iter:
                reasons.update({j: "max_iter" for j in range(act.size) if j not in reasons})
            if not reasons:
                continue
            for j, why in reasons.items():
                done[int(act[j])] = (nx.ascontiguous(nx.copy(W[j])), nx.copy(H[j]), it, why)
            keep = [j for j in range(act.size) if j not in reasons]
            if not keep:
                break
            act = act[keep]
            act_dev = _index(nx, act)
            idx = _index(nx, keep)
            W, H = W[idx], H[idx]
    finally:
        deferred.__exit__()
        ctx.__exit__(None, None, None)
    hist = nx.to_numpy(hist)
    out = []
    for run in range(r):
        Wr, Hr, n_iter, why = done[run]
        objs = [float(f0[run]), *(float(v) for v in hist[1:n_iter + 1, run])]
        out.append(scale.result_out(_fit.FitResult(
            W=Wr, H=Hr, n_iter=n_iter, objective=objs[-1], converged=why in ("tol", "exact"),
            stop_reason=why,
            history={"n_iter": list(range(n_iter + 1)), "objective": objs,
                     "time": times[:n_iter + 1]},
        )))
    return out
