"""Hoyer's sparseness projection and the sparseness-constrained solver nmfsc (issue 4)."""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF, _fit
from nmfkit.backends import get_backend
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.sparseness import hoyer_sparseness, l1_for, project, project_rows


@pytest.mark.parametrize("s", [0.0, 0.3, 0.6, 0.9, 1.0])
def test_projection_hits_the_target_exactly(s):
    rng = np.random.RandomState(0)
    x = rng.rand(100) - 0.2
    y = project(x, l1_for(100, s, 2.0), 2.0)
    assert y.min() >= 0
    assert np.linalg.norm(y) == pytest.approx(2.0, rel=1e-10)
    assert hoyer_sparseness(y) == pytest.approx(s, abs=1e-8)


def test_projection_is_the_closest_point_among_random_feasible_ones():
    rng = np.random.RandomState(1)
    x = rng.rand(30)
    l2 = np.linalg.norm(x)
    l1 = l1_for(30, 0.7, l2)
    y = project(x, l1, l2)
    # random feasible points: projections of perturbations, none closer to x than y
    others = [project(x + 0.3 * rng.randn(30), l1, l2) for _ in range(50)]
    assert all(np.linalg.norm(x - y) <= np.linalg.norm(x - o) + 1e-12 for o in others)


def test_project_rows_keeps_norms_handles_zero_rows_and_dtype():
    F = np.vstack([np.random.RandomState(2).rand(3, 40), np.zeros((1, 40))]).astype(np.float32)
    P = project_rows(F, 0.8)
    assert P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P[:3], axis=1), np.linalg.norm(F[:3], axis=1),
                               rtol=1e-6)
    assert not P[3].any()
    U = project_rows(F, 0.8, l2=1.0)  # a zero row gets some unit vector at the target
    np.testing.assert_allclose(hoyer_sparseness(U, axis=1), 0.8, atol=1e-5)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data[:200]


@pytest.mark.parametrize("target", [0.3, 0.6, 0.85])
def test_nmfsc_achieves_the_target_sparseness_of_H(digits, target):
    m = NMF(6, solver="nmfsc", sparseness_H=target, max_iter=40, random_state=0)
    m.fit(digits)
    np.testing.assert_allclose(hoyer_sparseness(m.components_, axis=1), target, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(m.components_, axis=1), 1.0, rtol=1e-6)


def test_nmfsc_on_W_and_both(digits):
    m = NMF(6, solver="nmfsc", sparseness_W=0.7, sparseness_H=0.4, max_iter=30,
            random_state=0)
    W = m.fit_transform(digits)
    np.testing.assert_allclose(hoyer_sparseness(W, axis=0), 0.7, atol=1e-6)
    np.testing.assert_allclose(hoyer_sparseness(m.components_, axis=1), 0.4, atol=1e-6)
    # transform with the learned (sparse) H gives finite, non-negative coefficients
    Wt = m.transform(digits[:10])
    assert Wt.shape == (10, 6) and Wt.min() >= 0 and np.isfinite(Wt).all()


@pytest.mark.parametrize("which", ["sparseness_W", "sparseness_H"])
def test_nmfsc_objective_non_increasing_after_projection(digits, which):
    W0, H0 = initialize(digits, 5, init="nndsvda")
    objs = []
    _fit.factorize(digits, W0, H0, solver="nmfsc", beta=2.0, nx=get_backend(digits), tol=0,
                   max_iter=40, solver_options={which: 0.6},
                   callback=lambda i: objs.append(beta_divergence(digits, i.W, i.H, 2.0)))
    assert np.all(np.diff(objs) <= 1e-10 * objs[0])


def test_nmfsc_sparse_input(digits):
    Xs = sp.csr_matrix(digits)
    a = NMF(4, solver="nmfsc", sparseness_H=0.5, max_iter=15, random_state=0, tol=0).fit(Xs)
    b = NMF(4, solver="nmfsc", sparseness_H=0.5, max_iter=15, random_state=0,
            tol=0).fit(digits)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-6, atol=1e-8)


def test_sparseness_parameter_errors(digits):
    with pytest.raises(ValueError, match="only solver='nmfsc' .* enforces; got solver='auto'"):
        NMF(3, sparseness_H=0.5).fit(digits)
    with pytest.raises(ValueError, match="solver='nmfsc' needs a target sparseness"):
        NMF(3, solver="nmfsc").fit(digits)
    with pytest.raises(ValueError, match="sparseness_H"):
        NMF(3, solver="nmfsc", sparseness_H=1.5).fit(digits)
