"""The robust fit of ``NMF(loss="huber" | "cauchy" | "l21")`` and ``NMF(outliers="sparse" |
"groups")``.

The engine's part of robust NMF (the math is :mod:`nmfkit.robust`, the solver
:mod:`nmfkit.solvers.robust_mm`): it refuses, by name, what the robust fit cannot honour; turns
the estimator's parameters into the robust solver and its options for :func:`nmfkit._engine.fit`
(which then gives restarts, unit scale, torch, callbacks and interrupts as for any fit); turns
observed entries (a mask or missing values) into dense X with entry weights; and stores what
the fit down-weighted (``outlier_scores_``, ``outlier_entry_scores_``, ``outliers_``).
"""

from __future__ import annotations

import numpy as np

from .robust import (Groups, check_groups, entry_scores, group_weights, kind_of, psi,
                     row_norms, row_scores)
from .solvers.robust_mm import pilot_scale

__all__ = ["check_robust", "groups_of", "kind", "multiplicative", "needs_dense",
           "observed_dense", "prepare", "record_scores", "restart_start"]


def kind(est) -> str | None:
    """The robust objective of the estimator's parameters, or None for the plain fit."""
    return kind_of(getattr(est, "loss", None), getattr(est, "outliers", None))


def check_robust(est, update_H: bool = True) -> None:
    """Refuse the parameter combinations the robust fit cannot honour, naming them and what
    can; and robust-only parameters given without a robust loss (never silently ignored)."""
    loss, outliers = getattr(est, "loss", None), getattr(est, "outliers", None)
    scale, penalty = getattr(est, "loss_scale", None), getattr(est, "outlier_penalty", None)
    labels = getattr(est, "outlier_groups", None)
    if labels is not None and outliers != "groups":
        raise ValueError(f"outlier_groups is set but outliers={outliers!r}: it would be "
                         "ignored. Choose outliers='groups' (a group-sparse outlier term over "
                         "these feature groups), or drop outlier_groups.")
    if outliers == "groups":  # the labels' own checks, before any work (again in prepare)
        m = getattr(est, "n_features_in_", None)
        if labels is None or m is not None:
            check_groups(labels, m)
    if loss is None and outliers is None:
        given = [n for n, v in (("loss_scale", scale), ("outlier_penalty", penalty))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} is set but loss=None and outliers=None: it "
                             "would be ignored. Choose loss='huber' or 'cauchy' (loss_scale) "
                             "or outliers='sparse' (outlier_penalty), or drop it.")
        return
    if loss is not None and outliers is not None:
        raise ValueError(f"loss={loss!r} and outliers={outliers!r} are two robust models; give "
                         "one. loss='huber' is itself the signed sparse-outlier model "
                         "(min over S of ½‖X − WH − S‖² + δ‖S‖₁).")
    if scale is not None and kind(est) not in ("huber", "cauchy"):
        raise ValueError(f"loss_scale={scale!r} is the scale of loss='huber' or 'cauchy'; "
                         + ("loss='l21' has none" if loss == "l21" else
                            "for outliers='sparse' give outlier_penalty") + ": drop it.")
    if penalty is not None and outliers is None:
        raise ValueError(f"outlier_penalty={penalty!r} is the weight λ of outliers='sparse' "
                         f"or 'groups'; with loss={loss!r} give loss_scale instead, or drop "
                         "it.")
    what = f"loss={loss!r}" if loss is not None else f"outliers={outliers!r}"
    if est._beta_loss != 2.0:
        raise ValueError(f"{what} replaces the Frobenius loss; it cannot be combined with "
                         f"beta_loss={est.beta_loss!r}. Use beta_loss='frobenius' (the default).")
    if est.solver not in ("auto", "cd", "mu"):
        raise ValueError(f"{what} is fitted by HALS on its majoriser (solver='auto' or 'cd') "
                         f"or by multiplicative updates on it (solver='mu'), not solver="
                         f"{est.solver!r}.")
    used = []
    if float(est.alpha_W) > 0 or (est.alpha_H != "same" and float(est.alpha_H) > 0):
        used.append("alpha_W/alpha_H (penalties)")
    if est.penalties:
        used.append("penalties")
    if est.graph is not None and float(est.graph_weight) > 0:
        used.append("graph")
    if float(est.smoothness or 0.0) > 0:
        used.append("smoothness")
    if est.frozen_components is not None:
        used.append("frozen_components")
    if est.sparseness_W is not None or est.sparseness_H is not None:
        used.append("sparseness_W/sparseness_H")
    if used:
        raise ValueError(f"{what} cannot be combined with {', '.join(used)}: its majorisers "
                         "carry no penalty or extension terms. Fit the robust loss alone, or "
                         "drop loss/outliers for the extension.")


def multiplicative(est) -> bool:
    """Whether the robust fit starts with multiplicative steps (the pilot of the entrywise
    kinds; L2,1 with solver='mu'), which cannot leave zero: a fixed-H fit (``transform``)
    then starts W flat and positive."""
    k = kind(est)
    return k is not None and (k != "l21" or est.solver == "mu")


def needs_dense(k: str | None) -> bool:
    """Whether the robust kind reads every residual (all but unweighted L2,1)."""
    return k is not None and k != "l21"


def densified(X, nx):
    """Sparse X as a dense array on its backend, after a memory check (the entrywise robust
    losses weigh every residual, the zeros of a sparse X included)."""
    from ._validation import require_memory

    n, m = X.shape
    item = np.dtype(str(nx.dtype_of(X)).replace("torch.", "")).itemsize
    require_memory(4 * n * m * item, "loss='huber'/'cauchy'/outliers='sparse' on sparse X "
                   "needs about {gb} GB (X dense, WH, the residual and the target)",
                   "use loss='l21' (it keeps X sparse) or fit a sample of the rows.")
    dense = getattr(X, "toarray", None)
    return dense() if dense is not None else X.to_dense()


def prepare(est, nx, X, W, H, scale, update_H: bool, weights=None):
    """The robust solver's options for a fit of X at unit ``scale`` from (W, H), and the
    start itself; returns (options, W, H).

    The options: the kind, its scale, the entry weights on X's backend, and the update rule
    (HALS on the majoriser; multiplicative updates on it for solver='mu'). The
    scale is the one given (``loss_scale``, ``outlier_penalty``), the fitted one in
    ``transform``, or else estimated along a pilot from the start
    (:func:`nmfkit.solvers.robust_mm.pilot_scale`); it is fixed once, so that every ``n_init``
    restart minimises the same objective. The pilot's end is the fit's start in every case
    (a graduated start: HALS on the majoriser from a start that fits the outliers stalls).
    """
    k = kind(est)
    s = None
    if k != "l21":
        given = est.loss_scale if k in ("huber", "cauchy") else est.outlier_penalty
        if given is None and not update_H and getattr(est, "loss_scale_", None) is not None:
            given = est.loss_scale_
        s, W, H = pilot_scale(nx, k, X, W, H, weights, update_H=update_H)
        if given is not None:
            s = float(given) / scale.s
    est._robust_scale = s
    opts = {"robust": k, "robust_scale": s, "robust_weights": weights,
            "update": "mu" if est.solver == "mu" else "hals"}
    if k == "groups":
        opts["robust_groups"] = groups_of(est, X.shape[1])
    return opts, W, H


def groups_of(est, n_features: int) -> Groups:
    """The feature groups of ``outliers="groups"`` (checked against X's features), built once
    per labels and kept on the estimator (``transform`` reuses them)."""
    labels = est.outlier_groups
    got = getattr(est, "_robust_groups", None)
    if got is not None and got[0] is labels and got[1].labels.shape[0] == n_features:
        return got[1]
    groups = Groups(labels, n_features)
    est._robust_groups = (labels, groups)
    return groups


def restart_start(est, nx, X, W, H, weights=None):
    """The start of an ``n_init`` restart: the random start followed by its own pilot (the
    scale of the fit stays run 0's); L2,1 has no pilot."""
    if kind(est) == "l21":
        return W, H
    _, W, H = pilot_scale(nx, kind(est), X, W, H, weights)
    return W, H


def record_scores(est, nx, X, W, H, scale, weights=None, host: bool = True) -> None:
    """``loss_scale_``, ``outlier_scores_`` (per sample), ``outlier_entry_scores_`` (per entry,
    entrywise kinds and groups) and ``outliers_`` (the fitted S of outliers='sparse' or
    'groups') from the final
    factors; X, W, H at the fit's unit ``scale`` (scores are scale-free; the scale and S are
    reported on the data's scale). ``host``: numpy arrays out (host input)."""
    k = kind(est)
    out = nx.to_numpy if host else (lambda a: a)
    if k == "l21":
        est.outlier_scores_ = row_scores(nx, row_norms(nx, X, W, H, weights))
        est.outlier_entry_scores_ = est.outliers_ = est.loss_scale_ = None
        return
    R = X - nx.matmul(W, H)
    s = est._robust_scale
    observed = None if weights is None else (weights > 0) * 1.0
    if k == "groups":  # 1 − ω of the entry's group: the share of its residual put into S
        groups = groups_of(est, X.shape[1])
        om, _ = group_weights(nx, groups, R, s, weights)
        E = 1.0 - om[:, groups.on(nx, R)[0]]
        if observed is not None:
            E = E * observed
        S = E * R
    else:
        E = entry_scores(nx, k, R, s, observed)
        S = nx.clip_min(R - psi("sparse", R, s), 0.0) if k == "sparse" else None
    counts = float(X.shape[1]) if observed is None else nx.clip_min(nx.sum(observed, axis=1), 1.0)
    est.outlier_entry_scores_ = out(E)
    est.outlier_scores_ = np.asarray(nx.to_numpy(nx.sum(E, axis=1) / counts), dtype=np.float64)
    est.outliers_ = out(nx.times_pow2(S, scale.exponent)) if S is not None else None
    est.loss_scale_ = s * scale.s


# --------------------------------------------------------------- observed entries
def observed_dense(est, X, mask, reset: bool):
    """(X validated, X dense with 0 where unobserved, the weights dense with 0 there) from a
    mask or missing values, checked as the masked path checks them. Numpy / scipy input."""
    from sklearn.utils.validation import validate_data

    from ._validation import require_memory
    from .backends import get_backend
    from .masked import check_observed, observed_entries

    if not get_backend(X, mask).host_arrays:
        raise TypeError(f"loss={est.loss!r}/outliers={est.outliers!r} with a mask or missing "
                        "values takes numpy or scipy.sparse X and mask; for torch pass numpy "
                        "arrays with backend='torch' (device=...).")
    X = validate_data(est, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
                      ensure_all_finite="allow-nan", reset=reset)
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    check_observed(obs, type(est).__name__)
    n, m = obs.shape
    require_memory(5 * n * m * X.dtype.itemsize, "a robust fit of observed entries needs "
                   "about {gb} GB (dense X, weights, WH, residual, target)",
                   "fit a sample of the rows, or without loss/outliers (masked solvers keep "
                   "only the observed entries).")
    return X, obs.csr().toarray(), obs.csr(obs.weights.astype(X.dtype)).toarray()
