"""A self-contained HTML report of one or more factorisations (images embedded as base64 PNG).

Each :class:`Section` shows one fitted model: a table of quality metrics and one of the fit's
settings, the top features of each component as an HTML table (text, not pictures; left out
when the features are pixels), the convergence curve, the parts as images when the features
form an image or one small panel per component when they are a spectrum, the coefficient heat
map, and — when computed — a consensus map and rank-selection curves. The page opens with a
table of contents and ends with a glossary that explains, in one sentence each, every quantity
shown. ``render_report(sections)`` returns the HTML; ``write_report`` writes it to a file. The
file needs no network and no other file to display.
"""

from __future__ import annotations

import datetime as _dt
import html
import pathlib
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Section", "model_section", "outlier_tables", "render_report", "write_report",
           "GLOSSARY", "top_features_table"]

# one name per quantity: the key used in tables, its label, and one sentence
GLOSSARY = {
    "n_samples": ("samples", "Rows of X: the items factorised (documents, images, cells...)."),
    "n_features": ("features", "Columns of X: the measured variables (words, pixels, genes...)."),
    "n_components": ("components (k)", "The rank k: the number of parts in H and of "
                     "coefficients each sample has in W."),
    "n_iter": ("iterations", "Iterations the solver ran before it stopped."),
    "stop_reason": ("stop reason", "Why the fit stopped: tol (the objective stopped "
                    "decreasing), max_iter, max_time, callback, interrupted or exact."),
    "seconds": ("time (s)", "Wall-clock seconds the fit took."),
    "objective": ("objective", "The minimised quantity at the last iteration: the loss plus "
                  "any penalties."),
    "reconstruction_error": ("reconstruction error", "‖X − WH‖_F for the Frobenius loss, "
                             "√(2·divergence) for other losses; lower is better."),
    "relative_error": ("relative error", "‖X − WH‖_F / ‖X‖_F: the share of the data's norm "
                       "the fit misses; 0 is an exact fit."),
    "explained_variance": ("explained variance", "1 − ‖X − WH‖²_F / ‖X − column means‖²_F: "
                           "the share of the data's variance the fit reproduces; 1 is exact."),
    "sparseness_W": ("sparseness of W", "Hoyer's sparseness of W in [0, 1]: 0 when all "
                     "coefficients are equal, 1 when each sample uses a single component."),
    "sparseness_H": ("sparseness of H", "Hoyer's sparseness of H in [0, 1]: 0 when all "
                     "weights are equal, 1 when each part holds a single feature."),
    "kkt_residual": ("KKT residual", "How far W and H are from a stationary point of the "
                     "objective, relative to the gradient; 0 at a local optimum."),
    "n_observed": ("observed entries", "Entries of X that were observed; with missing values "
                   "the metrics use these only."),
    "solver": ("solver", "The update rule that fitted W and H (see docs/solvers.md)."),
    "beta_loss": ("loss", "The measure of misfit: frobenius (squared error), "
                  "kullback-leibler, itakura-saito, or a β-divergence."),
    "init": ("initialisation", "How W and H were started (random or an NNDSVD variant)."),
    "tol": ("tolerance", "The fit stops when the objective's relative decrease falls below it."),
    "max_iter": ("iteration limit", "The most iterations the fit may run."),
    "random_state": ("seed", "The random seed of the start, for reproducible fits."),
    "batch_size": ("batch size", "Rows per mini-batch of the online fit (MiniBatchNMF)."),
    "cv_error": ("cv_error", "Cross-validated error: the reconstruction error of held-out "
                 "entries at each k; lower is better."),
    "cv_se": ("cv_se", "The standard error of cv_error over the folds."),
    "cophenetic": ("cophenetic", "Cophenetic correlation of the consensus matrix over "
                   "restarts (Brunet et al. 2004); near 1 when the clustering is stable."),
    "dispersion": ("dispersion", "Dispersion of the consensus matrix (Kim & Park 2007), in "
                   "[0, 1]; 1 when every pair of samples is always or never clustered together."),
    "amari": ("amari", "Amari-type distance between the components of the restarts; 0 when "
              "every restart finds the same parts."),
    "perm_explained_variance": ("perm_explained_variance", "Explained variance of the same "
                                "fit on X with each column permuted: the baseline of noise."),
    "perm_cophenetic": ("perm_cophenetic", "Cophenetic correlation on the column-permuted X: "
                        "the baseline of noise."),
    "n_not_converged": ("n_not_converged", "Restarts that reached the iteration limit before "
                        "the tolerance."),
    "suggested k": ("suggested k", "The rank the criteria point to together, with its reason."),
    "loss": ("robust loss", "huber, cauchy or l21: a loss that limits the pull of outlying "
             "entries or samples on the fit (docs/robust.md)."),
    "outliers": ("outliers", "sparse: X ≈ WH + S with S ≥ 0 sparse, the corruption above the "
                 "model kept out of the parts; groups: S removes whole groups of features "
                 "(image tiles) of a sample, signed (occlusions, blocks)."),
    "loss_scale": ("loss scale", "The residual size beyond which an entry counts as an "
                   "outlier (Huber's δ, Cauchy's c, the L1 weight λ of S)."),
    "outlier_score": ("outlier score", "The share of a residual the robust fit did not fit as "
                      "least squares (0: an ordinary entry, near 1: ignored); per sample, the "
                      "mean over its entries (l21: 1 − median residual / the sample's)."),
    "reason": ("reason", "Why that rank is suggested."),
}
_PREFIX_GLOSSARY = {
    "suggested by ": "The rank this criterion alone would pick.",
}
_SETTINGS = ("solver", "beta_loss", "loss", "outliers", "init", "tol", "max_iter",
             "random_state", "batch_size")
_ALIASES = {"reconstruction_err": "reconstruction_error", "n_iter_": "n_iter"}


@dataclass
class Section:
    """One block of the report.

    title : str
    metrics : dict, name → value, shown as a table (quality and size of the fit)
    figures : list of (caption, base64 png)
    notes : list of str, paragraphs under the tables
    settings : dict, the fit's parameters, shown as a second table
    tables : list of (caption, html) blocks shown before the figures (e.g. top features)
    terms : list of str, more quantities the figures show (e.g. rank-selection criteria) to
        explain in the glossary
    """

    title: str
    metrics: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    tables: list = field(default_factory=list)
    terms: list = field(default_factory=list)


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, (list, tuple)):
        return "×".join(str(x) for x in v) if all(isinstance(x, int) for x in v) else str(v)
    return str(v)


def _clean(d: dict) -> dict:
    """One name per quantity, no empty rows."""
    out = {}
    for k, v in d.items():
        k = _ALIASES.get(k, k)
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            continue
        out[k] = v
    return out


def _is_spectrum(feature_names, n_features: int) -> bool:
    """Numeric, monotone feature names (wavelengths, m/z, frequencies): a spectrum."""
    if feature_names is None or n_features < 8:
        return False
    try:
        x = np.array([float(str(f)) for f in feature_names])
    except ValueError:
        return False
    d = np.diff(x)
    return bool(np.all(d > 0) or np.all(d < 0))


def top_features_table(top, *, bars: bool = True) -> str:
    """An HTML table of :class:`nmfkit._topics.TopFeatures`: one row per component, its
    features in order as text, each with a small bar of its weight relative to the
    component's heaviest feature (``bars=False``: the words only)."""
    esc = html.escape
    rows = []
    for c, fw in enumerate(top.by_component()):
        if not fw:
            rows.append(f"<tr><th>{c}</th><td><em>no feature of positive weight</em></td></tr>")
            continue
        wmax = max(w for _, w in fw) or 1.0
        cells = []
        for f, w in fw:
            bar = (f'<span class="bar" style="width:{max(2, round(40 * w / wmax))}px"></span>'
                   if bars else "")
            cells.append(f'<span class="feat" title="weight {w:.4g}">{esc(str(f))}{bar}</span>')
        rows.append(f"<tr><th>{c}</th><td>{' '.join(cells)}</td></tr>")
    return ('<table class="top"><thead><tr><th>component</th><th>top features, heaviest '
            f"first</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def model_section(model, *, title: str, X=None, W=None, feature_names=None, row_names=None,
                  image_shape=None, n_top: int = 10, consensus=None, rank_curves=None,
                  extra_metrics: dict | None = None, spectrum: bool | None = None) -> Section:
    """Build the report section of a fitted model.

    Parameters
    ----------
    model : fitted estimator with ``components_`` (H, shape (k, n_features)) and ``history_``
    title : str
    X : data (n_samples, n_features), optional; with W it gives the quality metrics
    W : coefficients (n_samples, k), optional; computed by ``model.transform(X)`` when X is given
    feature_names, row_names : labels for the top-features table and the heat map
        (feature names default to those the model keeps, see ``NMF.top_features``)
    image_shape : (h, w) with h·w = n_features: show the parts as images (and no table of
        pixel names)
    n_top : features per component in the top-features table
    consensus : (n, n) consensus matrix, optional
    rank_curves : dict with "ks" and criterion name → values, optional
    extra_metrics : more rows for the metrics table (same names as :data:`GLOSSARY`)
    spectrum : draw each part as a curve in its own panel; None: when the feature names are
        numbers in increasing or decreasing order (wavelengths, frequencies)

    Returns
    -------
    Section
    """
    from . import plot
    from ._topics import top_features_of
    from .metrics import summary

    H = np.asarray(model.components_)
    if X is not None and W is None:
        W = model.transform(X)
    metrics = {"n_samples": W.shape[0] if W is not None else None,
               "n_features": H.shape[1], "n_components": H.shape[0]}
    for attr in ("n_iter_", "stop_reason_", "reconstruction_err_", "explained_variance_"):
        metrics[attr.rstrip("_")] = getattr(model, attr, None)
    params = model.get_params(deep=False)
    settings = _clean({p: params[p] for p in _SETTINGS if p in params})
    if X is not None and W is not None:
        try:
            metrics.update(summary(X, W, H, params.get("beta_loss", "frobenius")))
        except (ValueError, TypeError):  # e.g. masked data: metrics of the library skip it
            pass
    metrics.update(extra_metrics or {})
    if getattr(model, "loss_scale_", None) is not None:
        metrics["loss_scale"] = model.loss_scale_
    metrics = _clean(metrics)
    if "reconstruction_error" not in metrics and getattr(model, "reconstruction_err_", None):
        metrics["reconstruction_error"] = model.reconstruction_err_
    sec = Section(title=title, metrics=metrics, settings=settings)
    if spectrum is None:
        spectrum = image_shape is None and _is_spectrum(feature_names, H.shape[1])
    if image_shape is None:
        top = top_features_of(model, n_top, feature_names)
        sec.tables.append((f"Top {top.n_top} features of each component (rows of H)",
                           top_features_table(top, bars=not spectrum)))
    sec.tables += outlier_tables(model, row_names, feature_names)
    if sec.tables and getattr(model, "outlier_scores_", None) is not None:
        sec.terms.append("outlier_score")
    history = getattr(model, "history_", None)
    if history and len(history.get("objective", [])) > 1:
        sec.figures.append(("Objective against iteration", plot.figure_to_png(
            plot.plot_convergence(history))))
    if image_shape is not None:
        sec.figures.append(("Parts: the rows of H shown as images", plot.figure_to_png(
            plot.plot_basis_images(H, image_shape))))
    elif spectrum:
        x = np.array([float(str(f)) for f in feature_names]) if feature_names is not None \
            else None
        sec.figures.append(("Parts: each row of H as a curve, one panel per component",
                            plot.figure_to_png(plot.plot_component_profiles(H, x=x))))
    if W is not None:
        n = W.shape[0]
        shown = min(n, plot.HEATMAP_MAX_ROWS)
        sampled = f"; {shown} of {n} samples shown, evenly spaced" if shown < n else ""
        sec.figures.append((f"Coefficients: which components each sample uses{sampled}",
                            plot.figure_to_png(plot.plot_coefficients(W, row_names=row_names))))
    if consensus is not None:
        sec.figures.append(("Consensus over restarts (reordered)", plot.figure_to_png(
            plot.plot_consensus(consensus, labels=row_names))))
    if rank_curves:
        curves = {k: v for k, v in rank_curves.items() if k != "ks"}
        sec.terms += list(curves)
        sec.figures.append(("Rank-selection criteria against k", plot.figure_to_png(
            plot.plot_rank_curves(rank_curves["ks"], curves))))
    return sec


def outlier_tables(model, row_names=None, feature_names=None, n: int = 10) -> list:
    """(caption, html) tables of a robust fit's most outlying samples and entries, from
    ``outlier_scores_`` / ``outlier_entry_scores_`` (empty for a fit without them)."""
    scores = getattr(model, "outlier_scores_", None)
    if scores is None:
        return []
    esc = html.escape
    scores = np.asarray(scores)
    rname = (lambda i: str(row_names[i])) if row_names is not None else (lambda i: f"row {i}")
    if feature_names is None:
        feature_names = getattr(model, "feature_names_", None)
    fname = (lambda j: str(feature_names[j])) if feature_names is not None else (
        lambda j: f"feature {j}")
    top = np.argsort(-scores, kind="stable")[:n]
    rows = "".join(f"<tr><td>{esc(rname(i))}</td><td>{scores[i]:.3f}</td></tr>" for i in top)
    out = [(f"The {len(top)} most outlying samples (outlier score, 0 = ordinary)",
            '<table class="top"><thead><tr><th>sample</th><th>score</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")]
    E = getattr(model, "outlier_entry_scores_", None)
    if E is not None:
        E = np.asarray(E)
        S = getattr(model, "outliers_", None)
        flat = np.argsort(-E, axis=None, kind="stable")[: 2 * n]
        flat = flat[E.flat[flat] > 0]
        head = "<th>sample</th><th>feature</th><th>score</th>" + (
            "<th>S (removed)</th>" if S is not None else "")
        body = []
        for q in flat:
            i, j = np.unravel_index(q, E.shape)
            extra = f"<td>{float(np.asarray(S)[i, j]):.4g}</td>" if S is not None else ""
            body.append(f"<tr><td>{esc(rname(i))}</td><td>{esc(fname(j))}</td>"
                        f"<td>{E[i, j]:.3f}</td>{extra}</tr>")
        share = float(np.mean(E > 0.5)) if E.size else 0.0
        out.append((f"The {len(body)} most outlying entries ({share:.1%} of all entries "
                    "score above 0.5)", f'<table class="top"><thead><tr>{head}</tr></thead>'
                    f"<tbody>{''.join(body)}</tbody></table>"))
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px;line-height:1.4}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
h3{font-size:1em;margin:1.2em 0 .3em}
.meta{color:#666;font-size:.9em}table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}
.tables{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}caption{text-align:left;font-weight:600;padding:2px 0}
table.top td{line-height:1.9}.feat{white-space:nowrap;margin-right:10px}
.bar{display:inline-block;height:7px;background:#4c78a8;margin-left:3px;vertical-align:middle}
figure{margin:14px 0}figcaption{color:#555;font-size:.9em;margin-bottom:4px}
img{width:100%;height:auto;border:1px solid #eee}img.narrow{width:auto;max-width:100%}
nav ol{margin:4px 0;padding-left:22px}dl.glossary dt{font-weight:600;margin-top:6px}
dl.glossary dd{margin-left:16px;color:#333}
"""


def _label(key: str) -> str:
    return GLOSSARY.get(key, (key,))[0]


def _gloss(key: str):
    if key in GLOSSARY:
        return GLOSSARY[key]
    for prefix, sentence in _PREFIX_GLOSSARY.items():
        if key.startswith(prefix):
            return key, sentence
    return None


def _table(d: dict, caption: str) -> str:
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(_label(str(k)))}</th><td>{esc(_fmt(v))}</td></tr>"
                   for k, v in d.items())
    return f'<table class="metrics"><caption>{esc(caption)}</caption><tbody>{rows}</tbody></table>'


def _png_width(b64: str) -> int:
    """The pixel width of a base64 PNG (its IHDR field); small figures (parts grids, the
    consensus map) keep their own size instead of being stretched to the page's width."""
    import base64
    import struct

    try:
        head = base64.b64decode(b64[:44])
        return struct.unpack(">I", head[16:20])[0] if head[:8] == b"\x89PNG\r\n\x1a\n" else 0
    except (ValueError, struct.error):
        return 0


def _anchor(i: int, title: str) -> str:
    return f"s{i}-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]


def render_report(sections, *, title: str = "nmfkit report", subtitle: str = "") -> str:
    """The report as one HTML string (no external resources)."""
    from ._version import __version__

    esc = html.escape
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(subtitle)} — nmfkit {esc(__version__)}, {when}. '
        "X ≈ W H: W (samples × k) are the coefficients, H (k × features) the parts.</p>",
    ]
    toc = ["<nav><strong>Contents</strong><ol>"]
    for i, sec in enumerate(sections):
        a = _anchor(i, sec.title)
        items = [c for c, _ in sec.tables] + [c for c, _ in sec.figures]
        sub = "".join(f'<li><a href="#{a}-{j}">{esc(c.split(";")[0])}</a></li>'
                      for j, c in enumerate(items))
        toc.append(f'<li><a href="#{a}">{esc(sec.title)}</a>'
                   + (f"<ol>{sub}</ol>" if sub else "") + "</li>")
    toc.append('<li><a href="#glossary">Glossary</a></li></ol></nav>')
    parts += toc
    used = []
    for i, sec in enumerate(sections):
        a = _anchor(i, sec.title)
        parts.append(f'<section><h2 id="{a}">{esc(sec.title)}</h2><div class="tables">')
        metrics, settings = _clean(sec.metrics), _clean(sec.settings)
        if metrics:
            parts.append(_table(metrics, "Results"))
        if settings:
            parts.append(_table(settings, "Settings"))
        parts.append("</div>")
        used += [k for k in (*metrics, *settings, *sec.terms) if k not in used]
        for note in sec.notes:
            parts.append(f"<p>{esc(note)}</p>")
        j = 0
        for caption, block in sec.tables:
            parts.append(f'<h3 id="{a}-{j}">{esc(caption)}</h3>{block}')
            j += 1
        for caption, png in sec.figures:
            narrow = ' class="narrow"' if _png_width(png) < 700 else ""
            parts.append(f'<figure id="{a}-{j}"><figcaption>{esc(caption)}</figcaption>'
                         f'<img{narrow} alt="{esc(caption)}" src="data:image/png;base64,{png}">'
                         "</figure>")
            j += 1
        parts.append("</section>")
    parts.append('<section><h2 id="glossary">Glossary</h2><dl class="glossary">')
    for key in used:
        g = _gloss(str(key))
        if g is not None:
            parts.append(f"<dt>{esc(g[0])}</dt><dd>{esc(g[1])}</dd>")
    parts.append("<dt>W, H</dt><dd>X ≈ W H: W (samples × k) holds each sample's coefficients "
                 "on the k parts, H (k × features) the parts themselves.</dd>")
    parts.append("</dl></section></body></html>")
    return "\n".join(parts)


def write_report(path, sections, *, title: str = "nmfkit report",
                 subtitle: str = "") -> pathlib.Path:
    """Write :func:`render_report` to ``path``; returns the path."""
    path = pathlib.Path(path)
    path.write_text(render_report(sections, title=title, subtitle=subtitle), encoding="utf-8")
    return path
