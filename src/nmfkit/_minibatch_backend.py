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
(``solver="anls"`` with frozen components, masks / missing values, a ``Graph`` penalty)
is refused with an error
that names the alternative. Only :mod:`nmfkit.backends` imports torch; this module reaches it
through there.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
from scipy import linalg

from .backends import _is_torch_tensor, get_backend

__all__ = [
    "batch_cost",
    "check_torch_options",
    "check_zeros",
    "compute_context",
    "constant_start",
    "init_torch",
    "on_backend",
    "read_rule",
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

    if est.solver == "anls" and est.frozen_components is not None:
        raise ValueError(
            "MiniBatchNMF(solver='anls') with frozen_components runs on the numpy backend "
            "only. On torch use solver='cd' (online HALS, which keeps frozen rows) or "
            "solver='mu'; or pass numpy arrays (X.cpu().numpy())."
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
    if dev.type == "cuda" and dev.index is None:  # "cuda" is the current CUDA device
        dev = torch.device("cuda", torch.cuda.current_device())
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
        return X.crow_indices().cpu().numpy()
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
    from .backends._torch_io import _factor_on
    from .init import initial_factors, rank_without_custom_start

    whom = type(est).__name__
    n, m = X.shape
    if est.init == "custom":
        Hd = _factor_on(nx, H, (est._n_components, m), X.dtype, nx.device, f"{whom} (input H)")
        if est._n_components == "auto":
            est._n_components = Hd.shape[0]
        Wd = _factor_on(nx, W, (n, est._n_components), X.dtype, nx.device, f"{whom} (input W)")
        return Wd, Hd
    k = rank_without_custom_start(est, W, H, m)
    return initial_factors(nx, X, k, est.init, est.random_state)


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


def constant_start(nx, X, k: int):
    """W (n_rows, k) filled with √(mean(X)/k), the start of MU's W-solve (scikit-learn's);
    on torch computed on the device, without a host read."""
    if nx.name == "numpy":
        return np.full((X.shape[0], k), math.sqrt(mean_value(nx, X) / k), dtype=X.dtype)
    import torch

    n = X.shape[0] * X.shape[1]
    data = X.values() if nx.issparse(X) else X
    total = data.sum(dtype=torch.float64) if n else torch.zeros(
        (), dtype=torch.float64, device=data.device)
    value = torch.sqrt(total / max(n, 1) / k).to(device=data.device, dtype=data.dtype)
    return value.expand(X.shape[0], k).clone()


# ------------------------------------------------------------------ the batch objective
def batch_cost(nx, X, W, H, beta: float, penalties: list):
    """D_β(X_b | W_b H) + the penalties, divided by the batch's rows: a float on numpy; on
    torch a float64 device scalar, so that the stopping rule reads it together with H's
    change in one host transfer (:func:`read_rule`)."""
    from .losses import beta_divergence

    if nx.name == "numpy":
        pen = sum(p.value(W.T if p.factor == "W" else H) for p in penalties)
        return (beta_divergence(X, W, H, beta, nx=nx) + pen) / X.shape[0]
    from .penalties import L1, L2

    total = _divergence_tensor(nx, X, W, H, beta)
    for p in penalties:
        F = (W.T if p.factor == "W" else H).double()
        if type(p) is L1:
            total = total + p.weight * F.sum()
        elif type(p) is L2:
            total = total + 0.5 * p.weight * (F * F).sum()
        else:  # pragma: no cover - other penalties are refused on torch
            total = total + p.value(F)
    return total / X.shape[0]


def _divergence_tensor(nx, X, W, H, beta: float):
    """D_β(X | WH) as a float64 device scalar: the formulas and floors of
    ``backends._torch_loss.beta_divergence_torch`` (which reads its scalars back one by one),
    with none read back here."""
    import torch

    from .backends._torch_loss import _row_blocks, _terms

    n, m = X.shape
    sparse = nx.issparse(X)
    W64, H64 = W.double(), H.double()
    if beta == 2.0:
        if sparse:
            v = X.values().double()
            cross = torch.sum(nx.matmul(X, H.T).double() * W64)
            gram = torch.sum((W64.T @ W64) * (H64 @ H64.T))
            return torch.clamp(0.5 * (torch.dot(v, v) - 2.0 * cross + gram), min=0.0)
        total = torch.zeros((), dtype=torch.float64, device=W.device)
        for rows in _row_blocks(n, m):
            R = X[rows].double() - W64[rows] @ H64
            total += torch.sum(R * R)
        return 0.5 * total
    data = X.values() if sparse else X
    fi = torch.finfo(W.dtype)
    scale = data.abs().double().mean() if data.numel() else torch.ones(
        (), dtype=torch.float64, device=W.device)
    floor = torch.clamp(scale, min=fi.tiny) * fi.eps
    pow_scale = (beta - 1) / (beta * (beta - 1)) if beta not in (0.0, 1.0) else 0.0
    if sparse:
        res = _terms(X.values(), nx.sampled_dot(W64, H64, X), beta, floor)
        if beta == 1.0:
            res = res + torch.dot(W64.sum(dim=0), H64.sum(dim=1))
        elif beta == 0.0:
            res = res - n * m
        else:
            for rows in _row_blocks(n, m):
                WH = W64[rows] @ H64
                if beta < 0:
                    WH = torch.maximum(WH, floor)
                res = res + torch.sum(WH**beta) * pow_scale
    else:
        res = torch.zeros((), dtype=torch.float64, device=W.device)
        for rows in _row_blocks(n, m):
            WH = W64[rows] @ H64
            Xb = X[rows]
            res = res + _terms(Xb.reshape(-1), WH.reshape(-1), beta, floor)
            if beta == 1.0:
                res = res + WH.sum()
            elif beta == 0.0:
                res = res - Xb.numel()
            else:
                WH = torch.maximum(WH, floor) if beta < 0 else WH.clamp_(min=0.0)
                res = res + torch.sum(WH**beta) * pow_scale
    big = torch.finfo(torch.float64).max
    return torch.where(torch.isfinite(res), res, torch.full_like(res, big))


def read_rule(nx, cost, H, H_buffer, need_change: bool):
    """(cost, ‖H‖, ‖H − H_prev‖) as floats for the stopping rule — the last two only when
    ``need_change`` (else 0.0). On torch: one host read for all of them."""
    if nx.name == "numpy":
        norm, diff = rel_change(nx, H, H_buffer) if need_change else (0.0, 0.0)
        return cost, norm, diff
    import torch

    on_device = isinstance(cost, torch.Tensor)
    parts = [cost] if on_device else []
    if need_change:
        parts += [torch.linalg.vector_norm(H), torch.linalg.vector_norm(H - H_buffer)]
    vals = torch.stack([q.to(torch.float64) for q in parts]).tolist() if parts else []
    if not on_device:
        vals.insert(0, float(cost))
    return vals[0], (vals[1] if need_change else 0.0), (vals[2] if need_change else 0.0)
