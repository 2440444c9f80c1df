"""Masked / weighted NMF: nmfkit.masked, the masked solvers, and NMF(missing_values=...) / fit(mask=)."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit.masked import observed_entries, weighted_divergence
from nmfkit.penalties import sklearn_penalties
from nmfkit.solvers import get_solver

MASKED = [("cd", 2.0), ("masked_cd", 2.0), ("mu", 2.0), ("mu", 1.0)]


def planted(n=40, m=30, k=3, frac_missing=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k)) @ rng.random((k, m))
    observed = rng.random((n, m)) >= frac_missing
    return X, observed


def init_factors(n, m, k, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((n, k)).astype(dtype) + 0.1, rng.random((k, m)).astype(dtype) + 0.1


@pytest.mark.parametrize("solver,unmasked,beta", [
    ("masked_als", "cd", 2.0), ("masked_cd", "cd", 2.0), ("masked_mu", "mu", 2.0),
    ("masked_mu", "mu", 1.0),
])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_all_ones_mask_equals_unmasked(solver, unmasked, beta, alpha):
    X, _ = planted()
    W0, H0 = init_factors(*X.shape, 3)
    common = dict(n_components=3, init="custom", beta_loss=beta, tol=0, max_iter=15,
                  alpha_W=alpha, l1_ratio=0.5)
    # one plain sweep per half-iteration ("cd" may repeat sweeps or extrapolate by default)
    ref_opts = {"inner": False, "extrapolate": False} if unmasked == "cd" else None
    ref = NMF(solver=unmasked, solver_options=ref_opts, **common)
    W_ref = ref.fit_transform(X, W=W0, H=H0)
    opts = {"inner_max_iter": 1} if solver == "masked_als" else None
    est = NMF(solver=solver, solver_options=opts, **common)
    W = est.fit_transform(X, W=W0, H=H0, mask=np.ones(X.shape, dtype=bool))
    np.testing.assert_allclose(W, W_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est.components_, ref.components_, rtol=1e-8, atol=1e-10)
    assert est.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-8)


@pytest.mark.parametrize("solver,beta", MASKED)
@pytest.mark.parametrize("alpha", [0.0, 0.002])
def test_weighted_objective_never_increases(solver, beta, alpha):
    rng = np.random.default_rng(3)
    X, observed = planted(frac_missing=0.4)
    X = X + 0.05 * rng.random(X.shape)  # not exactly low rank
    M = observed * rng.uniform(0.2, 3.0, X.shape)  # real weights, not just 0/1
    obs = observed_entries(X, mask=M)
    pens = sklearn_penalties(alpha, alpha, 0.3, *X.shape)
    objective = []

    def record(info):
        pen = sum(p.value(info.W.T if p.factor == "W" else info.H) for p in pens)
        objective.append(weighted_divergence(obs, info.W, info.H, beta) + pen)

    NMF(3, solver=solver, beta_loss=beta, init="random", random_state=0, tol=0, max_iter=40,
        alpha_W=alpha, l1_ratio=0.3, callback=record).fit(X, mask=M)
    diffs = np.diff(objective)
    assert len(objective) == 40
    assert np.all(diffs <= 1e-10 * objective[0]), diffs.max()
    assert objective[-1] < objective[0]


@pytest.mark.parametrize("solver", ["cd", "masked_cd"])
def test_planted_low_rank_recovered_with_30_percent_missing(solver):
    X, observed = planted(n=50, m=40, k=3, frac_missing=0.3)
    Xn = np.where(observed, X, np.nan)
    est = NMF(3, solver=solver, missing_values=np.nan, init="random", random_state=0,
              tol=1e-10, max_iter=600)
    W = est.fit_transform(Xn)
    held_out = ~observed
    err = np.linalg.norm((W @ est.components_ - X)[held_out]) / np.linalg.norm(X[held_out])
    assert err < 1e-3


def test_planted_low_rank_kl_recovered():
    X, observed = planted(n=40, m=30, k=2, frac_missing=0.3, seed=4)
    est = NMF(2, solver="mu", beta_loss="kullback-leibler", init="random", random_state=0,
              tol=0, max_iter=1500)
    W = est.fit_transform(X, mask=observed)
    held_out = ~observed
    err = np.linalg.norm((W @ est.components_ - X)[held_out]) / np.linalg.norm(X[held_out])
    assert err < 2e-2


@pytest.mark.parametrize("solver", ["cd", "masked_cd", "mu"])
def test_sparse_observed_equals_dense_with_nan(solver):
    X, observed = planted(frac_missing=0.5, seed=5)
    X[observed & (np.random.default_rng(0).random(X.shape) < 0.1)] = 0.0  # observed zeros
    Xn = np.where(observed, X, np.nan)
    r, c = np.nonzero(observed)
    Xs = sp.csr_matrix((X[r, c], (r, c)), shape=X.shape)  # explicit zeros kept as stored
    assert Xs.nnz == observed.sum()
    W0, H0 = init_factors(*X.shape, 3)
    kw = dict(n_components=3, solver=solver, init="custom", tol=0, max_iter=20)
    dense = NMF(missing_values=np.nan, **kw)
    Wd = dense.fit_transform(Xn, W=W0, H=H0)
    sparse = NMF(missing_values="unobserved", **kw)
    Ws = sparse.fit_transform(Xs, W=W0, H=H0)
    masked = NMF(**kw)
    Wm = masked.fit_transform(np.where(observed, X, 0.0), W=W0, H=H0, mask=sp.csr_matrix(observed))
    for W_, est in ((Ws, sparse), (Wm, masked)):
        np.testing.assert_allclose(W_, Wd, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(est.components_, dense.components_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("solver", ["cd", "masked_cd", "mu"])
def test_memory_scales_with_observations_not_shape(solver):
    # a 10^6 x 10^6 matrix (8 TB dense) with 10^5 observed entries
    n = m = 10**6
    rng = np.random.default_rng(0)
    nnz = 10**5
    rows, cols = rng.integers(0, n, nnz), rng.integers(0, m, nnz)
    X = sp.coo_matrix((rng.uniform(1, 5, nnz), (rows, cols)), shape=(n, m)).tocsr()
    tracemalloc.start()
    try:
        est = NMF(2, solver=solver, missing_values="unobserved", init="random", random_state=0,
                  tol=0, max_iter=3)
        W = est.fit_transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert W.shape == (n, 2) and est.components_.shape == (2, m)
    assert np.isfinite(est.reconstruction_err_)
    # factors are 2 x 16 MB; the observations ~ 10^5 x (values, weights, indices) ~ a few MB
    assert peak < 250e6, peak


def test_weights_scale_invariance_and_duplication():
    X, observed = planted(seed=6)
    W0, H0 = init_factors(*X.shape, 3)
    kw = dict(n_components=3, init="custom", tol=0, max_iter=10)
    a = NMF(**kw).fit(X, W=W0, H=H0, mask=observed)
    b = NMF(**kw).fit(X, W=W0, H=H0, mask=3.0 * observed)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10)
    # weights change the fit: upweighting one row pulls the model towards it
    M = observed.astype(float)
    M[0] *= 100
    c = NMF(**kw).fit(X, W=W0, H=H0, mask=M)
    assert not np.allclose(c.components_, a.components_)


def test_float32_stays_float32():
    X, observed = planted()
    Xn = np.where(observed, X, np.nan).astype(np.float32)
    for solver in ("cd", "mu"):
        est = NMF(3, solver=solver, missing_values=np.nan, init="random", random_state=0,
                  max_iter=20, tol=0)
        W = est.fit_transform(Xn)
        assert W.dtype == np.float32 and est.components_.dtype == np.float32
        assert est.transform(Xn).dtype == np.float32


def test_transform_with_missing_values_solves_each_row():
    from scipy.optimize import nnls

    X, observed = planted(frac_missing=0.3, seed=7)
    Xn = np.where(observed, X, np.nan)
    est = NMF(3, missing_values=np.nan, init="random", random_state=0, tol=1e-6, max_iter=100)
    est.fit(Xn)
    est.set_params(tol=1e-12, max_iter=300)
    W = est.transform(Xn[:8])
    H = est.components_
    for i in range(8):
        expected, _ = nnls(H[:, observed[i]].T, X[i, observed[i]])
        np.testing.assert_allclose(W[i], expected, atol=1e-6)


def test_default_init_nndsvda_works_with_missing():
    X, observed = planted(frac_missing=0.3, seed=8)
    est = NMF(3, missing_values=np.nan, max_iter=300, tol=1e-8).fit(np.where(observed, X, np.nan))
    assert est.reconstruction_err_ < 1e-2 * np.linalg.norm(X)


# ------------------------------------------------------------------------ errors
def test_nan_without_missing_values_is_still_sklearns_error():
    X, observed = planted()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NMF(3).fit(np.where(observed, X, np.nan))


def test_nan_at_observed_entry_of_mask_is_an_error():
    X, observed = planted()
    X[0, 0] = np.nan
    observed[0, 0] = True
    with pytest.raises(ValueError, match="missing_values=np.nan"):
        NMF(3).fit(X, mask=observed)
    observed[0, 0] = False  # NaN at an unobserved entry is fine
    NMF(3, max_iter=5, tol=0).fit(X, mask=observed)


def test_solver_without_masks_is_rejected_naming_those_that_can():
    with pytest.raises(ValueError, match=r"cannot honour a mask.*masked_als.*masked_cd.*masked_mu"):
        get_solver("cd", beta=2.0, masked=True)
    with pytest.raises(ValueError, match="masked_mu"):
        get_solver("masked_als", beta=1.0, masked=True)
    X, observed = planted()
    with pytest.raises(ValueError, match=r"solver 'anls' with a mask .* solver='mu'"):
        NMF(3, solver="anls", beta_loss=1.0).fit(X, mask=observed)


@pytest.mark.parametrize("mask,match", [
    (np.ones((3, 3)), "mask has shape"),
    (-np.ones((40, 30)), "non-negative finite weights"),
    (np.zeros((40, 30)), "No observed entries"),
])
def test_bad_masks(mask, match):
    X, _ = planted()
    with pytest.raises(ValueError, match=match):
        NMF(3).fit(X, mask=mask)


def test_missing_values_option_errors():
    X, observed = planted()
    with pytest.raises(ValueError, match="but X is dense"):
        NMF(3, missing_values="unobserved").fit(X)
    with pytest.raises(ValueError, match="ambiguous"):
        NMF(3, missing_values=np.nan).fit(sp.csr_matrix(X))
    Xn = np.where(observed, X, np.nan)
    Xn[1, 1] = -1.0
    with pytest.raises(ValueError, match="Negative values in data"):
        NMF(3, missing_values=np.nan).fit(Xn)


def test_sentinel_missing_value():
    X, observed = planted(seed=9)
    Xz = np.where(observed, X, -1.0)
    W0, H0 = init_factors(*X.shape, 3)
    kw = dict(n_components=3, init="custom", tol=0, max_iter=10)
    a = NMF(missing_values=-1.0, **kw).fit(Xz, W=W0, H=H0)
    b = NMF(missing_values=np.nan, **kw).fit(np.where(observed, X, np.nan), W=W0, H=H0)
    np.testing.assert_allclose(a.components_, b.components_)


def test_n_init_with_mask_keeps_the_best_restart():
    X, observed = planted(seed=11)
    kw = dict(init="random", random_state=0, max_iter=20, tol=0)
    one = NMF(3, **kw).fit(X, mask=observed)
    many = NMF(3, n_init=4, **kw).fit(X, mask=observed)
    assert many.init_objectives_.shape == (4,)
    assert many.init_objectives_[0] == pytest.approx(one.loss_curve_[-1])
    assert many.loss_curve_[-1] == pytest.approx(many.init_objectives_.min())
    assert many.reconstruction_err_ <= one.reconstruction_err_ + 1e-12


def test_auto_solver_with_mask_picks_a_masked_solver():
    """"auto" with a mask fits only the observed entries (garbage at the unobserved ones
    changes nothing) and is the masked solver of the one rule: masked ALS for Frobenius
    (what solver='cd' runs with a mask), masked MU for KL."""
    X, observed = planted()
    garbage = np.where(observed, X, 1e3)
    for beta, named in ((2.0, "cd"), (1.0, "mu")):
        kw = dict(beta_loss=beta, max_iter=5, tol=0, init="random", random_state=0)
        auto = NMF(3, solver="auto", **kw)
        W = auto.fit_transform(X, mask=observed)
        W_garbage = NMF(3, solver="auto", **kw).fit_transform(garbage, mask=observed)
        np.testing.assert_allclose(W_garbage, W, rtol=1e-10, atol=1e-12)
        ref = NMF(3, solver=named, **kw)
        np.testing.assert_allclose(ref.fit_transform(X, mask=observed), W, rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(ref.components_, auto.components_, rtol=1e-10, atol=1e-12)
        assert auto.reconstruction_err_ == pytest.approx(ref.reconstruction_err_, rel=1e-12)


def test_non_negative_factorization_with_missing_values_equals_estimator():
    from nmfkit import non_negative_factorization

    X, observed = planted(seed=10)
    r, c = np.nonzero(observed)
    Xs = sp.csr_matrix((X[r, c], (r, c)), shape=X.shape)
    kw = dict(init="random", random_state=0, max_iter=30, tol=0)
    W, H, n_iter = non_negative_factorization(Xs, n_components=3, missing_values="unobserved",
                                              **kw)
    est = NMF(3, missing_values="unobserved", **kw)
    np.testing.assert_allclose(W, est.fit_transform(Xs))
    np.testing.assert_allclose(H, est.components_)
    assert n_iter == est.n_iter_ == 30
    W2, H2, _ = non_negative_factorization(Xs, H=H, n_components=3, update_H=False,
                                           missing_values="unobserved", max_iter=50, tol=0)
    assert W2.shape == W.shape and H2 is not None
    obs = observed_entries(Xs, missing_values="unobserved")
    assert weighted_divergence(obs, W2, H) <= weighted_divergence(obs, W, H) + 1e-12


@pytest.mark.parametrize("solver", ["cd", "masked_cd", "mu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_scales_give_the_same_model(solver, dtype, scale):
    X, observed = planted(seed=12)
    Xn = np.where(observed, X, np.nan)
    kw = dict(n_components=3, solver=solver, missing_values=np.nan, init="random",
              random_state=0, tol=0, max_iter=15)
    ref = NMF(**kw).fit(Xn.astype(dtype))
    est = NMF(**kw).fit((Xn * scale).astype(dtype))
    assert np.isfinite(est.components_).all() and np.isfinite(est.reconstruction_err_)
    assert est.components_.dtype == dtype
    R = ref.transform(Xn.astype(dtype)) @ ref.components_
    E = est.transform((Xn * scale).astype(dtype)) @ est.components_ / scale
    np.testing.assert_allclose(E, R, rtol=1e-3 if dtype == np.float32 else 1e-6, atol=1e-4)
    assert est.reconstruction_err_ / scale == pytest.approx(ref.reconstruction_err_, rel=1e-3)


def test_save_load_roundtrip_with_missing_values(tmp_path):
    import nmfkit

    X, observed = planted(seed=13)
    Xn = np.where(observed, X, np.nan)
    est = NMF(3, missing_values=np.nan, init="random", random_state=0, max_iter=20).fit(Xn)
    loaded = nmfkit.load(est.save(tmp_path / "model.npz"))
    assert np.isnan(float(loaded.missing_values)) or loaded.missing_values == "nan"
    np.testing.assert_allclose(loaded.transform(Xn), est.transform(Xn))
