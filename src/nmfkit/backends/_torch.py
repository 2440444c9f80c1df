"""The PyTorch backend: the numpy backend's array namespace on torch tensors (CPU or CUDA).

Solvers call the same ``nx`` methods on either backend; plain elementwise arithmetic on W and
H uses operators and in-place operators, which numpy and torch share. A sparse X is a torch
sparse CSR tensor; its transpose is converted once to CSR so that both ``X @ B`` and
``Xᵀ @ B`` are row-parallel sparse products. Values that the fit loop needs on the host
(objective values, norms) are reduced in float64 on the device and read back once each.

Nothing here synchronises with the device inside a coordinate-descent sweep: the HALS
kernel guards dead components with ``torch.where`` instead of a Python ``if`` on a device
value. Only this module (and ``_torch_io``) imports torch.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from . import _torch_hals, _torch_io
from ._torch_csr import csr as _csr
from ._torch_csr import quiet_sparse as _quiet_sparse
from ._torch_csr import to_torch_dtype
from ._numpy import NumpyBackend

__all__ = ["TorchBackend", "to_torch_dtype"]

# elements per temporary block in sampled products and blocked reductions
_BLOCK_ELEMENTS = 1 << 22


class TorchBackend(NumpyBackend):
    """Array operations for torch tensors (dense strided or sparse CSR) on one device: the
    contract of :class:`NumpyBackend`, every operation overridden where tensors differ.

    Parameters
    ----------
    device : str or torch.device or None
        Where arrays created or moved by the backend live. None: the device of the input
        (``"cpu"`` for numpy input).
    allow_tf32 : bool, default=False
        Let float32 matrix products use TF32 tensor cores (CUDA, Ampere or newer): about
        10 bits of mantissa in the products instead of 23. Off unless asked for.
    """

    name = "torch"

    def __init__(self, device=None, allow_tf32: bool = False):
        self.device = torch.device(device) if device is not None else None
        self.allow_tf32 = bool(allow_tf32)

    def __repr__(self) -> str:
        return f"TorchBackend(device={self.device!r}, allow_tf32={self.allow_tf32})"

    batches_restarts = True
    host_arrays = False
    compiled_kernels = False  # the numba kernels take host numpy arrays only

    # ----------------------------------------------------------------- the fit's placement
    @staticmethod
    def step_threads(host=None):
        """A step on torch runs on torch's own threads: a null context yielding 1 (``host``,
        the solvers' host thread pool, is not used)."""
        return contextlib.nullcontext(1)

    def configured(self, options: dict) -> "TorchBackend":
        """This backend with TF32 products only when ``options["allow_tf32"]`` (removed)."""
        return TorchBackend(device=self.device, allow_tf32=bool(options.pop("allow_tf32", False)))

    def place(self, X, *, k_total: int, dense_WH: bool = False, kl_cd: bool = False,
              extra_bytes: int = 0):
        """(X on the device, whether it came from the host, the backend bound to that device);
        the device's free memory is checked for the whole fit before X moves."""
        return _torch_io.place(self, X, k_total=k_total, dense_WH=dense_WH, kl_cd=kl_cd,
                               extra_bytes=extra_bytes)

    @staticmethod
    def validate_input(est, X, *, reset: bool, estimator_checks: bool = True):
        """A tensor X checked on its own device (``_torch_io.validate_tensor``: shape, dtype,
        finite, non-negative; ``n_features_in_`` per ``reset``)."""
        return _torch_io.validate_tensor(est, X, reset=reset)

    @staticmethod
    def checked_input(X, whom: str):
        """A tensor X checked on its own device (``_torch_io.check_tensor``), non-negative."""
        return _torch_io.check_tensor(X, whom)

    cast_hint = ".to(X.dtype)"

    def prepare_masked(self, est, X, mask, *, reset: bool, validate_host, host_observed,
                       check_no_nan, check_missing):
        """The observed entries on this backend's device (``_torch_masked.prepare_masked``:
        a tensor's gathered there, numpy input's built on the host by the rules passed in)."""
        from ._torch_masked import prepare_masked

        return prepare_masked(est, self, X, mask, reset=reset, validate_host=validate_host,
                              host_observed=host_observed, check_no_nan=check_no_nan,
                              check_missing=check_missing)

    @staticmethod
    def observed_on_host(obs, from_coo):
        """The device's observed entries read back (O(nnz)) as the host's set."""
        rows, cols, vals, wts = obs.host_coo()
        return from_coo(rows, cols, vals, wts, tuple(obs.shape), vals.dtype)

    def observed_divergence(self, obs, W, H, beta: float, host=None) -> float:
        """The observed entries' weighted β-divergence on the device
        (``_torch_masked.weighted_divergence``)."""
        from ._torch_masked import weighted_divergence

        return weighted_divergence(self, obs, W, H, beta)

    @staticmethod
    def to_like(a, like):
        """A host array (numpy or scipy.sparse: CSR) as a tensor on ``like``'s device, in its
        dtype."""
        return TorchBackend(device=like.device).asarray(a, dtype=like.dtype)

    def mean(self, X):
        """mean(X) over every entry (zeros included), a float64 0-d tensor on X's device."""
        n = X.shape[0] * X.shape[1]
        data = self._values(X)
        if not n:
            return torch.zeros((), dtype=torch.float64, device=data.device)
        return data.sum(dtype=torch.float64) / n

    @staticmethod
    def on_host(X) -> bool:
        return X.device.type == "cpu"

    def randomized_svd(self, X, k: int, seed: int):
        """A rank-k SVD from ``torch.svd_lowrank`` on X's device (X never leaves it), seeded
        without touching torch's global generator; returned as float64 numpy arrays."""
        n, m = X.shape
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            A = X.to_sparse_coo() if self.issparse(X) else X
            U, S, V = torch.svd_lowrank(A, q=min(k + 10, n, m), niter=4)
        finally:
            torch.random.set_rng_state(gen_state)
        return (U[:, :k].double().cpu().numpy(), S[:k].double().cpu().numpy(),
                V[:, :k].double().cpu().numpy().T)

    # ----------------------------------------------------------------- creation
    def _dev(self, like=None):
        if self.device is not None:
            return self.device
        if like is not None and isinstance(like, torch.Tensor):
            return like.device
        return torch.device("cpu")

    def asarray(self, a, dtype=None):
        """A tensor on this backend's device (numpy, scipy.sparse or tensor in)."""
        dtype = to_torch_dtype(dtype)
        if isinstance(a, torch.Tensor):
            return a.to(device=self._dev(a), dtype=dtype or a.dtype)
        import scipy.sparse as sp

        if sp.issparse(a):
            a = sp.csr_matrix(a)
            a.sum_duplicates()
            dt = dtype or to_torch_dtype(a.dtype)
            dev = self._dev()
            return _csr(
                torch.as_tensor(a.indptr.astype(np.int64), device=dev),
                torch.as_tensor(a.indices.astype(np.int64), device=dev),
                torch.as_tensor(a.data, dtype=dt, device=dev),
                tuple(a.shape),
            )
        a = np.asarray(a)
        return torch.as_tensor(a, dtype=dtype or to_torch_dtype(a.dtype), device=self._dev())

    def zeros(self, shape, dtype):
        return torch.zeros(shape, dtype=to_torch_dtype(dtype), device=self._dev())

    def full(self, shape, value, dtype):
        return torch.full(shape, value, dtype=to_torch_dtype(dtype), device=self._dev())

    empty_like = staticmethod(torch.empty_like)
    copy = staticmethod(torch.clone)

    @staticmethod
    def zeros_as(a, dtype):
        return torch.zeros(a.shape, dtype=to_torch_dtype(dtype), device=a.device)

    @staticmethod
    def eye(k: int, like):
        return torch.eye(k, dtype=like.dtype, device=like.device)

    @staticmethod
    def astype(a, dtype):
        return a.to(dtype=to_torch_dtype(dtype))

    def adopt(self, a, like=None):
        """A small array kept between calls on this device, in ``like``'s dtype (a tensor's
        own dtype, or a numpy array's, without ``like``)."""
        dtype = like.dtype if isinstance(like, torch.Tensor) else None
        if isinstance(a, torch.Tensor):
            return a.to(device=self._dev(a), dtype=dtype or a.dtype)
        return self.asarray(np.ascontiguousarray(a), dtype=dtype)

    stack = staticmethod(torch.stack)

    @staticmethod
    def mT(a):
        return a.transpose(-1, -2)

    @staticmethod
    def permute(a, axes):
        return a.permute(*axes)

    @staticmethod
    def diagonal(a):
        return a.diagonal(dim1=-2, dim2=-1)

    def row_taker(self, X):
        """Rows by slice; for a sparse X its row pointer is read to the host once here, so
        that no batch waits on the device for its bounds."""
        if not self.issparse(X):
            return X.__getitem__
        index = X.crow_indices().cpu().numpy()
        crow_all, cols, vals = X.crow_indices(), X.col_indices(), X.values()

        def take(sl):
            s, e = sl.start, sl.stop
            a, b = int(index[s]), int(index[e])
            return _csr(crow_all[s : e + 1] - a, cols[a:b], vals[a:b], (e - s, X.shape[1]))
        return take

    ascontiguous = staticmethod(torch.Tensor.contiguous)

    @staticmethod
    def broadcast_to(a, shape):
        """A writable copy of ``a`` broadcast to ``shape``."""
        return a.expand(shape).clone()

    @staticmethod
    def to_numpy(a):
        """numpy array (or scipy CSR for a sparse tensor) on the host."""
        if not isinstance(a, torch.Tensor):
            return a
        if a.layout != torch.strided:
            import scipy.sparse as sp

            a = a.detach().cpu()
            if a.layout != torch.sparse_csr:
                with _quiet_sparse():
                    a = a.to_sparse_csr()
            return sp.csr_matrix(
                (a.values().numpy(), a.col_indices().numpy(), a.crow_indices().numpy()),
                shape=tuple(a.shape),
            )
        return a.detach().cpu().numpy()

    @staticmethod
    def eps(dtype) -> float:
        return float(torch.finfo(to_torch_dtype(dtype)).eps)

    @staticmethod
    def tiny(dtype) -> float:
        return float(torch.finfo(to_torch_dtype(dtype)).tiny)

    # ------------------------------------------------------------------ sparse
    @staticmethod
    def issparse(X) -> bool:
        return isinstance(X, torch.Tensor) and X.layout != torch.strided

    def prepare_X(self, X):
        """X in the solvers' layout (contiguous, or CSR when sparse) and its transpose."""
        if self.issparse(X):
            with _quiet_sparse():
                if X.layout != torch.sparse_csr:
                    X = X.to_sparse_coo().coalesce().to_sparse_csr()
                Xt = X.t().to_sparse_csr()
            return X, Xt
        X = X.contiguous()
        return X, X.T

    sparse_data = staticmethod(torch.Tensor.values)

    @staticmethod
    def sparse_coords(X):
        """Row and column index of each stored value of a CSR X, in storage order."""
        crow = X.crow_indices()
        counts = crow[1:] - crow[:-1]
        rows = torch.repeat_interleave(
            torch.arange(X.shape[0], device=crow.device), counts, output_size=X.values().numel()
        )
        return rows, X.col_indices()

    @staticmethod
    def with_data(X, data):
        return _csr(X.crow_indices(), X.col_indices(), data, tuple(X.shape))

    @staticmethod
    def divide_scalar(a, s: float):
        """a / s; torch sparse CSR tensors have no scalar division, so divide their values."""
        if a.layout == torch.sparse_csr:
            return _csr(a.crow_indices(), a.col_indices(), a.values() / s, tuple(a.shape))
        if a.is_sparse:
            return torch.sparse_coo_tensor(a.indices(), a.values() / s, a.shape).coalesce()
        return a / s

    @classmethod
    def times_pow2(cls, a, exponent: int):
        """a · 2**exponent, exact and in a's dtype, in steps of at most 2**±60 (each
        representable in float32), dense or sparse."""
        exponent = int(exponent)
        while exponent:
            step = max(-60, min(60, exponent))
            a = cls.divide_scalar(a, 2.0 ** -step)
            exponent -= step
        return a

    # ------------------------------------------------------------------ algebra
    def matmul(self, A, B):
        """A @ B where either operand may be sparse CSR; returns a dense tensor.

        dense @ CSR is computed as (Bᵀ @ Aᵀ)ᵀ with Bᵀ in CSR, a row-parallel product that every
        device supports; Bᵀ's structure and the permutation of B's values into it are computed
        once per sparsity structure (MU's quotients share X's) and cached on the backend.
        """
        if self.issparse(B) and not self.issparse(A):
            crow_t, col_t, perm = self._transpose_plan(B)
            Bt = _csr(crow_t, col_t, B.values()[perm], (B.shape[1], B.shape[0]))
            with _quiet_sparse():
                return (Bt @ A.T).T
        with _quiet_sparse():
            out = A @ B
        if out.layout != torch.strided:
            out = out.to_dense()
        return out

    def sparse_cross(self, X, F, rows_product=None):
        """(X Fᵀ)ᵀ, shape (k, rows of X), contiguous (``rows_product``, a host product, is not
        used)."""
        return self.matmul(X, F.T).T.contiguous()

    @staticmethod
    def orientable(X) -> bool:
        """False: torch picks its products' orientation itself."""
        return False

    @staticmethod
    def residual_sample(X, Y, observed, limit: int):
        """X − Y at the observed entries in row-major order, strided to at most ``limit``,
        subtracted on the device at those entries only and read back as a float64 numpy
        array (the numpy backend's entries and numbers)."""
        x, y = X.reshape(-1), Y.reshape(-1)
        if observed is not None:
            keep = observed.reshape(-1) > 0
            x, y = x[keep], y[keep]
        if x.numel() > limit:
            step = -(-x.numel() // limit)
            x, y = x[::step], y[::step]
        return (x - y).to(torch.float64).cpu().numpy()

    def _transpose_plan(self, B):
        """(crow, col, perm) of Bᵀ in CSR for a CSR B; cached by B's index storage."""
        cache = self.__dict__.setdefault("_tplans", {})
        key = (B.col_indices().data_ptr(), B.crow_indices().data_ptr(), tuple(B.shape))
        if key not in cache:
            rows, cols = self.sparse_coords(B)
            n_rows = B.shape[0]
            perm = torch.argsort(cols * n_rows + rows)
            counts = torch.bincount(cols, minlength=B.shape[1])
            crow_t = torch.zeros(B.shape[1] + 1, dtype=torch.int64, device=cols.device)
            crow_t[1:] = torch.cumsum(counts, 0)
            cache.clear()  # one structure per fit: keep memory at O(nnz)
            cache[key] = (crow_t, rows[perm].to(torch.int64), perm)
        return cache[key]

    def sampled_dot(self, W, H, X, block: int | None = None):
        """Values of (W @ H) at the stored entries of a sparse CSR X, in storage order.

        O(nnz·k) time and O(block·k) extra memory; never forms W @ H.
        """
        rows, cols = self.sparse_coords(X)
        nnz = rows.shape[0]
        k = W.shape[1]
        block = block or max(1, _BLOCK_ELEMENTS // max(k, 1))
        out = torch.empty(nnz, dtype=torch.result_type(W, H), device=W.device)
        Ht = H.T.contiguous()
        for start in range(0, nnz, block):
            r, c = rows[start : start + block], cols[start : start + block]
            torch.sum(W[r] * Ht[c], dim=1, out=out[start : start + block])
        return out

    @staticmethod
    def sum(a, axis=None):
        if isinstance(a, torch.Tensor) and a.layout != torch.strided:
            if axis is None:
                return float(a.values().sum(dtype=torch.float64))
            with _quiet_sparse():
                return torch.sum(a.to_sparse_coo(), dim=axis).to_dense()
        if axis is None:
            return a.sum()
        return a.sum(dim=axis)

    @staticmethod
    def _values(a):
        return a.values() if a.layout != torch.strided else a.reshape(-1)

    def sq_norm(self, a, run=None) -> float:  # run: the host's threads, unused here
        """Squared Frobenius norm, accumulated in float64 block by block."""
        v = self._values(a)
        total = torch.zeros((), dtype=torch.float64, device=v.device)
        for s in range(0, v.numel(), _BLOCK_ELEMENTS):
            b = v[s : s + _BLOCK_ELEMENTS].double()
            total += torch.dot(b, b)
        return float(total)

    @staticmethod
    def vdot(a, b) -> float:
        """Σ a ⊙ b of two dense (small: k×N) tensors, accumulated in float64."""
        return float(torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))

    def max(self, a) -> float:
        v = self._values(a)
        return float(v.max()) if v.numel() else 0.0

    def min(self, a) -> float:
        v = self._values(a)
        if a.layout != torch.strided and v.numel() < a.shape[0] * a.shape[1]:
            return min(float(v.min()), 0.0) if v.numel() else 0.0
        return float(v.min()) if v.numel() else 0.0

    def isfinite_all(self, a) -> bool:
        return bool(torch.isfinite(self._values(a)).all())

    maximum = staticmethod(torch.maximum)
    log = staticmethod(torch.log)
    sqrt = staticmethod(torch.sqrt)
    where = staticmethod(torch.where)

    def arange(self, n):
        return torch.arange(n, device=self._dev())

    @staticmethod
    def clip_min(a, lo, out=None):
        if out is None:
            return torch.clamp(a, min=lo)
        return torch.clamp(a, min=lo, out=out)

    @staticmethod
    def scaled(a, s: float, dtype, out=None):
        if out is None:
            return a.to(dtype=to_torch_dtype(dtype), copy=True).mul_(s)
        return out.copy_(a).mul_(s)

    @staticmethod
    def subtract(a, b, out):
        return out.copy_(a - b)

    norm = staticmethod(torch.linalg.vector_norm)

    @staticmethod
    def fill_where(a, mask, value):
        """a[mask] = value, in place, without a host synchronisation."""
        return a.masked_fill_(mask, value)

    @staticmethod
    def divide(a, b, out=None):
        return torch.div(a, b, out=out) if out is not None else a / b

    @staticmethod
    def diag_add(M, value):
        M.diagonal().add_(value)
        return M

    # -------------------------------------------------------------- kernels
    hals_sweep = staticmethod(_torch_hals.hals_sweep)
    hals_sweep_violation = staticmethod(_torch_hals.hals_sweep_violation)

    @staticmethod
    def projected_gradient_sum(F, G, R, l1: float, l2: float, rows, *, host=None) -> float:
        """Σ |projected gradient| by array operations on F's device and one host read;
        ``host`` (cd's compiled host pass) is not used."""
        g = G @ F - R
        if l1:
            g += l1
        if l2:
            g += l2 * F
        if rows is not None:
            g, F = g[list(rows)], F[list(rows)]
        pos = F > 0  # the gradient where F > 0; where F = 0 only its negative part counts
        return float((abs(g) * pos).sum() + (torch.clamp(-g, min=0) * ~pos).sum())

    def kl_half_steps(self, X, dtype, options: dict, *, host=None):
        """KL coordinate descent's half-step as vectorised sweeps on the device
        (``_torch_kl.TorchKL``); ``host`` (the compiled host kernels) is not used."""
        from ._torch_kl import TorchKL

        return TorchKL(self, X, dtype, options).half_step

    def beta_divergence(self, X, W, H, beta: float, *, on_device: bool = False, host=None):
        """D_β(X | WH) on the device, float64 sums; see :func:`nmfkit.losses.beta_divergence`.
        ``on_device``: a 0-d tensor left there, read later with :meth:`floats`; ``host`` (the
        numpy formulas) is not used."""
        from ._torch_loss import beta_divergence_torch

        return beta_divergence_torch(self, X, W, H, beta, on_device=on_device)

    # -------------------------------------------------------------- precision
    @contextlib.contextmanager
    def compute_context(self):
        """Run a fit without autograd, with TF32 matrix products only when ``allow_tf32``
        (the global settings are restored after)."""
        old_matmul = torch.backends.cuda.matmul.allow_tf32
        old_cudnn = torch.backends.cudnn.allow_tf32
        old_prec = torch.get_float32_matmul_precision()
        try:
            torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32
            torch.backends.cudnn.allow_tf32 = self.allow_tf32
            torch.set_float32_matmul_precision("high" if self.allow_tf32 else "highest")
            with torch.no_grad():  # NMF needs no autograd graph (it would grow every step)
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_matmul
            torch.backends.cudnn.allow_tf32 = old_cudnn
            torch.set_float32_matmul_precision(old_prec)

    # ------------------------------------------- pgd / anls ops (same as numpy)
    @staticmethod
    def inner(a, b):
        """Σ a ⊙ b of two dense tensors of one shape, summed in float64 (the products in the
        tensors' dtype), as a 0-d tensor
        left on the device (no synchronisation); read several at once with :meth:`floats`."""
        if a.dtype == torch.float64 and b.dtype == torch.float64:
            return torch.dot(a.reshape(-1), b.reshape(-1))
        return torch.sum(a * b, dtype=torch.float64)  # products in the dtype, as numpy

    @staticmethod
    def floats(*values) -> tuple:
        """0-d tensors (or numbers) as Python floats, in one device-to-host transfer."""
        ts = [v.detach().to(torch.float64).reshape(()) for v in values
              if isinstance(v, torch.Tensor)]
        host = iter(torch.stack(ts).tolist()) if ts else iter(())
        return tuple(next(host) if isinstance(v, torch.Tensor) else float(v) for v in values)

    @staticmethod
    def eigvalsh_max(G) -> float:
        """Largest eigenvalue of a small symmetric matrix, in float64, computed on the host
        (one k×k transfer; host LAPACK beats a device eigensolver at this size and gives
        the numpy backend's number exactly)."""
        g = G.detach().to(device="cpu", dtype=torch.float64).numpy()
        return float(np.linalg.eigvalsh(g)[-1])

    @staticmethod
    def flatnonzero(a):
        """Indices of the non-zero entries of a 1-d tensor (synchronises: the size is data)."""
        return torch.nonzero(a).reshape(-1)

    @staticmethod
    def amax(a, axis: int):
        """Maximum along ``axis`` (values only)."""
        return torch.amax(a, dim=axis)

    def solve_passive(self, G, R, P, F, Y, cols) -> None:
        """Block principal pivoting's grouped solve on the device; see
        :func:`nmfkit.backends._torch_bpp.solve_passive`."""
        from ._torch_bpp import solve_passive

        solve_passive(G, R, P, F, Y, cols)

    @staticmethod
    def index_range(n: int, like):
        """0..n−1 as int64 indices on ``like``'s device (not the backend's: kernels such as
        :func:`nmfkit.nnls.nnls_bpp` may be handed a backend built without a device)."""
        return torch.arange(n, dtype=torch.int64, device=like.device)

    def sampled_dot_sddmm(self, W, H, X):
        """:meth:`sampled_dot` by ``torch.sparse.sampled_addmm`` (SDDMM; cuSPARSE on CUDA): no
        (block, k) gathers. Measured on CPU torch (3000×1000, 70% stored, k=10, float64, one
        thread): 0.09 s against 0.56 s for the gathers. Falls back to :meth:`sampled_dot` where
        the device or dtype has no SDDMM kernel."""
        dt = torch.result_type(W, H)
        try:
            # zeros, not empty: beta=0 still multiplies the input's values (0·NaN = NaN)
            S = _csr(X.crow_indices(), X.col_indices(),
                     torch.zeros(X.values().shape[0], dtype=dt, device=W.device), tuple(X.shape))
            with _quiet_sparse():
                return torch.sparse.sampled_addmm(S, W.to(dt), H.to(dt), beta=0.0).values()
        except (RuntimeError, NotImplementedError):
            return self.sampled_dot(W, H, X)
