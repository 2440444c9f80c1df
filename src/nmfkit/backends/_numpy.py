"""The numpy + scipy.sparse backend: the reference implementation of the array namespace.

Solvers never call numpy directly for operations that touch X; they call the backend
(``nx``) so that the torch backend can supply the same operations on tensors. Only what
differs between frameworks lives here; plain elementwise arithmetic on W and H uses
operators, which both frameworks share.
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np
import scipy.sparse as sp

from . import _numpy_kernels
from ._stats import statistic

__all__ = ["NumpyBackend", "row_blocks"]

#: entries of a dense temporary formed block by block (a block of W @ H): 32 MiB in float64
BLOCK_ELEMENTS = 1 << 22


def row_blocks(n_rows: int, n_cols: int, elements: int = BLOCK_ELEMENTS):
    """Slices covering ``range(n_rows)``, each of at most ``elements // n_cols`` rows (at
    least one): the blocks in which a dense temporary of n_cols columns is formed."""
    step = max(1, elements // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


class NumpyBackend:
    """Array operations for numpy arrays and scipy.sparse matrices/arrays.

    Also the reference of the backend contract: every operation the fit needs has a numpy
    definition here, and another backend overrides what differs (``TorchBackend``).
    """

    name = "numpy"
    #: whether n_init's starts run as one batch of products (a device) or one after another
    batches_restarts = False
    #: whether arrays are numpy arrays in host memory: memory order and BLAS orientation can
    #: be chosen, and the compiled (numba) kernels take them
    host_arrays = True
    #: whether the compiled (numba) host kernels take this backend's arrays: numba installed
    #: and numpy arrays in host memory (False on torch, and on numpy without numba)
    compiled_kernels = importlib.util.find_spec("numba") is not None

    # ----------------------------------------------------------------- the fit's placement
    def configured(self, options: dict) -> "NumpyBackend":
        """This backend with the solver options it reads itself (removed from ``options``);
        numpy reads none."""
        return self

    def place(self, X, *, k_total: int, dense_WH: bool = False, kl_cd: bool = False,
              extra_bytes: int = 0):
        """(X where the fit runs, whether it came from the host, the backend bound to it).
        A device backend checks its free memory for the fit first; numpy fits X in place."""
        return X, False, self

    @staticmethod
    def compute_context():
        """The context a fit runs in (torch: no autograd, TF32 policy); nothing on numpy."""
        return contextlib.nullcontext()

    @staticmethod
    def step_threads(host):
        """The context one solver step runs in, yielding its kernels' thread count: numpy's is
        ``host()`` (the solvers' host thread pool, BLAS held at one thread meanwhile: passed
        in, as backends import nothing else from nmfkit); torch's runs its own threads and
        yields 1 (holding BLAS at one thread would also limit torch's CPU threads)."""
        return host()

    def mean_value(self, X) -> float:
        """mean(X) over all n·m entries (implicit zeros of a sparse X included), a float."""
        return float(self.mean(X))

    @staticmethod
    def mean(X):
        """mean(X) over all n·m entries as a backend scalar (torch: float64, on the device)."""
        n = X.shape[0] * X.shape[1]
        return float(X.sum() / n) if n else 0.0

    @staticmethod
    def on_host(X) -> bool:
        """Whether X lives in host memory (starts are then drawn exactly as numpy's)."""
        return True

    @staticmethod
    def randomized_svd(X, k: int, seed: int):
        """A rank-k SVD (U (n, k), S (k,), V (k, m)) as float64 numpy arrays."""
        from sklearn.utils.extmath import randomized_svd

        return randomized_svd(X, k, random_state=seed)

    @staticmethod
    def validate_input(est, X, *, reset: bool, estimator_checks: bool = True):
        """X as a fit or a transform reads it on this backend: scikit-learn's ``validate_data``
        (feature count and names recorded or checked per ``reset``), or ``check_array`` alone
        with ``estimator_checks=False`` (the function API); float64 or float32, CSR/CSC kept.
        Torch validates a tensor on its own device instead."""
        from sklearn.utils import check_array

        dtypes = [np.float64, np.float32]
        if not estimator_checks:
            return check_array(X, accept_sparse=("csr", "csc"), dtype=dtypes)
        from sklearn.utils.validation import validate_data

        return validate_data(est, X, accept_sparse=("csr", "csc"), dtype=dtypes, reset=reset)

    @staticmethod
    def checked_input(X, whom: str):
        """X as a function without an estimator reads it (``check_array``): 2-D, finite,
        float64 or float32, a sparse X as CSR. Its sign is the caller's check (torch's
        checks it on the device, with the rest)."""
        from sklearn.utils import check_array

        return check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])

    #: how a user casts an array of this framework to X's dtype (named in error messages)
    cast_hint = ".astype(X.dtype)"

    # ----------------------------------------------------------------- masked fits
    def prepare_masked(self, est, X, mask, *, reset: bool, validate_host, host_observed,
                       check_no_nan, check_missing):
        """(X, its observed entries, the backend of the fit, whether W and H go back to the
        host) for a fit of observed entries. The data layer's rules are passed in (backends
        import nothing else from nmfkit): numpy validates X with ``validate_host`` and builds
        the observed set with ``host_observed``; torch builds it on its device."""
        X = validate_host(est, X, reset=reset)
        return X, host_observed(X, mask=mask, missing_values=est.missing_values), self, False

    @staticmethod
    def observed_on_host(obs, from_coo):
        """The observed entries as the host's set (where a start is drawn): numpy's is it;
        a device set is read back and rebuilt with ``from_coo`` (the data layer's)."""
        return obs

    @staticmethod
    def observed_divergence(obs, W, H, beta: float, host) -> float:
        """Σ over the observed entries of M_ij · d_β(X_ij, (WH)_ij), a float: numpy's is
        ``host`` (:func:`nmfkit.masked.weighted_divergence`, passed in); torch computes the
        same formulas on its device."""
        return host(obs, W, H, beta)

    # ----------------------------------------------------------------- objectives
    def beta_divergence(self, X, W, H, beta: float, *, on_device: bool = False, host=None):
        """D_β(X | WH) as a float, never NaN or inf: numpy's is ``host`` (the host formulas of
        :mod:`nmfkit.losses`, passed in: backends import nothing else from nmfkit) on the
        arrays as numpy, clamped at 0 against rounding; a device backend computes on the
        device (``on_device``: a scalar left there, read with :meth:`floats`)."""
        W, H, X = self.to_numpy(W), self.to_numpy(H), self.to_numpy(X)
        res = max(host(X, np.asarray(W), np.asarray(H), beta), 0.0)
        if not np.isfinite(res):  # pragma: no cover - guarded by floors in the formulas
            res = float(np.finfo(np.float64).max)
        return res

    # ----------------------------------------------------------------- creation
    @staticmethod
    def to_like(a, like):
        """A host array (numpy or scipy.sparse) in ``like``'s framework, device and dtype (a
        constant that meets a factor: a graph's affinity, frozen components); numpy casts
        without a copy when the dtype already is ``like``'s."""
        return a.astype(like.dtype, copy=False)

    @staticmethod
    def asarray(a, dtype=None):
        return np.asarray(a, dtype=dtype)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def full(shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    @staticmethod
    def copy(a):
        return a.copy(order="K")  # keeps an F-ordered factor F-ordered (cd's sparse layout)

    @staticmethod
    def zeros_as(a, dtype):
        """Zeros of a's shape, memory order (C or F) and device, in ``dtype``."""
        return np.zeros(a.shape, dtype, order="C" if a.flags.c_contiguous else "F")

    @staticmethod
    def eye(k: int, like):
        """The k × k identity in ``like``'s dtype, on its device."""
        return np.eye(k, dtype=like.dtype)

    @staticmethod
    def astype(a, dtype):
        """a in ``dtype``: a itself when it already is (read it, do not write to it)."""
        return np.asarray(a, dtype=dtype)

    @staticmethod
    def adopt(a, like=None):
        """A small array kept between calls (a factor, running sums) on this backend: numpy
        keeps its dtype; torch moves it to ``like``'s device and dtype."""
        if type(a).__module__.split(".")[0] == "torch":
            return a.detach().cpu().numpy()
        return a

    @staticmethod
    def stack(arrays):
        """Arrays of one shape stacked along a new first axis."""
        return np.stack(arrays)

    @staticmethod
    def mT(a):
        """The last two axes swapped (a view)."""
        return np.swapaxes(a, -1, -2)

    @staticmethod
    def permute(a, axes):
        """a's axes in the order ``axes`` (a view)."""
        return np.transpose(a, axes)

    @staticmethod
    def diagonal(a):
        """The diagonals of a stack of square matrices (..., k, k) → (..., k), writable."""
        return np.diagonal(a, axis1=-2, axis2=-1).copy()

    @staticmethod
    def row_taker(X):
        """``take(sl)``: rows ``sl`` (a slice) of X — a view of a dense X, a CSR copy of a
        sparse one — with any index bookkeeping done once here."""
        return X.__getitem__

    @staticmethod
    def empty_like(a):
        return np.empty_like(a)

    @staticmethod
    def ascontiguous(a):
        return np.ascontiguousarray(a)

    @staticmethod
    def broadcast_to(a, shape):
        """A writable copy of ``a`` broadcast to ``shape``."""
        return np.broadcast_to(a, shape).copy()

    @staticmethod
    def to_numpy(a):
        if sp.issparse(a):
            return a
        return np.asarray(a)

    @staticmethod
    def dtype_of(a):
        return a.dtype

    @staticmethod
    def eps(dtype) -> float:
        return float(np.finfo(dtype).eps)

    @staticmethod
    def tiny(dtype) -> float:
        return float(np.finfo(dtype).tiny)

    # ------------------------------------------------------------------ sparse
    @staticmethod
    def issparse(X) -> bool:
        return sp.issparse(X)

    @staticmethod
    def prepare_X(X):
        """Return X in the layout the solvers want (CSR for sparse) and its transpose.

        The sparse transpose is ``X.T``, a CSC view sharing X's arrays: no second copy of
        the data. ``Xt @ B`` on that view measured as fast as on a CSR copy of Xᵀ (tf-idf
        11314×39116, k=10: 5.4 vs 5.8 ms; k=50: 32 vs 28 ms), which is not worth the memory.
        Kernels that need Xᵀ row by row (KL coordinate descent) build their own CSR copy.
        """
        if sp.issparse(X):
            X = sp.csr_matrix(X)
            X.sum_duplicates()
            return X, X.T
        X = np.asarray(X)
        return X, X.T

    @staticmethod
    def sparse_data(X):
        """The stored values of a sparse X (the observed entries)."""
        return X.data

    @staticmethod
    def sparse_coords(X):
        """Row and column index of each stored value of a CSR (or CSC) X, in storage order."""
        outer = np.repeat(np.arange(X.shape[X.format == "csc"], dtype=X.indices.dtype),
                          np.diff(X.indptr))
        return (X.indices, outer) if X.format == "csc" else (outer, X.indices)

    @staticmethod
    def divide_scalar(a, s: float):
        """a / s (dense or sparse); dividing avoids 1/s, which overflows for subnormal s."""
        return a / s

    @staticmethod
    def times_pow2(a, exponent: int):
        """a · 2**exponent, exact and in a's dtype (dense or sparse): no power of two is formed,
        so neither 2**-1030 nor float32's 2**128 overflows on the way."""
        if sp.issparse(a):
            out = a.copy()
            out.data = np.ldexp(out.data, exponent)
            return out
        return np.ldexp(a, exponent)

    @staticmethod
    def with_data(X, data):
        """A sparse matrix with X's structure (shared, not copied) and the given values."""
        if X.format in ("csr", "csc"):
            return type(X)((data, X.indices, X.indptr), shape=X.shape)
        out = X.copy()
        out.data = data
        return out

    # ------------------------------------------------------------------ algebra
    @staticmethod
    def matmul(A, B):
        """A @ B where either operand may be sparse; always returns a dense array."""
        out = A @ B
        if sp.issparse(out):
            out = out.toarray()
        return np.asarray(out)

    def sparse_cross(self, X, F, rows_product=None):
        """(X Fᵀ)ᵀ, shape (k, rows of X), for a sparse X and a dense F (k, columns of X), in the
        layout the sweeps read best. On the host: the (rows, k) product's transposed view, no
        contiguous copy (peak memory; the sweeps and the objective read either layout), from
        ``rows_product(X, Fᵀ)`` for a CSR X when given (the solvers' product on host threads,
        passed in), else scipy's. A device makes it contiguous."""
        if rows_product is not None and X.format == "csr":
            return rows_product(X, F.T).T
        return self.matmul(X, F.T).T

    @staticmethod
    def orientable(X) -> bool:
        """Whether a product F X with the dense X may be run in either orientation (F @ X or
        (Xᵀ Fᵀ)ᵀ, whichever BLAS runs faster) by memory order: a C- or F-contiguous host
        array. A device's library picks its own."""
        return bool(X.flags.c_contiguous or X.flags.f_contiguous)

    @staticmethod
    def residual_sample(X, Y, observed, limit: int):
        """X − Y at the observed entries (``observed`` > 0; all entries when None) in row-major
        order, every ⌈count / limit⌉-th of them when there are more than ``limit``, as a new
        float64 host array: only those entries are subtracted (numpy views of dense X and Y,
        X − Y is never formed)."""
        x, y = np.asarray(X).reshape(-1), np.asarray(Y).reshape(-1)
        if observed is not None:
            keep = np.asarray(observed).reshape(-1) > 0
            x, y = x[keep], y[keep]
        if x.size > limit:
            step = -(-x.size // limit)
            x, y = x[::step], y[::step]
        return np.asarray(x - y, dtype=np.float64)

    @staticmethod
    def sampled_dot(W, H, X, block: int = 65536):
        """Values of (W @ H) at the stored entries of a sparse CSR X, in X.data order.

        O(nnz · k) time and O(block · k) extra memory: never forms W @ H.
        """
        rows, cols = NumpyBackend.sparse_coords(X)
        nnz = rows.shape[0]
        out = np.empty(nnz, dtype=np.result_type(W.dtype, H.dtype))
        Ht = np.ascontiguousarray(H.T)
        for start in range(0, nnz, block):
            stop = min(start + block, nnz)
            r, c = rows[start:stop], cols[start:stop]
            np.einsum("ij,ij->i", W[r], Ht[c], out=out[start:stop])
        return out

    @staticmethod
    def sum(a, axis=None):
        if sp.issparse(a):
            s = a.sum(axis=axis)
            return np.asarray(s).ravel() if axis is not None else float(s)
        return a.sum(axis=axis)

    @staticmethod
    def sq_norm(a, run=None) -> float:
        """Squared Frobenius norm, accumulated in float64; ``run(part, size)`` (optional)
        computes ``part(lo, hi)`` over ranges covering ``range(size)`` on host threads and
        returns their values in order (a device ignores it).

        A float32 X is widened through einsum's small casting buffer, never as a whole: a
        float64 copy of X was the in-memory fit's largest temporary, 2× X's bytes (a 1.6 GB
        X), and widening it block by block cost a copy's time (15–30 ms on a 10000×2000 X).
        Computed once per fit for the fit's X (``remembered_statistics``), as max and min.
        """
        return statistic(a, "sq_norm", lambda: _sq_norm(a, run))

    @staticmethod
    def vdot(a, b) -> float:
        """Sum of the elementwise product of two dense arrays, accumulated in float64.

        No copy of either operand when both are float64 in the same memory order (C, or F as
        a transposed product); otherwise a buffered einsum (no full-size temporaries)."""
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 2 and a.flags.f_contiguous and b.flags.f_contiguous:
            a, b = a.T, b.T
        if (a.dtype == b.dtype == np.float64 and a.flags.c_contiguous
                and b.flags.c_contiguous):
            return float(np.dot(a.ravel(), b.ravel()))
        if a.ndim == 2 and a.shape == b.shape:
            return float(np.einsum("ij,ij->", a, b, dtype=np.float64, casting="safe"))
        return float(np.dot(np.asarray(a, dtype=np.float64).ravel(),
                            np.asarray(b, dtype=np.float64).ravel()))

    @staticmethod
    def max(a) -> float:
        if sp.issparse(a):
            return statistic(a, "max", lambda: float(a.max()) if a.nnz else 0.0)
        return statistic(a, "max", lambda: float(np.max(a)) if a.size else 0.0)

    @staticmethod
    def min(a) -> float:
        if sp.issparse(a):
            return statistic(a, "min",
                             lambda: float(a.min()) if a.shape[0] * a.shape[1] else 0.0)
        return statistic(a, "min", lambda: float(np.min(a)) if a.size else 0.0)

    @staticmethod
    def isfinite_all(a) -> bool:
        if sp.issparse(a):
            return bool(np.isfinite(a.data).all())
        return bool(np.isfinite(a).all())

    # elementwise helpers that differ between frameworks
    maximum = staticmethod(np.maximum)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    where = staticmethod(np.where)
    arange = staticmethod(np.arange)

    @staticmethod
    def clip_min(a, lo, out=None):
        return np.maximum(a, lo, out=out)

    @staticmethod
    def scaled(a, s: float, dtype, out=None):
        """s·a computed in ``dtype`` (a cast first), into ``out`` when given."""
        return np.multiply(a, np.dtype(dtype).type(s), dtype=dtype, out=out)

    @staticmethod
    def subtract(a, b, out):
        """out ← a − b, rounded to out's dtype."""
        return np.subtract(a, b, out=out, casting="same_kind")

    @staticmethod
    def norm(a):
        """‖a‖_F as a backend scalar (torch: left on the device; read with :meth:`floats`)."""
        from scipy import linalg

        return linalg.norm(a)

    @staticmethod
    def fill_where(a, mask, value):
        """a[mask] = value, in place."""
        a[mask] = value
        return a

    @staticmethod
    def divide(a, b, out=None):
        return np.divide(a, b, out=out)

    @staticmethod
    def diag_add(M, value):
        """Add value to the diagonal of square M in place."""
        M.flat[:: M.shape[0] + 1] += value
        return M

    @staticmethod
    def permutation(rng, n):
        return np.asarray(rng.permutation(n), dtype=np.intp)

    # ------------------------------------------- pgd / anls ops (same on torch)
    @staticmethod
    def inner(a, b):
        """Σ a ⊙ b of two dense arrays of one shape, summed in float64 (the products in the
        arrays' dtype), as a backend scalar (numpy: np.float64; torch: a 0-d tensor left on
        the device). Read several at once with :meth:`floats`."""
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype == np.float64 and b.dtype == np.float64:
            return np.dot(a.reshape(-1), b.reshape(-1))
        # float32: products in float32, summed in float64 (as torch); measured 3x faster
        # than float64 copies of both operands, 1.6x faster than einsum(dtype=float64)
        return np.multiply(a, b).sum(dtype=np.float64)

    @staticmethod
    def floats(*values) -> tuple:
        """Backend scalars as Python floats (torch: one device-to-host transfer for all)."""
        return tuple(float(v) for v in values)

    @staticmethod
    def eigvalsh_max(G) -> float:
        """Largest eigenvalue of a small symmetric matrix, in float64 (LAPACK on the host)."""
        return float(np.linalg.eigvalsh(np.asarray(G, dtype=np.float64))[-1])

    flatnonzero = staticmethod(np.flatnonzero)

    @staticmethod
    def amax(a, axis: int):
        """Maximum along ``axis`` (values only)."""
        return np.max(a, axis=axis)

    # ------------------------------------------- NNLS kernels (torch: on the device)
    hals_sweep = staticmethod(_numpy_kernels.hals_sweep)
    hals_sweep_violation = staticmethod(_numpy_kernels.hals_sweep_violation)
    solve_passive = staticmethod(_numpy_kernels.solve_passive)

    @staticmethod
    def projected_gradient_sum(F, G, R, l1: float, l2: float, rows, *, host) -> float:
        """Σ |projected gradient| of the HALS subproblem ½⟨F, GF⟩ − ⟨R, F⟩ + l1·ΣF + ½ l2‖F‖²
        at F (k, N) over the components ``rows`` (None: all), a float: numpy's is ``host``
        (cd's compiled pass over F's memory order, passed in); torch's array operations on
        the device and one host read."""
        return host(F, G, R, l1, l2, rows)

    @staticmethod
    def kl_half_steps(X, dtype, options: dict, *, host):
        """KL coordinate descent's half-step ``half(which, F, B, l1, l2, frozen, order, warm,
        newton_steps)`` for X on this backend: numpy's is ``host()`` (cd's compiled host
        kernels on a CSR copy of X, passed in); torch's vectorised sweeps on the device
        (``_torch_kl.TorchKL``)."""
        return host()

    @staticmethod
    def index_range(n: int, like):
        """0..n−1 as int64 indices, on ``like``'s device (torch: whatever the backend's own
        device setting, so that kernels handed tensors work wherever those tensors live)."""
        return np.arange(n, dtype=np.int64)

    @staticmethod
    def sampled_dot_sddmm(W, H, X):
        """:meth:`sampled_dot` (the torch backend has a faster SDDMM kernel under this name)."""
        return NumpyBackend.sampled_dot(W, H, X)


def _sq_norm(a, run) -> float:
    """``NumpyBackend.sq_norm``, computed (float64 accumulation; a float32 X widened through
    einsum's small casting buffer, never as a whole)."""
    data = a.data if sp.issparse(a) else np.asarray(a).reshape(-1)

    def part(lo, hi):
        d = data[lo:hi]
        if d.dtype == np.float64:
            return float(np.dot(d, d))
        return float(np.einsum("i,i->", d, d, dtype=np.float64))
    if run is None or data.size < 1 << 22:
        return part(0, data.size)
    # the host's threads (``run``: parts → their values, passed in by the solvers): two
    # halves of the dense benchmark's float32 X, 17 → 8.6 ms; summed in order
    return float(sum(run(part, data.size)))
