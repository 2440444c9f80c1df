"""CPU benchmark of nmfkit against scikit-learn and RcppML, with a fixed protocol.

Per workload and round: scikit-learn runs 200 iterations (tol=0) from an nndsvda start and its
final objective is the target; each nmfkit solver starts from the same W, H and runs until a
callback sees the target (the callback's own objective evaluations, KL only, are not timed);
RcppML's nmf() (R, when installed: benchmarks/peers) starts from its own seeded random start
and its time to the target is bracketed by fits of growing length, scored by the same Python
objective. Rounds interleave every tool and workload; the medians are reported with the load
average of each measurement. The defaults table compares the drop-in's defaults:
``NMF(k, random_state=0)`` of both libraries, nmfkit's time to scikit-learn's final error.

    python benchmarks/bench_cpu.py --record   # every table, as docs/benchmarks.md's figures
    python benchmarks/bench_cpu.py --quick    # small shapes, 50 iterations
    python benchmarks/bench_cpu.py --only W2,defaults --solvers auto,anls --rounds 1
    python benchmarks/bench_cpu.py --only defaults --defaults W2,W4 --no-rcppml  # the drop-in
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
# workload -> target ratio sklearn_time / nmfkit "auto" time (issue 17)
TARGETS = {"W1": 12.0, "W2": 8.0, "W3": 18.0, "W4": 6.0}


def objective(X, W, H, beta):
    from nmfkit.losses import beta_divergence

    return beta_divergence(X, W, H, beta)


def _load() -> float:
    return os.getloadavg()[0]


def _warm(X, k, solver, beta, opts=None):
    """A tiny fit on a slice of X: numba's kernels are compiled or loaded from its cache once
    per process; that one-off cost is not the solver's."""
    import nmfkit
    from nmfkit.solvers.cd import projected_gradient_l1

    compile_kernels()
    for dt in (np.float32, np.float64):  # auto's stopping measure (tol > 0), every layout
        for fo in ("C", "F"):
            for ro in ("C", "F"):
                projected_gradient_l1(np.ones((2, 3), dt, order=fo), np.eye(2, dtype=dt),
                                      np.ones((2, 3), dt, order=ro))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after 3 iterations
        nmfkit.NMF(min(k, 5), init="random", random_state=0, solver=solver, beta_loss=beta,
                   tol=0, max_iter=3, solver_options=opts).fit(X[: min(X.shape[0], 600)])


def _timed_to_target(make, X, beta, target, stop=True, **fit_kw):
    """Fit ``make(callback)`` on X, stopped at the target when ``stop``; returns (time to
    target or total, iterations, objective, reached, total time, final n_iter, the fit's
    reconstruction_err_). The
    callback's own objective evaluations (KL only) are not counted."""
    over, reached, best = [0.0], [None], [np.inf]
    t1 = None

    def cb(info):
        c0 = time.perf_counter()
        f = info.objective
        if f is None:
            f = objective(X, info.W, info.H, beta)
        best[0] = min(best[0], f)
        if reached[0] is None and f <= target:
            reached[0] = (c0 - t1 - over[0], info.n_iter, f)
        over[0] += time.perf_counter() - c0
        return stop and reached[0] is not None

    m = make(cb)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit_transform(X, **fit_kw)
    total = time.perf_counter() - t1 - over[0]
    final = getattr(m, "reconstruction_err_", None)
    if reached[0] is None:
        return total, m.n_iter_, best[0], False, total, m.n_iter_, final
    t, it, f = reached[0]
    return t, it, f, True, total, m.n_iter_, final


def run_pair(label, X, k, beta, solvers, iters, rcpp=None, state=None):
    """One round of one workload: scikit-learn, then each nmfkit solver from the same start
    (stopped by a callback at scikit-learn's objective), then RcppML; returns table rows."""
    from sklearn.decomposition import NMF as SkNMF

    import nmfkit
    from nmfkit.init import initialize

    W0, H0 = initialize(X, k, init="nndsvda", random_state=0)
    sk_solver = "cd" if beta == 2 else "mu"
    est = SkNMF(k, init="custom", solver=sk_solver, beta_loss=beta, tol=0, max_iter=iters)
    load = _load()
    t0 = time.perf_counter()
    Wsk = est.fit_transform(X, W=W0.copy(), H=H0.copy())
    t_sk = time.perf_counter() - t0
    f_sk = objective(X, Wsk, est.components_, beta)
    base = {"workload": label, "k": k, "sklearn": f"{sk_solver} ({iters} it)", "t_sk": t_sk,
            "f_sk": f_sk, "load_sk": load, "it_sk": iters}
    rows = []
    for solver in solvers:
        _warm(X, k, solver, beta)
        load = _load()

        def make(cb, solver=solver):
            return nmfkit.NMF(k, init="custom", solver=solver, beta_loss=beta, tol=0,
                              max_iter=20 * iters, max_time=2 * t_sk + 5, callback=cb)

        t_nk, it, f_nk, ok, _, _, _ = _timed_to_target(make, X, beta, f_sk, W=W0.copy(),
                                                       H=H0.copy())
        rows.append({**base, "nmfkit": solver, "t_nk": t_nk, "it_nk": it, "f_nk": f_nk,
                     "reached": ok, "ratio": t_sk / t_nk if ok else float("nan"),
                     "load": load})
        print(_fmt_row(rows[-1]), flush=True)
    if rcpp is not None and beta == 2:
        from peers.rcppml import RcppML

        key = (label, k)
        r = RcppML(X, k)
        try:
            load = _load()
            got = r.time_to_target(lambda W, H: objective(X, W, H, beta), f_sk,
                                   bracket=(state or {}).get(key))
        finally:
            r.close()
        if state is not None and got["hi"] is not None:
            state[key] = tuple(x[0] for x in (got["lo"], got["hi"]) if x is not None)
        hi, lo = got["hi"], got["lo"]
        rows.append({**base, "nmfkit": "RcppML nmf()", "t_nk": hi[1] if hi else got["spent"],
                     "it_nk": hi[0] if hi else (lo[0] if lo else 0), "f_nk": got["f"],
                     "reached": hi is not None, "t_lo": lo[1] if lo else 0.0,
                     "it_lo": lo[0] if lo else 0,
                     "ratio": t_sk / hi[1] if hi else float("nan"), "load": load})
        print(_fmt_row(rows[-1]), flush=True)
    return rows


def run_defaults(label, X, k):
    """One round of the drop-in's defaults: scikit-learn's ``NMF(k, random_state=0)`` against
    nmfkit's, nothing else set; nmfkit's time to scikit-learn's final error (and its own
    whole fit)."""
    from sklearn.decomposition import NMF as SkNMF

    import nmfkit

    _warm(X, k, "auto", 2.0)
    load = _load()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkNMF(k, random_state=0)
        Wsk = sk.fit_transform(X)
    t_sk = time.perf_counter() - t0
    f_sk = objective(X, Wsk, sk.components_, 2.0)
    t, it, f, ok, total, n_iter, e_final = _timed_to_target(
        lambda cb: nmfkit.NMF(k, random_state=0, callback=cb), X, 2.0, f_sk, stop=False)
    row = {"workload": label, "k": k, "sk_it": sk.n_iter_, "t_sk": t_sk,
           "e_sk": float(np.sqrt(2 * f_sk)), "t_nk": t, "it_nk": it, "reached": ok,
           "total": total, "n_iter": n_iter, "e_nk": float(e_final), "load": load,
           "ratio": t_sk / t if ok else float("nan")}
    print(_fmt_default(row), flush=True)
    return row


def _fmt_default(r):
    reach = (f"{r['t_nk']:.2f} ({r['it_nk']} it) | {r['ratio']:.2f}×" if r["reached"]
             else "not reached | —")
    return (f"| {r['workload']} | {r['k']} | {r['t_sk']:.2f} ({r['sk_it']} it) | "
            f"{r['e_sk']:.6g} | {reach} | {r['total']:.2f} ({r['n_iter']} it) | "
            f"{r['e_nk']:.6g} | {r['load']:.1f} |")


def _fmt_row(r):
    target = TARGETS.get(r["workload"][:2])
    ratio = f"{r['ratio']:.2f}×" if r["reached"] else "not reached"
    met = "" if target is None else ("yes" if r["reached"] and r["ratio"] >= target else "no")
    t = f"{r['t_nk']:.2f} ({r['it_nk']} it)"
    if "t_lo" in r and r["reached"] and not r["it_lo"]:  # RcppML: no fit short of it timed
        t = f"≤ {r['t_nk']:.2f} ({r['it_nk']} it)"
    elif "t_lo" in r and r["reached"]:  # RcppML: the longest fit short of the target, the first
        t = f"{r['t_lo']:.2f}–{r['t_nk']:.2f} ({r['it_lo']}–{r['it_nk']} it)"  # reaching it
    elif "t_lo" in r:  # its longest fit, short of the target: a lower bound
        t = f"> {r['t_lo']:.2f} (not reached by its {r['it_lo']}-it fit)"
    # seconds per iteration: scikit-learn's whole run / its iterations; the tool's time to the
    # target (its set-up and starting objective included) / the iterations it took
    per_it = f"{1e3 * r['t_sk'] / r['it_sk']:.1f} / " + (
        f"{1e3 * r['t_nk'] / r['it_nk']:.1f}" if r["reached"] and r["it_nk"] else "—")
    return (f"| {r['workload']} | {r['k']} | {r['sklearn']} | {r['t_sk']:.2f} | {r['f_sk']:.6g} | "
            f"{r['nmfkit']} | {t} | {r['f_nk']:.6g} | {ratio} | ≥ {target}× {met} | "
            f"{per_it} | {r['load_sk']:.1f} / {r['load']:.1f} |")


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
    try:
        from nmfkit.solvers._threads import n_threads
    except ImportError:  # an nmfkit before the kernels' threads
        def n_threads():
            return 1

    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu}; {os.cpu_count()} "
            f"cores; load average {la} (machine shared with other jobs); {versions}; BLAS {blas}; "
            f"nmfkit's kernel threads {n_threads()}; OMP_NUM_THREADS "
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")


HEADER = ("| workload | k | scikit-learn | sk time (s) | sk objective | tool | "
          "time to sk objective (s) | objective | speed-up | target | ms per iteration "
          "(sk / tool) | load (sk / tool) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")
DEFAULTS_HEADER = (
    "| data | k | scikit-learn `NMF(k, random_state=0)` (s) | its error | nmfkit's default to "
    "that error (s) | speed-up | nmfkit's whole default fit (s) | its error | load |\n"
    "|---|---|---|---|---|---|---|---|---|")


def _median_rows(rounds):
    """Rows of several rounds → one row per (workload, k, tool): median times and ratios
    (each ratio from one round, side by side), every round's load."""
    by = {}
    for r in rounds:
        by.setdefault((r["workload"], r["k"], r.get("nmfkit", "")), []).append(r)
    out = []
    for rs in by.values():
        m = dict(rs[len(rs) // 2])
        for key in ("t_sk", "t_nk", "total"):
            if key in m:
                m[key] = float(np.median([r[key] for r in rs]))
        if "t_lo" in m:  # RcppML's fits short of the target, in the rounds that timed one
            lows = [r for r in rs if r["it_lo"]]
            m["t_lo"] = float(np.median([r["t_lo"] for r in lows])) if lows else 0.0
            m["it_lo"] = int(np.median([r["it_lo"] for r in lows])) if lows else 0
        ok = [r["ratio"] for r in rs if r["reached"]]
        m["ratio"] = float(np.median(ok)) if ok else float("nan")
        m["reached"] = bool(ok)
        m["load"] = float(np.mean([r["load"] for r in rs]))
        m["load_sk"] = float(np.mean([r.get("load_sk", r["load"]) for r in rs]))
        m["rounds"] = len(rs)
        out.append(m)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, 50 iterations")
    ap.add_argument("--only", default="W1,W2,W3,W4,W6,defaults")
    ap.add_argument("--solvers", default="auto",
                    help="nmfkit solvers for the Frobenius workloads (W3 runs auto = KL cd)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved rounds (each round runs every tool on every workload)")
    ap.add_argument("--defaults", default="digits,W1,W2,W4",
                    help="the defaults table's data sets (with 'defaults' in --only)")
    ap.add_argument("--k50", action="store_true", help="also W2 at k=50")
    ap.add_argument("--no-rcppml", action="store_true", help="skip the R peer")
    ap.add_argument("--record", action="store_true",
                    help="write the tables as the current figures of docs/benchmarks.md")
    ap.add_argument("--_mem", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._mem:
        return memory_child(a._mem[0], int(a._mem[1]), a._mem[2])
    only = set(a.only.split(","))
    solvers = a.solvers.split(",")
    q = a.quick
    iters = 50 if q else 200
    info = machine()
    rcpp, note = None, None
    if not a.no_rcppml:
        from peers import rcppml

        note = rcppml.unavailable()
        if note is None:
            rcpp = rcppml
            info += f"; {rcppml.versions()} (2 threads)"
    print(info)
    if note:
        print(note)
    X1 = data.dense_lowrank(2000, 500) if q else data.dense_lowrank()
    C = data.text_counts(2000, 8000) if q else data.text_counts()
    T = data.tfidf(C)
    F = data.orl_faces()[: 100 if q else 400]
    work = []
    if "W1" in only:
        work.append((f"W1 dense {X1.shape[0]}×{X1.shape[1]} float32", X1, 20, 2.0, solvers))
    if "W2" in only:
        for k in (10, 50) if a.k50 else (10,):
            work.append((f"W2 tf-idf {T.shape[0]}×{T.shape[1]} nnz {T.nnz}", T, k, 2.0, solvers))
    if "W3" in only:
        work.append((f"W3 counts {C.shape[0]}×{C.shape[1]} nnz {C.nnz}, KL", C, 10, 1.0,
                     ["auto"]))
    if "W4" in only:
        work.append((f"W4 ORL faces {F.shape[0]}×{F.shape[1]}", F, 49, 2.0, solvers))
    defaults = []
    if "defaults" in only:
        from sklearn.datasets import load_digits

        D = load_digits().data
        pick = set(a.defaults.split(","))
        defaults = [(label, X, k) for key, label, X, k in (
            ("digits", "digits 1797×64", D, 16), ("W1", "W1", X1, 20), ("W2", "W2 k=10", T, 10),
            ("W4", "W4", F, 49)) if key in pick]
    rows, drows, state = [], [], {}
    for rnd in range(a.rounds):
        print(f"round {rnd + 1} of {a.rounds}\n{HEADER}", flush=True)
        for label, X, k, beta, sv in work:
            rows += run_pair(label, X, k, beta, sv, iters, rcpp=rcpp, state=state)
        if defaults:
            print(DEFAULTS_HEADER, flush=True)
        for label, X, k in defaults:
            drows.append(run_defaults(label, X, k))
    mem = []
    if "W6" in only:  # once: peak memory does not depend on the load
        print("| W6 | k | solver | peak RSS above baseline | budget 1.5×(X + W,H) | met |")
        for k in (10, 50):
            for solver in ("auto", "sklearn-cd"):
                mem.append(memory(T, k, solver))
                print(mem[-1], flush=True)
    block = f"Run of {info}; {a.rounds} interleaved rounds, medians.\n"
    if note:
        block += f"\n{note}.\n"
    block += f"\n{HEADER}\n" + "\n".join(_fmt_row(r) for r in _median_rows(rows)) + "\n"
    if drows:
        block += (f"\n{DEFAULTS_HEADER}\n"
                  + "\n".join(_fmt_default(r) for r in _median_rows(drows)) + "\n")
    if mem:
        block += ("\n| W6 | k | solver | peak RSS above baseline | budget 1.5×(X + W,H) "
                  "| met |\n|---|---|---|---|---|---|\n" + "\n".join(mem) + "\n")
    print("\n" + block)
    if a.record and not q:
        _record(block)


def _record(block: str) -> None:
    """Replace the run between the markers of docs/benchmarks.md's current figures."""
    text = DOCS.read_text()
    a, b = "<!-- bench_cpu: current run -->", "<!-- /bench_cpu -->"
    if a not in text or b not in text:
        raise SystemExit(f"docs/benchmarks.md lacks the markers {a} … {b}")
    i, j = text.index(a) + len(a), text.index(b)
    DOCS.write_text(text[:i] + "\n" + block + text[j:])


if __name__ == "__main__":
    main()
