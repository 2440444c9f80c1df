"""Topics of Reuters news with KL NMF, optionally choosing how many topics to keep first.

395 Reuters articles × 4258 words, raw counts, from the ``lda`` package's test files
(``pip install lda==3.0.2``), read by path. The generalised Kullback-Leibler NMF
(``solver="mu", beta_loss="kullback-leibler"``, the Poisson likelihood of counts) is the NMF
counterpart of PLSA/LDA on counts: it does not let a few long documents dominate as the squared
error does. The sparse count matrix is never densified.

With ``--choose-k``, ``select_rank`` first measures the held-out KL divergence per entry
(bi-cross-validation), the consensus of document clusters over restarts, the stability of the
topics and the explained variance for the candidate ``--ks``, and the topics are then fitted at
the suggested k; without it, at ``--k``. The topics are always printed (top words and an
example headline) and drawn as bar charts in reuters_topics.png under ``--out``.

    python examples/reuters_topics.py [--k 10]
    python examples/reuters_topics.py --choose-k --n-init 3   # docs/model_selection.md
        [--ks 5,10,15,20,30 --n-runs 5 --json out.json]
"""

import json
import time

import numpy as np
from _common import package_dir, parser, save

from nmfkit import NMF
from nmfkit.io import read_ldac

KL = {"solver": "mu", "beta_loss": "kullback-leibler", "max_iter": 300, "tol": 1e-4}


def load_reuters():
    base = package_dir("lda", "pip install lda==3.0.2") / "tests"
    vocab = (base / "reuters.tokens").read_text().split()
    titles = (base / "reuters.titles").read_text().splitlines()
    X = read_ldac(base / "reuters.ldac", n_features=len(vocab))
    return X, vocab, titles


def choose_k(X, ks, n_runs, seed):
    from nmfkit.selection import select_rank

    t0 = time.perf_counter()
    # cv="bicv": masked fitting would hold a 395 × 4258 mask and is ~10× slower here
    res = select_rank(X, ks, methods=("cv", "consensus", "stability", "explained_variance"),
                      cv="bicv", n_runs=n_runs, random_state=seed, progress=True, **KL)
    print(f"select_rank: {time.perf_counter() - t0:.1f} s\n")
    print(res)
    return res


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=10, help="number of topics (without --choose-k)")
    p.add_argument("--choose-k", action="store_true",
                   help="choose k with select_rank over --ks first")
    p.add_argument("--ks", default="5,10,15,20,30")
    p.add_argument("--n-runs", type=int, default=5, help="restarts per k for --choose-k")
    p.add_argument("--n-init", type=int, default=1,
                   help="fits kept best-of: the first from NNDSVDa, the others random")
    p.add_argument("--json", default=None,
                   help="also write the curves and topics to this file under --out")
    args = p.parse_args()
    if args.quick:  # few topics, few iterations, two candidate ranks
        KL.update(max_iter=30)
        args.k, args.ks, args.n_runs, args.n_init = 5, "3,5", 2, 1
    X, vocab, titles = load_reuters()
    print(f"Reuters: {X.shape[0]} documents × {X.shape[1]} words, {X.nnz} non-zeros (sparse)")
    res = None
    k = args.k
    if args.choose_k:
        res = choose_k(X, [int(v) for v in args.ks.split(",")], args.n_runs, args.seed)
        k = res.suggested_k

    t0 = time.perf_counter()
    # init=None is NNDSVDa here (k ≤ min(n, m)); with n_init > 1 the other runs start random
    model = NMF(k, n_init=args.n_init, random_state=args.seed, **KL)
    W = model.fit_transform(X)
    print(f"\nKL NMF k={k}: {model.n_iter_} iterations in {time.perf_counter() - t0:.1f}s, "
          f"√(2·KL) = {model.reconstruction_err_:.2f}")
    H = model.components_
    topics = []
    for i, h in enumerate(H):
        words = [vocab[j] for j in np.argsort(h)[::-1][:8]]
        topics.append(words)
        doc = titles[int(np.argmax(W[:, i]))][:70]
        print(f"topic {i:2d}: {', '.join(words)}\n          e.g. {doc}")

    from nmfkit.plot import plot_top_features

    save(plot_top_features(H, vocab, n_top=8, title="Reuters topics (KL NMF): top words"),
         args.out, "reuters_topics.png")
    if args.json:
        out = {"k": k, "topics": topics}
        if res is not None:
            out.update(curves=res.curves(), suggested_k=res.suggested_k, reason=res.reason,
                       suggestions=res.suggestions)
        with open(args.out / args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
