"""Missing entries and element-wise weights: the weighted objective and the masked fit path.

NMF with a mask fits only what is observed. With weights M ≥ 0 (M_ij = 0: unobserved) the
objective is

    Σ_ij M_ij · d_β(X_ij, (WH)_ij)  + penalties,

with d_2(x, y) = ½(x − y)² (Frobenius) and d_1(x, y) = x log(x/y) − x + y (generalised KL).

Three ways to say what is observed (see docs/missing.md):

* dense X with NaN where a value is missing, with ``missing_values=np.nan`` (scikit-learn's
  imputer convention; any other number v marks the entries equal to v as missing);
* sparse X whose stored entries are the observations, with ``missing_values="unobserved"``:
  an absent entry is unknown, not zero (ratings, implicit feedback); stored zeros are
  observed zeros;
* an explicit mask / weight matrix ``fit(X, mask=M)``, boolean or non-negative, dense or
  sparse, X's shape.

Whatever the input, the observed entries are held once as an :class:`Observed` set: a CSR
structure with the values and the weights aligned to it, and the permutation to its
transpose. Nothing of size n_samples × n_features is ever formed, so a 10⁶ × 10⁶ matrix with
10⁵ ratings costs memory in proportion to 10⁵ (plus the factors).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Observed",
    "observed_entries",
    "sampled_product",
    "weighted_divergence",
]


@dataclass
class Observed:
    """The observed entries of an (n_samples, n_features) matrix, in CSR order.

    Attributes
    ----------
    shape : (n_samples, n_features)
    indptr, indices : CSR structure (row pointers, column of each observation), int arrays.
    rows : ndarray (nnz,), the row of each observation.
    values : ndarray (nnz,), X at the observations (zeros included).
    weights : ndarray (nnz,), M at the observations, all > 0.
    t_indptr, t_indices : CSR structure of the transpose (column pointers, rows).
    t_perm : ndarray (nnz,); observation ``t_perm[q]`` is the q-th in transposed order.
    """

    shape: tuple
    indptr: np.ndarray
    indices: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_perm: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def unit_weights(self) -> bool:
        return bool(np.all(self.weights == 1))

    @classmethod
    def from_coo(cls, rows, cols, values, weights, shape, dtype) -> Observed:
        """Build from coordinates (duplicates are not allowed)."""
        n, m = shape
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        values = np.asarray(values, dtype=dtype)[order]
        weights = np.asarray(weights, dtype=dtype)[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        t_perm = np.lexsort((rows, cols))
        t_indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=m), out=t_indptr[1:])
        return cls(
            shape=(n, m), indptr=indptr, indices=cols, rows=rows, values=values,
            weights=weights, t_indptr=t_indptr, t_indices=rows[t_perm], t_perm=t_perm,
        )

    def csr(self, data=None):
        """A CSR matrix with this structure and the given data (default: the values)."""
        data = self.values if data is None else data
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def transposed(self) -> Observed:
        """The observed entries of Xᵀ (the roles of rows and columns swapped)."""
        inv = np.empty_like(self.t_perm)
        inv[self.t_perm] = np.arange(self.t_perm.shape[0])
        return Observed(
            shape=self.shape[::-1], indptr=self.t_indptr, indices=self.t_indices,
            rows=self.indices[self.t_perm], values=self.values[self.t_perm],
            weights=self.weights[self.t_perm], t_indptr=self.indptr, t_indices=self.indices,
            t_perm=inv,
        )


def _is_nan(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isnan(v)


def check_no_nan(values, where: str) -> None:
    """Refuse NaN among observed values (``where`` names them), saying how to mark missing."""
    if np.isnan(values).any():
        raise ValueError(
            f"Input X contains NaN at {where}. Pass missing_values=np.nan to treat NaN as a "
            "missing entry, or give those entries weight 0 in mask."
        )


def check_missing_values(missing_values, sparse: bool, has_mask: bool):
    """``missing_values`` as the observed set reads it ("nan" is NaN), or the refusal of a
    combination with X's storage that says nothing: "unobserved" with a dense X, a number with
    a sparse X, a sparse X with neither "unobserved" nor a mask. The one rule for the host
    (:func:`observed_entries`) and the torch backend (passed to it, which imports no data
    layer)."""
    if isinstance(missing_values, str) and missing_values == "nan":
        missing_values = np.nan  # e.g. from a JSON model file or a command line
    if missing_values == "unobserved" and not sparse:
        raise ValueError(
            "missing_values='unobserved' means the stored entries of a sparse X are the "
            "observations, but X is dense. Pass a scipy.sparse X, or use missing_values=np.nan "
            "with NaN at the missing entries of a dense X."
        )
    if sparse and missing_values is not None and missing_values != "unobserved":
        raise ValueError(
            f"missing_values={missing_values!r} with a sparse X is ambiguous (are the absent "
            "entries zeros or missing?). Use missing_values='unobserved' (absent = missing) "
            "or pass a mask."
        )
    if sparse and not has_mask and missing_values != "unobserved":
        raise ValueError(
            "A sparse X has no missing entries unless missing_values='unobserved' says "
            "that its absent entries are unknown; or pass a mask."
        )
    return missing_values


def observed_entries(X, mask=None, missing_values=None) -> Observed:
    """The :class:`Observed` set of X, from NaN / a sentinel, sparse storage, or a mask.

    Parameters
    ----------
    X : ndarray or sparse matrix (n_samples, n_features), validated float32/float64.
    mask : None, or array-like / sparse matrix of X's shape, boolean or non-negative weights.
        Entries with weight 0 are unobserved. Combined with ``missing_values``: an entry is
        observed when its weight is > 0 and it is not missing.
    missing_values : None, a number (np.nan included; the string "nan" means NaN) or
        "unobserved".
        A number v marks the dense entries equal to v (NaN: the NaN entries) as missing.
        "unobserved": X must be sparse; its stored entries are the observations.

    Returns
    -------
    Observed
    """
    dtype = X.dtype
    shape = X.shape
    missing_values = check_missing_values(missing_values, sp.issparse(X), mask is not None)
    if mask is None:
        if sp.issparse(X):
            Xc = sp.coo_matrix(X)
            Xc.sum_duplicates()
            check_no_nan(Xc.data, "stored entries")
            return Observed.from_coo(Xc.row, Xc.col, Xc.data, np.ones(Xc.nnz), shape, dtype)
        X = np.asarray(X)
        missing = np.isnan(X) if _is_nan(missing_values) else (X == missing_values)
        if not _is_nan(missing_values):
            check_no_nan(X[~missing], "observed entries")
        rows, cols = np.nonzero(~missing)
        return Observed.from_coo(rows, cols, X[rows, cols], np.ones(rows.shape[0]), shape, dtype)

    # an explicit mask or weight matrix
    if sp.issparse(mask):
        Mc = sp.coo_matrix(mask)
        Mc.sum_duplicates()
        r, c, w = Mc.row, Mc.col, np.asarray(Mc.data, dtype=np.float64)
    else:
        M = np.asarray(mask)
        if M.ndim != 2:
            raise ValueError(f"mask must be 2-D with X's shape {shape}, got ndim={M.ndim}.")
        r, c = np.nonzero(M)
        w = np.asarray(M[r, c], dtype=np.float64)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but X has shape {tuple(shape)}; pass a mask of "
            "X's shape (True/weight > 0 where observed)."
        )
    if w.size and (not np.isfinite(w).all() or w.min() < 0):
        bad = w[~np.isfinite(w) | (w < 0)][0]
        raise ValueError(
            f"mask must hold non-negative finite weights (or booleans); found {float(bad)!r}."
        )
    keep = w > 0
    r, c, w = r[keep], c[keep], w[keep]
    if sp.issparse(X):
        vals = np.asarray(sp.csr_matrix(X)[r, c], dtype=dtype).ravel()
    else:
        vals = np.asarray(X)[r, c]
    isnan = np.isnan(vals)
    if isnan.any():
        if _is_nan(missing_values):
            r, c, w, vals = r[~isnan], c[~isnan], w[~isnan], vals[~isnan]
        else:
            check_no_nan(vals, "entries the mask marks as observed")
    elif missing_values is not None and not _is_nan(missing_values) and not sp.issparse(X):
        keep = vals != missing_values
        r, c, w, vals = r[keep], c[keep], w[keep], vals[keep]
    return Observed.from_coo(r, c, vals, w, shape, dtype)


def check_observed(obs: Observed, who: str) -> None:
    """Refuse observed entries that NMF cannot fit: a negative observed value (named with its
    row and column) or no observed entry at all. ``who`` names the estimator."""
    if obs.nnz == 0:
        raise ValueError(
            "No observed entries: every entry of X is missing or has weight 0 in mask."
        )
    if float(obs.values.min()) < 0:
        q = int(obs.values.argmin())
        raise ValueError(
            f"Negative values in data passed to {who} (input X): the smallest "
            f"observed value is {float(obs.values[q])!r} at row {int(obs.rows[q])}, column "
            f"{int(obs.indices[q])}. NMF needs non-negative data: clip or shift it."
        )


def every_entry(X) -> Observed:
    """Every entry of a host X (dense or scipy.sparse) as an observed set: a masked solver run
    without a mask (NaN still marks a missing entry)."""
    return observed_entries(X.toarray() if sp.issparse(X) else np.asarray(X),
                            missing_values=np.nan)


def sampled_product(obs: Observed, W, H, block: int = 65536):
    """(WH) at the observed entries, in CSR order: O(nnz·k), never forms WH."""
    out = np.empty(obs.nnz, dtype=np.result_type(W.dtype, H.dtype))
    Ht = np.ascontiguousarray(H.T)
    for s in range(0, obs.nnz, block):
        e = min(s + block, obs.nnz)
        np.einsum("ij,ij->i", W[obs.rows[s:e]], Ht[obs.indices[s:e]], out=out[s:e])
    return out


def elementwise_divergence(x, y, beta: float, floor: float):
    """d_β(x, y) for arrays of observed values x and predictions y (float64)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.maximum(np.asarray(y, dtype=np.float64), floor)
    if beta == 2.0:
        return 0.5 * (x - y) ** 2
    if beta == 1.0:
        out = y - x
        pos = x > 0
        out[pos] += x[pos] * np.log(x[pos] / y[pos])
        return out
    if beta == 0.0:
        q = x / y
        return q - np.log(q) - 1.0
    return (x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)) / (beta * (beta - 1))


def weighted_divergence(obs: Observed, W, H, beta: float = 2.0) -> float:
    """Σ over observed entries of M_ij · d_β(X_ij, (WH)_ij), as a float (never NaN)."""
    y = sampled_product(obs, W, H)
    scale = float(np.abs(obs.values).mean()) if obs.nnz else 1.0
    floor = float(np.finfo(y.dtype).eps) * max(scale, float(np.finfo(y.dtype).tiny))
    if beta == 2.0:
        floor = -np.inf
    d = elementwise_divergence(obs.values, y, beta, floor)
    res = float(np.dot(obs.weights.astype(np.float64), d))
    return res if math.isfinite(res) else float(np.finfo(np.float64).max)
