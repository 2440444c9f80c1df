"""Input options shared by ``fit``, ``transform`` and ``report``, and the CLI's data checks.

The checks name the row and column labels of a bad cell, which the library (which sees only
an array) cannot do.
"""

from __future__ import annotations

import pathlib

import click
import numpy as np
import scipy.sparse as sp

from ..io import FORMATS, Dataset, parse_image_shape, read_matrix


def input_options(f):
    """Options that say how to read INPUT."""
    opts = [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                     help="Input format (default: from the file name)."),
        click.option("--transpose", "-T", is_flag=True,
                     help="Samples are the file's columns (e.g. genes × samples tables)."),
        click.option("--header/--no-header", default=None,
                     help="CSV/TSV: the first row holds column names (default: detected)."),
        click.option("--row-names/--no-row-names", "row_names", default=None,
                     help="CSV/TSV: the first column holds row names (default: detected)."),
        click.option("--text", "text_weighting", type=click.Choice(["tfidf", "counts"]),
                     default="tfidf", show_default=True,
                     help="Text input: TF-IDF weights or raw counts."),
        click.option("--max-features", type=click.IntRange(1), default=None,
                     help="Text input: keep the most frequent words only."),
        click.option("--stop-words", type=click.Choice(["english", "none"]), default="english",
                     show_default=True,
                     help="Text input: drop common English words (and contraction fragments "
                          "such as don, ll), or keep every word."),
        click.option("--min-df", type=DocFreq(), default="2", show_default=True,
                     help="Text input: keep words found in at least this many documents (or "
                          "this share of them, e.g. 0.001)."),
        click.option("--max-df", type=DocFreq(), default="0.5", show_default=True,
                     help="Text input: drop words found in more than this share of the "
                          "documents (or this many)."),
        click.option("--doc-sep", default=None, metavar="LINE",
                     help="Text input: documents are separated by lines equal to LINE (e.g. "
                          "'%%'); default: '%%' in files in fortune format (lines holding only "
                          "%%), else one document per line (per file in a folder)."),
        click.option("--encoding", default=None,
                     help="Text input: the files' encoding (default UTF-8), e.g. latin-1."),
        click.option("--float32", "float32", is_flag=True,
                     help="Read the data as float32 (half the memory)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


class DocFreq(click.ParamType):
    """A document frequency: a count (an integer ≥ 1) or a share (a number in (0, 1))."""

    name = "count|share"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            v = int(text)
        except ValueError:
            try:
                v = float(text)
            except ValueError:
                v = None
        ok = (isinstance(v, int) and v >= 1) or (isinstance(v, float) and 0 < v <= 1)
        if not ok:
            self.fail(f"{value!r} is neither a document count (an integer ≥ 1) nor a share of "
                      "the documents (a number in (0, 1])", param, ctx)
        return v


def load_input(path, *, fmt, transpose, header, row_names, text_weighting, max_features,
               stop_words, float32, min_df=1, max_df=1.0, doc_sep=None, encoding=None,
               vocabulary=None, idf=None, on_stage=None) -> Dataset:
    """Read INPUT with the input options; ``on_stage(text)`` hears the text reader's stages."""
    if (doc_sep is not None or encoding is not None) and fmt is None:
        fmt = "text"  # separators and encodings are options of text input only
    text_options = {"max_df": max_df, "doc_sep": "auto" if doc_sep is None else doc_sep,
                    "encoding": encoding}
    if on_stage is not None:
        text_options["on_stage"] = on_stage
    return read_matrix(path, fmt=fmt, transpose=transpose, header=header, row_names=row_names,
                       text_weighting=text_weighting, max_features=max_features,
                       stop_words=None if stop_words == "none" else stop_words, min_df=min_df,
                       vocabulary=vocabulary, idf=idf, text_options=text_options,
                       dtype=np.float32 if float32 else np.float64)


def _where(ds: Dataset, i: int, j: int) -> str:
    row = f"row {i + 1}" + (f" ({ds.row_names[i]!r})" if ds.row_names else "")
    col = f"column {j + 1}" + (f" ({ds.feature_names[j]!r})" if ds.feature_names else "")
    return f"{row}, {col}"


def check_values(ds: Dataset, *, allow_nan: bool = False, nan_hint: str = "") -> None:
    """Refuse negative, infinite and (unless ``allow_nan``) NaN entries, naming the cell."""
    X = ds.X
    data = X.data if sp.issparse(X) else X
    if sp.issparse(X):
        coo = X.tocoo()
    bad_nan = np.isnan(data)
    if bad_nan.any() and not allow_nan:
        i, j = _first(X, bad_nan, coo if sp.issparse(X) else None)
        raise ValueError(f"{ds.source!r} has a missing value (NaN) at {_where(ds, i, j)}; "
                         f"{nan_hint or 'fill or drop it'}")
    from .._validation import MAX_ABS_VALUE

    for mask, what, fix in (
        (np.isinf(data), "an infinite value", "replace it with a finite number"),
        (np.abs(np.nan_to_num(data, nan=0.0)) > MAX_ABS_VALUE, "a value too large to fit",
         f"NMF's objective overflows beyond {MAX_ABS_VALUE:g}: divide the data by a constant"),
        (np.nan_to_num(data, nan=0.0) < 0, "a negative value",
         "NMF needs non-negative data: clip negatives to 0 or shift the data"),
    ):
        if mask.any():
            i, j = _first(X, mask, coo if sp.issparse(X) else None)
            v = X[i, j]
            raise ValueError(f"{ds.source!r} has {what} ({float(v):g}) at {_where(ds, i, j)}; "
                             f"{fix}")


def _first(X, mask, coo):
    if coo is not None:
        pos = int(np.flatnonzero(mask)[0])
        return int(coo.row[pos]), int(coo.col[pos])
    i, j = np.argwhere(mask)[0]
    return int(i), int(j)


def check_rank(k: int, shape, source: str | None = None) -> None:
    n, m = shape
    if k > min(n, m):
        where = f" (in {source!r})" if source else ""
        raise ValueError(f"-k {k} is larger than the data allow: X is {n}×{m}{where}, so k can "
                         f"be at most {min(n, m)}; choose a smaller -k")


def image_shape_for(ds: Dataset, text, n_features: int):
    """The image shape from ``--image-shape`` or the file (3-D .npy), checked against H."""
    shape = parse_image_shape(text) if text else ds.image_shape if ds is not None else None
    if shape is not None and shape[0] * shape[1] != n_features:
        raise ValueError(f"--image-shape {shape[0]}x{shape[1]} has {shape[0] * shape[1]} "
                         f"pixels but the data have {n_features} features; give height×width "
                         f"= {n_features}")
    return shape


def prepare_out_dir(out) -> pathlib.Path:
    """Create the output folder and check it is writable (a clear error when it is not)."""
    out = pathlib.Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".nmfkit-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"cannot write to the output folder {str(out)!r} "
                      f"({exc.strerror or exc}); choose another one with --out") from None
    return out
