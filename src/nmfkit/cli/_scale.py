"""``nmfkit fit --max-memory SIZE`` and ``--dask ADDRESS|local``: the out-of-core and Dask fits
(:func:`nmfkit.outofcore.fit_out_of_core`, :func:`nmfkit.distributed.fit_dask`) from the shell.

Both return a ``FitResult``; this module turns it into a fitted :class:`nmfkit.NMF` (so that
the model file, the report and ``nmfkit transform`` work as after an in-memory fit) and computes
the quality metrics block by block, so the data are never held whole in memory.
"""

from __future__ import annotations

import contextlib
import pathlib
import time

import click
import numpy as np

from ..io import Dataset
from ._common import record_warnings

# option → (value when unused, the flag the user typed); anything else is refused
_UNSUPPORTED = {"n_init": (1, "--n-init"), "n_jobs": (None, "--n-jobs"),
                "penalties": (None, "--l1/--l2"), "graph": (None, "--graph"),
                "missing_values": (None, "--missing"), "frozen_components": (None, "--frozen"),
                "smoothness": (0.0, "--smoothness"), "sparseness_W": (None, "--sparseness-w"),
                "sparseness_H": (None, "--sparseness-h"), "backend": (None, "--backend"),
                "device": (None, "--device")}


def scale_options(f):
    """``--max-memory`` and ``--dask``."""
    opts = [
        click.option("--max-memory", "max_memory", default=None, metavar="SIZE",
                     help="Stream INPUT from disk in row blocks within SIZE (e.g. 512MB): a "
                          ".npy file (memory-mapped) or a folder of .npz sparse row chunks. "
                          "Solvers cd (Frobenius) or mu; init random."),
        click.option("--dask", "dask_address", default=None, metavar="ADDRESS|local",
                     help="Fit with Dask on the scheduler at ADDRESS, or on a LocalCluster "
                          "started for the fit ('local'). Solvers cd or mu; init random."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def check_scale_params(params: dict, *, max_memory, dask_address, batch_size, read: dict,
                       flag: str) -> None:
    """Refuse the options the streamed / Dask fits cannot honour (click.UsageError → exit 2)."""
    if max_memory is not None and dask_address is not None:
        raise click.UsageError("--max-memory and --dask are two different fits; give one")
    if batch_size is not None:
        raise click.UsageError(f"{flag} cannot be combined with --batch-size; drop one")
    bad = [name for key, (unused, name) in _UNSUPPORTED.items()
           if key in params and params[key] is not None and params[key] != unused]
    if read.get("transpose"):
        bad.append("--transpose")
    if max_memory is not None and read.get("float32"):
        bad.append("--float32 (the stream keeps the file's dtype: save it as float32)")
    if bad:
        raise click.UsageError(f"{flag} cannot honour {', '.join(bad)}; drop them or {flag}")
    if params["solver"] == "auto":  # what the block-wise fits run: HALS, or MU for β ≠ 2
        params["solver"] = "cd" if params["beta_loss"] in ("frobenius", 2.0) else "mu"
    if params["solver"] not in ("cd", "mu"):
        raise click.UsageError(f"{flag} fits with --solver cd or mu, not "
                               f"{params['solver']!r}; choose one of them")
    if params.get("init") not in (None, "random"):
        raise click.UsageError(f"{flag} starts from --init random (NNDSVD needs an SVD of the "
                               f"whole X), not {params['init']!r}; drop --init")


def _fit_kwargs(params: dict) -> dict:
    keep = ("solver", "beta_loss", "tol", "max_iter", "max_time", "alpha_W", "alpha_H",
            "l1_ratio", "random_state")
    return {k: params[k] for k in keep if k in params}


def open_streamed(path) -> tuple[object, Dataset]:
    """The block source of a .npy file / .npz folder and a label-less Dataset describing it."""
    from ..outofcore import open_blocks

    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {str(p)!r}; check the path")
    if not (p.is_dir() or p.suffix == ".npy"):
        raise click.UsageError(f"--max-memory streams a .npy file or a folder of .npz chunks, "
                               f"not {p.name!r}; save the matrix with numpy.save, or drop "
                               f"--max-memory")
    _check_streamed(p)
    source = open_blocks(str(p))
    ds = Dataset(X=None, fmt="npz" if p.is_dir() else "npy", source=str(p),
                 extra={"shape": tuple(int(s) for s in source.shape),
                        "sparse": p.is_dir(), "dtype": str(source.dtype)})
    return source, ds


#: the library's messages about the values of X (the streamed pass finds them, not the CLI)
_ABOUT_VALUES = ("Negative values", "NaN", "infinit", "too large")


@contextlib.contextmanager
def _naming(path):
    """A streamed fit's complaint about the data's values names the file it read."""
    try:
        yield
    except ValueError as exc:
        msg = str(exc)
        if any(w in msg for w in _ABOUT_VALUES) and str(path) not in msg:
            raise ValueError(f"{str(path)!r}: {msg}") from None
        raise


def _check_streamed(p: pathlib.Path) -> None:
    """What a streamed file declares is checked as for an in-memory read (before mapping it):
    headers against sizes, archives intact, numbers real and not objects."""
    from .._file_checks import check_npy, check_npz

    files = sorted(p.glob("*.npz")) if p.is_dir() else [p]
    for f in files:
        if f.suffix == ".npy":
            check_npy(f)
            dtype = np.load(f, mmap_mode="r").dtype
        else:
            check_npz(f)
            with np.load(f, allow_pickle=False) as z:
                dtype = z["data"].dtype if "data" in z.files else z[z.files[0]].dtype
        if dtype.kind not in "biuf":
            what = "complex numbers" if dtype.kind == "c" else f"{dtype} values"
            raise ValueError(f"{str(f)!r} holds {what}; NMF needs real non-negative data")


def streamed_metrics(source, W, H, beta_loss, rows: int) -> dict:
    """Reconstruction error (β-divergence, as ``reconstruction_err_``), relative error and
    explained variance, one row block at a time."""
    import scipy.sparse as sp

    from ..losses import beta_divergence, beta_loss_to_float
    from ..metrics import hoyer_sparseness

    beta = beta_loss_to_float(beta_loss)
    resid = sq = div = 0.0
    col_sum = np.zeros(H.shape[1])
    for a, b, blk in source.blocks(rows):
        Wb = W[a:b]
        if sp.issparse(blk):
            sq += float(blk.multiply(blk).sum())
            col_sum += np.asarray(blk.sum(axis=0), dtype=np.float64).ravel()
            R = blk.toarray() - Wb @ H  # one block: within the budget the fit used
        else:
            sq += float(np.einsum("ij,ij->", blk, blk, dtype=np.float64))
            col_sum += blk.sum(axis=0, dtype=np.float64)
            R = blk - Wb @ H
        resid += float(np.einsum("ij,ij->", R, R, dtype=np.float64))
        if beta != 2.0:
            div += beta_divergence(blk, Wb, H, beta)
    n = W.shape[0]
    mu = col_sum / n
    total = sq - n * float(mu @ mu)
    err = float(np.sqrt(resid))
    rec = err if beta == 2.0 else float(np.sqrt(2.0 * max(div, 0.0)))
    return {"reconstruction_error": rec,
            "relative_error": err / np.sqrt(sq) if sq > 0 else 0.0,
            "explained_variance": (1.0 - resid / total) if total > 0 else
            (1.0 if resid == 0 else 0.0),
            "sparseness_W": hoyer_sparseness(W), "sparseness_H": hoyer_sparseness(H)}


def _model_from_result(params: dict, result, rec_err: float, how: str):
    """A fitted NMF holding the streamed / Dask fit's H (and its history)."""
    from .._estimator import NMF

    est_params = {k: v for k, v in params.items() if k in NMF().get_params()}
    est_params["init"] = "random"
    model = NMF(**est_params)
    H = np.asarray(result.H)
    model.components_ = H
    model.n_components_ = H.shape[0]
    model.n_features_in_ = H.shape[1]
    model.reconstruction_err_ = rec_err
    model.n_iter_ = int(result.n_iter)
    model.history_ = result.history
    model.loss_curve_ = list(result.history.get("objective", []))
    model.stop_reason_ = result.stop_reason
    model.fitted_by_ = how
    return model


def run_scaled(input_path, params: dict, read: dict, *, max_memory, dask_address, console):
    """Run the streamed or Dask fit; returns (model, W, Dataset, seconds, warnings, extra)."""
    kw = _fit_kwargs(params)
    bar = console.bar(params.get("max_iter", 200), "fit")

    def on_iteration(info):
        bar.update(info.n_iter - bar.n)
        return False

    t0 = time.perf_counter()
    with record_warnings() as caught:
        try:
            if max_memory is not None:
                from ..outofcore import fit_out_of_core, parse_memory

                source, ds = open_streamed(input_path)
                try:
                    parse_memory(max_memory)
                except ValueError:
                    raise click.BadParameter(f"{max_memory!r} is not a size; write e.g. 512MB "
                                             f"or 2GB", param_hint="--max-memory") from None
                with _naming(input_path):
                    result = fit_out_of_core(source, params["n_components"],
                                             max_memory=max_memory, callback=on_iteration, **kw)
                rows, how = result.block_rows, f"fit_out_of_core(max_memory={max_memory!r})"
                extra = {"mode": "out-of-core", "max_memory": max_memory, "block_rows": rows}
            else:
                source, ds, X, rows = _dask_input(input_path, read)
                from ..distributed import fit_dask

                address = None if dask_address == "local" else dask_address
                with _naming(input_path):
                    result = fit_dask(X, params["n_components"], address=address,
                                      callback=on_iteration, **kw)
                how = f"fit_dask(address={dask_address!r})"
                extra = {"mode": "dask", "address": dask_address}
        finally:
            bar.close()
    seconds = time.perf_counter() - t0
    W, H = np.asarray(result.W), np.asarray(result.H)
    metrics = streamed_metrics(source, W, H, params["beta_loss"], rows)
    model = _model_from_result(params, result, metrics["reconstruction_error"], how)
    extra["fitted_by"] = how
    extra["note"] = ("the model is an NMF built from the fit's H: components_, n_components_, "
                     "n_features_in_, reconstruction_err_, n_iter_, history_ and loss_curve_ "
                     "come from that fit")
    return model, W, ds, seconds, caught, metrics, extra


def _dask_input(input_path, read: dict):
    """(block source for the metrics, Dataset, dask.array, rows per block) for ``--dask``.

    A .npy file is memory-mapped and chunked by rows; other formats are read into memory with
    their labels, then chunked."""
    try:
        import dask.array as da
    except ImportError:
        raise click.UsageError("--dask needs dask[distributed]: pip install "
                               "'dask[distributed]'") from None
    from ..outofcore import ArrayBlocks
    from ._data import load_input

    p = pathlib.Path(input_path)
    if p.suffix == ".npy" and p.is_file():
        arr = np.load(p, mmap_mode="r")
        ds = Dataset(X=None, fmt="npy", source=str(p),
                     extra={"shape": tuple(arr.shape), "sparse": False, "dtype": str(arr.dtype)})
    else:
        ds = load_input(input_path, **read)
        if hasattr(ds.X, "nnz"):
            raise click.UsageError("--dask from the shell takes dense inputs (.npy, CSV/TSV, "
                                   "dense .npz); use nmfkit.distributed.fit_dask in Python for "
                                   "sparse data, or --max-memory with a folder of .npz chunks")
        arr = np.asarray(ds.X)
    if arr.ndim != 2:
        raise click.UsageError(f"--dask needs a 2-D matrix, got shape {tuple(arr.shape)}")
    rows = max(1, min(arr.shape[0], (64 << 20) // max(1, arr.shape[1] * arr.itemsize)))
    rows = min(rows, max(1, -(-arr.shape[0] // 4)))  # at least a few chunks
    X = da.from_array(arr, chunks=(rows, arr.shape[1]))
    if read.get("float32") and X.dtype != np.float32:  # a .npy read lazily: cast per chunk
        X = X.astype(np.float32)
        if ds.X is None:
            ds.extra["dtype"] = "float32"
    return ArrayBlocks(arr), ds, X, rows
