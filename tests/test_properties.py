"""Hypothesis properties on problems with real content.

Hypothesis draws only the *shape* of a problem — sizes, a seed, a density, a scale, the
solver, β, penalty weights — and numpy builds the matrix from them, so every example is a
genuine non-negative matrix (every row and column holds a positive entry; density ≥ 30%), not
the mostly-zero arrays that element-wise strategies shrink towards. The objective is computed
independently of nmfkit: the β-divergence from its definition (exact: scikit-learn's own
drops KL terms with X below float32's eps) plus scikit-learn's penalty scaling.
"""

import math
import pathlib
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmfkit
from nmfkit import NMF
from nmfkit.io import read_matrix, write_matrix
from nmfkit.metrics import hoyer_sparseness
from nmfkit.sparseness import l1_for, project, project_rows

def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def matrices(draw, min_density=0.3, positive=False):
    """(X dense, seed): a non-negative (n, m) matrix with every row and column non-empty."""
    n = draw(st.integers(4, 16))
    m = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(min_density, 1.0))
    shape = draw(st.floats(0.3, 3.0))  # gamma shape: heavy-tailed to near-Gaussian values
    rng = np.random.default_rng(seed)
    X = rng.gamma(shape, 1.0, (n, m))
    if positive:
        X += 0.05
    else:
        X[rng.random((n, m)) > density] = 0.0
        X[np.arange(n), rng.integers(0, m, n)] = rng.uniform(0.5, 2.0, n)
        X[rng.integers(0, n, m), np.arange(m)] = rng.uniform(0.5, 2.0, m)
    return X, seed


# (solver, β): the combinations each solver declares; β ≤ 0 needs X > 0 everywhere
CASES = [("mu", 2.0), ("mu", 1.0), ("mu", 0.5), ("mu", 1.5), ("mu", 3.0), ("mu", 0.0),
         ("cd", 2.0), ("cd", 1.0), ("anls", 2.0), ("pgd", 2.0)]


def _beta_divergence(X, W, H, beta):
    """d_β(X | WH) summed, from the definition (0·log 0 = 0)."""
    Y = W @ H
    if beta == 2.0:
        return 0.5 * float(((X - Y) ** 2).sum())
    if beta == 1.0:
        pos = X > 0
        return float((Y - X).sum() + (X[pos] * np.log(X[pos] / Y[pos])).sum())
    if beta == 0.0:
        return float((X / Y - np.log(X / Y) - 1.0).sum())
    pos = X > 0  # d_β(0 | y) = y^β / β: no X·Y^(β−1) term (0·∞ where MU zeroed WH, β < 1)
    cross = np.zeros_like(Y)
    cross[pos] = X[pos] * Y[pos] ** (beta - 1)
    return float((X**beta + (beta - 1) * Y**beta - beta * cross).sum() / (beta * (beta - 1)))


def _objective(X, W, H, beta, alpha_W, alpha_H, l1_ratio):
    """The objective: β-divergence + scikit-learn's scaled L1/L2 penalties."""
    n, m = X.shape
    f = _beta_divergence(X, W, H, beta)
    for a, F, scale in ((alpha_W, W, m), (alpha_H, H, n)):
        f += a * scale * (l1_ratio * F.sum() + 0.5 * (1.0 - l1_ratio) * (F * F).sum())
    return float(f)


def _fit_recording(X, k, solver, beta, alpha_W, alpha_H, l1_ratio, seed, iters=12):
    seen = []
    m = NMF(k, solver=solver, beta_loss=beta, alpha_W=alpha_W, alpha_H=alpha_H,
            l1_ratio=l1_ratio, init="random", random_state=seed % 1000, tol=0,
            max_iter=iters, callback=lambda info: seen.append((info.W.copy(), info.H.copy())))
    W = m.fit_transform(X)
    return m, W, seen


@_settings(60)
@given(data=matrices(), case=st.sampled_from(CASES), k=st.integers(1, 4),
       alpha_W=st.floats(0.0, 0.2), alpha_H=st.floats(0.0, 0.2), l1_ratio=st.floats(0.0, 1.0))
def test_objective_never_increases_and_factors_stay_non_negative(data, case, k, alpha_W,
                                                                 alpha_H, l1_ratio):
    X, seed = data
    solver, beta = case
    if beta <= 0:
        X = X + 0.05
    m, W, seen = _fit_recording(X, k, solver, beta, alpha_W, alpha_H, l1_ratio, seed)
    assert len(seen) == 12
    objs = [_objective(X, Wi, Hi, beta, alpha_W, alpha_H, l1_ratio) for Wi, Hi in seen]
    assert all(math.isfinite(f) for f in objs)
    for Wi, Hi in seen:
        assert (Wi >= 0).all() and (Hi >= 0).all()
    noise = 1e-12 * float((X * X).sum())  # rounding of an (almost) exact fit
    for a, b in zip(objs, objs[1:]):
        assert b <= a + 1e-9 * abs(a) + noise, (objs, solver, beta)
    np.testing.assert_array_equal(W, seen[-1][0])
    np.testing.assert_array_equal(m.components_, seen[-1][1])
    # what the model reports is the objective of the factors it returns
    assert m.loss_curve_[-1] == pytest.approx(objs[-1], rel=1e-8, abs=noise)
    div = _beta_divergence(X, W, m.components_, beta)
    assert m.reconstruction_err_ == pytest.approx(math.sqrt(2 * max(div, 0.0)), rel=1e-7,
                                                  abs=1e-7 * np.linalg.norm(X))


@_settings(40)
@given(data=matrices(), case=st.sampled_from([c for c in CASES if c[1] > 0]),
       k=st.integers(1, 4), alpha=st.floats(0.0, 0.1), l1_ratio=st.floats(0.0, 1.0))
def test_dense_equals_sparse(data, case, k, alpha, l1_ratio):
    """Sparse and dense X take the same steps. k < min(n, m): at k = min(n, m) an exact fit
    exists and, once reached, rounding alone decides which of the many exact factorisations
    the iterates wander to."""
    X, seed = data
    solver, beta = case
    k = min(k, min(X.shape) - 1)
    kw = dict(solver=solver, beta_loss=beta, alpha_W=alpha, l1_ratio=l1_ratio, init="random",
              random_state=seed % 1000, tol=0, max_iter=10)
    dense, sparse = NMF(k, **kw), NMF(k, **kw)
    Wd, Ws = dense.fit_transform(X), sparse.fit_transform(sp.csr_matrix(X))
    scale = max(np.abs(Wd).max(), 1.0)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-6,
                               atol=1e-9 * max(np.abs(dense.components_).max(), 1.0))
    assert sparse.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-7,
                                                       abs=1e-7 * np.linalg.norm(X))


@_settings(30)
@given(data=matrices(), case=st.sampled_from([("cd", 2.0), ("mu", 2.0), ("mu", 1.0)]),
       k=st.integers(1, 3), wseed=st.integers(0, 2**32 - 1),
       unobserved=st.floats(0.0, 0.4))
def test_real_valued_weights_weighted_objective_never_increases(data, case, k, wseed,
                                                               unobserved):
    """fit(X, mask=M) with real weights in (0.1, 5] and some entries unobserved (weight 0):
    Σ M_ij d_β(X_ij, (WH)_ij), computed densely here, never increases."""
    X, seed = data
    solver, beta = case
    rng = np.random.default_rng(wseed)
    M = rng.uniform(0.1, 5.0, X.shape)
    M[rng.random(X.shape) < unobserved] = 0.0
    M[np.arange(X.shape[0]), rng.integers(0, X.shape[1], X.shape[0])] = 1.0
    seen = []
    NMF(k, solver=solver, beta_loss=beta, init="random", random_state=seed % 1000, tol=0,
        max_iter=10, callback=lambda i: seen.append((i.W.copy(), i.H.copy()))).fit(X, mask=M)

    def weighted(W, H):
        Y = np.maximum(W @ H, 1e-300)
        if beta == 2.0:
            d = 0.5 * (X - Y) ** 2
        else:
            d = Y - X + np.where(X > 0, X * np.log(np.where(X > 0, X, 1.0) / Y), 0.0)
        return float((M * d).sum())

    objs = [weighted(*f) for f in seen]
    assert len(objs) == 10 and all(math.isfinite(f) for f in objs)
    for a, b in zip(objs, objs[1:]):
        assert b <= a + 1e-9 * abs(a) + 1e-12, objs


@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(data=matrices(), k=st.integers(1, 4), solver=st.sampled_from(["cd", "mu"]),
       beta=st.sampled_from([2.0, 1.0]))
def test_model_save_load_round_trip(data, k, solver, beta):
    X, seed = data
    m = NMF(k, solver=solver, beta_loss=beta, init="nndsvda", max_iter=15,
            random_state=seed % 1000).fit(X)
    with tempfile.TemporaryDirectory() as tmp:
        path = m.save(pathlib.Path(tmp) / "model.npz")
        back = nmfkit.load(path)
    assert type(back) is type(m)
    np.testing.assert_array_equal(back.components_, m.components_)
    assert back.get_params() == m.get_params()
    assert back.reconstruction_err_ == m.reconstruction_err_
    assert back.n_iter_ == m.n_iter_
    np.testing.assert_array_equal(back.transform(X), m.transform(X))


_NAME = st.text(alphabet="abcXYZé ,\"'-_;:", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s.strip() != "")


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 6), m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1),
       labels=st.booleans(), names=st.data())
def test_csv_round_trip_is_exact(n, m, seed, labels, names):
    """write_matrix → read_matrix returns the same float64 values bit for bit (zeros, values
    from 1e-300 to 1e300) and the same labels, quoted where they hold commas or quotes."""
    rng = np.random.default_rng(seed)
    A = rng.random((n, m)) * 10.0 ** rng.integers(-300, 300, (n, m))
    A[rng.random((n, m)) < 0.3] = 0.0
    rows = cols = None
    if labels:
        rows = names.draw(st.lists(_NAME, min_size=n, max_size=n, unique=True))
        cols = names.draw(st.lists(_NAME, min_size=m, max_size=m, unique=True))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_matrix(pathlib.Path(tmp) / "A.csv", A, row_names=rows, col_names=cols)
        ds = read_matrix(path, header=labels, row_names=labels)
    np.testing.assert_array_equal(np.asarray(ds.X), A)
    if labels:
        assert list(ds.row_names) == rows and list(ds.feature_names) == cols


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(n=st.integers(2, 60), seed=st.integers(0, 2**32 - 1), s=st.floats(0.02, 0.98),
       l2=st.floats(0.01, 100.0), density=st.floats(0.05, 1.0))
def test_hoyer_projection_hits_its_target(n, seed, s, l2, density):
    rng = np.random.default_rng(seed)
    x = rng.random(n) * (rng.random(n) < density)
    l1 = l1_for(n, s, l2)
    p = project(x, l1, l2)
    assert (p >= 0).all()
    assert np.linalg.norm(p) == pytest.approx(l2, rel=1e-9)
    assert p.sum() == pytest.approx(l1, rel=1e-9)
    assert hoyer_sparseness(p) == pytest.approx(s, abs=1e-8)
    # a vector that already meets the constraints is its own projection
    np.testing.assert_allclose(project(p, l1, l2), p, rtol=1e-7, atol=1e-9 * l2)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(data=matrices(), s=st.floats(0.05, 0.95))
def test_hoyer_project_rows_keeps_norms_and_hits_the_target(data, s):
    X, _ = data
    P = project_rows(X, s)
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), np.linalg.norm(X, axis=1),
                               rtol=1e-9)
    np.testing.assert_allclose(hoyer_sparseness(P, axis=1), s, atol=1e-8)
