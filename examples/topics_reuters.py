"""Topics of Reuters news with KL NMF, and how many topics to keep.

395 Reuters articles × 4258 words (raw counts, from the ``lda`` package's test data). The
generalised Kullback-Leibler NMF (``solver="mu", beta_loss="kullback-leibler"``) is the NMF
counterpart of PLSA/LDA on counts. ``select_rank`` measures the held-out KL divergence per
entry, the consensus of document clusters over restarts and the stability of the topics for a
few candidate k; the topics at the chosen k are printed by their top words.

Data: ``pip install lda==3.0.2``. Run: ``python examples/topics_reuters.py``.
"""

import importlib.util
import json
import os
import sys
import time

import scipy.sparse as sp

from nmfkit import NMF
from nmfkit.clustering import top_features
from nmfkit.selection import select_rank

KL = dict(solver="mu", beta_loss="kullback-leibler", max_iter=300, tol=1e-4)


def load_reuters():
    spec = importlib.util.find_spec("lda")
    if spec is None:
        sys.exit("needs the lda package's data: pip install lda==3.0.2")
    folder = os.path.join(spec.submodule_search_locations[0], "tests")
    with open(os.path.join(folder, "reuters.tokens")) as f:
        vocab = [w.strip() for w in f]
    rows, cols, vals = [], [], []
    with open(os.path.join(folder, "reuters.ldac")) as f:
        for d, line in enumerate(f):
            for pair in line.split()[1:]:
                w, c = pair.split(":")
                rows.append(d)
                cols.append(int(w))
                vals.append(float(c))
    X = sp.csr_matrix((vals, (rows, cols)), shape=(d + 1, len(vocab)))
    return X, vocab


def main(ks=(5, 10, 15, 20, 30), n_runs=5, seed=0, out=None):
    X, vocab = load_reuters()
    print(f"X: {X.shape[0]} documents × {X.shape[1]} words, {X.nnz} non-zeros")
    t0 = time.perf_counter()
    # cv="bicv": masked fitting would hold a 395 × 4258 mask and is ~10× slower here
    res = select_rank(X, ks, methods=("cv", "consensus", "stability", "explained_variance"),
                      cv="bicv", n_runs=n_runs, random_state=seed, progress=True, **KL)
    print(f"select_rank: {time.perf_counter() - t0:.1f} s\n")
    print(res)
    k = res.suggested_k
    model = NMF(k, n_init=3, random_state=seed, **KL)
    model.fit(X)
    print(f"\ntopics at k={k} (top words by weight):")
    for c, words in enumerate(top_features(model.components_, 8, feature_names=vocab)):
        print(f"{c:2d}: " + " ".join(w for w, _ in words))
    if out:
        with open(out, "w") as f:
            json.dump({"curves": res.curves(), "suggested_k": k, "reason": res.reason,
                       "suggestions": res.suggestions,
                       "topics": [[w for w, _ in t] for t in
                                  top_features(model.components_, 8, feature_names=vocab)]},
                      f, indent=1)


if __name__ == "__main__":
    main(out=sys.argv[1] if len(sys.argv) > 1 else None)
