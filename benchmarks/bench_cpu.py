"""CPU benchmark of nmfkit against scikit-learn with a fixed protocol (issue 3).

For each workload, in one run: both libraries start from the same initial W, H (nndsvda);
scikit-learn runs 200 iterations with tol=0 and its final objective is the target; nmfkit runs
until its objective reaches that target (a callback stops it; the callback's own objective
evaluations, needed for KL only, are not counted). Reported: each time, the ratio
(scikit-learn time / nmfkit time), each final objective. The table, with machine, core count,
load and library versions, is printed and appended to docs/benchmarks.md.

    python benchmarks/bench_cpu.py            # full protocol (a few minutes on 2 cores)
    python benchmarks/bench_cpu.py --quick    # small shapes, 50 iterations, no docs append
    python benchmarks/bench_cpu.py --only W2 --solvers cd,anls
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import data  # noqa: E402

from nmfkit.solvers._blocked import compile_kernels  # noqa: E402

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
# workload -> (target ratio sklearn_time / nmfkit_time)
TARGETS = {"W1": 4.0, "W2": 1.5, "W3": 10.0, "W4": 3.0}


def objective(X, W, H, beta):
    from nmfkit.losses import beta_divergence

    return beta_divergence(X, W, H, beta)


def run_pair(label, X, k, beta, solvers, iters, options=None):
    """Fit scikit-learn then each nmfkit solver from the same start; return table rows."""
    from sklearn.decomposition import NMF as SkNMF

    import nmfkit
    from nmfkit.init import initialize

    W0, H0 = initialize(X, k, init="nndsvda", random_state=0)
    sk_solver = "cd" if beta == 2 else "mu"
    est = SkNMF(k, init="custom", solver=sk_solver, beta_loss=beta, tol=0, max_iter=iters)
    t0 = time.perf_counter()
    Wsk = est.fit_transform(X, W=W0.copy(), H=H0.copy())
    t_sk = time.perf_counter() - t0
    f_sk = objective(X, Wsk, est.components_, beta)
    rows = []
    for solver in solvers:
        over = [0.0]
        reached = [None]
        best = [np.inf]

        def cb(info, over=over, reached=reached, best=best):
            c0 = time.perf_counter()
            f = info.objective
            if f is None:
                f = objective(X, info.W, info.H, beta)
            best[0] = min(best[0], f)
            stop = f <= f_sk
            if stop:
                reached[0] = (c0 - t1 - over[0], info.n_iter, f)
            over[0] += time.perf_counter() - c0
            return stop

        opts = (options or {}).get(solver)
        # warm-up on a slice of X (same type, dtype and layout): numba's kernels are compiled
        # or loaded from its cache once per process; that one-off cost is not the solver's
        small = X[: min(X.shape[0], 600)]
        compile_kernels()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after 3 iterations
            nmfkit.NMF(min(k, 5), init="random", random_state=0, solver=solver,
                       beta_loss=beta, tol=0, max_iter=3, solver_options=opts).fit(small)
        m = nmfkit.NMF(k, init="custom", solver=solver, beta_loss=beta, tol=0,
                       max_iter=20 * iters, max_time=2 * t_sk + 5, callback=cb,
                       solver_options=opts)
        t1 = time.perf_counter()
        m.fit_transform(X, W=W0.copy(), H=H0.copy())
        total = time.perf_counter() - t1 - over[0]
        if reached[0] is None:
            t_nk, it, f_nk = total, m.n_iter_, best[0]
        else:
            t_nk, it, f_nk = reached[0]
        rows.append({
            "workload": label, "k": k, "sklearn": f"{sk_solver} ({iters} it)", "t_sk": t_sk,
            "f_sk": f_sk, "nmfkit": solver + (f" {opts}" if opts else ""), "t_nk": t_nk,
            "it_nk": it, "f_nk": f_nk, "reached": reached[0] is not None,
            "ratio": t_sk / t_nk if reached[0] is not None else float("nan"),
        })
        print(_fmt_row(rows[-1]), flush=True)
    return rows


def _fmt_row(r):
    target = TARGETS.get(r["workload"][:2])
    ratio = f"{r['ratio']:.2f}×" if r["reached"] else "not reached"
    met = "" if target is None else ("yes" if r["reached"] and r["ratio"] >= target else "no")
    return (f"| {r['workload']} | {r['k']} | {r['sklearn']} | {r['t_sk']:.2f} | {r['f_sk']:.6g} | "
            f"{r['nmfkit']} | {r['t_nk']:.2f} ({r['it_nk']} it) | {r['f_nk']:.6g} | {ratio} | "
            f"≥ {target}× {met} |")


def memory_child(path, k, solver):
    """Run in a subprocess: peak RSS above the baseline of a W2 fit."""
    import nmfkit  # noqa: F401  (imports count in the baseline)
    from nmfkit import NMF

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        return 0

    # the baseline includes the libraries and compiled kernels (numba's JIT), loaded by a tiny
    # fit of the same solver: fixed costs, not memory that grows with the data
    if solver == "sklearn-cd":  # the same measurement of scikit-learn's CD, for reference
        from sklearn.decomposition import NMF  # noqa: F811
        solver = "cd"
    tiny = sp.random(30, 40, density=0.3, format="csr", random_state=0)
    NMF(3, solver=solver, init="random", random_state=0, tol=0, max_iter=3).fit(tiny)
    compile_kernels()  # the blocked products' kernels, which a tiny fit does not reach
    base = status("VmRSS:")
    # VmHWM is the process's peak since it started: a warm-up transient above the baseline
    # (numba compiling a kernel missing from its cache frees its memory afterwards) would be
    # read as the fit's peak. Reset it (Linux: clear_refs "5"), and report what it was.
    warm = status("VmHWM:") - base
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    X = sp.load_npz(path).tocsr()
    m = NMF(k, solver=solver, init="random", random_state=0, tol=0, max_iter=20)
    W = m.fit_transform(X)
    peak = status("VmHWM:") - base
    xb = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    print(json.dumps({"peak": peak, "x": xb, "wh": W.nbytes + m.components_.nbytes,
                      "warmup_above_base": warm, "hwm_reset": reset}))


def memory(X, k, solver):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.npz")
        sp.save_npz(path, X, compressed=False)
        out = subprocess.run([sys.executable, __file__, "--_mem", path, str(k), solver],
                             capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    budget = 1.5 * (r["x"] + r["wh"])
    print(f"  (W6 k={k} {solver}: warm-up peak {r['warmup_above_base'] / 2**20:.1f} MiB above the "
          f"baseline, high-water mark reset: {r['hwm_reset']})", flush=True)
    return (f"| W6 | {k} | {solver} | {r['peak'] / 2**20:.1f} MiB | X {r['x'] / 2**20:.1f} MiB + "
            f"W,H {r['wh'] / 2**20:.1f} MiB → budget {budget / 2**20:.1f} MiB | "
            f"{'yes' if r['peak'] <= budget else 'no'} ({r['peak'] / (r['x'] + r['wh']):.2f}×) |")


def machine():
    import numba  # noqa: F401
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import nmfkit

    blas = ", ".join(sorted({f"{i['internal_api']} {i['version']}" for i in threadpool_info()}))
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    la = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    versions = (f"Python {platform.python_version()}, numpy {np.__version__}, "
                f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
                f"numba {numba.__version__}, nmfkit {getattr(nmfkit, '__version__', '?')}")
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu}; {os.cpu_count()} "
            f"cores; load average {la} (machine shared with other jobs); {versions}; BLAS {blas}")


HEADER = ("| workload | k | scikit-learn | sk time (s) | sk objective | nmfkit solver | "
          "nmfkit time to sk objective (s) | nmfkit objective | speed-up | target |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, 50 iterations")
    ap.add_argument("--only", default="W1,W2,W3,W4,W6")
    ap.add_argument("--solvers", default="auto,cd,anls,pgd",
                    help="nmfkit solvers for the Frobenius workloads (W3 runs auto = KL cd)")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument("--_mem", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._mem:
        return memory_child(a._mem[0], int(a._mem[1]), a._mem[2])
    only = set(a.only.split(","))
    solvers = a.solvers.split(",")
    q = a.quick
    iters = 50 if q else 200
    info = machine()
    print(info)
    print(HEADER)
    rows, mem = [], []
    if "W1" in only:
        X = data.dense_lowrank(2000, 500) if q else data.dense_lowrank()
        rows += run_pair(f"W1 dense {X.shape[0]}×{X.shape[1]} float32", X, 20, 2.0, solvers, iters)
    if only & {"W2", "W3", "W6"}:
        C = data.text_counts(2000, 8000) if q else data.text_counts()
        T = data.tfidf(C)
    if "W2" in only:
        for k in (10, 50):
            rows += run_pair(f"W2 tf-idf {T.shape[0]}×{T.shape[1]} nnz {T.nnz}", T, k, 2.0,
                             solvers, iters)
    if "W3" in only:
        rows += run_pair(f"W3 counts {C.shape[0]}×{C.shape[1]} nnz {C.nnz}, KL", C, 10, 1.0,
                         ["auto"], iters)
    if "W4" in only:
        F = data.orl_faces()
        if q:
            F = F[:100]
        rows += run_pair(f"W4 ORL faces {F.shape[0]}×{F.shape[1]}", F, 49, 2.0, solvers, iters)
    if "W6" in only:
        print("| W6 | k | solver | peak RSS above baseline | budget 1.5×(X + W,H) | met |")
        for k in (10, 50):
            for solver in ("auto", "sklearn-cd"):
                mem.append(memory(T, k, solver))
                print(mem[-1], flush=True)
    if not (q or a.no_append):
        block = f"\n### CPU run, {info}\n\n{HEADER}\n" + "\n".join(_fmt_row(r) for r in rows)
        if mem:
            block += ("\n\n| W6 | k | solver | peak RSS above baseline | budget 1.5×(X + W,H) "
                      "| met |\n|---|---|---|---|---|---|\n" + "\n".join(mem))
        _insert_in_cpu_section(block + "\n")


def _insert_in_cpu_section(block: str) -> None:
    """Add a run at the end of the "CPU solvers (issue 3)" section (created if absent),
    which sits right after the protocol paragraph, before the other sections."""
    text = DOCS.read_text()
    title = "## CPU solvers against scikit-learn (issue 3)"
    if title not in text:
        first = text.find("\n## ")
        first = len(text) if first < 0 else first
        text = text[:first] + f"\n\n{title}\n" + text[first:]
    start = text.index(title)
    nxt = text.find("\n## ", start + len(title))
    nxt = len(text) if nxt < 0 else nxt
    DOCS.write_text(text[:nxt].rstrip("\n") + "\n" + block + text[nxt:])


if __name__ == "__main__":
    main()
