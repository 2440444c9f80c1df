"""Options for the library's extensions (restarts, penalties, graph, nsNMF, missing values,
backend/GPU, robust losses). Each option exists only when the estimator in this tree has the
parameter it maps onto, so the command line never offers what the library cannot do.
"""

from __future__ import annotations

import math

import click
import numpy as np
import scipy.sparse as sp

from .._validation import MAX_WEIGHT

NAN_HINT = "fill or drop it, or pass --missing nan to leave missing entries out of the fit"


def _has(*names) -> bool:
    from .._estimator import NMF

    params = NMF().get_params()
    return all(n in params for n in names)


def extension_options() -> list:
    opts = []
    if _has("n_init"):
        opts.append(click.option("--n-init", type=click.IntRange(1), default=1,
                                 show_default=True,
                                 help="Fits from different starts; the best is kept."))
    if _has("n_jobs"):
        opts.append(click.option("--n-jobs", type=int, default=None,
                                 help="Parallel workers (threads) for --n-init."))
    if _has("penalties"):
        opts.append(click.option("--l1", "l1", multiple=True, metavar="[W=|H=]λ",
                                 help="L1 (sparsity) penalty λ on W and H, or on one factor "
                                      "with W=λ / H=λ; repeatable."))
        opts.append(click.option("--l2", "l2", multiple=True, metavar="[W=|H=]λ",
                                 help="L2 (ridge) penalty, as --l1."))
    if _has("graph", "graph_weight", "graph_neighbors"):
        opts.append(click.option("--graph", type=click.Choice(["knn", "binary", "heat",
                                                                "cosine"]), default=None,
                                 help="Graph-regularised NMF on a k-NN graph of the samples "
                                      "(knn = binary weights)."))
        opts.append(click.option("--graph-weight", type=click.FloatRange(0), default=1.0,
                                 show_default=True, help="λ of the graph penalty."))
        opts.append(click.option("--graph-neighbors", type=click.IntRange(1), default=5,
                                 show_default=True, help="k of the k-NN graph."))
    if _has("smoothness"):
        opts.append(click.option("--smoothness", type=click.FloatRange(0, 1), default=0.0,
                                 show_default=True, help="nsNMF smoothness θ (0: plain NMF)."))
    if _has("sparseness_W", "sparseness_H"):
        opts.append(click.option("--sparseness-w", "sparseness_W", type=click.FloatRange(0, 1),
                                 default=None, help="Hoyer sparseness of W's columns "
                                                    "(needs --solver nmfsc)."))
        opts.append(click.option("--sparseness-h", "sparseness_H", type=click.FloatRange(0, 1),
                                 default=None, help="Hoyer sparseness of H's rows (needs "
                                                    "--solver nmfsc)."))
    if _has("missing_values"):
        opts.append(click.option("--missing", type=click.Choice(["nan", "unobserved"]),
                                 default=None,
                                 help="nan: NaN/NA cells are missing; unobserved: absent "
                                      "entries of a sparse input are missing."))
    if _has("frozen_components"):
        opts.append(click.option("--frozen", "frozen", default=None, metavar="FILE",
                                 type=click.Path(),
                                 help="Known components kept fixed: a .npy/.npz/CSV matrix "
                                      "(n_frozen × n_features, e.g. the H of an earlier fit or "
                                      "known spectra); the other components are learned."))
    if _has("backend", "device"):
        opts.append(click.option("--backend", type=click.Choice(["numpy", "torch"]),
                                 default=None, help="Array framework (torch for GPU)."))
        opts.append(click.option("--device", default=None,
                                 help="Torch device: cuda, cuda:1, cpu (with --backend torch)."))
    if _has("loss", "loss_scale", "outliers", "outlier_penalty"):
        opts.append(click.option("--outliers", type=click.Choice(["sparse", "groups"]),
                                 default=None,
                                 help="sparse: fit X ≈ WH + S, S ≥ 0 sparse (corruption above "
                                      "the model: spikes, saturated pixels); groups: S signed "
                                      "and sparse by image tiles (with --outlier-tiles); "
                                      "docs/robust.md."))
        opts.append(click.option("--loss-scale", type=click.FloatRange(0, min_open=True),
                                 default=None, help="Huber's δ / Cauchy's c with --loss huber "
                                                    "or cauchy (default: from the residuals)."))
        opts.append(click.option("--outlier-penalty", type=click.FloatRange(0, min_open=True),
                                 default=None, help="L1 weight λ of S with --outliers sparse "
                                                    "(default: from the residuals)."))
    return opts


def _penalties(kind: str, values) -> list:
    from .. import penalties as P

    cls = {"l1": P.L1, "l2": P.L2}[kind]
    out = []
    for text in values:
        factor, _, number = text.rpartition("=")
        factors = [factor.upper()] if factor else ["W", "H"]
        try:
            lam = float(number)
        except ValueError:
            lam = -1.0
        if factors[0] not in ("W", "H") or not (lam >= 0 and math.isfinite(lam)):
            raise click.BadParameter(f"{text!r} is not λ, W=λ or H=λ with λ ≥ 0",
                                     param_hint=f"--{kind}")
        if lam > MAX_WEIGHT:
            raise click.BadParameter(f"{text!r}: λ must be at most {MAX_WEIGHT:g} (a larger "
                                     "weight overflows the objective)", param_hint=f"--{kind}")
        out += [cls(lam, f) for f in factors if lam > 0]
    return out


def _read_frozen(path) -> np.ndarray:
    """The fixed components from a data file (any format ``read_matrix`` reads), dense."""
    from ..io import read_matrix

    X = read_matrix(path).X
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    return X


def check_device(backend, device) -> None:
    """A GPU asked for but not there is a user error with a fix, not an assertion."""
    if device is None:
        return
    kind, _, index = str(device).strip().lower().partition(":")
    if kind not in ("cpu", "cuda", "mps", "xpu") or (index and not index.isdigit()):
        raise click.BadParameter(f"{device!r} is not a torch device; use cpu, cuda or cuda:N "
                                 "(N the GPU's number)", param_hint="--device")
    if kind != "cuda":
        return
    if backend != "torch":
        raise click.BadParameter(f"--device {device} needs --backend torch",
                                 param_hint="--device")
    try:
        import torch
    except ImportError:
        raise ImportError('--backend torch needs PyTorch: pip install "nmfkit[torch]"') from None
    if not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for a GPU but PyTorch sees none (CUDA "
                         "unavailable); use --device cpu, or drop --backend torch")
    index = str(device).partition(":")[2]
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: PyTorch sees {torch.cuda.device_count()} GPU(s); "
                         f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")


def extension_params(opts: dict) -> dict:
    """NMF parameters from the extension options present in ``opts`` (popped from it)."""
    params = {}
    for key in ("n_init", "n_jobs", "smoothness", "sparseness_W", "sparseness_H"):
        if key in opts:
            params[key] = opts.pop(key)
    pens = []
    for kind in ("l1", "l2"):
        if kind in opts:
            pens += _penalties(kind, opts.pop(kind))
    if pens:
        params["penalties"] = pens
    if "graph" in opts:
        graph = opts.pop("graph")
        weight, neighbors = opts.pop("graph_weight"), opts.pop("graph_neighbors")
        if graph is not None:
            params.update(graph="binary" if graph == "knn" else graph, graph_weight=weight,
                          graph_neighbors=neighbors)
    if "frozen" in opts:
        path = opts.pop("frozen")
        if path is not None:
            params["frozen_components"] = _read_frozen(path)
    if "missing" in opts:
        missing = opts.pop("missing")
        if missing is not None:
            params["missing_values"] = np.nan if missing == "nan" else "unobserved"
    for key in ("outliers", "loss_scale", "outlier_penalty"):
        if key in opts and opts[key] is not None:
            params[key] = opts.pop(key)
        opts.pop(key, None)
    if "backend" in opts:
        backend, device = opts.pop("backend"), opts.pop("device")
        if device is not None and backend is None:
            backend = "torch"
        check_device(backend, device)
        if backend is not None:
            params["backend"] = backend
        if device is not None:
            params["device"] = device
    return params


def observed_summary(X, W, H, beta_loss, missing_values=None) -> dict:
    """Quality metrics; with missing entries, computed on the observed entries only."""
    from ..metrics import summary

    if missing_values is None:
        return summary(X, W, H, beta_loss)
    if sp.issparse(X):  # "unobserved": the stored entries are the observed ones
        coo = X.tocoo()
        x = coo.data.astype(np.float64)
        fit = np.einsum("ij,ji->i", W[coo.row], H[:, coo.col])
    else:
        mask = ~np.isnan(X)
        x = X[mask].astype(np.float64)
        fit = (W @ H)[mask]
    err = float(np.linalg.norm(x - fit))
    total = float(np.linalg.norm(x - x.mean())) if x.size else 0.0
    norm = float(np.linalg.norm(x))
    return {"n_observed": int(x.size), "reconstruction_error": err,
            "relative_error": err / norm if norm > 0 else 0.0,
            "explained_variance": 1.0 - (err / total) ** 2 if total > 0 else 1.0}
