"""The starts every fit path takes (``initial_factors``: host and device code paths) against
scikit-learn's ``_initialize_nmf``, NNDSVD from a given SVD in its corner cases, and the
estimator's handling of W/H given without ``init="custom"``: what mutation testing showed
only the torch tests, or no test, reached."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import _nmf as sk_nmf

from nmfkit import NMF
from nmfkit.backends import get_backend
from nmfkit.init import initial_factors

METHODS = ["random", "nndsvd", "nndsvda", "nndsvdar", None]


def _low_rank(dtype=np.float64, n=30, m=22, k=4, seed=0):
    # exact rank k with distinct singular values: its rank-k SVD is unique up to signs
    rng = np.random.RandomState(seed)
    return (rng.rand(n, k) @ rng.rand(k, m)).astype(dtype)


@pytest.mark.parametrize("init", METHODS)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_start_is_scikit_learns(init, sparse, dtype):
    X = _low_rank(dtype)
    Xin = sp.csr_matrix(X) if sparse else X
    W, H = initial_factors(get_backend(Xin), Xin, 4, init, 7)
    Ws, Hs = sk_nmf._initialize_nmf(Xin, 4, init=init, random_state=7)
    np.testing.assert_allclose(W, Ws, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(H, Hs, rtol=1e-6, atol=1e-7)
    assert W.dtype == dtype and H.dtype == dtype


@pytest.mark.parametrize("init", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_code_path_gives_scikit_learns_start_on_an_exact_low_rank_matrix(init, dtype):
    # the device path (a backend's randomized SVD, random numbers drawn on the host) run on
    # numpy: 'random' draws the same numbers; NNDSVD does not depend on the signs of the
    # singular vectors, so an exact rank-k X gives scikit-learn's start to SVD rounding
    X = _low_rank(dtype)
    W, H = initial_factors(get_backend(X), X, 4, init, 7, on_device=True)
    assert W.dtype == dtype and H.dtype == dtype
    assert (W >= 0).all() and (H >= 0).all()
    if init == "nndsvdar":  # its fill values come from a different random stream
        Ws, Hs = sk_nmf._initialize_nmf(X, 4, init="nndsvd", random_state=7)
        big_W, big_H = Ws > 1e-3, Hs > 1e-3
        np.testing.assert_allclose(W[big_W], Ws[big_W], rtol=1e-4)
        np.testing.assert_allclose(H[big_H], Hs[big_H], rtol=1e-4)
        assert (W[~big_W] <= X.mean()).all() and (H[~big_H] <= X.mean()).all()
        return
    Ws, Hs = sk_nmf._initialize_nmf(X, 4, init=init, random_state=7)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(W, Ws, **tol)
    np.testing.assert_allclose(H, Hs, **tol)


def test_device_code_path_refuses_an_svd_start_of_too_high_rank():
    X = _low_rank(n=5, m=4)
    with pytest.raises(ValueError, match=r"^init = 'nndsvda' can only be used when n_components <= "
                       r"min\(n_samples, n_features\) \(here n_components=5, X has shape \(5, 4\)\); use"
                       r" init='random' or a smaller n_components\.$"):
        initial_factors(get_backend(X), X, 5, "nndsvda", 0, on_device=True)
    # 'random' has no rank limit, on either path
    for on_device in (False, True):
        W, H = initial_factors(get_backend(X), X, 5, "random", 0, on_device=on_device)
        assert W.shape == (5, 5) and H.shape == (5, 4)
    # init=None stands for 'random' there, as on the host
    W, H = initial_factors(get_backend(X), X, 5, None, 0, on_device=True)
    Ws, Hs = sk_nmf._initialize_nmf(X, 5, init="random", random_state=0)
    np.testing.assert_allclose(W, Ws, rtol=1e-12)
    np.testing.assert_allclose(H, Hs, rtol=1e-12)


def test_factors_given_without_custom_init_are_ignored_with_scikit_learns_warning():
    X = _low_rank()
    W0, H0 = np.full((30, 4), 9.0), np.full((4, 22), 9.0)
    kw = dict(init="nndsvda", max_iter=5, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W_ref = NMF(4, **kw).fit_transform(X)
    with pytest.warns(RuntimeWarning, match=r"^When init!='custom', provided W or H are ignored\. "
                      r"Set  init='custom' to use them as initialization\.$"):
        W = NMF(4, **kw).fit_transform(X, W=W0, H=H0)
    np.testing.assert_array_equal(W, W_ref)


def test_auto_rank_is_the_number_of_features():
    X = _low_rank(n=12, m=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF("auto", init="random", random_state=0, max_iter=5).fit(X)
    assert model.components_.shape == (5, 5)


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("negative", ["u", "v"])
def test_a_singular_pair_with_no_usable_sign_part_gives_a_finite_start(init, negative):
    # u > 0 with v < 0 (or the reverse): the positive part of one and the negative part of the
    # other are zero, so both norm products vanish and the pair's direction is 0/0 (a
    # rank-deficient X): that component starts at zero (nndsvd) or at the fill value, never NaN
    from nmfkit.init import nndsvd_from_svd

    rng = np.random.RandomState(0)
    U = np.abs(rng.rand(8, 2)) + 0.1
    V = np.abs(rng.rand(2, 6)) + 0.1
    if negative == "v":
        V[1] *= -1.0
    else:
        U[:, 1] *= -1.0
    S = np.array([3.0, 1.0])
    W, H = nndsvd_from_svd(U, S, V, init, 0.5, 0)
    assert np.isfinite(W).all() and np.isfinite(H).all()
    np.testing.assert_allclose(W[:, 0], np.sqrt(3.0) * U[:, 0])
    np.testing.assert_allclose(H[0], np.sqrt(3.0) * np.abs(V[0]))
    if init == "nndsvd":
        assert not W[:, 1].any() and not H[1].any()
    elif init == "nndsvda":
        assert (W[:, 1] == 0.5).all() and (H[1] == 0.5).all()
    else:
        assert (W[:, 1] > 0).all() and (W[:, 1] <= 0.5 * 5 / 100).all()


def test_small_entries_of_an_svd_start_are_zeroed_below_eps_only():
    from nmfkit.init import nndsvd_from_svd

    U = np.array([[0.8, 0.6], [0.6, -0.8]])
    V = np.array([[0.6, 0.8], [0.8, -0.6]])
    S = np.array([1.0, 1e-14])  # the second pair's entries are ~1e-7: below eps = 1e-6
    W, H = nndsvd_from_svd(U, S, V, "nndsvd", 0.5, 0)
    np.testing.assert_allclose(W[:, 0], U[:, 0])
    np.testing.assert_allclose(H[0], V[0])
    assert not W[:, 1].any() and not H[1].any()


@pytest.mark.parametrize("init", METHODS)
@pytest.mark.parametrize("sparse", [False, True])
def test_fortran_ordered_H_holds_the_same_start(init, sparse):
    from nmfkit.init import initialize

    X = _low_rank(np.float32)
    Xin = sp.csr_matrix(X) if sparse else X
    Wc, Hc = initialize(Xin, 4, init=init, random_state=3)
    Wf, Hf = initialize(Xin, 4, init=init, random_state=3, h_order="F")
    assert Hf.flags.f_contiguous
    np.testing.assert_array_equal(Wf, Wc)
    np.testing.assert_array_equal(Hf, Hc)
    assert Wf.dtype == Hf.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_start_from_a_mean_alone_is_scikit_learns(dtype):
    # the out-of-core and masked paths know mean(X) only, as a Python float
    from nmfkit.init import random_factors

    X = _low_rank(dtype)
    W, H = random_factors(30, 22, 4, float(X.mean()), dtype, 11)
    Ws, Hs = sk_nmf._initialize_nmf(X, 4, init="random", random_state=11)
    assert W.dtype == dtype and H.dtype == dtype
    np.testing.assert_allclose(W, Ws, rtol=1e-6)
    np.testing.assert_allclose(H, Hs, rtol=1e-6)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvdar"])
def test_device_code_path_start_is_determined_by_random_state(init):
    X = _low_rank()
    W1, H1 = initial_factors(get_backend(X), X, 4, init, 5, on_device=True)
    W2, H2 = initial_factors(get_backend(X), X, 4, init, 5, on_device=True)
    np.testing.assert_array_equal(W1, W2)
    np.testing.assert_array_equal(H1, H2)


@pytest.mark.parametrize("k", [4, 5, 6])
def test_init_none_is_nndsvda_up_to_the_smaller_dimension_then_random(k):
    from nmfkit.init import initialize

    X = np.abs(np.random.RandomState(4).randn(5, 7))  # min(n, m) = 5
    W, H = initialize(X, k, init=None, random_state=0)
    Ws, Hs = sk_nmf._initialize_nmf(X, k, init=None, random_state=0)
    np.testing.assert_allclose(W, Ws, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(H, Hs, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("given", ["W", "H"])
def test_one_factor_given_without_custom_init_warns_too(given):
    X = _low_rank()
    kw = {"W": np.ones((30, 4))} if given == "W" else {"H": np.ones((4, 22))}
    with pytest.warns(RuntimeWarning, match="When init!='custom', provided W or H are ignored"):
        NMF(4, init="random", random_state=0, max_iter=3).fit_transform(X, **kw)


def test_an_unknown_start_is_refused_with_the_known_ones():
    from nmfkit.init import initialize

    with pytest.raises(ValueError, match=r"^Invalid init parameter: got 'svd' instead of one of "
                       r"\(None, 'random', 'nndsvd', 'nndsvda', 'nndsvdar', 'custom'\)\.$"):
        initialize(np.ones((3, 3)), 2, init="svd")
