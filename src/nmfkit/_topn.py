"""Top-n recommendation from a fitted factor model: rank each user's unseen items, score lists.

Behind :meth:`nmfkit.recommend.RatingsNMF.recommend`. Scores come from a callable that returns
the score rows of a block of users, so the whole users × items matrix is never formed: a block
holds at most ``_BLOCK_ENTRIES`` scores. Items a user has rated are dropped (``exclude_seen``)
and so are items with fewer than ``min_count`` ratings in the training data (a popularity floor:
a film rated by three people has a predicted rating nobody should trust).

:func:`precision_at_n` scores lists against held-out ratings (a held-out rating at or above a
threshold counts as a hit) and :func:`popularity_scores` is the usual baseline (the most-rated
items first).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .backends import row_blocks

__all__ = ["popularity_scores", "precision_at_n", "top_n"]

# scores of at most this many (user, item) pairs are held at once (32 MB of float64)
_BLOCK_ENTRIES = 1 << 22


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (the length of each list), got {n!r}.")
    return int(n)


def _check_users(users, n_users: int) -> np.ndarray:
    u = np.asarray(users)
    if u.ndim == 0:
        u = u.reshape(1)
    if u.ndim != 1 or (u.size and (u.dtype.kind not in "iu")):
        raise ValueError(
            f"users must be row indices (ints in 0..{n_users - 1}), got {users!r}; map your "
            "user ids to rows first (e.g. with Ratings.user_ids)."
        )
    if u.size and (u.min() < 0 or u.max() >= n_users):
        bad = u[(u < 0) | (u >= n_users)][0]
        raise ValueError(f"user row {int(bad)} is out of range: the model has {n_users} users "
                         f"(rows 0..{n_users - 1}).")
    return u.astype(np.intp)


def top_n(score_rows, users, n: int, *, n_users: int, n_items: int, seen=None,
          item_count=None, min_count=None) -> tuple[list, list]:
    """The ``n`` best-scored allowed items of each user, by blocks of users.

    Parameters
    ----------
    score_rows : callable
        ``score_rows(rows)`` returns a float ndarray (len(rows), n_items) of scores.
    users : int or sequence of int
        Row indices of the users.
    n : int ≥ 1
        Length of each list (shorter when a user has fewer allowed items).
    n_users, n_items : int
        The model's shape.
    seen : sparse matrix (n_users, n_items) or None
        Stored entries are the items each user has rated; they are excluded. None: none are.
    item_count : ndarray (n_items,) or None
        Ratings per item, for ``min_count``.
    min_count : int ≥ 0 or None
        Drop items with fewer ratings than this.

    Returns
    -------
    items : list of ndarray of int, one per user, best first.
    scores : list of ndarray of float, the matching scores (finite).
    """
    n = _check_n(n)
    users = _check_users(users, n_users)
    allowed = np.ones(n_items, dtype=bool)
    if min_count is not None:
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) \
                or min_count < 0:
            raise ValueError(f"min_count must be None or an int >= 0, got {min_count!r}.")
        allowed &= np.asarray(item_count) >= min_count
    seen = None if seen is None else sp.csr_matrix(seen)
    items_out, scores_out = [], []
    for block in row_blocks(users.size, n_items, _BLOCK_ENTRIES):
        rows = users[block]
        S = np.array(score_rows(rows), dtype=np.float64, copy=True)
        ok = np.broadcast_to(allowed, S.shape).copy()
        ok &= np.isfinite(S)
        if seen is not None:
            sub = seen[rows].tocoo()
            ok[sub.row, sub.col] = False
        S[~ok] = -np.inf
        m = min(n, n_items)
        part = np.argpartition(-S, m - 1, axis=1)[:, :m] if m < n_items else \
            np.tile(np.arange(n_items), (rows.size, 1))
        for r in range(rows.size):
            cand = part[r]
            cand = cand[np.argsort(-S[r, cand], kind="stable")]
            cand = cand[np.isfinite(S[r, cand])]
            items_out.append(cand)
            scores_out.append(S[r, cand])
    return items_out, scores_out


def popularity_scores(seen) -> np.ndarray:
    """Ratings per item (n_items,), float: the most-rated-items baseline's score of every item."""
    return np.asarray(sp.csr_matrix(seen).getnnz(axis=0), dtype=np.float64)


def precision_at_n(recommended, X, test, *, users=None, n: int = 10,
                   threshold: float = 4.0) -> float:
    """Mean precision@n of top-n lists against held-out ratings.

    Parameters
    ----------
    recommended : list of int sequences, one list per user (in the order of ``users``).
    X : sparse (n_users, n_items), the ratings (holding the held-out values).
    test : boolean sparse mask of X's shape, the held-out ratings.
    users : sequence of int or None, the rows the lists belong to; None: every row.
    n : int, the list length the precision is taken at (a shorter list counts its missing
        places as misses).
    threshold : float, a held-out rating ≥ threshold is a hit (4 for MovieLens' 1–5 scale).

    Returns
    -------
    float in [0, 1]: hits / n averaged over the users with at least one held-out hit-worthy
    rating (users with none cannot score and are left out).
    """
    n = _check_n(n)
    T = sp.csr_matrix(test, dtype=bool)
    relevant = sp.csr_matrix(sp.csr_matrix(X).multiply(T) >= threshold)
    users = np.arange(X.shape[0]) if users is None else np.asarray(users)
    if len(recommended) != users.size:
        raise ValueError(f"got {len(recommended)} lists for {users.size} users.")
    hits, counted = 0, 0
    for u, rec in zip(users, recommended):
        rel = relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
        if rel.size == 0:
            continue
        counted += 1
        hits += np.isin(np.asarray(rec)[:n], rel).sum()
    return float(hits / (n * counted)) if counted else 0.0


class TopNMixin:
    """``recommend`` and ``recommend_many`` for a fitted ratings model (RatingsNMF).

    Needs ``seen_``, ``item_count_``, ``recommend_from`` and either the interaction factors
    (``interaction_embedding_``, ``interaction_components_``) or ``predict_matrix``.
    """

    def _score_rows(self, rows):
        if self.recommend_from == "interactions":
            return self.interaction_embedding_[rows] @ self.interaction_components_
        return self.predict_matrix(rows=rows)

    def recommend_many(self, users=None, n: int = 10, *, exclude_seen: bool = True,
                       min_count=None, item_names=None) -> list:
        """Top-n lists for many users at once (scored by blocks of users, never the whole matrix).

        Parameters
        ----------
        users : sequence of int or None, default=None
            Row indices of the users (0 .. n_users − 1); None: every user.
        n : int, default=10
            Items per list.
        exclude_seen : bool, default=True
            Leave out the items each user rated in the fitted data.
        min_count : int or None, default=None
            Leave out items with fewer than ``min_count`` ratings in the fitted data.
        item_names : sequence of str or None, default=None
            A name for every item (e.g. ``Ratings.item_names``); lists then hold names instead
            of column indices.

        Returns
        -------
        list, one list per user of ``(item, score)`` pairs, best first. ``item`` is the column
        index (or its name); ``score`` the interaction score (``recommend_from="interactions"``)
        or the predicted rating. A list is shorter than ``n`` only when fewer items are allowed.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "seen_")
        n_users, n_items = self.seen_.shape
        if item_names is not None:
            if isinstance(item_names, str) or len(item_names) != n_items:
                got = "a string" if isinstance(item_names, str) else f"{len(item_names)} names"
                raise ValueError(f"item_names must give one name per item ({n_items}); "
                                 f"got {got}.")
            item_names = np.asarray(item_names, dtype=object)
        users = np.arange(n_users) if users is None else users
        items, scores = top_n(self._score_rows, users, n, n_users=n_users, n_items=n_items,
                              seen=self.seen_ if exclude_seen else None,
                              item_count=self.item_count_, min_count=min_count)
        out = []
        for it, sc in zip(items, scores):
            keys = item_names[it] if item_names is not None else it
            out.append([(k if item_names is not None else int(k), float(v))
                        for k, v in zip(keys, sc)])
        return out

    def recommend(self, user: int, n: int = 10, *, exclude_seen: bool = True, min_count=None,
                  item_names=None) -> list:
        """The top-n items for one user.

        Parameters
        ----------
        user : int
            Row index of the user (0 .. n_users − 1).
        n, exclude_seen, min_count, item_names
            As in :meth:`recommend_many`.

        Returns
        -------
        list of ``(item, score)`` pairs, best first.
        """
        if isinstance(user, bool) or not isinstance(user, (int, np.integer)):
            raise ValueError(f"user must be one row index (an int), got {user!r}; for many "
                             "users use recommend_many.")
        return self.recommend_many([user], n, exclude_seen=exclude_seen, min_count=min_count,
                                   item_names=item_names)[0]
