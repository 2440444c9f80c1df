"""Hyperspectral unmixing of Indian Pines: each pixel's spectrum ≈ a non-negative mix of a few
endmember spectra. NMF gives the endmembers (rows of H) and their abundance maps (columns of W).

Data: Indian Pines, 145×145 pixels × 200 bands (water-absorption bands removed), shipped in
the tensorly wheel (``pip install tensorly``) and read by path with ``np.load`` — tensorly is
not imported. X is pixels × bands = 21025×200. The ground-truth map (16 crop classes) is used
only to say how well the abundance maps separate the classes.

    python examples/indian_pines_unmixing.py [--k 8]
"""

import time

import numpy as np
from _common import package_dir, parser, save

from nmfkit import NMF
from nmfkit.metrics import explained_variance


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=300)
    args = p.parse_args()
    if args.quick:
        args.max_iter = 20
    data = package_dir("tensorly", "pip install tensorly") / "datasets" / "data"
    cube = np.load(data / "Indian_pines_corrected.npy", allow_pickle=False).astype(np.float64)
    gt = np.load(data / "Indian_pines_gt.npy", allow_pickle=False)
    h, w, bands = cube.shape
    X = cube.reshape(-1, bands)
    X = X / X.max()  # reflectance counts to [0, 1]; NMF is scale-equivariant
    print(f"Indian Pines: {h}×{w} pixels × {bands} bands → X {X.shape[0]}×{X.shape[1]}")
    t0 = time.perf_counter()
    model = NMF(args.k, init="nndsvda", solver="cd", max_iter=args.max_iter, tol=1e-5,
                random_state=args.seed)
    W = model.fit_transform(X)
    H = model.components_
    print(f"k={args.k}: {model.n_iter_} iterations in {time.perf_counter() - t0:.1f}s, "
          f"explained variance {explained_variance(X, W, H):.4f}")
    # sum-to-one abundances for display: a pixel's share of each endmember
    A = W * H.sum(axis=1)
    A = A / np.maximum(A.sum(axis=1, keepdims=True), 1e-12)
    labelled = gt.ravel() > 0
    dominant = A.argmax(axis=1)
    purity = sum(np.bincount(dominant[labelled & (gt.ravel() == c)], minlength=args.k).max()
                 for c in np.unique(gt[gt > 0])) / labelled.sum()
    print(f"share of labelled pixels whose class agrees with its majority endmember: {purity:.2f}")

    import matplotlib.pyplot as plt

    cols = int(np.ceil(args.k / 2))
    fig = plt.figure(figsize=(2.2 * cols + 4, 5))
    grid = fig.add_gridspec(2, cols + 2)
    ax = fig.add_subplot(grid[:, :2])
    for i, spec in enumerate(H):
        ax.plot(spec / spec.max(), lw=1, label=str(i))
    ax.set_xlabel("band")
    ax.set_ylabel("reflectance (scaled)")
    ax.set_title("endmember spectra (rows of H)")
    ax.legend(fontsize=6, ncol=2)
    for i in range(args.k):
        a = fig.add_subplot(grid[i // cols, 2 + i % cols])
        a.imshow(A[:, i].reshape(h, w), cmap="viridis", vmin=0,
                 vmax=max(float(np.percentile(A[:, i], 99)), 1e-12))
        a.set_title(f"abundance {i}", fontsize=8)
        a.axis("off")
    fig.tight_layout()
    save(fig, args.out, "indian_pines_unmixing.png")


if __name__ == "__main__":
    main()
