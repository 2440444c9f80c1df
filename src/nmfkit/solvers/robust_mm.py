"""Robust NMF by majorise–minimise: Huber, Cauchy, sparse and group outliers, row-wise L2,1.

One outer iteration majorises the robust objective at the current (W, H) by a weighted
least-squares one (:mod:`nmfkit.robust` derives the majorisers) and takes one W and one H
step that cannot increase it, so the robust objective never increases:

* entrywise losses (Huber, Cauchy, sparse outliers; L2,1 with entry weights), the default
  (``update="hals"``): the target T = WH + (M/μ)∘ψ(X − WH) is formed once per iteration,
  then HALS sweeps (repeated while they pay, as accelerated HALS does) on ½‖T − WH‖² for W,
  then for H: three products of n·m·k per iteration against plain HALS's two. Group outliers
  (``robust="groups"``) form the same target with one weight per (sample, group), the block
  soft-threshold: T = X − S with S exact for the current WH (two compiled passes on the host,
  :func:`nmfkit.solvers._robust_kernels.group_sq_sums` and ``group_target_inplace``).
  ``update="mu"`` (``solver="mu"``): multiplicative updates on the same majoriser
  (W ← W ∘ (T Hᵀ) / (W HHᵀ), then H; T ≥ 0), the same three products. Dense arrays
  throughout (never the sampled products of the observed-entries form). The weighted
  multiplicative updates on Ω = M ∘ ω(X − WH) (six products: W ← W ∘ ((Ω∘X) Hᵀ) /
  ((Ω∘WH) Hᵀ), then H) are the pilot's (:func:`pilot_scale`).
* L2,1 without entry weights: the sample weights 1/‖x_i − w_i H‖ come from Gram products
  (‖x_i‖² − 2 w_i·(H x_iᵀ) + w_i HHᵀ w_iᵀ), the W step is plain (each row's problem is only
  scaled by its weight) and the H step is the row-weighted one, on the Gram products Wᵀ D W
  and Wᵀ D X; HALS sweeps (``update="hals"``, repeated while they pay as in accelerated
  HALS) or multiplicative updates (``update="mu"``). Sparse X is never densified, and the
  cost is that of the plain update.

On host arrays the n×m work of an iteration runs in buffers kept for the fit, one compiled
pass each (:mod:`nmfkit.solvers._robust_kernels`: WH into a buffer, then the target, the
objective or the weighted arrays), and the repeated HALS sweeps in the compiled block kernel
of accelerated HALS (``_hals_kernel``): ORL faces (400×10304, k = 25, one thread) fell from
58.6 to about 20 ms a Huber iteration, most of it the page faults of fresh n×m arrays.

The solver is chosen by the estimator for ``NMF(loss=...)`` / ``NMF(outliers="sparse")``
(:mod:`nmfkit._robust_fit`); its parameters arrive in ``solver_options``: ``robust`` (the
kind), ``robust_scale`` (δ, c or λ at the fit's unit scale), ``robust_weights`` (dense entry
weights on X's backend, or None) and ``update``. Every operation is an operator or an ``nx``
op, so it runs on numpy and torch.
"""

from __future__ import annotations

import math

from ..nnls import hals_sweep
from ..robust import (SCALE_FACTORS, Groups, estimate_scale, estimate_scale_at, group_psi,
                      group_rho_from_sums, group_rho_sum, psi_inplace, rho_sum, weights)
from . import _robust_kernels as _kern
from ._base import ComponentMajorSolver, register_solver
from ._hals_kernel import hals_inner_sweeps

__all__ = ["RobustMM", "pilot_scale"]

_KINDS = ("huber", "cauchy", "sparse", "groups", "l21")


def _mu_step(nx, F, num, den, eps) -> None:
    """F ← F ∘ num / den in place, den floored at eps (a zero denominator leaves F at 0)."""
    F *= num / nx.clip_min(den, eps)


def _weighted_mu(nx, Wt, Hc, X, Om, eps, update_W=True, update_H=True, Y=None):
    """One weighted multiplicative iteration on ½ Σ Ω (X − WH)², Ω held fixed; Wᵀ, H in place.
    ``Y``: WH at the current factors when the caller has it (one product fewer)."""
    OX = Om * X
    if update_W:
        Y = nx.matmul(Wt.T, Hc) if Y is None else Y
        Y *= Om
        _mu_step(nx, Wt, _cross(nx, OX, Hc), _cross(nx, Y, Hc), eps)
    if update_H:
        Y = nx.matmul(Wt.T, Hc)
        Y *= Om
        _mu_step(nx, Hc, Wt @ OX, Wt @ Y, eps)


def _weighted_mu_host(nx, Wt, Hc, X, kind, scale, M, bufs, eps, update_W=True,
                      update_H=True, Y_ready=False):
    """:func:`_weighted_mu` with Ω = M∘ω(X − WH) of ``kind`` at ``scale``, on host arrays, in
    the kept buffers ``bufs`` = (Y, Ω, Ω∘X) with one compiled pass for the weights (no new
    n×m array). ``Y_ready``: bufs[0] already holds WH at the current factors."""
    Y, Om, OX = bufs
    if not Y_ready:
        _kern.matmul_into(Wt, Hc, Y)
    _kern.weigh(X, Y, kind, scale, M, Om, OX)  # Ω, Ω∘X, and Y ← Ω∘WH
    if update_W:
        _mu_step(nx, Wt, _cross(nx, OX, Hc), _cross(nx, Y, Hc), eps)
    if update_H:
        if update_W:
            _kern.matmul_into(Wt, Hc, Y)
            Y *= Om
        _mu_step(nx, Hc, Wt @ OX, Wt @ Y, eps)


def _cross(nx, A, Hc):
    """H Aᵀ (k, n) as (A Hᵀ)ᵀ: OpenBLAS ran this orientation 1.7× faster on ORL faces'
    shape (400×10304, k=25: 22 against 37 ms)."""
    return nx.ascontiguous(nx.matmul(A, Hc.T).T)


def entry_weights(nx, kind, X, Wt, Hc, scale, M=None):
    """Ω = M ∘ ω(X − WH) for an entrywise kind; for L2,1 with entry weights,
    Ω_ij = M_ij / ‖√M_i ∘ r_i‖ (the sample's weight on each observed entry)."""
    R = X - nx.matmul(Wt.T, Hc)
    if kind == "l21":
        norms = nx.sum(M * R * R, axis=1) ** 0.5
        return M * (1.0 / nx.clip_min(norms, nx.tiny(nx.dtype_of(R))))[:, None]
    Om = weights(nx, kind, R, scale)
    return Om if M is None else Om * M


def pilot_scale(nx, kind, X, W, H, M=None, max_iter: int = 30, settle: float = 0.02,
                update_H: bool = True, rescale_every: int = 2):
    """The default scale of an entrywise kind and the start it leaves; returns (scale, W, H).

    A pilot of Cauchy-weighted multiplicative iterations from copies of (W, H), the Cauchy
    scale re-estimated before every ``rescale_every``-th as 2.385 σ̂, σ̂ = 1.4826·MAD of the
    residuals, until σ̂ settles (it fell by less than ``settle`` per 5 iterations, between
    the last estimate and the one 5 iterations before, or 6 when σ̂ is estimated every second
    iteration; at least 10, at most ``max_iter`` iterations); the kind's scale is then its
    factor times σ̂ of the pilot's last residuals (always estimated afresh). With
    ``update_H=False`` (``transform``) only W moves.

    The start's own residuals are dominated by the outliers it fits (planted data, 10 % of
    entries at 10× the maximum: σ̂ 28.9 at the start, 0.16 after 20 iterations, 0.05 after
    80, for noise 0.01), and a fit at a fixed small scale from that start ends far from the
    planted factors (Cauchy: farther than plain NMF). The shrinking scale is a graduated
    start; the Cauchy weights, which fall to zero for gross outliers, leave them behind where
    Huber weights, which fall only as 1/|r|, do not. Huber fitted by weighted multiplicative
    updates from a pilot with Huber weights missed the planted factors on 4 of 6 seeds of
    60×40 planted data; from this pilot, followed by HALS on the majoriser, it reached a
    relative error of at most 0.038 on 8 planted cases (60×40 and 200×100, 4 seeds each) with
    a pilot of at most 30 iterations, 0.031 with 50 and 0.021 with 100: 30 is the default,
    a pilot iteration (six products) costing two to three robust HALS iterations (ORL faces:
    about 50 against 18 ms). A pilot of multiplicative updates on the unweighted target
    (three products) did not leave the corrupted start: on docs/robust.md's (a) it ended at a
    relative error of 1.56 (Huber) and 3.38 (Cauchy), against 0.034 and 0.009 from this one.
    On host arrays the iterations run in three kept n×m buffers (:func:`_weighted_mu_host`).

    σ̂ every second iteration (``rescale_every=2``, one BLAS thread, load 0.8): on small data
    the two exact medians of an estimate cost as much as the weighted iteration itself
    (planted 200×100: 65 µs each), and the pilot fell from 3.9 to 2.8 ms (every third:
    2.5 ms), with the same accuracy: on the 8 planted cases above Huber's largest relative
    error 0.037 against 0.036 (Cauchy 0.010 both; Huber with ``solver="mu"`` 0.044 against
    0.070); on docs/robust.md's (a), medians of 5 seeds, Huber 0.0331 against 0.0326, Cauchy
    0.0055 against 0.0051, and on its (b) Cauchy's Amari distance 0.048 / 0.187 / 0.322
    against 0.050 / 0.186 / 0.358 (a = 1, 2, 5). On (a)'s data (seed 0) σ̂ does not settle
    within 30 iterations (1.93 at the start, 0.23 after 10, 0.19 after 30; 0.16 after 50,
    0.09 after 100), so the settling rule alone does not shorten the pilot there. On the ORL
    faces it settles after 20 iterations either way (0.86 s against 0.88 s, the estimates
    read 2¹⁸ residuals at about 2.7 ms each).
    """
    Wt, Hc = nx.ascontiguous(nx.copy(W.T)), nx.copy(H)
    eps = nx.eps(nx.dtype_of(X))
    history = []
    host = nx.compiled_kernels and _kern.available(X, M)
    bufs = tuple(nx.empty_like(X) for _ in range(3)) if host else None
    rescale_every = max(1, int(rescale_every))
    # settling is judged between fresh estimates ``lag`` ≥ 5 iterations apart, at the same rate
    # (``settle`` per 5 iterations): against a held σ̂ the faces' pilot ran 26 iterations, not 20
    lag = rescale_every * -(-5 // rescale_every)
    for it in range(max(1, int(max_iter)) + 1):
        fresh = it % rescale_every == 0 or it == max_iter  # the last σ̂ is always fresh
        if host:  # WH, σ̂ and the weighted arrays in kept buffers (_robust_kernels)
            Y = _kern.matmul_into(Wt, Hc, bufs[0])
            if fresh:
                sigma = estimate_scale_at(nx, X, Y, M)
        else:
            Y = nx.matmul(Wt.T, Hc)
            R = X - Y
            if fresh:
                sigma = estimate_scale(nx, R, M)
        history.append(sigma)
        before = history[-1 - lag] if it >= max(10, lag) else None
        if it == max_iter or (fresh and before is not None
                              and before - sigma <= settle * lag / 5 * before):
            break
        c = SCALE_FACTORS["cauchy"] * sigma
        if host:
            _weighted_mu_host(nx, Wt, Hc, X, "cauchy", c, M, bufs, eps, update_H=update_H,
                              Y_ready=True)
            continue
        Om = weights(nx, "cauchy", R, c)
        _weighted_mu(nx, Wt, Hc, X, Om if M is None else Om * M, eps, update_H=update_H, Y=Y)
    return SCALE_FACTORS[kind] * sigma, nx.ascontiguous(Wt.T), Hc


@register_solver
class RobustMM(ComponentMajorSolver):
    name = "robust"
    betas = (2.0,)
    sparse = True  # L2,1 runs on sparse X; the entrywise losses are handed dense X
    backends = frozenset({"numpy", "torch"})
    monotone = True
    shuffles = True  # its HALS half-steps (update="hals"); multiplicative updates have no order
    default_options = {
        "robust": None,
        "robust_scale": None,
        "robust_weights": None,
        "robust_groups": None,  # outliers="groups": a nmfkit.robust.Groups of X's features
        "update": "mu",
        "alpha": 0.5,  # L2,1 HALS sweeps: ⌊1 + α·ρ⌋ (Gillis & Glineur), as accelerated HALS
        "delta": 0.02,
        "max_inner": 10,
    }

    @classmethod
    def supports_penalty(cls, pen, beta=None) -> bool:
        return False  # the majorisers carry no penalty terms: refused by name before a fit

    def setup(self):
        p, nx, o = self.p, self.p.nx, self.options
        self.kind = o["robust"]
        if self.kind not in _KINDS:
            raise ValueError(
                "solver 'robust' fits the robust losses of NMF(loss='huber'|'cauchy'|'l21') and "
                f"NMF(outliers='sparse'); got robust={self.kind!r}. Use those parameters "
                "instead of naming this solver.")
        if o["update"] not in ("hals", "mu"):
            raise ValueError(f"solver_options['update'] must be 'hals' or 'mu', got "
                             f"{o['update']!r}.")
        self._init_layout()
        self.groups = o["robust_groups"]
        if self.kind == "groups" and not isinstance(self.groups, Groups):
            raise ValueError("robust='groups' needs solver_options['robust_groups'], a "
                             "nmfkit.robust.Groups of X's features (NMF(outliers='groups', "
                             "outlier_groups=labels) builds it).")
        if self.kind == "groups" and self.groups.labels.shape[0] != p.X.shape[1]:
            raise ValueError(f"robust_groups labels {self.groups.labels.shape[0]} features but "
                             f"X has {p.X.shape[1]}.")
        self.M = o["robust_weights"]
        self.gram_rows = self.kind == "l21" and self.M is None
        if not self.gram_rows and p.sparse:
            raise ValueError(f"loss {self.kind!r} weighs every residual: it needs dense X "
                             "(the estimator densifies a sparse X for it).")
        dtype = nx.dtype_of(p.W)
        self.eps = nx.eps(dtype)
        n, m = p.X.shape
        self._prod = float(nx.sparse_data(p.X).shape[0] if p.sparse else n * m)
        if self.gram_rows:
            X2 = nx.with_data(p.X, nx.sparse_data(p.X) ** 2) if p.sparse else p.X * p.X
            self.sq_rows = nx.sum(X2, axis=1)
            rms = math.sqrt(max(float(nx.sum(self.sq_rows)) / max(n, 1), 0.0))
            # a row fitted exactly gets a large weight, never an infinite one
            self.floor = max(math.sqrt(self.eps) * rms, nx.tiny(dtype))
        self._buf = None
        # host arrays: WH, the target and the weights in buffers kept for the fit, the
        # elementwise work in one compiled pass (_robust_kernels)
        self._host = (nx.compiled_kernels and not p.sparse and self.kind != "l21"
                      and _kern.available(p.X, self.M))
        self._inv_mu = None if self.M is None else 1.0 / float(nx.max(self.M))
        self._runs = (_kern.group_runs(self.groups.labels)
                      if self._host and self.kind == "groups" else None)
        self.scale = o["robust_scale"]
        if self.scale is None and self.kind != "l21":
            self.scale = pilot_scale(nx, self.kind, p.X, self.W, self.Hc, self.M)[0]

    # ----------------------------------------------------------------------- L2,1
    def _row_sq(self, RW, GH):
        """‖x_i − w_i H‖² for every row from Gram products (RW = H Xᵀ, GH = HHᵀ), ≥ 0."""
        nx, Wt = self.p.nx, self.Wt
        sq = self.sq_rows - 2.0 * nx.sum(Wt * RW, axis=0) + nx.sum(Wt * (GH @ Wt), axis=0)
        return nx.clip_min(sq, 0.0)

    def _cross_W(self):
        p = self.p
        return p.nx.matmul(p.X, self.Hc.T).T if p.sparse else self.Hc @ p.Xt

    def _n_sweeps(self, k, N):
        o = self.options
        rho = (self._prod * k + N * k * k) / max(2.0 * N * k * (k + 1), 1)
        return int(max(1, min(o["max_inner"], math.floor(1 + o["alpha"] * rho))))

    def _half(self, F, G, R):
        """F ← a step that does not increase ½‖·‖² given by (G = UUᵀ, R = U Mᵀ), in place."""
        nx = self.p.nx
        if self.options["update"] == "mu":  # R ≥ 0 but for rounding in T: never below 0
            _mu_step(nx, F, nx.clip_min(R, 0.0), G @ F, self.eps)
            return
        k, N = F.shape
        # shuffle: one random component order for the half-step's sweeps
        order = nx.permutation(self.p.rng, k) if self.p.shuffle else None
        if nx.compiled_kernels:
            # compiled: all sweeps of a block of columns while it is in cache, the same
            # stopping rule per block (one block below 129 columns: the loop below exactly)
            hals_inner_sweeps(F, G, R, 0.0, 0.0, order, self._n_sweeps(k, N),
                              self.options["delta"])
            return
        first, old = None, nx.empty_like(F)
        for _ in range(self._n_sweeps(k, N)):
            old[...] = F
            hals_sweep(F, G, R, 0.0, 0.0, order, nx=nx)
            old -= F
            move = nx.vdot(old, old)
            if first is None:
                first = move
            elif move <= self.options["delta"] ** 2 * first:
                break

    def _step_l21(self):
        p, nx = self.p, self.p.nx
        Wt, Hc = self.Wt, self.Hc
        RW, GH = self._cross_W(), Hc @ Hc.T
        if p.update_W:
            self._half(Wt, GH, RW)
        if p.update_H:
            # sample weights at (new W, H): the W step lowered every row's own residual, so
            # the robust objective there is no higher, and the majoriser touches it there
            w = 1.0 / nx.clip_min(self._row_sq(RW, GH) ** 0.5, self.floor)
            Wd = Wt * w[None, :]
            Rh = nx.matmul(p.Xt, Wd.T).T if p.sparse else Wd @ p.X
            self._half(Hc, Wd @ Wt.T, Rh)

    # ----------------------------------------------------------------------- steps
    def _target(self):
        """T = WH + (M/μ)∘ψ(X − WH), μ = max M (entrywise kinds), or WH + (Ω/max Ω)∘(X − WH)
        with the L2,1 entry weights Ω: ½‖T − WH‖² majorises the weighted square (0 ≤ ω ≤ 1)."""
        nx, X = self.p.nx, self.p.X
        if self._host:
            if self._buf is None:
                self._buf = nx.empty_like(X)
            Y = _kern.matmul_into(self.Wt, self.Hc, self._buf)
            if self.kind == "groups":  # S exactly (block soft-threshold), T = X − S
                g = self.groups
                sums = _kern.group_sq_sums(X, Y, self._runs, g.n_groups, self.M)
                a = g.root * float(self.scale)
                om = a[None, :] / nx.clip_min(sums ** 0.5, a[None, :])
                return _kern.group_target_inplace(X, Y, self._runs, om, self.M,
                                                  self._inv_mu or 1.0)
            return _kern.target_inplace(X, Y, self.kind, self.scale, self.M,
                                        self._inv_mu or 1.0)
        Y = nx.matmul(self.Wt.T, self.Hc)
        if self.kind == "groups":
            P, _ = group_psi(nx, self.groups, X - Y, self.scale, self.M)
            if self.M is not None:
                P *= self.M
                P *= 1.0 / float(nx.max(self.M))
            Y += P
            return Y
        if self.kind == "l21":
            A = entry_weights(nx, "l21", X, self.Wt, self.Hc, None, self.M)
            return Y + (X - Y) * (A * (1.0 / float(nx.max(A))))
        if self._buf is None:
            self._buf = nx.empty_like(Y)
        R = self._buf  # the residual, then ψ of it, in one buffer kept between iterations
        R[...] = X
        R -= Y
        P = psi_inplace(nx, self.kind, R, self.scale)
        if self.M is not None:
            P *= self.M
            P *= 1.0 / float(nx.max(self.M))
        Y += P
        return Y

    def step(self):
        p = self.p
        if self.gram_rows:
            self._step_l21()
            return None
        # HALS sweeps (update="hals") or multiplicative updates (update="mu") on the
        # majoriser ½‖T − WH‖², T ≥ 0 (WH + a·ψ(R) with a ∈ [0, 1] lies between WH and a point
        # ψ has moved towards X): three products of n·m·k. The weighted multiplicative updates
        # on Ω (six products) are the pilot's; as the fit's "mu" they took 10.8 s against 5.7 s
        # for these on the occluded faces (Huber, 200 iterations, one thread), with the same
        # error on the planted data of docs/robust.md (a) (0.041 against 0.044, median of 5)
        T = self._target()
        Wt, Hc = self.Wt, self.Hc
        if p.update_W:
            self._half(Wt, Hc @ Hc.T, _cross(p.nx, T, Hc))
        if p.update_H:
            self._half(Hc, Wt @ Wt.T, Wt @ T)
        return None

    def objective(self) -> float:
        """The robust objective at the current factors (the scale held fixed)."""
        p, nx = self.p, self.p.nx
        if self.gram_rows:
            return float(nx.sum(self._row_sq(self._cross_W(), self.Hc @ self.Hc.T) ** 0.5))
        if self._host:  # WH into the kept buffer, Σ M ρ in one pass
            if self._buf is None:
                self._buf = nx.empty_like(p.X)
            Y = _kern.matmul_into(self.Wt, self.Hc, self._buf)
            if self.kind == "groups":
                g = self.groups
                sums = _kern.group_sq_sums(p.X, Y, self._runs, g.n_groups, self.M)
                return group_rho_from_sums(nx, g, sums, self.scale)
            return _kern.rho_total(p.X, Y, self.kind, self.scale, self.M)
        R = p.X - nx.matmul(self.Wt.T, self.Hc)
        if self.kind == "groups":
            return group_rho_sum(nx, self.groups, R, self.scale, self.M)
        if self.kind == "l21":
            return float(nx.sum(nx.sum(self.M * R * R, axis=1) ** 0.5))
        return rho_sum(nx, self.kind, R, self.scale, self.M)
