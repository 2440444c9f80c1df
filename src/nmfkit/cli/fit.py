"""``nmfkit fit INPUT -k K``: factorise a data file; write W, H, the model, a JSON summary and
an HTML report into ``--out``."""

from __future__ import annotations

import signal
import threading
import time

import click

from ._common import EXIT_INTERRUPTED, Console, common_options, record_warnings
from ._data import (
    check_rank,
    check_values,
    image_shape_for,
    input_options,
    load_input,
    prepare_out_dir,
)
from ._extensions import NAN_HINT, extension_options, extension_params
from ._scale import check_scale_params, run_scaled, scale_options
from ._outputs import write_outputs
from ._stages import Stages, describe, input_size

_LOSS_ALIASES = {"fro": "frobenius", "frobenius": "frobenius", "kl": "kullback-leibler",
                 "kullback-leibler": "kullback-leibler", "is": "itakura-saito",
                 "itakura-saito": "itakura-saito", "huber": "huber", "cauchy": "cauchy",
                 "l21": "l21"}
#: --loss values that are NMF's robust ``loss`` (the β-divergence then stays Frobenius)
_ROBUST = ("huber", "cauchy", "l21")


class LossType(click.ParamType):
    """frobenius | kl | is, their long names, a number β, or a robust loss (huber, cauchy,
    l21)."""

    name = "loss"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        v = str(value).strip().lower()
        if v in _LOSS_ALIASES:
            return _LOSS_ALIASES[v]
        try:
            return float(v)
        except ValueError:
            self.fail(f"{value!r} is not a loss; use frobenius, kl, is, a number β, or huber, "
                      "cauchy, l21", param, ctx)


def _solver_names():
    from ..solvers import SOLVERS

    # "auto" (the library's default) first; "robust" is chosen by --loss / --outliers
    return ["auto", *sorted(n for n in SOLVERS if n != "robust")]


def model_options(f):
    """The estimator's parameters, one option each (names follow NMF's parameters)."""
    opts = [
        click.option("-k", "--n-components", "n_components", type=click.IntRange(1),
                     required=True, help="Rank k: the number of parts."),
        click.option("--loss", "beta_loss", type=LossType(), default="frobenius",
                     show_default=True, help="frobenius, kl, is, or a number β (β-divergence); "
                                             "huber, cauchy or l21 (robust: docs/robust.md)."),
        click.option("--solver", type=click.Choice(_solver_names()), default="auto",
                     show_default=True,
                     help="Solver; auto is NMF's default: accelerated cd for frobenius and "
                          "kl, mu for other losses, the weighted updates of a robust --loss "
                          "or --outliers (docs/solvers.md)."),
        click.option("--init", type=click.Choice(["random", "nndsvd", "nndsvda", "nndsvdar"]),
                     default=None, help="Initialisation (default: nndsvda, or random when k is "
                                        "large)."),
        click.option("--max-iter", type=click.IntRange(1), default=200, show_default=True),
        click.option("--tol", type=click.FloatRange(0), default=1e-4, show_default=True,
                     help="Stopping tolerance; 0 runs all --max-iter iterations."),
        click.option("--max-time", type=click.FloatRange(0, min_open=True), default=None,
                     help="Wall-clock limit of the fit in seconds."),
        click.option("--seed", "random_state", type=int, default=0, show_default=True,
                     help="Random seed."),
        click.option("--alpha-w", "alpha_W", type=click.FloatRange(0), default=0.0,
                     show_default=True, help="Regularisation of W (scikit-learn's alpha_W)."),
        click.option("--alpha-h", "alpha_H", default="same", show_default=True,
                     help="Regularisation of H, or 'same' as --alpha-w."),
        click.option("--l1-ratio", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Share of L1 in the regularisation (0: L2, 1: L1)."),
    ] + extension_options()
    for opt in reversed(opts):
        f = opt(f)
    return f


def estimator_params(opts: dict) -> dict:
    """Map the options onto NMF's parameters (defaults filled, aliases resolved)."""
    params = {k: opts[k] for k in ("n_components", "beta_loss", "init", "max_iter", "tol",
                                   "max_time", "random_state", "alpha_W", "l1_ratio")}
    params.update(extension_params(opts))
    if params["beta_loss"] in _ROBUST:  # a robust loss replaces the Frobenius one
        params["loss"], params["beta_loss"] = params["beta_loss"], "frobenius"
    alpha_h = opts["alpha_H"]
    if alpha_h != "same":
        try:
            alpha_h = float(alpha_h)
        except ValueError:
            raise click.BadParameter(f"{alpha_h!r} is neither a number nor 'same'",
                                     param_hint="--alpha-h") from None
        if alpha_h < 0:
            raise click.BadParameter(f"{alpha_h} is negative; use a number ≥ 0",
                                     param_hint="--alpha-h")
    params["alpha_H"] = alpha_h
    params["solver"] = opts["solver"] or "auto"  # the library's default, as NMF(k)
    return params


def _install_sigint(handler):
    """Ctrl-C ends the fit after the current iteration (the callback stops it); returns the
    previous handler, or None where no handler can be set (not the main thread, or SIGINT
    ignored by the parent). SIGTERM reaches the same handler (see ``_app``)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        return None
    signal.signal(signal.SIGINT, handler)
    return previous


def run_fit(params: dict, X, console: Console, desc: str = "fit"):
    """Fit NMF(**params) on X with a progress bar; returns (model, W, seconds, warnings).

    The first Ctrl-C stops the fit cleanly after the current iteration
    (``stop_reason_ = "interrupted"``); a second one interrupts the iteration itself, and the
    fit loop then returns the last complete iterate.
    """
    from .._estimator import NMF

    bar = console.bar(params.get("max_iter", 200), desc)

    state = {"last": 0, "run": 1, "stop": False}

    def on_sigint(signum, frame):
        if state["stop"]:  # a second Ctrl-C: stop now (the loop keeps the last iterate)
            raise KeyboardInterrupt
        state["stop"] = True

    def on_iteration(info):
        if info.n_iter <= state["last"]:  # a new restart (n_init > 1)
            state["run"] += 1
            bar.reset()
            bar.set_description(f"{desc} (start {state['run']})")
        state["last"] = info.n_iter
        bar.update(info.n_iter - bar.n)
        if info.objective is not None:
            bar.set_postfix_str(f"objective {info.objective:.5g}", refresh=False)
        return state["stop"]

    model = NMF(callback=on_iteration, **params)
    t0 = time.perf_counter()
    previous = _install_sigint(on_sigint)
    try:
        with record_warnings() as caught:
            W = model.fit_transform(X)
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    seconds = time.perf_counter() - t0
    model.set_params(callback=None)
    if state["stop"]:
        model.stop_reason_ = "interrupted"
    caught = [w for w in caught if "interrupted by the user" not in str(w.message)]
    return model, W, seconds, caught


_MINIBATCH_KEEP = ("n_components", "beta_loss", "init", "max_iter", "tol", "random_state",
                   "alpha_W", "alpha_H", "l1_ratio", "solver")
_DEFAULTS = {"n_init": 1, "n_jobs": None, "smoothness": 0.0, "sparseness_W": None,
             "sparseness_H": None, "max_time": None, "loss": None, "outliers": None,
             "loss_scale": None, "outlier_penalty": None, "outlier_groups": None}


def minibatch_params(params: dict, batch_size: int) -> dict:
    """NMF options → MiniBatchNMF parameters; options it cannot honour are refused."""
    from ..minibatch import MiniBatchNMF

    allowed = MiniBatchNMF().get_params()
    extra = [k for k, v in params.items() if k not in _MINIBATCH_KEEP
             and v != _DEFAULTS.get(k, v if k not in ("penalties", "graph", "missing_values",
                                                      "backend", "device") else object())]
    if extra:
        raise click.UsageError(f"--batch-size (MiniBatchNMF) cannot be combined with "
                               f"{', '.join(sorted(extra))}; drop them or --batch-size")
    out = {k: params[k] for k in _MINIBATCH_KEEP if k in allowed}
    if out.get("solver") == "auto":  # MiniBatchNMF's own default (its online updates)
        del out["solver"]
    out["batch_size"] = batch_size
    if out.get("tol") == 0:  # --tol 0 runs all --max-iter passes, as for NMF
        out["max_no_improvement"] = None
    return out


def run_minibatch(params: dict, X, console: Console, desc: str = "fit"):
    """Fit MiniBatchNMF(**params) on X; returns (model, W, seconds, warnings).

    Ctrl-C (or SIGTERM) stops the fit with ``stop_reason_ = "interrupted"``: MiniBatchNMF
    finishes the current mini-batch step and returns it (a second Ctrl-C abandons the fit).
    """
    from ..minibatch import MiniBatchNMF

    model = MiniBatchNMF(**params)
    t0 = time.perf_counter()
    with record_warnings() as caught:
        W = model.fit_transform(X)
    caught = [w for w in caught if "interrupted by the user" not in str(w.message)]
    return model, W, time.perf_counter() - t0, caught


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@model_options
@input_options
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Fit with MiniBatchNMF on row batches of this size (large data; online "
                   "updates; no per-iteration progress bar).")
@scale_options
@click.option("--image-shape", default=None, help="HEIGHTxWIDTH: show the parts as images.")
@click.option("--outlier-tiles", default=None, metavar="HxW",
              help="Group-structured outliers (NMF outliers='groups'): S removes whole tiles "
                   "of HxW pixels (or N: NxN) of the images (--image-shape), for occlusions "
                   "and blocks; implies --outliers groups (docs/robust.md).")
@click.option("--out", "out_dir", default="nmfkit-out", show_default=True,
              help="Output folder (created).")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write report.html (needs matplotlib).")
@click.option("--top", "n_top", type=click.IntRange(1), default=10, show_default=True,
              help="Features per component in top_features.csv, summary.json and the report "
                   "(and the words printed for text input).")
@common_options
def fit(input_path, out_dir, image_shape, outlier_tiles, report, n_top, quiet, progress,
        verbose, **opts):
    """Factorise INPUT ≈ W H and write W, H, model.npz, summary.json and report.html.

    INPUT is a CSV/TSV table (header and row names kept), .npy, .npz (dense or sparse),
    .mtx, or text (a folder of .txt files, or one document per line). Rows are samples; use
    --transpose when samples are columns. With --max-memory, INPUT (a .npy file or a folder
    of .npz row chunks) is streamed from disk; with --dask the fit runs on a Dask cluster.
    """
    console = Console(quiet, progress, verbose)
    stages = Stages(console)
    read = {k: opts.pop(k) for k in ("fmt", "transpose", "header", "row_names",
                                     "text_weighting", "max_features", "stop_words", "float32",
                                     "min_df", "max_df", "doc_sep", "encoding")}
    batch_size = opts.pop("batch_size")
    max_memory, dask_address = opts.pop("max_memory"), opts.pop("dask_address")
    params = estimator_params(opts)
    tiles = _tiles_option(outlier_tiles, params)
    robust = [f"--{k.replace('_', '-')} {params[k]}" for k in ("loss", "outliers") if params.get(k)]
    if robust and (max_memory is not None or dask_address is not None):
        flag = "--max-memory" if max_memory is not None else "--dask"
        raise click.UsageError(f"{flag} cannot honour {', '.join(robust)} (the streamed and "
                               f"Dask fits have no robust loss); drop one")
    if max_memory is not None or dask_address is not None:
        check_scale_params(params, max_memory=max_memory, dask_address=dask_address,
                           batch_size=batch_size, read=read,
                           flag="--max-memory" if max_memory is not None else "--dask")
        return _fit_scaled(input_path, params, read, max_memory, dask_address, out_dir,
                           image_shape, report, n_top, console, stages)
    if batch_size is not None:
        params = minibatch_params(params, batch_size)
    stages.say(f"reading {input_path} ({input_size(input_path)})")
    ds = load_input(input_path, **read, on_stage=stages.say)
    stages.say(f"read {describe(ds.X)}" + (f"; {ds.shape[0]} documents, a vocabulary of "
                                          f"{ds.shape[1]} words" if ds.fmt == "text" else ""))
    check_values(ds, allow_nan=params.get("missing_values") is not None,
                 nan_hint=NAN_HINT)
    check_rank(params["n_components"], ds.shape, ds.source)
    shape = image_shape_for(ds, image_shape, ds.shape[1])
    if tiles is not None:
        params["outlier_groups"] = _tile_labels(shape, tiles)
    out = prepare_out_dir(out_dir)
    fitter = run_minibatch if batch_size is not None else run_fit
    stages.say(f"fitting k={params['n_components']} ({_describe_fit(params, batch_size)})")
    model, W, seconds, caught = fitter(params, ds.X, console)
    stages.say(f"fitted: {model.n_iter_} iterations in {seconds:.1f}s "
               f"({getattr(model, 'stop_reason_', None) or 'done'})")
    console.replay(caught)
    write_outputs(out, model, W, ds, params, read, seconds, shape, report, n_top, console,
                  stages=stages)
    return _exit_code(model, out)


def _tiles_option(text, params: dict):
    """``--outlier-tiles`` as (th, tw), with ``params["outliers"]`` set to "groups"; None when
    not given. Bad text, or a conflicting --outliers, is a usage error (exit 2)."""
    outliers = params.get("outliers")
    if text is None:
        if outliers == "groups":
            raise click.UsageError("--outliers groups needs its groups: --outlier-tiles HxW "
                                   "(tiles of the images of --image-shape)")
        return None
    parts = str(text).strip().lower().replace("×", "x").split("x")
    try:
        tile = tuple(int(p) for p in parts)
    except ValueError:
        tile = ()
    if len(tile) == 1:
        tile = tile * 2
    if len(tile) != 2 or min(tile) < 1:
        raise click.BadParameter(f"{text!r} is not a tile size; write HxW with positive "
                                 "integers (8x8) or N for NxN", param_hint="--outlier-tiles")
    if outliers not in (None, "groups"):
        raise click.UsageError(f"--outlier-tiles is the group model (--outliers groups); it "
                               f"cannot be combined with --outliers {outliers}: drop one")
    params["outliers"] = "groups"
    return tile


def _tile_labels(shape, tile):
    """The group id of every pixel for ``--outlier-tiles`` (tiles of the image shape)."""
    from ..robust import image_tiles

    if shape is None:
        raise click.UsageError("--outlier-tiles needs the images' shape: give --image-shape "
                               "HEIGHTxWIDTH (or a 3-D .npy input)")
    try:  # a list: kept in model.npz's JSON parameters, so the loaded model has its groups
        return image_tiles(shape, tile).tolist()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--outlier-tiles") from None


def _exit_code(model, out) -> int:
    """EXIT_INTERRUPTED, said on stderr, after a fit that Ctrl-C stopped; else 0."""
    if getattr(model, "stop_reason_", None) != "interrupted":
        return 0
    click.echo(f"interrupted after {model.n_iter_} iterations: wrote the factors of the "
               f"last complete iteration to {out}", err=True)
    return EXIT_INTERRUPTED


def _describe_fit(params: dict, batch_size) -> str:
    loss = params.get("loss") or params.get("beta_loss")
    if params.get("outliers"):
        loss = f"{loss} + {params['outliers']} outliers"
        if params.get("outlier_groups") is not None:
            loss += f" ({int(max(params['outlier_groups'])) + 1} groups)"
    how = f"solver {params.get('solver')}, loss {loss}"
    return how + (f", mini-batches of {batch_size} rows" if batch_size else "")


def _fit_scaled(input_path, params, read, max_memory, dask_address, out_dir, image_shape,
                report, n_top, console, stages=None):
    """The --max-memory / --dask branch of ``fit``: the same outputs as an in-memory fit."""
    out = prepare_out_dir(out_dir)
    if dask_address is None:  # the streamed fit reads the data's shape before fitting
        from ._scale import open_streamed

        check_rank(params["n_components"], open_streamed(input_path)[1].extra["shape"])
    stages = stages or Stages(console)
    stages.say(f"fitting k={params['n_components']} from {input_path} "
               f"({input_size(input_path)}; {_describe_fit(params, None)}, "
               + (f"within {max_memory}" if dask_address is None else f"Dask {dask_address}")
               + ")")
    model, W, ds, seconds, caught, metrics, scale = run_scaled(
        input_path, params, read, max_memory=max_memory, dask_address=dask_address,
        console=console)
    stages.say(f"fitted: {model.n_iter_} iterations in {seconds:.1f}s")
    console.replay(caught)
    shape = image_shape_for(None, image_shape, model.components_.shape[1])
    write_outputs(out, model, W, ds, params, read, seconds, shape, report, n_top, console,
                  metrics=metrics, scale=scale, stages=stages)
    return _exit_code(model, out)  # the library's deferred Ctrl-C
