"""The drop-in's defaults stop by scikit-learn's measure: ``solver="auto"`` (accelerated HALS)
stops when the projected-gradient violation falls to ``tol`` times the first iteration's, and
so reaches scikit-learn's default error (issue 17; docs/benchmarks.md, the defaults table)."""

import logging
import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF as SkNMF

from nmfkit import NMF
from nmfkit.nnls import nnls_bpp
from nmfkit.solvers.cd import projected_gradient_l1

from test_stopping import _tfidf


def _reference_pg(F, G, R, l1, l2, rows=None):
    g = G @ F - R + l1 + l2 * F
    g = np.where(F <= 0, np.minimum(g, 0.0), g)
    rows = np.arange(F.shape[0]) if rows is None else rows
    return float(np.abs(g[rows]).sum(dtype=np.float64))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("l1,l2", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.2, 0.4)])
def test_projected_gradient_matches_its_definition(order, dtype, l1, l2):
    rng = np.random.default_rng(3)
    k, N = 6, 300
    F = np.asarray(rng.random((k, N)), dtype=dtype, order=order)
    F[rng.random(F.shape) < 0.3] = 0  # zeros: only a negative gradient counts there
    U = rng.random((k, 40))
    G = (U @ U.T).astype(dtype)
    R = np.asarray(rng.random((k, N)) * 5, dtype=dtype, order=order)
    got = projected_gradient_l1(F, G, R, l1, l2)
    ref = _reference_pg(F.astype(np.float64), G.astype(np.float64), R.astype(np.float64), l1,
                        l2)
    assert got == pytest.approx(ref, rel=1e-10 if dtype == np.float64 else 1e-4)
    assert ref > 0
    rows = np.array([0, 2, 5])
    assert projected_gradient_l1(F, G, R, l1, l2, rows) == pytest.approx(
        _reference_pg(F.astype(np.float64), G.astype(np.float64), R.astype(np.float64), l1,
                      l2, rows), rel=1e-10 if dtype == np.float64 else 1e-4)


def test_projected_gradient_vanishes_at_the_nnls_solution_only():
    # the KKT point of min_{F >= 0} ½<F, GF> - <R, F> has zero projected gradient, though
    # many of its entries sit at the bound with a positive gradient
    rng = np.random.default_rng(0)
    U = rng.random((5, 60))
    G = U @ U.T
    R = U @ rng.standard_normal((60, 200))
    F = nnls_bpp(G, R)
    assert (F == 0).mean() > 0.2
    scale = projected_gradient_l1(np.zeros_like(F), G, R)
    assert projected_gradient_l1(F, G, R) <= 1e-9 * scale
    Fp = F + 1e-3  # off the solution: clearly positive
    assert projected_gradient_l1(Fp, G, R) > 1e-6 * scale


def _violation_ratios(caplog):
    pat = re.compile(r"iteration (\d+), [\d.]+s, violation ([\d.e+-]+)")
    out = [pat.match(r.getMessage()) for r in caplog.records]
    return [(int(m.group(1)), float(m.group(2))) for m in out if m]


@pytest.mark.parametrize("tol", [1e-2, 1e-3])
def test_auto_stops_at_the_first_iteration_whose_violation_is_below_tol(caplog, tol):
    X = load_digits().data
    caplog.set_level(logging.INFO, logger="nmfkit")
    m = NMF(16, random_state=0, tol=tol, max_iter=400).fit(X)
    ratios = _violation_ratios(caplog)
    assert m.stop_reason_ == "tol"
    assert [i for i, _ in ratios] == list(range(1, m.n_iter_ + 1))  # checked every iteration
    assert ratios[0][1] == 1.0
    assert all(r > tol for _, r in ratios[:-1]) and ratios[-1][1] <= tol


def test_an_explicit_error_rule_keeps_the_relative_error_rule():
    X = load_digits().data[:300]
    m = NMF(8, random_state=0, tol=1e-3, max_iter=400,
            solver_options={"stop_rule": "error"}).fit(X)
    assert m.stop_reason_ == "tol" and m.n_iter_ % 10 == 0


def test_an_unknown_stop_rule_is_refused_by_name():
    X = load_digits().data[:100]
    with pytest.raises(ValueError, match=r"solver_options\['stop_rule'\] must be None, "
                       r"'violation' or 'error', got 'gradient'"):
        NMF(4, random_state=0, solver_options={"stop_rule": "gradient"}).fit(X)


def test_tol_zero_still_runs_max_iter():
    X = load_digits().data[:300]
    m = NMF(8, random_state=0, tol=0, max_iter=37).fit(X)
    assert m.n_iter_ == 37 and m.stop_reason_ == "max_iter"


def test_the_violation_rule_reaches_scikit_learns_default_error_on_tfidf():
    # the small TF-IDF of the stopping tests, from scikit-learn's own start: the former rule
    # (decrease over 10 iterations relative to NNDSVDa's starting error) stopped above
    # scikit-learn's default error; the violation rule goes on to below it. The default
    # (init=None, its cheaper start) gets there too
    X = _tfidf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkNMF(8, random_state=0).fit(X)
        got = NMF(8, init="nndsvda", random_state=0).fit(X)
        old = NMF(8, init="nndsvda", random_state=0,
                  solver_options={"stop_rule": "error"}).fit(X)
        default = NMF(8, random_state=0).fit(X)
    assert got.reconstruction_err_ <= sk.reconstruction_err_
    assert old.reconstruction_err_ > sk.reconstruction_err_
    assert got.n_iter_ < sk.n_iter_
    assert default.reconstruction_err_ <= sk.reconstruction_err_


@pytest.mark.parametrize("data", ["digits", "dense"])
def test_the_defaults_reach_scikit_learns_default_error(data):
    if data == "digits":
        X, k = load_digits().data, 16
    else:
        rng = np.random.default_rng(0)
        X = rng.random((600, 10)) @ rng.random((10, 200)) + 0.1 * rng.random((600, 200))
        k = 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkNMF(k, random_state=0).fit(X)
        got = NMF(k, random_state=0).fit(X)
    assert got.reconstruction_err_ <= sk.reconstruction_err_
    assert got.n_iter_ <= sk.n_iter_
    assert np.isfinite(got.components_).all() and (got.components_ >= 0).all()


def test_tol_zero_skips_the_projected_gradient(monkeypatch):
    # the measurement costs about one sweep per half-step: with tol = 0 nothing reads it
    from nmfkit.solvers import cd

    calls = []
    real = cd.projected_gradient_l1

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(cd, "projected_gradient_l1", counted)
    X = load_digits().data[:300]
    NMF(8, random_state=0, tol=0, max_iter=5).fit(X)
    assert calls == []
    NMF(8, random_state=0, tol=1e-4, max_iter=5).fit(X)
    assert len(calls) >= 10  # W and H of every iteration (restarts measure again)


def test_projected_gradient_on_torch_equals_the_host_one():
    torch = pytest.importorskip("torch")
    from nmfkit.backends import get_backend

    rng = np.random.default_rng(5)
    F = rng.random((5, 80))
    F[rng.random(F.shape) < 0.3] = 0
    U = rng.random((5, 30))
    G, R = U @ U.T, rng.random((5, 80)) * 4
    nx = get_backend(torch.as_tensor(F))
    for l1, l2, rows in [(0.0, 0.0, None), (0.2, 0.3, [1, 3])]:
        host = projected_gradient_l1(F, G, R, l1, l2, rows)
        dev = projected_gradient_l1(torch.as_tensor(F), torch.as_tensor(G), torch.as_tensor(R),
                                    l1, l2, rows, nx=nx)
        assert dev == pytest.approx(host, rel=1e-12)


def test_auto_on_torch_stops_where_numpy_stops():
    torch = pytest.importorskip("torch")
    X = load_digits().data[:400]
    a = NMF(8, random_state=0, tol=1e-3).fit(X)
    b = NMF(8, random_state=0, tol=1e-3, backend="torch", device="cpu").fit(X)
    assert a.stop_reason_ == b.stop_reason_ == "tol"
    assert a.n_iter_ % 10 != 0 and abs(a.n_iter_ - b.n_iter_) <= 1
    assert b.reconstruction_err_ == pytest.approx(a.reconstruction_err_, rel=1e-6)
