"""Stopping rules: each solver stops where its rule says, and plain "cd" / "mu" where
scikit-learn's own solvers stop (scikit-learn is the oracle: same data, same start)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF as SkNMF
from sklearn.feature_extraction.text import TfidfTransformer

from nmfkit import NMF, _fit
from nmfkit.losses import beta_divergence
from nmfkit.solvers._hals_kernel import hals_sweep_violation


def _dense_lowrank(n=600, m=200, k=10, seed=0):
    """A small W1: X = UV + 0.1·noise, float32."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, k), dtype=np.float32) @ rng.random((k, m), dtype=np.float32)
    return X + np.float32(0.1) * rng.random((n, m), dtype=np.float32)


def _tfidf(n=400, m=1500, seed=0):
    """Sparse TF-IDF of Zipf-distributed word counts."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, m + 1) ** 1.05
    rows = np.repeat(np.arange(n), rng.integers(20, 120, n))
    cols = rng.choice(m, rows.size, p=p / p.sum())
    C = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, m))
    C.sum_duplicates()
    return sp.csr_matrix(TfidfTransformer(sublinear_tf=True).fit_transform(C))


DATA = {
    "digits": lambda: (load_digits().data, 16),
    "dense-lowrank": lambda: (_dense_lowrank(), 10),
    "tfidf": lambda: (_tfidf(), 8),
}
CASES = [
    ("cd", {}),
    ("mu", {}),
    ("cd", {"alpha_W": 0.001, "l1_ratio": 0.5}),
    ("mu", {"alpha_W": 0.001, "alpha_H": 0.002, "l1_ratio": 0.3}),
    ("mu", {"beta_loss": "kullback-leibler", "init": "nndsvda", "rows": 300}),
]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("solver,params", CASES)
def test_cd_and_mu_stop_where_scikit_learn_stops(data, solver, params):
    X, k = DATA[data]()
    params = dict(params)
    X = X[: params.pop("rows", X.shape[0])]  # dense KL is slow: fewer rows
    # the same start: init=None is NNDSVDa from a cheaper SVD in nmfkit (nmfkit.init)
    params.setdefault("init", "nndsvda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning from both when max_iter is hit
        ref = SkNMF(k, solver=solver, random_state=0, **params)
        W_ref = ref.fit_transform(X)
        got = NMF(k, solver=solver, random_state=0, **params).fit(X)
    assert abs(got.n_iter_ - ref.n_iter_) <= 2, (got.n_iter_, ref.n_iter_)
    err_ref = ref.reconstruction_err_
    if X.dtype == np.float32 and "beta_loss" in params:
        # scikit-learn sums the KL divergence in float32 (17.0905 for factors whose error is
        # 17.0856 in float64; its components agree with nmfkit's to 4e-6): the reference is
        # its factors' error evaluated in float64, which is what nmfkit reports
        W64, H64 = W_ref.astype(np.float64), ref.components_.astype(np.float64)
        err_ref = np.sqrt(2 * beta_divergence(X.astype(np.float64), W64, H64, 1.0))
    assert got.reconstruction_err_ == pytest.approx(err_ref, rel=1e-4)
    assert got.stop_reason_ in ("tol", "max_iter")


def test_cd_stops_early_by_violation_not_at_a_multiple_of_ten():
    # the digits at tol=1e-2: scikit-learn's CD stops at an iteration that is no multiple of
    # ten, which the relative-error rule (checked every 10 iterations) cannot produce
    X = load_digits().data
    ref = SkNMF(16, solver="cd", tol=1e-2, random_state=0).fit(X)
    got = NMF(16, solver="cd", tol=1e-2, random_state=0).fit(X)
    assert got.n_iter_ == ref.n_iter_ and got.stop_reason_ == "tol"
    assert ref.n_iter_ % 10 != 0


@pytest.mark.parametrize("l1,l2", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.2, 0.4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_violation_of_one_sweep_equals_scikit_learns(l1, l2, dtype):
    from sklearn.decomposition._nmf import _update_coordinate_descent

    rng = np.random.default_rng(1)
    X = rng.random((50, 30)).astype(dtype)
    W = rng.random((50, 6)).astype(dtype)
    W[rng.random(W.shape) < 0.3] = 0  # zeros: the projected gradient's other branch
    H = rng.random((6, 30)).astype(dtype)
    H[2] = 0  # a dead component (zero Gram diagonal) still contributes to the violation
    Wsk = np.ascontiguousarray(W.copy())
    v_sk = _update_coordinate_descent(X, Wsk, np.ascontiguousarray(H.T), l1, l2, False, None)
    Wt = np.ascontiguousarray(W.T)
    v = hals_sweep_violation(Wt, H @ H.T, H @ X.T, l1, l2)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert v == pytest.approx(float(v_sk), rel=rtol)
    np.testing.assert_allclose(Wt.T, Wsk, rtol=rtol, atol=rtol)


class _Scripted:
    """A solver whose objectives (and violations) are given in advance."""

    def __init__(self, objectives, violations=None, stop_rule="error"):
        self.f = list(objectives)
        self.v = list(violations or [])
        self.stop_rule = stop_rule
        self.calls = 0
        self.W = self.H = np.zeros((1, 1))

    def objective(self):
        return self.f[self.calls]

    def step(self):
        self.calls += 1
        if self.v:
            self.violation = self.v[self.calls - 1]
        return self.f[self.calls]

    def finalize(self):
        return self.W, self.H

    def get_factors(self):
        return self.W.copy(), self.H.copy()


def test_error_rule_checks_every_ten_iterations_relative_to_the_first_error():
    # e = √(2f): 100 at the start, then e falls by 1 per iteration (a decrease of 10 per ten
    # iterations: 0.1 of e_init) until iteration 25, then by 0.001 per iteration
    e = [100.0 - min(i, 25) - 0.001 * max(i - 25, 0) for i in range(200)]
    f = [x * x / 2 for x in e]
    # tol 0.05: the checks at 10 and 20 pass (decrease 0.1 of e_init); at 30 the decrease is
    # (80 − 74.995) / 100 = 0.05005 ≥ 0.05, at 40 0.0001 < 0.05: stops at 40
    r = _fit.run(_Scripted(f), tol=0.05, max_iter=150)
    assert (r.n_iter, r.stop_reason, r.converged) == (40, "tol", True)
    r = _fit.run(_Scripted(f), tol=0.0501, max_iter=150)
    assert r.n_iter == 30
    r = _fit.run(_Scripted(f), tol=0, max_iter=150)  # tol=0: exactly max_iter
    assert (r.n_iter, r.stop_reason) == (150, "max_iter")
    r = _fit.run(_Scripted(f), tol=0.05, max_iter=150, check_every=5)
    assert r.n_iter == 30  # checks at 25 (decrease 0.05) and 30 (0.00005)


def test_violation_rule_checks_every_iteration_relative_to_the_first_violation():
    f = [10.0 - 0.01 * i for i in range(100)]  # the objective plays no part in this rule
    v = [8.0, 4.0, 2.0, 1.0, 0.5, 0.02, 0.009, 0.008] + [0.004] * 90
    r = _fit.run(_Scripted(f, v, "violation"), tol=1e-3, max_iter=90)
    assert (r.n_iter, r.stop_reason) == (8, "tol")  # 0.008 / 8 = 1e-3 ≤ tol
    r = _fit.run(_Scripted(f, v, "violation"), tol=2.5e-3, max_iter=90)
    assert r.n_iter == 6  # 0.02 / 8 = 2.5e-3
    r = _fit.run(_Scripted(f, v, "violation"), tol=1e-4, max_iter=50)
    assert (r.n_iter, r.stop_reason) == (50, "max_iter")
    r = _fit.run(_Scripted(f, v, "violation"), tol=0, max_iter=20)
    assert (r.n_iter, r.stop_reason) == (20, "max_iter")
    # the history records every iteration's objective
    assert r.history["n_iter"] == list(range(21))


def test_each_solver_names_its_rule():
    X = load_digits().data[:300]
    for solver in ("mu", "anls", "pgd"):  # nmfkit's rule: checked every 10 iterations
        m = NMF(8, solver=solver, random_state=0, tol=1e-3, max_iter=400).fit(X)
        assert m.n_iter_ % 10 == 0 and m.stop_reason_ == "tol", (solver, m.n_iter_)
    # "cd" and "auto" by the violation, checked after every iteration (tests/
    # test_defaults_stopping.py for "auto"'s); here both stop at no multiple of ten
    for solver in ("cd", "auto"):
        m = NMF(8, solver=solver, random_state=0, tol=1e-3, max_iter=400).fit(X)
        assert m.n_iter_ % 10 != 0 and m.stop_reason_ == "tol", (solver, m.n_iter_)
    # cd with accelerations asked for by hand keeps nmfkit's rule unless it names another
    m = NMF(8, solver="cd", solver_options={"inner": True}, random_state=0, tol=1e-3,
            max_iter=400).fit(X)
    assert m.n_iter_ % 10 == 0


def test_cd_on_torch_stops_by_the_same_violation_rule():
    pytest.importorskip("torch")
    X = load_digits().data[:400]
    a = NMF(8, solver="cd", tol=1e-2, random_state=0).fit(X)
    b = NMF(8, solver="cd", tol=1e-2, random_state=0, backend="torch", device="cpu").fit(X)
    assert a.n_iter_ == b.n_iter_ and a.stop_reason_ == b.stop_reason_ == "tol"
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-8)
