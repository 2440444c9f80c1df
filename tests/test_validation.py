"""Bad input gets a clear error; awkward but valid input gets a finite fit.

Every case here is listed in docs/reliability.md.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils._param_validation import InvalidParameterError

from nmfkit import NMF, non_negative_factorization


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(**kw)
        W = model.fit_transform(X)
    return model, W


def test_negative_value_names_position():
    X = np.ones((4, 3))
    X[2, 1] = -0.5
    with pytest.raises(ValueError, match=r"Negative values in data passed to NMF \(input X\).*-0.5 at row 2, column 1.*clip"):
        NMF(2).fit(X)
    Xs = sp.csr_matrix(X)
    with pytest.raises(ValueError, match="row 2, column 1"):
        NMF(2).fit(Xs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_rejected(bad):
    X = np.ones((4, 3))
    X[1, 1] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        NMF(2).fit(X)


@pytest.mark.parametrize(
    "X,match",
    [
        (np.ones((0, 3)), "0 sample"),
        (np.ones((3, 0)), "0 feature"),
        (np.ones(5), "Expected 2D array"),
        (np.ones((3, 3)) * (1 + 1j), "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert|dtype"),
    ],
)
def test_malformed_X(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        NMF(1).fit(X)


@pytest.mark.parametrize("k", [0, -1, 1.5, "two"])
def test_bad_n_components(k):
    with pytest.raises(InvalidParameterError, match="'n_components' parameter of NMF must be"):
        NMF(k).fit(np.ones((3, 3)))


@pytest.mark.parametrize(
    "param,value", [("solver", "newton"), ("init", "svd"), ("beta_loss", "euclid"), ("tol", -1), ("max_iter", 0)]
)
def test_bad_parameter_values(param, value):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of NMF must be"):
        NMF(2, **{param: value}).fit(np.ones((3, 3)))


def test_solver_loss_mismatch_names_alternatives():
    with pytest.raises(ValueError, match=r"solver 'cd' does not handle beta_loss = 0.5; solvers that do: \[.*'mu'"):
        NMF(2, solver="cd", beta_loss=0.5).fit(np.ones((3, 3)))


def test_custom_init_checks():
    X = np.abs(np.random.RandomState(0).rand(6, 5))
    H = np.ones((2, 5))
    with pytest.raises(ValueError, match="wrong first dimension passed to NMF \\(input W\\). Expected 6, but got 5"):
        NMF(2, init="custom").fit(X, W=np.ones((5, 2)), H=H)
    with pytest.raises(ValueError, match="Negative values in data passed to NMF \\(input W\\)"):
        NMF(2, init="custom").fit(X, W=-np.ones((6, 2)), H=H)
    with pytest.raises(ValueError, match="full of zeros"):
        NMF(2, init="custom").fit(X, W=np.zeros((6, 2)), H=H)
    with pytest.raises(ValueError, match="NaN"):
        NMF(2, init="custom").fit(X, W=np.full((6, 2), np.nan), H=H)
    with pytest.raises(TypeError, match="same dtype as X.*astype"):
        NMF(2, init="custom").fit(X, W=np.ones((6, 2), dtype=np.float32), H=H)


def test_custom_init_not_modified_in_place():
    X = np.abs(np.random.RandomState(0).rand(6, 5))
    W0, H0 = np.ones((6, 2)), np.ones((2, 5))
    W0c, H0c = W0.copy(), H0.copy()
    NMF(2, init="custom", max_iter=5).fit(X, W=W0, H=H0)
    np.testing.assert_array_equal(W0, W0c)
    np.testing.assert_array_equal(H0, H0c)


def test_too_large_values_rejected():
    with pytest.raises(ValueError, match="largest value 1e\\+300 is too large.*Divide X by a constant"):
        NMF(1).fit(np.full((2, 2), 1e300))


def test_beta_nonpositive_with_zeros():
    X = np.ones((3, 3))
    X[0, 0] = 0
    with pytest.raises(ValueError, match="beta_loss <= 0 and X contains zeros"):
        NMF(2, solver="mu", beta_loss="itakura-saito").fit(X)


def _assert_finite(model, W):
    assert np.isfinite(W).all()
    assert np.isfinite(model.components_).all()
    assert np.isfinite(model.reconstruction_err_)
    assert all(np.isfinite(model.loss_curve_))
    assert (W >= 0).all() and (model.components_ >= 0).all()


@pytest.mark.parametrize("solver,beta", [("cd", 2), ("mu", 2), ("mu", 1), ("mu", 0.5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_extreme_scales_stay_finite_and_equivariant(solver, beta, dtype, scale):
    X = np.abs(np.random.RandomState(0).randn(20, 10)).astype(dtype)
    # init="random" scales with √s; NNDSVDa's fill value (mean of X, scikit-learn's choice)
    # does not, so only the finiteness holds for it
    kw = dict(n_components=3, solver=solver, beta_loss=beta, random_state=0, max_iter=50,
              init="random")
    _assert_finite(*_fit((X * dtype(scale)).astype(dtype), **{**kw, "init": None}))
    m_ref, W_ref = _fit(X, **kw)
    m, W = _fit((X * dtype(scale)).astype(dtype), **kw)
    _assert_finite(m, W)
    # the factorisation of sX is √s times that of X
    rel = m.reconstruction_err_ / (m_ref.reconstruction_err_ * scale ** (beta / 2))
    assert rel == pytest.approx(1.0, rel=1e-2)


@pytest.mark.parametrize("solver,beta", [("cd", 2), ("mu", 2), ("mu", 1)])
@pytest.mark.parametrize(
    "X",
    [
        np.zeros((5, 4)),
        np.array([[0, 0, 0], [1, 2, 3], [0, 0, 0], [4, 5, 6.0]]),
        np.array([[0, 1, 0], [0, 2, 0], [0, 3, 0.0]]),
    ],
    ids=["all-zero", "zero-rows", "zero-columns"],
)
def test_degenerate_X_gives_finite_output(solver, beta, X):
    m, W = _fit(X, n_components=2, solver=solver, beta_loss=beta, random_state=0, init="random")
    _assert_finite(m, W)
    m, W = _fit(sp.csr_matrix(X), n_components=2, solver=solver, beta_loss=beta, random_state=0)
    _assert_finite(m, W)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_rank_larger_than_data(solver):
    X = np.abs(np.random.RandomState(0).randn(4, 3))
    m, W = _fit(X, n_components=7, solver=solver, random_state=0)
    _assert_finite(m, W)
    assert W.shape == (4, 7)


def _valid_matrix(n, m, seed, density, exponent):
    """A non-negative n × m matrix with real content: |N(0, 1)| at 10**exponent, a share
    ``density`` of it non-zero (at least one entry)."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.standard_normal((n, m))) * 10.0**exponent
    X[rng.random((n, m)) > density] = 0.0
    X[rng.integers(n), rng.integers(m)] = 10.0**exponent
    return X


@settings(max_examples=60, deadline=None)
@given(
    X=st.one_of(
        hnp.arrays(
            np.float64,
            hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
            elements=st.one_of(
                st.floats(-1e3, 1e3),
                st.sampled_from([0.0, np.nan, np.inf, -np.inf, 1e-300, 1e300]),
            ),
        ),
        # valid input with content: element-wise draws above are mostly invalid or near zero
        st.builds(_valid_matrix, st.integers(1, 12), st.integers(1, 12),
                  st.integers(0, 2**32 - 1), st.floats(0.2, 1.0), st.integers(-300, 300)),
    )
)
def test_hypothesis_any_matrix_is_an_error_or_a_finite_fit(X):
    """Any small matrix: either a ValueError naming the problem, or a finite fit."""
    try:
        m, W = _fit(X, n_components=2, random_state=0, max_iter=20)
    except ValueError as exc:
        msg = str(exc)
        bad = (~np.isfinite(X)).any() or (X < 0).any() or (np.abs(X) > 1e100).any()
        assert bad, f"unexpected error for valid input: {msg}"
        assert "Negative values" in msg or "NaN" in msg or "infinity" in msg or "too large" in msg
        return
    assert np.isfinite(X).all() and (X >= 0).all() and X.max(initial=0) <= 1e100
    _assert_finite(m, W)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    k=st.integers(1, 4),
    dshape=st.tuples(st.integers(0, 2), st.integers(0, 2)),
)
def test_hypothesis_custom_W_H_shape_errors(shape, k, dshape):
    n, m = shape
    X = np.ones((n, m))
    W = np.ones((n + dshape[0], k))
    H = np.ones((k, m + dshape[1]))
    if dshape == (0, 0):
        Wf, Hf, _ = non_negative_factorization(X, W, H, n_components=k, init="custom", max_iter=3)
        assert Wf.shape == (n, k) and Hf.shape == (k, m)
    else:
        with pytest.raises(ValueError, match="wrong (first|second) dimension"):
            non_negative_factorization(X, W, H, n_components=k, init="custom", max_iter=3)
