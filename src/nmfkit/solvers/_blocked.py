"""Extrapolated HALS in little memory, by blocks of columns ("cd" with ``extrapolate``).

Memory is the reason for this module (the sparse-memory workload of docs/benchmarks.md:
peak ≤ 1.5 × (X + W, H)).
Ang & Gillis's extrapolation with restart as first written (``_extrapolation``, still used by
anls and pgd) holds two full copies of the factors, because a restart redoes the iteration
from the current point, and the whole cross product WᵀX (k, n_features): on the wide TF-IDF
matrix at k=50 that was 54 MiB on top of a 13 MiB X, against a budget of 49 MiB in all.

The same iteration, here: W ← HALS from Ŵ = max(W + β·D_W, 0) against Ĥ = max(H + β·D_H, 0),
then H ← HALS from Ĥ against the new W, where D = F − F_prev is the last step taken; the
iteration is kept when the objective did not increase, else redone from the current point
without extrapolation, and β adapts (×γ capped after a success, ÷η after a failure). What
changes is what is stored:

* the steps D are kept in float32 (half the factors' bytes) and the factors are updated in
  place; on a restart the current point is restored as F − D. D is a search direction, so
  its rounding only perturbs the extrapolated start; the restored point differs from the
  current one by float32 rounding of the *step*, which vanishes as the steps do (no floor
  on the reachable accuracy: exact low-rank data is still recovered to 1e-15);
* each half-iteration runs over blocks of columns of the factor (samples for W, features
  for H; ``block_columns``, default ~1 MiB per (k, block) buffer), whose HALS subproblems are
  independent: each block gets only its slice of the cross product. For sparse X, Wᵀ X[:, b]
  comes from a compiled kernel that walks each CSR row with a cursor (all blocks together
  read X once, no copy), and X Ĥᵀ for a block of rows from a kernel that forms Ĥ entry by
  entry, never stored; Ĥ Ĥᵀ is summed over feature blocks. Without numba the same blocks
  come from scipy's slices of X (a copy of one block of X at a time; slower, the same
  memory). For dense X or torch (one block: a dense X dwarfs the
  factors; GPUs want few kernels), Ĥ is formed whole and the products come from BLAS / torch.

Measured (docs/benchmarks.md, sparse-memory workload, tf-idf 11314×39116, 1.0M non-zeros): k=50 peak RSS
67.4 → 45.5 MiB, k=10 25.3 → 23.1 MiB; iterations to scikit-learn's objective unchanged
(dense 12, TF-IDF 44 / 31, ORL faces 46).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import scipy.sparse as sp

from ._threads import blas_single, n_threads, run_parts, split_even, split_weighted

__all__ = ["BlockedExtrapolation", "colblock_cross", "compile_kernels", "csr_dot", "csr_tdot",
           "row_cross"]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
_BLOCK_BYTES = 1 << 20  # one (k, block) float64 buffer: 1 MiB
_SMALL_BYTES = 1 << 20  # an extrapolated H this small is formed whole (scipy's faster product)
_KERNELS = {}
# non-zeros × k below which a sparse product stays on one thread (a hand-over: 30–60 µs)
_MIN_SPLIT_WORK = 1 << 17
# entries of a factor below which its elementwise passes (extrapolation, step) stay on one
# thread, and k²·N below which its Gram F Fᵀ does (ORL faces' H, 49×10304: 505K entries, the
# passes 0.86 ms on one thread; its Gram 0.75 ms, by two column ranges 0.53 ms)
_MIN_SPLIT_ENTRIES = 1 << 18
_MIN_SPLIT_GRAM = 1 << 22


def _colblock_py(indptr, indices, data, W, c0, c1, cursor, out, r0, r1):
    """out[:c1-c0] = X[r0:r1, c0:c1]ᵀ W for CSR X with sorted indices; cursor[i] (the first
    entry of row i not yet consumed) advances, so consecutive blocks scan X once in all."""
    k = W.shape[1]
    out[: c1 - c0, :] = 0.0
    for i in range(r0, r1):
        p = cursor[i]
        e = indptr[i + 1]
        while p < e:
            c = indices[p]
            if c >= c1:
                break
            x = data[p]
            for s in range(k):
                out[c - c0, s] += x * W[i, s]
            p += 1
        cursor[i] = p


def _rowblock_extrap_py(indptr, indices, data, Ht, Dt, beta, r0, r1, out):
    """out[:r1-r0] = X[r0:r1] Ĥᵀ with Ĥᵀ = max(Hᵀ + β·Dᵀ, 0) formed entry by entry (never
    stored): Ht (m, k) and Dt (m, k) row-major."""
    out[: r1 - r0, :] = 0.0
    for i in range(r0, r1):
        o = out[i - r0]
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            x = data[p]
            hr = Ht[c]
            dr = Dt[c]
            for s in range(hr.shape[0]):
                o[s] += x * max(hr[s] + beta * dr[s], 0.0)


def _kernel(name):
    if name not in _KERNELS:
        import numba

        py = {"col": _colblock_py, "row": _rowblock_extrap_py, "x": _extrap_py,
              "xsave": _extrap_save_py}[name]
        # the extrapolation passes without fastmath: numpy's rounding exactly
        fast = name in ("col", "row")
        _KERNELS[name] = numba.njit(cache=True, nogil=True, fastmath=fast)(py)
    return _KERNELS[name]


def compile_kernels() -> bool:
    """Compile (or load from numba's cache) this module's kernels now, for float32 and float64,
    rather than inside the first large fit; False without numba. Benchmarks call it so that
    a one-off JIT cost is not counted as the solver's time or memory."""
    if not HAVE_NUMBA:
        return False
    X = sp.random(4, 6, density=0.5, format="csr", random_state=0)
    for dt in (np.float64, np.float32):
        Xd = X.astype(dt)
        W = np.ones((4, 2), dt)
        colblock_cross(Xd, W, 0, 3, Xd.indptr[:-1].copy(), np.empty((3, 2), dt), True)
        Ht, Dt = np.ones((6, 2), dt), np.zeros((6, 2), np.float32)
        _kernel("row")(Xd.indptr, Xd.indices, Xd.data, Ht, Dt, 0.5, 0, 4, np.empty((4, 2), dt))
        f, d = np.ones(4, dt), np.zeros(4, np.float32)
        _kernel("x")(f, d, dt(0.5), np.empty(4, dt))
        _kernel("xsave")(f, d, dt(0.5), np.empty(4, dt))
        # the sweeps for each layout of the factor and of the cross product (a split dense
        # product returns a transposed, F-ordered one): a benchmark's warm-up fit on a small
        # slice of X takes other paths than the fit itself, whose first call compiled
        # (about a second) inside the timed fit
        from ._hals_kernel import hals_inner_sweeps

        for fo in ("C", "F"):
            for ro in ("C", "F"):
                F, R = np.ones((2, 3), dt, order=fo), np.ones((2, 3), dt, order=ro)
                hals_inner_sweeps(F, np.eye(2, dtype=dt), R, 0.0, 0.0, None, 2, 0.1)
    return True


def colblock_cross(X, W, c0: int, c1: int, cursor, out, compiled: bool, rows=None):
    """(X[:, c0:c1]ᵀ W)ᵀ, shape (k, c1 − c0), for CSR X (n, m) and W (n, k).

    ``compiled``: the numba kernel (X's indices sorted, ``cursor`` = a copy of
    ``X.indptr[:-1]`` before the first block, blocks in increasing order; ``out`` a
    (block, k) buffer whose first rows are returned, transposed); else scipy's column slice.
    ``rows``: ranges of rows [(r0, r1), ...] computed at the same time on host threads, each
    into its own buffer (``out`` then a list of buffers, one per range), the partial sums
    added in range order: the same numbers for the same ranges, whatever the threads (two
    ranges round differently from one). Splitting the block's columns instead kept one
    thread's numbers but each thread read all of X: 4.7 ms on two threads against 5.8 on
    one for the TF-IDF matrix, k=10.
    """
    if compiled:
        kern = _kernel("col")
        if rows is None:
            kern(X.indptr, X.indices, X.data, W, c0, c1, cursor, out, 0, X.shape[0])
            return out[: c1 - c0].T
        run_parts(kern, [(X.indptr, X.indices, X.data, W, c0, c1, cursor, o, r0, r1)
                         for (r0, r1), o in zip(rows, out)])
        acc = out[0][: c1 - c0]
        for o in out[1:]:
            acc += o[: c1 - c0]
        return acc.T
    return np.asarray(X[:, c0:c1].T @ W).T


def csr_dot(X, B):
    """X @ B (dense (n, k)) for a CSR X with scipy's product, by ranges of rows of about equal
    non-zeros computed at the same time on host threads (scipy's sparse products release the
    GIL; each range is a view of X, no copy): the same numbers as ``X @ B``, the rows'
    products being independent. Split only within ``kernel_threads()`` (as the other
    products and the sweeps: ``_threads``). Measured on the TF-IDF benchmark matrix (1.14M non-zeros,
    k=10): 4.6 ms on one thread, 2.7 ms on two."""
    parts = n_threads() if X.nnz * B.shape[1] >= _MIN_SPLIT_WORK and blas_single() else 1
    if parts == 1:
        return np.asarray(X @ B)
    ip = X.indptr
    dtype = np.result_type(X.dtype, B.dtype)
    matvecs = _csr_matvecs()
    if matvecs is not None and B.dtype == dtype and X.dtype == dtype:
        # scipy's own kernel, each range straight into its rows of the result: no temporary
        # beyond the (n, k) result (the sparse-memory workload's peak)
        out = np.zeros((X.shape[0], B.shape[1]), dtype=dtype)
        Bc = np.ascontiguousarray(B)

        def into(r0, r1):
            a = ip[r0]
            matvecs(r1 - r0, X.shape[1], Bc.shape[1], ip[r0:r1 + 1] - a, X.indices[a:ip[r1]],
                    X.data[a:ip[r1]], Bc.ravel(), out[r0:r1].ravel())
        run_parts(into, split_weighted(ip, parts))
        return out

    def rows(r0, r1):
        a, b = ip[r0], ip[r1]
        # the rows as views: scipy's constructor copies a slice of a much larger array
        # (its _prune_array), which cost the sparse-memory workload 7 MiB of peak RSS
        Xr = sp.csr_matrix((r1 - r0, X.shape[1]), dtype=X.dtype)
        Xr.indptr, Xr.indices, Xr.data = ip[r0:r1 + 1] - a, X.indices[a:b], X.data[a:b]
        return np.asarray(Xr @ B)
    return np.concatenate(run_parts(rows, split_weighted(ip, parts)))


def csr_tdot(X, Q, block: int = 8192):
    """Xᵀ @ Q (dense (m, l)) for a CSR X with sorted indices and a dense Q (n, l): by blocks of
    X's columns with the compiled cursor kernel (``colblock_cross``), X's rows split over the
    kernels' threads within ``kernel_threads()``, each range into its own (block, l) buffer,
    summed in range order: no transposed copy of X and no per-thread (m, l) output. Used by
    the default start's randomized SVD (``nmfkit.init.randomized_svd_with``)."""
    n, m = X.shape
    Q = np.ascontiguousarray(Q)
    out = np.empty((m, Q.shape[1]), dtype=np.result_type(X.dtype, Q.dtype))
    parts = n_threads() if X.nnz * Q.shape[1] >= _MIN_SPLIT_WORK and blas_single() else 1
    rows = split_weighted(X.indptr, parts) if parts > 1 else None
    B = max(1, min(block, m))
    bufs = [np.empty((B, Q.shape[1]), dtype=out.dtype) for _ in (rows or [0])]
    cursor = X.indptr[:-1].copy()
    for c0 in range(0, m, B):
        c1 = min(m, c0 + B)
        out[c0:c1] = colblock_cross(X, Q, c0, c1, cursor, bufs if rows else bufs[0], True,
                                    rows).T
    return out


def _csr_matvecs():
    """scipy's compiled CSR × dense kernel (``csr_matvecs``: Y += A X, the one behind
    ``X @ B``; it releases the GIL), or None where this scipy lacks it."""
    try:
        from scipy.sparse._sparsetools import csr_matvecs
    except ImportError:
        return None
    return csr_matvecs


def row_cross(X, Ht, Dt, beta: float, r0: int, r1: int, out):
    """out[:r1 − r0] = X[r0:r1] Ĥᵀ, Ĥᵀ = max(Hᵀ + β·Dᵀ, 0) (the compiled row kernel), its rows
    split in ranges of about equal non-zeros computed at the same time on host threads (each
    row as by one thread: the same numbers); returns that (r1 − r0, k) slice of ``out``."""
    kern = _kernel("row")
    ip = X.indptr
    parts = 1
    if (ip[r1] - ip[r0]) * Ht.shape[1] >= _MIN_SPLIT_WORK and blas_single():
        parts = n_threads()
    ranges = [(0, r1 - r0)] if parts == 1 else split_weighted(ip[r0:r1 + 1], parts)
    run_parts(kern, [(ip, X.indices, X.data, Ht, Dt, beta, r0 + a, r0 + b, out[a:])
                     for a, b in ranges])
    return out[: r1 - r0]


def _extrap_py(F, D, beta, out):
    """out = max(β·D + F, 0) over flat arrays, β·D in F's precision (numpy's arithmetic)."""
    for i in range(F.shape[0]):
        v = beta * D[i] + F[i]
        out[i] = v if v > 0 else 0.0


def _extrap_save_py(F, D, beta, save):
    """save = F, then F = max(β·D + F, 0), in one pass over flat arrays."""
    for i in range(F.shape[0]):
        f = F[i]
        save[i] = f
        v = beta * D[i] + f
        F[i] = v if v > 0 else 0.0


def _split_parts(size: int, threshold: int) -> int:
    """Threads an elementwise pass or a Gram over ``size`` units is split over: all of
    ``kernel_threads()``'s when BLAS is held at one thread there (only a host step holds
    it: cd's ``step``) and the work is worth it; else 1."""
    return n_threads() if size >= threshold and blas_single() else 1


def _elementwise(fn, flat):
    """fn(*views) over flat arrays of one length, in contiguous ranges on host threads when
    worth it: elementwise, so the same numbers as one call."""
    parts = _split_parts(flat[0].shape[0], _MIN_SPLIT_ENTRIES)
    if parts == 1:
        fn(*flat)
        return
    run_parts(lambda a, b: fn(*[x[a:b] for x in flat]), split_even(flat[0].shape[0], parts, 64))


def _gram(F):
    """F Fᵀ for a (k, N) F; within ``kernel_threads()`` when k²·N is large, by two (or more)
    ranges of columns on host threads, summed in order (BLAS is held at one thread there:
    one product would leave the other core idle). The sum rounds differently from one
    product (ORL faces' H: to 2e-12 of 2e3), symmetric as each part is."""
    k, N = F.shape
    parts = _split_parts(k * k * N, _MIN_SPLIT_GRAM)
    if parts == 1:
        return F @ F.T
    out = run_parts(lambda a, b: F[:, a:b] @ F[:, a:b].T, split_even(N, parts, 8))
    acc = out[0]
    for o in out[1:]:
        acc += o
    return acc


def _subtract(nx, a, b, out):
    """out ← a − b rounded to out's dtype (the step D), in ranges on host threads when worth it
    (numpy's loop releases the GIL; elementwise: the same numbers)."""
    parts = _split_parts(out.shape[0] * out.shape[1], _MIN_SPLIT_ENTRIES)
    flat = _flat(a, b, out) if parts > 1 else None  # > 1 only in a host step
    if flat is None:
        nx.subtract(a, b, out=out)
        return
    _elementwise(lambda x, y, o: np.subtract(x, y, out=o, casting="same_kind"), flat)


def _flat(*arrays):
    """Flat views of arrays that are all C- or all F-contiguous with one shape, else None."""
    shape = arrays[0].shape
    for order, flag in (("C", "c_contiguous"), ("F", "f_contiguous")):
        if all(a.shape == shape and getattr(a.flags, flag) for a in arrays):
            return [a.reshape(-1, order=order) for a in arrays]
    return None


def _extrapolated(nx, F, D, beta: float, out=None, save=None, compiled=None):
    """max(F + β·D, 0) with β·D in F's precision (the same numbers on every path and
    backend), into ``out`` (not F) when given: no temporary. With ``save`` (then ``out`` is
    F): save ← F first. On host arrays of one memory order with numba, one compiled pass
    (the same arithmetic; numpy's three passes and a copy cost 1.4 ms on the ORL faces' H,
    49×10304 float64); else numpy's. ``compiled``: the fit's own choice (None: the backend's
    capability)."""
    if nx.compiled_kernels if compiled is None else compiled:
        b = F.dtype.type(beta)
        if save is not None:
            flat = _flat(F, D, save)
            if flat is not None and out is F:
                kern = _kernel("xsave")
                _elementwise(lambda f, d, sv: kern(f, d, b, sv), flat)
                return F
        else:
            if out is None:
                out = np.empty_like(F)
            flat = _flat(F, D, out)
            if flat is not None:
                kern = _kernel("x")
                _elementwise(lambda f, d, o: kern(f, d, b, o), flat)
                return out
    if save is not None:
        save[...] = F
        F = save
    out = nx.scaled(D, beta, F.dtype, out=out)
    out += F
    return nx.clip_min(out, 0, out=out)


class BlockedExtrapolation:
    """Mixin for CoordinateDescent (Frobenius): ``_blocked_step()`` is one outer iteration.

    Needs from the host: ``self.p``, ``self.Wt`` / ``self.Hc`` (k, N) factors,
    ``self._cross_W`` / ``self._cross_H`` (whole products), ``self._n_sweeps(k, N)``,
    ``self._run_sweeps(F, G, R, l1, l2, order, n_sweeps)`` (``order()`` → component
    order), ``self._order``, l1/l2 weights, and the options ``eta``, ``gamma``,
    ``block_columns``. β and the current objective are the Extrapolation mixin's state
    (``_beta``, ``_beta_max``, ``_f``: the host calls ``_init_extrapolation`` first).
    """

    def _init_blocked(self):
        self._D = None  # (DW, DH): the last steps taken, float32, in the factors' layout

    def _reset_blocked(self):
        self._D = self._f = None

    def _block_columns(self, k: int, N: int, half: bool = False) -> int:
        B = self.options.get("block_columns")
        if B is None:
            # blocks of ~1 MiB for sparse X in the sample-major layout (a block of columns is
            # a block of memory); one block otherwise: a dense X dwarfs the factors, and a
            # device (its factors component-major) wants few kernels
            if not self.sample_major(self.p):
                return N
            B = max(512, _BLOCK_BYTES // (8 * max(k, 1)))
        if half:
            B = max(1, -(-int(B) // 2))
        B = max(1, min(int(B), N))
        B = -(-N // -(-N // B))  # balanced blocks
        return min(N, -(-B // 128) * 128) if B > 128 else B

    def _compiled_products(self) -> bool:
        p = self.p
        return (self._compiled
                and p.sparse and p.X.has_sorted_indices and self.sample_major(p))

    # ------------------------------------------------------------------ cross products
    def _w_products(self, beta, B):
        """(Ĥ Ĥᵀ, (r0, r1) → (X Ĥᵀ)ᵀ[:, r0:r1]) with Ĥ = max(H + β·D_H, 0)."""
        p, nx = self.p, self.p.nx
        Hc, DH = self.Hc, self._D[1]
        k, m = Hc.shape
        n = self.Wt.shape[1]
        lean = (p.sparse and self.sample_major(p) and B < n  # sample-major: host memory
                and Hc.size * Hc.itemsize > _SMALL_BYTES)
        R0, self._R0 = getattr(self, "_R0", None), None  # X Hᵀ of the starting objective
        if not lean:
            Hh = _extrapolated(nx, Hc, DH, beta, compiled=self._compiled) if beta else Hc
            R = R0[1] if R0 is not None and not beta and R0[0] is Hc else self._cross_W(Hh)
            GE = _gram(Hh)
            return GE, (lambda r0, r1: R) if B >= n else (lambda r0, r1: R[:, r0:r1])
        # sparse X: Ĥ is never stored whole. Its Gram by blocks of features; X Ĥᵀ by blocks
        # of rows, from the compiled kernel (Ĥ formed entry by entry; β = 0: Ĥ = H exactly,
        # as H ≥ 0 and D is finite) or, without it, from scipy's slices of the block's rows
        # by blocks of features (Ĥ's block formed again for each block of rows)
        compiled = self._compiled_products()

        def h_block(c0):
            if not beta:
                return Hc[:, c0:c0 + B]
            return _extrapolated(nx, Hc[:, c0:c0 + B], DH[:, c0:c0 + B], beta,
                                 compiled=self._compiled)

        GE = Hc @ Hc.T if not beta else None
        for c0 in range(0, m, B) if beta else ():
            Hb = h_block(c0)
            GE = Hb @ Hb.T if GE is None else GE + Hb @ Hb.T
        X = p.X
        if not compiled:
            def cross(r0, r1):
                Xr, out = X[r0:r1], None
                for c0 in range(0, m, B):
                    Rb = np.asarray(Xr[:, c0:c0 + B] @ h_block(c0).T)
                    if out is None:
                        out = Rb
                    else:
                        out += Rb
                return out.T
            return GE, cross
        out = np.empty((B, k), dtype=Hc.dtype)
        Ht, Dt = Hc.T, DH.T

        def cross(r0, r1):
            return row_cross(X, Ht, Dt, beta, r0, r1, out).T
        return GE, cross

    def _h_products(self, B):
        """(c0, c1) → (Wᵀ X)[:, c0:c1] for the current W."""
        p = self.p
        m = self.Hc.shape[1]
        if B >= m:
            return lambda c0, c1: self._cross_H(self.Wt)
        if not p.sparse:
            return lambda c0, c1: self.Wt @ p.X[:, c0:c1]
        if not self.sample_major(p):  # a device's sparse X (no column slices): one product
            R = self._cross_H(self.Wt)
            return lambda c0, c1: R[:, c0:c1]
        X, W = p.X, self.Wt.T  # (n, k), C-contiguous in the sample-major layout
        compiled = self._compiled_products()
        cursor = X.indptr[:-1].copy() if compiled else None
        out = np.empty((B, W.shape[1]), dtype=W.dtype) if compiled else None
        parts = self._h_parts(B)
        if parts == 1:
            return lambda c0, c1: colblock_cross(X, W, c0, c1, cursor, out, compiled)
        rows = split_weighted(X.indptr, parts)
        outs = [out] + [np.empty_like(out) for _ in rows[1:]]
        return lambda c0, c1: colblock_cross(X, W, c0, c1, cursor, outs, compiled, rows)

    def _h_parts(self, B) -> int:
        """Ranges of rows the sparse Wᵀ X is split in (1 or 2): two within
        ``kernel_threads()`` when the product is worth it. Each range has its own (block, k)
        buffer, so two ranges run on half-size blocks (``_one``): the buffers' bytes, and
        the sparse-memory workload's peak, stay those of one."""
        p = self.p
        m = self.Hc.shape[1]
        if B >= m or not p.sparse or not self._compiled_products() or not blas_single():
            return 1
        if p.nx.sparse_data(p.X).shape[0] * self.Wt.shape[0] * B < _MIN_SPLIT_WORK * m:
            return 1
        return min(2, n_threads())

    # ------------------------------------------------------------------ one iteration
    def _sweep_blocks(self, F, D, G, cross, B, l1, l2, frozen, beta):
        """F ← HALS sweeps from max(F + β·D, 0), block by block; D ← the step taken.
        Returns (F Fᵀ, ⟨R, F⟩)."""
        nx = self.p.nx
        k, N = F.shape
        n_sw = self._n_sweeps(k, N)
        order_ = self._order(k, frozen)

        def order():
            return order_
        gram, crs = None, 0.0
        for c0 in range(0, N, B):
            c1 = min(N, c0 + B)
            whole = c0 == 0 and c1 == N
            Fb = F if whole else F[:, c0:c1]
            Db = D if whole else D[:, c0:c1]
            R = cross(c0, c1)
            if beta:  # Fb ← max(save + β·Db, 0), in Fb's memory; frozen rows have D = 0
                save = nx.empty_like(Fb)
                _extrapolated(nx, Fb, Db, beta, out=Fb, save=save, compiled=self._compiled)
            else:
                save = nx.copy(Fb)
            self._run_sweeps(Fb, G, R, l1, l2, order, n_sw, compiled_single=True)
            _subtract(nx, Fb, save, Db)  # the step taken, rounded to D's float32
            del save
            S = _gram(Fb)
            gram = S if gram is None else gram + S
            crs += nx.vdot(R, Fb)
        return gram, crs

    def _one(self, beta):
        """One outer iteration (W then H) from the extrapolated point; (WᵀW, HHᵀ, ⟨WᵀX, H⟩)."""
        p = self.p
        DW, DH = self._D
        k, n = self.Wt.shape
        m = self.Hc.shape[1]
        Bw, Bh = self._block_columns(k, n), self._block_columns(k, m)
        if self._h_parts(Bh) > 1:  # two (block, k) buffers of Wᵀ X: half-size blocks, the
            Bh = self._block_columns(k, m, half=True)  # same bytes (peak memory)
        GE, cross = self._w_products(beta, Bw)
        GW, _ = self._sweep_blocks(self.Wt, DW, GE, cross, Bw, self.l1W, self.l2W, p.frozen_W,
                                   beta)
        del cross
        GH, crs = self._sweep_blocks(self.Hc, DH, GW, self._h_products(Bh), Bh, self.l1H,
                                     self.l2H, p.frozen_H, beta)
        return GW, GH, crs

    def _blocked_step(self):
        nx, o = self.p.nx, self.options
        if self._D is None:  # in the factors' layout: a block of D is a block of memory
            self._D = tuple(nx.zeros_as(F, np.float32) for F in (self.Wt, self.Hc))
        beta = self._beta if self._f is not None else 0.0
        GW, GH, crs = self._one(beta)
        f = self._frobenius_objective(crs, nx.vdot(GW, GH), self.Wt.T, self.Hc)
        if beta:
            if f <= self._f:  # extrapolation paid: bolder next time
                self._beta = min(self._beta_max, beta * o["gamma"])
            else:  # restart from the current point without extrapolation
                self._beta_max = beta
                self._beta = beta / o["eta"]
                for F, D in ((self.Wt, self._D[0]), (self.Hc, self._D[1])):
                    F -= D  # the current point, restored from the step just taken
                    nx.clip_min(F, 0, out=F)
                GW, GH, crs = self._one(0.0)
                f = self._frobenius_objective(crs, nx.vdot(GW, GH), self.Wt.T, self.Hc)
        self._f = f
        return f
