"""MiniBatchNMF on each backend (the ``backend`` fixture: numpy, and CPU torch where
installed): the same trajectory as numpy float64, the input's array type and dtype out.
Folded from tests/test_minibatch_torch.py (each test names the one it came from); the
torch-only checks (refusals, host reads per batch, CUDA, switching backends between calls)
stay there."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import MINIBATCH_CASES as CASES
from _helpers import minibatch_fit as fit
from _helpers import minibatch_kw as kw
from _helpers import planted

from nmfkit import MiniBatchNMF
from nmfkit.penalties import L1




@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", CASES)
def test_same_components_as_numpy(backend, solver, beta, sparse, fresh):
    """test_minibatch_torch.py::test_numpy_and_torch_same_components"""
    X = planted()
    Xn = sp.csr_matrix(X) if sparse else X
    params = kw(solver, beta, fresh_restarts=fresh, fresh_restarts_max_iter=10, tol=1e-6)
    a, Wa = fit(Xn, **params)
    b, Wb = fit(backend.asarray(X, sparse=sparse), **params)
    assert backend.is_array(b.components_) and backend.is_array(Wb)
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(Wb), Wa, rtol=1e-8, atol=1e-10)
    assert np.isclose(a.reconstruction_err_, b.reconstruction_err_, rtol=1e-10)
    assert (a.n_steps_, a.n_iter_) == (b.n_steps_, b.n_iter_)
    # the transform of new rows agrees too, the backend's array in, the same out
    Xnew = planted(n=30, seed=3)
    Tb = b.transform(backend.asarray(Xnew, sparse=sparse))
    assert backend.is_array(Tb)
    np.testing.assert_allclose(backend.to_numpy(Tb),
                               a.transform(sp.csr_matrix(Xnew) if sparse else Xnew),
                               rtol=1e-8, atol=1e-10)


def test_default_stopping_rule_same_steps(backend):
    """test_minibatch_torch.py::test_default_stopping_rule_same_steps"""
    # tol > 0 and max_no_improvement: on torch the host reads give numpy's decisions exactly
    X = planted(n=300)
    params = {"n_components": 4, "batch_size": 32, "random_state": 0, "max_iter": 50,
              "tol": 1e-3}
    a, _ = fit(X, **params)
    b, _ = fit(backend.asarray(X), **params)
    assert a.n_steps_ == b.n_steps_ < 50 * 10
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", [("mu", 1), ("cd", 2)])
def test_partial_fit_equals_numpy(backend, solver, beta, sparse):
    """test_minibatch_torch.py::test_partial_fit_on_torch_equals_numpy"""
    X = planted(n=120)
    conv = (lambda B: sp.csr_matrix(B)) if sparse else (lambda B: B)
    params = kw(solver, beta)
    a, b, c = (MiniBatchNMF(**params) for _ in range(3))
    c.set_params(backend=backend.name)
    order = np.random.RandomState(1).permutation(120)
    for s in range(0, 120, 40):
        rows = order[s:s + 40]
        a.partial_fit(conv(X[rows]))
        b.partial_fit(backend.asarray(X[rows], sparse=sparse))
        c.partial_fit(conv(X[rows]))
    assert backend.is_array(b.components_) and isinstance(c.components_, np.ndarray)
    assert backend.is_array(c._components_numerator)  # the sums stay on the backend
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_allclose(c.components_, a.components_, rtol=1e-8, atol=1e-10)
    assert a.n_steps_ == b.n_steps_ == c.n_steps_ == 3


def test_backend_kwarg_with_numpy_input_returns_numpy(backend):
    """test_minibatch_torch.py::test_backend_torch_with_numpy_input_returns_numpy"""
    X = planted()
    a, _Wa = fit(X, **kw())
    b, Wb = fit(X, **kw(), **backend.kwargs)
    assert isinstance(Wb, np.ndarray) and isinstance(b.components_, np.ndarray)
    assert Wb.dtype == b.components_.dtype == np.float64
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-8, atol=1e-10)
    assert isinstance(b.transform(X[:10]), np.ndarray)


@pytest.mark.parametrize("solver, beta", CASES)
def test_float32_stays_float32_and_matches_float64(backend, solver, beta):
    """test_minibatch_torch.py::test_float32_tensor_stays_float32_and_matches_float64"""
    X = planted()
    b64, _ = fit(backend.asarray(X), **kw(solver, beta, max_iter=5))
    b32, W32 = fit(backend.asarray(X, "float32"), **kw(solver, beta, max_iter=5))
    assert backend.is_array(b32.components_, "float32") and backend.is_array(W32, "float32")
    assert backend.is_array(b32.transform(backend.asarray(X[:7], "float32")), "float32")
    np.testing.assert_allclose(backend.to_numpy(b32.components_).astype(np.float64),
                               backend.to_numpy(b64.components_), rtol=2e-3,
                               atol=2e-3 * float(b64.components_.max()))
    assert np.isclose(b32.reconstruction_err_, b64.reconstruction_err_,
                      rtol=backend.rtol("float32"))


def test_integer_input_is_fitted_in_the_backends_float(backend):
    """test_minibatch_torch.py::test_integer_tensor_becomes_float32 (numpy: float64)"""
    X = backend.asarray(np.round(planted() * 3).astype(np.int64))
    est, W = fit(X, **kw())
    assert backend.is_array(W, backend.int_float)
    assert backend.is_array(est.components_, backend.int_float)


def test_frozen_components_and_l1_penalty(backend):
    """test_minibatch_torch.py::test_frozen_components_and_l1_penalty_on_torch"""
    X = planted()
    F = np.abs(np.random.RandomState(2).rand(1, X.shape[1]))
    params = kw("mu", 2, frozen_components=F, penalties=[L1(0.05, "H")], alpha_W=0.01)
    a, _ = fit(X, **params)
    b, _ = fit(backend.asarray(X), **params)
    np.testing.assert_array_equal(backend.to_numpy(b.components_[0]), F[0])
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
def test_anls_with_frozen_components_equals_numpy(backend, sparse):
    """test_minibatch_torch.py::test_anls_with_frozen_components_on_torch_equals_numpy"""
    # the free rows of H are solved with the frozen rows' contribution moved to the right,
    # on the device as on the host
    X = planted()
    F = np.abs(np.random.RandomState(2).rand(1, X.shape[1]))
    params = kw("anls", 2, frozen_components=F)
    a, Wa = fit(sp.csr_matrix(X) if sparse else X, **params)
    b, Wb = fit(backend.asarray(X, sparse=sparse), **params)
    np.testing.assert_array_equal(backend.to_numpy(b.components_[0]), F[0])
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_allclose(backend.to_numpy(Wb), Wa, rtol=1e-7, atol=1e-9)


def test_custom_init_equals_numpy(backend):
    """test_minibatch_torch.py::test_custom_init_on_torch_equals_numpy"""
    X = planted()
    rng = np.random.RandomState(5)
    W0, H0 = rng.rand(X.shape[0], 4), rng.rand(4, X.shape[1])
    W0_before, H0_before = W0.copy(), H0.copy()
    params = kw(init="custom")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MiniBatchNMF(**params).fit(X, W=W0.copy(), H=H0.copy())
        # backend.asarray shares H0's memory (torch.from_numpy, np.asarray): an in-place
        # update of H would show in H0
        Hb = backend.asarray(H0)
        assert np.shares_memory(backend.to_numpy(Hb), H0)
        b = MiniBatchNMF(**params).fit(backend.asarray(X), W=W0, H=Hb)
    np.testing.assert_allclose(backend.to_numpy(b.components_), a.components_, rtol=1e-8,
                               atol=1e-10)
    np.testing.assert_array_equal(H0, H0_before)  # caller's H intact
    np.testing.assert_array_equal(W0, W0_before)  # and W
    assert not np.shares_memory(backend.to_numpy(b.components_), H0)
