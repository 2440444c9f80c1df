"""Penalties on one factor (W or H) as small composable objects.

A penalty knows its value, its gradient, how it enters a multiplicative update (as a term
added to the denominator: the positive part of its gradient) and how it enters a HALS /
coordinate-descent column update (an L1 shift of the numerator and an L2 addition to the
Gram diagonal). Each penalty lists the solvers that can honour it; the estimator checks that
list once, before fitting, and a solver never has to guess.

scikit-learn's ``alpha_W``, ``alpha_H`` and ``l1_ratio`` map onto :class:`L1` and :class:`L2`
with scikit-learn's scaling (``l1 = alpha_W · l1_ratio · n_features`` for W, etc.):

    ½‖X − WH‖² + l1_W‖W‖₁ + ½ l2_W‖W‖²_F + l1_H‖H‖₁ + ½ l2_H‖H‖²_F
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Penalty", "L1", "L2", "sklearn_penalties", "split_hals"]


@dataclass(frozen=True)
class Penalty:
    """Base class. ``factor`` is "W" or "H"; ``weight`` the multiplier λ ≥ 0."""

    weight: float = 0.0
    factor: str = "W"

    #: homogeneity: value(c·F) = c**degree · value(F); used to rescale extreme data
    degree = 1
    #: solvers that can honour this penalty
    solvers: frozenset = frozenset()

    def __post_init__(self):
        if self.factor not in ("W", "H"):
            raise ValueError(f"factor must be 'W' or 'H', got {self.factor!r}.")
        if not (self.weight >= 0):
            raise ValueError(
                f"{type(self).__name__} weight must be >= 0, got {self.weight!r}."
            )

    @property
    def active(self) -> bool:
        return self.weight > 0

    def value(self, F) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, F):  # pragma: no cover - abstract
        raise NotImplementedError

    def mu_denominator(self, F):
        """Term added to the MU denominator (the positive part of the gradient)."""
        return self.grad(F)

    def hals(self) -> tuple[float, float]:
        """(l1 shift, l2 diagonal) for a coordinate-descent update, when expressible."""
        raise NotImplementedError(
            f"{type(self).__name__} has no coordinate-descent form; use one of "
            f"{sorted(self.solvers)}."
        )


_ELEMENTWISE_SOLVERS = frozenset({"mu", "cd", "anls", "pgd"})


@dataclass(frozen=True)
class L1(Penalty):
    """λ‖F‖₁ (sparsity). Gradient λ on F ≥ 0."""

    degree = 1  # value(cF) = c·value(F)
    solvers: frozenset = _ELEMENTWISE_SOLVERS

    def value(self, F) -> float:
        return float(self.weight * F.sum())

    def grad(self, F):
        return self.weight

    def hals(self):
        return (self.weight, 0.0)


@dataclass(frozen=True)
class L2(Penalty):
    """½λ‖F‖²_F (ridge). Gradient λF."""

    degree = 2  # value(cF) = c²·value(F)
    solvers: frozenset = _ELEMENTWISE_SOLVERS

    def value(self, F) -> float:
        s = float((F * F).sum())
        return 0.5 * self.weight * s

    def grad(self, F):
        return self.weight * F

    def hals(self):
        return (0.0, self.weight)


def sklearn_penalties(alpha_W, alpha_H, l1_ratio, n_samples, n_features) -> list[Penalty]:
    """scikit-learn's regularisation parameters as penalties, with its scaling."""
    alpha_H = alpha_W if alpha_H == "same" else alpha_H
    out = [
        L1(n_features * alpha_W * l1_ratio, "W"),
        L2(n_features * alpha_W * (1.0 - l1_ratio), "W"),
        L1(n_samples * alpha_H * l1_ratio, "H"),
        L2(n_samples * alpha_H * (1.0 - l1_ratio), "H"),
    ]
    return [p for p in out if p.active]


def split_hals(penalties) -> tuple[float, float]:
    """Total (l1, l2) of penalties that have a coordinate-descent form."""
    l1 = l2 = 0.0
    for p in penalties:
        a, b = p.hals()
        l1 += a
        l2 += b
    return l1, l2
