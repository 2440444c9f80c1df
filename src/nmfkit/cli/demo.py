"""``nmfkit demo``: fit scikit-learn's bundled digits and show the learned parts."""

from __future__ import annotations

import json
import pathlib
import time

import click
import numpy as np

from ._app import cli


@cli.command()
@click.option("-k", "--n-components", default=16, show_default=True, help="Rank k.")
@click.option("--out", "out_dir", default="nmfkit-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
def demo(n_components: int, out_dir: str, seed: int):
    """Factorise the handwritten digits (1797 images of 8×8) and save the parts."""
    from sklearn.datasets import load_digits

    from .. import NMF
    from ..metrics import summary

    out = pathlib.Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create output folder {out_dir!r}: {exc.strerror}")
    X = load_digits().data.astype(np.float64)
    t0 = time.perf_counter()
    model = NMF(n_components=n_components, init="nndsvda", solver="cd", max_iter=400,
                tol=1e-5, random_state=seed)
    W = model.fit_transform(X)
    elapsed = time.perf_counter() - t0
    H = model.components_
    metrics = summary(X, W, H)
    click.echo(f"digits: X is {X.shape[0]}×{X.shape[1]}, k={n_components}, "
               f"{model.n_iter_} iterations in {elapsed:.2f}s")
    click.echo(f"reconstruction error ‖X − WH‖_F : {metrics['reconstruction_error']:.4f}")
    click.echo(f"relative error                 : {metrics['relative_error']:.4f}")
    click.echo(f"explained variance             : {metrics['explained_variance']:.4f}")
    click.echo(f"Hoyer sparseness of W / H      : {metrics['sparseness_W']:.3f} / "
               f"{metrics['sparseness_H']:.3f}")
    np.save(out / "W.npy", W)
    np.save(out / "H.npy", H)
    (out / "summary.json").write_text(json.dumps(
        {"data": "sklearn digits", "shape": list(X.shape), "n_components": n_components,
         "n_iter": model.n_iter_, "seconds": elapsed, **metrics}, indent=2))
    image = _save_parts(H, (8, 8), out / "parts.png")
    click.echo(f"wrote {out / 'W.npy'}, {out / 'H.npy'}, {out / 'summary.json'}"
               + (f", {image}" if image else " (install matplotlib for parts.png)"))


def _save_parts(H, shape, path):
    """A grid of the components as images; None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    k = H.shape[0]
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < k:
            ax.imshow(H[i].reshape(shape), cmap="gray_r", interpolation="nearest")
            ax.set_title(f"part {i}", fontsize=8)
    fig.suptitle("NMF parts of the digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
