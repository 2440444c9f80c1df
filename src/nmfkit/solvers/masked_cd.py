"""Masked coordinate descent (Frobenius) with a maintained residual: O(nnz·k) per iteration.

The cheap exact scheme for sparse observations (the non-negative analogue of CCD++, Yu et al.
2012, and of HALS): for one component t at a time, every entry W[i, t] has a closed-form
minimiser given the rest,

    W[i, t] ← max(0, (a_i W[i, t] + g_i − l1) / (a_i + l2)),
    a_i = Σ_{j∈Ω_i} M_ij H[t, j]²,    g_i = Σ_{j∈Ω_i} M_ij R_ij H[t, j],

where R = X − WH is kept only at the observed entries and updated after each component
(R_ij −= ΔW[i, t]·H[t, j]). Each component costs a few passes over the nnz observations
(two weighted ``bincount``), so a whole iteration (W then H) costs O(nnz·k) time and O(nnz)
extra memory — against O(nnz·k²) for the per-row Gram matrices of ``masked_als``. Every
update is an exact minimisation along one block, so the objective never increases; with
every entry observed it is exactly the HALS update of ``solver="cd"``.

Choose it with ``solver="masked_cd"``; ``solver="cd"`` with a mask runs ``masked_als``, which
makes more progress per iteration.
"""

from __future__ import annotations

import numpy as np

from ..masked import sampled_product
from ._base import ComponentMajorSolver, register_solver
from .masked_als import MaskedFrobenius

__all__ = ["MaskedCD"]


@register_solver
class MaskedCD(MaskedFrobenius, ComponentMajorSolver):
    name = "masked_cd"
    masked_for = ()  # reached by name; "cd" maps to masked_als
    supports_frozen = True
    shuffles = True
    default_options = {"inner_max_iter": 1}

    def setup(self):
        obs = self._observed_setup()
        self._init_layout()
        self.x = obs.values
        self.w = obs.weights

    def _sweep(self, F, other, own_idx, other_idx, R, l1, l2, frozen=()):
        """One pass over the components of F (k, N) with the other factor (k, N_other)
        fixed; R (the residual at the observations) is updated in place. Frozen components
        are skipped (never written)."""
        N = F.shape[1]
        w = self.w
        p = self.p
        k = F.shape[0]
        for t in (p.rng.permutation(k) if p.shuffle else range(k)):
            if t in frozen:
                continue
            ot = other[t, other_idx]
            wot = w * ot
            a = np.bincount(own_idx, weights=wot * ot, minlength=N)
            g = np.bincount(own_idx, weights=wot * R, minlength=N)
            den = a + l2
            num = a * F[t] + g - l1
            new = np.divide(num, den, out=F[t].astype(np.float64), where=den > 0)
            np.maximum(new, 0, out=new)
            delta = new - F[t]
            if delta.any():
                R -= delta[own_idx] * ot
                F[t] = new

    def step(self):
        p, obs = self.p, self.obs
        sweeps = int(self.options["inner_max_iter"])
        # a fresh residual each iteration keeps rounding from accumulating
        R = (self.x - sampled_product(obs, self.Wt.T, self.Hc)).astype(np.float64)
        if p.update_W:
            for _ in range(sweeps):
                self._sweep(self.Wt, self.Hc, obs.rows, obs.indices, R, self.l1W, self.l2W,
                            p.frozen_W)
        if p.update_H:
            for _ in range(sweeps):
                self._sweep(self.Hc, self.Wt, obs.indices, obs.rows, R, self.l1H, self.l2H,
                            p.frozen_H)
        loss = 0.5 * float(np.dot(self.w, R * R))
        return loss + p.penalty_value(self.W, self.H)
