"""MiniBatchNMF on the torch backend: the same trajectory as numpy, tensors in and out."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import MiniBatchNMF
from nmfkit.penalties import L1, Graph

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()


def planted(n=160, m=24, k=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.gamma(1.0, size=(n, k)) @ (rng.gamma(1.0, size=(k, m)) * (rng.rand(k, m) < 0.5))
    X[X < 0.4] = 0.0  # exact zeros: a sparse X is genuinely sparse
    return X


def kw(solver="mu", beta=2, **extra):
    base = {"n_components": 4, "batch_size": 48, "beta_loss": beta, "solver": solver, "max_iter": 3,
                "tol": 0, "max_no_improvement": None, "random_state": 0,
                "init": "nndsvda" if beta != 2 else "random"}
    base.update(extra)
    return base


def as_tensor(X, sparse, dtype=torch.float64, device="cpu"):
    T = torch.as_tensor(X, dtype=dtype, device=device)
    return T.to_sparse_csr() if sparse else T


def fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        est = MiniBatchNMF(**params)
        W = est.fit_transform(X)
    return est, W


CASES = [("mu", 2), ("mu", 1), ("mu", 0.5), ("cd", 2), ("anls", 2)]


@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", CASES)
def test_numpy_and_torch_same_components(solver, beta, sparse, fresh):
    X = planted()
    Xn = sp.csr_matrix(X) if sparse else X
    params = kw(solver, beta, fresh_restarts=fresh, fresh_restarts_max_iter=10, tol=1e-6)
    a, Wa = fit(Xn, **params)
    b, Wb = fit(as_tensor(X, sparse), **params)
    assert isinstance(b.components_, torch.Tensor) and isinstance(Wb, torch.Tensor)
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(Wb.numpy(), Wa, rtol=1e-8, atol=1e-10)
    assert np.isclose(a.reconstruction_err_, b.reconstruction_err_, rtol=1e-10)
    assert (a.n_steps_, a.n_iter_) == (b.n_steps_, b.n_iter_)
    # the transform of new rows agrees too, tensor in, tensor out
    Xnew = planted(n=30, seed=3)
    np.testing.assert_allclose(b.transform(as_tensor(Xnew, sparse)).numpy(),
                               a.transform(sp.csr_matrix(Xnew) if sparse else Xnew),
                               rtol=1e-8, atol=1e-10)


def test_default_stopping_rule_same_steps():
    # tol > 0 and max_no_improvement: the host reads give numpy's decisions exactly
    X = planted(n=300)
    params = {"n_components": 4, "batch_size": 32, "random_state": 0, "max_iter": 50, "tol": 1e-3}
    a, _ = fit(X, **params)
    b, _ = fit(torch.from_numpy(X), **params)
    assert a.n_steps_ == b.n_steps_ < 50 * 10
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", [("mu", 1), ("cd", 2)])
def test_partial_fit_on_torch_equals_numpy(solver, beta, sparse):
    X = planted(n=120)
    conv = (lambda B: sp.csr_matrix(B)) if sparse else (lambda B: B)
    params = kw(solver, beta)
    a, b, c = (MiniBatchNMF(**params) for _ in range(3))
    c.set_params(backend="torch")
    order = np.random.RandomState(1).permutation(120)
    for s in range(0, 120, 40):
        rows = order[s:s + 40]
        a.partial_fit(conv(X[rows]))
        b.partial_fit(as_tensor(X[rows], sparse))
        c.partial_fit(conv(X[rows]))
    assert isinstance(b.components_, torch.Tensor) and isinstance(c.components_, np.ndarray)
    assert isinstance(c._components_numerator, torch.Tensor)  # the sums stay on the device
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(c.components_, a.components_, rtol=1e-8, atol=1e-10)
    assert a.n_steps_ == b.n_steps_ == c.n_steps_ == 3


def test_backend_torch_with_numpy_input_returns_numpy():
    X = planted()
    a, _Wa = fit(X, **kw())
    b, Wb = fit(X, **kw(), backend="torch", device="cpu")
    assert isinstance(Wb, np.ndarray) and isinstance(b.components_, np.ndarray)
    assert Wb.dtype == b.components_.dtype == np.float64
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-8, atol=1e-10)
    assert isinstance(b.transform(X[:10]), np.ndarray)


@pytest.mark.parametrize("solver, beta", CASES)
def test_float32_tensor_stays_float32_and_matches_float64(solver, beta):
    X = planted()
    b64, _ = fit(as_tensor(X, False), **kw(solver, beta, max_iter=5))
    b32, W32 = fit(as_tensor(X, False, torch.float32), **kw(solver, beta, max_iter=5))
    assert b32.components_.dtype == W32.dtype == torch.float32
    assert b32.transform(as_tensor(X[:7], False, torch.float32)).dtype == torch.float32
    np.testing.assert_allclose(b32.components_.double().numpy(), b64.components_.numpy(),
                               rtol=2e-3, atol=2e-3 * float(b64.components_.max()))
    assert np.isclose(b32.reconstruction_err_, b64.reconstruction_err_, rtol=1e-3)


def test_integer_tensor_becomes_float32():
    X = torch.as_tensor(np.round(planted() * 3), dtype=torch.int64)
    est, W = fit(X, **kw())
    assert W.dtype == est.components_.dtype == torch.float32


def test_frozen_components_and_l1_penalty_on_torch():
    X = planted()
    F = np.abs(np.random.RandomState(2).rand(1, X.shape[1]))
    params = kw("mu", 2, frozen_components=F, penalties=[L1(0.05, "H")], alpha_W=0.01)
    a, _ = fit(X, **params)
    b, _ = fit(torch.from_numpy(X), **params)
    np.testing.assert_array_equal(b.components_[0].numpy(), F[0])
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sparse", [False, True])
def test_anls_with_frozen_components_on_torch_equals_numpy(sparse):
    # the free rows of H are solved with the frozen rows' contribution moved to the right,
    # on the device as on the host
    X = planted()
    F = np.abs(np.random.RandomState(2).rand(1, X.shape[1]))
    params = kw("anls", 2, frozen_components=F)
    a, Wa = fit(sp.csr_matrix(X) if sparse else X, **params)
    b, Wb = fit(as_tensor(X, sparse), **params)
    np.testing.assert_array_equal(b.components_[0].numpy(), F[0])
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(Wb.numpy(), Wa, rtol=1e-7, atol=1e-9)


def test_what_torch_cannot_run_is_refused_with_the_alternative():
    X = torch.from_numpy(planted(n=40))
    with pytest.raises(ValueError, match="numpy backend only"):
        MiniBatchNMF(2).fit(X, mask=np.ones(tuple(X.shape), dtype=bool))
    with pytest.raises(ValueError, match="numpy backend only"):
        MiniBatchNMF(2, missing_values="unobserved").fit(X.to_sparse_csr())
    g = Graph(0.1, "H", affinity=sp.identity(X.shape[1], format="csr"))
    with pytest.raises(ValueError, match="L1 and L2"):
        MiniBatchNMF(2, penalties=[g]).fit(X)
    with pytest.raises(ValueError, match="Negative values"):
        MiniBatchNMF(2).fit(-X)
    with pytest.raises(ValueError, match="beta_loss <= 0"):
        MiniBatchNMF(2, beta_loss="itakura-saito", init="nndsvda").fit(X)


def test_fit_on_tensor_then_numpy_transform_and_partial_fit():
    # the state follows each call's backend: a tensor-fitted model serves numpy input too
    X = planted()
    b, _ = fit(torch.from_numpy(X), **kw())
    W = b.transform(X[:10])
    assert isinstance(W, np.ndarray) and W.shape == (10, 4)
    b.partial_fit(X[:40])
    assert isinstance(b.components_, np.ndarray) and b.n_steps_ == 13


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", CASES)
def test_cuda_matches_cpu(solver, beta, sparse):
    X = planted(n=400)
    params = kw(solver, beta, init="random")  # random init: the same numbers on any device
    a, _ = fit(as_tensor(X, sparse), **params)
    b, Wb = fit(as_tensor(X, sparse, device="cuda"), **params)
    assert b.components_.device.type == Wb.device.type == "cuda"
    np.testing.assert_allclose(b.components_.cpu().numpy(), a.components_.numpy(),
                               rtol=1e-7, atol=1e-9)
    c = MiniBatchNMF(**params, backend="torch", device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(0, 400, 100):
            c.partial_fit(sp.csr_matrix(X[s:s + 100]) if sparse else X[s:s + 100])
    assert isinstance(c.components_, np.ndarray)
    assert c._components_numerator.device.type == "cuda"


def _count_host_reads(monkeypatch):
    """Count the ways a tensor's value reaches the host (float(), .item(), .tolist(), ...)."""
    counter = {"n": 0}
    for name in ("__float__", "__int__", "__index__", "__bool__", "item", "tolist", "numpy"):
        orig = getattr(torch.Tensor, name)

        def wrapped(self, *args, _orig=orig, **kwargs):
            counter["n"] += 1
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    return counter


@pytest.mark.parametrize("sparse, solver, beta", [(False, "mu", 2), (True, "mu", 1),
                                                  (False, "cd", 2), (True, "cd", 2)])
def test_host_reads_per_batch(monkeypatch, sparse, solver, beta):
    # none per batch without a stopping rule; one per batch (cost and H's change together)
    # with scikit-learn's rule — counted as the difference between 2 and 4 passes of 8 batches
    T = as_tensor(planted(n=400), sparse)
    counter = _count_host_reads(monkeypatch)
    reads = {}
    for rule, extra in [("none", {"tol": 0, "max_no_improvement": None}),
                        ("sklearn", {"tol": 1e-12, "max_no_improvement": 1000})]:
        for epochs in (2, 4):
            counter["n"] = 0
            fit(T, **kw(solver, beta, batch_size=50, max_iter=epochs, **extra))
            reads[rule, epochs] = counter["n"]
    assert reads["none", 4] == reads["none", 2]
    assert reads["sklearn", 4] - reads["sklearn", 2] == 2 * 8


def test_custom_init_on_torch_equals_numpy():
    X = planted()
    rng = np.random.RandomState(5)
    W0, H0 = rng.rand(X.shape[0], 4), rng.rand(4, X.shape[1])
    W0_before, H0_before = W0.copy(), H0.copy()
    params = kw(init="custom")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MiniBatchNMF(**params).fit(X, W=W0.copy(), H=H0.copy())
        # torch.from_numpy shares H0's memory: an in-place update of H would show in H0
        b = MiniBatchNMF(**params).fit(torch.from_numpy(X), W=W0, H=torch.from_numpy(H0))
    np.testing.assert_allclose(b.components_.numpy(), a.components_, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(H0, H0_before)  # caller's H intact
    np.testing.assert_array_equal(W0, W0_before)  # and W
    assert not np.shares_memory(b.components_.numpy(), H0)
