"""What every solver shares: the problem it is handed, its lifecycle, and the registry.

A solver is a class with ``step()`` (one outer iteration: update W, then H when
``update_H``) and ``objective()``; the fit loop in ``nmfkit._fit`` owns everything else
(stopping, history, time limits, callbacks, interrupts). A solver never validates user
input: the estimator has done it. Each solver declares what it supports in class attributes;
``get_solver`` checks them once and names the alternatives when a combination is unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..losses import beta_divergence, frobenius_from_grams
from ._threads import blas_single, n_threads, run_parts, split_even

__all__ = ["Problem", "Solver", "ComponentMajorSolver", "register_solver", "get_solver", "SOLVERS", "solver_table"]


@dataclass
class Problem:
    """Everything a solver needs, already validated.

    X is in the backend's preferred layout (CSR when sparse); ``Xt`` its transpose in the
    same layout. W is (n_samples, k), H is (k, n_features).
    """

    X: Any
    Xt: Any
    W: Any
    H: Any
    beta: float
    nx: Any
    penalties_W: list = field(default_factory=list)
    penalties_H: list = field(default_factory=list)
    update_W: bool = True
    update_H: bool = True
    rng: Any = None
    shuffle: bool = False
    options: dict = field(default_factory=dict)
    _sq_norm_X: float | None = None
    #: frozen components: indices t whose column W[:, t] / row H[t] a solver must leave
    #: bit-identical (solvers with ``supports_frozen``; see nmfkit.penalties docs)
    frozen_W: tuple = ()
    frozen_H: tuple = ()
    #: observed entries and their weights (a nmfkit.masked.Observed), or None when every
    #: entry of X is observed; only solvers with ``masks = True`` accept it
    M: Any = None
    #: W and H are the fit's own arrays (copies or generated starts): a solver may update
    #: them in place instead of copying them (memory; see CoordinateDescent._init_layout)
    owns_factors: bool = False

    @property
    def sparse(self) -> bool:
        return self.nx.issparse(self.X)

    @property
    def dtype(self):
        return self.nx.dtype_of(self.W)

    @property
    def eps(self) -> float:
        return self.nx.eps(self.dtype)

    @property
    def sq_norm_X(self) -> float:
        if self._sq_norm_X is None:
            # within a step's kernel threads (BLAS at one thread), X's halves on the threads
            run = None
            if blas_single() and n_threads() > 1:
                def run(part, size):
                    return run_parts(part, split_even(size, n_threads(), 4096))
            self._sq_norm_X = self.nx.sq_norm(self.X, run=run)
        return self._sq_norm_X

    def penalty_value(self, W=None, H=None) -> float:
        W = self.W if W is None else W
        H = self.H if H is None else H
        # penalties take factors component-major: Wᵀ and H
        return sum(p.value(W.T) for p in self.penalties_W) + sum(
            p.value(H) for p in self.penalties_H
        )


class Solver:
    """Base class of the solvers. Subclasses set the capability attributes and ``step``."""

    name: str = ""
    #: β values supported: a tuple of floats, or None for every β
    betas: tuple | None = (2.0,)
    sparse: bool = True
    #: array backends the solver's code runs on ("torch": written on ``nx`` ops and operators)
    backends: frozenset = frozenset({"numpy"})
    #: True when each outer iteration cannot increase the objective
    monotone: bool = True
    #: True when the solver honours Problem.frozen_W / frozen_H (frozen components)
    supports_frozen: bool = False
    #: True when the solver honours Problem.shuffle: coordinate descent with the components
    #: of each sweep in a random order (solvers without a coordinate order have none to
    #: shuffle: for them ``shuffle`` means nothing, as for scikit-learn's ``mu``)
    shuffles: bool = False
    #: True when the solver fits a mask / weights (Problem.M); see nmfkit.masked
    masks: bool = False
    #: unmasked solver names this masked solver stands in for when a mask is given
    masked_for: tuple = ()
    #: True for multiplicative updates (cannot move an entry away from zero)
    multiplicative: bool = False
    #: solver-specific options with their defaults (passed as ``solver_options``)
    default_options: dict = {}
    #: the fit loop's stopping rule for this solver (nmfkit._fit.run): "error", the relative
    #: decrease of √(2·objective) every 10 iterations; or "violation", scikit-learn's CD rule
    #: (the solver then provides ``violation``, the projected-gradient measure of its step)
    stop_rule: str = "error"

    #: options a backend reads from ``solver_options`` whatever the solver (torch: TF32
    #: products; its KL kernel's float64 accumulation)
    backend_options = frozenset({"allow_tf32", "kl_float64"})

    def __init__(self, problem: Problem):
        self.p = problem
        unknown = sorted(set(problem.options) - set(self.default_options)
                         - self.backend_options)
        if unknown:
            raise ValueError(self.unknown_options_message(unknown))
        self.options = {**self.default_options, **problem.options}
        self.setup()

    @classmethod
    def unknown_options_message(cls, unknown) -> str:
        """Why ``solver_options`` keys ``unknown`` are refused: this solver's own options and
        the solvers that take the first unknown one (an option is never silently ignored)."""
        takers = sorted(n for n, c in SOLVERS.items() if unknown[0] in c.default_options)
        where = (f"; {unknown[0]!r} is an option of solver {takers}" if takers else "")
        own = sorted(cls.default_options) or "none"
        return (f"solver_options {unknown} are not options of solver {cls.name!r} (its "
                f"options: {own}){where}.")

    # lifecycle ------------------------------------------------------------
    def setup(self) -> None:
        """Prepare state before the first step (caches, layouts)."""

    def step(self) -> float | None:
        """One outer iteration. Returns the objective when it is known cheaply, else None."""
        raise NotImplementedError

    @property
    def W(self):
        return self.p.W

    @property
    def H(self):
        return self.p.H

    def get_factors(self):
        """Copies of the current (W, H), safe to keep while the solver goes on."""
        return self.p.nx.copy(self.W), self.p.nx.copy(self.H)

    def set_factors(self, W, H) -> None:
        self.p.W, self.p.H = W, H

    def finalize(self):
        """(W, H) in the public layout, after the last step."""
        return self.W, self.H

    # objective --------------------------------------------------------------
    def objective(self) -> float:
        """Loss plus penalties at the current factors (exact, not the cheap form)."""
        W, H = self.W, self.H
        return beta_divergence(self.p.X, W, H, self.p.beta, nx=self.p.nx) + self.p.penalty_value(
            W, H
        )

    def stopping_objective(self, f: float) -> float:
        """The objective the "error" stopping rule compares, given the full objective ``f``
        (loss plus penalties); a solver that follows scikit-learn's rule may drop terms."""
        return f

    def _frobenius_objective(self, cross: float, gram: float, W=None, H=None) -> float:
        """½‖X − WH‖² from Gram products, plus the penalties."""
        return frobenius_from_grams(self.p.sq_norm_X, cross, gram) + self.p.penalty_value(W, H)

    @classmethod
    def supports_penalty(cls, pen, beta: float | None = None) -> bool:
        """Whether this solver honours the penalty object ``pen`` (for the loss ``beta``,
        where a solver's support depends on it; None: for some loss it handles)."""
        return cls.name in pen.solvers

    @classmethod
    def supports_beta(cls, beta: float) -> bool:
        return cls.betas is None or float(beta) in cls.betas



class ComponentMajorSolver(Solver):
    """A solver that keeps both factors component-major: Wᵀ (k, n) and H (k, m), C-contiguous.

    Each component is then one contiguous row, as the HALS / NNLS kernels want. ``W`` is a
    view of Wᵀ; copies for the fit loop's snapshots and the final factors go through ``nx`` so
    the layout works on every backend. Subclasses call ``_init_layout()`` in ``setup`` and
    override ``_factors_replaced()`` when they cache state derived from the factors.
    """

    def _init_layout(self) -> None:
        nx = self.p.nx
        self.Wt = nx.ascontiguous(self.p.W.T)
        self.Hc = nx.ascontiguous(self.p.H)

    @property
    def W(self):
        return self.Wt.T

    @property
    def H(self):
        return self.Hc

    def get_factors(self):
        nx = self.p.nx
        return nx.copy(self.Wt.T), nx.copy(self.Hc)

    def set_factors(self, W, H) -> None:
        nx = self.p.nx
        self.Wt = nx.ascontiguous(W.T)
        self.Hc = nx.ascontiguous(H)
        self._factors_replaced()

    def _factors_replaced(self) -> None:
        """Hook: the factors were replaced (e.g. restored after an interrupt)."""

    def _init_l1l2(self) -> None:
        """Set l1W, l2W, l1H, l2H from penalties that must all be L1/L2-type."""
        from ..penalties import split_hals

        p = self.p
        self.l1W, self.l2W, extraW = split_hals(p.penalties_W)
        self.l1H, self.l2H, extraH = split_hals(p.penalties_H)
        if extraW or extraH:  # get_solver checks penalty.solvers first; a safety net
            names = sorted({type(q).__name__ for q in [*extraW, *extraH]})
            raise ValueError(f"solver {self.name!r} supports only L1/L2 penalties, got {names}.")

    def finalize(self):
        return self.p.nx.ascontiguous(self.Wt.T), self.Hc

SOLVERS: dict[str, type[Solver]] = {}


def register_solver(cls: type[Solver]) -> type[Solver]:
    """Class decorator: add a solver to the one table."""
    SOLVERS[cls.name] = cls
    return cls


def get_solver(name: str, *, beta: float, beta_param=None, penalties=(), sparse=False,
               backend: str = "numpy", masked: bool = False) -> type[Solver]:
    """The solver class for ``name``, after checking it supports the requested problem.

    ``masked=True``: the problem has a mask / weights or missing values (Problem.M).
    """
    if name not in SOLVERS:
        raise ValueError(
            f"Invalid solver parameter {name!r}. Known solvers: {sorted(SOLVERS)}."
        )
    cls = SOLVERS[name]
    if not cls.supports_beta(beta):
        ok = sorted(n for n, c in SOLVERS.items() if c.supports_beta(beta))
        shown = beta_param if beta_param is not None else beta
        raise ValueError(
            f"Invalid beta_loss parameter: solver {name!r} does not handle "
            f"beta_loss = {shown!r}; solvers that do: {ok}."
        )
    if sparse and not cls.sparse:
        ok = sorted(n for n, c in SOLVERS.items() if c.sparse and c.supports_beta(beta))
        raise ValueError(
            f"solver {name!r} does not accept sparse X; use one of {ok} or densify X."
        )
    if masked and not cls.masks:
        ok = sorted(n for n, c in SOLVERS.items() if c.masks and c.supports_beta(beta))
        raise ValueError(
            f"solver {name!r} cannot honour a mask or missing values; solvers that can: {ok}"
            " ('cd' and 'mu' switch to their masked variants automatically)."
        )
    for pen in penalties:
        if not cls.supports_penalty(pen, beta):
            ok = sorted(n for n, c in SOLVERS.items()
                        if c.supports_penalty(pen, beta) and c.supports_beta(beta)
                        and (c.masks or not masked) and backend in c.backends)
            raise ValueError(
                f"solver {name!r} cannot honour the penalty {type(pen).__name__} on "
                f"{pen.factor}; solvers that can: {ok}."
            )
    if backend not in cls.backends:
        raise ValueError(
            f"solver {name!r} has no {backend!r} backend; it supports {sorted(cls.backends)}."
        )
    return cls


def solver_table() -> list[dict]:
    """What each registered solver supports, for docs and ``nmfkit info``."""
    rows = []
    for name, cls in sorted(SOLVERS.items()):
        rows.append(
            {
                "solver": name,
                "beta": "any" if cls.betas is None else list(cls.betas),
                "sparse": cls.sparse,
                "backends": sorted(cls.backends),
                "monotone": cls.monotone,
                "masks": cls.masks,
            }
        )
    return rows
