"""Extrapolation with restart (Ang & Gillis 2019) for the alternating Frobenius solvers.

A solver that keeps its factors as ``self.Wt`` (k, n) and ``self.Hc`` (k, m) and provides
``_iterate(Wt, Hc) -> (Wt, Hc, objective)`` (one outer iteration from the given point) gets
``_extrapolated_step()``: the iteration starts from the extrapolated point
W + β(W − W_prev), H + β(H − H_prev), projected on ≥ 0. After a success β grows (×γ, capped
by the last β that failed); when the result's objective exceeds the current one, the
iteration is redone from the current point without extrapolation (restart) and β shrinks
(÷η). The reported objective therefore never increases, and the accepted iterates are exactly
those of the plain method whenever extrapolation does not pay.

Memory: two copies of the factors (the current and the previous iterate), no more. The
extrapolated point is written into the previous iterate's buffers (which the step then no
longer needs), and a restart copies the current point into them again, so a step allocates
nothing of the factors' size (the sparse-memory workload of docs/benchmarks.md).

Options (``solver_options``): ``extrapolate`` (on/off), ``beta0``, ``eta``, ``gamma``.
"""

from __future__ import annotations

__all__ = ["Extrapolation", "EXTRAPOLATION_OPTIONS"]

EXTRAPOLATION_OPTIONS = {"extrapolate": True, "beta0": 0.5, "eta": 1.5, "gamma": 1.05}


class Extrapolation:
    """Mixin for Solver subclasses; call ``_init_extrapolation()`` in ``setup``."""

    def _init_extrapolation(self):
        self._f = None  # objective of the current iterate, when known
        self._prev = None  # previous iterate
        self._beta = float(self.options["beta0"])
        self._beta_max = 1.0

    def _reset_extrapolation(self):
        self._prev, self._f = None, None

    def _plain_step(self, keep_prev: bool):
        nx = self.p.nx
        cur = None
        if keep_prev:
            if self._prev is not None and self._prev[0].shape == self.Wt.shape:
                cur = self._prev  # reuse the stale buffers (no new allocation)
                cur[0][...] = self.Wt
                cur[1][...] = self.Hc
            else:
                cur = (nx.copy(self.Wt), nx.copy(self.Hc))
        self._prev = None
        self.Wt, self.Hc, self._f = self._iterate(self.Wt, self.Hc)
        self._prev = cur
        return self._f

    @staticmethod
    def _extrapolate_into(prev, cur, b: float):
        """prev ← max(cur + b(cur − prev), 0), in place (numpy arrays or torch tensors)."""
        prev -= cur
        prev *= -b
        prev += cur
        prev[prev < 0] = 0
        return prev

    def _extrapolated_step(self):
        p, o = self.p, self.options
        if not (o["extrapolate"] and p.update_W and p.update_H):
            return self._plain_step(False)
        if self._prev is None or self._f is None:
            return self._plain_step(True)
        Wp, Hp = self._prev
        self._prev = None  # its buffers now hold the extrapolated point
        b = self._beta
        Wt = self._extrapolate_into(Wp, self.Wt, b)
        Hc = self._extrapolate_into(Hp, self.Hc, b)
        for t in getattr(p, "frozen_W", ()):  # frozen components are never extrapolated
            Wt[t] = self.Wt[t]
        for t in getattr(p, "frozen_H", ()):
            Hc[t] = self.Hc[t]
        Wt, Hc, f = self._iterate(Wt, Hc)
        if f <= self._f:  # success: keep it, extrapolate more boldly
            self._prev = (self.Wt, self.Hc)
            self.Wt, self.Hc, self._f = Wt, Hc, f
            self._beta = min(self._beta_max, b * o["gamma"])
            return f
        # restart from the current point, without extrapolation (into the rejected buffers)
        self._beta_max = b
        self._beta = b / o["eta"]
        self._prev = (Wt, Hc)
        return self._plain_step(True)
