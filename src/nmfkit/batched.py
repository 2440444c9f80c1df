"""Batched restarts: B independent NMF fits of the same X in one set of batched products.

Model selection (``n_init``, consensus clustering, cNMF-style replicates) fits the same X many
times from different starts. Run one after another, each fit reads X twice per iteration; here
the B factors are stacked and the two products with X are single wide products over all
restarts (:mod:`nmfkit.solvers.batched_steps`), on numpy or torch (CPU or CUDA).

Solvers: ``"mu"`` (Lee & Seung multiplicative updates) and ``"cd"`` (HALS, one sweep per
half-iteration, batched across restarts), both for the Frobenius loss, dense or sparse X.
Each restart b started from ``init="random"`` with seed ``seeds[b]`` follows the same
trajectory as a single fit from that start (to rounding), stopping on the single fit's rule
(the relative decrease of √(2·objective) over ``check_every`` iterations below ``tol``), so
the best restart is a valid ``n_init`` result. ``batched_factorize`` is a thin call of the
engine's batched runs (:mod:`nmfkit._batched_runs`, which ``NMF(n_init=r)`` uses on a device
and which gives each restart its own stopping rule and history).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._batched_runs import factorize_starts
from ._restarts import restart_seeds
from ._validation import check_non_negative
from .backends import get_backend
from .init import initial_factors

__all__ = ["BatchedResult", "batched_factorize", "restart_seeds"]


@dataclass
class BatchedResult:
    """The B fits. Arrays are in the input's framework (tensors for tensor input).

    Attributes
    ----------
    W : array (B, n_samples, k)
    H : array (B, k, n_features)
    objectives : ndarray (B,), final ½‖X − W_b H_b‖² of each restart (float64, host).
    seeds : ndarray (B,), the seed of each restart's random initialisation.
    n_iter : int, the most iterations any restart ran (each stops on its own rule).
    history : dict, "n_iter" list and "objective" list of (B,) arrays (a restart that has
        stopped keeps its final objective).
    """

    W: object
    H: object
    objectives: np.ndarray
    seeds: np.ndarray
    n_iter: int
    history: dict = field(default_factory=dict)

    @property
    def best(self) -> int:
        """Index of the restart with the lowest final objective."""
        return int(np.argmin(self.objectives))

    def best_factors(self):
        """(W, H) of the best restart: W (n_samples, k), H (k, n_features)."""
        b = self.best
        return self.W[b], self.H[b]


# ------------------------------------------------------------------ public
def batched_factorize(
    X,
    n_components: int,
    *,
    n_restarts: int = 8,
    solver: str = "mu",
    beta_loss="frobenius",
    max_iter: int = 200,
    tol: float = 1e-4,
    check_every: int = 10,
    random_state=None,
    seeds=None,
    backend: str | None = None,
    device=None,
) -> BatchedResult:
    """Fit ``n_restarts`` NMFs of X (Frobenius loss) from random starts, in batched products.

    Parameters
    ----------
    X : array, scipy.sparse matrix or torch tensor (dense or sparse CSR), (n_samples,
        n_features), non-negative.
    n_components : int, the rank k.
    n_restarts : int, the number of restarts B (ignored when ``seeds`` is given).
    solver : {"mu", "cd"}; "cd" is HALS, one sweep per half-iteration.
    beta_loss : "frobenius" or 2 (the batched path handles the Frobenius loss only).
    max_iter, tol, check_every : iterations and the shared stopping rule.
    random_state : int, RandomState or None; draws the restart seeds.
    seeds : sequence of int or None; restart b starts from
        ``nmfkit.init.initialize(X, k, init="random", random_state=seeds[b])``.
    backend, device : as for :class:`nmfkit.NMF` ("torch", "cuda").

    Returns
    -------
    BatchedResult with W (B, n_samples, k), H (B, k, n_features) and the objectives.
    """
    from .losses import beta_loss_to_float

    if beta_loss_to_float(beta_loss) != 2.0:
        raise ValueError(
            f"batched_factorize handles beta_loss='frobenius' only, got {beta_loss!r}; fit "
            "other losses one restart at a time with NMF(n_init=...)."
        )
    if solver not in ("mu", "cd"):
        raise ValueError(f"solver must be 'mu' or 'cd' for batched restarts, got {solver!r}.")
    if not (isinstance(n_components, (int, np.integer)) and n_components >= 1):
        raise ValueError(f"n_components must be an int >= 1, got {n_components!r}.")
    seeds = restart_seeds(random_state, n_restarts) if seeds is None else np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size < 1:
        raise ValueError(f"seeds must be a non-empty 1-D sequence of ints, got {seeds!r}.")
    nx = get_backend(X, backend=backend, device=device)
    X = get_backend(X).checked_input(X, "batched_factorize")  # a tensor on its device
    check_non_negative(X, "batched_factorize")
    k, B = int(n_components), int(seeds.size)
    X, host_input, nx = nx.place(X, k_total=B * k)
    # random starts, exactly those of nmfkit.init.initialize(init="random", seed)
    starts = [initial_factors(nx, X, k, "random", int(s), on_device=True) for s in seeds]
    with nx.compute_context():
        runs = factorize_starts(X, starts, solver=solver, beta=2.0, nx=nx, tol=tol,
                                max_iter=max_iter, check_every=check_every)
    W = nx.stack([r.W for r in runs])
    H = nx.stack([r.H for r in runs])
    if host_input:
        W, H = nx.to_numpy(W), nx.to_numpy(H)
    n_iter = max(r.n_iter for r in runs)
    # each run's objective per iteration, held at its last value once it has stopped
    table = np.array([[h[min(t, len(h) - 1)] for h in (r.history["objective"] for r in runs)]
                      for t in range(n_iter + 1)])
    return BatchedResult(W=W, H=H, objectives=np.array([r.objective for r in runs]),
                         seeds=seeds, n_iter=n_iter,
                         history={"n_iter": list(range(n_iter + 1)), "objective": list(table)})
