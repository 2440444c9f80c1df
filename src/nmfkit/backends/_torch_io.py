"""The estimator's torch path: validate tensors on their device, initialise, move, fit, return.

Two ways in (issue 7):

* a torch tensor X (dense, or sparse COO/CSR/CSC): validated with torch operations on its own
  device (never ``numpy`` on a CUDA tensor), fitted there; W and H come back as tensors on
  that device, in X's dtype (float32 stays float32; integer or half input becomes float32).
* ``backend="torch"`` with numpy / scipy input: validated on the host as usual, moved to
  ``device`` once, fitted there; W and H come back as numpy arrays (for scikit-learn users).

Before X is moved, the bytes the fit needs on the device are estimated and compared with the
free memory (``torch.cuda.mem_get_info``); a fit that cannot fit raises ``MemoryError`` with
the size, instead of an out-of-memory crash half way. Only this module and ``_torch`` import
torch.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..init import rank_without_custom_start
from ._torch import TorchBackend, _quiet_sparse

__all__ = ["validate_tensor", "fit_torch", "init_factors", "bytes_needed", "check_memory"]


def validate_tensor(est, X, *, reset: bool):
    """The torch counterpart of ``validate_data`` for a tensor X; sets ``n_features_in_``."""
    whom = type(est).__name__
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
    if reset:
        est.n_features_in_ = X.shape[1]
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {whom} is expecting {est.n_features_in_} "
            "features as input."
        )
    return X


# ------------------------------------------------------------------------------- memory
def bytes_needed(shape, nnz, k: int, itemsize: int, *, dense_WH: bool, on_device: bool,
                 kl_cd: bool = False) -> int:
    """Device bytes a fit needs: X (and its CSR transpose) unless already there, plus the
    O((n_samples + n_features)·k) working set, plus WH temporaries for dense β ≠ 2 MU, plus
    (``kl_cd``) KL coordinate descent's per-non-zero state (solvers/_kl_torch.py)."""
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


# ------------------------------------------------------------------------------- init
def init_factors(nx: TorchBackend, X, k: int, init, random_state, on_host=None):
    """Initial (W, H) on X's device, in X's dtype. On the CPU they are exactly numpy's.

    ``on_host`` (default: X is on the CPU) runs :func:`nmfkit.init.initialize` on a numpy view;
    otherwise "random" draws numpy's numbers on the host (O((n+m)·k) copied) and NNDSVD takes
    a randomized SVD on the device (``torch.svd_lowrank``) — X never leaves the device.
    """
    from ..init import check_init_rank, initialize, resolve_init

    if on_host is None:
        on_host = X.device.type == "cpu"
    if on_host:
        W, H = initialize(nx.to_numpy(X), k, init=init, random_state=random_state)
        return nx.asarray(W), nx.asarray(H)
    from sklearn.utils import check_random_state

    n, m = X.shape
    check_init_rank(init, k, n, m)
    init = resolve_init(init, k, n, m)
    total = X.values().sum(dtype=torch.float64) if nx.issparse(X) else X.sum(dtype=torch.float64)
    avg_X = float(total) / (n * m)
    rng = check_random_state(random_state)
    dt = X.dtype
    if init == "random":
        avg = math.sqrt(avg_X / k)
        H = np.abs(avg * rng.standard_normal(size=(k, m)))
        W = np.abs(avg * rng.standard_normal(size=(n, k)))
        return (torch.as_tensor(W, dtype=dt, device=X.device),
                torch.as_tensor(H, dtype=dt, device=X.device))
    # NNDSVD from a randomized SVD on the device; the sign fix-up runs on the small factors
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(int(rng.randint(2**31 - 1)))
    try:
        A = X.to_sparse_coo() if nx.issparse(X) else X
        U, S, V = torch.svd_lowrank(A, q=min(k + 10, n, m), niter=4)
    finally:
        torch.random.set_rng_state(gen_state)
    U = U[:, :k].double().cpu().numpy()
    S = S[:k].double().cpu().numpy()
    V = V[:, :k].double().cpu().numpy().T
    W, H = _nndsvd_from_svd(U, S, V, k, init, avg_X, rng)
    return (torch.as_tensor(W, dtype=dt, device=X.device),
            torch.as_tensor(H, dtype=dt, device=X.device))


def _nndsvd_from_svd(U, S, V, k, init, avg_X, rng, eps=1e-6):
    """Boutsidis & Gallopoulos' NNDSVD sign fix-up of a rank-k SVD (as nmfkit.init does)."""
    W, H = np.zeros_like(U), np.zeros_like(V)
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0, :] = np.sqrt(S[0]) * np.abs(V[0, :])
    for j in range(1, k):
        x, y = U[:, j], V[j, :]
        xp, yp, xn, yn = np.maximum(x, 0), np.maximum(y, 0), -np.minimum(x, 0), -np.minimum(y, 0)
        xpn, ypn, xnn, ynn = (np.linalg.norm(v) for v in (xp, yp, xn, yn))
        mp, mn = xpn * ypn, xnn * ynn
        u, v, sigma = (xp / xpn, yp / ypn, mp) if mp > mn else (xn / xnn, yn / ynn, mn)
        lbd = np.sqrt(S[j] * sigma)
        W[:, j], H[j, :] = lbd * u, lbd * v
    W[W < eps] = 0
    H[H < eps] = 0
    np.nan_to_num(W, copy=False, nan=0.0)
    np.nan_to_num(H, copy=False, nan=0.0)
    if init == "nndsvda":
        W[W == 0] = avg_X
        H[H == 0] = avg_X
    elif init == "nndsvdar":
        W[W == 0] = abs(avg_X * rng.standard_normal(size=int((W == 0).sum())) / 100)
        H[H == 0] = abs(avg_X * rng.standard_normal(size=int((H == 0).sum())) / 100)
    return W, H


def _factor_on(nx, A, shape, dtype, device, whom):
    """A user-given W or H, checked on the host (it is small) and moved to the device."""
    from .._validation import check_init_factor

    A_host = nx.to_numpy(A) if isinstance(A, torch.Tensor) else A
    A_host = check_init_factor(A_host, shape, whom)
    if isinstance(A, torch.Tensor) and A.dtype != dtype:
        raise TypeError(
            f"{whom} should have the same dtype as X. Got {A.dtype}; X.dtype = {dtype}. "
            "Cast it with .to(X.dtype)."
        )
    return torch.as_tensor(np.array(A_host, copy=True), dtype=dtype, device=device)


# ------------------------------------------------------------------------------- fit
def _auto_solver(est, X, penalties) -> str:
    """``solver="auto"`` on torch: the one rule of ``nmfkit.solvers._auto`` for this
    backend, given the penalties known so far."""
    from ..solvers._auto import resolve_solver

    return resolve_solver(est._beta_loss, sparse=TorchBackend.issparse(X),
                          n_components=est._n_components, penalties=penalties,
                          backend="torch")


def fit_torch(est, nx: TorchBackend, X, W, H, update_H: bool):
    """The torch branch of ``NMF._fit_transform``: returns (W, H, n_iter) in the caller's
    framework (tensors for tensor input, numpy for numpy input)."""
    from .. import _fit
    from ..penalties import sklearn_penalties

    whom = type(est).__name__
    host_input = not isinstance(X, torch.Tensor)
    opts = dict(est.solver_options or {})
    solver = est.solver
    if solver == "auto":
        from ..penalties import Penalty
        from ..solvers._auto import auto_options

        known = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, *X.shape)
        known += [p for p in (est.penalties or []) if isinstance(p, Penalty)]
        solver = est._solver = _auto_solver(est, X, known)
    nx = TorchBackend(device=nx.device, allow_tf32=bool(opts.pop("allow_tf32", False)))
    if host_input:
        from .._validation import check_non_negative, check_zeros_for_beta

        check_non_negative(X, f"{whom} (input X)")
        check_zeros_for_beta(X, est._beta_loss)
        device = nx.device or torch.device("cpu")
        nnz = X.nnz if hasattr(X, "nnz") else None
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    else:
        device = nx.device or X.device
        nnz = X.values().numel() if nx.issparse(X) else None
        dtype = X.dtype
        if est._beta_loss <= 0:
            has_zero = (nnz < X.shape[0] * X.shape[1]) if nnz is not None else bool((X == 0).any())
            if has_zero or (nnz is not None and bool((X.values() == 0).any())):
                raise ValueError(
                    "When beta_loss <= 0 and X contains zeros, the solver may diverge. "
                    "Please add small values to X, or use a positive beta_loss."
                )
    nx = TorchBackend(device=device, allow_tf32=nx.allow_tf32)
    k = est._n_components if est._n_components not in (None, "auto") else None
    if k is None:
        k = H.shape[0] if H is not None else X.shape[1]
    itemsize = torch.empty((), dtype=dtype).element_size()
    runs = max(1, int(getattr(est, "n_init", 1))) if update_H else 1  # n_init: r working sets
    needed = bytes_needed(
        tuple(X.shape), nnz, int(k) * runs, itemsize,
        dense_WH=est._beta_loss != 2.0 and solver == "mu",
        on_device=not host_input and X.device == torch.device(device),
        kl_cd=est._beta_loss == 1.0 and solver == "cd",
    )
    check_memory(device, needed)
    Xd = nx.asarray(X, dtype=dtype) if (host_input or X.device != torch.device(device)) else X
    n, m = Xd.shape
    # data of extreme magnitude is fitted at unit scale, from the start on
    from .._unit_scale import UnitScale
    from .._validation import check_largest_value

    check_largest_value(nx.max(Xd))
    scale = UnitScale.of(nx.max(Xd), est._beta_loss)
    Xd = scale.data(Xd, nx)

    if est.init == "custom" and update_H:
        Hd = scale.factor_in(
            _factor_on(nx, H, (est._n_components, m), dtype, device, f"{whom} (input H)"))
        Wd = scale.factor_in(
            _factor_on(nx, W, (n, est._n_components), dtype, device, f"{whom} (input W)"))
        if est._n_components == "auto":
            est._n_components = Hd.shape[0]
    elif not update_H:
        if W is not None:
            warnings.warn("When update_H=False, the provided initial W is not used.",
                          RuntimeWarning)
        if isinstance(H, torch.Tensor):
            H = H.to(dtype)
        elif H is not None:
            H = np.asarray(H, dtype=np.float64 if dtype == torch.float64 else np.float32)
        Hd = scale.factor_in(
            _factor_on(nx, H, (est._n_components, m), dtype, device, f"{whom} (input H)"))
        if est._n_components == "auto":
            est._n_components = Hd.shape[0]
        kk = Hd.shape[0]
        if solver == "mu":
            total = nx.sum(Xd) if nx.issparse(Xd) else float(Xd.sum(dtype=torch.float64))
            Wd = nx.full((n, kk), math.sqrt(total / (n * m) / kk), dtype)
        else:
            Wd = nx.zeros((n, kk), dtype)
    else:
        k = rank_without_custom_start(est, W, H, m)
        Wd, Hd = init_factors(nx, Xd, k, est.init, est.random_state)

    penalties = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, n, m)
    # penalties, graph, nsNMF, frozen components (issue 4) on the device; writes frozen rows
    from .. import _extensions

    ext = _extensions.prepare(est, Xd, Wd, Hd, update_H, scale=scale)
    penalties = scale.penalties([*penalties, *ext.pop("penalties")])
    opts = {k: v for k, v in (ext.pop("solver_options") or {}).items() if k != "allow_tf32"}
    if est.solver == "auto":  # again, now that the graph penalty is known too
        solver = est._solver = _auto_solver(est, Xd, penalties)
        opts = {**auto_options(solver, est._beta_loss), **opts}
    # n_init > 1: run 0 from (Wd, Hd), runs 1.. from init="random" with seeds drawn from
    # random_state (as nmfkit._restarts.fit_n_init on numpy), frozen rows kept in every start
    starts = [(Wd, Hd, est.random_state)]
    if update_H and getattr(est, "n_init", 1) > 1:
        from ..batched import restart_seeds

        frozen = list(ext["frozen_H"])
        for seed in restart_seeds(est.random_state, est.n_init - 1):
            Wr, Hr = init_factors(nx, Xd, Hd.shape[0], "random", int(seed), on_host=False)
            if frozen:
                Hr[frozen] = Hd[frozen]
            starts.append((Wr, Hr, int(seed)))
    fit_kwargs = dict(
        solver=solver, beta=est._beta_loss, beta_param=est.beta_loss, nx=nx,
        penalties_W=[p for p in penalties if p.factor == "W"],
        penalties_H=[p for p in penalties if p.factor == "H"],
        update_H=update_H, tol=est.tol, max_iter=est.max_iter, max_time=est.max_time,
        callback=est.callback, shuffle=est.shuffle, solver_options=opts, verbose=est.verbose,
        **ext,
    )
    from .._restarts import fit_starts

    with nx.compute_context():  # the starts in one batch when they can be (_batched_runs)
        result, objectives = fit_starts(Xd, starts, fit_kwargs)
    scale.result_out(result)
    if update_H:
        est.init_objectives_ = np.array([scale.objective_out(f) for f in objectives])
    _fit.record_fit(est, result)
    Wr, Hr = result.W, result.H
    if host_input:
        Wr, Hr = nx.to_numpy(Wr), nx.to_numpy(Hr)
    Hr = _extensions.finish(est, Hr, update_H)  # nsNMF: components_ = S H
    return Wr, Hr, result.n_iter
