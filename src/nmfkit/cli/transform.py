"""``nmfkit transform MODEL INPUT``: the coefficients W of new data for a saved model's parts."""

from __future__ import annotations

import click
import numpy as np

from ._common import Console, common_options, record_warnings
from ._data import check_values, input_options, load_input, prepare_out_dir


def align_features(ds, model_names, n_features: int, source: str):
    """Reorder INPUT's columns to the model's feature order when both have names."""
    if ds.shape[1] != n_features and (ds.feature_names is None or model_names is None):
        raise ValueError(f"{source!r} has {ds.shape[1]} features (columns) but the model was "
                         f"fitted on {n_features}; give data with the same columns (or "
                         "--transpose)")
    if ds.feature_names is None or model_names is None or ds.feature_names == model_names:
        return ds
    for names, whose in ((ds.feature_names, repr(source)), (model_names, "the model")):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:  # matching by name would silently pick one of the copies
            raise ValueError(f"{whose} names several columns {repeated[:3]}; columns are "
                             "matched to the model's features by name, so names must be "
                             "unique: rename the columns, or give them in the model's order")
    index = {name: j for j, name in enumerate(ds.feature_names)}
    missing = [name for name in model_names if name not in index]
    if missing:
        raise ValueError(f"{source!r} lacks {len(missing)} of the model's features, e.g. "
                         f"{missing[:3]}; give data with the model's columns")
    cols = np.array([index[name] for name in model_names])
    ds.X = ds.X[:, cols]
    ds.feature_names = list(model_names)
    return ds


def load_model(model_path):
    """(model, its feature names, the metadata kept with it) of a model file."""
    from ..model_io import load, read_metadata

    model, meta = load(model_path), read_metadata(model_path)
    return model, meta.get("feature_names"), meta.get("metadata") or {}


def read_for_model(input_path, read: dict, model, names, extra):
    """INPUT read as the model's data: text with the model's vocabulary (and TF-IDF weights),
    values checked, columns in the model's order, in the model's dtype."""
    if extra.get("input_format") == "text" and (read["fmt"] or None) in (None, "text"):
        read = {**read, "text_weighting": extra.get("text_weighting") or read["text_weighting"]}
        ds = load_input(input_path, **read, vocabulary=names, idf=extra.get("idf"))
    else:
        ds = load_input(input_path, **read)
    check_values(ds)
    ds = align_features(ds, names, model.n_features_in_, ds.source)
    if ds.X.dtype != model.components_.dtype:
        ds.X = ds.X.astype(model.components_.dtype)
    return ds


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@input_options
@click.option("--out", "out_dir", default="nmfkit-transform", show_default=True,
              help="Output folder (created); W is written in INPUT's style.")
@common_options
def transform(model_path, input_path, out_dir, quiet, progress, verbose, **read):
    """Compute W for INPUT with the parts H of MODEL (a model.npz written by `nmfkit fit`).

    Columns are matched to the model's features by name when both have names. Text input
    reuses the model's vocabulary (and TF-IDF weights).
    """
    from ..io import write_matrix

    console = Console(quiet, progress, verbose)
    model, names, extra = load_model(model_path)
    ds = read_for_model(input_path, read, model, names, extra)
    out = prepare_out_dir(out_dir)
    with record_warnings() as caught:
        W = model.transform(ds.X)
    console.replay(caught)
    style = {"mtx": "npz", "text": "csv"}.get(ds.fmt, ds.fmt)
    labelled = style in ("csv", "tsv")
    path = write_matrix(out / "W", W, fmt=style, row_names=ds.row_names,
                        col_names=[f"component_{i}" for i in range(W.shape[1])]
                        if labelled else None)
    console.say(f"{ds.source}: {ds.shape[0]} samples → W {W.shape[0]}×{W.shape[1]}; wrote {path}")
