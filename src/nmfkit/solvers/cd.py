"""Coordinate descent: accelerated HALS for the Frobenius loss, Newton CD for KL.

**Frobenius** (β = 2). Each outer iteration updates W, then H, each by exact block
coordinate descent over the k components (HALS; Cichocki & Phan 2009; scikit-learn's
``solver="cd"`` performs the same updates element by element). The Gram products cost
O(nnz·k) (sparse X, never densified) or O(n·m·k) through BLAS; one sweep costs only
O(N·k²). Two accelerations, off by default so that ``solver="cd"`` follows scikit-learn's
trajectory closely enough for its own test-suite (float32 ≈ float64 and dense == sparse to
1e-4 after 200 iterations: the restart decisions and the cost model below would break those
ties); ``solver="auto"`` turns both on, as does ``solver_options``:

* ``inner`` — repeated sweeps (Gillis & Glineur 2012): after the products are formed, repeat
  the sweep up to ⌊1 + α·ρ⌋ times (``alpha`` = 0.5, capped at ``max_inner``), stopping once a
  sweep moves the factor by less than ``delta`` (0.02) times the first sweep's move. ρ is the
  time of the products over the time of one sweep, from flop counts weighted by the time a
  flop takes (``sweep_cost``: measured on the 2-core benchmark machine, BLAS products ran at
  70–85 GFlop/s, the compiled sweep at 15–30, scipy's sparse products at 3–5: weight 2 for
  dense X; for sparse X the weight 1 was as fast as 0.3 on the TF-IDF benchmark). δ = 0.02
  and these weights were chosen on the dense, sparse TF-IDF and ORL-faces workloads of
  docs/benchmarks.md (δ = 0.1: dense 18 iterations to scikit-learn's objective, faces 52;
  δ = 0.02: 12 and 46, in less CPU time).
  Every sweep is exact block minimisation, so this stays monotone. With numba the sweeps run
  by blocks of 128 columns in a compiled, vectorised kernel (``_hals_kernel``: same sweep,
  per-block stop).
* ``extrapolate`` — extrapolation with restart (Ang & Gillis 2019, ``_extrapolation``): the
  next iteration starts from W + β(W − W_prev), H + β(H − H_prev), projected on ≥ 0, with β
  adapted; an iteration that would increase the objective is redone from the current point
  without extrapolation (restart), so the reported objective never increases. With L1/L2
  penalties only (the usual case) it runs in ``_blocked``: steps kept in float32, factors
  updated in place by blocks of columns, so the fit holds no second copy of W and H nor a
  whole WᵀX (peak memory); with other penalties (a graph) in ``_extrapolation``.

Threads (host arrays): each accelerated Frobenius step runs in ``_threads.kernel_threads()``
— BLAS held at one thread, the compiled sweeps, the sparse products and (above 4M
multiply-adds) the dense products split over a pool of host threads that sleep between calls.
OpenBLAS's own idle threads spin after each call and took the core a second kernel thread
needed; one BLAS thread per part leaves nothing spinning (docs/benchmarks.md, round 10).
The KL kernels split their rows over the same threads.

**Kullback–Leibler** (β = 1): cyclic coordinate descent with safeguarded Newton steps on each
variable (Hsieh & Dhillon 2011), O(nnz·k) per sweep, monotone; see ``_kl_kernels``. A dense
X is converted once to CSR for this loss (its zeros only enter through Σ WH). The first
``mu_warmup`` iterations (default 5) are multiplicative updates, also monotone and O(nnz·k):
from a start far from any solution, the first Newton sweep sets many entries to exactly zero
and the descent then settles in a poorer stationary point (measured on the KL word-count benchmark
corpus: 473133 after 60 CD iterations, 469667 with 5 MU iterations first).
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from .._threads import SMALL_WORK
from ..nnls import hals_sweep
from ..penalties import split_hals
from ._base import ComponentMajorSolver, register_solver
from ._blocked import BlockedExtrapolation, csr_dot
from ._extrapolation import EXTRAPOLATION_OPTIONS, Extrapolation
from ._hals_kernel import hals_inner_sweeps
from ._kl_kernels import HAVE_NUMBA, kl_cd_update, kl_mu_numerator
from ._threads import blas_single, kernel_threads, matmul_cols, matmul_rows, n_threads

__all__ = ["CoordinateDescent"]

# time of a flop of the compiled sweep relative to a flop of the products with X (see _sweeps)
_SWEEP_COST_DENSE = 2.0
_SWEEP_COST_SPARSE = 1.0

# products' multiply-adds (nnz or n·m, times k) below which a step's dense products are not
# split over the kernels' threads (the hand-overs would cost more than they save on a problem
# the size of scikit-learn's digits). Every step still holds BLAS at one thread: small
# products gain nothing from a second one, and under load OpenBLAS's two threads waited on
# each other (the digits' default fit, load 1.3: 0.19 s with BLAS's two threads, 0.06 s on one)
_THREADED_WORK = 1 << 22
# a dense product's second form (Xᵀ Fᵀ)ᵀ is kept only when its trial ran this much faster
# than F X's: the two forms round differently, so a near-tie decided by the clock would
# make one fit's iterates differ from run to run (the dense benchmark's H-side forms are
# within 10% of each other; its W-side and the ORL faces' differ by 30–45%)
_FORM_MARGIN = 0.85
# the form picked for each dense product (shape, layout, dtype, threads) in this process
_FORMS: dict = {}
_TRACE = None  # a list to record (N, sweeps allowed, mean sweeps done) per call (diagnostics)
_PG_KERNEL = None


def _pg_sum_py(P, R, F, l1, l2, rows):
    """Σ |projected gradient| over the rows ``rows`` of F (k, N), with the gradient
    P − R + l1 + l2·F (P = G F): the gradient where F > 0, min(0, gradient) where F = 0.
    Walks F in its memory order (component-major C, or sample-major F)."""
    acc = 0.0
    N = F.shape[1]
    if F.strides[0] >= F.strides[1]:
        for i in range(rows.shape[0]):
            s = rows[i]
            for j in range(N):
                f = F[s, j]
                g = P[s, j] - R[s, j] + l1 + l2 * f
                if f <= 0.0 and g > 0.0:
                    g = 0.0
                acc += abs(g)
    else:
        for j in range(N):
            for i in range(rows.shape[0]):
                s = rows[i]
                f = F[s, j]
                g = P[s, j] - R[s, j] + l1 + l2 * f
                if f <= 0.0 and g > 0.0:
                    g = 0.0
                acc += abs(g)
    return acc


def projected_gradient_l1(F, G, R, l1: float = 0.0, l2: float = 0.0, rows=None,
                          nx=None, compiled: bool = True) -> float:
    """Σ |P[∇]| of the HALS subproblem ½⟨F, GF⟩ − ⟨R, F⟩ + l1·ΣF + ½ l2‖F‖² at F (k, N), over
    the components ``rows`` (default all): scikit-learn's CD violation measured at one point
    (all coordinates at F) instead of coordinate by coordinate along a sweep.
    The product G F runs in BLAS (k²·N flops, about one sweep's worth); the rest is one
    compiled pass over F on the host (numpy without numba): ``_pg_host``, which the backend
    ``nx`` runs on its arrays (a device's: array operations and one host read).
    ``compiled=False``: numpy's pass even with numba installed (a small fit's)."""
    host = _pg_host if compiled else _pg_numpy
    if nx is not None:
        return nx.projected_gradient_sum(F, G, R, l1, l2, rows, host=host)
    return host(F, G, R, l1, l2, rows)


def _pg_numpy(F, G, R, l1: float, l2: float, rows) -> float:
    """:func:`projected_gradient_l1` on host arrays, by numpy (numba not imported)."""
    return _pg_host(F, G, R, l1, l2, rows, compiled=False)


def _pg_host(F, G, R, l1: float, l2: float, rows, compiled: bool = True) -> float:
    """:func:`projected_gradient_l1` on host arrays."""
    global _PG_KERNEL
    every = rows is None
    rows = np.arange(F.shape[0]) if every else np.asarray(rows, dtype=np.int64)
    # G F in F's memory order (G is symmetric): the pass below reads P, R and F together
    P = G @ F if F.strides[0] >= F.strides[1] else (F.T @ G).T
    if HAVE_NUMBA and compiled:
        if _PG_KERNEL is None:
            import numba

            _PG_KERNEL = numba.njit(cache=True, nogil=True)(_pg_sum_py)
        return float(_PG_KERNEL(P, R, F, F.dtype.type(l1), F.dtype.type(l2), rows))
    sel = slice(None) if every else rows  # every component: views, no gathered copies
    Fr = F[sel]
    Pr = P[sel] - R[sel]
    if l1:
        Pr += l1
    if l2:
        Pr += l2 * Fr
    np.minimum(Pr, 0.0, out=Pr, where=Fr <= 0)
    return float(np.abs(Pr).sum(dtype=np.float64))


@register_solver
class CoordinateDescent(BlockedExtrapolation, Extrapolation, ComponentMajorSolver):
    name = "cd"
    betas = (2.0, 1.0)
    sparse = True
    monotone = True
    supports_frozen = True
    shuffles = True
    # torch: the Frobenius path runs on torch tensors too — keep its array calls on
    # ``p.nx`` (ascontiguous/copy/empty_like/clip_min/vdot) and pass nx to hals_sweep
    backends = frozenset({"numpy", "torch"})
    default_options = {
        "inner": False,  # Gillis & Glineur repeated sweeps (Frobenius)
        "alpha": 0.5,
        "delta": 0.02,
        "max_inner": 50,
        "sweep_cost": None,  # time per sweep flop / time per product flop (None: 2 dense, 1 sparse)
        **EXTRAPOLATION_OPTIONS,  # Ang & Gillis extrapolation with restart (Frobenius)
        "extrapolate": False,
        "block_columns": None,  # extrapolation by blocks of columns (None: ~1 MiB blocks)
        "newton_steps": 1,  # KL: Newton steps per variable per sweep
        "mu_warmup": 5,  # KL: multiplicative updates before the Newton sweeps
        # KL and inner sweeps: "auto" (numba when installed; numpy for a small Frobenius
        # fit, see setup), "numba" or "numpy"
        "kernel": "auto",
        # Frobenius: None (plain HALS: scikit-learn's violation rule; with ``inner`` or
        # ``extrapolate``: the error rule) or "violation" / "error" (``nmfkit._fit``); a graph
        # penalty or frozen components keep the error rule with the accelerations
        "stop_rule": None,
    }

    @classmethod
    def supports_penalty(cls, pen, beta: float | None = None) -> bool:
        """Frobenius HALS takes every penalty with HALS terms; the KL Newton kernel only the
        separable L1/L2 ones."""
        from ..penalties import has_hals_form

        if beta is not None and float(beta) == 1.0:
            return has_hals_form(pen)
        return super().supports_penalty(pen, beta)

    def setup(self):
        p = self.p
        self._init_layout()
        self.l1W, self.l2W, self.extraW = split_hals(p.penalties_W)
        self.l1H, self.l2H, self.extraH = split_hals(p.penalties_H)
        self._RW = self._GH = None
        self._cross_pick = {}  # dense X: the faster orientation of each product (_dense_cross)
        n, m = p.X.shape
        self._prod_cost = float(p.nx.sparse_data(p.X).shape[0] if p.sparse else n * m)
        self._init_extrapolation()
        self._init_blocked()
        self._R0 = None  # (H, X Hᵀ) of the starting objective, for the first blocked step
        self._split_products = False  # dense products split over kernel_threads()
        kern = self.options["kernel"]
        if kern not in ("auto", "numba", "numpy"):
            raise ValueError(
                f"solver_options['kernel'] must be 'auto', 'numba' or 'numpy', got {kern!r}."
            )
        # Frobenius: the compiled (numba) host kernels, but not for a small fit with
        # kernel="auto" (products under SMALL_WORK multiply-adds, as the one-BLAS-thread rule):
        # numba's import and cached kernels cost a fresh process about 0.25 s, more than such a
        # whole fit (the digits, k=16: 0.07 s compiled, 0.12 s by numpy, scikit-learn's 0.19 s;
        # a first fit in a fresh process 0.36 s compiled). Decided by size, so a given fit
        # takes the same path, and rounds the same, in every process.
        self._compiled = self.compiled_for(p.nx, self._prod_cost, p.W.shape[1], kern)
        B = self.options["block_columns"]
        if B is not None and (isinstance(B, bool) or not isinstance(B, (int, np.integer))
                              or B < 1):
            raise ValueError(
                f"solver_options['block_columns'] must be None or a positive integer, got {B!r}."
            )
        if p.beta == 1.0:
            self._setup_kl()
        # plain Frobenius HALS stops as scikit-learn's CD does (nmfkit._fit): each
        # step measures the projected-gradient violation of its sweeps. The accelerated
        # variants keep nmfkit's relative-error rule unless ``stop_rule="violation"`` (what
        # "auto" asks for): then the violation at the (extrapolated) point each half-step
        # starts from, one BLAS product G F and one compiled pass per block (measured, load
        # 3.6: 0.09 s of a 1.0 s fit of the TF-IDF benchmark, 0.18 of 2.8 s on the ORL
        # faces; skipped when tol = 0). On the faces it stays above 1e-4 of the first for
        # 200 iterations, as scikit-learn's own does (both run max_iter there)
        o = self.options
        self._vbuf = self._pgbuf = None
        rule = o["stop_rule"]
        if rule not in (None, "violation", "error"):
            raise ValueError(
                f"solver_options['stop_rule'] must be None, 'violation' or 'error', got {rule!r}."
            )
        plain = not o["inner"] and not o["extrapolate"]
        if p.beta == 2.0 and not self.extraW and not self.extraH and rule != "error":
            if plain:
                self.stop_rule = "violation"
                self._vbuf = np.zeros(1)
            elif rule == "violation" and not p.frozen_W and not p.frozen_H:  # else: error
                self.stop_rule = "violation"
                self._pgbuf = np.zeros(1)

    violation_wanted = True  # False from the loop when tol = 0 (no projected gradient needed)

    @property
    def violation(self) -> float:
        """The projected-gradient violation of the last step (scikit-learn's CD measure)."""
        return float((self._vbuf if self._vbuf is not None else self._pgbuf)[0])

    def objective(self):
        """The objective; for Frobenius on dense numpy X from Gram products, as every step
        reports it (one product X Hᵀ instead of forming WH and two passes over X − WH: the
        fit's starting objective cost about two of "auto"'s iterations on the dense workload)."""
        p, nx = self.p, self.p.nx
        if p.beta != 2.0 or p.sparse or not nx.host_arrays or p.M is not None:
            return super().objective()
        Wt, Hc = self.Wt, self.Hc
        if self._blocked() and self._prod_cost * Wt.shape[0] >= _THREADED_WORK:
            with kernel_threads() as nt:  # as the steps compute it (step())
                self._split_products = nt > 1 and blas_single()
                try:
                    R = self._cross_W(Hc)
                    p.sq_norm_X  # the objective's ‖X‖², once, on the same threads
                finally:
                    self._split_products = False
        else:
            R = self._cross_W(Hc)
        # before the first step (the fit loop's starting objective), X Hᵀ is also the first
        # step's product (it starts without extrapolation from this H): kept for it (_blocked)
        first = self._f is None and self._D is None and self._blocked()
        self._R0 = (Hc, R) if first else None
        return self._frobenius_objective(nx.vdot(R, Wt), nx.vdot(Wt @ Wt.T, Hc @ Hc.T),
                                         Wt.T, Hc)

    def _one(self, beta):
        """One blocked pass (``_blocked``); a restart's second pass replaces the first's
        violation, so the step reports the violation of the iteration it keeps."""
        if self._pgbuf is not None:
            self._pgbuf[0] = 0.0
        return super()._one(beta)

    def _factors_replaced(self):
        self._R0 = None
        self._reset_extrapolation()
        self._reset_blocked()

    @staticmethod
    def compiled_for(nx, prod_cost: float, k: int, kernel: str = "auto") -> bool:
        """Whether a Frobenius fit runs the compiled (numba) host kernels: the backend takes
        them, ``kernel`` is not "numpy", and with "auto" the products (``prod_cost`` · k
        multiply-adds: n·m·k, or nnz·k) are not under ``SMALL_WORK`` (see ``setup``)."""
        small = kernel == "auto" and prod_cost * k < SMALL_WORK
        return bool(nx.compiled_kernels and kernel != "numpy" and not small)

    @staticmethod
    def sample_major(p) -> bool:
        """Whether the factors are stored sample-major: Wᵀ and H as F-ordered (k, N) arrays,
        i.e. W (n, k) and Hᵀ (m, k) row-major. For sparse X on numpy (Frobenius): scipy's
        sparse products X Hᵀ and Xᵀ W then read the factor without first copying it into
        C order (a transient copy of H, the largest array of a wide X: peak memory), and the
        compiled sweeps read either order through their block buffer."""
        return CoordinateDescent.sample_major_for(p.nx, p.sparse, p.beta)

    @staticmethod
    def sample_major_for(nx, sparse: bool, beta: float) -> bool:
        """:meth:`sample_major` before a problem exists (the engine lays out the start so)."""
        return nx.host_arrays and sparse and beta == 2.0

    def _init_layout(self):
        p = self.p
        if not self.sample_major(p):
            return super()._init_layout()
        W, H = p.W, p.H
        # the caller's own arrays are worked in place (no second copy); otherwise copied
        self.Wt = W.T if (p.owns_factors and W.flags.c_contiguous) else np.array(W.T, order="F")
        self.Hc = H if (p.owns_factors and H.flags.f_contiguous) else np.array(H, order="F")

    def _order(self, k, frozen=()):
        p = self.p
        order = p.nx.permutation(p.rng, k) if p.shuffle else None
        if frozen:  # frozen components are skipped by the sweeps, never written
            order = [int(t) for t in (range(k) if order is None else order) if t not in frozen]
        return order

    # ------------------------------------------------------------ Frobenius
    def _cross_W(self, Hc):
        """H Xᵀ, shape (k, n_samples)."""
        p = self.p
        if p.sparse:  # on the host by csr_dot (rows on threads), a transposed view (no copy)
            return p.nx.sparse_cross(p.X, Hc, csr_dot)
        return self._dense_cross("W", Hc, p.Xt, p.X)

    def _cross_H(self, Wt):
        """Wᵀ X, shape (k, n_features)."""
        p = self.p
        if p.sparse:
            return p.nx.sparse_cross(p.Xt, Wt)
        return self._dense_cross("H", Wt, p.X, p.Xt)

    def _dense_cross(self, side, F, X, Xt):
        """F X for a dense X, as F @ X or as (Xᵀ Fᵀ)ᵀ, by the form chosen on the side's first
        call. OpenBLAS's speed depends on the orientation by up to 7× and not the same way
        for every shape (dense 10000×2000 float32, k=20: Wᵀ X 680 ms, (Xᵀ W)ᵀ 88 ms; ORL faces,
        400×10304 float64, k=49: 31–44 against 51–67 ms, and H Xᵀ the other way round).
        Products under 10⁷ multiply-adds take F @ X without a trial.

        Within ``kernel_threads()`` (BLAS at one thread) the product is split over the
        kernels' threads, by columns of the output (F @ X) or by rows of Xᵀ Fᵀ, and the trial
        times the split forms (``_pick_form``)."""
        if not self.p.nx.orientable(X):  # a device, or a host X of neither memory order
            return F @ X
        split = self._split_products
        key = side + " split" if split else side  # one choice per side and mode
        pick = self._cross_pick.get(key)
        if pick is None:
            pick = 0
            if F.shape[0] * X.shape[0] * X.shape[1] >= 10**7:
                # one choice per product's shape, layout and threads in a process: a fit
                # repeated with the same parameters rounds as the first did
                form_key = (X.shape, X.strides, Xt.strides, str(X.dtype), F.shape,
                            F.strides, split, n_threads() if split else 1)
                pick = _FORMS.get(form_key)
                if pick is None:
                    pick = _FORMS[form_key] = self._pick_form(F, X, Xt, split)
            self._cross_pick[key] = pick
        if split:
            return self._split_cross(pick, F, X, Xt)
        return F @ X if pick == 0 else np.ascontiguousarray((Xt @ F.T).T)

    def _pick_form(self, F, X, Xt, split: bool) -> int:
        """0 (F @ X) or 1 ((Xᵀ Fᵀ)ᵀ): each form run three times on an eighth of the output's
        columns, as the fit will run it (split over the kernels' threads or not), the faster
        run of each compared; form 1 only when it was faster by the margin ``_FORM_MARGIN``.

        Why not time the fit's own first products (as before): the first call ran cold (the
        output's pages, the threads' caches), and the choice flipped from run to run — on the
        dense 10000×2000 benchmark three fresh fits made three different choices, so the same
        fit rounded differently from run to run, and a slow form was sometimes kept for the
        whole fit. The trial costs about three quarters of one product per side, once per
        shape in a process (``_FORMS``)."""
        c = max(1, X.shape[1] // 8)
        Xc, Xtc = X[:, :c], Xt[:c]
        if split:
            forms = (lambda: self._split_cross(0, F, Xc, Xtc),
                     lambda: self._split_cross(1, F, Xc, Xtc))
        else:
            forms = (lambda: F @ Xc, lambda: Xtc @ F.T)
        t = [np.inf, np.inf]
        for _ in range(3):  # the fastest of three: a part's thread can take ms to wake
            for form, run in enumerate(forms):
                t0 = time.perf_counter()
                run()
                t[form] = min(t[form], time.perf_counter() - t0)
        return 1 if t[1] < _FORM_MARGIN * t[0] else 0

    @staticmethod
    def _split_cross(form, F, X, Xt):
        """F X on the kernels' threads (one BLAS call each, within ``kernel_threads()``):
        form 0 F @ X by columns of the output, form 1 Xᵀ Fᵀ by rows."""
        nt = n_threads()
        return matmul_cols(F, X, nt) if form == 0 else matmul_rows(Xt, F.T, nt).T

    def _n_sweeps(self, k, N, extra=()):
        """Sweeps per half-iteration: 1, or Gillis & Glineur's ⌊1 + α·ρ⌋ with ``inner``."""
        o = self.options
        if not o["inner"] or extra:
            return 1
        w = o["sweep_cost"]
        if w is None:
            w = _SWEEP_COST_SPARSE if self.p.sparse else _SWEEP_COST_DENSE
        rho = (self._prod_cost * k + N * k * k) / max(w * N * k * (k + 1), 1)
        return int(max(1, min(o["max_inner"], math.floor(1 + o["alpha"] * rho))))

    def _run_sweeps(self, F, G, R, l1, l2, order, n_sweeps, extra=(), compiled_single=False):
        """``n_sweeps`` HALS sweeps of F in place, stopping once a sweep moves F by less than
        ``delta`` times the first sweep's move. ``order()`` gives each sweep's component
        order (a new draw per sweep with ``shuffle``). A single sweep runs compiled only with
        ``compiled_single`` (plain "cd" keeps scikit-learn's numpy sweep, rounding included)."""
        o, nx = self.options, self.p.nx
        if self._pgbuf is not None and self.violation_wanted:  # at the sweeps' starting point
            self._pgbuf[0] += projected_gradient_l1(F, G, R, l1, l2, nx=nx,
                                                    compiled=self._compiled)
        if ((n_sweeps > 1 or compiled_single) and self._compiled
                and not extra):
            # compiled: all sweeps of one block of columns while it is in cache, per-block stop
            done = hals_inner_sweeps(F, G, R, l1, l2, order(), n_sweeps, o["delta"])
            if _TRACE is not None:
                _TRACE.append((F.shape[1], n_sweeps, done))
            return
        if n_sweeps == 1:
            if self._vbuf is not None:  # plain cd: scikit-learn's stopping measure
                self._vbuf[0] += nx.hals_sweep_violation(F, G, R, l1, l2, order())
            else:
                hals_sweep(F, G, R, l1, l2, order(), extra, nx=nx)
            return
        first, old = None, nx.empty_like(F)
        for _ in range(n_sweeps):
            old[...] = F
            hals_sweep(F, G, R, l1, l2, order(), extra, nx=nx)
            old -= F
            move = nx.vdot(old, old)
            if first is None:
                first = move
            elif move <= o["delta"] ** 2 * first:
                break

    def _sweeps(self, F, G, R, l1, l2, extra, frozen=()):
        """One HALS sweep, repeated while it pays (Gillis & Glineur) when ``inner`` is on."""
        k, N = F.shape
        self._run_sweeps(F, G, R, l1, l2, lambda: self._order(k, frozen),
                         self._n_sweeps(k, N, extra), extra)

    def _iterate(self, Wt, Hc):
        """One outer iteration from (Wᵀ, H), in place; returns (Wᵀ, H, objective)."""
        p, nx = self.p, self.p.nx
        if p.update_W:
            if self._RW is None or p.update_H:
                self._RW = self._cross_W(Hc)
                self._GH = Hc @ Hc.T
            self._sweeps(Wt, self._GH, self._RW, self.l1W, self.l2W, self.extraW, p.frozen_W)
            if p.update_H:  # recomputed next iteration: not kept through the H update (peak memory)
                self._RW = None
        if p.update_H:
            R = self._cross_H(Wt)
            G = Wt @ Wt.T
            self._sweeps(Hc, G, R, self.l1H, self.l2H, self.extraH, p.frozen_H)
            return Wt, Hc, self._frobenius_objective(
                nx.vdot(R, Hc), nx.vdot(G, Hc @ Hc.T), Wt.T, Hc
            )
        return Wt, Hc, self._frobenius_objective(
            nx.vdot(self._RW, Wt), nx.vdot(self._GH, Wt @ Wt.T), Wt.T, Hc
        )

    # ------------------------------------------------------------ Kullback-Leibler
    def _setup_kl(self):
        p = self.p
        if self.extraW or self.extraH:
            names = sorted({type(q).__name__ for q in [*self.extraW, *self.extraH]})
            raise ValueError(
                f"solver 'cd' with beta_loss=1 supports only L1/L2 penalties, got {names}; "
                "use solver='mu'."
            )
        self._kl_iter = 0
        # the host kernels below, or a device's sweeps on tensors, vectorised over rows
        self._kl_step = p.nx.kl_half_steps(p.X, self.Wt.dtype, self.options,
                                           host=self._setup_kl_host)

    def _setup_kl_host(self):
        """The host KL half-step (:meth:`_kl_half`), with X as CSR and its transpose."""
        p = self.p
        X = p.X.tocsr() if p.sparse else sp.csr_matrix(p.X)
        if X.nnz and (X.data <= 0).any():
            X = X.copy()
            X.eliminate_zeros()
        self._kX = X
        # the H update walks Xᵀ row by row: a CSR copy (p.Xt is usually a CSC view)
        self._kXt = p.Xt if (p.sparse and X is p.X and p.Xt.format == "csr") else X.T.tocsr()
        kern = self.options["kernel"]
        if kern == "numba" and not HAVE_NUMBA:
            raise ImportError(
                "solver_options['kernel']='numba' needs numba: pip install \"nmfkit[fast]\"."
            )
        self._numba = HAVE_NUMBA and kern != "numpy"
        self._kl_iter = 0
        self._rows = self._rows_t = None
        if not self._numba:
            self._rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            self._rows_t = np.repeat(np.arange(X.shape[1]), np.diff(self._kXt.indptr))
        scale = float(X.data.mean()) if X.nnz else 1.0
        eps = float(np.finfo(self.Wt.dtype).eps)
        self._floor = eps * max(scale, float(np.finfo(self.Wt.dtype).tiny))
        return self._kl_half

    def _mu_kl(self, F, B, X, l1, l2, frozen):
        """One multiplicative update of F (k, N) for KL, O(nnz·k): F ⊙ (Q Bᵀ)ᵀ / (B1 + l1 + l2 F)
        with Q = X / (FᵀB) at X's non-zeros."""
        if self._numba:  # one compiled pass, rows on threads (_kl_kernels)
            num = kl_mu_numerator(F, B, X, self._floor)
        else:
            wh = self.p.nx.sampled_dot(np.ascontiguousarray(F.T), B, X)
            np.maximum(wh, self._floor, out=wh)
            Q = sp.csr_matrix((X.data / wh, X.indices, X.indptr), shape=X.shape)
            num = np.asarray(Q @ B.T).T
        den = B.sum(axis=1)[:, None] + l1
        if l2:
            den = den + l2 * F
        np.divide(num, den, out=num, where=den > 0)
        num[np.broadcast_to(den <= 0, num.shape)] = 1.0
        for t in frozen:  # frozen components keep their values exactly
            num[t] = 1.0
        F *= num.astype(F.dtype, copy=False)

    def _kl_half(self, which, F, B, l1, l2, frozen, order, warm, newton_steps):
        """The KL half-step on host arrays (see ``TorchKL.half_step``): F (k, N) for fixed B."""
        X = self._kX if which == "W" else self._kXt
        if warm:
            return self._mu_kl(F, B, X, l1, l2, frozen)
        order = np.arange(F.shape[0]) if order is None else np.asarray(order, dtype=np.intp)
        kl_cd_update(F, B, X, B.sum(axis=1, dtype=np.float64), l1, l2, order, newton_steps,
                     self._floor, self._numba, self._rows if which == "W" else self._rows_t)
        return None

    def _step_kl(self):
        p, o = self.p, self.options
        k = self.Wt.shape[0]
        self._kl_iter += 1
        warm = self._kl_iter <= o["mu_warmup"]
        half = self._kl_step  # host or device (_setup_kl)
        if p.update_W:
            half("W", self.Wt, self.Hc, self.l1W, self.l2W, p.frozen_W,
                 None if warm else self._order(k, p.frozen_W), warm, o["newton_steps"])
        if p.update_H:
            half("H", self.Hc, self.Wt, self.l1H, self.l2H, p.frozen_H,
                 None if warm else self._order(k, p.frozen_H), warm, o["newton_steps"])
        return None

    def step(self):
        p = self.p
        for buf in (self._vbuf, self._pgbuf):
            if buf is not None:
                buf[0] = 0.0
        if p.beta == 1.0:
            return self._step_kl()
        if self._blocked():  # by blocks, restart per block (_blocked: peak memory)
            # on the host the kernels' threads, BLAS's own meanwhile at 1; a device's own
            with p.nx.step_threads(kernel_threads) as nt:
                big = self._prod_cost * self.Wt.shape[0] >= _THREADED_WORK
                self._split_products = nt > 1 and blas_single() and not p.sparse and big
                try:
                    return self._blocked_step()
                finally:
                    self._split_products = False
        return self._extrapolated_step()

    def _blocked(self) -> bool:
        """Whether a Frobenius step is ``_blocked``'s extrapolated iteration."""
        p = self.p
        return bool(self.options["extrapolate"] and p.update_W and p.update_H
                    and not self.extraW and not self.extraH)
