"""How close to scikit-learn's 200-iteration objective each library gets, and when.

``bench_cpu.py`` times each library to scikit-learn's objective after 200 CD iterations
(tol=0). On a problem where those 200 iterations converge to the last digits of float64 (the
TF-IDF workload: scikit-learn's final objective lies about 3e-14 of itself above the point
both libraries converge to), that single number measures the last digits only. This script
times both libraries to a ladder of levels above that target,

    level(ε) = f₂₀₀ · (1 + ε),   ε = 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 0,

from the same nndsvda start. scikit-learn's objective is recorded after every iteration of
an untimed run (its iterations are then identical to the timed 200-iteration run's), and its
time to a level is the timed run's time × (iterations to the level) / 200: its iterations
cost the same from first to last, and no set-up beyond them is charged to it. nmfkit's time
is read by a callback (the callback's own work not counted), as in ``bench_cpu.py``.

    python benchmarks/bench_precision.py                 # W1, W2, W4
    python benchmarks/bench_precision.py --only W2 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import data  # noqa: E402
from bench_cpu import _warm, machine, objective  # noqa: E402

EPS = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 0.0)


def sklearn_trace(X, W0, H0, k, iters):
    """scikit-learn's CD from (W0, H0): its objective after each iteration (untimed run) and
    the time of a plain ``iters``-iteration run."""
    import sklearn.decomposition._nmf as sknmf
    from sklearn.decomposition import NMF as SkNMF

    est = SkNMF(k, init="custom", solver="cd", tol=0, max_iter=iters)
    t0 = time.perf_counter()
    est.fit_transform(X, W=W0.copy(), H=H0.copy())
    t = time.perf_counter() - t0
    trace = []
    orig = sknmf._update_coordinate_descent
    calls = [0]

    def hooked(Xa, Wa, Ht, *a, **kw):
        v = orig(Xa, Wa, Ht, *a, **kw)
        calls[0] += 1
        if calls[0] % 2 == 0:  # the H half: (W, Ht) = (Ht of the W call, W of it)
            trace.append(objective(X, Ht, Wa.T, 2))
        return v

    sknmf._update_coordinate_descent = hooked
    try:
        est2 = SkNMF(k, init="custom", solver="cd", tol=0, max_iter=iters)
        W = est2.fit_transform(X, W=W0.copy(), H=H0.copy())
    finally:
        sknmf._update_coordinate_descent = orig
    f_final = objective(X, W, est2.components_, 2)
    return t, np.asarray(trace), f_final


def nmfkit_trace(X, W0, H0, k, target, max_iter=400):
    """nmfkit's default solver from (W0, H0): (time, objective) at each iteration until the
    objective reaches ``target``; the callback's own time is not counted."""
    import nmfkit

    out, over = [], [0.0]
    t1 = [None]

    def cb(info):
        c0 = time.perf_counter()
        f = info.objective if info.objective is not None else objective(X, info.W, info.H, 2)
        out.append((c0 - t1[0] - over[0], f))
        over[0] += time.perf_counter() - c0
        return f <= target

    m = nmfkit.NMF(k, init="custom", solver="auto", tol=0, max_iter=max_iter, callback=cb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1[0] = time.perf_counter()
        m.fit_transform(X, W=W0.copy(), H=H0.copy())
    return out


def one(label, X, k, iters):
    from nmfkit.init import initialize

    W0, H0 = initialize(X, k, init="nndsvda", random_state=0)
    t_sk, tr, f200 = sklearn_trace(X, W0, H0, k, iters)
    _warm(X, k, "auto", 2)
    nk = nmfkit_trace(X, W0, H0, k, f200)
    rows = []
    for eps in EPS:
        level = f200 * (1 + eps)
        hit = np.nonzero(tr <= level)[0]
        it_sk = int(hit[0]) + 1 if hit.size else None
        t_s = t_sk * it_sk / iters if it_sk else None
        got = next(((i + 1, t) for i, (t, f) in enumerate(nk) if f <= level), None)
        rows.append({"label": label, "eps": eps, "it_sk": it_sk, "t_sk": t_s,
                     "it_nk": got[0] if got else None, "t_nk": got[1] if got else None,
                     "load": os.getloadavg()[0]})
    return rows, f200


def fmt(r):
    sk = f"{r['t_sk']:.2f} ({r['it_sk']} it)" if r["it_sk"] else "—"
    nk = f"{r['t_nk']:.3f} ({r['it_nk']} it)" if r["it_nk"] else "not reached"
    ratio = f"{r['t_sk'] / r['t_nk']:.1f}×" if r["it_sk"] and r["it_nk"] else "—"
    eps = "0 (the target)" if r["eps"] == 0 else f"{r['eps']:.0e}"
    return f"| {r['label']} | {eps} | {sk} | {nk} | {ratio} | {r['load']:.1f} |"


HEADER = ("| workload | ε above f₂₀₀ | scikit-learn (s, iterations) | nmfkit auto (s, iterations) "
          "| speed-up | load |\n|---|---|---|---|---|---|")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="W1,W2,W4")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    print(machine())
    work = []
    if "W1" in only:
        work.append(("W1 dense, k=20", data.dense_lowrank(), 20))
    if "W2" in only:
        work.append(("W2 TF-IDF, k=10", data.tfidf(data.text_counts()), 10))
    if "W4" in only:
        work.append(("W4 ORL faces, k=49", data.orl_faces(), 49))
    results = {}
    for rnd in range(a.rounds):
        for label, X, k in work:
            rows, f200 = one(label, X, k, 200)
            print(f"round {rnd + 1}: {label}: f200 = {f200:.10g}")
            for r in rows:
                print(fmt(r), flush=True)
            results.setdefault(label, []).append(rows)
    print("\nmedians over rounds\n" + HEADER)
    for label, runs in results.items():
        for i in range(len(EPS)):
            rs = [run[i] for run in runs]
            med = dict(rs[0])
            for key in ("t_sk", "t_nk", "load"):
                vals = [r[key] for r in rs if r[key] is not None]
                med[key] = float(np.median(vals)) if vals else None
            print(fmt(med))


if __name__ == "__main__":
    main()
