"""KL coordinate descent (solver="cd", beta_loss=1) and masked MU on the torch backend
(issue 7, round 3), on CPU torch: the same trajectories as numpy, monotone, no host
synchronisation in the KL sweep, tensors in → tensors out, numpy in → numpy out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import sparse_abs_gauss

torch = pytest.importorskip("torch")

from nmfkit import NMF, _fit, non_negative_factorization
from nmfkit.backends import get_backend
from nmfkit.init import initialize
from nmfkit.losses import beta_divergence
from nmfkit.penalties import sklearn_penalties
from nmfkit.backends import _torch_kl as _kl_torch
from nmfkit.solvers._kl_kernels import kl_cd_update


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _data(n=30, m=20, seed=0):
    return sparse_abs_gauss(n, m, seed, cut=0.5)


class _Recorder:
    """A fit callback keeping numpy copies of (W, H) after every iteration; ``objectives``
    evaluates them afterwards with numpy (the fit loop itself only evaluates the objective
    at the end when tol=0 and the solver's step does not return it)."""

    def __init__(self):
        self.factors = []

    def __call__(self, info):
        f = (lambda a: a.numpy().copy() if isinstance(a, torch.Tensor) else a.copy())
        self.factors.append((f(info.W), f(info.H)))

    def objectives(self, loss, pens=()):
        return np.array([loss(W, H) + sum(p.value(W.T if p.factor == "W" else H) for p in pens)
                         for W, H in self.factors])


def _kl_pair(X, sparse, alpha=0.0, iters=15, **opts):
    """Per-iteration objectives (numpy, torch) and results of KL-CD fits from one start."""
    Xn = sp.csr_matrix(X) if sparse else X
    W, H = initialize(X, 4, init="random", random_state=0)
    pens = sklearn_penalties(alpha, alpha, 0.5, *X.shape)
    kw = dict(solver="cd", beta=1.0, tol=0, max_iter=iters, solver_options=opts or None,
              penalties_W=[p for p in pens if p.factor == "W"],
              penalties_H=[p for p in pens if p.factor == "H"])
    rec1, rec2 = _Recorder(), _Recorder()
    r1 = _fit.factorize(Xn, W.copy(), H.copy(), nx=get_backend(Xn), callback=rec1, **kw)
    nx = get_backend(backend="torch")
    r2 = _fit.factorize(nx.asarray(Xn), torch.as_tensor(W.copy()), torch.as_tensor(H.copy()),
                        nx=nx, callback=rec2, **kw)
    loss = lambda W_, H_: beta_divergence(X, W_, H_, 1.0)
    return rec1.objectives(loss, pens), rec2.objectives(loss, pens), r1, r2


# ------------------------------------------------------------------ KL coordinate descent
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
@pytest.mark.parametrize("kernel", ["numpy", "auto"])
def test_kl_cd_trajectory_numpy_equals_torch(sparse, alpha, kernel):
    # "numpy": the vectorised numpy kernel (component-outer, as torch); "auto": numba when
    # installed (row-outer): the same updates since rows do not interact given the other factor
    f1, f2, r1, r2 = _kl_pair(_data(), sparse, alpha, kernel=kernel)
    assert isinstance(r2.W, torch.Tensor) and r2.W.dtype == torch.float64
    assert len(f1) == len(f2) == 15
    np.testing.assert_allclose(f2, f1, rtol=1e-8)
    np.testing.assert_allclose(r2.H.numpy(), r1.H, rtol=1e-6, atol=1e-9)
    # monotone on torch (MU warm-up and Newton sweeps alike)
    assert np.all(np.diff(f2) <= 1e-12 * f2[0])


def test_kl_cd_more_newton_steps_no_warmup_and_shuffle():
    f1, f2, _, _ = _kl_pair(_data(seed=1), True, 0.02, newton_steps=3, mu_warmup=0,
                            kernel="numpy")
    np.testing.assert_allclose(f2, f1, rtol=1e-8)
    assert np.all(np.diff(f2) <= 1e-12 * f2[0])
    X = _data(seed=2)
    W, H = initialize(X, 4, init="random", random_state=0)
    nx = get_backend(backend="torch")
    kw = dict(solver="cd", beta=1.0, tol=0, max_iter=10, shuffle=True, random_state=3)
    a = _fit.factorize(X, W.copy(), H.copy(), nx=get_backend(X), **kw)
    b = _fit.factorize(nx.asarray(X), torch.as_tensor(W), torch.as_tensor(H), nx=nx, **kw)
    np.testing.assert_allclose(b.history["objective"], a.history["objective"], rtol=1e-8)


def test_kl_cd_frozen_components_on_torch():
    X = _data()
    W, H = initialize(X, 4, init="random", random_state=0)
    nx = get_backend(backend="torch")
    kw = dict(solver="cd", beta=1.0, tol=0, max_iter=8, frozen_W=(1,), frozen_H=(2,))
    a = _fit.factorize(X, W.copy(), H.copy(), nx=get_backend(X), **kw)
    b = _fit.factorize(nx.asarray(X), torch.as_tensor(W), torch.as_tensor(H), nx=nx, **kw)
    np.testing.assert_allclose(b.history["objective"], a.history["objective"], rtol=1e-8)
    assert np.array_equal(b.W[:, 1].numpy(), W[:, 1]) and np.array_equal(b.H[2].numpy(), H[2])


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


def test_kl_cd_estimator_tensor_in_tensor_out_float32_close_to_float64():
    X = _data(40, 25, seed=4)
    kw = dict(n_components=3, solver="cd", beta_loss=1, init="nndsvda", tol=0, max_iter=30,
              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NMF(**kw).fit(X)
        m64 = NMF(**kw)
        W64 = m64.fit_transform(torch.as_tensor(X))
        m32 = NMF(**kw)
        W32 = m32.fit_transform(torch.as_tensor(X, dtype=torch.float32).to_sparse_csr())
        host = NMF(backend="torch", **kw)
        Wh = host.fit_transform(X)
    assert W64.dtype == torch.float64 and W32.dtype == torch.float32
    assert m32.components_.dtype == torch.float32 and isinstance(Wh, np.ndarray)
    assert m64.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)
    assert host.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)
    assert m32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-6)
    np.testing.assert_allclose(W32.double().numpy(), W64.numpy(), rtol=1e-2, atol=1e-3)
    # float32 accumulation (opt-in): still monotone, close but less accurate
    rec = _Recorder()
    fast = NMF(**kw, callback=rec, solver_options={"kl_float64": False})
    fast.fit(torch.as_tensor(X, dtype=torch.float32))
    f = rec.objectives(lambda W_, H_: beta_divergence(X, W_.astype(float), H_.astype(float), 1))
    assert np.all(np.diff(f) <= 1e-5 * f[0])
    assert fast.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=3e-3)


# ------------------------------------------------------------------------ masked MU
def _planted(n=40, m=30, k=3, frac=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m)) + 0.05 * rng.random((n, m))
    observed = rng.random((n, m)) >= frac
    return X, observed


@pytest.mark.parametrize("beta", [2.0, 1.0, 1.5])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_masked_mu_trajectory_numpy_equals_torch(beta, alpha):
    X, observed = _planted()
    rng = np.random.default_rng(5)
    M = observed * rng.uniform(0.2, 3.0, X.shape)  # real weights
    kw = dict(n_components=3, solver="mu", beta_loss=beta, init="random", random_state=0,
              tol=0, max_iter=15, alpha_W=alpha, alpha_H=alpha, l1_ratio=0.3)
    ref = NMF(**kw)
    W_ref = ref.fit_transform(X, mask=M)
    for Xin, Min, kw_t in [(torch.as_tensor(X), torch.as_tensor(M), {}),  # tensors in
                           (X, M, {"backend": "torch"})]:  # numpy in, fitted on torch
        est = NMF(**kw, **kw_t)
        W = est.fit_transform(Xin, mask=Min)
        f1, f2 = np.array(ref.loss_curve_), np.array(est.loss_curve_)
        np.testing.assert_allclose(f2, f1, rtol=1e-8)
        assert np.all(np.diff(f2) <= 1e-12 * f2[0])
        Wn = W.numpy() if isinstance(W, torch.Tensor) else W
        assert isinstance(W, type(Xin))
        np.testing.assert_allclose(Wn, W_ref, rtol=1e-7, atol=1e-10)
        assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)


def test_masked_mu_nan_tensor_transform_and_float32():
    X, observed = _planted(seed=1)
    Xn = np.where(observed, X, np.nan)
    kw = dict(n_components=3, solver="mu", beta_loss=1, missing_values=np.nan, tol=0,
              max_iter=20, random_state=0)
    ref = NMF(**kw)
    ref.fit(Xn)
    est = NMF(**kw)
    W = est.fit_transform(torch.as_tensor(Xn))
    assert isinstance(est.components_, torch.Tensor) and W.dtype == torch.float64
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-8)
    Wt = est.transform(torch.as_tensor(Xn[:10]))
    np.testing.assert_allclose(Wt.numpy(), ref.transform(Xn[:10]), rtol=1e-7, atol=1e-10)
    e32 = NMF(**kw)
    W32 = e32.fit_transform(torch.as_tensor(Xn, dtype=torch.float32))
    assert W32.dtype == torch.float32 and e32.components_.dtype == torch.float32
    assert e32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-4)
    # non_negative_factorization routes the same way
    W2, H2, _ = non_negative_factorization(torch.as_tensor(Xn), **kw)
    np.testing.assert_allclose(W2.numpy(), W.numpy(), rtol=1e-12)
    assert isinstance(H2, torch.Tensor) and H2.shape == (3, Xn.shape[1])


def test_masked_mu_sparse_unobserved_tensor_equals_scipy():
    X, observed = _planted(seed=2)
    S = sp.csr_matrix(np.where(observed, X, 0.0))
    kw = dict(n_components=3, solver="mu", missing_values="unobserved", tol=0, max_iter=10,
              random_state=0, init="nndsvda")
    ref = NMF(**kw).fit(S)
    crow = torch.as_tensor(S.indptr.astype(np.int64))
    col = torch.as_tensor(S.indices.astype(np.int64))
    St = torch.sparse_csr_tensor(crow, col, torch.as_tensor(S.data), size=S.shape,
                                 check_invariants=True)
    est = NMF(**kw).fit(St)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-8)


def test_masked_n_init_on_torch_equals_numpy():
    X, observed = _planted(seed=3)
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=8, random_state=0, n_init=3)
    ref = NMF(**kw).fit(X, mask=observed)
    est = NMF(backend="torch", **kw).fit(X, mask=observed)
    np.testing.assert_allclose(est.init_objectives_, ref.init_objectives_, rtol=1e-8)
    assert isinstance(est.components_, np.ndarray)


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


def test_masked_torch_input_errors():
    X, observed = _planted()
    Xt = torch.as_tensor(X)
    est = NMF(n_components=3, solver="mu", max_iter=5)
    with pytest.raises(ValueError, match="mask has shape"):
        est.fit(Xt, mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-negative finite weights"):
        est.fit(Xt, mask=-torch.ones(X.shape))
    with pytest.raises(ValueError, match="with a sparse X is ambiguous"):
        NMF(n_components=3, missing_values=np.nan).fit(Xt.to_sparse_csr())
    Xneg = Xt.clone()
    Xneg[0, 1] = -1.0
    with pytest.raises(ValueError, match="smallest observed value is -1.0 at row 0, column 1"):
        est.fit(Xneg, mask=torch.as_tensor(observed) | True)
    with pytest.raises(ValueError, match="contains NaN at observed entries"):
        NMF(n_components=3, missing_values=-1.0).fit(torch.full((4, 3), float("nan")))
    # a negative sentinel is a missing entry, not an error
    Xs = Xt.clone()
    Xs[observed == 0] = -1.0
    NMF(n_components=3, solver="mu", missing_values=-1.0, max_iter=3, tol=0).fit(Xs)


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


def test_masked_backend_torch_numpy_in_numpy_out_transform_and_fixed_H():
    X, observed = _planted(seed=4)
    Xn = np.where(observed, X, np.nan)
    kw = dict(n_components=3, solver="mu", missing_values=np.nan, tol=0, max_iter=10,
              random_state=0)
    ref = NMF(**kw).fit(Xn)
    est = NMF(**kw, backend="torch").fit(Xn)
    assert isinstance(est.components_, np.ndarray)
    Wt = est.transform(Xn[:7])
    assert isinstance(Wt, np.ndarray)
    np.testing.assert_allclose(Wt, ref.transform(Xn[:7]), rtol=1e-7, atol=1e-10)
    # the public function with H fixed (update_H=False), numpy in on torch, and tensors in
    H = ref.components_
    W1, _, _ = non_negative_factorization(Xn, H=H, update_H=False, **kw)
    W2, H2, _ = non_negative_factorization(Xn, H=H, update_H=False, backend="torch", **kw)
    W3, _, _ = non_negative_factorization(torch.as_tensor(Xn), H=torch.as_tensor(H),
                                          update_H=False, **kw)
    assert isinstance(W2, np.ndarray) and isinstance(W3, torch.Tensor)
    np.testing.assert_allclose(W2, W1, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(W3.numpy(), W1, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(H2, H)


@pytest.mark.parametrize("scale", [1e10, 1e-10])
def test_masked_torch_extreme_scale_fitted_at_unit_scale(scale):
    rng = np.random.default_rng(0)
    X = (rng.random((30, 3)) @ rng.random((3, 20))) * scale
    obs = rng.random(X.shape) > 0.3
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=10, random_state=0)
    ref = NMF(**kw).fit(X, mask=obs)
    est = NMF(**kw).fit(torch.as_tensor(X), mask=torch.as_tensor(obs))
    e32 = NMF(**kw).fit(torch.as_tensor(X, dtype=torch.float32), mask=obs)
    assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-10)
    assert e32.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-5)
    np.testing.assert_allclose(est.components_.numpy(), ref.components_, rtol=1e-8)


@pytest.mark.parametrize("mask_kind", ["dense", "scipy", "torch_sparse"])
def test_masked_sparse_tensor_with_a_mask_equals_scipy(mask_kind):
    # the mask's positive entries are observed; X's absent entries there are observed zeros
    X, observed = _planted(seed=5)
    rng = np.random.default_rng(6)
    S = sp.csr_matrix(np.where(rng.random(X.shape) < 0.5, X, 0.0))
    M = observed * rng.uniform(0.5, 2.0, X.shape)
    masks = {"dense": torch.as_tensor(M), "scipy": sp.csr_matrix(M),
             "torch_sparse": torch.as_tensor(M).to_sparse_csr()}
    kw = dict(n_components=3, solver="mu", tol=0, max_iter=10, random_state=0)
    ref = NMF(**kw).fit(S, mask=sp.csr_matrix(M))
    est = NMF(**kw).fit(torch.as_tensor(S.toarray()).to_sparse_csr(), mask=masks[mask_kind])
    assert isinstance(est.components_, torch.Tensor)
    assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-10)
    np.testing.assert_allclose(est.components_.numpy(), ref.components_, rtol=1e-8)
    with pytest.raises(ValueError, match="mask has shape"):
        NMF(**kw).fit(torch.as_tensor(S.toarray()).to_sparse_csr(),
                      mask=sp.csr_matrix(M[:5]))
