"""Robust NMF (``loss="huber" | "cauchy" | "l21"``, ``outliers="sparse"``): properties.

The majorise–minimise fits never increase their objective; they recover planted factors that
gross outliers drive plain NMF away from; dense equals sparse, numpy equals torch, masks and
weights are honoured; the outlier scores mark the corrupted entries and samples; bad
parameters are refused by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

from nmfkit import NMF, non_negative_factorization
from nmfkit._consensus import amari_distance
from nmfkit.robust import objective

KINDS = [dict(loss="huber"), dict(loss="cauchy"), dict(outliers="sparse"), dict(loss="l21")]
IDS = ["huber", "cauchy", "sparse", "l21"]


def _planted(n=60, m=40, k=3, seed=0):
    rng = np.random.default_rng(seed)
    C = rng.random((n, k)) @ rng.random((k, m))
    X = np.abs(C + 0.01 * rng.standard_normal((n, m)))
    return rng, X, C


def _corrupted(seed=0, share=0.1):
    rng, X, C = _planted(seed=seed)
    bad = rng.random(X.shape) < share
    Xc = X.copy()
    Xc[bad] = 10.0 * X.max()
    return Xc, C, bad


def _kind(kw):
    return kw.get("loss") or kw["outliers"]


def _fit(X, mask=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = dict(n_components=3, random_state=0, max_iter=kw.pop("max_iter", 300))
        model = NMF(**base, **kw)
        W = model.fit_transform(X, mask=mask) if mask is not None else model.fit_transform(X)
    return model, W


def _rel(W, H, C):
    return np.linalg.norm(W @ H - C) / np.linalg.norm(C)


# ------------------------------------------------------------------ majorise–minimise
@pytest.mark.parametrize("kw", KINDS + [dict(loss="l21", solver="mu"),
                                        dict(loss="huber", solver="mu"),
                                        dict(loss="cauchy", solver="mu"),
                                        dict(outliers="sparse", solver="mu")],
                         ids=IDS + ["l21-mu", "huber-mu", "cauchy-mu", "sparse-mu"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_objective_never_increases(kw, masked):
    Xc, _, _ = _corrupted()
    mask = (np.random.default_rng(5).random(Xc.shape) < 0.8) * 1.5 if masked else None
    iterates = []

    def keep(info):
        iterates.append((info.W.copy(), info.H.copy()))

    model, W = _fit(Xc, mask=mask, max_iter=60, tol=0, callback=keep, **dict(kw))
    X0 = Xc if mask is None else np.where(mask > 0, Xc, 0.0)
    f = [objective(X0, Wi, Hi, _kind(kw), model.loss_scale_, mask) for Wi, Hi in iterates]
    assert len(f) == 60
    assert all(b <= a * (1 + 1e-12) + 1e-12 for a, b in zip(f, f[1:])), np.diff(f).max()
    assert f[-1] < f[0]
    # the recorded history is the same objective
    assert model.loss_curve_[-1] == pytest.approx(f[-1], rel=1e-9)


@pytest.mark.parametrize("kw", KINDS, ids=IDS)
def test_multiplicative_updates_on_the_target_keep_factors_non_negative(kw):
    # solver="mu" multiplies by (T Hᵀ) / (W HHᵀ) on the majoriser's target T = WH + ψ(R),
    # which lies between WH and X: gross outliers, with and without a mask
    Xc, C, _ = _corrupted()
    mask = (np.random.default_rng(7).random(Xc.shape) < 0.8) * 1.0
    for m_ in (None, mask):
        m, W = _fit(Xc, mask=m_, solver="mu", **dict(kw))
        for F in (W, m.components_):
            assert np.isfinite(F).all() and (F >= 0).all()
    if kw.get("loss") == "l21":
        return  # whole samples are its outliers, not entries
    # unmasked, it reaches the planted product about as closely as the HALS fit does
    m, W = _fit(Xc, solver="mu", **dict(kw))
    d, Wd = _fit(Xc, **dict(kw))
    assert _rel(W, m.components_, C) < 3 * _rel(Wd, d.components_, C) + 0.01, kw


# --------------------------------------------------------------------- what it reaches
def test_planted_recovery_beats_plain_frobenius_and_kl():
    Xc, C, _ = _corrupted()
    fro, Wf = _fit(Xc)
    kl, Wk = _fit(Xc, beta_loss="kullback-leibler")
    e_fro, e_kl = _rel(Wf, fro.components_, C), _rel(Wk, kl.components_, C)
    for kw in KINDS[:3]:
        m, W = _fit(Xc, **dict(kw))
        e = _rel(W, m.components_, C)
        assert e <= e_fro / 5 and e <= e_kl / 5, (kw, e, e_fro, e_kl)


@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_pilot_reads_its_scale_from_its_last_residuals(every, masked, monkeypatch):
    # σ̂ is re-estimated before every `every`-th pilot iteration, and always at the end: the
    # scale returned is the kind's factor times σ̂ of the residuals of the start it returns
    from nmfkit.backends import get_backend
    from nmfkit.robust import SCALE_FACTORS, estimate_scale
    from nmfkit.solvers import robust_mm

    Xc, _, _ = _corrupted()
    M = (np.random.default_rng(3).random(Xc.shape) < 0.8) * 1.0 if masked else None
    rng = np.random.default_rng(4)
    W0, H0 = rng.random((Xc.shape[0], 3)) + 0.1, rng.random((3, Xc.shape[1])) + 0.1
    nx = get_backend(Xc)
    calls = []
    for name in ("estimate_scale", "estimate_scale_at"):
        def spy(*args, _f=getattr(robust_mm, name), **kw):
            calls.append(1)
            return _f(*args, **kw)
        monkeypatch.setattr(robust_mm, name, spy)
    s, W, H = robust_mm.pilot_scale(nx, "huber", Xc, W0, H0, M, max_iter=13,
                                    settle=-np.inf, rescale_every=every)
    # settle=-inf: σ̂ never settles, all 13 iterations run; σ̂ before iterations 0, every,
    # 2·every, … and of the end
    assert len(calls) == len(set(range(0, 13, every)) | {13})
    assert s == SCALE_FACTORS["huber"] * estimate_scale(nx, Xc - W @ H, M)
    assert np.isfinite(W).all() and np.isfinite(H).all() and W.min() >= 0 and H.min() >= 0


@pytest.mark.parametrize("every, stop", [(1, 10), (2, 10), (3, 12)])
@pytest.mark.parametrize("rate, settles", [(0.0036, True), (0.005, False)])
def test_pilot_settles_at_the_same_rate_whatever_the_rescaling(every, stop, rate, settles,
                                                               monkeypatch):
    # σ̂ falling by `rate` an iteration: 1.8 % per 5 iterations settles (the rule: less than
    # 2 % per 5), 2.5 % does not, whether σ̂ is estimated at every iteration or at every
    # second or third one (compared with the estimate 6 iterations back, 2.4 % per 6; a held
    # σ̂ five iterations back would be six iterations old, 2.14 %, and not settle)
    from nmfkit.backends import get_backend
    from nmfkit.solvers import robust_mm

    Xc, _, _ = _corrupted()
    rng = np.random.default_rng(4)
    W0, H0 = rng.random((Xc.shape[0], 3)) + 0.1, rng.random((3, Xc.shape[1])) + 0.1
    its = []

    def scale(*args, **kw):  # σ̂ before iteration `it`, estimated at it = 0, every, 2·every…
        its.append(len(its) * every)
        return (1.0 - rate) ** its[-1]

    monkeypatch.setattr(robust_mm, "estimate_scale_at", scale)
    monkeypatch.setattr(robust_mm, "estimate_scale", scale)
    robust_mm.pilot_scale(get_backend(Xc), "huber", Xc, W0, H0, max_iter=30,
                          rescale_every=every)
    if settles:
        assert its[-1] == stop
    else:  # all 30 iterations, the last σ̂ estimated at the end
        assert len(its) == len(set(range(0, 30, every)) | {30})


def test_l21_recovers_the_parts_when_whole_samples_are_outliers():
    rng = np.random.default_rng(1)
    W0, H0 = rng.random((100, 3)), rng.random((3, 40))
    X = np.abs(W0 @ H0 + 0.01 * rng.standard_normal((100, 40)))
    rows = rng.choice(100, 10, replace=False)
    X[rows] = rng.uniform(0, X.max(), (10, 40))  # unstructured samples in the data's range
    plain, _ = _fit(X)
    l21, _ = _fit(X, loss="l21")
    assert amari_distance(H0, l21.components_) < 0.05
    assert amari_distance(H0, plain.components_) > 4 * amari_distance(H0, l21.components_)
    # the outlying samples are the highest scored
    top = np.argsort(-l21.outlier_scores_)[:10]
    assert set(top) == set(rows)
    assert l21.outlier_entry_scores_ is None


def test_outlier_scores_mark_the_corrupted_entries():
    Xc, C, bad = _corrupted()
    for kw in KINDS[:3]:
        m, W = _fit(Xc, **dict(kw))
        E = m.outlier_entry_scores_
        assert E.shape == Xc.shape and m.outlier_scores_.shape == (Xc.shape[0],)
        assert (E >= 0).all() and (E < 1).all()
        assert E[bad].min() > 0.9 and np.median(E[~bad]) < 0.05, kw
        np.testing.assert_allclose(m.outlier_scores_, E.mean(axis=1))
        assert m.loss_scale_ > 0
    m, W = _fit(Xc, outliers="sparse")
    S = m.outliers_
    assert (S >= 0).all()
    # S holds the corruption above the model: X − S is close to the fit where it was added
    np.testing.assert_allclose((Xc - S)[bad], (W @ m.components_)[bad] + m.loss_scale_,
                               rtol=1e-6)
    assert np.count_nonzero(S[~bad]) <= 0.02 * (~bad).sum()


# ------------------------------------------------------------------- same fit, any input
@pytest.mark.parametrize("kw", KINDS, ids=IDS)
def test_dense_equals_sparse(kw):
    Xc, _, _ = _corrupted()
    Xc[Xc < 0.5] = 0.0
    d, Wd = _fit(Xc, **dict(kw))
    s, Ws = _fit(sp.csr_matrix(Xc), **dict(kw))
    np.testing.assert_allclose(s.components_, d.components_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("kw", KINDS, ids=IDS)
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_numpy_equals_torch(kw, masked):
    torch = pytest.importorskip("torch")
    Xc, _, _ = _corrupted()
    mask = (np.random.default_rng(5).random(Xc.shape) < 0.8) * 1.0 if masked else None
    a, Wa = _fit(Xc, mask=mask, max_iter=50, **dict(kw))
    b, Wb = _fit(Xc, mask=mask, max_iter=50, backend="torch", **dict(kw))
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-6, atol=1e-9)
    t, Wt = _fit(torch.as_tensor(Xc), max_iter=50, **dict(kw)) if not masked else (None, None)
    if t is not None:
        assert isinstance(Wt, torch.Tensor)
        np.testing.assert_allclose(t.components_.numpy(), _fit(Xc, max_iter=50, **dict(kw))[
            0].components_, rtol=1e-6, atol=1e-9)


def test_float32_follows_float64():
    Xc, C, _ = _corrupted()
    m64, W64 = _fit(Xc, loss="huber")
    m32, W32 = _fit(Xc.astype(np.float32), loss="huber")
    assert m32.components_.dtype == np.float32 and W32.dtype == np.float32
    assert _rel(W32, m32.components_, C) < 2 * _rel(W64, m64.components_, C) + 1e-3


def test_extreme_scale_is_fitted_at_unit_scale():
    # X·2⁶⁰ is fitted as X·2⁶⁰/s (s the power of 4 nmfkit._unit_scale picks): the same fit
    from nmfkit._unit_scale import UnitScale

    Xc, C, bad = _corrupted()
    s = UnitScale.of(Xc.max() * 2.0**60, 2.0).s
    for kw in KINDS:
        a, Wa = _fit(Xc * (2.0**60 / s), **dict(kw))
        b, Wb = _fit(Xc * 2.0**60, **dict(kw))
        np.testing.assert_allclose(Wb @ b.components_, (Wa @ a.components_) * s, rtol=1e-12)
        np.testing.assert_allclose(b.outlier_scores_, a.outlier_scores_, rtol=1e-12)
        if a.loss_scale_ is not None:
            assert b.loss_scale_ == a.loss_scale_ * s
            np.testing.assert_allclose(b.outlier_entry_scores_, a.outlier_entry_scores_,
                                       rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- masks and missing values
def test_mask_ignores_unobserved_entries_and_weights_scale_out():
    Xc, C, _ = _corrupted()
    rng = np.random.default_rng(3)
    mask = (rng.random(Xc.shape) < 0.8) * 1.0
    other = Xc.copy()
    other[mask == 0] = 1e6  # garbage where unobserved
    a, _ = _fit(Xc, mask=mask, loss="huber")
    b, _ = _fit(other, mask=mask, loss="huber")
    np.testing.assert_array_equal(a.components_, b.components_)
    c, _ = _fit(Xc, mask=3.0 * mask, loss="huber")  # uniform weights: the same minimiser
    np.testing.assert_allclose(c.components_, a.components_, rtol=1e-8)
    assert (a.outlier_entry_scores_[mask == 0] == 0).all()
    plain, _ = _fit(Xc, loss="huber")
    assert not np.allclose(plain.components_, a.components_)


def test_missing_values_equal_the_mask():
    Xc, C, _ = _corrupted()
    rng = np.random.default_rng(4)
    miss = rng.random(Xc.shape) < 0.2
    Xn = Xc.copy()
    Xn[miss] = np.nan
    a, Wa = _fit(Xn, missing_values=np.nan, loss="cauchy")
    b, Wb = _fit(Xc, mask=(~miss) * 1.0, loss="cauchy")
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-10)
    assert _rel(Wa, a.components_, C) < 0.1
    W2 = a.transform(Xn)  # the same robust loss and scale for new rows
    assert _rel(W2, a.components_, C) < 0.1
    W3, H3, _ = non_negative_factorization(Xn, n_components=3, random_state=0, max_iter=300,
                                           missing_values=np.nan, loss="cauchy")
    np.testing.assert_allclose(H3, a.components_, rtol=1e-10)


# ------------------------------------------------------------------ restarts, transform
def test_restarts_keep_the_lowest_robust_objective():
    Xc, _, _ = _corrupted()
    m, _ = _fit(Xc, loss="huber", n_init=3, init="random")
    assert m.init_objectives_.shape == (3,)
    assert m.loss_curve_[-1] == pytest.approx(m.init_objectives_.min())
    one, _ = _fit(Xc, loss="huber", init="random")
    assert m.init_objectives_[0] == pytest.approx(one.loss_curve_[-1])


def test_transform_fits_new_rows_robustly():
    Xc, C, _ = _corrupted()
    m, W = _fit(Xc, loss="huber")
    W2 = m.transform(Xc)
    assert _rel(W2, m.components_, C) < 0.1
    plain_W, _, _ = non_negative_factorization(Xc, H=m.components_, n_components=3,
                                               update_H=False, init="custom", max_iter=300)
    assert _rel(plain_W, m.components_, C) > 5 * _rel(W2, m.components_, C)


def test_save_and_load_keep_the_robust_loss(tmp_path):
    import nmfkit

    Xc, _, _ = _corrupted()
    m, _ = _fit(Xc, loss="cauchy", loss_scale=0.5)
    m.save(tmp_path / "m.npz")
    back = nmfkit.load(tmp_path / "m.npz")
    assert back.loss == "cauchy" and back.loss_scale == 0.5
    np.testing.assert_allclose(back.transform(Xc[:5]), m.transform(Xc[:5]), rtol=1e-10)


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("kw,match", [
    (dict(loss="tukey"), "loss"),
    (dict(outliers="dense"), "outliers"),
    (dict(loss="huber", loss_scale=0.0), "loss_scale"),
    (dict(outliers="sparse", outlier_penalty=-1.0), "outlier_penalty"),
], ids=["loss", "outliers", "scale0", "penalty<0"])
def test_invalid_values_are_refused_by_name(kw, match):
    with pytest.raises(InvalidParameterError, match=match):
        NMF(3, **kw).fit(_corrupted()[0])


@pytest.mark.parametrize("kw,match", [
    (dict(loss_scale=1.0), "loss_scale is set but loss=None"),
    (dict(outlier_penalty=1.0), "outlier_penalty is set but"),
    (dict(loss="huber", outliers="sparse"), "two robust models"),
    (dict(loss="l21", loss_scale=1.0), "loss='l21' has none"),
    (dict(loss="huber", outlier_penalty=1.0), "give loss_scale instead"),
    (dict(loss="huber", beta_loss="kullback-leibler"), "beta_loss='frobenius'"),
    (dict(loss="huber", solver="pgd"), "not solver='pgd'"),
    (dict(loss="l21", solver="anls"), "not solver='anls'"),
    (dict(loss="cauchy", alpha_W=0.1), "alpha_W/alpha_H"),
    (dict(outliers="sparse", smoothness=0.5), "smoothness"),
    (dict(loss="huber", graph="binary", graph_weight=1.0), "graph"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 12 else None)
def test_combinations_it_cannot_honour_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        NMF(3, max_iter=5, **kw).fit(_corrupted()[0])


def test_naming_the_robust_solver_without_a_loss_is_refused():
    with pytest.raises(ValueError, match="loss="):
        NMF(3, solver="robust", max_iter=5).fit(_corrupted()[0])


def test_minibatch_has_no_robust_loss():
    from nmfkit import MiniBatchNMF

    with pytest.raises(TypeError, match="loss"):
        MiniBatchNMF(3, loss="huber")


# ------------------------------------------------------------------------------- CLI
def _cli(tmp_path, *args):
    pytest.importorskip("click")
    from click.testing import CliRunner

    from nmfkit.cli._app import cli

    src = tmp_path / "X.npy"
    if not src.exists():
        np.save(src, _corrupted()[0])
    return CliRunner().invoke(cli, ["fit", str(src), "-k", "3", "--quiet", *args])


@pytest.mark.parametrize("args", [["--loss", "huber"], ["--loss", "cauchy"], ["--loss", "l21"],
                                  ["--outliers", "sparse"]], ids=" ".join)
def test_cli_fits_a_robust_loss_and_reports_the_outliers(tmp_path, args):
    pytest.importorskip("matplotlib")
    import nmfkit

    res = _cli(tmp_path, *args, "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    model = nmfkit.load(tmp_path / "o" / "model.npz")
    assert (model.loss, model.outliers) == ((args[1], None) if args[0] == "--loss"
                                            else (None, "sparse"))
    html = (tmp_path / "o" / "report.html").read_text()
    assert "most outlying samples" in html
    assert ("most outlying entries" in html) == (args[1] != "l21")


@pytest.mark.parametrize("args,flag", [
    (["--loss", "huber", "--batch-size", "8"], "--batch-size"),
    (["--loss", "cauchy", "--max-memory", "100MB"], "--max-memory"),
    (["--loss-scale", "1"], "loss_scale"),
    (["--loss", "huber", "--solver", "anls"], "'mu'"),
])
def test_cli_refuses_what_the_robust_fit_cannot_honour(tmp_path, args, flag):
    res = _cli(tmp_path, *args, "--out", str(tmp_path / "o"))
    assert res.exit_code == 2, res.output
    assert flag in res.output and "Traceback" not in res.output



def test_a_fixed_H_stays_fixed():
    Xc, C, _ = _corrupted()
    m, _ = _fit(Xc, loss="huber")
    H = m.components_.copy()
    W, H2, _ = non_negative_factorization(Xc, H=H, n_components=3, update_H=False,
                                          init="custom", loss="huber", max_iter=100)
    np.testing.assert_array_equal(H2, H)
    assert _rel(W, H, C) < 0.1
