"""Alternating non-negative least squares with block principal pivoting (Frobenius, L1/L2).

Each outer iteration solves the W-subproblem exactly (H fixed), then the H-subproblem
exactly (W fixed), with :func:`nmfkit.nnls.nnls_bpp` on the Gram products — Kim & Park's
ANLS/BPP (2011). Every half-step is an exact block minimisation, so the objective never
increases; extrapolation with restart (``_extrapolation``, on by default) keeps that true.
The previous factor's support warm-starts the pivoting, which after the first
few iterations usually needs one or two exchanges. With ``update_H=False`` (``transform``)
the first step is already the exact NNLS solution.

Cost per half-iteration: the Gram products through BLAS (O(nnz·k) for a sparse X, never
densified) plus the pivoting, O(N·k²) per exchange with one k×k solve per distinct
passive set (numpy), or one batched factorisation of all distinct passive sets (torch).

On torch the pivoting keeps its arithmetic in float64 as on numpy (the Gram products stay in
the working dtype); each pivoting round reads three small results back to the host (which
columns still violate the optimality conditions, how many distinct passive sets they have,
whether a factorisation was singular), so a half-iteration synchronises a few times per
pivoting round, never per component or column.
"""

from __future__ import annotations

from ..nnls import nnls_bpp
from ._base import ComponentMajorSolver, register_solver
from ._extrapolation import EXTRAPOLATION_OPTIONS, Extrapolation

__all__ = ["ANLS", "GramAlternating"]


class GramAlternating(Extrapolation, ComponentMajorSolver):
    """An outer iteration of two block solves on the Gram products, W's then H's, each
    ``_solve(F, G, R, l1, l2)`` from the current factor F (component-major) with G = FᵀF of
    the other factor and R its cross product with X; the objective from the same products.
    ANLS solves each block exactly, projected gradient inexactly (:mod:`.pgd`)."""

    betas = (2.0,)
    sparse = True
    monotone = True

    def setup(self):
        self._init_layout()
        self._init_l1l2()
        self._RW = self._GH = None
        self._init_extrapolation()

    def _factors_replaced(self):
        self._reset_extrapolation()

    def _cross_W(self, Hc):
        p = self.p
        if p.sparse:
            return p.nx.ascontiguous(p.nx.matmul(p.X, Hc.T).T)
        return Hc @ p.Xt

    def _cross_H(self, Wt):
        p = self.p
        if p.sparse:
            return p.nx.ascontiguous(p.nx.matmul(p.Xt, Wt.T).T)
        return Wt @ p.X

    def step(self):
        return self._extrapolated_step()

    def _iterate(self, Wt, Hc):
        """One outer iteration from (Wᵀ, H); returns (Wᵀ, H, objective)."""
        p, nx = self.p, self.p.nx
        if p.update_W:
            if self._RW is None or p.update_H:
                self._RW = self._cross_W(Hc)
                self._GH = Hc @ Hc.T
            Wt = self._solve(Wt, self._GH, self._RW, self.l1W, self.l2W)
        if p.update_H:
            R = self._cross_H(Wt)
            G = Wt @ Wt.T
            Hc = self._solve(Hc, G, R, self.l1H, self.l2H)
            return Wt, Hc, self._frobenius_objective(
                nx.vdot(R, Hc), nx.vdot(G, Hc @ Hc.T), Wt.T, Hc
            )
        return Wt, Hc, self._frobenius_objective(
            nx.vdot(self._RW, Wt), nx.vdot(self._GH, Wt @ Wt.T), Wt.T, Hc
        )


@register_solver
class ANLS(GramAlternating):
    name = "anls"
    # torch: the same code on torch tensors (array calls through ``p.nx``; the pivoting's
    # grouped solves batched on the device by ``TorchBackend.solve_passive``)
    backends = frozenset({"numpy", "torch"})
    #: warm_start: start each pivoting from the previous factor's support
    default_options = {"warm_start": True, **EXTRAPOLATION_OPTIONS}

    def _solve(self, F, G, R, l1, l2):
        return nnls_bpp(G, R, l1, l2, init=F if self.options["warm_start"] else None,
                        nx=self.p.nx)
