"""Composable penalties (issue 4): exact values, gradients, MU/HALS terms, monotone
objective for every solver × penalty combination claimed, and the L1 → sparseness trend."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF, _fit
from nmfkit.backends import get_backend
from nmfkit.graph import knn_affinity, laplacian
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.metrics import hoyer_sparseness
from nmfkit.penalties import L1, L2, Graph, sklearn_penalties, split_hals


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 30) + 0.05
    return X, knn_affinity(X, 4), knn_affinity(X.T, 4, weight="heat")


def _objective_trace(X, solver, beta, pw, ph, max_iter=60, W0H0=None, **kw):
    W0, H0 = W0H0 or initialize(X, 5, init="random", random_state=0)
    objs = []

    def cb(info):
        objs.append(
            beta_divergence(X, info.W, info.H, beta)
            + sum(p.value(np.asarray(info.W).T) for p in pw)
            + sum(p.value(np.asarray(info.H)) for p in ph)
        )

    res = _fit.factorize(
        X, W0.copy(), H0.copy(), solver=solver, beta=beta, nx=get_backend(X),
        penalties_W=pw, penalties_H=ph, tol=0, max_iter=max_iter, callback=cb, **kw,
    )
    return np.array(objs), res


def test_graph_value_and_gradient_match_dense_laplacian(data):
    X, A, _ = data
    g = Graph(0.7, "W", affinity=A)
    F = np.random.RandomState(1).rand(3, X.shape[0])
    L = laplacian(A).toarray()
    assert g.value(F) == pytest.approx(0.5 * 0.7 * np.trace(F @ L @ F.T), rel=1e-12)
    np.testing.assert_allclose(g.grad(F), 0.7 * F @ L, atol=1e-12)
    # the MU split: numerator − denominator = −gradient, both non-negative
    num, den = g.mu_numerator(F), g.mu_denominator(F)
    assert num.min() >= 0 and den.min() >= 0
    np.testing.assert_allclose(num - den, -g.grad(F), atol=1e-12)
    # finite-difference check of the gradient
    E = np.random.RandomState(2).rand(*F.shape)
    h = 1e-6
    fd = (g.value(F + h * E) - g.value(F - h * E)) / (2 * h)
    assert fd == pytest.approx(np.vdot(g.grad(F), E), rel=1e-6)


def test_graph_hals_terms_subtract_gradient_and_majorise(data):
    X, A, _ = data
    g = Graph(2.0, "W", affinity=A)
    F = np.random.RandomState(1).rand(3, X.shape[0])
    num = np.zeros(X.shape[0])
    curv = g.hals_terms(1, F, num)
    np.testing.assert_allclose(num, -g.grad(F)[1], atol=1e-12)
    # diag(curv) − λL is the signless Laplacian: positive semi-definite
    M = np.diag(curv) - 2.0 * laplacian(A).toarray()
    assert np.linalg.eigvalsh(M).min() > -1e-9


@pytest.mark.parametrize(
    "solver, beta",
    [("mu", 2.0), ("mu", 1.0), ("cd", 2.0), ("mu", 0.0), ("mu", 0.5), ("mu", 3.0)],
)
@pytest.mark.parametrize("lam", [0.1, 30.0])
def test_objective_non_increasing_with_graph_l1_l2(data, solver, beta, lam):
    X, A, B = data
    pw = [Graph(lam, "W", affinity=A), L2(0.5, "W")]
    ph = [Graph(lam, "H", affinity=B), L1(0.2, "H")]
    objs, _ = _objective_trace(X, solver, beta, pw, ph)
    assert objs[-1] < objs[0]
    assert np.all(np.diff(objs) <= 1e-10 * objs[0])


@pytest.mark.parametrize(
    "solver, beta",
    [("mu", 2.0), ("mu", 1.0), ("cd", 2.0), ("cd", 1.0), ("anls", 2.0), ("pgd", 2.0)],
)
def test_objective_non_increasing_sparse_l1_both(data, solver, beta):
    """L1/L2 are declared for mu, cd, anls and pgd: each keeps the penalised objective
    non-increasing, for every loss it supports."""
    from nmfkit.solvers import SOLVERS

    if solver not in SOLVERS or not SOLVERS[solver].supports_beta(beta):
        pytest.skip(f"{solver} with beta={beta} not in this build")
    X = data[0]
    pw, ph = [L1(0.5, "W")], [L1(0.5, "H"), L2(0.1, "H")]
    objs, _ = _objective_trace(X, solver, beta, pw, ph)
    assert np.all(np.diff(objs) <= 1e-10 * objs[0])


def test_graph_on_sparse_X_and_float32(data):
    X, A, _ = data
    Xd = np.where(X > 0.5, X, 0.0)
    Xs = sp.csr_matrix(Xd)
    for solver in ("mu", "cd"):
        kw = dict(solver=solver, penalties=[Graph(1.0, "W", affinity=A)], max_iter=30,
                  random_state=0, tol=0)
        ms, md = NMF(4, **kw), NMF(4, **kw)
        Ws, Wd = ms.fit_transform(Xs), md.fit_transform(Xd)
        assert np.all(np.isfinite(Ws))
        np.testing.assert_allclose(Ws, Wd, rtol=1e-7, atol=1e-9)  # sparse == dense
        np.testing.assert_allclose(ms.components_, md.components_, rtol=1e-7, atol=1e-9)
        assert ms.reconstruction_err_ == pytest.approx(md.reconstruction_err_, rel=1e-9)
    X32 = X.astype(np.float32)
    kw = dict(solver="mu", graph=A, graph_weight=1.0, max_iter=20, random_state=0, tol=0)
    m = NMF(4, **kw)
    W = m.fit_transform(X32)
    assert W.dtype == np.float32 and m.components_.dtype == np.float32
    m64 = NMF(4, **kw)
    np.testing.assert_allclose(W, m64.fit_transform(X), rtol=2e-3, atol=1e-4)  # float32 ≈ 64


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_l1_weight_increases_hoyer_sparseness_monotonically(solver):
    """Mean per-component Hoyer sparseness of H grows with the L1 weight on H (an L2 on W
    pins the scale, otherwise W could absorb it and the L1 on H would only shrink H)."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:200]
    sparsity = []
    for lam in [0.0, 10.0, 30.0, 100.0, 300.0, 1000.0]:
        m = NMF(8, init="nndsvda", solver=solver, penalties=[L1(lam, "H"), L2(1.0, "W")],
                max_iter=150, tol=0, random_state=0)
        m.fit(X)
        sparsity.append(hoyer_sparseness(m.components_, axis=1).mean())
    assert np.all(np.diff(sparsity) > 0), sparsity


def test_solver_that_cannot_honour_a_penalty_names_those_that_can(data):
    X, A, _ = data
    with pytest.raises(ValueError, match=r"'nmfsc' cannot honour the penalty Graph on W; "
                       r"solvers that can: \[.*'cd'.*'mu'.*\]"):
        NMF(3, solver="nmfsc", sparseness_H=0.5, penalties=[Graph(1.0, "W", affinity=A)]).fit(X)


def test_bad_penalties_are_rejected(data):
    X, A, _ = data
    with pytest.raises(TypeError, match="must be nmfkit.penalties.Penalty objects"):
        NMF(3, penalties=["l1"]).fit(X)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        L1(-1.0, "W")
    with pytest.raises(ValueError, match="factor must be 'W' or 'H'"):
        L2(1.0, "V")
    with pytest.raises(ValueError, match="but X has n_features = 30"):
        NMF(3, penalties=[Graph(1.0, "H", affinity=A)]).fit(X)


def test_sklearn_mapping_and_split_unchanged():
    pens = sklearn_penalties(0.5, "same", 0.3, 10, 20)
    assert [type(p).__name__ + p.factor for p in pens] == ["L1W", "L2W", "L1H", "L2H"]
    assert pens[0].weight == pytest.approx(20 * 0.5 * 0.3)
    assert pens[3].weight == pytest.approx(10 * 0.5 * 0.7)
    g = Graph(1.0, "W", affinity=sp.eye(3, k=1) + sp.eye(3, k=-1))
    l1, l2, extra = split_hals([L1(1.0), L2(2.0), g])
    assert (l1, l2, extra) == (1.0, 2.0, [g])


def test_user_penalties_compose_with_alpha(data):
    X = data[0]
    a = NMF(4, alpha_W=0.01, alpha_H=0.0, l1_ratio=1.0, random_state=0, max_iter=50, tol=0).fit(X)
    b = NMF(4, penalties=[L1(0.01 * X.shape[1], "W")], random_state=0, max_iter=50,
            tol=0).fit(X)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10, atol=1e-12)


def test_extensions_on_torch_and_nmfsc_refused_rather_than_ignored(data):
    """Graph/nsNMF/frozen run on torch (tests/test_estimator_backends.py); Hoyer's constraint
    (solver nmfsc) does not, and says so with the alternatives."""
    torch = pytest.importorskip("torch")
    X, A, _ = data
    m = NMF(3, graph=A, graph_weight=1.0, max_iter=5, tol=0).fit(torch.tensor(X))
    assert isinstance(m.components_, torch.Tensor)
    with pytest.raises(ValueError, match="run on the numpy backend only.*l1_ratio=1"):
        NMF(3, solver="nmfsc", sparseness_H=0.5).fit(torch.tensor(X))
