"""What ``nmfkit fit`` writes into its output folder: W and H in the input's style, model.npz,
top_features.csv, summary.json and report.html, and what it prints (the fit's figures and, for
text, the top words). A failure while writing says which files the folder holds and lacks."""

from __future__ import annotations

from ._stages import Stages


def _input_info(ds, read) -> dict:
    if ds.X is None:  # streamed: the Dataset describes the file, the data stay on disk
        return {"path": ds.source, "format": ds.fmt, "shape": list(ds.extra["shape"]),
                "sparse": bool(ds.extra["sparse"]), "dtype": ds.extra["dtype"],
                "transpose": False}
    return {"path": ds.source, "format": ds.fmt, "shape": list(ds.shape),
            "sparse": bool(hasattr(ds.X, "nnz")), "dtype": str(ds.X.dtype),
            "transpose": bool(read.get("transpose"))}


def write_outputs(out, model, W, ds, params, read, seconds, shape, report, n_top, console,
                  metrics=None, scale=None, stages=None):
    """W, H (input's style), model.npz, top_features.csv, summary.json and report.html; prints
    what it wrote (and, for text input, the top words of each component).

    ``metrics`` (precomputed, e.g. block by block for a streamed fit) replaces the in-memory
    metrics; ``scale`` (how a --max-memory / --dask fit ran) goes into summary.json. When a
    file cannot be written, the error says which files the folder holds and which it lacks.
    """
    from .._topics import top_features_of
    from ..io import write_factors, write_json
    from ..model_io import save as save_model
    from ._extensions import observed_summary
    from .info import versions

    stages = stages or Stages(console)
    H = model.components_
    stages.say(f"writing W, H, model, top features, summary{', report' if report else ''} "
               f"to {out}")
    files = []
    planned = ["W", "H", "model.npz", "top_features.csv", "summary.json"] + (
        ["report.html"] if report else [])
    with _incomplete_folder(out, files, planned):
        files += write_factors(out, W, H, fmt=ds.fmt, row_names=ds.row_names,
                               feature_names=ds.feature_names)
        meta = {"image_shape": list(shape) if shape else None, "input_format": ds.fmt,
                "transpose": bool(read.get("transpose")),
                "text_weighting": read.get("text_weighting") if ds.fmt == "text" else None,
                "idf": ds.extra.get("idf")}
        if scale is not None:
            meta["fitted_by"] = scale["fitted_by"]
        files.append(save_model(model, out / "model.npz", feature_names=ds.feature_names,
                                metadata=meta))
        top = top_features_of(model, n_top, ds.feature_names)
        files.append(top.to_csv(out / "top_features.csv"))
        if metrics is None:
            metrics = observed_summary(ds.X, W, H, model.beta_loss,
                                       model.get_params().get("missing_values"))
        info = {
            "input": _input_info(ds, read),
            "parameters": {k: v for k, v in model.get_params().items() if k != "callback"},
            "objective": (float(model.loss_curve_[-1]) if getattr(model, "loss_curve_", None)
                          else None),
            "reconstruction_err": float(model.reconstruction_err_),
            "n_iter": int(model.n_iter_),
            "stop_reason": getattr(model, "stop_reason_", None),
            "seconds": seconds,
            "metrics": metrics,
            "top_features": top.to_dict(),
            "versions": versions(),
        }
        if scale is not None:
            info["scale"] = scale
        info["files"] = [str(p) for p in files + [out / "summary.json"]]
        files.append(write_json(out / "summary.json", info))
    if report:
        try:
            path = _report(out, model, W, ds, shape, n_top, seconds, metrics)
        except ImportError as exc:
            console.warn(f"no report.html: {exc}")
        except Exception as exc:  # the other outputs are complete: say so, keep them
            info["report_error"] = f"{type(exc).__name__}: {exc}"
            write_json(out / "summary.json", info)
            raise ValueError(f"could not write the report {str(out / 'report.html')!r} "
                             f"({type(exc).__name__}: {exc}); the other outputs in {str(out)!r} "
                             "are complete (" + ", ".join(p.name for p in files) + "); "
                             "rerun with --no-report, or make the report later with "
                             "nmfkit report") from None
        else:
            files.append(path)
            info["files"] = [str(p) for p in files]
            write_json(out / "summary.json", info)
    n, m = info["input"]["shape"]
    console.say(f"{ds.source}: {n}×{m}, k={H.shape[0]}, "
                f"{model.n_iter_} iterations ({getattr(model, 'stop_reason_', '-')}) in "
                f"{seconds:.2f}s; "
                f"relative error {metrics['relative_error']:.4f}, explained variance "
                f"{metrics['explained_variance']:.4f}")
    if ds.fmt == "text":
        console.say(f"top {top.n_top} words of each component:")
        for c in range(top.n_components):
            console.say(f"  {c:>3}: " + ", ".join(top.words(c)))
    console.say("wrote " + ", ".join(str(p) for p in files))


class _incomplete_folder:
    """Turn a failure while writing into one clear error that lists what the folder holds."""

    def __init__(self, out, files, planned):
        self.out, self.files, self.planned = out, files, planned

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, Exception):
            return False
        have = [p.name for p in self.files]
        missing = [n for n in self.planned
                   if not any(h == n or h.startswith(n + ".") for h in have)]
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise OSError(f"writing the outputs to {str(self.out)!r} failed ({detail}); the folder "
                      f"is incomplete: it holds {', '.join(have) or 'nothing new'} but not "
                      f"{', '.join(missing)}; free space or choose another --out and rerun"
                      ) from None


def _report(out, model, W, ds, shape, n_top, seconds, metrics):
    from ..report import model_section, write_report

    sec = model_section(model, title=f"{ds.source}", W=W,
                        feature_names=ds.feature_names, row_names=ds.row_names,
                        image_shape=shape, n_top=n_top,
                        extra_metrics={**metrics, "seconds": seconds})
    return write_report(out / "report.html", [sec], title="nmfkit fit",
                        subtitle=f"{ds.source} ({W.shape[0]}×{model.components_.shape[1]})")
