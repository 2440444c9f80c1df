"""Penalties on one factor (W or H) as small composable objects.

A penalty knows its value, its gradient, how it enters a multiplicative update (the
positive part of its gradient joins the denominator, the negative part the numerator) and
how it enters a HALS / coordinate-descent update of one component (``hals_terms``: it
subtracts its gradient from the update's numerator and returns the curvature it adds, a
scalar or a vector that majorises its Hessian's diagonal, so the update stays monotone).
L1 and L2 also expose ``hals()`` = (l1, l2) for the kernel's fast path.

Layout: every method receives the factor **component-major**, shape (k, N): Wᵀ for a
penalty on W (N = n_samples), H itself for a penalty on H (N = n_features). Penalties are
written once for both factors. Each penalty lists the solvers that can honour it; the estimator checks that
list once, before fitting, and a solver never has to guess.

Backends: the methods work on the factor's own framework — numpy arrays, or torch tensors on
any device (the torch backend). L1 and L2 use operators only; :class:`Graph` keeps its
affinity as scipy CSR and makes a torch sparse CSR copy on the factor's device and dtype the
first time it sees a tensor (cached), so the numpy path is unchanged.

scikit-learn's ``alpha_W``, ``alpha_H`` and ``l1_ratio`` map onto :class:`L1` and :class:`L2`
with scikit-learn's scaling (``l1 = alpha_W · l1_ratio · n_features`` for W, etc.):

    ½‖X − WH‖² + l1_W‖W‖₁ + ½ l2_W‖W‖²_F + l1_H‖H‖₁ + ½ l2_H‖H‖²_F

:class:`Graph` is the graph-regularised NMF penalty (GNMF, Cai, He, Han & Huang 2011):
½λ·tr(Wᵀ L W) with L = D − A the Laplacian of a sample affinity A (or ½λ·tr(H L Hᵀ) for a
feature graph). Its MU and HALS terms use the signless Laplacian D + A ⪰ 0, so that 2D ⪰ L
majorises the Hessian and every update stays monotone (see :class:`Graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import get_backend

__all__ = ["Penalty", "L1", "L2", "Graph", "sklearn_penalties", "split_hals", "has_hals_form"]


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
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float, np.number)):
            raise TypeError(f"{type(self).__name__} weight must be a number, got "
                            f"{type(self.weight).__name__}: {self.weight!r}.")
        if not (self.weight >= 0) or not np.isfinite(self.weight):
            raise ValueError(
                f"{type(self).__name__} weight must be >= 0 and finite, got {self.weight!r}."
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

    def mu_numerator(self, F):
        """Term added to the MU numerator (the negative part of the gradient), or None."""
        return None

    def hals_terms(self, t: int, F, num):
        """Subtract this penalty's gradient for component t from ``num`` (in place) and
        return the curvature added to the update's denominator (scalar or vector of length N).

        The default uses ``hals()`` = (l1, l2): num −= l1 + l2·F[t]; curvature l2.
        """
        l1, l2 = self.hals()
        if l1:
            num -= l1
        if l2:
            num -= l2 * F[t]
        return l2

    def hals(self) -> tuple[float, float]:
        """(l1 shift, l2 diagonal) for a coordinate-descent update, when expressible."""
        raise NotImplementedError(f"{type(self).__name__} is not an L1/L2-type penalty")


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


@dataclass(frozen=True)
class Graph(Penalty):
    r"""Graph regularisation ½λ·tr(F L Fᵀ) = ¼λ Σ_ij A_ij ‖F[:, i] − F[:, j]‖² (GNMF).

    With ``factor="W"`` (the default) F = Wᵀ and A is an (n_samples × n_samples) affinity
    between samples: samples that are neighbours in A get similar coefficients. With
    ``factor="H"``, A is an (n_features × n_features) affinity between features.

    The ½ makes λ mean what it means in Cai et al. (2011), whose objective
    ‖X − UVᵀ‖² + λ tr(VᵀLV) is twice ours (½‖X − WH‖² + ½λ tr(WᵀLW)).

    Updates: the gradient is λ L F. Multiplicative updates add λ(D + A)F to the
    numerator and 2λ D F to the denominator; since 2D − L = D + A (the signless Laplacian) is
    positive semi-definite, diag(2λD) majorises the penalty's Hessian and the Frobenius MU
    stays a majorise-minimise step (Cai et al.'s own update, numerator λAF and denominator
    λDF, is monotone only element by element). HALS uses the same majorant 2λ·diag(D) as its
    curvature.

    Parameters
    ----------
    weight : float ≥ 0, λ.
    factor : "W" or "H".
    affinity : array or sparse matrix (N, N), symmetric, non-negative. Its diagonal is
        ignored (self-loops do not change tr(F L Fᵀ)). Build one with
        :func:`nmfkit.graph.knn_affinity`.
    """

    affinity: Any = field(default=None, compare=False, repr=False)

    degree = 2  # value(cF) = c²·value(F)
    solvers: frozenset = frozenset({"mu", "cd"})

    def __post_init__(self):
        super().__post_init__()
        from .graph import check_affinity

        A = check_affinity(self.affinity, name=f"Graph({self.factor}) affinity")
        object.__setattr__(self, "affinity", A)
        object.__setattr__(self, "_deg", np.asarray(A.sum(axis=1)).ravel())
        object.__setattr__(self, "_cache", {})

    @property
    def size(self) -> int:
        """N, the number of nodes (n_samples for W, n_features for H)."""
        return self.affinity.shape[0]

    def _A_d(self, F):
        """(A, degrees) in F's framework, device and dtype, cached, so float32 stays float32
        and a torch factor gets a torch sparse CSR affinity on its own device (moved once)."""
        key = (str(F.dtype), str(getattr(F, "device", None)))  # numpy's and torch's dtypes differ
        if key not in self._cache:
            nx = get_backend(F)
            self._cache[key] = (nx.to_like(self.affinity, F), nx.to_like(self._deg, F))
        return self._cache[key]

    def _AF(self, F):
        """A Fᵀ transposed back: (k, N), C-ordered (CSR @ a contiguous dense: CUDA too)."""
        A, _ = self._A_d(F)
        nx = get_backend(F)
        return nx.ascontiguous(nx.matmul(A, nx.ascontiguous(F.T)).T)

    def value(self, F) -> float:
        if not self.active:
            return 0.0
        nx = get_backend(F)  # float64 sums where F lives, one read-back on a device
        F64 = nx.astype(F, "float64")
        _, d = self._A_d(F64)
        quad_d, quad_a = nx.floats(nx.inner(nx.sum(F64 * F64, axis=0), d),
                                   nx.inner(F64, self._AF(F64)))
        return 0.5 * self.weight * max(quad_d - quad_a, 0.0)

    def grad(self, F):
        _, d = self._A_d(F)
        return self.weight * (F * d - self._AF(F))

    def mu_denominator(self, F):
        _, d = self._A_d(F)
        return (2.0 * self.weight) * (F * d)

    def mu_numerator(self, F):
        _, d = self._A_d(F)
        return self.weight * (F * d + self._AF(F))

    def hals_terms(self, t: int, F, num):
        """num −= λ (L F[t]); curvature 2λ·D (a vector), which majorises λL."""
        if not self.active:
            return 0.0
        A, d = self._A_d(F)
        Lf = d * F[t] - A @ F[t]
        num -= self.weight * Lf
        return (2.0 * self.weight) * d

    def hals(self):
        raise NotImplementedError("Graph is not an L1/L2-type penalty")


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


def has_hals_form(pen) -> bool:
    """Whether a penalty is L1/L2-like (has ``hals()``), the form the masked solvers take."""
    try:
        pen.hals()
    except NotImplementedError:
        return False
    return True


def split_hals(penalties) -> tuple[float, float, list]:
    """(total l1, total l2, other penalties) for the HALS kernel.

    L1/L2-like penalties (those with ``hals()``) collapse into two scalars, the fast path;
    the others are passed to the kernel and used through ``hals_terms``.
    """
    l1 = l2 = 0.0
    extra = []
    for p in penalties:
        try:
            a, b = p.hals()
        except NotImplementedError:
            extra.append(p)
            continue
        l1 += a
        l2 += b
    return l1, l2, extra
