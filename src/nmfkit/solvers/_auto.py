"""``solver="auto"``: the solver nmfkit picks for a problem, from the measurements recorded in
docs/benchmarks.md (the CPU benchmark).

The rule, in order:

* β = 2 (Frobenius): ``"cd"`` with both accelerations on (repeated sweeps and
  extrapolation with restart: ``auto_options``; plain ``solver="cd"`` keeps them off for
  scikit-learn's trajectory). In docs/benchmarks.md it reached scikit-learn's 200-iteration
  objective first on every Frobenius workload (round 4: dense 11.1×, sparse TF-IDF
  3.0–7.0×, ORL faces 4.6×; round 3, before extrapolation was made memory-lean: 10.8×,
  4.5–8.4×, 5.2×); ANLS was second on dense X (1.8×) and far slower on sparse X
  and ORL faces (0.4–0.6×); PGD never reached
  the target within its time cap. The measurements showed no k- or density-dependence that
  would pick another solver, so the rule has none.
* β = 1 (KL): ``"cd"``, Newton coordinate descent (Hsieh & Dhillon): 13× sooner than
  scikit-learn's MU to MU's 200-iteration objective on the KL word counts.
* any other β: ``"mu"``, the only solver for those losses.
* a penalty or backend the preferred solver cannot honour: the first solver in the
  preference order (cd, anls, pgd, mu) that honours everything.
* a mask or missing values: masked ALS (Frobenius), then masked CD, then masked MU (any β,
  graph penalties, torch), the first that honours everything.
"""

from __future__ import annotations

from ._base import SOLVERS

__all__ = ["resolve_solver", "auto_options"]

_PREFERENCE = ("cd", "anls", "pgd", "mu")
# with a mask: exact per-row least squares first (Frobenius), then coordinate descent, then
# masked multiplicative updates (any β, every penalty with an MU form, torch)
_MASKED_PREFERENCE = ("masked_als", "masked_cd", "masked_mu")


def resolve_solver(beta: float, *, sparse: bool = False, n_components=None, penalties=(),
                   backend: str = "numpy", masked: bool = False) -> str:
    """The solver ``"auto"`` stands for, given the loss, the input and the penalties.

    The one rule for every path (numpy, torch, masked): the first solver of the preference
    order that handles the loss, the backend, sparse input, the mask and every penalty.

    Parameters
    ----------
    beta : float, the β of the loss (2 Frobenius, 1 KL, 0 Itakura–Saito, ...).
    sparse : bool, whether X is sparse.
    n_components : int or None, the rank (not used by the current rule; part of the signature
        so that a measured k-dependence can be added without changing callers).
    penalties : the Penalty objects of the fit.
    backend : the backend's name.
    masked : bool, whether only some entries are observed (a mask or missing values).

    Returns
    -------
    str, a registered solver name (when nothing honours everything, the preferred one, so
    that ``get_solver`` explains what is unsupported and what would be).
    """
    first = "cd" if float(beta) in (1.0, 2.0) else "mu"
    order = (first, *[s for s in _PREFERENCE if s != first])
    if masked:
        order = _MASKED_PREFERENCE
    for name in order:
        cls = SOLVERS.get(name)
        if cls is None or not cls.supports_beta(beta) or backend not in cls.backends:
            continue
        if (sparse or masked) and not cls.sparse:
            continue
        if masked and not cls.masks:
            continue
        if all(cls.supports_penalty(p, beta) for p in penalties):
            return name
    return order[0] if not masked else ("masked_als" if float(beta) == 2.0 else "masked_mu")


def auto_options(name: str, beta: float) -> dict:
    """The ``solver_options`` that "auto" adds for the solver it picked (the user's win).

    Frobenius ``cd``: both accelerations, and scikit-learn's stopping measure — the
    projected-gradient violation relative to the first iteration's, ≤ ``tol`` — taken at the
    point each half-step starts from (``stop_rule="violation"``). The error rule it replaces
    compared the decrease over 10 iterations with the *starting* error, which NNDSVDa's mean
    fill inflates (ORL faces: 8,118 against a final 147), and stopped before scikit-learn's
    default error on the TF-IDF and faces benchmarks (docs/benchmarks.md, the defaults table).
    """
    if name == "cd" and float(beta) == 2.0:
        return {"inner": True, "extrapolate": True, "stop_rule": "violation"}
    return {}
