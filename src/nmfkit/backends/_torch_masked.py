"""Masks and missing values on the torch backend: the observed entries held on the device.

Two ways in, as for the plain fit (see ``_torch_io``):

* a torch tensor X (dense with NaN or a sentinel at the missing entries, or sparse CSR with
  ``missing_values="unobserved"``), optionally with a mask (tensor, numpy or scipy.sparse):
  validated and reduced to its observed entries with torch operations on X's device;
* ``backend="torch"`` with numpy / scipy input: the observed set is built on the host by
  :func:`nmfkit.masked.observed_entries` (every rule of the numpy path) and moved once.

Either way the fit reads a :class:`TorchObserved`: the row, column, value and weight of each
observed entry in CSR order, as tensors on one device. Only O(nnz) values are held, never an
n_samples × n_features array beyond a dense X itself.

This module sits in the backend layer: the rules of the data layer that it applies (the host
validation of X, the host observed set, the NaN refusal) are passed in by the masked fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._torch_csr import csr as _csr
from ._torch_csr import quiet_sparse as _quiet_sparse
from ._torch_csr import to_torch_dtype
from ._torch_io import check_memory

__all__ = ["TorchObserved", "masked_bytes_needed", "observed_from_host", "observed_from_tensor",
           "prepare_masked", "weighted_divergence"]


@dataclass
class TorchObserved:
    """The observed entries of an (n_samples, n_features) matrix on a torch device (CSR order).

    Attributes
    ----------
    shape : (n_samples, n_features)
    indptr : tensor (n_samples + 1,), int64 row pointers.
    indices, rows : tensors (nnz,), int64: column and row of each observation.
    values, weights : tensors (nnz,), X and M (> 0) at the observations, in X's dtype.
    """

    shape: tuple
    indptr: torch.Tensor
    indices: torch.Tensor
    rows: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    def csr(self, data=None):
        """A torch sparse CSR tensor with this structure and ``data`` (default: the values)."""
        return _csr(self.indptr, self.indices, self.values if data is None else data,
                    tuple(self.shape))

    def host_coo(self):
        """(rows, cols, values, weights) as numpy arrays on the host, CSR order."""
        f = lambda a: a.detach().cpu().numpy()
        return f(self.rows), f(self.indices), f(self.values), f(self.weights)

    @classmethod
    def from_coords(cls, rows, cols, values, weights, shape) -> TorchObserved:
        """From row-major (CSR-ordered) coordinates on one device."""
        counts = torch.bincount(rows, minlength=shape[0])
        indptr = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return cls(tuple(shape), indptr, cols.to(torch.int64), rows.to(torch.int64),
                   values, weights.to(values.dtype))


def observed_from_host(obs, device, dtype=None) -> TorchObserved:
    """Move a numpy :class:`nmfkit.masked.Observed` to ``device`` (once)."""
    dt = to_torch_dtype(dtype or obs.values.dtype)
    t = lambda a, d: torch.as_tensor(np.asarray(a), dtype=d, device=device)
    return TorchObserved(tuple(obs.shape), t(obs.indptr, torch.int64),
                         t(obs.indices, torch.int64), t(obs.rows, torch.int64),
                         t(obs.values, dt), t(obs.weights, dt))


def _is_nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _shape_error(mshape, shape) -> ValueError:
    return ValueError(
        f"mask has shape {tuple(mshape)} but X has shape {tuple(shape)}; pass a mask of "
        "X's shape (True/weight > 0 where observed)."
    )


def _check_weights(w) -> None:
    bad = ~torch.isfinite(w) | (w < 0)
    if bool(bad.any()):
        raise ValueError("mask must hold non-negative finite weights (or booleans); found "
                         f"{float(w[bad][0])!r}.")


def _mask_tensor(mask, shape, device):
    """A dense float64 weight tensor of X's shape from a tensor, numpy or scipy mask."""
    import scipy.sparse as sp

    if isinstance(mask, torch.Tensor):
        if mask.layout != torch.strided:
            with _quiet_sparse():
                mask = mask.to_dense()
        M = mask.detach().to(device=device, dtype=torch.float64)
    elif sp.issparse(mask):
        M = torch.as_tensor(mask.toarray(), dtype=torch.float64, device=device)
    else:
        M = torch.as_tensor(np.asarray(mask, dtype=np.float64), device=device)
    if M.dim() != 2 or tuple(M.shape) != tuple(shape):
        raise _shape_error(M.shape, shape)
    _check_weights(M)
    return M


def _mask_coords(mask, shape, device):
    """(rows, cols, weights) of the positive entries of a mask, row-major, on ``device``;
    a sparse mask (torch or scipy) is read without densifying it."""
    import scipy.sparse as sp

    if sp.issparse(mask) or (isinstance(mask, torch.Tensor) and mask.layout != torch.strided):
        if tuple(mask.shape) != tuple(shape):
            raise _shape_error(mask.shape, shape)
        if sp.issparse(mask):
            C = sp.coo_matrix(mask)
            C.sum_duplicates()
            r = torch.as_tensor(C.row, dtype=torch.int64)
            c = torch.as_tensor(C.col, dtype=torch.int64)
            w = torch.as_tensor(C.data, dtype=torch.float64)
        else:
            with _quiet_sparse():
                C = mask.detach().to_sparse_coo().coalesce()
            (r, c), w = C.indices(), C.values().to(torch.float64)
        r, c, w = r.to(device), c.to(device), w.to(device)
        _check_weights(w)
        keep = w > 0
        return r[keep], c[keep], w[keep]
    M = _mask_tensor(mask, shape, device)
    r, c = torch.nonzero(M > 0, as_tuple=True)
    return r, c, M[r, c]


def _sparse_with_mask(X, mask, shape, check):
    """Observed set of a sparse CSR/COO torch X under a mask: the mask's positive entries,
    with X's stored value there and 0 where X stores nothing (as scipy's X[r, c])."""
    with _quiet_sparse():
        C = X.to_sparse_coo().coalesce()
    (xr, xc), xv = C.indices(), C.values()
    r, c, w = _mask_coords(mask, shape, xv.device)
    m = shape[1]
    vals = torch.zeros(r.shape[0], dtype=xv.dtype, device=xv.device)
    if xv.numel():
        key_x = xr * m + xc  # sorted: coalesced COO is row-major
        key_m = r * m + c
        pos = torch.searchsorted(key_x, key_m).clamp_(max=xv.numel() - 1)
        found = key_x[pos] == key_m
        vals = torch.where(found, xv[pos], vals)
    if bool(torch.isnan(vals).any()):
        check(np.array([np.nan]), "entries the mask marks as observed")
    return TorchObserved.from_coords(r, c, vals, w, shape)


def observed_from_tensor(X, check_no_nan, check_missing, mask=None,
                         missing_values=None) -> TorchObserved:
    """The observed entries of a validated 2-D torch X (float32/float64), on X's device.

    The rules of :func:`nmfkit.masked.observed_entries`: NaN or a sentinel marks missing
    dense entries; ``"unobserved"``: the stored entries of a sparse X are the observations;
    a mask gives weights (0: unobserved; with a sparse X, X's absent entries under the mask
    are observed zeros). The data layer's rules come in as functions:
    ``check_no_nan(values, where)`` refuses NaN at observed entries,
    ``check_missing(missing_values, sparse, has_mask)`` refuses a ``missing_values`` that says
    nothing with X's storage and returns it as read ("nan" is NaN).
    """
    shape = tuple(X.shape)
    sparse = X.layout != torch.strided
    missing_values = check_missing(missing_values, sparse, mask is not None)
    if sparse:
        if mask is not None:
            return _sparse_with_mask(X, mask, shape, check_no_nan)
        with _quiet_sparse():
            X = X.to_sparse_coo().coalesce()
        rows, cols = X.indices()
        vals = X.values()
        if bool(torch.isnan(vals).any()):
            check_no_nan(np.array([np.nan]), "stored entries")
        return TorchObserved.from_coords(rows, cols, vals, torch.ones_like(vals), shape)
    if missing_values is None:
        missing = None
    elif _is_nan(missing_values):
        missing = torch.isnan(X)
    else:
        missing = X == missing_values
    keep = ~missing if missing is not None else torch.ones(shape, dtype=torch.bool,
                                                            device=X.device)
    M = None
    if mask is not None:
        M = _mask_tensor(mask, shape, X.device)
        keep &= M > 0
    rows, cols = torch.nonzero(keep, as_tuple=True)  # row-major: CSR order
    vals = X[rows, cols]
    if bool(torch.isnan(vals).any()):
        where = ("entries the mask marks as observed" if mask is not None
                 else "observed entries")
        check_no_nan(np.array([np.nan]), where)
    weights = M[rows, cols] if M is not None else torch.ones_like(vals)
    return TorchObserved.from_coords(rows, cols, vals, weights, shape)


# ------------------------------------------------------------------ the estimator's entry
def prepare_masked(est, nx, X, mask, *, reset: bool, validate_host, host_observed, check_no_nan,
                   check_missing):
    """Validate X for a masked fit on torch and gather its observed entries on the device.

    The data layer's rules come in as functions: ``validate_host(est, X, reset)`` validates
    numpy/scipy X, ``host_observed(X, mask, missing_values)`` builds its observed set,
    ``check_no_nan(values, where)`` refuses NaN at observed entries, ``check_missing`` the
    ``missing_values`` that say nothing (see :func:`observed_from_tensor`).

    Returns (X, obs, nx, host_input): X validated (a tensor, or the host array for numpy
    input), the :class:`TorchObserved` set, the backend bound to the fit's device (with TF32
    as ``solver_options["allow_tf32"]`` says) and whether W and H go back to numpy.
    """
    from ._torch_io import validate_tensor

    tf32 = bool((est.solver_options or {}).get("allow_tf32", False))
    if isinstance(X, torch.Tensor):
        whom = type(est).__name__
        X = X.detach()
        vals = X.values() if (X.dim() == 2 and X.layout != torch.strided) else X
        if vals.is_floating_point() and vals.numel() and bool(torch.isinf(vals).any()):
            raise ValueError(
                f"Input X passed to {whom} contains infinity. Remove or clip it; NaN marks a "
                "missing entry with missing_values=np.nan."
            )
        # validate_tensor rejects NaN and negative sentinels: its shape / dtype / feature
        # checks on a 1-row probe, the values' checks on the observed entries below
        probe = X
        if X.dim() == 2 and X.layout == torch.strided:
            probe = torch.zeros((min(X.shape[0], 1), X.shape[1]), dtype=X.dtype,
                                device=X.device)
        checked = validate_tensor(est, probe, reset=reset)
        if probe is not X:
            checked = X.to(checked.dtype)
        device = nx.device or checked.device
        n, m = checked.shape
        sparse = checked.layout != torch.strided
        bound = n * m  # observed entries, at most (a dense X or a dense mask)
        if sparse and mask is None:
            bound = checked.values().numel()
        elif sparse and getattr(mask, "layout", torch.strided) != torch.strided:
            bound = mask.values().numel()
        elif sparse and hasattr(mask, "nnz"):
            bound = mask.nnz
        item = checked.element_size()
        moved = 0 if torch.device(device) == checked.device else (
            checked.values().numel() * (item + 8) if sparse else n * m * item)
        check_memory(device, moved + masked_bytes_needed((n, m), bound, est.n_components, item))
        obs = observed_from_tensor(checked.to(device), check_no_nan, check_missing, mask=mask,
                                   missing_values=est.missing_values)
        return checked, obs, type(nx)(device=device, allow_tf32=tf32), False
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu()
        mask = (mask.to_dense() if mask.layout != torch.strided else mask).numpy()
    X = validate_host(est, X, reset=reset)
    device = nx.device or torch.device("cpu")
    host = host_observed(X, mask=mask, missing_values=est.missing_values)
    check_memory(device, masked_bytes_needed(host.shape, host.nnz, est.n_components,
                                             host.values.dtype.itemsize))
    obs = observed_from_host(host, device)
    return X, obs, type(nx)(device=device, allow_tf32=tf32), True


def masked_bytes_needed(shape, nnz: int, k, itemsize: int) -> int:
    """Device bytes of a masked MU fit: the observed set (row, column, row pointers, value,
    weight), Xᵀ's structure for the products, ~6 per-observation temporaries (quotients,
    sampled product) and the O((n_samples + n_features)·k) factors and products."""
    n, m = shape
    k = k if isinstance(k, int) else min(n, m)
    per_obs = 3 * 8 + 2 * itemsize + 2 * 8 + 6 * itemsize
    return int(nnz * per_obs + (n + m + 2) * 16 + 8 * (n + m) * k * itemsize)


def weighted_divergence(nx, obs, W, H, beta: float = 2.0) -> float:
    """Σ over the observed entries of M_ij · d_β(X_ij, (WH)_ij) on the device: the formulas
    of :func:`nmfkit.masked.weighted_divergence` in float64 (the same floor on WH), one
    scalar read back; never NaN or inf."""
    y = nx.sampled_dot_sddmm(W, H, obs.csr())
    x = obs.values.double()
    scale = float(x.abs().mean()) if obs.nnz else 1.0
    fi = torch.finfo(y.dtype)
    y = y.double()
    if beta != 2.0:
        y = y.clamp(min=fi.eps * max(scale, fi.tiny))
    if beta == 2.0:
        d = 0.5 * (x - y) ** 2
    elif beta == 1.0:
        pos = x > 0
        d = y - x + torch.where(pos, x * torch.log(torch.where(pos, x, y) / y),
                                torch.zeros_like(x))
    elif beta == 0.0:
        q = x / y
        d = q - torch.log(q) - 1.0
    else:
        d = (x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)) / (beta * (beta - 1))
    res = float(torch.dot(obs.weights.double(), d))
    return res if math.isfinite(res) else float(np.finfo(np.float64).max)
