"""``nmfkit recommend RATINGS``: top-n items per user from a ratings file
(:class:`nmfkit.recommend.RatingsNMF` and its ``recommend_many``); writes one CSV row per
recommendation (user, rank, item, title, score) and a JSON summary."""

from __future__ import annotations

import csv

import click
import numpy as np

from ._common import Console, common_options, record_warnings
from ._data import prepare_out_dir


def _parse_users(text: str | None, user_ids) -> np.ndarray:
    """Rows of the users named in ``--users`` (original ids, comma-separated)."""
    if text is None:
        return np.arange(len(user_ids))
    index = {str(u): i for i, u in enumerate(user_ids)}
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    if not wanted:
        raise click.BadParameter("give at least one user id, e.g. --users 1,2,3",
                                 param_hint="--users")
    missing = [u for u in wanted if u not in index]
    if missing:
        raise click.BadParameter(
            f"{len(missing)} user id(s) not in the ratings file, e.g. {missing[:3]}; the file "
            f"has {len(user_ids)} users (ids such as {[str(u) for u in user_ids[:3]]})",
            param_hint="--users")
    return np.array([index[u] for u in wanted], dtype=np.intp)


@click.command()
@click.argument("ratings_path", metavar="RATINGS", type=click.Path())
@click.option("-n", "--top", "n", type=click.IntRange(1), default=10, show_default=True,
              help="Items per user.")
@click.option("-k", "--n-components", type=click.IntRange(1), default=15, show_default=True,
              help="Rank of the factorisations.")
@click.option("--min-count", type=click.IntRange(0), default=None,
              help="Leave out items with fewer ratings than this (e.g. 20).")
@click.option("--users", default=None, metavar="IDS",
              help="Comma list of user ids (as in the file); default: every user.")
@click.option("--from", "recommend_from", type=click.Choice(["interactions", "ratings"]),
              default="interactions", show_default=True,
              help="Rank by an NMF of who rated what (better top-n lists) or by predicted "
                   "rating.")
@click.option("--include-seen", is_flag=True,
              help="Also recommend items the user has already rated.")
@click.option("--seed", "random_state", type=click.IntRange(0), default=0, show_default=True)
@click.option("--out", "out_dir", default="nmfkit-recommend", show_default=True,
              help="Output folder (created).")
@common_options
def recommend(ratings_path, n, n_components, min_count, users, recommend_from, include_seen,
              random_state, out_dir, quiet, progress, verbose):
    """Recommend the top-n items for each user of RATINGS.

    RATINGS: a MovieLens file or folder (u.data, ratings.dat, ratings.csv, RecBole .inter) or
    any CSV/TSV of user, item, rating[, timestamp] rows. Titles are read from the titles file
    beside it (u.item, movies.dat, movies.csv, .item) when there is one.
    """
    from ..datasets import read_movielens
    from ..io import write_json
    from ..recommend import RatingsNMF

    console = Console(quiet, progress, verbose)
    try:
        data = read_movielens(ratings_path)
    except ValueError as exc:
        raise ValueError(f"cannot read ratings from {ratings_path!r}: {exc}") from None
    if data.ratings.size == 0:
        raise ValueError(f"{ratings_path!r} holds no ratings; give a file of user, item, "
                         "rating rows")
    if not np.all(np.isfinite(data.ratings)):
        raise ValueError(f"{ratings_path!r} has a rating that is not a finite number (NaN or "
                         "inf); fix or drop that row")
    rows = _parse_users(users, data.user_ids)
    k = min(n_components, *data.X.shape)
    out = prepare_out_dir(out_dir)
    console.say(f"{ratings_path}: {data.X.shape[0]} users × {data.X.shape[1]} items, "
                f"{data.X.nnz} ratings; fitting k={k}")
    lo, hi = float(data.ratings.min()), float(data.ratings.max())
    model = RatingsNMF(k, rating_range=(lo, hi) if lo < hi else None,
                       recommend_from=recommend_from, random_state=random_state)
    with record_warnings() as caught:
        model.fit(data.X)
        recs = model.recommend_many(rows, n, exclude_seen=not include_seen, min_count=min_count)
    console.replay(caught)
    names = data.item_names
    path = out / "recommendations.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "rank", "item", "title", "score", "n_ratings"])
        for r, lst in zip(rows, recs):
            for rank, (j, score) in enumerate(lst, 1):
                w.writerow([data.user_ids[r], rank, data.item_ids[j],
                            "" if names is None else names[j], f"{score:.6g}",
                            int(model.item_count_[j])])
    short = [int(r) for r, lst in zip(rows, recs) if len(lst) < n]
    summary = write_json(out / "summary.json", {
        "input": str(ratings_path), "n_users": int(data.X.shape[0]),
        "n_items": int(data.X.shape[1]), "n_ratings": int(data.X.nnz), "n_components": k,
        "recommend_from": recommend_from, "n": n, "min_count": min_count,
        "exclude_seen": not include_seen, "n_users_listed": int(rows.size),
        "users_with_short_lists": [str(data.user_ids[r]) for r in short]})
    if short:
        console.warn(f"{len(short)} user(s) got fewer than {n} items (too few items left after "
                     "excluding rated ones and --min-count)")
    for r, lst in list(zip(rows, recs))[:3]:
        picks = "; ".join(str(names[j]) if names is not None else str(data.item_ids[j])
                          for j, _ in lst[:5])
        console.say(f"user {data.user_ids[r]}: {picks}{' …' if len(lst) > 5 else ''}")
    console.say(f"wrote {path}, {summary}")
