"""``MiniBatchNMF``'s backend seam: where the online fit runs (numpy, or torch on a device).

The per-batch arithmetic (``minibatch``, ``_minibatch_steps``) is written once on the backend
namespace ``nx``; this module holds what differs between the two ways in, as
``nmfkit.NMF`` does (see :mod:`nmfkit.backends._torch_io`):

* a torch tensor X (dense, or sparse COO/CSR/CSC), on the CPU or a CUDA device: validated
  with torch operations on its device, fitted there; ``components_`` and ``transform``'s
  output are tensors on that device in X's dtype (integer input becomes float32);
* ``backend="torch", device=...`` with numpy / scipy input: validated on the host as usual,
  each call moves X to the device once, and the results come back as numpy arrays. The
  forgetful sums of ``partial_fit`` stay on the device between calls.

On the CPU the torch fit starts from exactly numpy's initial factors (same ``random_state``),
so both backends follow the same trajectory to rounding. What the torch path cannot run
(``solver="anls"``, masks / missing values, a ``Graph`` penalty) is refused with an error
that names the alternative. Only :mod:`nmfkit.backends` imports torch; this module reaches it
through there.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
from scipy import linalg

from .backends import _is_torch_tensor, get_backend

__all__ = [
    "check_torch_options",
    "check_zeros",
    "compute_context",
    "init_torch",
    "on_backend",
    "rel_change",
    "resolve_backend",
    "row_index",
    "take_rows",
    "to_caller",
    "to_device",
]


def resolve_backend(est, X):
    """The backend of a public call: from X, or ``backend=`` / ``device=`` (torch: a backend
    bound to one device — X's own for a tensor when ``device`` is None, else the CPU)."""
    nx = get_backend(X, backend=getattr(est, "backend", None), device=getattr(est, "device", None))
    if nx.name == "torch" and nx.device is None:
        import torch

        dev = X.device if isinstance(X, torch.Tensor) else torch.device("cpu")
        nx = type(nx)(device=dev)
    return nx


def check_torch_options(est, masked: bool) -> None:
    """Refuse, naming the alternative, what the torch path of MiniBatchNMF cannot run."""
    from .penalties import Graph

    if est.solver == "anls":
        raise ValueError(
            "MiniBatchNMF(solver='anls') runs on the numpy backend only (its block principal "
            "pivoting NNLS is a host kernel). On torch use solver='cd' (online HALS, Frobenius) "
            "or solver='mu' (any beta_loss); or pass numpy arrays (X.cpu().numpy())."
        )
    if masked:
        raise ValueError(
            "MiniBatchNMF with a mask or missing_values runs on the numpy backend only. Pass "
            "numpy arrays (X.cpu().numpy(), and the mask as numpy), or use nmfkit.NMF with "
            "missing_values on numpy."
        )
    if any(isinstance(p, Graph) for p in (est.penalties or [])):
        raise ValueError(
            "MiniBatchNMF(penalties=[Graph(...)]) runs on the numpy backend only; on torch the "
            "penalties L1 and L2 (and alpha_W / alpha_H) are supported. Pass numpy arrays for a "
            "graph penalty."
        )


def check_zeros(nx, X, beta: float) -> None:
    """scikit-learn's refusal of zeros in X for β ≤ 0, on either backend."""
    if nx.name == "numpy":
        from ._validation import check_zeros_for_beta

        return check_zeros_for_beta(X, beta)
    if beta > 0:
        return None
    if nx.issparse(X):
        vals = X.values()
        has_zero = vals.numel() < X.shape[0] * X.shape[1] or bool((vals == 0).any())
    else:
        has_zero = bool((X == 0).any())
    if has_zero:
        raise ValueError(
            "When beta_loss <= 0 and X contains zeros, the solver may diverge. "
            "Please add small values to X, or use a positive beta_loss."
        )
    return None


def to_device(nx, X, est=None, batch_rows: int | None = None):
    """X on the backend's device (unchanged for numpy, or a tensor already there). On a CUDA
    device the bytes the online fit needs (X, the factors and one batch's temporaries) are
    checked against the free memory first."""
    if nx.name == "numpy":
        return X
    import torch

    from .backends._torch_io import bytes_needed, check_memory

    dev = nx.device
    if isinstance(X, torch.Tensor) and X.device == dev:
        return X
    if est is not None:
        dtype = X.dtype if isinstance(X, torch.Tensor) else np.dtype(X.dtype)
        itemsize = torch.empty((), dtype=dtype).element_size() if isinstance(
            dtype, torch.dtype) else dtype.itemsize
        nnz = (X.values().numel() if nx.issparse(X) else None) if isinstance(
            X, torch.Tensor) else getattr(X, "nnz", None)
        k = est.n_components if isinstance(est.n_components, int) else X.shape[1]
        need = bytes_needed(tuple(X.shape), nnz, int(k), itemsize, dense_WH=False,
                            on_device=False)
        need += 3 * (batch_rows or X.shape[0]) * X.shape[1] * itemsize  # one batch's WH
        check_memory(dev, need)
    return nx.asarray(X)


def to_caller(nx, A, host_input: bool):
    """A result in the caller's framework: numpy for numpy input, else as computed."""
    return nx.to_numpy(A) if host_input and nx.name != "numpy" else A


def on_backend(nx, A, like=None):
    """A small array (H, the forgetful sums) on this backend; tensors follow ``like``'s dtype
    and device. A numpy array stays as it is on numpy (no cast: the numpy path as before)."""
    if A is None:
        return None
    if nx.name == "numpy":
        return nx.to_numpy(A) if _is_torch_tensor(A) else A
    import torch

    dtype = like.dtype if isinstance(like, torch.Tensor) else None
    if isinstance(A, torch.Tensor):
        return A.to(device=nx.device, dtype=dtype or A.dtype)
    return nx.asarray(np.ascontiguousarray(A), dtype=dtype)


def rel_change(nx, A, B) -> tuple[float, float]:
    """(‖A‖_F, ‖A − B‖_F) as floats; on torch both in one host read."""
    if nx.name == "numpy":
        return linalg.norm(A), linalg.norm(A - B)
    import torch

    both = torch.stack([torch.linalg.vector_norm(A), torch.linalg.vector_norm(A - B)])
    a, d = both.tolist()
    return a, d


def row_index(nx, X):
    """What :func:`take_rows` needs to slice X by rows without a device read per batch: the
    row pointer of a sparse torch X on the host (one copy of n + 1 integers per fit)."""
    if nx.name == "torch" and nx.issparse(X):
        return X.crow_indices().cpu()
    return None


def take_rows(nx, X, sl: slice, index=None):
    """Rows ``sl`` of X (a copy for a sparse X, as scipy's CSR slicing; a view when dense)."""
    if index is None:
        return X[sl]
    from .backends._torch import _csr

    s, e = sl.start, sl.stop
    a, b = int(index[s]), int(index[e])
    crow = X.crow_indices()[s : e + 1] - a
    return _csr(crow, X.col_indices()[a:b], X.values()[a:b], (e - s, X.shape[1]))


def init_torch(est, nx, X, W, H):
    """Initial (W, H) on X's device in X's dtype: from ``init`` as ``NMF`` on torch does
    (exactly numpy's factors on the CPU), or the given ones with ``init="custom"``."""
    from .backends._torch_io import _factor_on, init_factors

    whom = type(est).__name__
    n, m = X.shape
    if est.init == "custom":
        Hd = _factor_on(nx, H, (est._n_components, m), X.dtype, nx.device, f"{whom} (input H)")
        if est._n_components == "auto":
            est._n_components = Hd.shape[0]
        Wd = _factor_on(nx, W, (n, est._n_components), X.dtype, nx.device, f"{whom} (input W)")
        return Wd, Hd
    if W is not None or H is not None:
        warnings.warn(
            "When init!='custom', provided W or H are ignored. Set  init='custom' to use"
            " them as initialization.",
            RuntimeWarning,
        )
    if est._n_components == "auto":
        est._n_components = m
    return init_factors(nx, X, est._n_components, est.init, est.random_state)


def apply_frozen_torch(F, H) -> tuple:
    """``_extensions.apply_frozen`` for a tensor H (F checked on the host, then moved)."""
    from ._extensions import check_frozen

    F = check_frozen(F, H)
    H[: F.shape[0]] = H.new_tensor(np.asarray(F, dtype=np.float64))
    return tuple(range(F.shape[0]))


def mean_value(nx, X) -> float:
    """mean(X) over every entry (zeros included) as a float: one host read on torch."""
    n = X.shape[0] * X.shape[1]
    if not n:
        return 0.0
    if nx.name == "numpy":
        return float(X.sum()) / n
    if nx.issparse(X):
        return nx.sum(X) / n
    import torch

    return float(X.sum(dtype=torch.float64)) / n


def compute_context(nx):
    """The backend's compute context (torch: no autograd, TF32 off) or a no-op."""
    ctx = getattr(nx, "compute_context", None)
    return ctx() if ctx is not None else contextlib.nullcontext()


def sqrt_mean_over_k(nx, X, k: int) -> float:
    """√(mean(X)/k), the constant start of MU's W-solve (scikit-learn's)."""
    return math.sqrt(mean_value(nx, X) / k)
