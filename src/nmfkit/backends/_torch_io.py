"""The torch backend's side of a fit: validate tensors on their device, check device memory,
place X, draw starts on the device. The fit itself is nmfkit._engine's, as on numpy.

Two ways in:

* a torch tensor X (dense, or sparse COO/CSR/CSC): validated with torch operations on its own
  device (never ``numpy`` on a CUDA tensor), fitted there; W and H come back as tensors on
  that device, in X's dtype (float32 stays float32; integer or half input becomes float32).
* ``backend="torch"`` with numpy / scipy input: validated on the host as usual, moved to
  ``device`` once, fitted there; W and H come back as numpy arrays (for scikit-learn users).

Before X is moved, the bytes the fit needs on the device are estimated and compared with the
free memory (``torch.cuda.mem_get_info``); a fit that cannot fit raises ``MemoryError`` with
the size, instead of an out-of-memory crash half way. Only ``backends/_torch*`` modules
import torch.
"""

from __future__ import annotations


import numpy as np
import torch

from ._torch_csr import quiet_sparse as _quiet_sparse

__all__ = ["validate_tensor", "check_tensor", "place", "bytes_needed", "check_memory"]


def validate_tensor(est, X, *, reset: bool):
    """The torch counterpart of ``validate_data`` for a tensor X; sets ``n_features_in_``."""
    whom = type(est).__name__
    X = check_tensor(X, whom)
    if reset:
        est.n_features_in_ = X.shape[1]
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {whom} is expecting {est.n_features_in_} "
            "features as input."
        )
    return X


def check_tensor(X, whom: str):
    """A tensor X checked on its own device, as ``check_array`` checks numpy input: 2-D, at
    least one sample and one feature, float32 or float64 (other dtypes become float32), finite,
    non-negative; a sparse X as CSR. ``whom`` names the caller in the messages."""
    X = X.detach()  # a tensor that requires grad is fitted as data, never differentiated
    if X.dim() != 2:
        raise ValueError(
            f"Expected a 2D tensor, got a {X.dim()}D tensor of shape {tuple(X.shape)} passed "
            f"to {whom}. Reshape it to (n_samples, n_features)."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            f"Found array with shape {tuple(X.shape)} while a minimum of 1 sample and 1 "
            f"feature is required by {whom}."
        )
    if X.layout != torch.strided:
        with _quiet_sparse():
            if X.layout != torch.sparse_csr:
                X = X.to_sparse_coo().coalesce().to_sparse_csr()
    if X.dtype not in (torch.float32, torch.float64):
        X = X.to(torch.float32)  # float32 is the default on torch
    values = X.values() if X.layout != torch.strided else X
    if values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(
            f"Input X passed to {whom} contains NaN or infinity. Remove or impute them, or use"
            " missing_values=np.nan with a numpy X."
        )
    if values.numel():
        low = float(values.min())
        if low < 0:
            raise ValueError(
                f"Negative values in data passed to {whom} (input X): the smallest is {low!r}."
                " NMF needs non-negative data: clip (X.clamp(min=0)) or shift it."
            )
    return X


# ------------------------------------------------------------------------------- memory
def bytes_needed(shape, nnz, k: int, itemsize: int, *, dense_WH: bool, on_device: bool,
                 kl_cd: bool = False) -> int:
    """Device bytes a fit needs: X (and its CSR transpose) unless already there, plus the
    O((n_samples + n_features)·k) working set, plus WH temporaries for dense β ≠ 2 MU, plus
    (``kl_cd``) KL coordinate descent's per-non-zero state (backends/_torch_kl.py)."""
    n, m = shape
    if nnz is None:
        x = n * m * itemsize
    else:
        x = 2 * (nnz * (itemsize + 8) + (max(n, m) + 1) * 8)  # X and Xᵀ in CSR
    total = 0 if on_device else x
    total += 8 * (n + m) * k * itemsize + 4 * k * k * itemsize
    if nnz is not None:
        total += 3 * nnz * itemsize + min(nnz, 1 << 22) * itemsize  # sampled products
    elif dense_WH:
        total += 2 * n * m * itemsize
    if kl_cd:  # X's positives both ways (row, col, value, float64 value) + ~8 float64 temporaries
        total += (nnz if nnz is not None else n * m) * (2 * (24 + itemsize) + 64)
    return int(total)


def check_memory(device, needed: int) -> None:
    """Raise MemoryError naming the bytes needed when a CUDA device has fewer free."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return
    free, total = torch.cuda.mem_get_info(device)
    if needed > free:
        raise MemoryError(
            f"This NMF fit needs about {needed / 2**30:.2f} GiB on {device} but only "
            f"{free / 2**30:.2f} GiB of {total / 2**30:.2f} GiB are free. Use float32, a "
            "sparse X, a smaller n_components, solver='cd' (no WH temporaries), or the CPU."
        )


# ------------------------------------------------------------------------------- placement
def place(nx, X, *, k_total: int, dense_WH: bool, kl_cd: bool, extra_bytes: int = 0):
    """X on the fit's device: (tensor, whether X came from the host, the backend (a
    ``TorchBackend``) bound to that device). The device's free memory is checked for the whole
    fit (``k_total``: the rank times the number of restarts held at once; ``extra_bytes``: the
    caller's own temporaries, e.g. one mini-batch's) before X moves."""
    host_input = not isinstance(X, torch.Tensor)
    if host_input:
        device = nx.device or torch.device("cpu")
        nnz = X.nnz if hasattr(X, "nnz") else None
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    else:
        device = nx.device or X.device
        nnz = X.values().numel() if nx.issparse(X) else None
        dtype = X.dtype
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():  # "cuda" is the current CUDA device
        device = torch.device("cuda", torch.cuda.current_device())
    itemsize = torch.empty((), dtype=dtype).element_size()
    on_device = not host_input and X.device == device
    check_memory(device, int(extra_bytes) + bytes_needed(
        tuple(X.shape), nnz, int(k_total), itemsize, dense_WH=dense_WH, on_device=on_device,
        kl_cd=kl_cd))
    bound = type(nx)(device=device, allow_tf32=nx.allow_tf32)
    return (X if on_device else bound.asarray(X, dtype=dtype)), host_input, bound
