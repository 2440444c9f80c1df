"""A self-contained HTML report of one or more factorisations (images embedded as base64 PNG).

Each :class:`Section` shows one fitted model: a metrics table, the convergence curve
(``history_``), the parts as images when the features form an image, the top features per
component, the coefficient heat map, and — when computed — a consensus map and rank-selection
curves. ``render_report(sections)`` returns the HTML; ``write_report`` writes it to a file. The
file needs no network and no other file to display.
"""

from __future__ import annotations

import datetime as _dt
import html
import pathlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Section", "model_section", "render_report", "write_report"]


@dataclass
class Section:
    """One block of the report: a title, a metrics table and a list of (caption, png) figures."""

    title: str
    metrics: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return "×".join(str(x) for x in v) if all(isinstance(x, int) for x in v) else str(v)
    return str(v)


def model_section(model, *, title: str, X=None, W=None, feature_names=None, row_names=None,
                  image_shape=None, n_top: int = 10, consensus=None, rank_curves=None,
                  extra_metrics: dict | None = None) -> Section:
    """Build the report section of a fitted model.

    Parameters
    ----------
    model : fitted estimator with ``components_`` (H, shape (k, n_features)) and ``history_``
    title : str
    X : data (n_samples, n_features), optional; with W it gives the quality metrics
    W : coefficients (n_samples, k), optional; computed by ``model.transform(X)`` when X is given
    feature_names, row_names : labels for the bar charts and the heat map
    image_shape : (h, w) with h·w = n_features to show the parts as images
    consensus : (n, n) consensus matrix, optional
    rank_curves : dict with "ks" and criterion name → values, optional
    extra_metrics : more rows for the metrics table
    """
    from . import plot
    from .metrics import summary

    H = np.asarray(model.components_)
    if X is not None and W is None:
        W = model.transform(X)
    metrics = {"n_components": H.shape[0], "n_features": H.shape[1]}
    if W is not None:
        metrics["n_samples"] = W.shape[0]
    for attr in ("n_iter_", "stop_reason_", "reconstruction_err_"):
        if hasattr(model, attr):
            metrics[attr.rstrip("_")] = getattr(model, attr)
    params = model.get_params(deep=False)
    for p in ("solver", "beta_loss", "init", "tol", "max_iter", "random_state"):
        if p in params:
            metrics[p] = params[p]
    if X is not None and W is not None:
        try:
            metrics.update(summary(X, W, H, params.get("beta_loss", "frobenius")))
            metrics.pop("reconstruction_err", None)
        except (ValueError, TypeError):  # e.g. masked data: metrics of the library skip it
            pass
    metrics.update(extra_metrics or {})
    sec = Section(title=title, metrics=metrics)
    history = getattr(model, "history_", None)
    if history and len(history.get("objective", [])) > 1:
        sec.figures.append(("Objective against iteration", plot.figure_to_png(
            plot.plot_convergence(history))))
    if image_shape is not None:
        sec.figures.append(("Parts: the rows of H shown as images", plot.figure_to_png(
            plot.plot_basis_images(H, image_shape))))
    sec.figures.append((f"Top {n_top} features of each component", plot.figure_to_png(
        plot.plot_top_features(H, feature_names, n_top=n_top))))
    if W is not None:
        sec.figures.append(("Coefficients: which components each sample uses",
                            plot.figure_to_png(plot.plot_coefficients(W, row_names=row_names))))
    if consensus is not None:
        sec.figures.append(("Consensus over restarts (reordered)", plot.figure_to_png(
            plot.plot_consensus(consensus, labels=row_names))))
    if rank_curves:
        curves = {k: v for k, v in rank_curves.items() if k != "ks"}
        sec.figures.append(("Rank-selection criteria against k", plot.figure_to_png(
            plot.plot_rank_curves(rank_curves["ks"], curves))))
    if H.shape[0] > 20:
        sec.notes.append("Bar charts show the first 20 components.")
    return sec


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
.meta{color:#666;font-size:.9em}table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 10px;text-align:left}th{background:#f4f4f4}
figure{margin:14px 0}figcaption{color:#555;font-size:.9em;margin-bottom:4px}
img{max-width:100%;height:auto;border:1px solid #eee}
"""


def render_report(sections, *, title: str = "nmfkit report", subtitle: str = "") -> str:
    """The report as one HTML string (no external resources)."""
    from . import __version__

    esc = html.escape
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(subtitle)} — nmfkit {esc(__version__)}, {when}. '
        "X ≈ W H: W (samples × k) are the coefficients, H (k × features) the parts.</p>",
    ]
    for sec in sections:
        parts.append(f"<section><h2>{esc(sec.title)}</h2>")
        rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(_fmt(v))}</td></tr>"
                       for k, v in sec.metrics.items())
        parts.append(f'<table class="metrics"><tbody>{rows}</tbody></table>')
        for note in sec.notes:
            parts.append(f"<p>{esc(note)}</p>")
        for caption, png in sec.figures:
            parts.append(f"<figure><figcaption>{esc(caption)}</figcaption>"
                         f'<img alt="{esc(caption)}" src="data:image/png;base64,{png}">'
                         "</figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path, sections, *, title: str = "nmfkit report",
                 subtitle: str = "") -> pathlib.Path:
    """Write :func:`render_report` to ``path``; returns the path."""
    path = pathlib.Path(path)
    path.write_text(render_report(sections, title=title, subtitle=subtitle), encoding="utf-8")
    return path
