"""GPU check of the torch backend (issue 7): correctness against the CPU, speed against the card.

One run (under 5 minutes on a GPU machine) that:

1. measures the card's bandwidth floor with a device-to-device copy of X's size;
2. W5 — dense 20000×5000, k=20, float32 (``data.dense_lowrank``): checks that nmfkit's MU and CD
   on the device follow the CPU (numpy) trajectory, times one iteration of each on the device
   next to the floor (X read twice per iteration), times scikit-learn MU and CD on the host's
   cores in the same run, and times nmfkit on the device to reach scikit-learn CD's
   200-iteration objective (same initial W, H);
3. a sparse case with ~1M non-zeros (TF-IDF of the 20-Newsgroups-shaped generator, or uniform
   random with ``--small``): the same correctness check and per-iteration times;
4. batched restarts: 8 MU restarts in one batched fit against 8 × one fit;
5. on the sparse case, KL coordinate descent (``solver="cd", beta_loss=1``) and masked MU
   (``missing_values="unobserved"``) on the device against the CPU, with their times.

It prints a markdown table, writes it to ``--out`` (default ``$OUT/gpu_check.md`` when $OUT is
set) and with ``--docs`` appends it to docs/benchmarks.md. ``--device cpu --small`` runs the
whole pipeline in seconds on CPU torch (the CI smoke test); its figures mean nothing.

Targets (issue 7, W5): MU ≤ 2× the bandwidth floor per iteration; time to scikit-learn CD's
objective ≥ 30× shorter than scikit-learn CD on the host.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import platform
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import torch  # noqa: E402

from nmfkit import _fit  # noqa: E402
from nmfkit.backends import get_backend  # noqa: E402
from nmfkit.batched import batched_factorize  # noqa: E402
from nmfkit.init import initialize  # noqa: E402
from nmfkit.losses import beta_divergence  # noqa: E402


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bandwidth_floor(nbytes: int, dev, reps: int = 20) -> tuple[float, float]:
    """(GB/s of a device-to-device copy, seconds to read ``nbytes`` twice at that rate)."""
    n = max(1, nbytes // 4)
    a = torch.ones(n, dtype=torch.float32, device=dev)
    b = torch.empty_like(a)
    b.copy_(a)
    _sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        b.copy_(a)
    _sync(dev)
    dt = (time.perf_counter() - t) / reps
    bw = 2 * n * 4 / dt  # bytes read + written per copy
    del a, b
    return bw / 1e9, 2 * nbytes / bw


def _plain_options(solver):
    """No extrapolation / repeated sweeps: device and CPU then take the same steps (restart
    decisions on float32 objectives could otherwise differ between the two)."""
    if solver == "cd":
        return {"inner": False, "extrapolate": False}
    return {"extrapolate": False} if solver in ("anls", "pgd") else None


def fit_device(X, W0, H0, solver, iters, dev, beta=2.0, **kw):
    """nmfkit on ``dev`` from (W0, H0): (FitResult, seconds per iteration after a warm-up)."""
    nx = get_backend(backend="torch", device=dev)
    Xd = nx.asarray(X)
    Wd, Hd = nx.asarray(W0), nx.asarray(H0)
    opts = _plain_options(solver)
    _fit.factorize(Xd, Wd.clone(), Hd.clone(), solver=solver, beta=beta, nx=nx, tol=0,
                   max_iter=3, solver_options=opts)  # warm-up (kernels, allocator)
    _sync(dev)
    t = time.perf_counter()
    with nx.compute_context():
        r = _fit.factorize(Xd, Wd.clone(), Hd.clone(), solver=solver, beta=beta, nx=nx, tol=0,
                           max_iter=iters, solver_options=opts, **kw)
    _sync(dev)
    return r, (time.perf_counter() - t) / max(r.n_iter, 1)


def time_to_target(X, W0, H0, solver, target, dev, max_time):
    """Seconds for nmfkit on ``dev`` to reach objective ≤ target (None if not in max_time)."""
    nx = get_backend(backend="torch", device=dev)
    Xd, Wd, Hd = nx.asarray(X), nx.asarray(W0), nx.asarray(H0)
    hit = {}

    def cb(info):
        if info.objective is not None and info.objective <= target:
            hit["t"] = info.elapsed
            hit["it"] = info.n_iter
            return True
        return None

    _sync(dev)
    t = time.perf_counter()
    r = _fit.factorize(Xd, Wd, Hd, solver=solver, beta=2.0, nx=nx, tol=0, max_iter=100000,
                       max_time=max_time, callback=cb)
    _sync(dev)
    total = time.perf_counter() - t
    return (total if "t" in hit else None), hit.get("it", r.n_iter), r.objective


def sklearn_fit(X, W0, H0, solver, iters):
    from sklearn.decomposition import NMF as SkNMF

    m = SkNMF(W0.shape[1], solver=solver, init="custom", tol=0, max_iter=iters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        W = m.fit_transform(X, W=W0.copy(), H=H0.copy())
        dt = time.perf_counter() - t
    return beta_divergence(X, W, m.components_, 2.0), dt


def cpu_reference(X, W0, H0, solver, iters, beta=2.0):
    """nmfkit numpy objective history from (W0, H0), for the correctness check."""
    opts = _plain_options(solver)
    r = _fit.factorize(X, W0.copy(), H0.copy(), solver=solver, beta=beta, nx=get_backend(X),
                       tol=0, max_iter=iters, solver_options=opts)
    if not np.all(np.isfinite(r.history["objective"])):
        raise RuntimeError(f"CPU reference {solver} beta={beta} is not finite")
    return np.asarray(r.history["objective"])


def kl_cd_and_masked(name, X, W0, H0, dev, floor, rows, checks, n_check):
    """KL coordinate descent (5 MU warm-up iterations, then Newton sweeps vectorised over rows)
    and masked MU on the stored entries (missing_values="unobserved") on the device, against
    the CPU: final objective and time per iteration."""
    from nmfkit import NMF

    nx = get_backend(backend="torch", device=dev)
    Xd = nx.asarray(X)

    def kl(iters):
        _sync(dev)
        t = time.perf_counter()
        with nx.compute_context():
            r = _fit.factorize(Xd, nx.asarray(W0), nx.asarray(H0), solver="cd", beta=1.0,
                               nx=nx, tol=0, max_iter=iters)
        _sync(dev)
        return r, time.perf_counter() - t

    n_kl = 10
    ref = cpu_reference(X, W0, H0, "cd", n_kl, beta=1.0)
    kl(6)  # warm-up: kernels, allocator, the CSR transpose
    _, t5 = kl(5)
    r, t10 = kl(n_kl)
    rel = float(abs(r.history["objective"][-1] - ref[-1]) / abs(ref[-1]))
    checks.append((f"{name} cd KL: device vs CPU final objective, {n_kl} it", rel, rel < 1e-3))
    per_sweep = max(t10 - t5, 0.0) / 5
    rows.append((name, "nmfkit cd KL on device (one Newton sweep of W and H)",
                 f"{per_sweep * 1e3:.3f}", f"{per_sweep / floor:.2f}× floor", ""))
    kw = {"n_components": W0.shape[1], "solver": "mu", "missing_values": "unobserved",
          "init": "custom", "tol": 0, "max_iter": n_check}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = NMF(**kw).fit(X, W=W0, H=H0)
        NMF(**{**kw, "max_iter": 2}, backend="torch", device=dev).fit(X, W=W0, H=H0)
        gpu = NMF(**kw, backend="torch", device=dev).fit(X, W=W0, H=H0)
    rel = float(abs(gpu.loss_curve_[-1] - cpu.loss_curve_[-1]) / abs(cpu.loss_curve_[-1]))
    checks.append((f"{name} masked mu (unobserved): device vs CPU final objective", rel,
                   rel < 1e-3))
    per_it = gpu.history_["time"][-1] / max(gpu.n_iter_, 1)
    cpu_it = cpu.history_["time"][-1] / max(cpu.n_iter_, 1)
    rows.append((name, "nmfkit masked mu on device (stored entries observed)",
                 f"{per_it * 1e3:.3f}", f"{per_it / floor:.2f}× floor",
                 f"numpy on host: {cpu_it * 1e3:.1f} ms"))


def workload(name, X, k, dev, a, rows, checks):
    W0, H0 = initialize(X, k, init="nndsvda", random_state=0)
    W0, H0 = W0.astype(np.float32), H0.astype(np.float32)
    nbytes = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) if sp.issparse(X) else X.nbytes
    gbs, floor = bandwidth_floor(nbytes, dev)
    rows.append((name, "bandwidth floor (D2D copy, X read twice)", f"{floor * 1e3:.3f}",
                 f"{gbs:.0f} GB/s", ""))
    n_check = 20
    for solver in ("mu", "cd"):
        ref = cpu_reference(X, W0, H0, solver, n_check)
        r, _ = fit_device(X, W0, H0, solver, n_check, dev)
        got = np.asarray(r.history["objective"])
        rel = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)))
        ok = rel < 1e-3
        checks.append((f"{name} {solver}: device vs CPU objective, {n_check} it", rel, ok))
        _, per_it = fit_device(X, W0, H0, solver, a.iters, dev)
        ratio = per_it / floor
        note = ""
        if solver == "mu" and not sp.issparse(X):
            note = f"target ≤ 2× floor: {'met' if ratio <= 2 else 'NOT met'}"
        rows.append((name, f"nmfkit {solver} on device", f"{per_it * 1e3:.3f}",
                     f"{ratio:.2f}× floor", note))
    for solver in ("anls", "pgd"):  # correctness on the device; a few iterations (host BPP)
        ref = cpu_reference(X, W0, H0, solver, 5)
        r, per_it = fit_device(X, W0, H0, solver, 5, dev)
        got = np.asarray(r.history["objective"])
        rel = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)))
        checks.append((f"{name} {solver}: device vs CPU objective, 5 it", rel, rel < 1e-3))
        rows.append((name, f"nmfkit {solver} on device", f"{per_it * 1e3:.3f}",
                     f"{per_it / floor:.2f}× floor", ""))
    # KL (beta=1) multiplicative updates: the sampled product at X's non-zeros when sparse
    ref = cpu_reference(X, W0, H0, "mu", n_check, beta=1.0)
    r, per_it = fit_device(X, W0, H0, "mu", n_check, dev, beta=1.0)
    got = np.asarray(r.history["objective"])
    rel = float(np.max(np.abs(got[-1] - ref[-1]) / abs(ref[-1])))
    checks.append((f"{name} mu KL: device vs CPU final objective, {n_check} it", rel, rel < 1e-3))
    rows.append((name, "nmfkit mu KL on device", f"{per_it * 1e3:.3f}", f"{per_it / floor:.2f}× "
                 "floor", ""))
    if sp.issparse(X):  # (a dense X would take the numba reference minutes per iteration)
        kl_cd_and_masked(name, X, W0, H0, dev, floor, rows, checks, n_check)
    for solver, iters in (("mu", a.sk_mu_iters), ("cd", a.sk_cd_iters)):
        f_sk, t_sk = sklearn_fit(X, W0, H0, solver, iters)
        rows.append((name, f"scikit-learn {solver} on host ({os.cpu_count()} cores)",
                     f"{t_sk / iters * 1e3:.3f}", f"{iters} it in {t_sk:.2f} s", ""))
        if solver == "cd" and iters == 200:
            for s in ("cd", "mu"):
                t_hit, it, f_end = time_to_target(X, W0, H0, s, f_sk, dev, a.max_time)
                if t_hit is None:
                    rows.append((name, f"nmfkit {s}: time to sklearn CD 200-it objective",
                                 "", f"not reached in {a.max_time:.0f} s ({f_end:.6g} vs "
                                 f"{f_sk:.6g})", "target NOT met" if s == "cd" else ""))
                    continue
                speed = t_sk / t_hit
                note = (f"target ≥ 30×: {'met' if speed >= 30 else 'NOT met'}"
                        if not sp.issparse(X) else "")
                rows.append((name, f"nmfkit {s}: time to sklearn CD 200-it objective",
                             "", f"{t_hit:.3f} s ({it} it), {speed:.1f}× faster", note))
    # batched restarts (dense only: one wide product per half-iteration for all restarts)
    if not sp.issparse(X):
        B = 8
        Xd = torch.as_tensor(X, device=dev)
        batched_factorize(Xd, k, n_restarts=B, max_iter=2, tol=0, random_state=0)
        _sync(dev)
        t = time.perf_counter()
        batched_factorize(Xd, k, n_restarts=B, max_iter=a.iters, tol=0, random_state=0)
        _sync(dev)
        tb = (time.perf_counter() - t) / a.iters
        rows.append((name, f"batched MU, {B} restarts (one iteration of all)",
                     f"{tb * 1e3:.3f}", f"{B} single fits: see MU row × {B}", ""))


def machine(dev) -> str:
    card = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU (torch)"
    import sklearn

    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; device {card}; host "
            f"{os.cpu_count()} cores; torch {torch.__version__}, numpy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}; "
            f"float32, TF32 off")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny sizes: a smoke test")
    ap.add_argument("--iters", type=int, default=50, help="timed iterations per solver")
    ap.add_argument("--max-time", type=float, default=20.0,
                    help="limit of each time-to-objective run (s)")
    ap.add_argument("--out", default=None, help="markdown file for the table")
    ap.add_argument("--docs", action="store_true", help="append the table to docs/benchmarks.md")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    from data import dense_lowrank, text_counts, tfidf

    if a.small:
        if dev.type == "cpu":
            torch.set_num_threads(1)  # tiny products: threads only add contention
        a.max_time = min(a.max_time, 2.0)
        a.iters = min(a.iters, 5)
        a.sk_mu_iters, a.sk_cd_iters = 5, 200
        dense = dense_lowrank(300, 120, 5, seed=0)
        sparse = sp.random(400, 300, density=0.05, random_state=0, format="csr",
                           dtype=np.float32)
        k = 5
    else:
        a.sk_mu_iters, a.sk_cd_iters = 50, 200
        dense = dense_lowrank(20000, 5000, 20, seed=0)
        sparse = tfidf(text_counts()).astype(np.float32)
        k = 20
    rows, checks = [], []
    t0 = time.perf_counter()
    stopped = None

    def _term(signum, frame):  # `timeout` sends SIGTERM: keep what was measured so far
        raise TimeoutError("stopped by SIGTERM (time limit)")

    old_term = signal.signal(signal.SIGTERM, _term)
    try:
        workload(f"W5 dense {dense.shape[0]}×{dense.shape[1]} k={k}", dense, k, dev, a, rows,
                 checks)
        a.sk_cd_iters = a.sk_cd_iters if a.small else 50  # per-iteration time only on sparse
        workload(f"sparse {sparse.shape[0]}×{sparse.shape[1]}, {sparse.nnz} nnz k={k}", sparse,
                 k, dev, a, rows, checks)
    except (TimeoutError, KeyboardInterrupt) as exc:
        stopped = f"{type(exc).__name__}: {exc}"
    finally:
        signal.signal(signal.SIGTERM, old_term)
    lines = [f"### GPU check (issue 7) — {machine(dev)}", "",
             "| workload | method | ms / iteration | figure | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += ["", "| correctness check | max relative difference | ok |", "|---|---|---|"]
    lines += [f"| {c} | {rel:.2e} | {'yes' if ok else 'NO'} |" for c, rel, ok in checks]
    lines += ["", f"Total run time {time.perf_counter() - t0:.1f} s."
              + (f" INCOMPLETE — {stopped}; the rows above are all that ran." if stopped else ""),
              ""]
    text = "\n".join(lines)
    print(text)
    out = a.out or (os.path.join(os.environ["OUT"], "gpu_check.md") if os.environ.get("OUT")
                    else None)
    if out:
        pathlib.Path(out).write_text(text + "\n")
    if a.docs:
        with open(HERE.parent / "docs" / "benchmarks.md", "a") as fh:
            fh.write("\n" + text + "\n")
    if stopped:
        return 1
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
