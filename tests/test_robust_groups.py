"""Group-structured outliers (``outliers="groups"``): X ≈ WH + S, S signed and group-sparse.

The S-step is the exact block soft-threshold, so the objective never increases; one feature
per group is Huber's loss exactly; block corruption of planted data is recovered far better
than by plain NMF and marked by the scores; dense equals sparse, numpy equals torch, masks and
restarts are honoured; bad labels are refused by name, in the library and in the CLI.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from nmfkit import NMF
from nmfkit.robust import Groups, check_groups, group_psi, image_tiles, objective

H_, W_ = 12, 12  # planted "images"


def _blocks(seed=0, n=60, k=3, share=0.2, noise=0.01):
    """Planted X = W₀H₀ + noise of 12×12 images; ``share`` of them with a 6×6 block set to 0
    or to the data's maximum. Returns (corrupted X, clean W₀H₀, the block mask)."""
    rng = np.random.default_rng(seed)
    C = rng.random((n, k)) @ rng.random((k, H_ * W_))
    X = np.abs(C + noise * rng.standard_normal(C.shape))
    block = np.zeros_like(X, dtype=bool)
    for i in rng.choice(n, int(n * share), replace=False):
        r, c = rng.integers(0, H_ // 2 + 1, 2)
        block[i].reshape(H_, W_)[r:r + H_ // 2, c:c + W_ // 2] = True
        X[i][block[i]] = 0.0 if rng.random() < 0.5 else X.max()
    return X, C, block


TILES = image_tiles((H_, W_), 3)


def _fit(X, mask=None, **kw):
    kw.setdefault("outliers", "groups")
    if kw["outliers"] == "groups":
        kw.setdefault("outlier_groups", TILES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(3, random_state=0, max_iter=kw.pop("max_iter", 300), **kw)
        W = model.fit_transform(X, mask=mask) if mask is not None else model.fit_transform(X)
    return model, W


def _rel(W, H, C):
    return np.linalg.norm(W @ H - C) / np.linalg.norm(C)


# ----------------------------------------------------------------------------- the labels
def test_image_tiles_partition_the_pixels_with_remainders():
    lab = image_tiles((5, 7), (2, 3)).reshape(5, 7)
    assert lab.shape == (5, 7) and lab.dtype == np.int64
    # 3 tile rows (2, 2, 1 pixels) × 3 tile columns (3, 3, 1 pixels)
    np.testing.assert_array_equal(np.bincount(lab.ravel()), [6, 6, 2, 6, 6, 2, 3, 3, 1])
    np.testing.assert_array_equal(lab[0], [0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(lab[4], [6, 6, 6, 7, 7, 7, 8])
    np.testing.assert_array_equal(image_tiles((4, 4), 2), image_tiles((4, 4), (2, 2)))


@pytest.mark.parametrize("shape,tile,match", [
    ((4, 4), (5, 1), "larger than the image"),
    ((4, 4), (0, 2), "tile must be two positive integers"),
    ((4,), 2, "image_shape must be two positive integers"),
    ((4, 4), (1.5, 2), "tile must be two positive integers"),
])
def test_image_tiles_refuses_bad_shapes(shape, tile, match):
    with pytest.raises(ValueError, match=match):
        image_tiles(shape, tile)


@pytest.mark.parametrize("labels,exc,match", [
    (np.zeros(5, dtype=int), ValueError, "has 5 labels but X has 144 features"),
    (np.zeros((12, 12), dtype=int), ValueError, "must be 1-D"),
    (np.full(144, 0.5), ValueError, "must hold integers"),
    (np.r_[-1, np.zeros(143, dtype=int)], ValueError, "non-negative: feature 0"),
    (np.array(["a"] * 144), TypeError, "must hold integers"),
    (np.zeros(144, dtype=bool), TypeError, "must hold integers"),
    (None, ValueError, "needs outlier_groups"),
], ids=["length", "2-D", "fraction", "negative", "strings", "bool", "missing"])
def test_bad_labels_are_refused_by_name(labels, exc, match):
    X, _, _ = _blocks()
    with pytest.raises(exc, match=match):
        _fit(X, outlier_groups=labels)


def test_labels_without_groups_are_refused():
    X, _, _ = _blocks()
    with pytest.raises(ValueError, match="outlier_groups is set but outliers=None"):
        _fit(X, outliers=None, outlier_groups=TILES)
    with pytest.raises(ValueError, match="outlier_groups is set but outliers='sparse'"):
        _fit(X, outliers="sparse", outlier_groups=TILES)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=30))
def test_any_integer_ids_give_the_same_partition(ids):
    a = np.array(ids, dtype=np.int64)
    lab = check_groups(a, len(ids))
    assert lab.min() == 0 and lab.max() == len(set(ids)) - 1
    # two features share a group exactly when they shared an id
    np.testing.assert_array_equal(lab[:, None] == lab[None, :], a[:, None] == a[None, :])
    assert Groups(a, len(ids)).sizes.sum() == len(ids)


# ----------------------------------------------------------------------------- the math
def test_the_s_step_is_the_exact_block_soft_threshold():
    from nmfkit.backends import get_backend

    rng = np.random.default_rng(1)
    R = rng.standard_normal((6, 36))
    lab = image_tiles((6, 6), (2, 3))
    g, lam = Groups(lab, 36), 0.7
    P, _ = group_psi(get_backend(R), g, R, lam)
    S = R - P
    X, W, H = R + 0.0, np.zeros((6, 1)), np.zeros((1, 36))

    def f(S_):
        return 0.5 * np.sum((R - S_) ** 2) + lam * sum(
            np.sqrt((lab == q).sum()) * np.linalg.norm(S_[i, lab == q])
            for i in range(6) for q in range(g.n_groups))

    assert objective(X, W, H, "groups", lam, groups=lab) == pytest.approx(f(S), rel=1e-12)
    for _ in range(20):  # the minimiser: any perturbation of S costs more
        assert f(S + 1e-3 * rng.standard_normal(S.shape)) > f(S)
    # groups below their threshold are left whole to the model (S = 0 there)
    for i in range(6):
        for q in range(g.n_groups):
            if np.linalg.norm(R[i, lab == q]) <= lam * np.sqrt((lab == q).sum()):
                assert not S[i, lab == q].any()


@pytest.mark.parametrize("solver", ["auto", "mu"])
@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
def test_objective_never_increases(solver, masked):
    X, _, _ = _blocks()
    mask = (np.random.default_rng(5).random(X.shape) < 0.8) * 1.5 if masked else None
    iterates = []

    def keep(info):
        iterates.append((info.W.copy(), info.H.copy()))

    model, _ = _fit(X, mask=mask, max_iter=60, tol=0, callback=keep, solver=solver)
    X0 = X if mask is None else np.where(mask > 0, X, 0.0)
    f = [objective(X0, Wi, Hi, "groups", model.loss_scale_, mask, groups=TILES)
         for Wi, Hi in iterates]
    assert len(f) == 60
    assert all(b <= a * (1 + 1e-12) + 1e-12 for a, b in zip(f, f[1:])), np.diff(f).max()
    assert f[-1] < f[0]
    assert model.loss_curve_[-1] == pytest.approx(f[-1], rel=1e-9)


def test_one_feature_per_group_is_huber():
    # ω = λ / max(|r|, λ) for a group of one: ψ = clip(r, −λ, λ), Huber's with δ = λ, and the
    # default λ (1.345 σ̂) is Huber's default δ: the same fit
    X, _, _ = _blocks()
    g, _ = _fit(X, outlier_groups=np.arange(X.shape[1]))
    h, _ = _fit(X, outliers=None, loss="huber")
    assert g.loss_scale_ == pytest.approx(h.loss_scale_, rel=1e-12)
    np.testing.assert_allclose(g.components_, h.components_, rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------- planted recovery
def test_planted_blocks_are_recovered_and_marked():
    X, C, block = _blocks()
    plain, Wp = _fit(X, outliers=None)
    m, W = _fit(X)
    e_plain, e = _rel(Wp, plain.components_, C), _rel(W, m.components_, C)
    assert e < e_plain / 3, (e, e_plain)
    # S holds the blocks: signed (black blocks below the model, white ones above)
    S, E = m.outliers_, m.outlier_entry_scores_
    assert (S[block] < 0).any() and (S[block] > 0).any()
    assert E[block].mean() > 0.5 and E[~block].mean() < 0.05
    np.testing.assert_allclose(S, E * (X - W @ m.components_), atol=1e-12)
    hit = np.argsort(-m.outlier_scores_)[: block.any(axis=1).sum()]
    assert block.any(axis=1)[hit].mean() >= 0.9


# ------------------------------------------------------------------ same fit, any input
def test_dense_equals_sparse():
    X, _, _ = _blocks()
    X[X < 0.5] = 0.0
    d, Wd = _fit(X)
    s, Ws = _fit(sp.csr_matrix(X))
    np.testing.assert_allclose(s.components_, d.components_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(Ws, Wd, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("masked", [False, True], ids=["all", "mask"])
@pytest.mark.parametrize("scattered", [False, True], ids=["tiles", "scattered-groups"])
def test_numpy_equals_torch(masked, scattered):
    # numpy runs the compiled passes over runs of columns, torch the sparse indicator: the
    # same fit, for tiles and for groups whose features are scattered (runs of one column)
    torch = pytest.importorskip("torch")
    X, _, _ = _blocks()
    mask = (np.random.default_rng(5).random(X.shape) < 0.8) * 1.0 if masked else None
    labels = np.random.default_rng(2).integers(0, 9, X.shape[1]) if scattered else TILES
    a, _ = _fit(X, mask=mask, max_iter=50, outlier_groups=labels)
    b, _ = _fit(X, mask=mask, max_iter=50, backend="torch", outlier_groups=labels)
    np.testing.assert_allclose(b.components_, a.components_, rtol=1e-6, atol=1e-9)
    if not masked:
        t, Wt = _fit(torch.as_tensor(X), max_iter=50, outlier_groups=labels)
        assert isinstance(Wt, torch.Tensor)
        np.testing.assert_allclose(t.components_.numpy(), a.components_, rtol=1e-6,
                                   atol=1e-9)
        np.testing.assert_allclose(t.outliers_.numpy(), a.outliers_, rtol=1e-5, atol=1e-8)


def test_mask_ignores_unobserved_entries():
    X, _, _ = _blocks()
    mask = (np.random.default_rng(3).random(X.shape) < 0.8) * 1.0
    other = X.copy()
    other[mask == 0] = 1e6
    a, _ = _fit(X, mask=mask)
    b, _ = _fit(other, mask=mask)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert (a.outlier_entry_scores_[mask == 0] == 0).all() and (a.outliers_[mask == 0] == 0).all()
    Xn = X.copy()
    Xn[mask == 0] = np.nan
    c, _ = _fit(Xn, missing_values=np.nan)
    np.testing.assert_allclose(c.components_, a.components_, rtol=1e-10)
    assert np.isfinite(c.transform(Xn)).all()


def test_restarts_and_transform():
    X, C, _ = _blocks()
    m, _ = _fit(X, n_init=3, init="random")
    assert m.init_objectives_.shape == (3,)
    assert m.loss_curve_[-1] == pytest.approx(m.init_objectives_.min())
    W2 = m.transform(X)  # new rows under the same groups and λ
    plain, Wp = _fit(X, outliers=None)
    assert _rel(W2, m.components_, C) < _rel(Wp, plain.components_, C) / 2


def test_save_and_load_keep_the_groups_given_as_a_list(tmp_path):
    import nmfkit

    X, _, _ = _blocks()
    m, _ = _fit(X, outlier_groups=TILES.tolist(), outlier_penalty=0.05)
    m.save(tmp_path / "m.npz")
    back = nmfkit.load(tmp_path / "m.npz")
    assert back.outliers == "groups" and back.outlier_penalty == 0.05
    np.testing.assert_allclose(back.transform(X[:5]), m.transform(X[:5]), rtol=1e-10)


def test_labels_given_as_an_array_survive_save_and_load(tmp_path):
    # model files keep JSON parameters: an integer label array is saved as a list, so the
    # loaded model transforms with the same groups (none of its parameters is dropped)
    import nmfkit

    X, _, _ = _blocks()
    m, _ = _fit(X)
    assert isinstance(m.outlier_groups, np.ndarray)
    m.save(tmp_path / "m.npz")
    back = nmfkit.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.outlier_groups, TILES)
    np.testing.assert_allclose(back.transform(X[:5]), m.transform(X[:5]), rtol=1e-10)
    back.set_params(outlier_groups=None)
    with pytest.raises(ValueError, match="needs outlier_groups"):
        back.transform(X[:5])
