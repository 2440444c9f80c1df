"""Fit data of extreme magnitude at unit scale, and report the result on the data's scale.

The β-divergence is homogeneous: D_β(sX | sWH) = s^β D_β(X | WH), and an L1/L2/graph penalty
of degree d on W or H scales as (√s)^d when both factors are scaled by √s. So fitting
X' = X/s from (W/√s, H/√s), with each penalty weight multiplied by (√s)^d / s^β, is the same
problem; the factors are scaled back by √s, objectives by s^β and errors by s^(β/2).

This module is the one place that does it, for every path (dense, sparse, observed entries,
numpy, torch). s is a power of two with an even exponent, so dividing and multiplying by s and
√s is exact in binary floating point (also for subnormal data such as 1e-310), and data whose
largest value lies within [2⁻²⁰, 2²⁰] is left untouched (s = 1), so ordinary fits keep their
exact trajectories. It is applied where data enters a fit, before the initial factors are
drawn: NNDSVD and random starts of data at 1e-310 or near float32's largest value would
otherwise overflow or underflow before any update runs.
"""

from __future__ import annotations

import dataclasses
import math
import sys

__all__ = ["UnitScale"]

#: data whose largest value lies in this range is fitted as it is
_LOW, _HIGH = 2.0**-20, 2.0**20


def _times_pow2(value: float, exponent: float) -> float:
    """value · 2**exponent as a finite float: saturates at the largest float64 instead of
    overflowing (an objective on the data's scale that float64 cannot hold), underflows to 0."""
    if value == 0 or exponent == 0:
        return float(value)
    whole = math.floor(exponent)
    value = value * 2.0 ** (exponent - whole)
    try:
        return math.ldexp(value, int(whole))
    except OverflowError:
        return math.copysign(sys.float_info.max, value)


def _times(a, exponent: int):
    """a · 2**exponent for an array of any backend (numpy, scipy.sparse, torch)."""
    from .backends import get_backend

    return get_backend(a).times_pow2(a, exponent)


@dataclasses.dataclass(frozen=True)
class UnitScale:
    """The scale s = 2**exponent of one fit's data (exponent even; 0 when not rescaled).

    Build it with :meth:`of` from the data's largest value and the loss's β.
    """

    exponent: int = 0
    beta: float = 2.0

    @classmethod
    def of(cls, top: float, beta: float) -> "UnitScale":
        """The scale for data whose largest value is ``top`` (s = 1 for ordinary data)."""
        top = float(top)
        if not (top > 0 and math.isfinite(top)) or _LOW <= top <= _HIGH:
            return cls(0, float(beta))
        e = math.frexp(top)[1]  # top = m·2^e, m in [0.5, 1)
        return cls(e - (e % 2), float(beta))

    @property
    def active(self) -> bool:
        return self.exponent != 0

    @property
    def s(self) -> float:
        return math.ldexp(1.0, self.exponent)  # exact, subnormal included

    @property
    def root(self) -> float:
        return math.ldexp(1.0, self.exponent // 2)

    # ------------------------------------------------------------------ into unit scale
    def data(self, X, nx):
        """X / s on X's backend (dense or sparse), X itself when s = 1."""
        return nx.times_pow2(X, -self.exponent) if self.active else X

    def values(self, v):
        """An array of data values (e.g. the observed entries) divided by s."""
        return _times(v, -self.exponent) if self.active else v

    def factor_in(self, F):
        """A factor given on the data's scale (a custom start, a fixed H) at unit scale."""
        return F if (F is None or not self.active) else _times(F, -self.exponent // 2)

    def penalties(self, penalties):
        """Penalty objects with their weights for the unit-scale problem."""
        if not self.active:
            return list(penalties)
        out = []
        for pen in penalties:
            degree = getattr(pen, "degree", 1)
            weight = _times_pow2(pen.weight, self.exponent * (degree / 2 - self.beta))
            out.append(dataclasses.replace(pen, weight=weight))
        return out

    # ---------------------------------------------------------------- back to data scale
    def factor_out(self, F):
        return F if (F is None or not self.active) else _times(F, self.exponent // 2)

    def objective_out(self, f: float) -> float:
        return _times_pow2(float(f), self.exponent * self.beta) if self.active else float(f)

    def error_out(self, e: float) -> float:
        """An error √(2·D) on the data's scale (s^(β/2) times the unit-scale one)."""
        return _times_pow2(float(e), self.exponent * self.beta / 2) if self.active else float(e)

    def result_out(self, result):
        """A FitResult (nmfkit._fit) brought back to the data's scale, in place."""
        if self.active:
            result.W = self.factor_out(result.W)
            result.H = self.factor_out(result.H)
            result.objective = self.objective_out(result.objective)
            result.history["objective"] = [self.objective_out(f)
                                           for f in result.history["objective"]]
        return result


def error_on_data_scale(X, W, H, beta: float, divergence, nx) -> float:
    """√(2·D_β(X | WH)) computed at unit scale and reported on X's scale, so that data at
    1e-200 gets its true error (≈ 1e-200 · the relative error), not an underflowed 0.

    ``divergence(X, W, H)`` returns D_β on any scale; ``nx`` is X's backend.
    """
    scale = UnitScale.of(nx.max(X), beta)
    d = divergence(scale.data(X, nx), scale.factor_in(W), scale.factor_in(H))
    return scale.error_out(math.sqrt(2.0 * max(float(d), 0.0)))
