"""The drop-in's defaults in a fresh process: the first ``NMF(k, random_state=0)`` fit of a
script, one-off costs included (numba's import and cached kernels, first calls).

``bench_cpu.py``'s defaults table warms each library up first; a script that fits once pays
what a warm-up hides. Here every measurement is a new Python process that imports the library
and loads the data (not timed), then times its first fit: scikit-learn's whole default fit,
and nmfkit's time to scikit-learn's error (a callback, its own work not counted) and whole
fit. Processes alternate between the libraries, ``--rounds`` times; medians.

    python benchmarks/bench_fresh.py                  # the digits, k=16
    python benchmarks/bench_fresh.py --data W2 --rounds 3   # also W1, W4
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).parent

CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, {here!r})
import numpy as np
warnings.simplefilter("ignore")
which, lib, target = {which!r}, {lib!r}, {target!r}
if which == "digits":
    from sklearn.datasets import load_digits
    X, k = load_digits().data, 16
else:
    import data
    X, k = {{"W1": (data.dense_lowrank, 20), "W4": (data.orl_faces, 49),
             "W2": (lambda: data.tfidf(data.text_counts()), 10)}}[which]
    X = X()
if lib == "sklearn":
    from sklearn.decomposition import NMF
    t = time.perf_counter()
    m = NMF(k, random_state=0).fit(X)
    print(json.dumps({{"total": time.perf_counter() - t, "n_iter": int(m.n_iter_),
                      "error": float(m.reconstruction_err_)}}))
else:
    import nmfkit
    from nmfkit.losses import beta_divergence
    hit, over, t0 = [None], [0.0], [None]

    def cb(info):
        c = time.perf_counter()
        f = info.objective if info.objective is not None else beta_divergence(X, info.W, info.H, 2)
        if hit[0] is None and target is not None and np.sqrt(2 * f) <= target:
            hit[0] = (c - t0[0] - over[0], info.n_iter)
        over[0] += time.perf_counter() - c

    m = nmfkit.NMF(k, random_state=0, callback=cb)
    t0[0] = time.perf_counter()
    m.fit(X)
    total = time.perf_counter() - t0[0] - over[0]
    print(json.dumps({{"total": total, "n_iter": int(m.n_iter_),
                      "error": float(m.reconstruction_err_),
                      "to_target": hit[0][0] if hit[0] else None,
                      "it_target": hit[0][1] if hit[0] else None,
                      "numba": "numba" in sys.modules}}))
"""


def child(which: str, lib: str, target=None) -> dict:
    code = CHILD.format(here=str(HERE), which=which, lib=lib, target=target)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=("digits", "W1", "W2", "W4"))
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    sk, nk = [], []
    for r in range(a.rounds):
        sk.append(child(a.data, "sklearn"))
        nk.append(child(a.data, "nmfkit", sk[-1]["error"]))
        print(f"round {r + 1}: scikit-learn {sk[-1]['total']:.3f} s ({sk[-1]['n_iter']} it, "
              f"error {sk[-1]['error']:.4f}); nmfkit to that error {nk[-1]['to_target']:.3f} s "
              f"({nk[-1]['it_target']} it), whole fit {nk[-1]['total']:.3f} s "
              f"({nk[-1]['n_iter']} it, error {nk[-1]['error']:.4f}; numba imported: "
              f"{nk[-1]['numba']}); load {os.getloadavg()[0]:.1f}", flush=True)
    med = {k: float(np.median([x[k] for x in sk])) for k in ("total",)}
    t_to = float(np.median([x["to_target"] for x in nk]))
    t_nk = float(np.median([x["total"] for x in nk]))
    ratios = [s["total"] / n["to_target"] for s, n in zip(sk, nk)]
    print(f"\nmedians over {a.rounds} rounds ({a.data}, first fit of a fresh process): "
          f"scikit-learn {med['total']:.3f} s; nmfkit to its error {t_to:.3f} s "
          f"({float(np.median(ratios)):.1f}×, rounds {min(ratios):.1f}–{max(ratios):.1f}×), "
          f"nmfkit's whole fit {t_nk:.3f} s")


if __name__ == "__main__":
    main()
