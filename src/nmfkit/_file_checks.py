"""Checks of a data file before it is parsed: what it declares must be what it holds.

A reader must never be told what to allocate by a file: a ``.npy`` header (also inside an
``.npz``) or a Matrix Market size line can declare 10¹² entries in a file of a few bytes. These
checks compare what a file declares with its size, refuse object arrays without ever offering
to unpickle, open compressed files by what their bytes are (not by their name alone), and
decode tables strictly so that a binary or non-UTF-8 file is named, not silently mangled
(documents are decoded by :mod:`nmfkit.text`, which takes a declared encoding).
Every failure is a ``ValueError`` naming the file, what is wrong and a fix.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import io
import lzma
import pathlib
import zipfile
import zlib

import numpy as np

__all__ = ["open_text", "decode_error", "check_npy", "check_npz", "read_mtx", "DECODE_ERRORS"]

_NPY_MAGIC = b"\x93NUMPY"
_COMPRESSED = {".gz": (b"\x1f\x8b", gzip.open, "gzip"), ".bz2": (b"BZh", bz2.open, "bzip2"),
               ".xz": (b"\xfd7zXZ\x00", lzma.open, "xz")}
#: what reading a damaged compressed or badly encoded file raises, all named as the file's fault
DECODE_ERRORS = (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile, OSError,
                 lzma.LZMAError)


def _name(path) -> str:
    return repr(str(path))


def _raw_open(path: pathlib.Path):
    """The file's bytes, decompressed when its name says so — after checking its magic."""
    suffix = path.suffix.lower()
    if suffix in _COMPRESSED:
        magic, opener, kind = _COMPRESSED[suffix]
        with open(path, "rb") as fh:
            head = fh.read(len(magic))
        if head != magic:
            raise ValueError(f"{_name(path)} is named {suffix} but is not a {kind} file; "
                             f"rename it without {suffix} if it is plain text, or compress it "
                             f"with {kind}")
        return opener(path, "rb")
    return open(path, "rb")


def open_text(path):
    """A text handle on ``path`` (UTF-8, a BOM dropped, .gz/.bz2/.xz by content), strict."""
    path = pathlib.Path(path)
    return io.TextIOWrapper(_raw_open(path), encoding="utf-8-sig", errors="strict",
                            newline="")


def decode_error(path, exc) -> ValueError:
    """The ValueError for a file that cannot be read as (compressed) UTF-8 text."""
    if isinstance(exc, UnicodeDecodeError):
        if b"\x00" in exc.object[:exc.end + 64]:
            return ValueError(f"{_name(path)} is a binary file, not a text table (it holds NUL "
                              "bytes); give the right file, or its --format")
        byte = exc.object[exc.start]
        return ValueError(f"{_name(path)} is not UTF-8 text (byte {byte:#04x} near offset "
                          f"{exc.start}); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    if isinstance(exc, (PermissionError, IsADirectoryError, FileNotFoundError)):
        return ValueError(f"cannot read {_name(path)} ({exc.strerror or exc}); check the path "
                          "and its permissions")
    return ValueError(f"cannot read {_name(path)}: it is damaged or truncated ({exc}); give an "
                      "intact copy")


# ------------------------------------------------------------------------------ .npy / .npz
def _header(fh, where: str):
    """(shape, fortran, dtype, header_bytes) of a .npy stream, or ValueError naming ``where``."""
    magic = fh.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise ValueError(f"{where} is not a NumPy .npy array (it does not start with the .npy "
                         "signature); save the matrix with numpy.save")
    version = fh.read(2)
    if len(version) < 2 or version[0] not in (1, 2, 3):
        raise ValueError(f"{where} has an unknown .npy version; save it again with numpy.save")
    size_bytes = 2 if version[0] == 1 else 4
    raw = fh.read(size_bytes)
    if len(raw) < size_bytes:
        raise ValueError(f"{where} is truncated inside its .npy header; give an intact copy")
    hlen = int.from_bytes(raw, "little")
    if hlen > 10_000:
        raise ValueError(f"{where} declares a .npy header of {hlen} bytes (at most 10000 are "
                         "read); save the matrix with numpy.save")
    text = fh.read(hlen)
    if len(text) < hlen:
        raise ValueError(f"{where} is truncated inside its .npy header; give an intact copy")
    try:
        d = ast.literal_eval(text.decode("latin1"))
        shape, fortran, descr = d["shape"], d["fortran_order"], d["descr"]
        if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise ValueError
        dtype = np.dtype(descr) if not isinstance(descr, list) else np.dtype("O")
    except Exception:  # any malformed header: the file's fault, said once
        raise ValueError(f"{where} has a damaged .npy header; save the matrix again with "
                         "numpy.save") from None
    return shape, bool(fortran), dtype, len(_NPY_MAGIC) + 2 + size_bytes + hlen


def _check_declared(where: str, shape, dtype, available: int) -> None:
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects, not numbers (object arrays are "
                         "refused: unpickling them could run code); save plain numbers with "
                         "numpy.save")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > available:
        raise ValueError(f"{where} declares an array of shape {shape} ({need:,} bytes) but holds "
                         f"only {max(available, 0):,} bytes of data: the file is truncated or damaged; "
                         "give an intact copy")


def check_npy(path) -> None:
    """The header of a .npy file, checked against the file's size before anything is read."""
    path = pathlib.Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        shape, _, dtype, offset = _header(fh, _name(path))
    _check_declared(_name(path), shape, dtype, size - offset)


def check_npz(path) -> list:
    """Every member of an .npz archive checked (zip integrity, headers vs sizes); its names."""
    path = pathlib.Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{_name(path)} is not an .npz archive (not a zip file); save it with "
                         "numpy.savez or scipy.sparse.save_npz")
    try:
        with zipfile.ZipFile(path) as zf:
            names = []
            for info in zf.infolist():
                where = f"member {info.filename!r} of {_name(path)}"
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"{where} is not a .npy array; an .npz holds arrays only")
                with zf.open(info) as fh:
                    shape, _, dtype, offset = _header(fh, where)
                _check_declared(where, shape, dtype, info.file_size - offset)
                names.append(info.filename[:-4])
            bad = zf.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError,
            NotImplementedError) as exc:
        raise ValueError(f"cannot read {_name(path)} as .npz: the archive is damaged or "
                         f"truncated ({exc}); give an intact copy") from None
    if bad is not None:
        raise ValueError(f"member {bad!r} of {_name(path)} is damaged (its checksum does not "
                         "match); give an intact copy")
    if not names:
        raise ValueError(f"{_name(path)} is an empty .npz archive; it needs the data matrix")
    return names


# ------------------------------------------------------------------------------ Matrix Market
_MTX_SYMMETRY = ("general", "symmetric", "skew-symmetric")


def read_mtx(path):
    """A Matrix Market file as a scipy CSR matrix (float64), every part checked first.

    scipy's reader trusts the size line (a truncated coordinate file crashes the process), so
    the file is parsed here: the banner, the size line against the file's size before any
    allocation, then exactly the declared number of entries, each index inside the shape.
    """
    import warnings

    import scipy.sparse as sp

    path = pathlib.Path(path)
    size = path.stat().st_size
    try:
        with open_text(path) as fh:
            banner = fh.readline()
            line = fh.readline()
            while line.startswith("%"):
                line = fh.readline()
            words = banner.lower().split()
            if len(words) < 5 or words[0] != "%%matrixmarket" or words[1] != "matrix":
                raise ValueError(f"{_name(path)} is not a Matrix Market file (its first line is "
                                 "not '%%MatrixMarket matrix ...'); save it with "
                                 "scipy.io.mmwrite")
            layout, field, symmetry = words[2], words[3], words[4]
            dims = _mtx_size(path, size, layout, field, symmetry, line)
            body = fh.read()
    except DECODE_ERRORS as exc:
        raise decode_error(path, exc) from None
    rows, cols = dims[:2]
    width = {"coordinate": 2 if field == "pattern" else 3, "array": 1}[layout]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": counted below
            values = np.loadtxt(io.StringIO(body), dtype=np.float64, comments="%", ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{_name(path)} has a malformed entry ({exc}); each line after the "
                         f"size line must hold {width} number(s)") from None
    if values.size == 0:
        values = values.reshape(0, width)
    if layout == "coordinate":
        expected = dims[2]
    else:
        expected = {"general": rows * cols, "symmetric": rows * (rows + 1) // 2,
                    "skew-symmetric": rows * (rows - 1) // 2}[symmetry]
    if values.shape != (expected, width):
        raise ValueError(f"{_name(path)} declares {expected:,} entries but holds "
                         f"{values.shape[0]:,} lines of {values.shape[1]} number(s): the file is "
                         "truncated or damaged; give an intact copy")
    if layout == "array":
        if symmetry == "general":
            return sp.csr_matrix(values[:, 0].reshape(cols, rows).T)
        upper = np.triu_indices(rows, k=0 if symmetry == "symmetric" else 1)
        i, j, v = upper[1], upper[0], values[:, 0]
    else:
        ij = values[:, :2]
        if not (np.all(ij == np.round(ij)) and np.all(ij >= 1)
                and np.all(ij[:, 0] <= rows) and np.all(ij[:, 1] <= cols)):
            raise ValueError(f"{_name(path)} has an entry whose row or column is not an "
                             f"integer in 1..{rows} / 1..{cols}: the file is damaged")
        i, j = ij[:, 0].astype(np.int64) - 1, ij[:, 1].astype(np.int64) - 1
        v = values[:, 2] if field != "pattern" else np.ones(len(i))
    if symmetry != "general":
        off = i != j
        sign = 1.0 if symmetry == "symmetric" else -1.0
        i, j, v = (np.concatenate([i, j[off]]), np.concatenate([j, i[off]]),
                   np.concatenate([v, sign * v[off]]))
    return sp.coo_matrix((v, (i, j)), shape=(rows, cols)).tocsr()


def _mtx_size(path, size, layout, field, symmetry, line) -> list:
    """The size line, checked against the banner and against the file's size."""
    if field == "complex":
        raise ValueError(f"{_name(path)} holds complex numbers; NMF needs real non-negative "
                         "data: save their magnitude (abs) or real part instead")
    if layout not in ("coordinate", "array") or field not in ("real", "integer", "pattern") \
            or symmetry not in _MTX_SYMMETRY or (layout == "array" and field == "pattern"):
        raise ValueError(f"{_name(path)} is a Matrix Market '{layout} {field} {symmetry}' "
                         "matrix; nmfkit reads coordinate or array matrices of real, integer "
                         "or pattern values (general, symmetric or skew-symmetric)")
    try:
        dims = [int(v) for v in line.split()]
    except ValueError:
        dims = []
    want = 3 if layout == "coordinate" else 2
    if len(dims) != want or min(dims) < 0:
        raise ValueError(f"{_name(path)} has a malformed size line {line.strip()!r}; it must "
                         f"hold {want} non-negative integers")
    rows, cols = dims[:2]
    if symmetry != "general" and rows != cols:
        raise ValueError(f"{_name(path)} declares a {symmetry} matrix of shape {rows}×{cols}, "
                         "which is not square: the file is damaged")
    # every stored value takes at least two characters ("0\n") of the file
    values = dims[2] if layout == "coordinate" else rows * cols // (2 if symmetry != "general"
                                                                    else 1)
    if values * 2 > size or max(rows, cols) >= 2**31:
        raise ValueError(f"{_name(path)} declares a {rows}×{cols} matrix with {values:,} "
                         f"values, more than its {size:,} bytes can hold (or beyond 2³¹ "
                         "rows/columns): the file is truncated or damaged")
    return dims
