"""The estimator's side of the extensions: validate and translate the NMF
parameters ``penalties``, ``graph``/``graph_weight``/``graph_neighbors``, ``smoothness``,
``frozen_components`` and ``sparseness_W``/``sparseness_H`` into what ``_fit.factorize``
takes (penalty objects, frozen indices, the nsNMF θ, solver options), and turn the fitted raw
factors back into the public ones (nsNMF: ``components_ = S H``).

Kept out of ``_estimator.py`` so that the shared estimator only wires these two calls.

Backends: everything here but Hoyer's ``sparseness_W``/``sparseness_H`` (solver "nmfsc", a
numpy solver) also runs on the torch backend with the "mu" and "cd" solvers: H may be a
tensor (frozen rows are written on its device), a k-NN graph is built on the host from a copy
of X (neighbour search is scikit-learn's), and the penalties move their affinity to the
factors' device themselves (see :class:`nmfkit.penalties.Graph`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .graph import GRAPH_WEIGHTS, knn_affinity
from .nsnmf import smoothing_matrix_like
from .backends import get_backend
from .penalties import Graph, Penalty

__all__ = ["prepare", "finish"]


def _solver_name(est) -> str:
    """The solver the fit will use ("auto" already resolved by the estimator when it can)."""
    return getattr(est, "_solver", None) or est.solver


def _user_penalties(est, X) -> list:
    pens = list(est.penalties or [])
    n, m = X.shape
    for pen in pens:
        if not isinstance(pen, Penalty):
            raise TypeError(
                f"penalties must be nmfkit.penalties.Penalty objects (L1, L2, Graph, ...), "
                f"got {type(pen).__name__}: {pen!r}."
            )
        if isinstance(pen, Graph):
            N = n if pen.factor == "W" else m
            if pen.size != N:
                what = "n_samples" if pen.factor == "W" else "n_features"
                raise ValueError(
                    f"Graph penalty on {pen.factor} has an affinity of shape "
                    f"{pen.affinity.shape}, but X has {what} = {N}; give an ({N}, {N}) "
                    "affinity."
                )
    return pens


def _graph_penalty(est, X):
    graph, lam = est.graph, float(est.graph_weight)
    if graph is None:
        if lam > 0:
            raise ValueError(
                f"graph_weight={lam!r} needs a graph: set graph to 'binary', 'heat' or "
                "'cosine' (a k-NN graph of X) or to an (n_samples, n_samples) affinity."
            )
        return []
    if lam == 0:
        return []
    if isinstance(graph, str):
        if graph not in GRAPH_WEIGHTS:
            raise ValueError(f"graph must be one of {GRAPH_WEIGHTS} or an affinity matrix, "
                             f"got {graph!r}.")
        X = get_backend(X).to_numpy(X)  # the neighbour search runs on the host (scikit-learn)
        A = knn_affinity(X, n_neighbors=min(est.graph_neighbors, X.shape[0] - 1), weight=graph)
    else:
        A = graph
        A = get_backend(A).to_numpy(A)
        if not sp.issparse(A):
            A = np.asarray(A)
        if A.shape != (X.shape[0], X.shape[0]):
            raise ValueError(
                f"graph affinity has shape {A.shape}, but X has {X.shape[0]} samples; give an "
                f"({X.shape[0]}, {X.shape[0]}) affinity or a string ('binary', 'heat', "
                "'cosine') to build a k-NN graph from X."
            )
    return [Graph(lam, "W", affinity=A)]


def check_frozen(F, H) -> np.ndarray:
    """Validate fixed components F against H's shape; returns F as a 2-D numpy array (a
    tensor F is copied to the host: it is small)."""
    F = np.asarray(get_backend(F).to_numpy(F))
    if F.ndim == 1:
        F = F[np.newaxis, :]
    k, m = H.shape
    if F.ndim != 2 or F.shape[1] != m or not 1 <= F.shape[0] <= k:
        raise ValueError(
            f"frozen_components must have shape (n_frozen, n_features) = (<= {k}, {m}), got "
            f"{F.shape}; n_components counts the frozen components too."
        )
    if not np.all(np.isfinite(F)) or F.min() < 0:
        raise ValueError("frozen_components must be finite and non-negative.")
    return F


def apply_frozen(F, H, scale=None) -> tuple:
    """Write the fixed components into the first rows of H (numpy array or torch tensor, on
    its device); returns their row indices. ``scale`` (a UnitScale): H is at unit scale, F on
    the data's (exact: the scale is a power of two)."""
    F = check_frozen(F, H)
    if scale is not None:
        F = scale.factor_in(F)
    H[: F.shape[0]] = get_backend(H).to_like(F, H)
    return tuple(range(F.shape[0]))


def _frozen(est, X, H, update_H, scale=None):
    F = est.frozen_components
    if F is None or not update_H:
        return ()
    check_frozen(F, H)
    if est.smoothness:
        raise ValueError(
            "frozen_components cannot be combined with smoothness > 0 (nsNMF smooths every "
            "component, so none would stay fixed); use one or the other."
        )
    from .solvers import SOLVERS

    solver = _solver_name(est)
    if not SOLVERS[solver].supports_frozen:
        ok = sorted(n for n, c in SOLVERS.items() if c.supports_frozen)
        raise ValueError(
            f"solver {solver!r} cannot keep frozen_components fixed; solvers that can: {ok}."
        )
    return apply_frozen(F, H, scale)


def check_backend(est, backend: str) -> None:
    """Penalties, graphs, nsNMF and frozen components run on numpy and torch; Hoyer's
    sparseness constraints (solver "nmfsc") on numpy only: say so rather than ignore them."""
    used = [name for name in ("sparseness_W", "sparseness_H")
            if getattr(est, name, None) is not None]
    if backend != "numpy" and used:
        raise ValueError(
            f"{', '.join(used)} (Hoyer's constraint, solver='nmfsc') run on the numpy backend "
            f"only; got backend {backend!r}. Pass numpy arrays (or backend='numpy'), or on "
            "torch use a soft sparseness instead: alpha_W/alpha_H with l1_ratio=1, or "
            "smoothness (nsNMF)."
        )


def user_and_graph_penalties(est, X, update_H: bool) -> list:
    """The active Penalty objects from ``penalties=`` and ``graph=`` (a sample graph only when
    W of the training samples is fitted: new samples in ``transform`` have no graph)."""
    pens = _user_penalties(est, X)
    if update_H:
        pens += _graph_penalty(est, X)
    else:  # new samples: the training sample graph does not apply to them
        pens = [p for p in pens if not (isinstance(p, Graph) and p.factor == "W")]
    return [p for p in pens if p.active]


def prepare(est, X, W, H, update_H: bool, scale=None) -> dict:
    """Keyword arguments for ``_fit.factorize`` from the estimator's extension parameters.

    Writes the frozen components into H's first rows (H is the estimator's own copy).
    Returns a dict with ``penalties`` (extra Penalty objects), ``frozen_H``, ``smoothing``,
    ``solver_options``. When H is fixed (``transform``), sample graphs, smoothing and frozen
    rows do not apply: the fixed H already is the (smoothed) model.
    """
    pens = user_and_graph_penalties(est, X, update_H)
    options = dict(est.solver_options or {})
    targets = {"sparseness_W": est.sparseness_W, "sparseness_H": est.sparseness_H}
    if any(v is not None for v in targets.values()):
        if _solver_name(est) != "nmfsc":
            raise ValueError(
                f"sparseness_W / sparseness_H are constraints that only solver='nmfsc' "
                f"(Hoyer 2004) enforces; got solver={est.solver!r}. Set solver='nmfsc', or "
                "use penalties (alpha_W/alpha_H with l1_ratio=1) for a soft sparseness."
            )
        if update_H:
            options.update({k: v for k, v in targets.items() if v is not None})
        elif targets["sparseness_W"] is not None:
            options["sparseness_W"] = targets["sparseness_W"]
    elif _solver_name(est) == "nmfsc" and update_H:
        raise ValueError(
            "solver='nmfsc' needs a target sparseness: set sparseness_W and/or sparseness_H "
            "(floats in [0, 1])."
        )
    return {
        "penalties": pens,
        "frozen_H": _frozen(est, X, H, update_H, scale),
        "smoothing": float(est.smoothness) if update_H else 0.0,
        "solver_options": options or None,
    }


def finish(est, H, update_H: bool):
    """The public components from the fitted raw H (nsNMF: S H), storing the raw H."""
    if not update_H:
        return H
    if not est.smoothness:  # a refit without smoothing must not keep a stale raw H
        for name in ("components_unsmoothed_", "smoothing_matrix_"):
            if hasattr(est, name):
                delattr(est, name)
        return H
    S = smoothing_matrix_like(H, float(est.smoothness))  # H's framework, device, dtype
    est.components_unsmoothed_ = H
    est.smoothing_matrix_ = S
    return S @ H
