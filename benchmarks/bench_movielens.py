"""MovieLens-100k: 5-fold cross-validated RMSE / MAE of nmfkit vs scikit-surprise, same folds.

Protocol
--------
* Data: ml-100k from the RecBole wheel (``pip install --no-deps recbole==1.2.1``), 943 × 1682,
  100,000 ratings; folds: ``nmfkit.recommend.split_observed(n_splits=5, random_state=0)``,
  i.e. a random partition of the *ratings* (Surprise's KFold protocol).
* nmfkit models: ``RatingsNMF(biased=False)`` ("plain": r̂ = w_i·h_j) and
  ``RatingsNMF(biased=True)`` (r̂ = μ + b_i + c_j + w_i·h_j), k = 15 as Surprise's NMF,
  10 alternating sweeps of 2 coordinate-descent passes, predictions clipped to [1, 5].
  Their L2 weights (factors; biases) are chosen once, before the CV, on an inner
  hold-out (20 % of fold 1's *training* ratings) from a small grid — the test folds never
  choose a parameter.
* scikit-surprise: ``NMF()`` and ``SVD()`` with their default parameters (``random_state``
  fixed for repeatability), trained on exactly the same training ratings of each fold.
* Fit time: wall-clock seconds of ``fit`` per fold (mean), on the machine it runs on.

Usage: ``python benchmarks/bench_movielens.py [--append docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

from nmfkit.datasets import load_movielens_100k
from nmfkit.recommend import RatingsNMF, heldout_error, split_observed

GRID = (0.03, 0.06, 0.1, 0.2)
BIAS_GRID = (0.005, 0.03, None)  # None: the same weight as the factors
COMMON = dict(n_components=15, max_iter=10, inner_max_iter=2, rating_range=(1, 5),
              random_state=0)


def choose_params(X, train, biased: bool) -> dict:
    """L2 weights with the lowest RMSE on an inner 80/20 split of the training ratings."""
    Xtr = X.multiply(train).tocsr()
    inner_train, inner_val = next(split_observed(Xtr, n_splits=5, random_state=1))
    scores = {}
    for a in GRID:
        for ab in BIAS_GRID if biased else (None,):
            m = RatingsNMF(biased=biased, alpha=a, alpha_bias=ab, **COMMON)
            m.fit(Xtr, mask=inner_train)
            scores[(a, ab)] = heldout_error(m, Xtr, inner_val)
    a, ab = min(scores, key=scores.get)
    return {"alpha": a, "alpha_bias": ab}


def surprise_fold(algo_cls, d, train, test):
    from surprise import Dataset, Reader

    tr = sp.coo_matrix(train)
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as fh:
        for r, c in zip(tr.row, tr.col):
            fh.write(f"{r}\t{c}\t{d.X[r, c]}\n")
        path = fh.name
    try:
        data = Dataset.load_from_file(path, reader=Reader(line_format="user item rating",
                                                          sep="\t", rating_scale=(1, 5)))
        trainset = data.build_full_trainset()
    finally:
        os.unlink(path)
    te = sp.coo_matrix(test)
    testset = [(str(r), str(c), float(d.X[r, c])) for r, c in zip(te.row, te.col)]
    algo = algo_cls(random_state=0)
    t0 = time.perf_counter()
    algo.fit(trainset)
    fit_time = time.perf_counter() - t0
    pred = np.array([p.est for p in algo.test(testset)])
    truth = np.array([t[2] for t in testset])
    err = pred - truth
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err))), fit_time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", help="append the markdown table to this file")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)

    d = load_movielens_100k()
    folds = list(split_observed(d.X, n_splits=args.folds, random_state=0))
    params = {b: choose_params(d.X, folds[0][0], b) for b in (False, True)}
    rows = {}

    def add(name, rmse_, mae_, t):
        rows.setdefault(name, []).append((rmse_, mae_, t))

    try:
        import surprise
        from surprise import NMF as SNMF
        from surprise import SVD

        have_surprise = surprise.__version__
    except ImportError:
        have_surprise = None
    for f, (train, test) in enumerate(folds):
        for biased in (False, True):
            p = params[biased]
            shown = f"alpha={p['alpha']}" + (
                f", alpha_bias={p['alpha_bias']}" if biased and p["alpha_bias"] is not None else ""
            )
            name = f"nmfkit RatingsNMF {'biased' if biased else 'plain'} (k=15, {shown})"
            t0 = time.perf_counter()
            m = RatingsNMF(biased=biased, **p, **COMMON).fit(d.X, mask=train)
            t = time.perf_counter() - t0
            add(name, heldout_error(m, d.X, test), heldout_error(m, d.X, test, metric="mae"), t)
        if have_surprise:
            add("surprise NMF (defaults)", *surprise_fold(SNMF, d, train, test))
            add("surprise SVD (defaults)", *surprise_fold(SVD, d, train, test))
        print(f"fold {f + 1}/{len(folds)} done", file=sys.stderr)

    lines = [
        "",
        "## MovieLens-100k: 5-fold CV rating prediction (issue 5)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-surprise {have_surprise or 'not installed'}. Same 5 folds for every model "
        "(`split_observed(n_splits=5, random_state=0)`); protocol in "
        "`benchmarks/bench_movielens.py`.",
        "",
        "| model | RMSE (mean ± sd) | MAE (mean ± sd) | fit time per fold (s) |",
        "|---|---|---|---|",
    ]
    for name, vals in rows.items():
        a = np.array(vals)
        lines.append(
            f"| {name} | {a[:, 0].mean():.4f} ± {a[:, 0].std():.4f} | "
            f"{a[:, 1].mean():.4f} ± {a[:, 1].std():.4f} | {a[:, 2].mean():.2f} |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
