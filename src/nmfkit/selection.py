"""Choosing the rank k and trusting the result: one function, ``select_rank``, and its result.

For each candidate k, ``select_rank`` can measure

- ``"cv"``: held-out reconstruction error. With masked fitting (``NMF.fit(X, mask=M)``) random
  entries are held out and predicted from a fit on the rest (the method of RcppML); without it,
  or with ``cv="bicv"``, bi-cross-validation (Owen & Perry 2009): a block of rows × columns is
  held out, NMF is fitted on the complement D ≈ W_D H_D, and the block is predicted as
  W_A H_A with W_A = NNLS(B, H_D) and H_A = NNLS(C, W_D) from the two off-diagonal blocks.
- ``"consensus"``: cophenetic correlation and dispersion of the consensus matrix over
  ``n_runs`` random restarts (Brunet et al. 2004; Kim & Park 2007);
- ``"stability"``: the mean Amari-type distance between the components of the restarts;
- ``"explained_variance"``: of the best restart, and the elbow of that curve;
- ``"permutation"``: the same measures on X with each column permuted independently (the R NMF
  package's baseline): a rank is worth adding while it gains more on X than on noise.

The result holds a table over k, the suggestion of each criterion, one ``suggested_k`` with
its reason, and plot-ready curves and reordered consensus matrices.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._consensus import (
    amari_distance,
    check_consensus_memory,
    connectivity_matrix,
    consensus_components,
    consensus_matrix,
    cophenetic_correlation,
    dispersion,
    match_components,
    reorder_consensus,
    stability,
)
from ._cv import cross_validation_error, permute_columns
from ._rank_verdict import METHODS  # noqa: F401  (re-exported for the CLI)
from ._rank_verdict import (
    BETTER,
    check_count,
    check_ks,
    check_methods,
    check_restarts_memory,
    notes,
)
from ._rank_verdict import format_table as _format_table
from ._rank_verdict import plot as _plot
from ._consensus import Restarts, fit_restarts
from .losses import beta_divergence
from .metrics import explained_variance

__all__ = [
    "select_rank",
    "RankSelection",
    "cross_validation_error",
    "consensus_nmf",
    "permute_columns",
    "Restarts",
    "fit_restarts",
    "connectivity_matrix",
    "consensus_matrix",
    "cophenetic_correlation",
    "dispersion",
    "reorder_consensus",
    "match_components",
    "amari_distance",
    "stability",
    "consensus_components",
]

logger = logging.getLogger("nmfkit")

_PRIORITY = ("cv", "cophenetic", "permutation", "explained_variance", "stability")


@dataclass
class RankSelection:
    """What :func:`select_rank` found.

    Attributes
    ----------
    ks : ndarray of int, the candidate ranks, sorted, without repeats.
    table : dict of str → ndarray (len(ks),), one column per measure (NaN where not measured):
        "cv_error", "cv_se", "cophenetic", "dispersion", "amari", "explained_variance",
        "relative_error", "objective", "perm_explained_variance", "perm_cophenetic",
        "n_not_converged".
    suggested_k : int
    reason : str, why that k (the criterion used and its values).
    suggestions : dict of criterion → k, what each criterion alone suggests.
    cv_method : "mask", "bicv" or None.
    consensus : dict k → :func:`reorder_consensus` output ("matrix", "order", "linkage").
    notes : list of str, warnings about the verdict: the suggested k at the edge of the tried
        range (widen it), restarts that stopped at ``max_iter``. Each is also issued as a
        ``UserWarning`` by :func:`select_rank`.
    better : dict of column → "higher" or "lower", the way each measure improves.
    """

    ks: np.ndarray
    table: dict
    suggested_k: int
    reason: str
    suggestions: dict
    cv_method: str | None = None
    consensus: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    better: dict = field(default_factory=lambda: dict(BETTER))

    @property
    def at_edge(self) -> bool:
        """True when the suggested k is the smallest or largest rank tried (with > 1 tried)."""
        return self.ks.size > 1 and self.suggested_k in (int(self.ks[0]), int(self.ks[-1]))

    def curves(self) -> dict:
        """Plot-ready curves: {"k": [...], measure: [...]} with only the measured columns."""
        out = {"k": [int(k) for k in self.ks]}
        for name, col in self.table.items():
            if not np.all(np.isnan(col)):
                out[name] = [None if np.isnan(v) else float(v) for v in col]
        return out

    def to_frame(self):
        """The table as a pandas DataFrame indexed by k (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.curves()).set_index("k")

    def __str__(self) -> str:
        return _format_table(self.curves(), self.suggested_k, self.reason, self.notes)

    def plot(self, *, title: str = "Rank selection"):
        """Every measured criterion against k, each panel titled with the way it improves and
        the suggested k marked (dashed line). Needs matplotlib; returns the Figure."""
        return _plot(self, title=title)


def consensus_nmf(X, n_components: int, *, n_runs: int = 20, density_threshold: float = 0.5,
                  random_state=None, n_jobs=None, **nmf_params):
    """cNMF: consensus components over ``n_runs`` restarts, then W refitted with H fixed.

    Returns
    -------
    W : ndarray (n_samples, n_components)
    H : ndarray (n_components, n_features), rows sum to 1 (see :func:`consensus_components`).
    info : dict from :func:`consensus_components` plus "restarts" (the :class:`Restarts`).
    """
    from ._estimator import non_negative_factorization

    n_runs = check_count("n_runs", n_runs)
    n_components = check_count("n_components", n_components)
    runs = fit_restarts(X, n_components, n_runs=n_runs, random_state=random_state,
                        n_jobs=n_jobs, **nmf_params)
    H, info = consensus_components(runs, n_components, density_threshold=density_threshold,
                                   random_state=0)
    dtype = X.dtype if hasattr(X, "dtype") else np.float64
    params = {k: v for k, v in nmf_params.items() if k not in ("n_init", "n_jobs", "init")}
    W, _, _ = non_negative_factorization(X, H=H.astype(dtype), n_components=n_components,
                                         update_H=False, **params)
    info["restarts"] = runs
    return W, H, info


def _progress(progress, total):
    """A function step(message) that reports one finished step: to ``progress(done, total,
    message)`` when it is callable, else on a tqdm bar (or the log without tqdm), or not at
    all when progress is off."""
    if not progress:
        return lambda msg: None
    if not callable(progress):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            def progress(done, total, msg):
                logger.info("select_rank %d/%d: %s", done, total, msg)
        else:
            bar = tqdm(total=total, desc="select_rank")

            def step(msg):
                bar.set_postfix_str(msg)
                bar.update(1)
                if bar.n >= total:
                    bar.close()

            return step
    state = {"done": 0}

    def step(msg):
        state["done"] += 1
        progress(state["done"], total, msg)

    return step


def _elbow(ks, y) -> int:
    """The k farthest from the chord joining the first and last points of the curve."""
    ks, y = np.asarray(ks, float), np.asarray(y, float)
    if len(ks) < 3 or np.ptp(y) == 0:
        return int(ks[int(np.argmax(y))])
    xs, ys = (ks - ks[0]) / np.ptp(ks), (y - y.min()) / np.ptp(y)
    dx, dy = xs[-1] - xs[0], ys[-1] - ys[0]
    dist = np.abs(dy * (xs - xs[0]) - dx * (ys - ys[0]))
    return int(ks[int(np.argmax(dist))])


def _suggest(ks, t) -> dict:
    out = {}
    cv = t["cv_error"]
    if not np.all(np.isnan(cv)):
        # one-standard-error rule: the smallest k within one SE of the lowest error
        best = int(np.nanargmin(cv))
        out["cv"] = int(ks[int(np.flatnonzero(cv <= cv[best] + t["cv_se"][best])[0])])
    coph = t["cophenetic"]
    if not np.all(np.isnan(coph)) and len(ks) > 1:
        # the first k at which the cophenetic correlation starts decreasing (Brunet et al.
        # 2004 as stated by Hutchins et al. 2008 and the R NMF package); else its maximum
        falls = np.flatnonzero(coph[1:] < coph[:-1] - 1e-12)
        out["cophenetic"] = int(ks[falls[0]] if falls.size else ks[int(np.nanargmax(coph))])
    ev, pev = t["explained_variance"], t["perm_explained_variance"]
    if not np.all(np.isnan(pev)) and len(ks) > 1:
        gain, pgain = np.diff(ev), np.diff(pev)
        below = np.flatnonzero(gain <= pgain)
        out["permutation"] = int(ks[below[0]] if below.size else ks[-1])
    if not np.all(np.isnan(ev)):
        out["explained_variance"] = _elbow(ks, ev)
    if not np.all(np.isnan(t["amari"])):
        out["stability"] = int(ks[int(np.nanargmin(t["amari"]))])
    return out


_WHY = {
    "cv": "the smallest k whose held-out error ({cv_method}) is within one standard error "
          "of the lowest",
    "cophenetic": "the first k at which the cophenetic correlation starts decreasing",
    "permutation": "the last k whose gain in explained variance beats the gain on "
                   "column-permuted data",
    "explained_variance": "the elbow of the explained-variance curve",
    "stability": "the most stable components (lowest Amari-type distance across restarts)",
}
_COLUMN = {"cv": "cv_error", "cophenetic": "cophenetic", "permutation": "explained_variance",
           "explained_variance": "explained_variance", "stability": "amari"}


def select_rank(X, ks=range(2, 9), *, methods=("cv", "consensus", "stability",
                "explained_variance", "permutation"), n_runs: int = 10, cv: str = "auto",
                cv_folds: int = 4, holdout: float = 0.05, random_state=None, n_jobs=None,
                progress=False, **nmf_params) -> RankSelection:
    """Measure every candidate rank and suggest one.

    Parameters
    ----------
    X : array-like or sparse (n_samples, n_features), non-negative.
    ks : iterable of int, the candidate ranks (default 2..8).
    methods : subset of {"cv", "consensus", "stability", "explained_variance", "permutation"}.
    n_runs : restarts per k (random init) for consensus, stability and explained variance; the
        permutation baseline fits the permuted data as often.
    cv, cv_folds, holdout : the cross-validation method and its folds, see
        :func:`cross_validation_error`.
    random_state : int, RandomState or None.
    n_jobs : joblib workers for the restarts (threads).
    progress : False, True (a tqdm bar when tqdm is installed, else INFO logs on "nmfkit"), or a
        callable ``progress(done, total, message)``.
    **nmf_params : :class:`nmfkit.NMF` parameters for every fit (solver, beta_loss, max_iter,
        tol, alpha_W, ...).

    Returns
    -------
    RankSelection. ``suggested_k`` follows the first available criterion among cross-validation,
    cophenetic correlation, permutation baseline, explained-variance elbow and stability; every
    criterion's own choice is in ``suggestions``.
    """
    if not hasattr(X, "shape") or len(X.shape) != 2:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D matrix (n_samples, n_features); got {X.ndim}-D.")
    ks = check_ks(ks, X.shape)
    methods = check_methods(methods)
    n_runs = check_count("n_runs", n_runs)
    cv_folds = check_count("cv_folds", cv_folds)
    if "consensus" in methods:  # one kept (n, n) matrix per k
        check_consensus_memory(X.shape[0], n_matrices=int(ks.size))
    if set(methods) - {"cv"}:
        check_restarts_memory(X.shape, int(ks[-1]), n_runs)
    rng = check_random_state(random_state)
    cols = ["cv_error", "cv_se", "cophenetic", "dispersion", "amari", "explained_variance",
            "relative_error", "objective", "perm_explained_variance", "perm_cophenetic",
            "n_not_converged"]
    t = {c: np.full(ks.size, np.nan) for c in cols}
    run_methods = {"consensus", "stability", "explained_variance", "permutation"}
    want_runs = bool(run_methods & set(methods))
    stages = ("cv" in methods) + want_runs + ("permutation" in methods)
    step = _progress(progress, stages * ks.size)
    Xp = permute_columns(X, rng) if "permutation" in methods else None
    consensus, cv_method = {}, None
    cv_seed = rng.randint(2**31 - 1)  # the same held-out entries for every k: paired errors
    for i, k in enumerate(ks):
        seed = rng.randint(2**31 - 1)
        if want_runs:
            runs = fit_restarts(X, k, n_runs=n_runs, random_state=seed, n_jobs=n_jobs,
                                **nmf_params)
            W, H = runs.best
            t["objective"][i] = runs.objectives.min()
            t["n_not_converged"][i] = runs.n_not_converged
            t["explained_variance"][i] = explained_variance(X, W, H)
            fro = math.sqrt(max(float(np.sum(X.multiply(X)) if sp.issparse(X)
                                      else np.sum(np.square(X, dtype=np.float64))), 0.0))
            t["relative_error"][i] = (beta_divergence(X, W, H, 2.0, square_root=True) / fro
                                      if fro > 0 else 0.0)
            if "consensus" in methods:
                C = consensus_matrix(runs)
                t["cophenetic"][i] = cophenetic_correlation(C)
                t["dispersion"][i] = dispersion(C)
                consensus[int(k)] = reorder_consensus(C)
            if "stability" in methods:
                t["amari"][i] = stability(runs)["amari"]
            step(f"k={k} restarts")
        if "permutation" in methods:
            prun = fit_restarts(Xp, k, n_runs=n_runs, random_state=seed, n_jobs=n_jobs,
                                **nmf_params)
            t["perm_explained_variance"][i] = explained_variance(Xp, *prun.best)
            if "consensus" in methods:
                t["perm_cophenetic"][i] = cophenetic_correlation(consensus_matrix(prun))
            step(f"k={k} permuted")
        if "cv" in methods:
            res = cross_validation_error(X, k, method=cv, n_folds=cv_folds, holdout=holdout,
                                         random_state=cv_seed, **nmf_params)
            t["cv_error"][i], t["cv_se"][i], cv_method = res["error"], res["se"], res["method"]
            step(f"k={k} cv")
    suggestions = _suggest(ks, t)
    if not suggestions:
        raise ValueError("no criterion could be computed; pass at least two ks or more methods.")
    crit = next(c for c in _PRIORITY if c in suggestions)
    k_best = suggestions[crit]
    col = t[_COLUMN[crit]]
    vals = ", ".join(f"k={k}: {v:.4g}" for k, v in zip(ks, col) if not np.isnan(v))
    others = [f"{c} → {v}" for c, v in suggestions.items() if c != crit]
    reason = f"{_WHY[crit].format(cv_method=cv_method)}; {_COLUMN[crit]} {vals}"
    if others:
        reason += ". Other criteria: " + ", ".join(others)
    said = notes(ks, t, k_best, crit, n_runs, nmf_params)
    for text in said:
        warnings.warn(text, UserWarning, stacklevel=2)
    return RankSelection(ks=ks, table=t, suggested_k=k_best, reason=reason,
                         suggestions=suggestions, cv_method=cv_method, consensus=consensus,
                         notes=said)
