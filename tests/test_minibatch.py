"""MiniBatchNMF: agreement with scikit-learn, objective, partial_fit semantics."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import MiniBatchNMF as SkMiniBatchNMF

from nmfkit import NMF, MiniBatchNMF
from nmfkit.losses import beta_divergence


def planted(n=300, m=40, k=4, seed=0, noise=0.01):
    rng = np.random.RandomState(seed)
    W = rng.gamma(1.0, size=(n, k))
    H = rng.gamma(1.0, size=(k, m)) * (rng.rand(k, m) < 0.6)
    return W @ H + noise * rng.rand(n, m)


def _init(X, k, seed=0):
    rng = np.random.RandomState(seed)
    avg = np.sqrt(X.mean() / k)
    return (avg * np.abs(rng.randn(X.shape[0], k))).astype(X.dtype), (
        avg * np.abs(rng.randn(k, X.shape[1]))
    ).astype(X.dtype)


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler", 0.5])
@pytest.mark.parametrize("fresh", [False, True])
def test_matches_sklearn_from_same_init(beta_loss, fresh):
    X = planted(n=120, m=15) + 0.05
    W0, H0 = _init(X, 4)
    kw = dict(n_components=4, init="custom", batch_size=32, beta_loss=beta_loss, max_iter=3,
              tol=0, max_no_improvement=None, fresh_restarts=fresh, fresh_restarts_max_iter=5,
              alpha_W=0.01, l1_ratio=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wa = MiniBatchNMF(**kw).fit_transform(X, W=W0.copy(), H=H0.copy())
        a = MiniBatchNMF(**kw).fit(X, W=W0.copy(), H=H0.copy())
        b = SkMiniBatchNMF(**kw).fit(X, W=W0.copy(), H=H0.copy())
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-5, atol=1e-10)
    assert a.n_steps_ == b.n_steps_ == 12 and a.n_iter_ == b.n_iter_ == 3
    assert np.isclose(a.reconstruction_err_, b.reconstruction_err_, rtol=1e-5)
    assert Wa.shape == (120, 4)


def test_objective_decreases_on_average():
    X = planted()
    k = 4
    objs = []
    W0, H0 = _init(X, k)
    mb = MiniBatchNMF(k, init="custom", batch_size=50, forget_factor=1.0, tol=0,
                      max_no_improvement=None, max_iter=1)
    mb.fit(X, W=W0, H=H0)
    for _ in range(150):
        mb.partial_fit(X[np.random.RandomState(len(objs)).permutation(len(X))[:50]])
        objs.append(beta_divergence(X, mb.transform(X), mb.components_, 2))
    objs = np.asarray(objs)
    # on average it decreases: each block of 30 steps ends lower than the previous block
    means = objs.reshape(5, 30).mean(axis=1)
    assert np.all(np.diff(means) < 0)


def test_online_hals_reaches_batch_objective_within_1pct():
    rng = np.random.RandomState(0)
    k = 4
    X = rng.rand(300, k) @ rng.rand(k, 40) + 0.1 * rng.rand(300, 40)

    def f(H):  # objective at the best W for this H
        from nmfkit import non_negative_factorization
        W, _, _ = non_negative_factorization(X, H=H, n_components=k, update_H=False,
                                             solver="cd", max_iter=1000, tol=1e-10)
        return beta_divergence(X, W, H, 2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f_mu = f(NMF(k, solver="mu", init="nndsvda", max_iter=1000, tol=1e-8).fit(X).components_)
        f_cd = f(NMF(k, solver="cd", max_iter=1000, tol=1e-8).fit(X).components_)
        mb = MiniBatchNMF(k, solver="cd", init="nndsvda", batch_size=50, forget_factor=0.1,
                          max_iter=60, tol=0, max_no_improvement=None, fresh_restarts=True,
                          random_state=0).fit(X)
    f_mb = f(mb.components_)
    assert f_mb <= 1.01 * f_mu  # within 1% of batch MU (it is below it)
    assert f_mb <= 1.02 * f_cd  # and within 2% of batch HALS
    # online ANLS (exact NNLS for W_b and for H on the sums): within 1% of batch HALS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mb = MiniBatchNMF(k, solver="anls", init="nndsvda", batch_size=50, forget_factor=0.1,
                          max_iter=60, tol=0, max_no_improvement=None, random_state=0).fit(X)
    assert f(mb.components_) <= 1.01 * f_cd
    with pytest.raises(ValueError, match="solver='cd'.*frobenius"):
        MiniBatchNMF(2, solver="cd", beta_loss="kullback-leibler").fit(X)


def test_partial_fit_semantics_shuffled_batches():
    """partial_fit over shuffled batches == one pass of fit with fresh restarts over the rows
    in that order, with forget_factor raised to n/b (documented in nmfkit.minibatch)."""
    X = planted(n=120, m=12)
    rng = np.random.RandomState(3)
    order = rng.permutation(120)
    b, f = 20, 0.6
    W0, H0 = _init(X, 3)
    pf = MiniBatchNMF(3, init="custom", batch_size=b, forget_factor=f, fresh_restarts_max_iter=7)
    for s in range(0, 120, b):
        pf.partial_fit(X[order[s:s + b]], W=W0[:b], H=H0)
    ref = MiniBatchNMF(3, init="custom", batch_size=b, forget_factor=f ** (120 / b), max_iter=1,
                       tol=0, max_no_improvement=None, fresh_restarts=True,
                       fresh_restarts_max_iter=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X[order], W=W0[order], H=H0)
    assert pf.n_steps_ == ref.n_steps_ == 6
    np.testing.assert_allclose(pf.components_, ref.components_, rtol=1e-10)
    # the caller's H is never updated in place
    assert np.array_equal(H0, _init(X, 3)[1])


def test_partial_fit_then_transform_shapes_and_first_call_params():
    X = planted(n=60, m=10)
    m = MiniBatchNMF(3, init="random", random_state=0)
    for s in range(0, 60, 15):
        m.partial_fit(X[s:s + 15])
    assert m.components_.shape == (3, 10) and m.n_steps_ == 4
    assert m.transform(X).shape == (60, 3)
    with pytest.raises(ValueError, match="features"):
        m.partial_fit(X[:, :5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_sparse(dtype):
    X = planted(n=80, m=12).astype(dtype)
    X[X < 0.5] = 0
    Xs = sp.csr_matrix(X)
    kw = dict(n_components=3, init="nndsvda", batch_size=16, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wd = MiniBatchNMF(**kw).fit_transform(X)
        ms = MiniBatchNMF(**kw)
        Ws = ms.fit_transform(Xs)
    assert Wd.dtype == dtype and ms.components_.dtype == dtype
    np.testing.assert_allclose(Wd, Ws, rtol=1e-4, atol=1e-6)
    assert np.all(np.isfinite(ms.components_))


def test_verbose_logs_not_prints(capsys, caplog):
    X = planted(n=40, m=8)
    with caplog.at_level("INFO", logger="nmfkit"):
        MiniBatchNMF(2, batch_size=10, max_iter=2, verbose=1, random_state=0).fit(X)
    assert capsys.readouterr().out == ""
    assert any("Minibatch step" in r.message for r in caplog.records)


def test_check_estimator_with_fresh_restarts():
    """scikit-learn's estimator checks, in the configuration where scikit-learn's own
    MiniBatchNMF passes them all (fresh restarts make fit_transform equal transform)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(MiniBatchNMF(2, max_iter=20, batch_size=8, fresh_restarts=True),
                              on_fail=None)
    failed = [r["check_name"] for r in res if r["status"] == "failed"]
    assert len(res) > 40 and failed == []


@pytest.mark.parametrize("solver", ["mu", "cd", "anls"])
def test_frozen_components_fit_and_partial_fit(solver):
    """Known components stay bit-identical through fit and through partial_fit batches."""
    rng = np.random.RandomState(0)
    H_true = rng.rand(4, 12)
    X = rng.rand(200, 4) @ H_true
    F = H_true[:2]
    m = MiniBatchNMF(4, solver=solver, frozen_components=F, batch_size=50, max_iter=20,
                     random_state=0).fit(X)
    assert np.array_equal(m.components_[:2], F)
    free = MiniBatchNMF(4, solver=solver, batch_size=50, max_iter=20, random_state=0).fit(X)
    assert not np.array_equal(free.components_[:2], F)
    p = MiniBatchNMF(4, solver=solver, frozen_components=F, random_state=0)
    for start in range(0, 200, 40):
        p.partial_fit(X[start:start + 40])
        assert np.array_equal(p.components_[:2], F)
    # the learned part still explains the data
    W = m.transform(X)
    assert np.linalg.norm(X - W @ m.components_) / np.linalg.norm(X) < 0.2


def test_frozen_components_shape_error():
    X = np.abs(np.random.RandomState(0).rand(30, 6))
    with pytest.raises(ValueError, match=r"frozen_components must have shape"):
        MiniBatchNMF(3, frozen_components=np.ones((1, 5))).fit(X)


# ---------------------------------------------------------------- penalties, masks, torch
def _objective(X, W, H, pens):
    return 0.5 * np.sum((X - W @ H) ** 2) + sum(
        p.value(W.T if p.factor == "W" else H) for p in pens
    )


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_penalised_online_objective_decreases_on_average(solver):
    from nmfkit.penalties import L1, L2

    X = planted(n=200, m=30, seed=3)
    pens = [L1(factor="H", weight=2.0), L2(factor="W", weight=1.0)]
    W0, H0 = _init(X, 4, seed=1)
    objs = []
    for it in (1, 5, 30):
        est = MiniBatchNMF(4, init="custom", batch_size=50, max_iter=it, tol=0,
                           max_no_improvement=None, solver=solver, penalties=pens)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W = est.fit_transform(X, W=W0, H=H0)
        objs.append(_objective(X, W, est.components_, pens))
    assert objs[2] < objs[1] < objs[0]
    # the penalties are honoured: the penalised objective is lower than the unpenalised fit's
    ref = MiniBatchNMF(4, init="custom", batch_size=50, max_iter=30, tol=0,
                       max_no_improvement=None, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wr = ref.fit_transform(X, W=W0, H=H0)
    assert objs[2] < _objective(X, Wr, ref.components_, pens)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_graph_penalties_online(solver):
    from nmfkit.penalties import Graph

    X = planted(n=60, m=10)
    A = sp.random(10, 10, density=0.3, random_state=0)
    A = A + A.T
    g = Graph(affinity=A, factor="H", weight=0.5)
    est = MiniBatchNMF(3, batch_size=20, max_iter=5, penalties=[g], random_state=0,
                       solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    assert np.all(np.isfinite(est.components_)) and est.components_.min() >= 0
    Aw = sp.eye(60, format="csr")
    with pytest.raises(ValueError, match="sample graph couples rows"):
        MiniBatchNMF(3, penalties=[Graph(affinity=Aw, factor="W")]).fit(X)
    with pytest.raises(ValueError, match="5 nodes but X has 10 features"):
        MiniBatchNMF(3, penalties=[Graph(affinity=sp.eye(5), factor="H")]).fit(X)
    with pytest.raises(ValueError, match="cannot honour Graph"):
        MiniBatchNMF(3, solver="anls", penalties=[Graph(affinity=A, factor="H")]).fit(X)


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
@pytest.mark.parametrize("fresh", [False, True])
def test_all_ones_mask_equals_unmasked(beta_loss, fresh):
    X = planted(n=120, m=20, seed=2) + 0.05
    kw = {"init": "nndsvda", "batch_size": 40, "max_iter": 10, "tol": 0,
          "max_no_improvement": None, "beta_loss": beta_loss, "fresh_restarts": fresh}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MiniBatchNMF(4, **kw)
        Wa = a.fit_transform(X)
        b = MiniBatchNMF(4, **kw)
        Wb = b.fit_transform(X, mask=np.ones_like(X, dtype=bool))
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(Wb, Wa, rtol=1e-6, atol=1e-10)
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-6)
    pa = MiniBatchNMF(4, **kw).partial_fit(X[:60]).partial_fit(X[60:])
    pb = MiniBatchNMF(4, **kw).partial_fit(X[:60], mask=np.ones((60, 20)))
    pb.partial_fit(X[60:], mask=np.ones((60, 20)))
    np.testing.assert_allclose(pb.components_, pa.components_, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("solver", ["mu", "cd"])
def test_masked_online_fit_recovers_held_out_entries(solver):
    rng = np.random.RandomState(0)
    W = rng.rand(400, 3)
    H = rng.rand(3, 25)
    X = W @ H
    hidden = rng.rand(*X.shape) < 0.2
    Xn = X.copy()
    Xn[hidden] = np.nan
    est = MiniBatchNMF(3, batch_size=100, max_iter=200, missing_values=np.nan, tol=0,
                       max_no_improvement=None, random_state=0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wf = est.fit_transform(Xn)
    pred = (Wf @ est.components_)[hidden]
    rel = np.linalg.norm(pred - X[hidden]) / np.linalg.norm(X[hidden])
    # the mean predictor's error, for scale
    base = np.linalg.norm(np.nanmean(Xn) - X[hidden]) / np.linalg.norm(X[hidden])
    assert rel < (0.1 if solver == "mu" else 0.01) < base
    assert np.isfinite(est.reconstruction_err_)
    Wt = est.transform(Xn[:50])  # transform honours missing_values too
    assert Wt.shape == (50, 3) and np.all(np.isfinite(Wt))
    # sparse "unobserved" ratings through partial_fit
    S = sp.csr_matrix(np.where(hidden, 0.0, X))
    S.eliminate_zeros()
    on = MiniBatchNMF(3, missing_values="unobserved", random_state=0, solver=solver)
    for s in range(0, 400, 100):
        on.partial_fit(S[s:s + 100])
    assert on.components_.shape == (3, 25) and on.n_steps_ == 4


def test_mask_errors():
    X = planted(n=40, m=8)
    with pytest.raises(ValueError, match="needs solver='mu'"):
        MiniBatchNMF(2, solver="anls").fit(X, mask=np.ones_like(X))
    with pytest.raises(ValueError, match="mask has shape"):
        MiniBatchNMF(2).fit(X, mask=np.ones((3, 3)))


def test_torch_input_with_a_mask_refused_clearly():
    # tensors are fitted on the torch backend (tests/test_minibatch_backends.py); masks are not
    torch = pytest.importorskip("torch")
    X = torch.rand(20, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="numpy backend only"):
        MiniBatchNMF(2).fit(X, mask=np.ones((20, 5), dtype=bool))


def test_masked_entries_never_used():
    # the values under mask == 0 (init included) do not change the fit
    X = planted(n=80, m=12, seed=4)
    M = np.random.RandomState(1).rand(*X.shape) < 0.7
    X2 = np.where(M, X, 1e3)
    kw = {"init": "nndsvda", "batch_size": 20, "max_iter": 5, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MiniBatchNMF(3, **kw).fit(X, mask=M)
        b = MiniBatchNMF(3, **kw).fit(X2, mask=M)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10)


@pytest.mark.parametrize("fresh", [False, True])
def test_masked_online_hals_all_ones_equals_online_hals(fresh):
    X = planted(n=120, m=20, seed=5)
    kw = {"init": "nndsvda", "batch_size": 40, "max_iter": 8, "tol": 0,
          "max_no_improvement": None, "solver": "cd", "fresh_restarts": fresh,
          "frozen_components": X[:1] / 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = MiniBatchNMF(3, **kw)
        Wa = a.fit_transform(X)
        b = MiniBatchNMF(3, **kw)
        Wb = b.fit_transform(X, mask=np.ones_like(X))
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(Wb, Wa, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(b.components_[0], X[0] / 10)  # frozen stays fixed


def test_squared_norm_of_float32_X_never_widens_all_of_X():
    # W7's in-memory peak was a float64 copy of the whole float32 X in ‖X‖² (2× X's bytes)
    import tracemalloc

    from nmfkit.backends import get_backend

    X = np.random.RandomState(0).rand(8000, 1000).astype(np.float32)  # 32 MB
    nx = get_backend(X)
    tracemalloc.start()
    value = nx.sq_norm(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.6 * X.nbytes  # two 8 MB float64 blocks at most (a whole copy: 2× X)
    assert np.isclose(value, float(np.sum(X.astype(np.float64) ** 2)), rtol=1e-12)
    assert nx.sq_norm(sp.csr_matrix(X)) == pytest.approx(value, rel=1e-12)
