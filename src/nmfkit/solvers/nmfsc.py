"""NMF with sparseness constraints (Hoyer 2004, "nmfsc"): a target Hoyer sparseness per
component, for W, H or both, instead of a penalty weight.

Constraint (nmfkit orientation, X ≈ W H): ``sparseness_H = s`` makes every row H[t] (a
component, over the features) have Hoyer sparseness s and unit L2 norm — Hoyer's constraint
on the basis vectors; ``sparseness_W = s`` makes every column W[:, t] (one component's
coefficients over the samples) have sparseness s at its current L2 norm. A constrained factor
is updated by a projected gradient step, x ← P_s(x − μ∇), with Hoyer's step rule: the step μ
grows by 1.2 after a success and halves until the objective does not increase (at most 40
halvings; then the factor is left as it was). An unconstrained factor takes a Lee–Seung
multiplicative step. Both keep ½‖X − WH‖² non-increasing after the initial projection.
Frobenius loss; dense or sparse X (Gram products only); no penalties, no frozen components.
With H fixed (``transform``) and no ``sparseness_W``, W takes plain multiplicative steps.
"""

from __future__ import annotations

import numpy as np

from ..sparseness import project_rows
from ._base import Solver, register_solver

__all__ = ["SparsenessConstrained"]

_MAX_HALVINGS = 40


@register_solver
class SparsenessConstrained(Solver):
    name = "nmfsc"
    betas = (2.0,)
    sparse = True
    monotone = True
    default_options = {"sparseness_W": None, "sparseness_H": None}

    def setup(self):
        p = self.p
        self.sW = self.options.get("sparseness_W")
        self.sH = self.options.get("sparseness_H")
        if self.sW is None and self.sH is None and p.update_H:
            raise ValueError(
                "solver='nmfsc' needs a target sparseness: set sparseness_W and/or "
                "sparseness_H (floats in [0, 1])."
            )
        W, H = np.array(p.W), np.array(p.H)
        if not W.any():  # W solved for a fixed H (transform) starts from zeros: lift it
            W[:] = np.sqrt(max(p.nx.sum(p.X) / (W.shape[0] * H.shape[1] * W.shape[1]), p.eps))
        if self.sH is not None:
            norms = np.sqrt((H.astype(np.float64) ** 2).sum(axis=1))
            H = project_rows(H, self.sH, l2=1.0)
            W = W * norms.astype(W.dtype)  # keep W H roughly where it was
        if self.sW is not None:
            W = np.ascontiguousarray(project_rows(W.T, self.sW).T)
        p.W, p.H = W, H
        self.mu_W = self.mu_H = None

    def _cross(self, which):
        p = self.p
        if which == "W":  # X Hᵀ (n, k)
            return np.asarray(p.nx.matmul(p.X, p.H.T))
        return np.asarray(p.nx.matmul(p.Xt, p.W)).T  # Wᵀ X (k, m)

    def _projected_step(self, F, cross, gram, s, mu, l2):
        """F component-major (k, N); minimises ½ tr(FᵀGF) − ⟨R, F⟩ + const over rows of
        sparseness s. Returns (new F, new μ)."""
        f0 = 0.5 * float(np.vdot(F, gram @ F)) - float(np.vdot(cross, F))
        grad = gram @ F - cross
        if mu is None:
            mu = 1.0 / max(float(np.linalg.norm(gram, 2)), np.finfo(np.float64).tiny)
        for _ in range(_MAX_HALVINGS):
            Fn = project_rows(F - mu * grad, s, l2=l2)
            f1 = 0.5 * float(np.vdot(Fn, gram @ Fn)) - float(np.vdot(cross, Fn))
            if f1 <= f0:
                return Fn.astype(F.dtype, copy=False), mu * 1.2
            mu /= 2.0
        return F, mu

    def step(self):
        p, eps = self.p, self.p.eps
        if p.update_W:
            R = self._cross("W").T  # (k, n)
            G = p.H @ p.H.T
            if self.sW is not None:
                Wt, self.mu_W = self._projected_step(p.W.T, R, G, self.sW, self.mu_W, None)
                p.W = np.ascontiguousarray(Wt.T)
            else:
                p.W *= R.T / np.maximum(p.W @ G, eps)
        if p.update_H:
            R = self._cross("H")  # (k, m)
            G = p.W.T @ p.W
            if self.sH is not None:
                p.H, self.mu_H = self._projected_step(p.H, R, G, self.sH, self.mu_H, 1.0)
            else:
                p.H *= R / np.maximum(G @ p.H, eps)
        return None
