"""MiniBatchNMF.partial_fit on data of extreme magnitude: fitted at unit scale, as fit is.

The β-divergence is homogeneous, so factorising X·4^j is factorising X with both factors
scaled by 2^j. When X's largest value lies in [0.5, 2), the unit-scale data of X·4^j is X
itself (the scale is a power of four), so every partial_fit step must give exactly 2^j times
the components of the same steps on X: an absolute floor or start that does not follow the
data's scale breaks this equality (before the fix, batches at 1e-30 fitted to twice the error).
"""

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import MiniBatchNMF


def _data(seed=0, n=120, m=30, k=4):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    return X / X.max() * 1.5  # largest value in [0.5, 2): its unit scale is 1


def _batches(X, size=40):
    return [X[i:i + size] for i in range(0, X.shape[0], size)]


def _partial(X, init="nndsvda", beta="frobenius", solver="cd", backend=None, **kw):
    kw.update(backend.kwargs if backend is not None else {})
    model = MiniBatchNMF(4, init=init, beta_loss=beta, solver=solver, random_state=0, **kw)
    for B in _batches(X):
        model.partial_fit(backend.asarray(B) if backend is not None else B)
    return model


@pytest.mark.parametrize("j", [-400, -50, -12, 12, 50, 150])
@pytest.mark.parametrize("init,beta,solver", [("nndsvda", "frobenius", "cd"),
                                              ("random", "frobenius", "mu"),
                                              ("nndsvda", "kullback-leibler", "mu")])
def test_partial_fit_is_scale_equivariant(j, init, beta, solver):
    X = _data()
    ref = _partial(X, init, beta, solver).components_
    scaled = _partial(X * 4.0**j, init, beta, solver)
    assert np.all(np.isfinite(scaled.components_))
    np.testing.assert_allclose(scaled.components_, ref * 2.0**j, rtol=1e-12, atol=0)
    W = scaled.transform(X * 4.0**j)
    err = np.linalg.norm(X - W @ scaled.components_ / 4.0**j) / np.linalg.norm(X)
    assert err < 0.2


def test_partial_fit_scale_on_the_backend(backend):
    X = _data(1)
    ref = _partial(X, backend=backend).components_
    scaled = _partial(X * 4.0**-40, backend=backend).components_
    np.testing.assert_allclose(backend.to_numpy(scaled), backend.to_numpy(ref) * 2.0**-40,
                               rtol=1e-10, atol=0)


def test_partial_fit_sparse_and_masked_batches_follow_the_scale():
    X = _data(2)
    X[X < 0.3] = 0
    for j in (-30, 30):
        ref = _partial(sp.csr_matrix(X)).components_
        got = _partial(sp.csr_matrix(X * 4.0**j)).components_
        np.testing.assert_allclose(got, ref * 2.0**j, rtol=1e-12, atol=0)
    mask = np.random.default_rng(3).random(X.shape) < 0.8

    def masked(Y):
        model = MiniBatchNMF(4, random_state=0)
        for i in range(0, Y.shape[0], 40):
            model.partial_fit(Y[i:i + 40], mask=mask[i:i + 40])
        return model.components_

    np.testing.assert_allclose(masked(X * 4.0**-30), masked(X) * 2.0**-30, rtol=1e-12, atol=0)


def test_partial_fit_after_fit_continues_at_fit_scale():
    X = _data(4)
    extra = _data(5, n=40)

    def run(s):
        model = MiniBatchNMF(4, random_state=0, batch_size=40, max_iter=5).fit(X * s)
        model.partial_fit(extra * s)
        return model.components_

    np.testing.assert_allclose(run(4.0**-60), run(1.0) * 2.0**-60, rtol=1e-12, atol=0)


def test_custom_start_is_given_on_the_data_scale():
    X = _data(6)
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((40, 4)), rng.random((4, X.shape[1]))
    s = 4.0**-70
    ref = MiniBatchNMF(4, init="custom").partial_fit(X[:40], W=W0, H=H0).components_
    got = MiniBatchNMF(4, init="custom").partial_fit(X[:40] * s, W=W0 * 2.0**-70,
                                                     H=H0 * 2.0**-70).components_
    np.testing.assert_allclose(got, ref * 2.0**-70, rtol=1e-12, atol=0)


def test_a_batch_the_first_batch_scale_cannot_hold_is_refused():
    X = _data(7)
    model = MiniBatchNMF(4, random_state=0).partial_fit(X[:40] * 1e-200)
    before = model.components_.copy()
    with pytest.raises(ValueError, match="comparable magnitude"):
        model.partial_fit(X[40:80] * 1e-60)
    np.testing.assert_array_equal(model.components_, before)  # nothing lost
    model.partial_fit(X[40:80] * 1e-200)  # a batch on the first one's scale is taken
    assert model.n_steps_ == 2
