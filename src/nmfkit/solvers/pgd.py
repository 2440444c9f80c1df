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

from ._base import register_solver
from ._extrapolation import EXTRAPOLATION_OPTIONS
from .anls import GramAlternating

__all__ = ["ProjectedGradient"]


def _inner_budget(products_cost: float, N: int, k: int, alpha: float, min_inner: int,
                  max_inner: int) -> int:
    rho = products_cost / max(N * k * k, 1)
    return int(max(min_inner, min(max_inner, math.floor(1 + alpha * rho))))


def accelerated_pg(F, G, R, l1: float, l2: float, n_inner: int, delta: float, nx=None):
    """Nesterov projected gradient with function-value restart on one block, returns new F.

    F : (k, N) start (≥ 0), G : (k, k), R : (k, N), numpy arrays or torch tensors of one
    dtype (``nx`` their backend, default numpy). Never increases the block objective.

    Host synchronisation on torch: the step size 1/L once per call (λ_max of the k×k G, on
    the host), then one transfer per inner step of two scalars (the new objective value and
    the squared move), because the restart rule and the early stop are scalar decisions
    that the numpy path takes once per inner step too. A restart costs a second transfer.
    Everything else stays on the device.
    """
    if nx is None:
        from ..backends import get_backend

        nx = get_backend()
    L = nx.eigvalsh_max(G) + l2
    if L <= 0:
        return F
    inv_L = 1.0 / L

    def value(X, GX):
        """½⟨X, GX⟩ − ⟨R, X⟩ + l1·ΣX + ½ l2‖X‖², one float64 reduction left on the device."""
        T = GX * 0.5
        T -= R
        if l1:
            T += l1
        if l2:
            T += (0.5 * l2) * X
        return nx.inner(X, T)

    def step_from(z, Gz):
        """Projected gradient step from z: (x_new, G x_new)."""
        grad = Gz - R
        if l1:
            grad += l1
        if l2:
            grad += l2 * z
        x_new = nx.clip_min(z - inv_L * grad, 0)
        return x_new, G @ x_new

    x, Gx = F, G @ F
    (fx,) = nx.floats(value(x, Gx))
    y, Gy = x, Gx
    t = 1.0
    first_move = None
    for _ in range(n_inner):
        x_new, Gx_new = step_from(y, Gy)
        d = x_new - x
        f_new, move2 = nx.floats(value(x_new, Gx_new), nx.inner(d, d))  # one transfer
        if f_new > fx:  # restart (a scalar decision on numpy too): a plain step from x
            x_new, Gx_new = step_from(x, Gx)
            d = x_new - x
            f_new, move2 = nx.floats(value(x_new, Gx_new), nx.inner(d, d))
            t = 1.0
            if f_new > fx:  # rounding only: keep x
                break
        move = math.sqrt(max(move2, 0.0))
        if first_move is None:
            first_move = move
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = x_new + beta * d
        Gy = Gx_new + beta * (Gx_new - Gx)
        x, Gx, fx, t = x_new, Gx_new, f_new, t_new
        if move <= delta * first_move:
            break
    return nx.ascontiguous(x)


@register_solver
class ProjectedGradient(GramAlternating):
    name = "pgd"
    # torch: the same code on torch tensors (array calls through ``p.nx``)
    backends = frozenset({"numpy", "torch"})
    #: alpha, delta, min_inner, max_inner: the inner-step rule (see the module docstring)
    default_options = {"alpha": 0.5, "delta": 0.1, "min_inner": 10, "max_inner": 50,
                       **EXTRAPOLATION_OPTIONS}

    def setup(self):
        super().setup()
        p = self.p
        n, m = p.X.shape
        self._prod_cost = float(p.nx.sparse_data(p.X).shape[0] if p.sparse else n * m)

    def _solve(self, F, G, R, l1, l2):
        o = self.options
        k, N = F.shape
        n_inner = _inner_budget(self._prod_cost * k + N * k * k, N, k, o["alpha"], o["min_inner"],
                                o["max_inner"])
        return accelerated_pg(F, G, R, l1, l2, n_inner, o["delta"], nx=self.p.nx)
