"""Scoring ratings models on held-out observed entries: RMSE / MAE, k-fold splits over the
observed entries (not rows), predictions at given entries, and the cross-validation loop.

Behind :mod:`nmfkit.recommend`, which re-exports every public name here.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .masked import Observed, observed_entries

__all__ = ["cross_validate_observed", "heldout_error", "mae", "predict_entries", "rmse",
           "split_observed"]


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


def predict_entries(W, H, rows, cols, *, global_mean=0.0, row_bias=None, col_bias=None,
                    clip=None, block: int = 65536):
    """Predictions μ + b_i + c_j + (WH)_ij at the given (row, column) pairs.

    Parameters
    ----------
    W : ndarray (n_samples, k); H : ndarray (k, n_features).
    rows, cols : int arrays of the same length (the entries to predict).
    global_mean, row_bias (n_samples,), col_bias (n_features,) : optional offsets.
    clip : None or (low, high), the rating range.

    Returns
    -------
    ndarray of the predictions, float64, O(len(rows)·k) time, never the whole matrix.
    """
    rows, cols = np.asarray(rows), np.asarray(cols)
    Ht = np.ascontiguousarray(np.asarray(H).T)
    out = np.empty(rows.shape[0], dtype=np.float64)
    for s in range(0, rows.shape[0], block):
        e = min(s + block, rows.shape[0])
        out[s:e] = np.einsum("ij,ij->i", W[rows[s:e]], Ht[cols[s:e]])
    out += global_mean
    if row_bias is not None:
        out += row_bias[rows]
    if col_bias is not None:
        out += col_bias[cols]
    if clip is not None:
        np.clip(out, clip[0], clip[1], out=out)
    return out


def _as_observed(X, mask=None, missing_values=None) -> Observed:
    if isinstance(X, Observed):
        return X
    if missing_values is None and mask is None:
        missing_values = "unobserved" if sp.issparse(X) else np.nan
    if not sp.issparse(X):
        X = np.asarray(X, dtype=np.float64)
    return observed_entries(X, mask=mask, missing_values=missing_values)


def split_observed(X, *, n_splits: int = 5, mask=None, missing_values=None,
                   random_state=None):
    """k-fold splits over the observed entries of X (not over rows).

    Each observed entry lands in exactly one test fold; rows and columns are not held out
    whole. Yields ``(train, test)`` boolean CSR matrices of X's shape, ready for
    ``NMF(...).fit(X, mask=train)`` and :func:`heldout_error` (..., test).

    Parameters
    ----------
    X : sparse matrix (stored entries observed, unless ``missing_values``/``mask`` say
        otherwise), dense ndarray (NaN = missing; every entry observed when there is no NaN),
        or an :class:`nmfkit.masked.Observed`.
    n_splits : int ≥ 2.
    mask, missing_values : as in :func:`nmfkit.masked.observed_entries`.
    random_state : int, RandomState or None, for the shuffle.
    """
    if not (isinstance(n_splits, int) and n_splits >= 2):
        raise ValueError(f"n_splits must be an int >= 2, got {n_splits!r}.")
    obs = _as_observed(X, mask, missing_values)
    if obs.nnz < n_splits:
        raise ValueError(
            f"Cannot split {obs.nnz} observed entries into n_splits={n_splits} folds; "
            "use fewer folds."
        )
    rng = check_random_state(random_state)
    fold = np.arange(obs.nnz) % n_splits
    rng.shuffle(fold)
    for f in range(n_splits):
        test = fold == f
        yield (_bool_csr(obs, ~test), _bool_csr(obs, test))


def _bool_csr(obs: Observed, keep) -> sp.csr_matrix:
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (obs.rows[keep], obs.indices[keep])),
        shape=obs.shape,
    )


def _entries(X, test) -> tuple:
    """(rows, cols, true values) of the entries ``test`` selects in X."""
    T = sp.coo_matrix(test)
    r, c = T.row, T.col
    vals = np.asarray(X[r, c], dtype=np.float64).ravel() if sp.issparse(X) else X[r, c]
    return r, c, np.asarray(vals, dtype=np.float64)


def heldout_error(model, X, test, *, metric: str = "rmse", clip=None) -> float:
    """RMSE or MAE of a fitted model at the entries ``test`` (a boolean mask) of X.

    Parameters
    ----------
    model : a fitted :class:`RatingsNMF`, or a pair ``(W, H)`` — for ``nmfkit.NMF`` pass
        ``(est.fit_transform(X, mask=train), est.components_)``.
    X : the data (sparse or dense), holding the true values at the test entries.
    test : boolean matrix of X's shape (e.g. from :func:`split_observed`).
    metric : "rmse" or "mae".
    clip : None or (low, high), applied to (W, H) predictions.
    """
    r, c, y = _entries(X, test)
    if hasattr(model, "predict"):  # a fitted RatingsNMF; else a pair (W, H)
        pred = model.predict(r, c)
    else:
        W, H = model
        pred = predict_entries(W, H, r, c, clip=clip)
    if metric == "rmse":
        return rmse(y, pred)
    if metric == "mae":
        return mae(y, pred)
    raise ValueError(f"metric must be 'rmse' or 'mae', got {metric!r}.")


def cross_validate_observed(estimator, X, *, n_splits: int = 5, mask=None,
                            missing_values=None, random_state=None, clip=None) -> dict:
    """k-fold cross-validation over observed entries; returns per-fold RMSE, MAE, fit time.

    ``estimator`` is a :class:`RatingsNMF` (fitted on the training mask) or an
    ``nmfkit.NMF`` (fitted with ``fit_transform(X, mask=train)``; its predictions are WH,
    clipped to ``clip``). A clone is fitted for every fold.
    """
    from sklearn.base import clone

    Xv = X
    if not sp.issparse(X):
        Xv = np.asarray(X, dtype=np.float64)
    out = {"rmse": [], "mae": [], "fit_time": []}
    for train, test in split_observed(Xv, n_splits=n_splits, mask=mask,
                                      missing_values=missing_values, random_state=random_state):
        est = clone(estimator)
        t0 = time.perf_counter()
        if hasattr(est, "predict"):  # a RatingsNMF: predicts its own entries
            est.fit(Xv, mask=train)
            model = est
        else:
            Xf = Xv
            if not sp.issparse(Xv):
                Xf = np.where(np.isnan(Xv), 0.0, Xv)  # masked out anyway
            W = est.fit_transform(Xf, mask=train)
            model = (W, est.components_)
        out["fit_time"].append(time.perf_counter() - t0)
        out["rmse"].append(heldout_error(model, Xv, test, metric="rmse", clip=clip))
        out["mae"].append(heldout_error(model, Xv, test, metric="mae", clip=clip))
    return out
