"""Read data matrices from files and write factors back in the input's style.

Formats: CSV / TSV (header and row names detected and kept as labels), ``.npy`` (2-D, or 3-D
stacks of images flattened with their image shape kept), ``.npz`` (a dense array or a
scipy.sparse matrix saved with ``scipy.sparse.save_npz``), Matrix Market ``.mtx`` (sparse), and
plain text (a folder of ``.txt`` files, one document each, or one file with one document per
line) turned into a TF-IDF or count matrix with scikit-learn's vectorisers, keeping the
vocabulary as feature names. ``transpose=True`` reads column-sample data (genes × samples).

Rows of the returned matrix are samples, columns are features (scikit-learn's orientation).
Errors are ``ValueError`` / ``FileNotFoundError`` whose message names the file, the place and
a fix; a sparse input is never densified.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._tables import is_number as _is_number
from ._tables import read_table
from ._file_checks import (
    DECODE_ERRORS,
    check_npy,
    check_npz,
    decode_error,
    open_text,
    read_mtx,
)

__all__ = ["Dataset", "read_matrix", "write_factors", "write_matrix", "write_json",
           "json_safe", "parse_image_shape", "read_pgm", "read_ldac", "FORMATS"]

FORMATS = ("csv", "tsv", "npy", "npz", "mtx", "text")


@dataclass
class Dataset:
    """A data matrix with its labels and where it came from.

    X : ndarray or scipy.sparse matrix, shape (n_samples, n_features)
    row_names, feature_names : list of str or None
    fmt : one of ``FORMATS``, the input's style (outputs follow it)
    image_shape : (height, width) when the features form an image, else None
    """

    X: object
    row_names: list | None = None
    feature_names: list | None = None
    fmt: str = "npy"
    source: str = ""
    image_shape: tuple | None = None
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return tuple(self.X.shape)


def parse_image_shape(text: str | None) -> tuple | None:
    """``"28x28"`` → (28, 28); None → None. Raises ValueError naming the accepted form."""
    if text is None or text == "":
        return None
    parts = str(text).lower().replace("×", "x").replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image shape {text!r} is not HEIGHTxWIDTH with positive integers; "
                         "write it like 28x28")
    return shape


def _guess_format(path: pathlib.Path) -> str:
    if path.is_dir():
        return "text"
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext in ("csv",):
        return "csv"
    if ext in ("tsv", "tab"):
        return "tsv"
    if ext in ("npy", "npz", "mtx"):
        return ext
    if ext in ("txt", "text", "dat"):
        # a numeric table or one document per line: look at the first line
        try:
            with open_text(path) as fh:
                first = fh.readline()
        except DECODE_ERRORS as exc:
            raise decode_error(path, exc) from None
        cells = first.replace("\t", " ").replace(",", " ").split()
        numeric = sum(_is_number(c) for c in cells)
        if cells and numeric >= max(1, len(cells) - 1):
            return "tsv" if "\t" in first else "csv" if "," in first else "ws"
        return "text"
    raise ValueError(f"cannot tell the format of {str(path)!r} from its name; pass --format "
                     f"with one of {', '.join(FORMATS)}")


def _open_text(path: pathlib.Path):
    if path.name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def read_matrix(path, *, fmt: str | None = None, transpose: bool = False,
                header: bool | None = None, row_names: bool | None = None,
                text_weighting: str = "tfidf", max_features: int | None = None,
                stop_words: str | None = None, min_df: int = 1, vocabulary=None, idf=None,
                dtype=np.float64, text_options: dict | None = None) -> Dataset:
    """Read a data matrix from ``path`` into a :class:`Dataset`.

    Parameters
    ----------
    path : str or Path, a file or (for text) a folder
    fmt : one of ``FORMATS`` or None to guess from the name
    transpose : bool, read the file's columns as samples (its transpose)
    header, row_names : bool or None (CSV/TSV), None detects them (a first row / first column
        with non-numeric cells)
    text_weighting : {"tfidf", "counts"} for text input
    max_features, stop_words, min_df : passed to the scikit-learn vectoriser for text input
    vocabulary, idf : for text input, reuse a fitted vocabulary (and TF-IDF weights, as kept in
        ``Dataset.extra["idf"]``) so new documents map onto a model's features
    dtype : float dtype of the result
    text_options : dict, optional, more text settings: ``max_df``, ``doc_sep`` (a line that
        separates documents), ``encoding`` (see :mod:`nmfkit.text`)

    Returns
    -------
    Dataset with X of shape (n_samples, n_features)
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {str(path)!r} does not exist; check the path")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    fmt = fmt or _guess_format(path)
    if fmt in ("npy", "npz") and path.suffix.lower() in (".gz", ".bz2", ".xz"):
        raise ValueError(f"{str(path)!r} is a compressed .{fmt}, which NumPy cannot map or "
                         f"read; decompress it first (e.g. gunzip), or save with "
                         f"{'numpy.savez_compressed' if fmt == 'npz' else 'numpy.save'}")
    if fmt in ("csv", "tsv", "ws"):
        delim = {"csv": ",", "tsv": "\t", "ws": None}[fmt]
        X, labels, names = read_table(path, delim, header, row_names, dtype)
        ds = Dataset(X=X, row_names=labels, feature_names=names)
        ds.fmt = "tsv" if fmt == "ws" else fmt
    elif fmt in ("npy", "npz", "mtx"):
        ds = {"npy": _read_npy, "npz": _read_npz, "mtx": _read_mtx}[fmt](path, dtype)
        ds.fmt = fmt
    else:
        ds = _read_text(path, text_weighting, max_features, stop_words, min_df, dtype,
                        vocabulary, idf, **(text_options or {}))
    ds.source = str(path)
    if ds.X.ndim != 2 or min(ds.X.shape) == 0:
        raise ValueError(f"{str(path)!r} holds an array of shape {ds.X.shape}; a non-empty "
                         "2-D matrix (samples × features) is needed")
    if transpose:
        ds.X = ds.X.T.tocsr() if sp.issparse(ds.X) else np.ascontiguousarray(ds.X.T)
        ds.row_names, ds.feature_names = ds.feature_names, ds.row_names
        ds.image_shape = None
    return ds


def _read_npy(path, dtype) -> Dataset:
    check_npy(path)  # signature, header and declared size before numpy allocates anything
    try:
        A = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read {str(path)!r} as a .npy array ({exc}); save the matrix "
                         "again with numpy.save") from None
    return _from_array(A, path, dtype)


def _check_real(A, path) -> None:
    if A.dtype.kind == "c":
        raise ValueError(f"{str(path)!r} holds complex numbers; NMF needs real non-negative "
                         "data: save their magnitude (np.abs) or real part instead")
    if A.dtype.kind not in "biuf":
        raise ValueError(f"{str(path)!r} holds {A.dtype} values; NMF needs numbers")


def _from_array(A, path, dtype) -> Dataset:
    _check_real(A, path)
    image_shape = None
    if A.ndim == 3:
        image_shape = tuple(int(s) for s in A.shape[1:])
        A = A.reshape(A.shape[0], -1)
    return Dataset(X=np.asarray(A, dtype=dtype), image_shape=image_shape)


_READ_ERRORS = (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
                IndexError, TypeError)


def _read_npz(path, dtype) -> Dataset:
    names = check_npz(path)  # zip integrity, and every member's declared size, first
    if "format" in names and {"shape", "data"} <= set(names):
        try:
            A = sp.load_npz(path)
        except _READ_ERRORS as exc:
            raise ValueError(f"cannot read {str(path)!r} as a scipy.sparse .npz ({exc}); save "
                             "it again with scipy.sparse.save_npz") from None
        _check_real(A, path)
        if max(A.shape) >= 2**31:
            raise ValueError(f"{str(path)!r} declares a sparse matrix of shape {A.shape}, "
                             "beyond 2³¹ rows or columns; the file is damaged")
        return Dataset(X=A.tocsr().astype(dtype))
    key = "X" if "X" in names else names[0] if len(names) == 1 else None
    if key is None:
        raise ValueError(f"{str(path)!r} holds the arrays {names}; name the data "
                         "matrix 'X' (np.savez(path, X=X)) or save one array only")
    try:
        with np.load(path, allow_pickle=False) as z:
            A = z[key]
            labels = {k: [str(s) for s in z[k].ravel()] for k in ("row_names", "feature_names")
                      if k in names and z[k].dtype.kind == "U"}
    except _READ_ERRORS as exc:
        raise ValueError(f"cannot read {str(path)!r} as .npz ({exc}); save it again with "
                         "numpy.savez") from None
    ds = _from_array(A, path, dtype)
    for k, n in (("row_names", ds.X.shape[0]), ("feature_names", ds.X.shape[-1])):
        if k in labels and (ds.X.ndim != 2 or len(labels[k]) != n):
            raise ValueError(f"{str(path)!r} holds {len(labels[k])} {k} for {n} "
                             f"{'rows' if k == 'row_names' else 'columns'}; give one name each")
    ds.row_names, ds.feature_names = labels.get("row_names"), labels.get("feature_names")
    return ds


def _read_mtx(path, dtype) -> Dataset:
    # parsed and checked by nmfkit: scipy's reader trusts the declared size
    return Dataset(X=read_mtx(path).astype(dtype))


def _read_text(path, weighting, max_features, stop_words, min_df, dtype, vocabulary=None,
               idf=None, *, max_df=1.0, doc_sep=None, encoding=None,
               on_stage=None) -> Dataset:
    """Text documents (see :mod:`nmfkit.text`) → a TF-IDF / count Dataset with its vocabulary."""
    from .text import read_documents, vectorize

    if weighting not in ("tfidf", "counts"):
        raise ValueError(f"unknown text weighting {weighting!r}; use tfidf or counts")
    docs, names = read_documents(path, doc_sep=doc_sep, encoding=encoding, on_stage=on_stage)
    if on_stage is not None:  # e.g. the CLI's stage messages
        on_stage(f"vectorising {len(docs)} documents ({weighting})")
    X, vocab, idf_out = vectorize(docs, weighting=weighting, stop_words=stop_words,
                                  min_df=min_df, max_df=max_df, max_features=max_features,
                                  vocabulary=vocabulary, idf=idf, dtype=dtype,
                                  source=repr(str(path)))
    extra = {"idf": idf_out} if idf_out is not None else {}
    return Dataset(X=X, row_names=names, feature_names=vocab, fmt="text", extra=extra)


# ------------------------------------------------------------------------------ writing
def write_matrix(path, A, *, row_names=None, col_names=None, fmt: str = "csv") -> pathlib.Path:
    """Write a dense matrix as CSV/TSV (with labels), .npy or .npz; returns the path written."""
    path = pathlib.Path(path)
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    if fmt in ("csv", "tsv", "text"):
        delim = "\t" if fmt == "tsv" else ","
        path = path.with_suffix(".tsv" if fmt == "tsv" else ".csv")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter=delim)
            if col_names is not None:
                w.writerow(([""] if row_names is not None else []) + list(col_names))
            for i, row in enumerate(A):
                cells = [repr(float(v)) for v in row]
                w.writerow(([row_names[i]] if row_names is not None else []) + cells)
    elif fmt == "npy":
        path = path.with_suffix(".npy")
        np.save(path, A)
    else:
        path = path.with_suffix(".npz")
        labels = {}
        if row_names is not None:
            labels["row_names"] = np.array(row_names, dtype=str)
        if col_names is not None:
            labels["feature_names"] = np.array(col_names, dtype=str)
        np.savez(path, X=A, **labels)
    return path


def write_factors(out_dir, W, H, *, fmt: str, row_names=None, feature_names=None) -> list:
    """Write W (n_samples, k) and H (k, n_features) into ``out_dir`` in the style ``fmt``.

    CSV/TSV (and text input) get labelled tables: W's rows are the sample names and its columns
    ``component_0..``; H's rows are the components and its columns the feature names. .mtx and
    .npz input give .npz files, .npy input .npy files. Returns the paths written.
    """
    out_dir = pathlib.Path(out_dir)
    k = H.shape[0]
    comps = [f"component_{i}" for i in range(k)]
    style = {"mtx": "npz", "text": "csv"}.get(fmt, fmt)
    labelled = style in ("csv", "tsv")
    return [
        write_matrix(out_dir / "W", W, fmt=style, row_names=row_names,
                     col_names=comps if labelled else None),
        write_matrix(out_dir / "H", H, fmt=style, row_names=comps if labelled else None,
                     col_names=feature_names if feature_names is not None
                     else ([f"feature_{j}" for j in range(H.shape[1])] if labelled else None)),
    ]


def json_safe(obj):
    """Replace non-finite floats and numpy scalars so ``json.dumps`` writes valid JSON."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_json(path, obj) -> pathlib.Path:
    path = pathlib.Path(path)
    path.write_text(json.dumps(json_safe(obj), indent=2))
    return path


def read_pgm(path) -> np.ndarray:
    """One binary (P5) or plain (P2) PGM image as a 2-D uint8/uint16 array (e.g. ORL faces)."""
    data = pathlib.Path(path).read_bytes()
    tokens, pos = [], 0
    while len(tokens) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic == b"P2":
        return np.array(data[pos:].split(), dtype=np.uint16).reshape(height, width)
    if magic != b"P5":
        raise ValueError(f"{str(path)!r} is not a PGM image (magic {magic!r})")
    dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
    pixels = np.frombuffer(data, dtype=dtype, count=width * height, offset=pos + 1)
    return pixels.reshape(height, width)


def read_ldac(path, n_features: int | None = None, dtype=np.float64):
    """A document-term count matrix (CSR) from Blei's LDA-C format: ``N id:count ...`` per line."""
    rows, cols, vals = [], [], []
    with _open_text(pathlib.Path(path)) as fh:
        for i, line in enumerate(fh):
            for item in line.split()[1:]:
                j, c = item.split(":")
                rows.append(i)
                cols.append(int(j))
                vals.append(float(c))
    n_rows = i + 1 if rows else 0
    m = n_features if n_features is not None else (max(cols) + 1 if cols else 0)
    return sp.csr_matrix((np.asarray(vals, dtype=dtype), (rows, cols)), shape=(n_rows, m))
