"""Data of any representable magnitude is fitted at unit scale on every path.

Subnormal data (1e-310), data whose ‖X‖² underflows (1e-200), float32 near its smallest and
largest values: the factors are finite, the error is the true one on the data's scale (not an
underflowed 0), and the fit is the unit-scale fit scaled back — on dense and sparse X, with
missing values, on torch, and in ``transform``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from nmfkit import NMF
from nmfkit._unit_scale import UnitScale

BASE = np.random.default_rng(0).random((30, 20))
CASES = [(1e-310, np.float64), (1e-200, np.float64), (1e-40, np.float32),
         (1e-38, np.float32), (3e38, np.float32), (1e90, np.float64)]


def _fit(path, X):
    kw = dict(n_components=4, random_state=0, max_iter=60, init="random")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path == "dense":
            m = NMF(**kw)
            return m, m.fit_transform(X), X
        if path == "sparse":
            Xs = sp.csr_matrix(X)
            m = NMF(**kw)
            return m, m.fit_transform(Xs), Xs
        if path == "missing":
            Xn = X.copy()
            Xn[0, 0] = np.nan
            m = NMF(missing_values=np.nan, **kw)
            return m, m.fit_transform(Xn), Xn
        if path == "torch":
            pytest.importorskip("torch")
            m = NMF(backend="torch", **kw)
            return m, m.fit_transform(X), X
    raise AssertionError(path)


@pytest.mark.parametrize("path", ["dense", "sparse", "missing", "torch"])
@pytest.mark.parametrize("scale,dtype", CASES, ids=lambda v: str(v))
def test_extreme_magnitudes_give_finite_true_results(path, scale, dtype):
    X = (BASE * scale).astype(dtype)
    unit = (BASE * (scale / 2.0 ** math.frexp(scale)[1])).astype(dtype)
    m, W, Xin = _fit(path, X)
    m1, W1, _ = _fit(path, unit)
    H = m.components_
    assert np.isfinite(W).all() and np.isfinite(H).all()
    assert (W >= 0).all() and (H >= 0).all()
    assert np.isfinite(m.reconstruction_err_) and m.reconstruction_err_ > 0
    # the error is the unit-scale fit's times the scale (≈ 0.36 of ‖X‖ here), never 0
    ratio = m.reconstruction_err_ / m1.reconstruction_err_
    assert ratio == pytest.approx(2.0 ** math.frexp(scale)[1], rel=0.05)
    assert all(np.isfinite(m.loss_curve_))
    if path != "missing":
        assert m.explained_variance_ == pytest.approx(m1.explained_variance_, abs=0.05)
    Wt = m.transform(Xin)
    assert np.isfinite(Wt).all() and (Wt >= 0).all()
    assert np.asarray(Wt).max() > 0


def test_scale_is_exact_power_of_two_and_leaves_ordinary_data_alone():
    assert not UnitScale.of(1.0, 2.0).active
    assert not UnitScale.of(1e5, 2.0).active
    s = UnitScale.of(1e-310, 2.0)
    assert s.active and s.exponent % 2 == 0
    x = np.array([1e-310, 3e-311])
    np.testing.assert_array_equal(s.values(x) * s.s, x)  # exact round trip
    F = np.random.default_rng(1).random((3, 4))
    np.testing.assert_array_equal(s.factor_out(s.factor_in(F)), F)
    # objectives beyond float64 saturate instead of overflowing to inf
    assert math.isfinite(UnitScale.of(1e200, 2.0).objective_out(1e10))


def test_frozen_components_survive_the_rescaling_bit_for_bit():
    X = BASE * 1e-200
    F = np.full((1, 20), 0.5e-100)
    m = NMF(3, solver="mu", frozen_components=F, random_state=0, max_iter=20).fit(X)
    np.testing.assert_array_equal(m.components_[:1], F)


def test_custom_start_and_penalties_scale_with_the_data():
    """A custom start and an L1 weight given on the data's scale give the fit of the unit-scale
    problem scaled back."""
    from nmfkit.penalties import L1

    s = 2.0 ** -700
    rng = np.random.default_rng(3)
    W0, H0 = rng.random((30, 3)), rng.random((3, 20))
    kw = dict(n_components=3, init="custom", solver="mu", max_iter=30, random_state=0)
    a = NMF(penalties=[L1(0.5, "H")], **kw)
    Wa = a.fit_transform(BASE, W=W0, H=H0)
    b = NMF(penalties=[L1(0.5 * s ** 1.5, "H")], **kw)  # λ·(√s)^1 · s^... : same problem
    Wb = b.fit_transform(BASE * s, W=W0 * s ** 0.5, H=H0 * s ** 0.5)
    np.testing.assert_allclose(Wb / s ** 0.5, Wa, rtol=1e-10)
    np.testing.assert_allclose(b.components_ / s ** 0.5, a.components_, rtol=1e-10)


@pytest.mark.parametrize("scale", [1e-310, 1e-200, 1e90])
def test_out_of_core_fits_extreme_data_at_unit_scale(tmp_path, scale):
    """Streamed X at 1e-310 used to stop after one iteration ('exact': its Σx² underflowed);
    it now follows the unit-scale fit, scaled back."""
    from nmfkit.outofcore import fit_out_of_core

    X = np.random.default_rng(0).random((60, 20))
    np.save(tmp_path / "one.npy", X)
    np.save(tmp_path / "s.npy", X * scale)
    ref = fit_out_of_core(str(tmp_path / "one.npy"), 3, max_iter=30, random_state=0)
    r = fit_out_of_core(str(tmp_path / "s.npy"), 3, max_iter=30, random_state=0)
    assert r.n_iter == ref.n_iter == 30
    root = math.sqrt(scale)
    rel = np.linalg.norm(X - (r.W / root) @ (r.H / root)) / np.linalg.norm(X)
    rel_ref = np.linalg.norm(X - ref.W @ ref.H) / np.linalg.norm(X)
    assert rel == pytest.approx(rel_ref, rel=1e-6)


def test_dask_fits_extreme_data_at_unit_scale():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from nmfkit.distributed import fit_dask

    X = np.random.default_rng(0).random((60, 20))
    with distributed.LocalCluster(processes=False, n_workers=1, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        ref = fit_dask(da.from_array(X, chunks=(20, 20)), 3, client=client, max_iter=30,
                       random_state=0)
        r = fit_dask(da.from_array(X * 1e-310, chunks=(20, 20)), 3, client=client,
                     max_iter=30, random_state=0)
    assert r.n_iter == ref.n_iter == 30
    root = math.sqrt(1e-310)
    rel = np.linalg.norm(X - (r.W / root) @ (r.H / root)) / np.linalg.norm(X)
    assert rel == pytest.approx(np.linalg.norm(X - ref.W @ ref.H) / np.linalg.norm(X), rel=1e-6)


@pytest.mark.parametrize("solver", ["mu", "cd"])
@pytest.mark.parametrize("scale", [1e-310, 1e-150, 1e90])
def test_minibatch_fits_extreme_data_at_unit_scale(solver, scale):
    """MiniBatchNMF at 1e-150 returned W = 0 (mu) and at 1e60 an error of 1e60·3e60 (cd)."""
    from nmfkit import MiniBatchNMF

    X = np.random.default_rng(0).random((60, 20))
    kw = dict(n_components=3, batch_size=16, max_iter=5, random_state=0, solver=solver)
    ref = MiniBatchNMF(**kw).fit(X)
    m = MiniBatchNMF(**kw).fit(X * scale)
    root = math.sqrt(scale)
    W = m.transform(X * scale)
    rel = np.linalg.norm(X - (W / root) @ (m.components_ / root)) / np.linalg.norm(X)
    rel_ref = np.linalg.norm(X - ref.transform(X) @ ref.components_) / np.linalg.norm(X)
    assert rel == pytest.approx(rel_ref, abs=0.03)
    assert m.reconstruction_err_ / scale == pytest.approx(ref.reconstruction_err_, rel=0.05)
    from nmfkit.penalties import L1

    with pytest.raises(ValueError, match="unit scale.*divide X by a constant"):
        MiniBatchNMF(penalties=[L1(1.0, "H")], **kw).fit(X * scale)
