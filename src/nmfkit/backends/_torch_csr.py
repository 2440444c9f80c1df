"""Torch's dtypes and sparse CSR tensors as the torch backend builds them: the numpy → torch
dtype map, CSR construction without invariant checks, and silencing torch's "sparse CSR is in
beta" warning for our own calls. The lowest torch module: every other ``_torch*`` module may
import it, it imports none of them.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

__all__ = ["to_torch_dtype", "quiet_sparse", "csr"]

_NP_TO_TORCH = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
}


def to_torch_dtype(dtype):
    """A torch dtype for a numpy dtype, a torch dtype or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return _NP_TO_TORCH[np.dtype(dtype)]


@contextlib.contextmanager
def quiet_sparse():
    """Silence torch's 'sparse CSR support is in beta state' warning for our own calls."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        yield


def csr(crow, col, values, size):
    """A sparse CSR tensor from its parts (no invariant checks: the parts are ours)."""
    with quiet_sparse():
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
