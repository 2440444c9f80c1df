"""KL coordinate descent (solver="cd", beta_loss=1) and masked MU on the torch backend
(issue 7, round 3), what only torch has: the KL safeguard's bisection, no host
synchronisation in the KL sweep, SDDMM and its fallback, memory estimates, the masked solvers
torch refuses. The trajectories against numpy, tensors in → tensors out and numpy in → numpy
out run on numpy and torch alike (the ``backend`` fixture): tests/test_solver_backends.py and
tests/test_estimator_backends.py."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import sparse_abs_gauss

torch = pytest.importorskip("torch")

from nmfkit import NMF
from nmfkit.backends import get_backend
from nmfkit.backends import _torch_kl as _kl_torch
from nmfkit.solvers._kl_kernels import kl_cd_update


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=30, m=20, seed=0):
    return sparse_abs_gauss(n, m, seed, cut=0.5)


# ------------------------------------------------------------------ KL coordinate descent
def _one_sweep(F, B, X, newton_steps=3):
    F1 = F.copy()
    kl_cd_update(F1, B, X, B.sum(axis=1), 0.1, 0.2, np.arange(F.shape[0]), newton_steps,
                 1e-12, False)
    nx = get_backend(backend="torch")
    side, _ = _kl_torch._sides(nx, nx.asarray(X), torch.float64)
    F2, B2 = torch.as_tensor(F.copy()), torch.as_tensor(B)
    _kl_torch.kl_cd_update_torch(F2, B2, side, B2.sum(dim=1), 0.1, 0.2, range(F.shape[0]),
                                 newton_steps, 1e-12)
    return F1, F2.numpy()


@pytest.mark.parametrize("compact", [True, False])
def test_kl_safeguard_bisection_matches_the_halving_loop(monkeypatch, compact):
    # from a start far above the solution the decreasing Newton steps overshoot, so the
    # safeguard halves them; the bisection finds the numpy loop's number of halvings, over
    # every non-zero (the GPU schedule) or only the pending rows' (CPU)
    monkeypatch.setattr(_kl_torch, "_may_sync", lambda device: compact)
    rng = np.random.RandomState(1)
    X = sp.csr_matrix(_data(40, 30))
    F, B = rng.rand(5, 40) * 5, rng.rand(5, 30)
    F1, F2 = _one_sweep(F, B, X)
    np.testing.assert_allclose(F2, F1, rtol=1e-10, atol=1e-12)
    # without the bisection the (unsafeguarded) Newton steps give another result: the test
    # above did exercise the halvings
    monkeypatch.setattr(_kl_torch, "_BISECT_PASSES", 0)
    _, F3 = _one_sweep(F, B, X)
    assert np.abs(F3 - F1).max() > 1e-2


def test_kl_sweep_reads_nothing_back_from_the_device(monkeypatch):
    X = sp.csr_matrix(_data())
    nx = get_backend(backend="torch")
    side, _ = _kl_torch._sides(nx, nx.asarray(X), torch.float64)
    rng = np.random.RandomState(0)
    F, B = torch.as_tensor(rng.rand(4, 30) * 3), torch.as_tensor(rng.rand(4, 20))
    hsum = B.sum(dim=1)
    monkeypatch.setattr(_kl_torch, "_may_sync", lambda device: False)  # the CUDA schedule

    def sync(*a, **k):
        raise AssertionError("host synchronisation inside the KL sweep")

    for name in ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy",
                 "cpu", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    _kl_torch.kl_cd_update_torch(F, B, side, hsum, 0.0, 0.1, [2, 0, 3, 1], 2, 1e-12)
    monkeypatch.undo()
    assert bool(torch.isfinite(F).all()) and float(F.min()) >= 0


# ------------------------------------------------------------------------ masked MU
def _planted(n=40, m=30, k=3, frac=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m)) + 0.05 * rng.random((n, m))
    observed = rng.random((n, m)) >= frac
    return X, observed


@pytest.mark.parametrize("solver", ["cd", "masked_als", "masked_cd", "auto"])
def test_masked_solvers_on_torch(solver):
    X, observed = _planted()
    est = NMF(n_components=3, solver=solver, max_iter=5, tol=0, random_state=0)
    if solver == "auto":  # picks masked MU on torch
        est.fit(torch.as_tensor(X), mask=torch.as_tensor(observed))
        assert isinstance(est.components_, torch.Tensor)
        return
    with pytest.raises(ValueError, match="no torch backend; on torch use solver='mu'"):
        est.fit(torch.as_tensor(X), mask=torch.as_tensor(observed))


def test_memory_estimates_count_kl_cd_and_masked_state(monkeypatch):
    from nmfkit.backends import _torch_io, _torch_masked

    base = _torch_io.bytes_needed((20000, 5000), 10**6, 20, 4, dense_WH=False, on_device=True)
    kl = _torch_io.bytes_needed((20000, 5000), 10**6, 20, 4, dense_WH=False, on_device=True,
                                kl_cd=True)
    assert kl - base >= 10**6 * 100  # ~120 bytes per non-zero: both orders + temporaries
    assert _torch_masked.masked_bytes_needed((20000, 5000), 10**6, 20, 4) > 10**6 * 60
    # a masked fit that cannot fit on the device is refused before anything is moved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000, 2000))
    X, observed = _planted()
    with pytest.raises(MemoryError, match="needs about .* GiB on cuda"):
        NMF(n_components=3, backend="torch", device="cuda").fit(X, mask=observed)
    with pytest.raises(MemoryError, match="needs about .* GiB on cuda"):  # a tensor moved
        NMF(n_components=3, device="cuda").fit(torch.as_tensor(X), mask=observed)


@pytest.mark.parametrize("sddmm", [True, False])
def test_sampled_products_sddmm_and_gather_fallback_agree(monkeypatch, sddmm):
    if not sddmm:  # a device/dtype without an SDDMM kernel takes the gathers
        def refuse(*a, **k):
            raise RuntimeError("no SDDMM here")

        monkeypatch.setattr(torch.sparse, "sampled_addmm", refuse)
    rng = np.random.RandomState(0)
    S = sp.random(30, 20, density=0.3, random_state=1, format="csr")
    nx = get_backend(backend="torch")
    X = nx.asarray(S)
    W, H = torch.as_tensor(rng.rand(30, 4)), torch.as_tensor(rng.rand(4, 20))
    ref = get_backend(S).sampled_dot(W.numpy(), H.numpy(), S)
    np.testing.assert_allclose(nx.sampled_dot_sddmm(W, H, X).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(get_backend(S).sampled_dot_sddmm(W.numpy(), H.numpy(), S), ref)
    side, _ = _kl_torch._sides(nx, X, torch.float64)
    np.testing.assert_allclose(_kl_torch._sampled(W.T, H, side).numpy(), ref, rtol=1e-12)


