"""init=None's cheaper NNDSVDa start (4 power iterations in the randomized SVD, where
scikit-learn takes 7 for k < min(n, m)/10), and scikit-learn's exact start for an explicit
init or ``power_iterations="auto"``."""

import numpy as np
import pytest
from sklearn.decomposition import _nmf as sk_nmf

from nmfkit.backends import get_backend
from nmfkit.init import DEFAULT_POWER_ITERATIONS, initial_factors, initialize
from nmfkit.losses import beta_divergence

from test_stopping import _tfidf


def _wide():
    rng = np.random.default_rng(2)
    return rng.random((300, 8)) @ rng.random((8, 250)) + 0.05 * rng.random((300, 250))


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("power", [None, "auto"])
def test_an_explicit_init_is_scikit_learns_start(init, power):
    X = _tfidf()  # k = 8 < min(n, m)/10: scikit-learn's SVD takes 7 power iterations
    W, H = initialize(X, 8, init=init, random_state=0, power_iterations=power)
    Ws, Hs = sk_nmf._initialize_nmf(X, 8, init=init, random_state=0)
    np.testing.assert_allclose(W, Ws, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hs, rtol=1e-7, atol=1e-10)


def test_init_none_asks_for_scikit_learns_start_with_auto_power_iterations():
    X = _tfidf()
    W, H = initialize(X, 8, init=None, random_state=0, power_iterations="auto")
    Ws, Hs = sk_nmf._initialize_nmf(X, 8, init=None, random_state=0)
    np.testing.assert_allclose(W, Ws, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hs, rtol=1e-7, atol=1e-10)


def test_init_none_takes_fewer_power_iterations_where_scikit_learn_takes_seven():
    X = _tfidf()  # k = 8 < min(n, m)/10 = 40, and no sharp low rank: the SVDs differ
    W, H = initialize(X, 8, init=None, random_state=0)
    W4, H4 = initialize(X, 8, init="nndsvda", random_state=0,
                        power_iterations=DEFAULT_POWER_ITERATIONS)
    np.testing.assert_array_equal(W, W4)
    np.testing.assert_array_equal(H, H4)
    Ws, Hs = sk_nmf._initialize_nmf(X, 8, init=None, random_state=0)
    assert not np.allclose(W, Ws, rtol=1e-7, atol=1e-10)
    # as good a start: its objective within 1 % of scikit-learn's
    f, fs = beta_divergence(X, W, H, 2), beta_divergence(X, Ws, Hs, 2)
    assert f == pytest.approx(fs, rel=1e-2)
    assert (W >= 0).all() and (H >= 0).all() and np.isfinite(W).all() and np.isfinite(H).all()


def test_four_power_iterations_are_scikit_learns_start_where_it_takes_four():
    X = _wide()[:40]  # k = 5 >= min(n, m)/10 = 4: scikit-learn takes 4
    W, H = initialize(X, 5, init=None, random_state=0)
    Ws, Hs = sk_nmf._initialize_nmf(X, 5, init=None, random_state=0)
    np.testing.assert_allclose(W, Ws, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hs, rtol=1e-7, atol=1e-10)


def test_the_cheaper_start_on_sparse_input_and_through_the_backend():
    X = _tfidf()
    for power in (None, 2, "auto"):
        W, H = initial_factors(get_backend(X), X, 8, None, 0, power_iterations=power)
        W2, H2 = initialize(X, 8, init=None, random_state=0, power_iterations=power)
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(H, H2)


def test_a_random_start_ignores_power_iterations():
    X = _wide()
    a = initialize(X, 5, init="random", random_state=0, power_iterations=1)
    b = initialize(X, 5, init="random", random_state=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 2.5, "4", True])
def test_bad_power_iterations_are_refused(bad):
    with pytest.raises(ValueError, match=r"power_iterations must be None, 'auto' \(scikit-"
                       r"learn's choice\) or an integer >= 0, got "):
        initialize(_wide(), 5, init="nndsvda", random_state=0, power_iterations=bad)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_a_solver_named_as_in_scikit_learn_starts_where_scikit_learn_starts(solver):
    # the cheaper SVD is the default fit's (solver="auto") only: NMF(k, solver="cd") with
    # init=None is scikit-learn's NMF(k, solver="cd") iterate for iterate
    import warnings

    from sklearn.decomposition import NMF as SkNMF

    from nmfkit import NMF

    X = _tfidf()  # k = 8 < min(n, m)/10: the two SVDs differ
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = NMF(8, solver=solver, random_state=0, max_iter=3, tol=0.0).fit(X)
        ref = SkNMF(8, solver=solver, random_state=0, max_iter=3, tol=0.0).fit(X)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-6, atol=1e-9)
