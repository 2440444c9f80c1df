"""The torch backend (issue 7) on CPU torch: same trajectories as numpy, sparse == dense,
results on the input's framework/dtype, errors, memory check, batched restarts, GPU script."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from nmfkit import NMF, _fit, non_negative_factorization  # noqa: E402
from nmfkit.backends import get_backend  # noqa: E402
from nmfkit.batched import batched_factorize  # noqa: E402
from nmfkit.init import initialize  # noqa: E402
from nmfkit.losses import beta_divergence  # noqa: E402
from nmfkit.nnls import hals_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=30, m=20, seed=0, zeros=True):
    rng = np.random.RandomState(seed)
    X = np.abs(rng.randn(n, m))
    if zeros:
        X[X < 0.5] = 0.0
    return X


def _pair(X, solver, beta, iters=15, sparse=False, **opts):
    """Objective histories of numpy and torch fits from the same start."""
    Xn = sp.csr_matrix(X) if sparse else X
    W, H = initialize(X, 4, init="random", random_state=0)
    r1 = _fit.factorize(Xn, W.copy(), H.copy(), solver=solver, beta=beta, nx=get_backend(Xn),
                        tol=0, max_iter=iters, solver_options=opts or None)
    nx = get_backend(backend="torch")
    r2 = _fit.factorize(nx.asarray(Xn), torch.as_tensor(W.copy()), torch.as_tensor(H.copy()),
                        solver=solver, beta=beta, nx=nx, tol=0, max_iter=iters,
                        solver_options=opts or None)
    return r1, r2


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_mu_trajectory_numpy_equals_torch(beta, sparse):
    # β ≤ 0 needs X > 0 everywhere: shifted positive, a sparse X then stores every entry
    # (the CSR code path still runs: sampled products at the stored entries)
    X = _data(zeros=beta > 0) + (0.1 if beta <= 0 else 0.0)
    r1, r2 = _pair(X, "mu", beta, sparse=sparse)
    assert isinstance(r2.W, torch.Tensor) and r2.W.dtype == torch.float64
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-10)
    np.testing.assert_allclose(r2.W.numpy(), r1.W, rtol=1e-8, atol=1e-12)
    # monotone on torch as on numpy
    assert np.all(np.diff(r2.history["objective"]) <= 1e-12 * r2.history["objective"][0])


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "opts", [{"inner": False, "extrapolate": False}, {}, {"extrapolate": True}]
)
def test_cd_trajectory_numpy_equals_torch(sparse, opts):
    r1, r2 = _pair(_data(), "cd", 2.0, sparse=sparse, **opts)
    np.testing.assert_allclose(r2.history["objective"], r1.history["objective"], rtol=1e-10)
    np.testing.assert_allclose(r2.H.numpy(), r1.H, rtol=1e-8, atol=1e-12)


def test_cd_penalties_and_shuffle_on_torch():
    X = _data()
    a = NMF(3, solver="cd", alpha_W=0.01, l1_ratio=0.5, shuffle=True, random_state=0,
            max_iter=30, tol=0)
    b = NMF(3, solver="cd", alpha_W=0.01, l1_ratio=0.5, shuffle=True, random_state=0,
            max_iter=30, tol=0)
    Wa = a.fit_transform(X)
    Wb = b.fit_transform(torch.as_tensor(X))
    np.testing.assert_allclose(Wb.numpy(), Wa, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("solver,beta", [("mu", 1.0), ("mu", 1.5), ("mu", 2.0), ("cd", 2.0)])
def test_sparse_equals_dense_on_torch(solver, beta):
    X = torch.as_tensor(_data(40, 25, seed=1))
    kw = dict(solver=solver, beta_loss=beta, random_state=0, max_iter=20, tol=0, init="random")
    if solver == "cd":  # the number of inner sweeps depends on nnz: compare plain HALS
        kw["solver_options"] = {"inner": False, "extrapolate": False}
    Wd = NMF(4, **kw).fit_transform(X)
    Ws = NMF(4, **kw).fit_transform(X.to_sparse_csr())
    torch.testing.assert_close(Ws, Wd, rtol=1e-8, atol=1e-10)
    Wc = NMF(4, **kw).fit_transform(X.to_sparse_coo())  # COO accepted, turned into CSR
    torch.testing.assert_close(Wc, Wd, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_in_tensor_out_same_dtype(dtype):
    X = torch.as_tensor(_data(), dtype=dtype)
    est = NMF(3, solver="mu", random_state=0, max_iter=20)
    W = est.fit_transform(X)
    assert isinstance(W, torch.Tensor) and W.dtype == dtype and W.device == X.device
    assert isinstance(est.components_, torch.Tensor) and est.components_.dtype == dtype
    assert isinstance(est.reconstruction_err_, float) and np.isfinite(est.reconstruction_err_)
    T = est.transform(X)
    assert isinstance(T, torch.Tensor) and T.dtype == dtype
    assert est.inverse_transform(T).shape == X.shape
    W2, H2, n_iter = non_negative_factorization(X, n_components=3, solver="mu", max_iter=5)
    assert isinstance(W2, torch.Tensor) and W2.dtype == dtype and n_iter == 5


def test_integer_tensor_becomes_float32():
    X = torch.as_tensor((_data() * 10).astype(np.int64))
    W = NMF(2, solver="cd", random_state=0, max_iter=10).fit_transform(X)
    assert W.dtype == torch.float32


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_backend_torch_with_numpy_input_returns_numpy(solver):
    X = _data().astype(np.float32)
    a = NMF(3, solver=solver, random_state=0, max_iter=30)
    b = NMF(3, solver=solver, random_state=0, max_iter=30, backend="torch", device="cpu")
    Wa, Wb = a.fit_transform(X), b.fit_transform(X)
    assert isinstance(Wb, np.ndarray) and Wb.dtype == np.float32
    assert isinstance(b.components_, np.ndarray)
    np.testing.assert_allclose(Wb, Wa, rtol=1e-4, atol=1e-5)
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-5)
    np.testing.assert_allclose(b.transform(X), a.transform(X), rtol=1e-4, atol=1e-5)


def test_custom_init_and_update_H_false_on_torch():
    X = torch.as_tensor(_data())
    W0, H0 = initialize(X.numpy(), 3, init="nndsvda")
    est = NMF(3, init="custom", solver="mu", max_iter=10, tol=0)
    W = est.fit_transform(X, W=torch.as_tensor(W0), H=torch.as_tensor(H0))
    ref = NMF(3, init="custom", solver="mu", max_iter=10, tol=0).fit_transform(
        X.numpy(), W=W0, H=H0)
    np.testing.assert_allclose(W.numpy(), ref, rtol=1e-10)
    W1, H1, _ = non_negative_factorization(X, H=est.components_, n_components=3, solver="cd",
                                           update_H=False, max_iter=20)
    assert torch.equal(H1, est.components_)
    with pytest.raises(TypeError, match="same dtype as X"):
        NMF(3, init="custom").fit(X, W=torch.as_tensor(W0).float(), H=torch.as_tensor(H0))


def test_tensor_input_errors():
    with pytest.raises(ValueError, match="Negative values in data passed to NMF"):
        NMF(2).fit(torch.tensor([[1.0, -2.0], [0.5, 1.0]]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        NMF(2).fit(torch.tensor([[1.0, float("nan")], [0.5, 1.0]]))
    with pytest.raises(ValueError, match="Expected a 2D tensor"):
        NMF(2).fit(torch.ones(3, 3, 3))
    est = NMF(2, max_iter=5).fit(torch.ones(4, 3) + torch.rand(4, 3))
    with pytest.raises(ValueError, match="X has 4 features, but NMF is expecting 3"):
        est.transform(torch.ones(2, 4))
    with pytest.raises(ValueError, match="beta_loss <= 0 and X contains zeros"):
        NMF(2, solver="mu", beta_loss=0).fit(torch.as_tensor(_data()))
    # solver="cd" with beta_loss=1 runs on torch since round 3 (tests/test_torch_kl_masked.py)


def test_missing_torch_names_the_extra(monkeypatch):
    import builtins

    import nmfkit.backends as backends

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch.") or name.endswith("_torch"):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "nmfkit.backends._torch", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r'pip install "nmfkit\[torch\]"'):
        backends.get_backend(np.ones((2, 2)), backend="torch")


def test_losses_on_device_match_numpy():
    X = _data() + 0.0
    W, H = initialize(X, 4, init="random", random_state=0)
    for beta in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        Xb = X + 0.1 if beta <= 0 else X
        ref = beta_divergence(Xb, W, H, beta)
        got = beta_divergence(torch.as_tensor(Xb), torch.as_tensor(W), torch.as_tensor(H), beta)
        assert got == pytest.approx(ref, rel=1e-12)
        if beta > 0:
            got_s = beta_divergence(torch.as_tensor(Xb).to_sparse_csr(), torch.as_tensor(W),
                                    torch.as_tensor(H), beta)
            assert got_s == pytest.approx(beta_divergence(sp.csr_matrix(Xb), W, H, beta),
                                          rel=1e-12)


def test_hals_kernel_matches_numpy_and_keeps_dead_components():
    rng = np.random.RandomState(0)
    U = np.abs(rng.randn(4, 30))
    U[2] = 0.0  # a dead component: G[2, 2] = 0
    M = np.abs(rng.randn(30, 12))
    G, R = U @ U.T, U @ M
    F = np.abs(rng.randn(4, 12))
    Ft = torch.as_tensor(F.copy())
    hals_sweep(F, G, R, 0.1, 0.2)
    hals_sweep(Ft, torch.as_tensor(G), torch.as_tensor(R), 0.1, 0.2, nx=get_backend(Ft))
    np.testing.assert_allclose(Ft.numpy(), F, rtol=1e-12)
    assert torch.isfinite(Ft).all()


def test_memory_check_names_the_bytes(monkeypatch):
    from nmfkit.backends import _torch_io

    need = _torch_io.bytes_needed((20000, 5000), None, 20, 4, dense_WH=False, on_device=False)
    assert need >= 20000 * 5000 * 4
    assert _torch_io.bytes_needed((20000, 5000), None, 20, 4, dense_WH=True,
                                  on_device=False) > need
    _torch_io.check_memory("cpu", 10**15)  # no limit known on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 2 * 2**30))
    with pytest.raises(MemoryError, match=r"needs about 4\.00 GiB on cuda but only 1\.00 GiB"):
        _torch_io.check_memory("cuda", 4 * 2**30)


def test_tf32_only_on_opt_in():
    from nmfkit.backends._torch import TorchBackend

    before = torch.get_float32_matmul_precision()
    with TorchBackend(allow_tf32=False).compute_context():
        assert torch.get_float32_matmul_precision() == "highest"
        assert not torch.backends.cuda.matmul.allow_tf32
    with TorchBackend(allow_tf32=True).compute_context():
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before
    # the estimator accepts the opt-in and does not pass it on to the solver
    W = NMF(2, solver="mu", max_iter=5, solver_options={"allow_tf32": True}).fit_transform(
        torch.as_tensor(_data(), dtype=torch.float32))
    assert W.dtype == torch.float32


def test_nndsvd_fixup_matches_numpy_init():
    from sklearn.utils.extmath import randomized_svd

    from nmfkit.init import nndsvd_from_svd

    X = _data(25, 18, seed=3) + 0.01
    U, S, V = randomized_svd(X, 5, random_state=0)
    for init in ("nndsvd", "nndsvda"):
        W, H = nndsvd_from_svd(U, S, V, init, X.mean(), np.random.RandomState(0))
        Wr, Hr = initialize(X, 5, init=init, random_state=0)
        np.testing.assert_allclose(W, Wr, rtol=1e-10)
        np.testing.assert_allclose(H, Hr, rtol=1e-10)


@pytest.mark.parametrize("solver", ["mu", "cd"])
@pytest.mark.parametrize("sparse", [False, True])
def test_batched_restarts_match_single_fits(solver, sparse):
    X = _data(40, 25)
    Xin = sp.csr_matrix(X) if sparse else X
    r = batched_factorize(Xin, 4, n_restarts=3, solver=solver, random_state=0, max_iter=15,
                          tol=0)
    assert r.W.shape == (3, 40, 4) and r.H.shape == (3, 4, 25) and r.n_iter == 15
    for b in range(3):
        W, H = initialize(Xin, 4, init="random", random_state=int(r.seeds[b]))
        plain = {"inner": False, "extrapolate": False} if solver == "cd" else None
        s = _fit.factorize(Xin, W, H, solver=solver, beta=2.0, nx=get_backend(Xin), tol=0,
                           max_iter=15, solver_options=plain)
        assert r.objectives[b] == pytest.approx(s.objective, rel=1e-10)
        np.testing.assert_allclose(r.W[b], s.W, rtol=1e-8, atol=1e-12)
    Xt = torch.as_tensor(X).to_sparse_csr() if sparse else torch.as_tensor(X)
    rt = batched_factorize(Xt, 4, seeds=r.seeds, solver=solver, max_iter=15, tol=0)
    assert isinstance(rt.W, torch.Tensor)
    np.testing.assert_allclose(rt.objectives, r.objectives, rtol=1e-10)
    Wb, Hb = r.best_factors()
    assert r.objectives[r.best] == r.objectives.min() and Wb.shape == (40, 4)
    hist = np.array(r.history["objective"])
    assert np.all(np.diff(hist, axis=0) <= 1e-9 * hist[0])


def test_batched_errors_and_stopping():
    X = _data()
    with pytest.raises(ValueError, match="frobenius"):
        batched_factorize(X, 2, beta_loss="kullback-leibler")
    with pytest.raises(ValueError, match="solver must be"):
        batched_factorize(X, 2, solver="anls")
    with pytest.raises(ValueError, match="Negative values"):
        batched_factorize(-X - 1, 2)
    r = batched_factorize(X, 3, n_restarts=2, max_iter=500, tol=1e-3, random_state=0)
    assert r.n_iter < 500
    rn = batched_factorize(X, 3, n_restarts=2, max_iter=10, tol=0, random_state=0,
                           backend="torch")
    assert isinstance(rn.W, np.ndarray)


def test_solver_registry_declares_backends():
    from nmfkit.solvers import solver_table

    rows = {r["solver"]: r for r in solver_table()}
    assert "torch" in rows["mu"]["backends"] and "torch" in rows["cd"]["backends"]
    numpy_only = [n for n, r in rows.items() if "torch" not in r["backends"]]
    for name in numpy_only[:1]:
        with pytest.raises(ValueError, match="has no 'torch' backend"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                NMF(2, solver=name, max_iter=2).fit(torch.as_tensor(_data() + 0.1))


def test_gpu_check_script_smoke(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "gpu.md"
    rc = mod.main(["--device", "cpu", "--small", "--iters", "2", "--max-time", "0.3",
                   "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert "bandwidth floor" in text and "scikit-learn cd on host" in text
    assert "time to sklearn CD 200-it objective" in text
    assert text.count("| yes |") == 12 and "| NO |" not in text
    assert "anls on device" in text and "pgd on device" in text
    assert "cd KL on device" in text and "masked mu on device" in text
    assert (ROOT / "benchmarks" / "gpu_check.sh").exists()


def test_dense_times_sparse_uses_a_cached_csr_transpose():
    nx = get_backend(backend="torch")
    X = torch.as_tensor(_data(50, 30, seed=2))
    S = X.to_sparse_csr()
    A = torch.rand(4, 50, dtype=torch.float64)
    torch.testing.assert_close(nx.matmul(A, S), A @ X, rtol=1e-12, atol=1e-12)
    S2 = nx.with_data(S, S.values() * 2.0)  # same structure: the plan is reused
    torch.testing.assert_close(nx.matmul(A, S2), 2.0 * (A @ X), rtol=1e-12, atol=1e-12)
    assert len(nx._tplans) == 1


def test_extreme_scale_sparse_tensor():
    X = _data(30, 20, seed=4) * 1e8  # fitted at unit scale inside factorize
    kw = dict(solver="mu", beta_loss=1, max_iter=20, random_state=0)
    ref = NMF(3, **kw).fit(X).reconstruction_err_
    for Xt in (torch.as_tensor(X), torch.as_tensor(X).to_sparse_csr()):
        assert NMF(3, **kw).fit(Xt).reconstruction_err_ == pytest.approx(ref, rel=1e-9)


def test_requires_grad_input_is_fitted_without_autograd():
    X = torch.as_tensor(_data(), dtype=torch.float32).requires_grad_(True)
    for solver in ("mu", "cd"):
        W = NMF(2, solver=solver, max_iter=5, random_state=0).fit_transform(X)
        assert not W.requires_grad and W.grad_fn is None


@pytest.mark.parametrize("sparse", [False, True])
def test_device_init_path(sparse):
    """The initialisation used on CUDA (X stays on the device), exercised on CPU tensors."""
    from nmfkit.init import initial_factors

    def init_factors(nx, X, k, init, seed, on_host):
        return initial_factors(nx, X, k, init, seed, on_device=not on_host)

    X = _data(40, 25, seed=5) + (0.0 if sparse else 0.01)
    Xt = torch.as_tensor(X).to_sparse_csr() if sparse else torch.as_tensor(X)
    nx = get_backend(Xt)
    W, H = init_factors(nx, Xt, 4, "random", 0, on_host=False)
    Wr, Hr = initialize(X, 4, init="random", random_state=0)
    np.testing.assert_allclose(W.numpy(), Wr, rtol=1e-12)
    np.testing.assert_allclose(H.numpy(), Hr, rtol=1e-12)
    for init in ("nndsvd", "nndsvda", "nndsvdar"):
        W, H = init_factors(nx, Xt, 4, init, 0, on_host=False)
        assert W.shape == (40, 4) and H.shape == (4, 25) and W.dtype == torch.float64
        assert bool((W >= 0).all()) and bool((H >= 0).all()) and bool(torch.isfinite(W).all())
        Wr, Hr = initialize(X, 4, init=init, random_state=0)
        # a different randomized SVD: the start is as good as numpy's, not identical
        e = beta_divergence(X, W.numpy(), H.numpy(), 2)
        assert e <= 1.05 * beta_divergence(X, Wr, Hr, 2)
    with pytest.raises(ValueError, match="init = 'nndsvd' can only be used"):
        init_factors(nx, Xt, 30, "nndsvd", 0, on_host=False)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_n_init_on_torch_equals_numpy(solver):
    X = _data(40, 25, seed=6)
    a = NMF(4, solver=solver, n_init=3, random_state=0, max_iter=30)
    b = NMF(4, solver=solver, n_init=3, random_state=0, max_iter=30)
    Wa, Wb = a.fit_transform(X), b.fit_transform(torch.as_tensor(X))
    np.testing.assert_allclose(b.init_objectives_, a.init_objectives_, rtol=1e-10)
    np.testing.assert_allclose(Wb.numpy(), Wa, rtol=1e-8, atol=1e-12)


def test_numpy_backend_refuses_tensors():
    with pytest.raises(ValueError, match="backend='numpy' was given torch tensors"):
        NMF(2, backend="numpy").fit(torch.as_tensor(_data()))
