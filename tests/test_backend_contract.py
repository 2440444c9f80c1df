"""The backend contract: what outside code asks of a backend instead of asking which one it is.

``NumpyBackend`` defines every operation (the numpy reference); ``TorchBackend`` overrides
what differs and adds nothing that callers would have to probe for. The operations moved into
the contract give the same results through either backend (tests/test_backend_branches.py
counts what still decides by backend identity).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit._validation import check_non_negative, check_zeros_for_beta
from nmfkit.backends import NumpyBackend, get_backend
from nmfkit.graph import knn_affinity
from nmfkit.penalties import Graph


def test_numpy_backend_defines_every_public_torch_operation():
    torch_backend = pytest.importorskip("nmfkit.backends._torch").TorchBackend
    extra = sorted(n for n in vars(torch_backend)
                   if not n.startswith("_") and not hasattr(NumpyBackend, n))
    assert extra == [], f"TorchBackend operations without a numpy definition: {extra}"


def test_sign_and_zero_checks_read_x_on_any_backend():
    torch = pytest.importorskip("torch")
    X = np.array([[1.0, 2.0], [0.5, -3.0]])
    for A in (X, sp.csr_matrix(X), torch.as_tensor(X)):
        with pytest.raises(ValueError, match=r"the smallest is -3.0 at row 1, column 1"):
            check_non_negative(A, "f")
    ok = np.abs(X)
    for A in (ok, sp.csr_matrix(ok), torch.as_tensor(ok)):
        check_non_negative(A, "f")  # no error
        check_zeros_for_beta(A, 0.0)  # no zero: no error
    zero = np.array([[1.0, 0.0], [2.0, 3.0]])
    for A in (zero, sp.csr_matrix(zero), torch.as_tensor(zero), sp.csr_matrix(np.eye(2))):
        with pytest.raises(ValueError, match="beta_loss <= 0 and X contains zeros"):
            check_zeros_for_beta(A, 0.0)
        check_zeros_for_beta(A, 1.0)  # β > 0 takes zeros


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_graph_penalty_gives_numpys_numbers_on_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(0)
    A = knn_affinity(rng.rand(30, 4), n_neighbors=4)
    g = Graph(0.7, "W", affinity=A)
    F = rng.rand(3, 30).astype(dtype)
    Ft = torch.as_tensor(F)
    assert g.value(Ft) == pytest.approx(g.value(F), rel=1e-12)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name in ("grad", "mu_numerator", "mu_denominator"):
        got = getattr(g, name)(Ft)
        assert isinstance(got, torch.Tensor) and got.dtype == Ft.dtype
        np.testing.assert_allclose(got.numpy(), getattr(g, name)(F), rtol=tol)
    # the affinity is cast once per framework/dtype, never to the other framework's type
    assert all(type(a).__module__.split(".")[0] in ("torch", "scipy")
               for a, _ in g._cache.values())


def test_batched_factorize_checks_a_tensor_as_it_checks_numpy_input():
    torch = pytest.importorskip("torch")
    from nmfkit.batched import batched_factorize

    X = np.abs(np.random.RandomState(0).rand(8, 5))
    bad = X.copy()
    bad[2, 3] = np.nan
    for A in (bad, torch.as_tensor(bad)):
        with pytest.raises(ValueError, match="NaN"):
            batched_factorize(A, 2, n_restarts=2, max_iter=3)
    with pytest.raises(ValueError, match="2D"):
        batched_factorize(torch.as_tensor(X[0]), 2, n_restarts=2, max_iter=3)
    with pytest.raises(ValueError, match="Negative values in data passed to batched_factorize"):
        batched_factorize(torch.as_tensor(-X), 2, n_restarts=2, max_iter=3)
    a = batched_factorize(X, 2, n_restarts=2, max_iter=5, random_state=0)
    b = batched_factorize(torch.as_tensor(X), 2, n_restarts=2, max_iter=5, random_state=0)
    np.testing.assert_allclose(b.W.numpy(), a.W, rtol=1e-6, atol=1e-9)


def test_observed_divergence_is_the_same_on_both_backends():
    torch = pytest.importorskip("torch")
    from nmfkit.masked import observed_entries, weighted_divergence

    rng = np.random.RandomState(1)
    X = rng.rand(12, 7) + 0.1
    X[rng.rand(12, 7) < 0.3] = np.nan
    obs = observed_entries(X, missing_values=np.nan)
    W, H = rng.rand(12, 3), rng.rand(3, 7)
    tb = get_backend(backend="torch")
    from nmfkit.backends._torch_masked import observed_from_host

    tobs = observed_from_host(obs, "cpu")
    for beta in (2.0, 1.0, 0.5):
        host = NumpyBackend().observed_divergence(obs, W, H, beta, host=weighted_divergence)
        assert host == weighted_divergence(obs, W, H, beta)
        dev = tb.observed_divergence(tobs, torch.as_tensor(W), torch.as_tensor(H), beta,
                                     host=weighted_divergence)
        assert dev == pytest.approx(host, rel=1e-10)
