"""Recommendation with NMF: biased rating models, prediction, held-out errors, k-fold splits.

A ratings matrix X (n_users × n_items) is mostly unobserved. :class:`RatingsNMF` fits

    r̂_ij = μ + b_i + c_j + w_i · h_j,      w_i, h_j ≥ 0,

(or, the default ``biased=False``, r̂_ij = w_i · h_j) to the observed entries only, with L2 regularisation,
by alternating exact block updates: every user row [w_i, b_i] and every item column
[h_j, c_j] solves its own small weighted least-squares problem (per-row Gram matrices, the
kernel of the ``masked_als`` solver, the bias coordinate unbounded), and μ is the mean
residual. Each block update is an exact minimisation, so the objective never increases.

Regularisation (``reg_weighting="count"``, the default) is ALS-WR's weighted-λ (Zhou et al.
2008): row i pays ½λ·n_i‖w_i‖², n_i its number of ratings — what an SGD solver such as
Surprise's applies implicitly, once per rating. ``"none"``: ½λ‖w_i‖².

Evaluation helpers work on *observed entries*, not rows: :func:`split_observed` gives k-fold
(train, test) masks over the observed entries of X, :func:`heldout_error` scores any model on a
test mask, :func:`cross_validate_observed` runs both for ``RatingsNMF`` or ``nmfkit.NMF``
(fitted with ``fit(X, mask=train)``); the model-selection module chooses the rank with them.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ._ratings_eval import (  # noqa: F401  (public names of this module)
    _as_observed,
    cross_validate_observed,
    heldout_error,
    mae,
    predict_entries,
    rmse,
    split_observed,
)
from ._topn import TopNMixin, popularity_scores, precision_at_n  # noqa: F401
from .masked import Observed
from .solvers.masked_als import active_rows, solve_rows

__all__ = [
    "RatingsNMF",
    "cross_validate_observed",
    "heldout_error",
    "mae",
    "popularity_scores",
    "precision_at_n",
    "predict_entries",
    "rmse",
    "split_observed",
]


class RatingsNMF(TopNMixin, BaseEstimator):
    """Non-negative matrix factorisation of a partly observed ratings matrix, with biases.

    Parameters
    ----------
    n_components : int, default=15
        Rank k of the non-negative interaction term W H.
    biased : bool, default=False
        True: fit r̂_ij = μ + b_i + c_j + w_i·h_j (global mean, user and item offsets, jointly
        with W and H); False: r̂_ij = w_i·h_j (more accurate on MovieLens-100k, see
        docs/benchmarks.md).
    alpha : float ≥ 0, default=0.1
        L2 weight λ on the factors W and H.
    alpha_bias : float ≥ 0 or None, default=None
        L2 weight on the biases; None: ``alpha``.
    reg_weighting : {"count", "none"}, default="count"
        "count": each row / column pays λ times its number of observed ratings (weighted-λ).
    max_iter : int, default=30
        Alternating sweeps (each updates every row, every column and μ).
    tol : float, default=1e-5
        Stop when the objective's relative decrease over one sweep is below tol.
    inner_max_iter : int, default=5
        Coordinate-descent passes per row problem in each sweep.
    rating_range : None or (low, high), default=None
        Clip predictions to this range.
    init_scale : float, default=0.1
        W and H start uniform in [0, init_scale] (biased) or at √(mean/k)·U(0.5, 1.5) (plain).
    recommend_from : {"interactions", "ratings"}, default="interactions"
        What :meth:`recommend` ranks by. "interactions": an NMF of rank ``n_components`` of
        the 0/1 matrix of who rated what (fitted alongside the ratings model; the PureSVD-style
        top-n model of Cremonesi et al. 2010), which finds the films a user will rate highly
        far better than predicted ratings do (precision@10 on MovieLens-100k 0.24 vs 0.05,
        popularity 0.13: docs/missing.md). "ratings": the predicted ratings (no second fit:
        the choice when only RMSE matters).
    random_state : int, RandomState or None.

    Attributes
    ----------
    components_ : ndarray (k, n_items), H.
    embedding_ : ndarray (n_users, k), W.
    global_mean_ : float, μ (0 when not biased).
    row_bias_ : ndarray (n_users,); col_bias_ : ndarray (n_items,) (zeros when not biased).
    n_iter_ : int; loss_curve_ : list of the objective after each sweep.
    seen_ : scipy.sparse.csr_matrix (n_users, n_items) of bool, the entries fitted (rated).
    item_count_ : ndarray (n_items,), ratings per item in the fitted data.
    interaction_embedding_, interaction_components_ : ndarray (n_users, k), (k, n_items), the
        NMF of the 0/1 rated matrix (``recommend_from="interactions"`` only; else None).
    """

    def __init__(self, n_components=15, *, biased=False, alpha=0.1, alpha_bias=None,
                 reg_weighting="count", max_iter=30, tol=1e-5, inner_max_iter=5,
                 rating_range=None, init_scale=0.1, recommend_from="interactions",
                 random_state=None):
        self.n_components = n_components
        self.biased = biased
        self.alpha = alpha
        self.alpha_bias = alpha_bias
        self.reg_weighting = reg_weighting
        self.max_iter = max_iter
        self.tol = tol
        self.inner_max_iter = inner_max_iter
        self.rating_range = rating_range
        self.init_scale = init_scale
        self.recommend_from = recommend_from
        self.random_state = random_state

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y=None, mask=None, missing_values=None):
        """Fit the ratings model (and, for ``recommend_from="interactions"``, the top-n
        model) to the observed entries of X.

        Parameters
        ----------
        X : {sparse matrix, ndarray} of shape (n_users, n_items)
            Sparse: the stored entries are the ratings; dense: NaN marks a missing rating
            (unless ``mask`` or ``missing_values`` say otherwise).
        y : Ignored
            Not used, present for scikit-learn API consistency.
        mask : {array-like, sparse matrix} of X's shape, default=None
            Boolean or non-negative weights saying which entries are observed (e.g. the
            ``train`` mask of :func:`split_observed`).
        missing_values : float, "unobserved" or None, default=None
            As in :func:`nmfkit.masked.observed_entries`; None: "unobserved" for sparse X,
            NaN for dense X.

        Returns
        -------
        self : object
            The fitted model (``embedding_``, ``components_``, biases, ``seen_``,
            ``item_count_``).
        """
        self._check()
        obs = _as_observed(X, mask, missing_values)
        if obs.nnz == 0:
            raise ValueError("No observed entries to fit.")
        n, m = obs.shape
        k = self.n_components
        rng = check_random_state(self.random_state)
        x, w = obs.values.astype(np.float64), obs.weights.astype(np.float64)
        mu = float(np.average(x, weights=w)) if self.biased else 0.0
        if self.biased:
            W = rng.uniform(0, self.init_scale, (n, k))
            H = rng.uniform(0, self.init_scale, (m, k))
        else:
            s = math.sqrt(max(float(np.mean(x)), 1e-12) / k)
            W, H = s * rng.uniform(0.5, 1.5, (n, k)), s * rng.uniform(0.5, 1.5, (m, k))
        b, c = np.zeros(n), np.zeros(m)
        lam = self.alpha
        lam_b = self.alpha if self.alpha_bias is None else self.alpha_bias
        cnt_r = np.diff(obs.indptr).astype(np.float64)
        cnt_c = np.diff(obs.t_indptr).astype(np.float64)
        if self.reg_weighting == "none":
            cnt_r, cnt_c = np.ones(n), np.ones(m)
        tx, tw, tcols = x[obs.t_perm], w[obs.t_perm], obs.t_indices
        act_r, act_c = active_rows(obs.indptr), active_rows(obs.t_indptr)
        kb = k + 1 if self.biased else k
        free = np.zeros(kb, dtype=bool)
        free[k:] = True
        l2r = np.empty((n, kb))
        l2r[:, :k] = lam * cnt_r[:, None]
        l2c = np.empty((m, kb))
        l2c[:, :k] = lam * cnt_c[:, None]
        if self.biased:
            l2r[:, k] = lam_b * cnt_r
            l2c[:, k] = lam_b * cnt_c
        self.loss_curve_ = []
        prev = None
        for it in range(1, self.max_iter + 1):
            # users: [w_i, b_i] against [h_j, 1], target x − μ − c_j
            Fr = np.column_stack([W, b]) if self.biased else W
            Oc = np.column_stack([H, np.ones(m)]) if self.biased else H
            solve_rows(Fr, obs.indptr, obs.indices, x - mu - c[obs.indices], w, Oc, 0.0, l2r,
                       self.inner_max_iter, 0.0, free if self.biased else None, act_r)
            W, b = (Fr[:, :k], Fr[:, k].copy()) if self.biased else (Fr, b)
            # items: [h_j, c_j] against [w_i, 1], target x − μ − b_i
            Fc = np.column_stack([H, c]) if self.biased else H
            Or = np.column_stack([W, np.ones(n)]) if self.biased else W
            solve_rows(Fc, obs.t_indptr, tcols, tx - mu - b[tcols], tw, Or, 0.0, l2c,
                       self.inner_max_iter, 0.0, free if self.biased else None, act_c)
            H, c = (Fc[:, :k], Fc[:, k].copy()) if self.biased else (Fc, c)
            W, H = np.ascontiguousarray(W), np.ascontiguousarray(H)
            pred = predict_entries(W, H.T, obs.rows, obs.indices, row_bias=b, col_bias=c)
            if self.biased:
                mu = float(np.average(x - pred, weights=w))
            res = x - pred - mu
            f = 0.5 * float(np.dot(w, res * res)) + 0.5 * (
                lam * (float(np.dot(cnt_r, (W * W).sum(1))) + float(np.dot(cnt_c, (H * H).sum(1))))
                + lam_b * (float(np.dot(cnt_r, b * b)) + float(np.dot(cnt_c, c * c)))
            )
            self.loss_curve_.append(f)
            if prev is not None and prev - f <= self.tol * abs(prev):
                break
            prev = f
        self.n_iter_ = it
        self.embedding_, self.components_ = W, np.ascontiguousarray(H.T)
        self.global_mean_, self.row_bias_, self.col_bias_ = mu, b, c
        self.n_features_in_ = m
        self._fit_interactions(obs)
        return self

    def _fit_interactions(self, obs: Observed) -> None:
        """Who rated what (0/1) and, for top-n lists, an NMF of that matrix."""
        keep = obs.weights > 0
        ones = keep.astype(np.float64)
        B = sp.csr_matrix((ones, obs.indices, obs.indptr), shape=obs.shape)
        B.eliminate_zeros()
        self.seen_ = B.astype(bool)
        self.item_count_ = popularity_scores(B).astype(np.int64)
        self.interaction_embedding_ = self.interaction_components_ = None
        if self.recommend_from == "interactions":
            from ._estimator import NMF

            k = min(self.n_components, *B.shape)
            nmf = NMF(k, init="nndsvd", max_iter=400, tol=1e-3,
                      random_state=self.random_state)
            self.interaction_embedding_ = nmf.fit_transform(B)
            self.interaction_components_ = nmf.components_

    def _check(self):
        if not (isinstance(self.n_components, (int, np.integer)) and self.n_components >= 1):
            raise ValueError(f"n_components must be an int >= 1, got {self.n_components!r}.")
        for name in ("alpha", "init_scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise ValueError(f"{name} must be a float >= 0, got {v!r}.")
        if self.recommend_from not in ("interactions", "ratings"):
            raise ValueError(f"recommend_from must be 'interactions' or 'ratings', got "
                             f"{self.recommend_from!r}.")
        if self.reg_weighting not in ("count", "none"):
            raise ValueError(
                f"reg_weighting must be 'count' or 'none', got {self.reg_weighting!r}."
            )
        if self.rating_range is not None and not (
            len(self.rating_range) == 2 and self.rating_range[0] < self.rating_range[1]
        ):
            raise ValueError(
                f"rating_range must be (low, high) with low < high, got {self.rating_range!r}."
            )

    # ---------------------------------------------------------------- prediction
    def predict(self, rows, cols):
        """Predicted ratings at (user, item) pairs.

        Parameters
        ----------
        rows, cols : array-like of int, same length
            The users (rows of X) and items (columns of X) to predict.

        Returns
        -------
        ndarray of shape (len(rows),)
            μ + b_i + c_j + w_i·h_j, clipped to ``rating_range``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "components_")
        return predict_entries(
            self.embedding_, self.components_, rows, cols, global_mean=self.global_mean_,
            row_bias=self.row_bias_, col_bias=self.col_bias_, clip=self.rating_range,
        )

    def predict_matrix(self, rows=None):
        """Predicted ratings of whole users' rows, dense.

        Parameters
        ----------
        rows : array-like of int or None, default=None
            The users; None: all (use :meth:`predict` or :meth:`recommend_many` for a large
            catalogue).

        Returns
        -------
        ndarray of shape (len(rows), n_items)
            Predicted ratings, clipped to ``rating_range``.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "components_")
        rows = np.arange(self.embedding_.shape[0]) if rows is None else np.asarray(rows)
        from ._validation import require_memory

        m = self.components_.shape[1]
        require_memory(8 * rows.size * m,
                       f"predict_matrix for {rows.size} users × {m} items needs about {{gb}} GB",
                       "pass fewer rows, predict the entries you need with predict(rows, "
                       "cols), or use recommend_many (scored by blocks of users).")
        P = self.embedding_[rows] @ self.components_
        P += self.global_mean_ + self.row_bias_[rows, None] + self.col_bias_[None, :]
        if self.rating_range is not None:
            np.clip(P, *self.rating_range, out=P)
        return P

    def score(self, X, y=None, mask=None):
        """−RMSE at the observed entries of X (greater is better, scikit-learn's convention).

        Parameters
        ----------
        X : {sparse matrix, ndarray} of shape (n_users, n_items)
            Ratings, as in :meth:`fit`.
        y : Ignored
            Not used, present for scikit-learn API consistency.
        mask : {array-like, sparse matrix} of X's shape, default=None
            The entries to score (e.g. the ``test`` mask of :func:`split_observed`).

        Returns
        -------
        float
            Minus the root mean squared error.
        """
        obs = _as_observed(X, mask)
        return -rmse(obs.values, self.predict(obs.rows, obs.indices))
