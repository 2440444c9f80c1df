"""Edge cases of the update rules and the divergence that the mutation re-run (docs/testing.md,
section 4) found no test making: the floor that keeps an exact zero of WH finite (its value on
every dtype combination, and its scale in KL coordinate descent), frozen columns of W in
coordinate descent and multiplicative updates, plain CD's sweep order (frozen components,
``shuffle`` against scikit-learn), the refusals of ``solver_options``, MU at 1 < β < 2 where
WH falls below machine epsilon, a component with no observation under a mask, the
masked row solver with unbounded coordinates and per-row L2, and which bad weight a mask
refusal quotes. Each test states the behaviour; none depends on a tolerance chosen by luck."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import NMF as SkNMF

import nmfkit.solvers.cd as cd_module
from nmfkit import NMF
from nmfkit._fit import factorize
from nmfkit.backends import get_backend
from nmfkit.losses import beta_divergence
from nmfkit.masked import observed_entries
from nmfkit.solvers.masked_als import MaskedALS, solve_rows


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point here
        return fn(*args, **kwargs)


# ---------------------------------------------------------------- the floor of WH


def _divergence_reference(X, WH, beta, floor):
    """D_β(X | WH) from its definition, WH read as max(WH, floor) where X > 0 (the quotient
    and the logarithm), unfloored in the term Σ (WH)^β that does not involve X."""
    X = np.asarray(X, dtype=np.float64)
    WH = np.asarray(WH, dtype=np.float64)
    pos = X > 0
    Xp, Y = X[pos], np.maximum(WH[pos], floor)
    if beta == 1.0:
        return float(np.sum(Xp * np.log(Xp / Y)) - Xp.sum() + WH.sum())
    terms = (Xp**beta).sum() - beta * np.dot(Xp, Y ** (beta - 1))
    return float((terms + (beta - 1) * (WH**beta).sum()) / (beta * (beta - 1)))


@pytest.mark.parametrize("beta", [1.0, 0.5])
@pytest.mark.parametrize("dtypes", [
    ("float64", "float64", "float64"), ("float32", "float32", "float32"),
    ("float64", "float32", "float32"), ("float32", "float64", "float32"),
    ("float32", "float32", "float64"),
])
def test_an_exact_zero_of_WH_is_floored_at_eps_of_the_result_dtype_times_the_mean_of_X(
        beta, dtypes):
    # where WH = 0 < X the divergence is large and finite: WH is read as eps·mean(X), eps of
    # the dtype the three arrays promote to (float32 only when all three are float32)
    rng = np.random.RandomState(0)
    X = rng.rand(8, 6) + 0.5
    W = rng.rand(8, 3)
    H = rng.rand(3, 6)
    W[0] = 0.0  # a row of WH exactly zero where X > 0
    H[:, 2] = 0.0  # and a column
    dW, dH, dX = (np.dtype(d) for d in dtypes)
    Xc, Wc, Hc = X.astype(dX), W.astype(dW), H.astype(dH)
    dtype = np.result_type(dW, dH, dX)
    floor = float(np.finfo(dtype).eps) * float(Xc.mean())
    WH = Wc.astype(np.float64) @ Hc.astype(np.float64)
    expected = _divergence_reference(Xc, WH, beta, floor)
    other = float(np.finfo(np.float64 if dtype == np.float32 else np.float32).eps)
    wrong = _divergence_reference(Xc, WH, beta, other * float(Xc.mean()))
    got = beta_divergence(Xc, Wc, Hc, beta)
    assert abs(expected - wrong) > 1e-3 * abs(expected)  # the floor's dtype matters here
    assert got == pytest.approx(expected, rel=1e-9)


def test_kl_coordinate_descent_where_WH_starts_at_zero_is_scale_covariant():
    # the KL kernel floors WH at eps·mean(X) too: fitting c·X from √c·(W0, H0) gives √c times
    # the factors of X, also when a row and a column of WH start exactly at zero
    rng = np.random.RandomState(1)
    X = rng.poisson(4.0, size=(12, 9)).astype(np.float64) + 1.0
    W0 = rng.rand(12, 3) + 0.1
    H0 = rng.rand(3, 9) + 0.1
    W0[0] = 0.0
    H0[:, 1] = 0.0
    kw = dict(solver="cd", beta_loss="kullback-leibler", init="custom", max_iter=3, tol=0.0,
              solver_options={"mu_warmup": 0, "kernel": "numpy"})
    outs = []
    for c in (1.0, 1e6):
        m = NMF(3, **kw)
        W = _quiet(m.fit_transform, c * X, W=np.sqrt(c) * W0, H=np.sqrt(c) * H0)
        outs.append((W / np.sqrt(c), m.components_ / np.sqrt(c)))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-7, atol=1e-12)


# ---------------------------------------------------------------- frozen columns of W


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_frozen_columns_of_W_stay_bit_identical_and_the_others_move(solver):
    rng = np.random.RandomState(2)
    X = rng.rand(20, 15)
    W0 = rng.rand(20, 4) + 0.1
    H0 = rng.rand(4, 15) + 0.1
    nx = get_backend(X)
    res = factorize(X, W0.copy(), H0.copy(), solver=solver, beta=2.0, nx=nx, tol=0.0,
                    max_iter=5, frozen_W=(1, 3))
    W = np.asarray(res.W)
    assert np.array_equal(W[:, [1, 3]], W0[:, [1, 3]])
    assert not np.allclose(W[:, [0, 2]], W0[:, [0, 2]])
    assert not np.allclose(np.asarray(res.H), H0)


# ---------------------------------------------------------------- plain CD's sweep order


def test_plain_cd_keeps_frozen_components_bit_identical():
    rng = np.random.RandomState(3)
    X = rng.rand(25, 12)
    H_frozen = rng.rand(2, 12)
    m = _quiet(NMF(4, solver="cd", frozen_components=H_frozen, init="random", random_state=0,
                   max_iter=10, tol=0.0).fit, X)
    assert np.array_equal(m.components_[:2], H_frozen)
    assert m.n_iter_ == 10


def test_plain_cd_with_shuffle_follows_scikit_learns_sweep_order():
    # scikit-learn draws a permutation of the components for every sweep from random_state;
    # the same draws give its iterates, which differ from the ordered sweep's
    rng = np.random.RandomState(4)
    X = rng.rand(30, 20)
    W0 = rng.rand(30, 5) + 0.1
    H0 = rng.rand(5, 20) + 0.1
    kw = dict(solver="cd", init="custom", shuffle=True, random_state=7, max_iter=6, tol=0.0)
    ours = NMF(5, **kw)
    W = _quiet(ours.fit_transform, X, W=W0.copy(), H=H0.copy())
    ref = SkNMF(5, **kw)
    W_ref = _quiet(ref.fit_transform, X, W=W0.copy(), H=H0.copy())
    np.testing.assert_allclose(W, W_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-9, atol=1e-12)
    ordered = NMF(5, **{**kw, "shuffle": False})
    W_ord = _quiet(ordered.fit_transform, X, W=W0.copy(), H=H0.copy())
    assert not np.allclose(W_ord, W, rtol=1e-6)


# ---------------------------------------------------------------- solver_options


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "8"])
def test_block_columns_must_be_a_positive_integer(bad):
    X = np.random.RandomState(5).rand(10, 8)
    with pytest.raises((ValueError, TypeError), match="block_columns"):
        NMF(2, solver="cd", max_iter=2, solver_options={"block_columns": bad}).fit(X)


@pytest.mark.parametrize("kernel", ["auto", "numba", "numpy"])
def test_every_documented_kernel_and_a_one_column_block_are_accepted(kernel):
    X = np.random.RandomState(5).rand(10, 8)
    opts = {"kernel": kernel, "block_columns": 1, "inner": True, "extrapolate": True}
    try:
        m = _quiet(NMF(2, solver="cd", max_iter=3, tol=0.0, random_state=0,
                       solver_options=opts).fit, X)
    except ImportError as e:  # only where numba is missing, and then naming the extra
        assert kernel == "numba" and not cd_module.HAVE_NUMBA
        assert "nmfkit[fast]" in str(e)
        return
    assert np.isfinite(m.reconstruction_err_)


def test_an_unknown_kernel_is_refused_naming_the_choices():
    X = np.random.RandomState(5).rand(10, 8)
    with pytest.raises(ValueError, match="'auto', 'numba' or 'numpy'"):
        NMF(2, solver="cd", max_iter=2, solver_options={"kernel": "fortran"}).fit(X)


def test_kl_cd_asking_for_numba_without_it_names_the_extra(monkeypatch):
    monkeypatch.setattr(cd_module, "HAVE_NUMBA", False)
    X = np.random.RandomState(5).poisson(3.0, size=(10, 8)).astype(float)
    with pytest.raises(ImportError, match=r"solver_options\['kernel'\]='numba' needs numba: "
                                          r"pip install \"nmfkit\[fast\]\""):
        NMF(2, solver="cd", beta_loss="kullback-leibler", max_iter=2,
            solver_options={"kernel": "numba"}).fit(X)


# ---------------------------------------------------------------- MU at 1 < β < 2


def _mu_reference(X, W, H, beta, eps, den_floor=0.0):
    """Lee & Seung's β update (γ = 1 for 1 ≤ β ≤ 2), W then H: WH floored at eps inside the
    negative power X ⊙ (WH)^(β−2) only, as scikit-learn does (with its own epsilon)."""
    for side in ("W", "H"):
        WH = W @ H
        num = X * np.maximum(WH, eps) ** (beta - 2)
        den = np.maximum(WH, den_floor) ** (beta - 1)
        if side == "W":
            W = W * (num @ H.T) / (den @ H.T)
        else:
            H = H * (W.T @ num) / (W.T @ den)
    return W, H


@pytest.mark.parametrize("sparse", [False, True])
def test_mu_between_kl_and_frobenius_floors_WH_only_inside_the_negative_power(sparse):
    # rows and columns far below machine epsilon: WH there is floored at eps in the quotient
    # X ⊙ (WH)^(β−2) and left as it is in (WH)^(β−1)
    rng = np.random.RandomState(6)
    X = rng.rand(20, 15) + 0.1
    W0 = rng.rand(20, 3) + 0.1
    H0 = rng.rand(3, 15) + 0.1
    X[:4] *= 1e-20
    W0[:4] *= 1e-20
    X[:, :3] *= 1e-20  # and columns, for the H update's (WH)^(β−1)
    H0[:, :3] *= 1e-20
    Xin = sp.csr_matrix(X) if sparse else X
    ours = NMF(3, solver="mu", beta_loss=1.5, init="custom", max_iter=1, tol=0.0)
    W = _quiet(ours.fit_transform, Xin, W=W0.copy(), H=H0.copy())
    W_ref, H_ref = _mu_reference(X, W0, H0, 1.5, float(np.finfo(np.float64).eps))
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=0)
    np.testing.assert_allclose(ours.components_, H_ref, rtol=1e-10, atol=0)
    eps = float(np.finfo(np.float64).eps)
    W_both, H_both = _mu_reference(X, W0, H0, 1.5, eps, den_floor=eps)  # floored in both
    assert not np.allclose(W_both[:4], W_ref[:4], rtol=1e-3, atol=0)
    assert not np.allclose(H_both[:, :3], H_ref[:, :3], rtol=1e-3, atol=0)


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("solver", ["cd", "anls", "masked_cd", "mu"])
def test_a_component_without_observations_keeps_finite_values_under_a_mask(solver):
    # H's last component is zero on every column: in the first W update, W's last column has
    # no curvature and no gradient (no observation sees it, no penalty): never NaN
    rng = np.random.RandomState(7)
    X = rng.rand(15, 10)
    mask = rng.rand(15, 10) < 0.7
    W0 = rng.rand(15, 3) + 0.1
    H0 = rng.rand(3, 10) + 0.1
    H0[2] = 0.0
    m = NMF(3, solver=solver, init="custom", max_iter=1, tol=0.0)
    W = _quiet(m.fit_transform, X, W=W0.copy(), H=H0.copy(), mask=mask)
    assert np.isfinite(W).all() and np.isfinite(m.components_).all()
    assert (W >= 0).all() and (m.components_ >= 0).all()
    if solver != "mu":  # coordinate methods leave a coordinate without curvature in place
        np.testing.assert_array_equal(W[:, 2], W0[:, 2])
    else:  # a multiplicative update with nothing to fit sends it to zero
        np.testing.assert_array_equal(W[:, 2], 0.0)


def _row_problem(seed=8, N=7, m=9, k=4):
    rng = np.random.RandomState(seed)
    dense_mask = rng.rand(N, m) < 0.6
    dense_mask[:, 0] = True
    dense_mask[2] = False  # a row without observations: the blocks hold only the others
    T = rng.randn(N, m) * 2.0  # signed targets: unbounded coordinates end negative
    other = rng.rand(m, k) + 0.1
    Wt = rng.rand(N, m) + 0.5
    S = sp.csr_matrix(np.where(dense_mask, 1.0, 0.0))
    S.sort_indices()
    rows, cols = np.repeat(np.arange(N), np.diff(S.indptr)), S.indices
    return (S.indptr.astype(np.int64), cols.astype(np.int64), T[rows, cols].copy(),
            Wt[rows, cols].copy(), other, rows)


def test_masked_row_solver_with_unbounded_coordinates_and_per_row_l2_reaches_the_kkt_point():
    indptr, indices, targets, weights, other, rows = _row_problem()
    N, k = indptr.shape[0] - 1, other.shape[1]
    free = np.array([True, False, True, False])
    l1 = np.linspace(0.0, 0.3, N)
    l2 = np.linspace(0.1, 2.0, N)
    F = np.ones((N, k))
    solve_rows(F, indptr, indices, targets, weights, other, l1=l1, l2=l2, n_sweeps=500,
               tol=0.0, free=free)
    np.testing.assert_array_equal(F[2], 0.0)  # the penalties alone: minimised at 0
    for i in [r for r in range(N) if r != 2]:
        q = slice(indptr[i], indptr[i + 1])
        O = other[indices[q]]
        G = (O * weights[q][:, None]).T @ O
        R = O.T @ (weights[q] * targets[q])
        grad = G @ F[i] - R + l2[i] * F[i] + np.where(free, 0.0, l1[i])
        viol = np.where(free, np.abs(grad), np.where(F[i] > 0, np.abs(grad),
                                                     np.maximum(-grad, 0.0)))
        assert viol.max() < 1e-8
        assert (F[i][~free] >= 0).all()
    assert (F[:, free] < 0).any()  # the unbounded coordinates were used


def test_masked_als_set_factors_replaces_the_iterate():
    rng = np.random.RandomState(9)
    X = rng.rand(12, 8)
    mask = rng.rand(12, 8) < 0.8
    m = NMF(3, solver="anls", init="random", random_state=0, max_iter=2, tol=0.0)
    _quiet(m.fit, X, mask=mask)  # the masked ALS path runs
    W1, H1 = rng.rand(12, 3), rng.rand(3, 8)

    class _P:  # the fields MaskedALS.setup reads
        pass

    p = _P()
    nx = get_backend(X)
    p.nx, p.X, p.W, p.H = nx, X, rng.rand(12, 3), rng.rand(3, 8)
    p.M = observed_entries(X, mask=mask)
    p.penalties_W = p.penalties_H = ()
    s = MaskedALS.__new__(MaskedALS)
    s.p, s.options = p, dict(MaskedALS.default_options)
    s.setup()
    s.set_factors(W1, H1)
    W2, H2 = s.get_factors()
    np.testing.assert_array_equal(W2, W1)
    np.testing.assert_array_equal(H2, H1)


def test_a_mask_refusal_quotes_the_first_negative_or_non_finite_weight():
    X = np.ones((3, 3))
    mask = np.array([[0.5, 0.0, 1.0], [2.0, -1.5, 1.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"found -1\.5"):
        observed_entries(X, mask=mask)
    mask[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"found inf"):
        observed_entries(X, mask=mask)


# ---------------------------------------------------------------- the reported objective


@pytest.mark.parametrize("solver,options", [
    ("cd", {"extrapolate": True, "inner": False}),
    ("cd", {"extrapolate": True, "inner": True}),
    ("cd", {"extrapolate": False, "inner": False}),
    ("anls", {}),
])
@pytest.mark.parametrize("update_H", [True, False])
def test_the_objective_each_iteration_reports_is_that_of_its_factors_with_penalties(
        solver, options, update_H):
    # ½‖X − WH‖² + the L1 and L2 penalties of W and of H, taken of the factors the callback
    # sees (an extrapolated or a fixed H included), never of another array
    from nmfkit.penalties import L1, L2

    rng = np.random.RandomState(10)
    X = rng.rand(25, 18)
    W0 = rng.rand(25, 4) + 0.1
    H0 = rng.rand(4, 18) + 0.1
    pw = [L1(0.3, "W"), L2(0.7, "W")]
    ph = [L1(0.2, "H"), L2(1.1, "H")]
    seen = []

    def cb(info):
        W, H = np.asarray(info.W), np.asarray(info.H)
        ref = (beta_divergence(X, W, H, 2.0) + sum(p.value(W.T) for p in pw)
               + sum(p.value(H) for p in ph))
        seen.append((info.objective, ref))

    factorize(X, W0.copy(), H0.copy(), solver=solver, beta=2.0, nx=get_backend(X),
              penalties_W=pw, penalties_H=ph, tol=0.0, max_iter=6, callback=cb,
              update_H=update_H, solver_options=options)
    assert len(seen) == 6
    for got, ref in seen:
        assert got == pytest.approx(ref, rel=1e-9)


# ---------------------------------------------------------------- float32 inputs, float64 sums


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("beta", [1.0, 0.5, 1.5, 3.0])
@pytest.mark.parametrize("fine", ["W", "H"])
def test_float32_inputs_give_the_float64_divergence_of_the_same_numbers(sparse, beta, fine):
    # one component; one factor holds float32 numbers, the other powers of two: every
    # product W_i·H_j is exact in float32, so the only difference float32 storage could make
    # is in the sums (Σ W, Σ H over thousands of entries) and the powers, which run in float64
    rng = np.random.RandomState(11)
    n, m = (3000, 20) if fine == "W" else (20, 3000)
    X = sp.random(n, m, density=0.3, random_state=rng, format="csr", dtype=np.float64)
    X.data += 0.01
    rich = (rng.rand(max(n, m)) + 0.05).astype(np.float32).astype(np.float64)
    coarse = 2.0 ** -rng.randint(0, 5, size=max(n, m))
    fine_sum = rich[:max(n, m)].astype(np.float32)
    assert fine_sum.sum(dtype=np.float32) != fine_sum.sum(dtype=np.float64)  # rounds in float32
    W = (rich[:n] if fine == "W" else coarse[:n])[:, None]
    H = (coarse[:m] if fine == "W" else rich[:m])[None, :]
    X32, W32, H32 = X.astype(np.float32), W.astype(np.float32), H.astype(np.float32)
    if not sparse:
        X32 = X32.toarray()
    X64 = X32.astype(np.float64)
    got = beta_divergence(X32, W32, H32, beta)
    ref = beta_divergence(X64, W32.astype(np.float64), H32.astype(np.float64), beta)
    assert got == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5, 3.0])
def test_elementwise_divergence_of_float32_values_is_that_of_their_float64_copies(beta):
    from nmfkit.masked import elementwise_divergence

    rng = np.random.RandomState(12)
    x = (rng.rand(500) + 0.01).astype(np.float32)
    y = (rng.rand(500) + 0.01).astype(np.float32)
    got = elementwise_divergence(x, y, beta, 1e-12)
    ref = elementwise_divergence(x.astype(np.float64), y.astype(np.float64), beta, 1e-12)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtypes", [("float64", "float32"), ("float32", "float64")])
def test_the_sampled_product_of_mixed_precision_factors_is_in_the_wider_precision(dtypes):
    from nmfkit.masked import sampled_product

    rng = np.random.RandomState(13)
    X = rng.rand(30, 20)
    mask = rng.rand(30, 20) < 0.5
    obs = observed_entries(X, mask=mask)
    W = rng.rand(30, 4).astype(dtypes[0])
    H = rng.rand(4, 20).astype(dtypes[1])
    got = sampled_product(obs, W, H)
    full = W.astype(np.float64) @ H.astype(np.float64)
    rows, cols = np.nonzero(mask)  # row-major: CSR order
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, full[rows, cols], rtol=1e-14, atol=0)



def test_the_masked_divergence_floors_a_zero_of_WH_at_eps_of_the_factors_dtype():
    # float32 factors: WH = 0 at an observed X > 0 is read as float32's eps · mean(X_obs)
    from nmfkit.masked import weighted_divergence

    rng = np.random.RandomState(15)
    X = rng.rand(10, 8) + 0.5
    mask = rng.rand(10, 8) < 0.7
    mask[0] = True
    obs = observed_entries(X, mask=mask)
    W = (rng.rand(10, 2) + 0.1).astype(np.float32)
    H = (rng.rand(2, 8) + 0.1).astype(np.float32)
    W[0] = 0.0
    got = weighted_divergence(obs, W, H, 1.0)
    floor = float(np.finfo(np.float32).eps) * float(X[mask].mean())
    WH = W.astype(np.float64) @ H.astype(np.float64)
    x, y = X[mask], np.maximum(WH[mask], floor)
    ref = float(np.sum(x * np.log(x / y) - x + y))
    assert got == pytest.approx(ref, rel=1e-6)
    y64 = np.maximum(WH[mask], float(np.finfo(np.float64).eps) * float(X[mask].mean()))
    assert abs(float(np.sum(x * np.log(x / y64) - x + y64)) - ref) > 1e-3 * ref


def test_a_sparse_mask_refusal_skips_stored_zero_weights_when_quoting():
    # a stored zero weight means "unobserved", not "bad": the refusal quotes the negative one
    X = np.ones((3, 3))
    mask = sp.csr_matrix((np.array([0.0, 1.0, -2.5, 1.0]),
                          (np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))), shape=(3, 3))
    assert mask.nnz == 4  # the zero is stored
    with pytest.raises(ValueError, match=r"found -2\.5"):
        observed_entries(X, mask=mask)


# ---------------------------------------------------------------- inner HALS sweeps


def _inner_sweep_moves(monkeypatch, X, k, options, frozen=None):
    """The squared move of every numpy HALS sweep of one outer iteration, with the number of
    columns of the factor it swept (n: W, m: H)."""
    real = cd_module.hals_sweep
    moves = []

    def recording(F, G, R, *args, **kwargs):
        before = np.array(F, copy=True)
        out = real(F, G, R, *args, **kwargs)
        moves.append((F.shape[1], float(((np.asarray(F) - before) ** 2).sum())))
        return out

    monkeypatch.setattr(cd_module, "hals_sweep", recording)
    opts = {"inner": True, "extrapolate": False, "kernel": "numpy", **options}
    rng = np.random.RandomState(16)
    W0 = rng.rand(X.shape[0], k) + 0.1
    H0 = rng.rand(k, X.shape[1]) + 0.1
    _quiet(NMF(k, solver="cd", init="custom", max_iter=1, tol=0.0, solver_options=opts,
               frozen_components=frozen).fit_transform, X, W=W0, H=H0)
    return moves


def _gillis_glineur_sweeps(n, m, k, N, alpha, max_inner, cost=2.0):
    """⌊1 + α·ρ⌋, ρ = (n·m·k + N·k²) / (cost·N·k·(k + 1)), between 1 and max_inner (dense X)."""
    rho = (n * m * k + N * k * k) / (cost * N * k * (k + 1))
    return int(max(1, min(max_inner, np.floor(1 + alpha * rho))))


@pytest.mark.parametrize("alpha", [0.5, 1.3])
def test_inner_sweeps_repeat_as_often_as_gillis_and_glineurs_rule_says(monkeypatch, alpha):
    n, m, k = 40, 90, 3
    X = np.random.RandomState(17).rand(n, m)
    moves = _inner_sweep_moves(monkeypatch, X, k, {"alpha": alpha, "delta": 0.0,
                                                   "max_inner": 50})
    for N in (n, m):  # W's sweeps, then H's
        count = sum(1 for cols, _ in moves if cols == N)
        assert count == _gillis_glineur_sweeps(n, m, k, N, alpha, 50)
    assert _gillis_glineur_sweeps(n, m, k, n, alpha, 50) > 2  # the rule repeats here


def test_inner_sweeps_stop_at_the_first_move_below_delta_squared_of_the_first(monkeypatch):
    n, m, k, delta = 40, 90, 3, 0.3
    X = np.random.RandomState(18).rand(n, m)
    moves = _inner_sweep_moves(monkeypatch, X, k, {"alpha": 5.0, "delta": delta,
                                                   "max_inner": 50})
    for N in (n, m):
        seq = [mv for cols, mv in moves if cols == N]
        cap = _gillis_glineur_sweeps(n, m, k, N, 5.0, 50)
        below = [i for i in range(1, len(seq)) if seq[i] <= delta**2 * seq[0]]
        expected = below[0] + 1 if below else cap
        assert len(seq) == min(expected, cap)
        assert len(seq) < cap  # the stop acted before the cap


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_integer_arrays_give_the_divergence_of_their_float64_copies(beta):
    # the function API takes counts as they are: the floor is float64's for an integer dtype
    rng = np.random.RandomState(19)
    X = rng.poisson(3.0, size=(12, 9))
    W = rng.randint(0, 3, size=(12, 2))
    H = rng.randint(0, 3, size=(2, 9))
    W[0] = 0  # WH = 0 where X > 0: the floor acts
    X[0] += 1
    got = beta_divergence(X, W, H, beta)
    ref = beta_divergence(X.astype(np.float64), W.astype(np.float64), H.astype(np.float64), beta)
    assert np.isfinite(got)
    assert got == pytest.approx(ref, rel=1e-12)


def test_a_graph_penalty_on_W_makes_each_of_ws_half_iterations_one_sweep(monkeypatch):
    # the repeated sweeps are for HALS-form penalties: W, with a graph term, is swept once
    # per iteration; H, without one, as often as the rule says
    import nmfkit.solvers.cd as cd

    n, m, k = 40, 90, 3
    X = np.random.RandomState(20).rand(n, m)
    real = cd.hals_sweep
    sweeps = []

    def recording(F, G, R, *args, **kwargs):
        sweeps.append(F.shape[1])
        return real(F, G, R, *args, **kwargs)

    monkeypatch.setattr(cd, "hals_sweep", recording)
    rng = np.random.RandomState(16)
    W0, H0 = rng.rand(n, k) + 0.1, rng.rand(k, m) + 0.1
    model = NMF(k, solver="cd", init="custom", max_iter=1, tol=0.0, graph="cosine",
             graph_neighbors=4, graph_weight=1.0,
             solver_options={"inner": True, "extrapolate": False, "kernel": "numpy",
                             "alpha": 0.5, "delta": 0.0, "max_inner": 50})
    _quiet(model.fit_transform, X, W=W0, H=H0)
    assert sweeps.count(n) == 1
    assert sweeps.count(m) == _gillis_glineur_sweeps(n, m, k, m, 0.5, 50) > 1
