"""Masked (weighted) multiplicative updates for any β, Frobenius and KL in particular.

Minimises Σ_ij M_ij d_β(X_ij, (WH)_ij) + penalties over the observed entries only
(Ho & Van Dooren; Blondel, Ho & Van Dooren 2008, "Weighted NMF"). With Q = M ⊙ X ⊙ (WH)^(β−2)
and P = M ⊙ (WH)^(β−1), both sparse on the observed set,

    W ← W ⊙ ((Q Hᵀ) / (P Hᵀ + ∇⁺pen))^γ,      H ← H ⊙ ((Wᵀ Q) / (Wᵀ P + ∇⁺pen))^γ

with γ the majorisation exponent of the unmasked updates (1 for 1 ≤ β ≤ 2), so every
update is non-increasing. For β = 2 this is (M⊙X)Hᵀ / (M⊙WH)Hᵀ, for β = 1 (M⊙X/WH)Hᵀ / M Hᵀ.
WH is formed only at the observed entries: O(nnz·k) per update, never n_samples × n_features.
A row (column) with no observation has a zero numerator and goes to zero.

The solver reads the observed set from ``problem.M`` (a :class:`nmfkit.masked.Observed`).
It is chosen automatically for ``solver="mu"`` when a mask or missing values are given.
"""

from __future__ import annotations

import numpy as np

from ..masked import sampled_product, weighted_divergence
from ._base import Solver, register_solver
from .mu import MultiplicativeUpdate, _gamma

__all__ = ["MaskedMU"]


@register_solver
class MaskedMU(Solver):
    name = "masked_mu"
    betas = None  # every β (tested for 2 and 1)
    sparse = True
    monotone = True
    masks = True
    masked_for = ("mu",)
    multiplicative = True

    def setup(self):
        p = self.p
        if p.M is None:  # every entry observed
            from ..masked import observed_entries

            X = p.X
            if p.nx.issparse(X):
                X = X.toarray()
            p.M = observed_entries(np.asarray(X), missing_values=np.nan)
        self.obs = p.M
        self.gamma = _gamma(p.beta)
        self.w = self.obs.weights
        self.wx = self.obs.weights * self.obs.values

    @classmethod
    def supports_penalty(cls, pen) -> bool:
        return "mu" in pen.solvers

    def _quotients(self, W, H):
        """(Q, P) data on the observed set: Q = M⊙X⊙y^(β−2), P = M⊙y^(β−1), y = WH."""
        beta, eps = self.p.beta, self.p.eps
        y = sampled_product(self.obs, W, H)
        if beta == 2.0:
            return self.wx, self.w * y
        np.maximum(y, eps, out=y)
        if beta == 1.0:
            return self.wx / y, self.w
        return self.wx * y ** (beta - 2.0), self.w * y ** (beta - 1.0)

    def _finish(self, F, num, den, pen_F, penalties, transposed):
        num, den = MultiplicativeUpdate._add_penalties(num, den, pen_F, penalties, transposed)
        den = np.where(den <= 0, self.p.eps, den)
        num = num / den
        if self.gamma != 1:
            num **= self.gamma
        F *= num.astype(F.dtype, copy=False)

    def step(self):
        p, obs = self.p, self.obs
        if p.update_W:
            q, r = self._quotients(p.W, p.H)
            Ht = p.H.T
            num = obs.csr(q) @ Ht
            den = obs.csr(r) @ Ht
            self._finish(p.W, num, den, p.W.T, p.penalties_W, True)
        if p.update_H:
            q, r = self._quotients(p.W, p.H)
            num = np.asarray(obs.csr(q).T @ p.W).T
            den = np.asarray(obs.csr(r).T @ p.W).T
            self._finish(p.H, num, den, p.H, p.penalties_H, False)

    def objective(self) -> float:
        p = self.p
        return weighted_divergence(self.obs, p.W, p.H, p.beta) + p.penalty_value()
