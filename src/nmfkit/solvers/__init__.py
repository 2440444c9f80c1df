"""Solvers, one per module, registered in one table (``SOLVERS``).

Importing this package registers every built-in solver. ``get_solver(name, ...)`` checks a
solver against the problem (loss, sparse input, penalties, backend) and names the solvers
that fit when the requested one does not.
"""

from ._base import SOLVERS, Problem, Solver, get_solver, register_solver, solver_table
from . import mu as _mu  # noqa: F401  (registers "mu")
from . import cd as _cd  # noqa: F401  (registers "cd")
from . import masked_mu as _masked_mu  # noqa: F401  (registers "masked_mu")
from . import masked_als as _masked_als  # noqa: F401  (registers "masked_als")
from . import masked_cd as _masked_cd  # noqa: F401  (registers "masked_cd")
from . import anls as _anls  # noqa: F401  (registers "anls")
from . import pgd as _pgd  # noqa: F401  (registers "pgd")
from . import nmfsc as _nmfsc  # noqa: F401  (registers "nmfsc", Hoyer's constraint)
from . import robust_mm as _robust_mm  # noqa: F401  (registers "robust", NMF(loss=...))

__all__ = ["SOLVERS", "Problem", "Solver", "get_solver", "register_solver", "solver_table"]
