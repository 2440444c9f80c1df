"""CSV / TSV / whitespace tables: cells to numbers, with the labels a table carries.

Header and row names are detected (or given); a cell that is not a number is an error naming
its line and column — a bad cell in the first column included, which is never a reason to
take that column as row labels. Decoding is strict (see :mod:`nmfkit._file_checks`): a UTF-8
BOM is dropped, a binary or non-UTF-8 file is named. A ``.csv`` separated by semicolons is read
with decimal commas.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from ._file_checks import DECODE_ERRORS, decode_error, open_text

__all__ = ["NA", "is_number", "read_table"]

#: cells read as missing values
NA = {"", "na", "nan", "n/a", "null", "none", "?"}


def is_number(cell: str) -> bool:
    """A number, or a cell that marks a missing value (NA, empty, ...)."""
    try:
        float(cell)
        return True
    except ValueError:
        return cell.strip().lower() in NA


def _rows(path, delim):
    """The non-empty rows of a table as lists of cells (decoded strictly, see _file_checks).

    A ``.csv`` whose first line has more semicolons than commas is read as the European
    style (``;`` between cells, ``,`` as the decimal mark) instead of one column of text.
    """
    try:
        with open_text(path) as fh:
            if delim is None:
                rows = [line.split() for line in fh if line.strip()]
            else:
                text = fh.read()
                first = next((line for line in text.splitlines() if line.strip()), "")
                if delim == "," and first.count(";") > first.count(","):
                    delim = ";"
                rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim)
                        if any(c.strip() for c in r)]
    except DECODE_ERRORS as exc:
        raise decode_error(path, exc) from None
    except csv.Error as exc:
        raise ValueError(f"cannot read {str(path)!r} as a table ({exc}); check that it is a "
                         "CSV/TSV text file") from None
    if any("\x00" in c for r in rows[:50] for c in r):
        raise ValueError(f"{str(path)!r} holds binary data (NUL bytes), not a text table; "
                         "give the right file or its --format")
    if delim == ";":
        rows = [[c.replace(",", ".") if is_number(c.replace(",", ".")) else c for c in r]
                for r in rows]
    return rows


def read_table(path, delim, header, row_names, dtype):
    """(X, row names or None, column names or None) of a CSV/TSV/whitespace table."""
    rows = _rows(path, delim)
    if not rows:
        raise ValueError(f"{str(path)!r} is empty; it needs at least one row of numbers")
    if header is None:
        header = not all(is_number(c) for c in rows[0][1:]) or (
            len(rows[0]) == 1 and not is_number(rows[0][0]))
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{str(path)!r} has a header but no data rows")
    guessed = row_names is None
    if guessed:
        # labels when most of the first column is text (a few bad cells in a numeric first
        # column are data errors, reported below, never a reason to drop the column), when
        # the header is one cell shorter, or when the header's first cell is empty
        non_numeric = sum(not is_number(r[0]) for r in body)
        row_names = (2 * non_numeric > len(body) or len(body[0]) > 1 and names is not None
                     and (len(names) == len(body[0]) - 1 or names[0] == ""))
    start = 1 if row_names else 0
    width = len(body[0])
    first_line = 2 if header else 1
    for i, r in enumerate(body):
        if len(r) != width:
            raise ValueError(f"line {first_line + i} of {str(path)!r} has {len(r)} cells but "
                             f"line {first_line} has {width}; every row needs the same number "
                             "of cells")
    if width - start < 1:
        raise ValueError(f"{str(path)!r} has row names but no columns of numbers")
    cells = [r[start:] for r in body]
    try:
        X = np.array(cells, dtype=dtype)
    except ValueError:
        X = np.empty((len(cells), width - start), dtype=dtype)
        for i, r in enumerate(cells):
            for j, c in enumerate(r):
                try:
                    X[i, j] = float(c)
                except ValueError:
                    if c.strip().lower() in NA:
                        X[i, j] = np.nan
                        continue
                    raise ValueError(_cell_error(path, c, first_line + i, j + start,
                                                 guessed and j + start == 0)) from None
    labels = [r[0].strip() for r in body] if row_names else None
    if names is not None:
        names = names[start:] if len(names) == width else names[-(width - start):]
    return X, labels, names


def _cell_error(path, cell, line, col, first_column) -> str:
    where = f"cell {cell!r} at line {line}, column {col + 1} of {str(path)!r}"
    try:
        complex(cell.strip().replace(" ", ""))
        return (f"{where} is a complex number; NMF needs real non-negative data: give its "
                "magnitude or real part")
    except ValueError:
        pass
    hint = ("; if the first column holds row names, pass --row-names (row_names=True)"
            if first_column else "")
    return (f"cannot read {where} as a number; fix the cell, or mark a missing value as NA "
            f"(and pass --missing){hint}")
