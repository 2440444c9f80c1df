"""Multiplicative updates: Lee & Seung (Frobenius, KL) and Févotte & Idier (any β).

W ← W ⊙ (∇⁻/∇⁺)^γ, with ∇⁻ = (X ⊙ (WH)^(β−2)) Hᵀ and ∇⁺ = (WH)^(β−1) Hᵀ + penalty terms;
γ = 1/(2−β) for β < 1, 1/(β−1) for β > 2, else 1 (the majorisation-minimisation exponent
that makes every update non-increasing). H is updated symmetrically.

The arithmetic follows scikit-learn's ``_fit_multiplicative_update`` step for step (same
order of operations, same safeguards), so that from the same W and H the two agree to
rounding; the safeguards use the working dtype's machine epsilon. For a sparse X the
quotients are formed only at X's stored entries (O(nnz·k)), and (WH)^(β−1) products for
β ∉ {1, 2} in row blocks, never holding all of WH.
"""

from __future__ import annotations

from numbers import Number

from ..backends import row_blocks
from ._base import Solver, register_solver

__all__ = ["MultiplicativeUpdate", "gamma_exponent"]


def gamma_exponent(beta: float) -> float:
    """Févotte & Idier's exponent γ(β) of the MU quotient: monotone MU for every β."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


@register_solver
class MultiplicativeUpdate(Solver):
    name = "mu"
    betas = None  # every β
    multiplicative = True
    sparse = True
    monotone = True
    backends = frozenset({"numpy", "torch"})
    supports_frozen = True

    def stopping_objective(self, f: float) -> float:
        """The loss without the penalties: scikit-learn's MU rule compares the β-divergence
        of the current factors alone, so that with ``alpha_W``/``alpha_H`` it stops where
        scikit-learn's does."""
        pen = self.p.penalty_value()
        return f - float(pen) if pen else f

    def setup(self):
        p = self.p
        self.gamma = gamma_exponent(p.beta)
        # cached products reused across W-updates while H is fixed (transform)
        self._XHt = None
        self._HHt = None
        self._H_sum = None
        # the floor below which a factor entry is set to zero for β ≤ 1 (stability)
        self._zero_floor = 2.220446049250313e-16  # float64 machine epsilon, as scikit-learn

    # ------------------------------------------------------------- quotients
    def _ratio(self, W, H):
        """X ⊙ (WH)^(β−2), sparse with X's structure when X is sparse; and WH (dense) or None."""
        p, nx, beta, eps = self.p, self.p.nx, self.p.beta, self.p.eps
        if p.sparse:
            WH_data = nx.sampled_dot(W, H, p.X)
            X_data = nx.sparse_data(p.X)
            WH = None
        else:
            WH_data = W @ H
            X_data = p.X
            WH = nx.copy(WH_data)
            if beta < 1.0:
                nx.clip_min(WH, eps, out=WH)
        if beta < 2.0:
            nx.clip_min(WH_data, eps, out=WH_data)
        if beta == 1.0:
            nx.divide(X_data, WH_data, out=WH_data)
        elif beta == 0.0:
            WH_data **= -1
            WH_data **= 2
            WH_data *= X_data
        else:
            WH_data **= beta - 2
            WH_data *= X_data
        ratio = nx.with_data(p.X, WH_data) if p.sparse else WH_data
        return ratio, WH

    def _blocked_WH_pow_dot(self, W, H, side: str):
        """(WH)^(β−1) Hᵀ (side 'W') or Wᵀ (WH)^(β−1) (side 'H') without holding WH."""
        nx, beta, eps = self.p.nx, self.p.beta, self.p.eps
        n, m = W.shape[0], H.shape[1]
        if side == "W":
            out = nx.empty_like(W)
            for rows in row_blocks(n, m):
                WHb = W[rows] @ H
                if beta < 1:
                    nx.clip_min(WHb, eps, out=WHb)
                WHb **= beta - 1
                out[rows] = WHb @ H.T
            return out
        out = nx.empty_like(H)
        for cols in row_blocks(m, n):
            WHb = W @ H[:, cols]
            if beta < 1:
                nx.clip_min(WHb, eps, out=WHb)
            WHb **= beta - 1
            out[:, cols] = W.T @ WHb
        return out

    # ------------------------------------------------------------- updates
    def update_W(self):
        """The W half-step, in place (H fixed): one multiplicative update of every free entry.
        Public for the online fit, which updates each batch's W with it."""
        p, nx, beta = self.p, self.p.nx, self.p.beta
        W, H = p.W, p.H
        if beta == 2.0:
            if self._XHt is None:
                self._XHt = nx.matmul(p.X, H.T)
            numerator = nx.copy(self._XHt) if not p.update_H else self._XHt
            if self._HHt is None:
                self._HHt = H @ H.T
            denominator = W @ self._HHt
        else:
            ratio, WH = self._ratio(W, H)
            numerator = nx.matmul(ratio, H.T)
            if beta == 1.0:
                if self._H_sum is None:
                    self._H_sum = nx.sum(H, axis=1)
                denominator = nx.broadcast_to(self._H_sum[None, :], W.shape)
            elif p.sparse:
                denominator = self._blocked_WH_pow_dot(W, H, "W")
            else:
                WH **= beta - 1
                denominator = WH @ H.T
        numerator, denominator = self.add_penalties(numerator, denominator, W.T, p.penalties_W, True)
        nx.fill_where(denominator, denominator == 0, p.eps)
        frozen = list(p.frozen_W)
        self._multiply(W, numerator, denominator, (slice(None), frozen) if frozen else None,
                       beta < 1)
        if p.update_H:
            self._XHt = self._HHt = self._H_sum = None

    def h_terms(self, W, H):
        """The MU numerator ∇⁻_H and denominator ∇⁺_H at (W, H), penalties included and the
        denominator's zeros floored at eps; also WᵀX and WᵀW when β = 2 (else None). Used by
        the H update here and by MiniBatchNMF's online MU."""
        p, nx, beta = self.p, self.p.nx, self.p.beta
        WtX = WtW = None
        if beta == 2.0:
            WtX = nx.matmul(p.Xt, W).T if p.sparse else W.T @ p.X
            WtW = W.T @ W
            numerator = nx.copy(WtX)
            denominator = WtW @ H
        else:
            ratio, WH = self._ratio(W, H)
            numerator = nx.matmul(W.T, ratio)
            if beta == 1.0:
                W_sum = nx.sum(W, axis=0)
                nx.fill_where(W_sum, W_sum == 0, 1.0)
                denominator = nx.broadcast_to(W_sum[:, None], H.shape)
            elif p.sparse:
                denominator = self._blocked_WH_pow_dot(W, H, "H")
            else:
                WH **= beta - 1
                denominator = W.T @ WH
        numerator, denominator = self.add_penalties(numerator, denominator, H, p.penalties_H, False)
        nx.fill_where(denominator, denominator == 0, p.eps)
        return numerator, denominator, WtX, WtW

    def _update_H(self):
        p = self.p
        numerator, denominator, WtX, WtW = self.h_terms(p.W, p.H)
        frozen = list(p.frozen_H)
        self._multiply(p.H, numerator, denominator, frozen or None, p.beta <= 1)
        return WtX, WtW

    def _multiply(self, F, numerator, denominator, frozen, floor: bool):
        """F ← F·(numerator / denominator)^γ in place (the numerator is overwritten); entries
        below the zero floor set to 0 when ``floor`` (β < 1 for W, β ≤ 1 for H, as
        scikit-learn); the components at index ``frozen`` of F kept bit-identical (the MU
        majoriser is separable, so updating only the free entries is still monotone)."""
        nx = self.p.nx
        numerator /= denominator
        if self.gamma != 1:
            numerator **= self.gamma
        kept = nx.copy(F[frozen]) if frozen is not None else None
        F *= numerator
        if floor:
            nx.fill_where(F, F < self._zero_floor, 0.0)
        if frozen is not None:
            F[frozen] = kept

    @staticmethod
    def add_penalties(numerator, denominator, F, penalties, transposed: bool):
        """Add each penalty's MU terms; F is component-major (Wᵀ or H), the update is not
        when ``transposed`` (the W-update works on (n, k))."""
        for pen in penalties:
            term = pen.mu_denominator(F)
            if isinstance(term, Number):
                denominator += term
            else:
                denominator = denominator + (term.T if transposed else term)
            term = pen.mu_numerator(F)
            if term is not None:
                numerator = numerator + (term.T if transposed else term)
        return numerator, denominator

    def step(self):
        p = self.p
        if p.update_W:
            self.update_W()
        if p.update_H:
            WtX, WtW = self._update_H()
            if p.beta == 2.0:
                H = p.H
                return self._frobenius_objective(p.nx.vdot(WtX, H), p.nx.vdot(WtW, H @ H.T))
            return None
        if p.beta == 2.0 and self._XHt is not None:
            W = p.W
            return self._frobenius_objective(p.nx.vdot(self._XHt, W), p.nx.vdot(W.T @ W, self._HHt))
        return None
