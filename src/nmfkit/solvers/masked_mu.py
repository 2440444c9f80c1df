"""Masked (weighted) multiplicative updates for any β, Frobenius and KL in particular.

Minimises Σ_ij M_ij d_β(X_ij, (WH)_ij) + penalties over the observed entries only
(Ho & Van Dooren; Blondel, Ho & Van Dooren 2008, "Weighted NMF"). With Q = M ⊙ X ⊙ (WH)^(β−2)
and P = M ⊙ (WH)^(β−1), both sparse on the observed set,

    W ← W ⊙ ((Q Hᵀ) / (P Hᵀ + ∇⁺pen))^γ,      H ← H ⊙ ((Wᵀ Q) / (Wᵀ P + ∇⁺pen))^γ

with γ the majorisation exponent of the unmasked updates (1 for 1 ≤ β ≤ 2), so every
update is non-increasing. For β = 2 this is (M⊙X)Hᵀ / (M⊙WH)Hᵀ, for β = 1 (M⊙X/WH)Hᵀ / M Hᵀ.
WH is formed only at the observed entries: O(nnz·k) per update, never n_samples × n_features.
A row (column) with no observation has a zero numerator and goes to zero.

The solver reads the observed set from ``problem.M`` (a :class:`nmfkit.masked.Observed`, or
on the torch backend its device twin ``nmfkit.backends._torch_masked.TorchObserved``) and the
observed values from ``problem.X``, a CSR matrix (scipy or torch) with the observed structure.
Its arithmetic is written on ``nx`` ops, so the same updates run on numpy and on torch tensors
(CPU or CUDA): the sampled product at the observed entries is ``nx.sampled_dot`` and the two
products with the quotients are sparse × dense products. It is chosen automatically for
``solver="mu"`` when a mask or missing values are given.
"""

from __future__ import annotations

from ..masked import every_entry, weighted_divergence
from ._base import Solver, register_solver
from .mu import MultiplicativeUpdate, gamma_exponent

__all__ = ["MaskedMU"]


@register_solver
class MaskedMU(Solver):
    name = "masked_mu"
    betas = None  # every β (tested for 2 and 1)
    sparse = True
    monotone = True
    masks = True
    masked_for = ("mu",)
    supports_frozen = True
    multiplicative = True

    backends = frozenset({"numpy", "torch"})

    def setup(self):
        p = self.p
        if p.M is None:  # every entry observed (numpy)
            p.M = every_entry(p.X)
            p.X = p.M.csr()
        self.obs = p.M
        self.gamma = gamma_exponent(p.beta)
        self.w = self.obs.weights
        self.wx = self.obs.weights * self.obs.values
        self.Xo = p.X  # the observed structure (CSR), shared by every quotient matrix

    @classmethod
    def supports_penalty(cls, pen, beta=None) -> bool:
        return "mu" in pen.solvers

    def _csr(self, data):
        """The (n_samples, n_features) sparse matrix with the observed structure and ``data``."""
        return self.p.nx.with_data(self.Xo, data)

    def _quotients(self, W, H):
        """(Q, P) data on the observed set: Q = M⊙X⊙y^(β−2), P = M⊙y^(β−1), y = WH."""
        nx, beta, eps = self.p.nx, self.p.beta, self.p.eps
        y = nx.sampled_dot_sddmm(W, H, self.Xo)
        if beta == 2.0:
            return self.wx, self.w * y
        nx.clip_min(y, eps, out=y)
        if beta == 1.0:
            return self.wx / y, self.w
        return self.wx * y ** (beta - 2.0), self.w * y ** (beta - 1.0)

    def _finish(self, F, num, den, pen_F, penalties, transposed, frozen=()):
        nx = self.p.nx
        num, den = MultiplicativeUpdate.add_penalties(num, den, pen_F, penalties, transposed)
        den = nx.where(den <= 0, self.p.eps, den)
        num = num / den
        if self.gamma != 1:
            num **= self.gamma
        num = nx.astype(num, nx.dtype_of(F))
        for t in frozen:  # a factor of exactly 1 leaves a frozen component bit-identical
            if transposed:
                num[:, t] = 1
            else:
                num[t] = 1
        F *= num

    def step(self):
        p, nx = self.p, self.p.nx
        if p.update_W:
            q, r = self._quotients(p.W, p.H)
            Ht = p.H.T
            num = nx.matmul(self._csr(q), Ht)
            den = nx.matmul(self._csr(r), Ht)
            self._finish(p.W, num, den, p.W.T, p.penalties_W, True, p.frozen_W)
        if p.update_H:
            q, r = self._quotients(p.W, p.H)
            # dense @ CSR (on torch Xᵀ's structure is computed once and cached by the backend)
            num = nx.matmul(p.W.T, self._csr(q))
            den = nx.matmul(p.W.T, self._csr(r))
            self._finish(p.H, num, den, p.H, p.penalties_H, False, p.frozen_H)

    def objective(self) -> float:
        p = self.p
        # numpy: nmfkit.masked's formulas; a device: the same on the device, one read-back
        div = p.nx.observed_divergence(self.obs, p.W, p.H, p.beta, host=weighted_divergence)
        return div + p.penalty_value()
