"""Projected gradient with Nesterov acceleration (Frobenius, L1/L2), alternating over W and H.

Each half-iteration approximately solves the convex subproblem of one factor,
``min_{F ≥ 0} ½⟨F, GF⟩ − ⟨R, F⟩ + l1·ΣF + ½ l2‖F‖²`` (G, R the Gram products), by Nesterov's
accelerated projected gradient with the safe step 1/L, L = λ_max(G) + l2 the block's
Lipschitz constant (as in NeNMF, Guan et al. 2012). Restart rule (O'Donoghue & Candès): when
an accelerated step would increase the subproblem objective, the momentum is dropped and a
plain projected-gradient step is taken from the last iterate instead — a plain step with
step size 1/L never increases the objective, so every outer iteration is non-increasing.

The number of inner steps follows Gillis & Glineur's rule: 1 + α·ρ, with ρ the cost of the
Gram products over the cost of one inner step, clipped to [``min_inner``, ``max_inner``] (a
gradient step, unlike a HALS sweep, needs several repeats on an ill-conditioned block),
stopping early once a step moves F by less than δ times the first step's move. Each inner step
costs one k×k by k×N product; the gradient at the extrapolated point is a linear combination
of cached products. Across outer iterations, extrapolation with restart (``_extrapolation``,
on by default) as for "anls".
"""

from __future__ import annotations

import math

import numpy as np

from ._base import ComponentMajorSolver, register_solver
from ._extrapolation import EXTRAPOLATION_OPTIONS, Extrapolation

__all__ = ["ProjectedGradient"]


def _inner_budget(products_cost: float, N: int, k: int, alpha: float, min_inner: int,
                  max_inner: int) -> int:
    rho = products_cost / max(N * k * k, 1)
    return int(max(min_inner, min(max_inner, math.floor(1 + alpha * rho))))


def accelerated_pg(F, G, R, l1: float, l2: float, n_inner: int, delta: float):
    """Nesterov projected gradient with function-value restart on one block, returns new F.

    F : (k, N) start (≥ 0), G : (k, k), R : (k, N). Never increases the block objective.
    """
    L = float(np.linalg.eigvalsh(np.asarray(G, dtype=np.float64))[-1]) + l2
    if L <= 0:
        return F
    inv_L = 1.0 / L

    def value(X, GX):
        out = 0.5 * float(np.vdot(X, GX)) - float(np.vdot(R, X))
        if l1:
            out += l1 * float(X.sum())
        if l2:
            out += 0.5 * l2 * float(np.vdot(X, X))
        return out

    x, Gx = F, G @ F
    fx = value(x, Gx)
    y, Gy = x, Gx
    t = 1.0
    first_move = None
    for _ in range(n_inner):
        grad = Gy - R
        if l1:
            grad += l1
        if l2:
            grad += l2 * y
        x_new = np.maximum(y - inv_L * grad, 0)
        Gx_new = G @ x_new
        f_new = value(x_new, Gx_new)
        if f_new > fx:  # restart: a plain projected step from x
            grad = Gx - R
            if l1:
                grad += l1
            if l2:
                grad += l2 * x
            x_new = np.maximum(x - inv_L * grad, 0)
            Gx_new = G @ x_new
            f_new = value(x_new, Gx_new)
            t = 1.0
            if f_new > fx:  # rounding only: keep x
                break
        move = float(np.linalg.norm(x_new - x))
        if first_move is None:
            first_move = move
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = x_new + beta * (x_new - x)
        Gy = Gx_new + beta * (Gx_new - Gx)
        x, Gx, fx, t = x_new, Gx_new, f_new, t_new
        if move <= delta * first_move:
            break
    return np.ascontiguousarray(x, dtype=F.dtype)


@register_solver
class ProjectedGradient(Extrapolation, ComponentMajorSolver):
    name = "pgd"
    betas = (2.0,)
    sparse = True
    monotone = True
    #: alpha, delta, min_inner, max_inner: the inner-step rule (see the module docstring)
    default_options = {"alpha": 0.5, "delta": 0.1, "min_inner": 10, "max_inner": 50,
                       **EXTRAPOLATION_OPTIONS}

    def setup(self):
        p = self.p
        self._init_layout()
        self._init_l1l2()
        self._RW = self._GH = None
        self._init_extrapolation()
        n, m = p.X.shape
        self._prod_cost = float(p.X.nnz if p.sparse else n * m)

    def _factors_replaced(self):
        self._reset_extrapolation()

    def _solve(self, F, G, R, l1, l2):
        o = self.options
        k, N = F.shape
        n_inner = _inner_budget(self._prod_cost * k + N * k * k, N, k, o["alpha"], o["min_inner"],
                                o["max_inner"])
        return accelerated_pg(F, G, R, l1, l2, n_inner, o["delta"])

    def step(self):
        return self._extrapolated_step()

    def _iterate(self, Wt, Hc):
        """One outer iteration from (Wᵀ, H); returns (Wᵀ, H, objective)."""
        p, nx = self.p, self.p.nx
        if p.update_W:
            if self._RW is None or p.update_H:
                self._RW = np.ascontiguousarray(nx.matmul(p.X, Hc.T).T) if p.sparse else Hc @ p.Xt
                self._GH = Hc @ Hc.T
            Wt = self._solve(Wt, self._GH, self._RW, self.l1W, self.l2W)
        if p.update_H:
            R = np.ascontiguousarray(nx.matmul(p.Xt, Wt.T).T) if p.sparse else Wt @ p.X
            G = Wt @ Wt.T
            Hc = self._solve(Hc, G, R, self.l1H, self.l2H)
            return Wt, Hc, self._frobenius_objective(
                nx.vdot(R, Hc), nx.vdot(G, Hc @ Hc.T), Wt.T, Hc
            )
        return Wt, Hc, self._frobenius_objective(
            nx.vdot(self._RW, Wt), nx.vdot(self._GH, Wt @ Wt.T), Wt.T, Hc
        )
