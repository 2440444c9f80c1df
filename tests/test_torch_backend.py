"""The torch backend (issue 7), what only torch has: tensor-worded errors, the missing-torch
message, memory check, TF32, autograd input, the device init path, the CSR transpose cache,
refusals, GPU script. The checks that run the same on numpy and torch (trajectories, sparse ==
dense, array type and dtype out, batched restarts) are parametrised over both by the
``backend`` fixture: tests/test_estimator_backends.py and tests/test_solver_backends.py."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nmfkit import NMF  # noqa: E402
from nmfkit.backends import get_backend  # noqa: E402
from nmfkit.init import initialize  # noqa: E402
from nmfkit.losses import beta_divergence  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=30, m=20, seed=0, zeros=True):
    rng = np.random.RandomState(seed)
    X = np.abs(rng.randn(n, m))
    if zeros:
        X[X < 0.5] = 0.0
    return X


def test_tensor_input_errors():
    # the messages worded for tensors; those numpy shares (negative values, the number of
    # features, beta_loss <= 0 with zeros) are test_estimator_backends.py::test_input_errors
    with pytest.raises(ValueError, match="NaN or infinity"):
        NMF(2).fit(torch.tensor([[1.0, float("nan")], [0.5, 1.0]]))
    with pytest.raises(ValueError, match="Expected a 2D tensor"):
        NMF(2).fit(torch.ones(3, 3, 3))
    # solver="cd" with beta_loss=1 runs on torch since round 3 (test_solver_backends.py)


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


def test_numpy_backend_refuses_tensors():
    with pytest.raises(ValueError, match="backend='numpy' was given torch tensors"):
        NMF(2, backend="numpy").fit(torch.as_tensor(_data()))
