"""NMF(n_init) on torch through batched restarts (batched runs equal to the sequential ones,
what falls back and why, the memory check counting every run), and the torch refusals and
`auto` choices of the issue-4 extensions. Their trajectories against numpy (frozen components,
nsNMF, graph penalties, L1/L2) run on numpy and torch alike, through the ``backend`` fixture:
tests/test_estimator_backends.py, and the batched kernels' frozen columns and Ctrl-C:
tests/test_solver_backends.py."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import sparse_abs_gauss

torch = pytest.importorskip("torch")

from nmfkit import NMF, _batched_runs  # noqa: E402
from nmfkit.graph import knn_affinity  # noqa: E402
from nmfkit.penalties import L1, Graph  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=30, m=20, seed=0):
    return sparse_abs_gauss(n, m, seed, cut=0.4)


X = _data()
A_W = knn_affinity(X, 4)  # samples


def test_nmfsc_on_torch_names_the_alternatives():
    with pytest.raises(ValueError, match="numpy backend only.*l1_ratio=1, or smoothness"):
        NMF(3, solver="nmfsc", sparseness_W=0.5).fit(torch.as_tensor(X))


# ------------------------------------------------------------------ n_init: batched restarts
def _fit_pair(Xin, monkeypatch, **kw):
    """The same NMF(n_init) fitted with batched restarts and with the sequential fallback."""
    calls = []
    real = _batched_runs.factorize_starts

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(_batched_runs, "factorize_starts", spy)
    a = NMF(**kw)
    Wa = a.fit_transform(Xin)
    assert calls, "the batched path was not taken"
    monkeypatch.setattr(_batched_runs, "batchable", lambda **k: "forced sequential")
    b = NMF(**kw)
    Wb = b.fit_transform(Xin)
    assert len(calls) == 1
    return a, Wa, b, Wb


@pytest.mark.parametrize("solver", ["mu", "cd"])
@pytest.mark.parametrize("sparse,frozen,graph", [(False, False, False), (True, False, True),
                                                 (False, True, False), (False, False, True)])
def test_n_init_batched_equals_sequential(solver, sparse, frozen, graph, monkeypatch):
    Xnp = _data(40, 25, seed=3)
    Xt = torch.as_tensor(Xnp)
    Xin = Xt.to_sparse_csr() if sparse else Xt
    F = torch.as_tensor(Xnp[:1] * 0.5) if frozen else None
    if solver == "cd" and not graph:  # stops by the violation of its own sweeps: one by one
        assert _batched_runs.batchable(solver="cd", beta=2.0, tol=2e-3) is not None
        return
    # tol > 0: the runs stop at different iterations, each by its own rule
    a, Wa, b, Wb = _fit_pair(Xin, monkeypatch, n_components=4, solver=solver, n_init=4,
                             random_state=0, tol=2e-3, max_iter=300, alpha_W=0.002,
                             l1_ratio=0.3, frozen_components=F,
                             graph="heat" if graph else None, graph_weight=0.3 if graph else 0,
                             penalties=[Graph(0.2, "H", affinity=knn_affinity(Xnp.T, 3))]
                             if graph else None)
    if frozen:
        assert torch.equal(a.components_[:1], F) and torch.equal(b.components_[:1], F)
    np.testing.assert_allclose(a.init_objectives_, b.init_objectives_, rtol=1e-9)
    assert a.n_iter_ == b.n_iter_ and a.stop_reason_ == b.stop_reason_ == "tol"
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(Wa.numpy(), Wb.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(a.components_.numpy(), b.components_.numpy(), rtol=1e-7,
                               atol=1e-10)


def test_n_init_batched_float32_and_extreme_scale(monkeypatch):
    X32 = torch.as_tensor(_data(40, 25, seed=4), dtype=torch.float32)
    a, Wa, b, Wb = _fit_pair(X32, monkeypatch, n_components=3, solver="cd", n_init=3,
                             random_state=1, max_iter=40, tol=0)
    assert Wa.dtype == torch.float32 and a.components_.dtype == torch.float32
    np.testing.assert_allclose(a.init_objectives_, b.init_objectives_, rtol=1e-4)
    monkeypatch.undo()
    # data at 1e8 is fitted at unit scale (as _fit.factorize); objectives on the data's scale
    big = torch.as_tensor(_data(30, 20, seed=5) * 1e8)
    a, Wa, b, Wb = _fit_pair(big, monkeypatch, n_components=3, solver="mu", n_init=3,
                             random_state=0, max_iter=20, tol=0)
    assert a.init_objectives_.min() > 1e10
    np.testing.assert_allclose(a.init_objectives_, b.init_objectives_, rtol=1e-9)
    np.testing.assert_allclose(Wa.numpy(), Wb.numpy(), rtol=1e-7)


class _Other(L1):
    """A user penalty the batched kernels do not know (no hals() form)."""

    def hals(self):
        raise NotImplementedError


def test_batchable_names_what_falls_back():
    ok = dict(solver="mu", beta=2.0)
    assert _batched_runs.batchable(**ok) is None
    assert "solver" in _batched_runs.batchable(solver="anls", beta=2.0)
    assert "beta" in _batched_runs.batchable(solver="mu", beta=1.0)
    assert _batched_runs.batchable(**ok, penalties_W=[Graph(1.0, "W", affinity=A_W)]) is None
    assert "penalty" in _batched_runs.batchable(**ok, penalties_W=[_Other(1.0, "W")])
    assert _batched_runs.batchable(**ok, frozen_H=(0,)) is None
    assert "nsNMF" in _batched_runs.batchable(**ok, smoothing=0.3)
    assert "callback" in _batched_runs.batchable(**ok, callback=print)
    assert "extrapolation" in _batched_runs.batchable(solver="cd", beta=2.0,
                                                      solver_options={"extrapolate": True})
    # a fallback still gives every run's objective, run 0 being the single fit
    Xt = torch.as_tensor(X)
    m = NMF(3, solver="mu", beta_loss="kullback-leibler", n_init=3, random_state=0,
            max_iter=20, tol=0).fit(Xt)
    one = NMF(3, solver="mu", beta_loss="kullback-leibler", random_state=0, max_iter=20,
              tol=0).fit(Xt)
    assert m.init_objectives_.shape == (3,)
    assert m.init_objectives_[0] == pytest.approx(one.init_objectives_[0], rel=1e-12)


def test_graph_float32_kl_and_auto_solver_on_torch():
    X32 = torch.as_tensor(X + 0.05, dtype=torch.float32)
    # Graph under KL-MU on float32 tensors: float32 stays float32, objective non-increasing
    m = NMF(3, solver="mu", beta_loss="kullback-leibler", graph=A_W, graph_weight=0.5,
            random_state=0, max_iter=20, tol=0).fit(X32)
    assert m.components_.dtype == torch.float32
    assert np.all(np.diff(m.loss_curve_) <= 1e-5 * m.loss_curve_[0])
    a = NMF(3, solver="mu", beta_loss="kullback-leibler", graph=A_W, graph_weight=0.5,
            random_state=0, max_iter=20, tol=0).fit(X + 0.05)
    np.testing.assert_allclose(m.loss_curve_, a.loss_curve_, rtol=1e-4)
    # solver="auto" on torch: cd for Frobenius and KL (MU for KL with a graph), MU otherwise
    for beta, extra, expected in (("frobenius", {}, "cd"), ("kullback-leibler", {}, "cd"),
                                  ("kullback-leibler", {"graph": A_W, "graph_weight": 0.1}, "mu"),
                                  ("itakura-saito", {}, "mu")):
        m = NMF(3, solver="auto", beta_loss=beta, smoothness=0.3, n_init=2, random_state=0,
                max_iter=20, **extra).fit(X32)
        assert m._solver == expected and m.init_objectives_.shape == (2,)
        W = m.transform(X32)
        assert float(W.sum()) > 0


def test_memory_check_counts_every_n_init_run(monkeypatch):
    from nmfkit.backends import _torch_io

    seen = []
    monkeypatch.setattr(_torch_io, "check_memory", lambda device, needed: seen.append(needed))
    Xt = torch.as_tensor(X)
    NMF(3, max_iter=2, tol=0).fit(Xt)
    NMF(3, n_init=4, max_iter=2, tol=0).fit(Xt)
    one = _torch_io.bytes_needed(tuple(X.shape), None, 3, 8, dense_WH=False, on_device=True)
    four = _torch_io.bytes_needed(tuple(X.shape), None, 12, 8, dense_WH=False, on_device=True)
    assert seen == [one, four] and four > 3 * one


