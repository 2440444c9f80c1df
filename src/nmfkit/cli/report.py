"""``nmfkit report MODEL [INPUT]``: the HTML report of a saved model (with INPUT: W and metrics)."""

from __future__ import annotations

import pathlib

import click

from ._common import Console, common_options
from ._data import image_shape_for, input_options
from .transform import load_model, read_for_model


@click.command(name="report")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path())
@input_options
@click.option("--image-shape", default=None, help="HEIGHTxWIDTH: show the parts as images.")
@click.option("--top", "n_top", type=click.IntRange(1), default=10, show_default=True,
              help="Features per component in the bar charts.")
@click.option("--out", "out_path", default=None,
              help="HTML file to write (default: report.html next to MODEL).")
@common_options
def report_cmd(model_path, input_path, image_shape, n_top, out_path, quiet, progress, verbose,
               **read):
    """Write a self-contained HTML report of MODEL: convergence, parts, top features.

    With INPUT (the data, or new data with the same columns) it adds the coefficient heat map
    and the quality metrics.
    """
    from ..report import model_section, write_report

    console = Console(quiet, progress, verbose)
    model, names, extra = load_model(model_path)
    X = row_names = ds = None
    if input_path is not None:
        ds = read_for_model(input_path, read, model, names, extra)
        X, row_names = ds.X, ds.row_names
    m = model.n_features_in_
    shape = image_shape_for(ds, image_shape, m) if (image_shape or ds is not None) else None
    if shape is None and extra.get("image_shape"):
        shape = tuple(extra["image_shape"])
    sec = model_section(model, title=str(model_path), X=X, feature_names=names,
                        row_names=row_names, image_shape=shape, n_top=n_top)
    out = pathlib.Path(out_path) if out_path else pathlib.Path(model_path).with_name("report.html")
    try:
        path = write_report(out, [sec], title="nmfkit report", subtitle=str(model_path))
    except OSError as exc:
        raise OSError(f"cannot write the report to {str(out)!r} ({exc.strerror or exc}); "
                      "choose another path with --out") from None
    console.say(f"wrote {path}")
