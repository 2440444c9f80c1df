"""``solver_options`` keys are checked against the solver that runs: a key it does not read is
refused with an error naming its options and the solvers that take that key — on every path
(plain, missing values, robust losses, every backend), never silently ignored."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import nmfkit
from nmfkit.solvers import SOLVERS


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.random((40, 4)) @ rng.random((4, 30))


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nmfkit.NMF(3, max_iter=5, random_state=0, **kw).fit(X)


@pytest.mark.parametrize("solver, beta", [("cd", 2), ("cd", 1), ("mu", 2), ("mu", 0.5),
                                          ("anls", 2), ("pgd", 2), ("auto", 2), ("auto", 1)])
def test_an_unknown_option_is_refused_by_every_solver(X, solver, beta):
    with pytest.raises(ValueError, match=r"solver_options \['no_such_option'\] are not options"):
        _fit(X, solver=solver, beta_loss=beta, solver_options={"no_such_option": 1})


def test_another_solvers_option_names_the_solvers_that_take_it(X):
    with pytest.raises(ValueError, match=r"'inner' is an option of solver \['cd'\]"):
        _fit(X, solver="mu", solver_options={"inner": True})
    with pytest.raises(ValueError, match=r"solver 'anls'.*'min_inner' is an option of "
                                         r"solver \['pgd'\]"):
        _fit(X, solver="anls", solver_options={"min_inner": 3})


def test_each_solvers_own_options_are_taken(X):
    for solver, opts in [("cd", {"inner": True, "delta": 0.1}), ("pgd", {"min_inner": 3}),
                         ("anls", {"warm_start": False})]:
        _fit(X, solver=solver, solver_options=opts)
        _fit(sp.csr_matrix(X), solver=solver, solver_options=opts)
    _fit(X, solver="mu", solver_options={"allow_tf32": False})  # a backend's option


def test_every_registered_solver_refuses_what_it_does_not_read():
    for name, cls in SOLVERS.items():
        msg = cls.unknown_options_message(["zzz"])
        assert repr(name) in msg and "zzz" in msg


def test_the_masked_and_robust_paths_refuse_unknown_options(X):
    Xm = X.copy()
    Xm[::7, ::5] = np.nan
    with pytest.raises(ValueError, match="not options of solver 'masked_als'"):
        _fit(Xm, missing_values=np.nan, solver_options={"inner": True})
    _fit(Xm, missing_values=np.nan, solver_options={"inner_max_iter": 2})
    with pytest.raises(ValueError, match="not options of solver 'robust'"):
        _fit(X, loss="huber", solver_options={"inner": True})
    _fit(X, loss="huber", solver_options={"update": "hals"})


def test_the_torch_backend_refuses_unknown_options(X):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="not options of solver 'cd'"):
        _fit(X, backend="torch", solver="cd", solver_options={"no_such_option": 1})
    _fit(X, backend="torch", solver="cd", solver_options={"allow_tf32": False})
