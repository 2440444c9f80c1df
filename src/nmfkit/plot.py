"""Plots of a factorisation (matplotlib, the ``plot`` extra): each function returns a Figure.

Orientation: W (n_samples, k) holds the per-sample coefficients, H (k, n_features) the parts.
- :func:`plot_convergence` — objective against iteration (``model.history_``)
- :func:`plot_basis_images` — the rows of H as images when the features form an image
- :func:`plot_top_features` — the heaviest features (words, genes) of each component
- :func:`plot_coefficients` — heat map of W, samples grouped by their dominant component
- :func:`plot_consensus` — a consensus matrix reordered by hierarchical clustering
- :func:`plot_rank_curves` — rank-selection criteria against k
- :func:`plot_component_profiles` — each row of H as a curve in its own panel (spectra)

Labels (feature and sample names, titles) are drawn as plain text: a ``$`` in a column name is
not read as matplotlib mathtext.
"""

from __future__ import annotations

import base64
import io as _io
import math

import numpy as np

__all__ = ["plot_convergence", "plot_basis_images", "plot_top_features", "plot_coefficients",
           "plot_consensus", "plot_rank_curves", "plot_component_profiles", "figure_to_png",
           "HEATMAP_MAX_ROWS"]

HEATMAP_MAX_ROWS = 300  # samples drawn in the coefficient heat map (evenly spaced)
WIDE = 11.0  # inches: figures meant to fill the report's width


def _text(label) -> str:
    """A label as literal text: matplotlib would read ``$...$`` as mathtext (and fail on
    e.g. ``price $bn^$``)."""
    return str(label).replace("$", r"\$")


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "nmfkit[plot]"') from None
    return plt


def figure_to_png(fig, *, dpi: int = 90, close: bool = True) -> str:
    """The figure as a base64 PNG string (for an ``<img src="data:image/png;base64,...">``)."""
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_convergence(history: dict, *, title: str = "Convergence"):
    """Objective (log scale) against iteration from ``history`` with "n_iter", "objective"."""
    plt = _plt()
    it = np.asarray(history.get("n_iter", []), dtype=float)
    f = np.asarray(history.get("objective", []), dtype=float)
    fig, ax = plt.subplots(figsize=(WIDE, 3.2))
    ok = np.isfinite(f)
    ax.plot(it[ok], f[ok], marker="o", ms=3, lw=1.2)
    if ok.any() and np.all(f[ok] > 0) and f[ok].max() > 10 * f[ok].min():
        ax.set_yscale("log")  # only where the curve spans more than a decade
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("iteration")
    ax.set_ylabel("objective")
    ax.set_title(_text(title))
    ax.grid(alpha=0.3)
    return fig


def plot_basis_images(H, image_shape, *, max_components: int = 64, title: str = "Parts (rows of H)",
                      cmap: str = "gray_r"):
    """Each row of H (k, n_features) shown as an image of ``image_shape`` (h, w), h·w = n_features."""
    plt = _plt()
    H = np.asarray(H)
    h, w = image_shape
    if h * w != H.shape[1]:
        raise ValueError(f"image shape {h}x{w} has {h * w} pixels but H has {H.shape[1]} "
                         "features; give the image's height and width")
    k = min(H.shape[0], max_components)
    cols = int(math.ceil(math.sqrt(k)))
    rows = int(math.ceil(k / cols))
    size = 1.4 * max(1.0, w / h)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, 1.4 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < k:
            ax.imshow(H[i].reshape(h, w), cmap=cmap, interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(_text(title))
    return fig


def plot_top_features(H, feature_names=None, *, n_top: int = 10, max_components: int = 20,
                      title: str = "Top features per component"):
    """Horizontal bar charts of the ``n_top`` largest entries of each row of H."""
    plt = _plt()
    H = np.asarray(H)
    k = min(H.shape[0], max_components)
    n_top = min(n_top, H.shape[1])
    names = list(feature_names) if feature_names is not None else [str(j) for j in range(H.shape[1])]
    cols = min(k, 5)
    rows = int(math.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 0.22 * n_top * rows + 0.9 * rows),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= k:
            ax.axis("off")
            continue
        top = np.argsort(H[i])[::-1][:n_top]
        ax.barh(range(len(top)), H[i, top][::-1], color="C0")
        ax.set_yticks(range(len(top)))
        ax.set_yticklabels([_text(str(names[j])[:18]) for j in top[::-1]], fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title(f"component {i}", fontsize=8)
    fig.suptitle(_text(title))
    fig.tight_layout()
    return fig


def plot_coefficients(W, *, row_names=None, max_rows: int = HEATMAP_MAX_ROWS,
                      title: str = "Coefficients W (rows scaled to max 1)"):
    """Heat map of W (n_samples, k): rows scaled to their maximum, grouped by dominant component.

    At most ``max_rows`` evenly spaced samples are drawn, so large data stay readable.
    """
    plt = _plt()
    W = np.asarray(W, dtype=float)
    idx = np.arange(W.shape[0])
    if W.shape[0] > max_rows:
        idx = np.linspace(0, W.shape[0] - 1, max_rows).astype(int)
    A = W[idx]
    m = A.max(axis=1, keepdims=True)
    A = np.divide(A, m, out=np.zeros_like(A), where=m > 0)
    order = np.lexsort((-A.max(axis=1), A.argmax(axis=1)))
    fig, ax = plt.subplots(figsize=(WIDE, 4.5))
    im = ax.imshow(A[order], aspect="auto", cmap="viridis", interpolation="nearest")
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("component")
    ax.set_ylabel("sample (grouped by dominant component)")
    if row_names is not None and len(order) <= 40:
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([_text(row_names[idx[o]]) for o in order], fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.04)
    shown = f" — {len(idx)} of {W.shape[0]} samples shown" if len(idx) < W.shape[0] else ""
    ax.set_title(_text(title) + shown)
    return fig


def plot_consensus(C, *, labels=None, title: str = "Consensus matrix"):
    """A symmetric consensus matrix (n, n), values in [0, 1], reordered by average linkage."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    plt = _plt()
    C = np.asarray(C, dtype=float)
    D = np.clip(1.0 - C, 0.0, None)
    np.fill_diagonal(D, 0.0)
    order = leaves_list(linkage(squareform((D + D.T) / 2, checks=False), "average")) \
        if C.shape[0] > 2 else np.arange(C.shape[0])
    fig, ax = plt.subplots(figsize=(5, 4.4))
    im = ax.imshow(C[np.ix_(order, order)], cmap="RdBu_r", vmin=0, vmax=1,
                   interpolation="nearest")
    if labels is not None and len(order) <= 60:
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([_text(labels[o]) for o in order], rotation=90, fontsize=5)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([_text(labels[o]) for o in order], fontsize=5)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(_text(title))
    return fig


def plot_rank_curves(ks, curves: dict, *, title: str = "Rank selection"):
    """One panel per criterion: ``curves`` maps a name to values, one per k in ``ks``."""
    plt = _plt()
    names = [n for n, v in curves.items() if v is not None and len(v) == len(ks)]
    if not names:
        raise ValueError("plot_rank_curves needs at least one curve with one value per k")
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(list(ks), np.asarray(curves[name], dtype=float), marker="o")
        ax.set_xlabel("k")
        _integer_ticks(ax.xaxis)
        ax.set_title(_text(name), fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(_text(title))
    fig.tight_layout()
    return fig


def plot_component_profiles(H, *, x=None, max_components: int = 40, xlabel: str = "feature",
                            title: str = "Parts (rows of H), one panel per component"):
    """Each row of H (k, n_features) as a curve in its own small panel (spectra, profiles).

    ``x`` (n_features,) gives the horizontal axis (e.g. wavelengths); default the column index.
    Panels share the horizontal axis; each curve is scaled to its own maximum, so shapes can
    be compared even when the components' weights differ by orders of magnitude.
    """
    plt = _plt()
    H = np.asarray(H, dtype=float)
    x = np.arange(H.shape[1]) if x is None else np.asarray(x, dtype=float)
    if x.shape != (H.shape[1],):
        raise ValueError(f"x has shape {x.shape} but H has {H.shape[1]} features; give one "
                         "position per column of H")
    k = min(H.shape[0], max_components)
    cols = min(k, 4)
    rows = int(math.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(WIDE, 1.7 * rows + 0.6), squeeze=False,
                             sharex=True)
    for i, ax in enumerate(axes.ravel()):
        if i >= k:
            ax.axis("off")
            continue
        m = H[i].max()
        ax.plot(x, H[i] / m if m > 0 else H[i], lw=1, color=f"C{i % 10}")
        ax.set_title(f"component {i} (max {m:.3g})", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([0, 1])
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel(_text(xlabel), fontsize=7)
    fig.suptitle(_text(title))
    fig.tight_layout()
    return fig
