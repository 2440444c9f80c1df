"""Non-smooth NMF (nsNMF, Pascual-Montano et al. 2006): X ≈ W S H with a smoothing matrix S.

S = (1 − θ) I + (θ/k) 11ᵀ, θ ∈ [0, 1], k the rank. S averages the components towards their
mean, so for the product W S H to fit X the factors W and H themselves must be sparse: θ
concentrates sparseness without a penalty weight to tune. θ = 0 is plain NMF (S = I).

In nmfkit's orientation (X n_samples × n_features) the estimator stores
``components_ = S H``, so that ``inverse_transform(W) = W @ components_ = W S H`` and
``transform`` solves for W against the smoothed components: the two are consistent with each
other and with the fit. The unsmoothed H is kept in ``components_unsmoothed_``.

The solver runs on the problem's backend (numpy or torch): S is built once on the factors'
framework, device and dtype (``smoothing_matrix_like``), and the half-steps use only
operators and ``nx`` calls.

Any alternating solver serves: one nsNMF iteration is one W-step of the solver on
X ≈ W (S H) with S H fixed, then one W-step of the same solver on the transposed problem
Xᵀ ≈ Hᵀ (W S)ᵀ. Each half-step is the solver's own monotone update on a well-posed
sub-problem, so the objective D_β(X | W S H) + penalties never increases when the solver's
updates do not.
"""

from __future__ import annotations

import numpy as np

from .losses import beta_divergence
from .solvers._base import Problem, Solver

__all__ = ["smoothing_matrix", "smoothing_matrix_like", "smoothed_solver"]


def smoothing_matrix(k: int, theta: float, dtype=np.float64) -> np.ndarray:
    """S = (1 − θ) I + (θ/k) 11ᵀ, shape (k, k)."""
    return smoothing_matrix_like(np.empty((k, 0), dtype=dtype), theta)


def smoothing_matrix_like(F, theta: float):
    """S for the rank of F (k, N) in F's framework, device and dtype (numpy or torch): θ/k,
    and θ/k + (1 − θ) on the diagonal, each rounded once to F's dtype on every backend."""
    from .backends import get_backend

    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"smoothness (theta) must lie in [0, 1], got {theta!r}.")
    k = F.shape[0]
    return get_backend(F).eye(k, F) * (1.0 - theta) + theta / k


def smoothed_solver(inner: type[Solver], theta: float) -> type[Solver]:
    """A solver class that fits X ≈ W S H with ``inner``'s updates (see module doc).

    Its ``finalize`` returns (W, H) with the raw H; the estimator forms S H.
    """

    class Smoothed(Solver):
        name = inner.name
        betas = inner.betas
        sparse = inner.sparse
        backends = inner.backends
        monotone = inner.monotone
        supports_frozen = inner.supports_frozen
        shuffles = inner.shuffles
        default_options = inner.default_options

        def setup(self):
            p = self.p
            self.S = smoothing_matrix_like(p.H, theta)

        def _sub(self, X, Xt, W, Hfixed, penalties, frozen):
            p = self.p
            return Problem(
                X=X, Xt=Xt, W=W, H=Hfixed, beta=p.beta, nx=p.nx, penalties_W=penalties,
                penalties_H=[], update_W=True, update_H=False, rng=p.rng, shuffle=p.shuffle,
                options=p.options, _sq_norm_X=p.sq_norm_X, frozen_W=frozen,
            )

        def step(self):
            p = self.p
            if p.update_W:
                sub = self._sub(p.X, p.Xt, p.W, self.S @ p.H, p.penalties_W, p.frozen_W)
                solver = inner(sub)
                solver.step()
                p.W = p.nx.ascontiguous(solver.finalize()[0])
            if p.update_H:
                # Xᵀ ≈ Hᵀ (W S)ᵀ: H's update is a W-step of the transposed problem
                WS = p.W @ self.S
                sub = self._sub(p.Xt, p.X, p.nx.ascontiguous(p.H.T), WS.T, p.penalties_H,
                                p.frozen_H)
                solver = inner(sub)
                solver.step()
                p.H = p.nx.ascontiguous(solver.finalize()[0].T)
            return None

        def objective(self) -> float:
            p = self.p
            return beta_divergence(p.X, p.W, self.S @ p.H, p.beta, nx=p.nx) + p.penalty_value()

    Smoothed.__name__ = Smoothed.__qualname__ = f"Smoothed{inner.__name__}"
    return Smoothed
