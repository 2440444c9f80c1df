"""Helpers that more than one test module uses, written once (``from _helpers import ...``,
as ``from conftest import ...``): the per-iteration recorder of the backend tests, the
MiniBatchNMF data and parameters, the row-block fits' data and in-memory reference, the
report's fitted toy model."""

import warnings

import numpy as np


class Recorder:
    """A fit callback keeping numpy copies of (W, H) after every iteration; ``objectives``
    evaluates them afterwards with numpy (the fit loop itself only evaluates the objective
    at the end when tol=0 and the solver's step does not return it)."""

    def __init__(self, backend):
        self.backend = backend
        self.factors = []

    def __call__(self, info):
        self.factors.append((self.backend.to_numpy(info.W).copy(),
                             self.backend.to_numpy(info.H).copy()))

    def objectives(self, loss, pens=()):
        return np.array([loss(W, H) + sum(p.value(W.T if p.factor == "W" else H) for p in pens)
                         for W, H in self.factors])


# ------------------------------------------------------------------ MiniBatchNMF
MINIBATCH_CASES = [("mu", 2), ("mu", 1), ("mu", 0.5), ("cd", 2), ("anls", 2)]


def planted(n=160, m=24, k=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.gamma(1.0, size=(n, k)) @ (rng.gamma(1.0, size=(k, m)) * (rng.rand(k, m) < 0.5))
    X[X < 0.4] = 0.0  # exact zeros: a sparse X is genuinely sparse
    return X


def minibatch_kw(solver="mu", beta=2, **extra):
    base = {"n_components": 4, "batch_size": 48, "beta_loss": beta, "solver": solver,
            "max_iter": 3, "tol": 0, "max_no_improvement": None, "random_state": 0,
            "init": "nndsvda" if beta != 2 else "random"}
    base.update(extra)
    return base


def minibatch_fit(X, **params):
    from nmfkit import MiniBatchNMF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        est = MiniBatchNMF(**params)
        W = est.fit_transform(X)
    return est, W


# ------------------------------------------------------------------ row-block fits
def lowrank_data(n, m, k=4, seed=0, dtype=np.float64):
    """X = UV + 0.01·noise (n × m) and a non-negative start (W0, H0) of rank k."""
    rng = np.random.RandomState(seed)
    X = (rng.rand(n, k) @ rng.rand(k, m) + 0.01 * rng.rand(n, m)).astype(dtype)
    return X, np.abs(rng.rand(n, k)).astype(dtype), np.abs(rng.rand(k, m)).astype(dtype)


def with_missing(n, m, missing, seed=0, k=5):
    """A rank-k non-negative n × m matrix with a fraction ``missing`` of its entries NaN."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    X[rng.random(X.shape) < missing] = np.nan
    return X


def in_memory(X, W0, H0, solver, beta, max_iter, alpha=0.0):
    """The in-memory fit from (W0, H0) that a row-block fit must equal: tol=0, scikit-learn's
    penalties, CD without inner sweeps."""
    from nmfkit._fit import factorize
    from nmfkit.backends import get_backend
    from nmfkit.penalties import sklearn_penalties

    pens = sklearn_penalties(alpha, "same", 0.5, *X.shape)
    return factorize(
        X, W0.copy(), H0.copy(), solver=solver, beta=beta, nx=get_backend(X), tol=0,
        max_iter=max_iter, penalties_W=[p for p in pens if p.factor == "W"],
        penalties_H=[p for p in pens if p.factor == "H"],
        solver_options={"inner": False} if solver == "cd" else None,
    )


# ------------------------------------------------------------------ the report
def fitted_toy(n_samples):
    """(model, X): NMF(3) fitted to a rank-3 X of n_samples × 16."""
    from nmfkit import NMF

    rng = np.random.RandomState(0)
    X = rng.rand(n_samples, 3) @ rng.rand(3, 16)
    return NMF(n_components=3, max_iter=60, random_state=0).fit(X), X
