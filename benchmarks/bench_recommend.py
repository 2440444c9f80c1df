"""MovieLens-100k top-10 lists: precision@10 of RatingsNMF's recommend paths vs popularity.

Protocol
--------
* Data: ml-100k from the RecBole wheel (``pip install --no-deps recbole==1.2.1``), 943 users ×
  1682 films, 100,000 ratings 1–5. Folds: ``split_observed(n_splits=5, random_state=0)``
  (a random partition of the ratings); every fold is used once as the held-out set.
* Models, fitted on the training ratings of each fold: ``RatingsNMF(15, rating_range=(1, 5),
  random_state=0)`` with ``recommend_from="interactions"`` (the default: an NMF of the 0/1
  rated matrix ranks the lists) and ``recommend_from="ratings"`` (lists ranked by predicted
  rating); the baseline ranks films by their number of training ratings (most-rated first).
* Every list has 10 films the user did not rate in training (``exclude_seen=True``), with and
  without ``min_count=20`` (films with fewer than 20 training ratings left out).
* precision@10: a listed film the user rated 4 or 5 in the held-out fold is a hit; hits / 10
  averaged over users with at least one such held-out rating (``precision_at_n``).
* Also: the share of picks (over all users' lists) with fewer than 20 training ratings, and
  the wall-clock seconds of fit + all 943 lists (shared 2-core machine: indicative only).

Usage: ``python benchmarks/bench_recommend.py [--folds 5]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nmfkit.datasets import load_movielens_100k
from nmfkit.recommend import RatingsNMF, popularity_scores, precision_at_n, split_observed
from nmfkit._topn import top_n


def popularity_lists(seen, min_count):
    pop = popularity_scores(seen)
    items, _ = top_n(lambda rows: np.tile(pop, (len(rows), 1)), np.arange(seen.shape[0]), 10,
                     n_users=seen.shape[0], n_items=seen.shape[1], seen=seen,
                     item_count=pop.astype(np.int64), min_count=min_count)
    return [list(i) for i in items]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5, help="how many of the 5 folds to run")
    args = ap.parse_args(argv)
    d = load_movielens_100k()
    X = d.X
    rows = {}
    for f, (train, test) in enumerate(split_observed(X, n_splits=5, random_state=0)):
        if f >= args.folds:
            break
        for source in ("interactions", "ratings"):
            t0 = time.perf_counter()
            m = RatingsNMF(15, rating_range=(1, 5), recommend_from=source,
                           random_state=0).fit(X, mask=train)
            fit_s = time.perf_counter() - t0
            for mc in (None, 20):
                t1 = time.perf_counter()
                recs = [[i for i, _ in r] for r in m.recommend_many(n=10, min_count=mc)]
                s = fit_s + time.perf_counter() - t1
                rare = np.mean([m.item_count_[i] < 20 for r in recs for i in r])
                rows.setdefault((f"RatingsNMF, recommend_from={source!r}", mc), []).append(
                    (precision_at_n(recs, X, test), rare, s))
        seen = train.astype(bool)
        for mc in (None, 20):
            t1 = time.perf_counter()
            recs = popularity_lists(seen, mc)
            cnt = popularity_scores(seen)
            rare = np.mean([cnt[i] < 20 for r in recs for i in r])
            rows.setdefault(("most-rated unseen films (baseline)", mc), []).append(
                (precision_at_n(recs, X, test), rare, time.perf_counter() - t1))
    print(f"MovieLens-100k, {args.folds} fold(s), precision@10 (held-out rating >= 4 is a hit)")
    print()
    print("| lists from | min_count | precision@10 (mean ± sd over folds) | picks with < 20 "
          "ratings | seconds (fit + 943 lists) |")
    print("|---|---|---|---|---|")
    for (name, mc), vals in rows.items():
        v = np.array(vals)
        print(f"| {name} | {mc if mc is not None else '—'} | {v[:, 0].mean():.3f} ± "
              f"{v[:, 0].std():.3f} | {100 * v[:, 1].mean():.1f} % | {v[:, 2].mean():.2f} |")


if __name__ == "__main__":
    main()
