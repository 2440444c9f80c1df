"""Independent oracles for every update rule, on numpy alone.

Each test recomputes one step of a solver from its mathematical definition — a scalar
minimiser from scipy, a closed form, the KKT conditions, a dense weighted formula, a scripted
objective sequence — never from another code path of nmfkit. A differential test (dense vs
sparse, numpy vs torch) cannot see an error that both paths share; these can. Each check is
sized so that a plausible wrong step (a halved Newton step, a missing safeguard, an inverted
stopping comparison, an unweighted masked update) fails it.
"""

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

from nmfkit._fit import run
from nmfkit.backends import get_backend
from nmfkit.masked import observed_entries
from nmfkit.nnls import hals_sweep, nnls_bpp
from nmfkit.solvers import SOLVERS, Problem
from nmfkit.solvers._kl_kernels import kl_cd_update

KERNELS = ["numpy", "numba"]


def _use_numba(kernel):
    if kernel == "numba":
        pytest.importorskip("numba")
        return True
    return False


# ------------------------------------------------------------------ KL coordinate descent
def _kl_problem(seed, k=3, n=5, m=14, others=1.0):
    """F (k, n), B (k, m), X (n, m) CSR with positive stored values (about 60% stored)."""
    rng = np.random.RandomState(seed)
    B = rng.uniform(0.1, 2.0, (k, m))
    F = rng.uniform(0.2, 1.5, (k, n)) * others
    X = rng.gamma(2.0, 1.0, (n, m))
    X[rng.rand(n, m) < 0.4] = 0.0
    X[:, 0] += 0.5  # every row has a stored value
    return np.ascontiguousarray(F), B, sp.csr_matrix(X)


def _kl_phi(X, F, B, t, i, l1, l2):
    """The one-variable objective of F[t, i] with every other entry fixed (constants dropped):
    φ(w) = Σ_{j ∈ nz(X_i)} −X_ij log(r_j + w B_tj) + w (Σ_j B_tj + l1) + ½ l2 w²."""
    row = X.getrow(i)
    j, x = row.indices, row.data
    r = F[:, i] @ B[:, j] - F[t, i] * B[t, j]
    b = B[t, j]
    c = B[t].sum() + l1

    def phi(w):
        arg = r + w * b
        if np.any(arg <= 0):
            return np.inf
        return float(-(x * np.log(arg)).sum() + w * c + 0.5 * l2 * w * w)

    def derivs(w):
        wh = r + w * b
        return c + l2 * w - (x * b / wh).sum(), l2 + (x * b * b / wh**2).sum()

    return phi, derivs


def _kl_call(F, B, X, t, l1, l2, steps, kernel):
    kl_cd_update(F, B, X, B.sum(1), l1, l2, [t], steps, 1e-300, _use_numba(kernel))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.3, 0.0), (0.0, 2.0), (0.2, 0.7), (40.0, 0.0)])
def test_kl_cd_coordinate_step_reaches_the_scalar_minimiser(kernel, l1, l2):
    """A few Newton steps on one coordinate land on scipy's minimiser of the same φ
    (l1 = 40 puts the minimiser of some rows at the bound 0). Quadratic convergence makes
    8 steps exact to 1e-9; a damped (e.g. halved) step would leave ~2⁻⁸ of the gap."""
    F, B, X = _kl_problem(1)
    t = 1
    F0 = F.copy()
    _kl_call(F, B, X, t, l1, l2, 8, kernel)
    np.testing.assert_array_equal(np.delete(F, t, 0), np.delete(F0, t, 0))  # others untouched
    for i in range(F.shape[1]):
        phi, _ = _kl_phi(X, F0, B, t, i, l1, l2)
        ref = so.minimize_scalar(phi, bounds=(0.0, 50.0), method="bounded",
                                 options={"xatol": 1e-13, "maxiter": 2000}).x
        if ref < 1e-9:  # minimiser at the bound: φ'(0) ≥ 0
            assert F[t, i] <= 1e-9
        else:
            assert F[t, i] == pytest.approx(ref, rel=1e-7), (i, F[t, i], ref)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kl_cd_one_newton_step_is_exactly_newton(kernel):
    """One step from below the minimiser (where φ'' decreases, so the step never overshoots
    and the safeguard is silent) is w − φ'(w)/φ''(w), exactly."""
    F, B, X = _kl_problem(2, others=0.3)
    t = 0
    F0 = F.copy()
    # start each row's coordinate at 0.6 × its (interior) minimiser
    for i in range(F.shape[1]):
        phi, _ = _kl_phi(X, F0, B, t, i, 0.1, 0.5)
        F0[t, i] = 0.6 * so.minimize_scalar(phi, bounds=(0, 50), method="bounded",
                                            options={"xatol": 1e-12}).x
    F = F0.copy()
    _kl_call(F, B, X, t, 0.1, 0.5, 1, kernel)
    for i in range(F.shape[1]):
        _, derivs = _kl_phi(X, F0, B, t, i, 0.1, 0.5)
        g, h = derivs(F0[t, i])
        assert g < 0
        assert F[t, i] == pytest.approx(F0[t, i] - g / h, rel=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("l1, l2, scale", [(0.0, 0.0, 1.0), (0.3, 8.0, 1.0), (0.0, 0.0, 1e-3)])
def test_kl_cd_safeguard_far_start_never_increases_phi(kernel, l1, l2, scale):
    """From 5× above the minimiser, with the other components nearly zero, the raw Newton
    step lands below zero; clipped at w = 0 the objective would rise (log of the tiny rest
    of WH). The safeguard halves the step until φ does not increase — by any amount, also
    on data at 1e−3 where φ changes by less than 1 — so every single step is a descent step
    (the L2 term included), and the sequence still reaches scipy's minimiser."""
    F, B, X = _kl_problem(3, others=1e-4 * scale)
    X = X * scale
    t = 2
    n = F.shape[1]
    phis = [_kl_phi(X, F, B, t, i, l1, l2)[0] for i in range(n)]
    refs = [so.minimize_scalar(p, bounds=(1e-12 * scale, 1e3 * scale), method="bounded",
                               options={"xatol": 1e-13 * scale, "maxiter": 2000}).x
            for p in phis]
    F[t] = 5.0 * np.array(refs)
    raw_overshoots = 0
    for i in range(n):
        g, h = _kl_phi(X, F, B, t, i, l1, l2)[1](F[t, i])
        raw_overshoots += F[t, i] - g / h < 0
    assert raw_overshoots == n  # the test really exercises the safeguard
    assert all(phis[i](0.0) > phis[i](F[t, i]) for i in range(n))  # and w = 0 is worse
    # the first step exactly: the clipped Newton step, halved until φ does not increase
    expected = []
    for i in range(n):
        w = F[t, i]
        g, h = _kl_phi(X, F, B, t, i, l1, l2)[1](w)
        step = max(-g / h, -w)
        while phis[i](w + step) > phis[i](w):
            step *= 0.5
        expected.append(w + step)
    prev = [phis[i](F[t, i]) for i in range(n)]
    for it in range(40):
        _kl_call(F, B, X, t, l1, l2, 1, kernel)
        if it == 0:
            np.testing.assert_allclose(F[t], expected, rtol=1e-12)
        cur = [phis[i](F[t, i]) for i in range(n)]
        for a, b in zip(prev, cur):
            assert b <= a + 1e-12 * abs(a)
        prev = cur
    np.testing.assert_allclose(F[t], refs, rtol=1e-7)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kl_cd_sweep_over_all_components_matches_sequential_scalar_minimisation(kernel):
    """A full sweep (order 2, 0, 1) minimises each coordinate in turn with the ones already
    updated in place — Gauss–Seidel, not Jacobi."""
    F, B, X = _kl_problem(4)
    ref = F.copy()
    order = [2, 0, 1]
    for t in order:
        for i in range(F.shape[1]):
            phi, _ = _kl_phi(X, ref, B, t, i, 0.05, 0.1)
            ref[t, i] = so.minimize_scalar(phi, bounds=(0, 50), method="bounded",
                                           options={"xatol": 1e-13, "maxiter": 2000}).x
    kl_cd_update(F, B, X, B.sum(1), 0.05, 0.1, order, 12, 1e-300, _use_numba(kernel))
    np.testing.assert_allclose(F, ref, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kl_cd_row_without_observations_goes_to_zero(kernel):
    """A row of X with no stored value has φ(w) = w·(Σ_j B_tj + l1): its minimiser is 0 and a
    single step must land there from any start (zero curvature: the step is −w); rows after
    it are updated as usual."""
    F, B, X = _kl_problem(5, n=6)
    X = X.tolil()
    X[3, :] = 0.0
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    X = sp.csr_matrix(np.vstack([X.toarray(), np.zeros((1, X.shape[1]))]))  # and a last one
    F = np.ascontiguousarray(np.hstack([F, F[:, :1]]))
    F[0, 3] = F[0, 6] = 50.0  # far above anything B's column sums could pay for
    ref = F.copy()
    for i in (0, 1, 2, 4, 5):
        phi, _ = _kl_phi(X, F, B, 0, i, 0.0, 0.0)
        ref[0, i] = so.minimize_scalar(phi, bounds=(0, 50), method="bounded",
                                       options={"xatol": 1e-13, "maxiter": 2000}).x
    _kl_call(F, B, X, 0, 0.0, 0.0, 1, kernel)
    assert F[0, 3] == 0.0 and F[0, 6] == 0.0
    _kl_call(F, B, X, 0, 0.0, 0.0, 10, kernel)
    np.testing.assert_allclose(F[0], np.where(np.isin(np.arange(7), (3, 6)), 0.0, ref[0]),
                               rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kl_cd_from_a_zero_row_of_wh_stays_finite(kernel):
    """Where every component of a row is 0, (FᵀB) = 0 at its non-zeros: the floor keeps the
    quotients finite and Newton climbs from 0 to the minimiser."""
    F, B, X = _kl_problem(6)
    F[:, 2] = 0.0
    phi, _ = _kl_phi(X, F, B, 1, 2, 0.0, 0.0)
    ref = so.minimize_scalar(phi, bounds=(1e-12, 50), method="bounded",
                             options={"xatol": 1e-13, "maxiter": 2000}).x
    kl_cd_update(F, B, X, B.sum(1), 0.0, 0.0, [1], 80, 1e-12, _use_numba(kernel))
    assert np.isfinite(F).all()
    assert F[1, 2] == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("scale", [1e-4, 1e4])
def test_kl_cd_steps_are_scale_equivariant(kernel, scale):
    """KL is homogeneous: X → sX, F → sF scales every Newton iterate by s exactly (the
    curvature then falls below 1 or rises far above it: no hidden absolute threshold)."""
    F, B, X = _kl_problem(7)
    Fs = np.ascontiguousarray(F * scale)
    _kl_call(F, B, X, 1, 0.0, 0.0, 2, kernel)
    _kl_call(Fs, B, X * scale, 1, 0.0, 0.0, 2, kernel)
    np.testing.assert_allclose(Fs, F * scale, rtol=1e-10)


# ------------------------------------------------------------------ HALS
def _ls_problem(seed, k=4, n=7, m=30):
    rng = np.random.RandomState(seed)
    U = rng.rand(k, m)
    Mx = rng.rand(m, n) * 2.0
    F = rng.rand(k, n)
    return U, Mx, F


def _hals_closed_form(U, Mx, F, t, l1, l2):
    """argmin over F[t] ≥ 0 of ½‖Mx − Uᵀ F‖² + l1 ΣF + ½ l2‖F‖², from the residual."""
    resid = Mx - U.T @ F + np.outer(U[t], F[t])  # what component t has to explain
    return np.maximum(0.0, (U[t] @ resid - l1) / (U[t] @ U[t] + l2))


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.5, 0.0), (0.0, 3.0), (2.0, 1.0)])
def test_hals_sweep_is_sequential_exact_column_minimisation(l1, l2):
    U, Mx, F = _ls_problem(0)
    ref = F.copy()
    for t in [3, 1, 0, 2]:
        ref[t] = _hals_closed_form(U, Mx, ref, t, l1, l2)
    hals_sweep(F, U @ U.T, U @ Mx, l1, l2, order=[3, 1, 0, 2])
    np.testing.assert_allclose(F, ref, rtol=1e-12, atol=1e-14)
    assert (F == 0).any()  # the bound is active somewhere: the projection is checked too


def test_hals_sweep_defaults_and_backend_dispatch():
    """No penalty and every component by default; the backend's sweep gets the call with
    every argument (the contract: no backend-name test), numpy's being this reference."""
    U, Mx, F = _ls_problem(2)
    ref = F.copy()
    for t in range(4):
        ref[t] = _hals_closed_form(U, Mx, ref, t, 0.0, 0.0)
    G, R = U @ U.T, U @ Mx
    F1 = F.copy()
    hals_sweep(F1, G, R)
    np.testing.assert_allclose(F1, ref, rtol=1e-12, atol=1e-14)

    calls = []

    class Device:
        name = "device"

        def hals_sweep(self, *args):
            calls.append(args)
            return "device sweep"

    pens = (object(),)
    assert hals_sweep(F, G, R, 0.5, 0.25, [2, 0], pens, nx=Device()) == "device sweep"
    assert len(calls) == 1 and calls[0][0] is F and calls[0][1] is G and calls[0][2] is R
    assert calls[0][3:] == (0.5, 0.25, [2, 0], pens)

    from nmfkit.backends import get_backend

    F2 = F.copy()
    hals_sweep(F2, G, R, nx=get_backend())
    assert len(calls) == 1  # the numpy backend's own sweep, not the device's
    np.testing.assert_allclose(F2, ref, rtol=1e-12, atol=1e-14)


def test_hals_sweep_penalty_objects_small_scale_and_dead_components():
    """Penalties given as objects (their ``hals_terms``: gradient into the numerator,
    curvature into the denominator, the path of graph penalties) give the same closed form
    as l1 / l2; a Gram diagonal below 1 is an ordinary component; a dead one
    (G[t, t] + l2 = 0) is left as it is and the components after it are still updated."""
    from nmfkit.penalties import L1, L2

    U, Mx, F = _ls_problem(3)
    U *= 0.05  # G[t, t] ≈ 0.025
    ref = F.copy()
    for t in range(4):
        ref[t] = _hals_closed_form(U, Mx, ref, t, 0.01, 0.002)
    G, R = U @ U.T, U @ Mx
    assert G.diagonal().max() < 1
    F1 = F.copy()
    hals_sweep(F1, G, R, penalties=(L1(0.01, "W"), L2(0.002, "W")))
    np.testing.assert_allclose(F1, ref, rtol=1e-12, atol=1e-14)
    F2 = F.copy()
    hals_sweep(F2, G, R, 0.01, 0.002)
    np.testing.assert_allclose(F2, ref, rtol=1e-12, atol=1e-14)
    U[1] = 0.0  # component 1 is dead
    G, R = U @ U.T, U @ Mx
    F3 = F.copy()
    hals_sweep(F3, G, R, 0.0, 0.0)
    np.testing.assert_array_equal(F3[1], F[1])  # dead, untouched (no 0/0)
    ref = F.copy()
    for t in (0, 2, 3):
        ref[t] = _hals_closed_form(U, Mx, ref, t, 0.0, 0.0)
    np.testing.assert_allclose(F3, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (2.0, 1.0)])
def test_hals_numba_kernel_one_sweep_is_the_closed_form(l1, l2):
    pytest.importorskip("numba")
    from nmfkit.solvers._hals_kernel import hals_inner_sweeps

    U, Mx, F = _ls_problem(1, n=300)  # more than one block of columns
    ref = F.copy()
    for t in range(4):
        ref[t] = _hals_closed_form(U, Mx, ref, t, l1, l2)
    hals_inner_sweeps(F, U @ U.T, U @ Mx, l1, l2, None, 1, 0.0)
    np.testing.assert_allclose(F, ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ BPP
def _ill_conditioned(seed, k, cond):
    """U (k, m) with singular values from 1 down to 1/√cond: G = UUᵀ has condition ``cond``."""
    rng = np.random.RandomState(seed)
    m = 3 * k
    Q1, _ = np.linalg.qr(rng.randn(k, k))
    Q2, _ = np.linalg.qr(rng.randn(m, k))
    s = np.logspace(0, -0.5 * np.log10(cond), k)
    return (Q1 * s) @ Q2.T


@pytest.mark.parametrize("cond", [1e2, 1e6, 1e10])
@pytest.mark.parametrize("l1, l2", [(0.0, 0.0), (0.05, 0.0), (0.0, 1e-3)])
def test_bpp_meets_the_kkt_conditions_on_ill_conditioned_grams(cond, l1, l2):
    k, n = 8, 60
    U = _ill_conditioned(0, k, cond)
    rng = np.random.RandomState(1)
    Mx = rng.randn(U.shape[1], n)  # mixed signs: many variables at the bound
    G, R = U @ U.T, U @ Mx
    F = nnls_bpp(G, R, l1, l2)
    Ga = G + l2 * np.eye(k)
    Y = Ga @ F - (R - l1)  # gradient
    scale = np.abs(Ga).max() * np.abs(F).max(0) + np.abs(R - l1).max(0)
    tol = 1e-9 * scale
    assert (F >= 0).all()
    assert (Y >= -tol).all()  # dual feasibility
    assert (np.abs(F * Y) <= tol * np.maximum(F, 1e-300)).all() or np.allclose(
        F * Y, 0, atol=(tol * np.abs(F).max(0)).max())  # complementarity
    free = F > 0
    assert (np.abs(Y[free]) <= np.broadcast_to(tol, F.shape)[free]).all()  # stationarity
    assert 0 < free.sum() < F.size  # both sets are non-trivial
    # and no feasible point does better: scipy's NNLS on the same problem (no l1 / l2)
    if l1 == 0 and l2 == 0:
        q = lambda f: 0.5 * f @ G @ f - R[:, c] @ f  # noqa: E731
        for c in range(0, n, 7):
            ref = so.nnls(U.T, Mx[:, c])[0]
            assert q(F[:, c]) <= q(ref) + 1e-9 * (abs(q(ref)) + 1)


def test_bpp_against_scipy_nnls_with_l2_as_extra_rows():
    """½‖M − Uᵀf‖² + ½ l2‖f‖² is least squares with √l2·I appended: scipy.optimize.nnls
    solves it independently."""
    U = _ill_conditioned(3, 6, 1e4)
    Mx = np.random.RandomState(4).randn(U.shape[1], 25)
    l2 = 0.01
    F = nnls_bpp(U @ U.T, U @ Mx, 0.0, l2)
    A = np.vstack([U.T, np.sqrt(l2) * np.eye(6)])
    for c in range(25):
        ref = so.nnls(A, np.concatenate([Mx[:, c], np.zeros(6)]))[0]
        np.testing.assert_allclose(F[:, c], ref, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ masked MU / ALS
def _masked_problem(seed, n=9, m=11, k=3, beta=2.0, solver="masked_mu", options=None,
                    update_H=True):
    rng = np.random.RandomState(seed)
    X = rng.gamma(2.0, 1.0, (n, m)) + 0.1
    weights = rng.uniform(0.2, 3.0, (n, m))
    weights[rng.rand(n, m) < 0.35] = 0.0  # unobserved
    W0, H0 = rng.uniform(0.2, 1.2, (n, k)), rng.uniform(0.2, 1.2, (k, m))
    obs = observed_entries(X, mask=weights)
    p = Problem(X=obs.csr(), Xt=None, W=W0.copy(), H=H0.copy(), beta=beta,
                nx=get_backend(X), M=obs, options=dict(options or {}), update_H=update_H)
    return SOLVERS[solver](p), X, weights, W0, H0


def _gamma_ref(beta):  # Févotte & Idier's majorisation exponent
    return 1.0 / (2.0 - beta) if beta < 1 else (1.0 / (beta - 1.0) if beta > 2 else 1.0)


@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5, 0.0, 3.0])
def test_masked_mu_step_equals_the_dense_weighted_update(beta):
    s, X, Mw, W0, H0 = _masked_problem(0, beta=beta)
    s.step()
    g = _gamma_ref(beta)
    WH = W0 @ H0
    W1 = W0 * (((Mw * X * WH ** (beta - 2)) @ H0.T) / ((Mw * WH ** (beta - 1)) @ H0.T)) ** g
    WH = W1 @ H0
    H1 = H0 * ((W1.T @ (Mw * X * WH ** (beta - 2))) / (W1.T @ (Mw * WH ** (beta - 1)))) ** g
    np.testing.assert_allclose(s.W, W1, rtol=1e-11)
    np.testing.assert_allclose(s.H, H1, rtol=1e-11)


def test_masked_objective_is_the_dense_weighted_divergence():
    s, X, Mw, W0, H0 = _masked_problem(5)
    assert s.objective() == pytest.approx(0.5 * (Mw * (X - W0 @ H0) ** 2).sum(), rel=1e-12)


def test_masked_als_one_sweep_is_the_weighted_closed_form():
    """One inner sweep: each coordinate of a row minimises Σ_j M_ij (X_ij − w·h_j)² exactly."""
    s, X, Mw, W0, H0 = _masked_problem(1, solver="masked_als",
                                       options={"inner_max_iter": 1, "inner_tol": 0.0},
                                       update_H=False)
    s.step()
    ref = W0.copy()
    for i in range(X.shape[0]):
        for t in range(ref.shape[1]):
            resid = X[i] - ref[i] @ H0 + ref[i, t] * H0[t]
            ref[i, t] = max(0.0, (Mw[i] * H0[t]) @ resid / ((Mw[i] * H0[t]) @ H0[t]))
    np.testing.assert_allclose(s.W, ref, rtol=1e-10)
    np.testing.assert_array_equal(s.H, H0)  # update_H=False honoured


def test_masked_als_inner_limit_is_weighted_nnls():
    """Enough inner sweeps solve each row's weighted NNLS: scipy's nnls on √M-scaled rows."""
    s, X, Mw, W0, H0 = _masked_problem(2, solver="masked_als",
                                       options={"inner_max_iter": 3000, "inner_tol": 0.0},
                                       update_H=False)
    s.step()
    for i in range(X.shape[0]):
        sw = np.sqrt(Mw[i])
        ref = so.nnls((H0 * sw).T, X[i] * sw)[0]
        np.testing.assert_allclose(s.W[i], ref, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ the stopping rule
class _Scripted:
    """A solver whose objective follows a script: f(n) after step n (f(0) at the start)."""

    def __init__(self, f):
        self.f, self.n = f, 0
        self.W, self.H = np.ones((2, 1)), np.ones((1, 2))

    def objective(self):
        return self.f(self.n)

    def step(self):
        self.n += 1
        return self.f(self.n)

    def get_factors(self):
        return self.W.copy(), self.H.copy()

    def set_factors(self, W, H):
        self.W, self.H = W, H

    def finalize(self):
        return self.W, self.H


def _f_geometric(n):
    """error e(n) = √(2 f) = 1 + 0.9ⁿ: e(0) = 2, and between checks 10 apart the error falls
    by 0.9^(n−10)·(1 − 0.9¹⁰) ≈ 0.651·0.9^(n−10)."""
    return 0.5 * (1.0 + 0.9**n) ** 2


@pytest.mark.parametrize("tol, stop", [
    (1e-2, 50),   # at 40: 0.651·0.9³⁰/2 = 0.0137 ≥ tol; at 50: 0.0048 < tol
    (5e-2, 30),   # at 20: 0.1135 ≥ tol; at 30: 0.0396 < tol
    (1e-3, 70),   # at 60: 0.0016 ≥ tol; at 70: 0.00057 < tol
])
def test_stopping_rule_exact_iteration_on_a_scripted_objective(tol, stop):
    res = run(_Scripted(_f_geometric), tol=tol, max_iter=1000)
    assert (res.n_iter, res.stop_reason, res.converged) == (stop, "tol", True)
    assert res.history["n_iter"][-1] == stop
    assert res.objective == pytest.approx(_f_geometric(stop))


def test_stopping_rule_larger_tol_stops_sooner():
    stops = [run(_Scripted(_f_geometric), tol=t, max_iter=1000).n_iter
             for t in (1e-4, 1e-3, 1e-2, 1e-1)]
    assert stops == sorted(stops, reverse=True) and len(set(stops)) == 4


def test_stopping_rule_tol_zero_and_steady_progress_run_to_max_iter():
    res = run(_Scripted(_f_geometric), tol=0, max_iter=123)
    assert (res.n_iter, res.stop_reason, res.converged) == (123, "max_iter", False)
    # a steady fall of 1% of e(0) per 10 iterations never meets tol = 1e-3
    res = run(_Scripted(lambda n: 0.5 * (100.0 - 0.1 * n) ** 2), tol=1e-3, max_iter=200)
    assert (res.n_iter, res.stop_reason, res.converged) == (200, "max_iter", False)


def test_stopping_rule_stalled_or_rising_objective_stops_at_first_check():
    for f in (lambda n: 2.0, lambda n: 2.0 + n):
        res = run(_Scripted(f), tol=1e-4, max_iter=1000)
        assert (res.n_iter, res.stop_reason) == (10, "tol")


def test_bpp_more_than_eight_components_and_all_zero_columns():
    """k = 12 (passive sets packed into two bytes: grouping by whole keys), columns whose
    optimum is exactly zero (R ≤ 0) and a single-column / single-component problem."""
    k, n = 12, 40
    U = _ill_conditioned(5, k, 1e4)
    Mx = np.random.RandomState(6).randn(U.shape[1], n)
    G, R = U @ U.T, U @ Mx
    R[:, :3] = -np.abs(R[:, :3])  # optimum 0: only the gradient condition holds
    F = nnls_bpp(G, R)
    assert (F[:, :3] == 0).all()
    for c in range(3, n):
        ref = so.nnls(U.T, Mx[:, c])[0]
        q = lambda f: 0.5 * f @ G @ f - R[:, c] @ f  # noqa: E731
        assert q(F[:, c]) <= q(ref) + 1e-9 * (abs(q(ref)) + 1)
    assert len({tuple(col) for col in (F > 0).T}) > 5  # many distinct passive sets
    # one column, one component
    np.testing.assert_allclose(nnls_bpp(G, R[:, 5:6]), F[:, 5:6], rtol=1e-9, atol=1e-12)
    g, r = np.array([[4.0]]), np.array([[2.0, -1.0, 8.0]])
    np.testing.assert_array_equal(nnls_bpp(g, r), [[0.5, 0.0, 2.0]])


def test_bpp_empty_problems_keep_shape_and_dtype():
    for k, n in ((3, 0), (0, 4)):
        F = nnls_bpp(np.eye(k, dtype=np.float32), np.ones((k, n), dtype=np.float32))
        assert F.shape == (k, n) and F.dtype == np.float32


def test_bpp_singular_gram_still_meets_kkt():
    """Two identical components make G_PP exactly singular (the least-squares fallback)."""
    rng = np.random.RandomState(7)
    U = rng.rand(5, 20)
    U[3] = U[1]
    Mx = rng.rand(20, 15)
    G, R = U @ U.T, U @ Mx
    F = nnls_bpp(G, R)
    Y = G @ F - R
    assert (F >= 0).all() and np.isfinite(F).all()
    assert (Y >= -1e-9 * np.abs(R).max()).all()
    assert np.abs(F * Y).max() <= 1e-9 * np.abs(R).max() * max(1.0, F.max())
    for c in range(15):  # same objective as scipy's NNLS
        ref = so.nnls(U.T, Mx[:, c])[0]
        assert np.linalg.norm(U.T @ F[:, c] - Mx[:, c]) == pytest.approx(
            np.linalg.norm(U.T @ ref - Mx[:, c]), rel=1e-9)


def test_bpp_is_scale_invariant_and_solves_float32_in_float64():
    """The KKT tolerance follows the data's scale — R or G scaled by up to 1e±6 is the same
    problem (measured: beyond a 1e8 ratio between R and G the single tolerance, 1e−12 of the
    larger, no longer fits the smaller and the answer degrades) — and float32 input is solved
    in float64 (cond(G) = 1e6 would ruin float32)."""
    U = _ill_conditioned(8, 6, 1e6)
    Mx = np.random.RandomState(9).randn(U.shape[1], 20)
    G, R = U @ U.T, U @ Mx
    F = nnls_bpp(G, R)
    for s in (1e-6, 1e6):
        np.testing.assert_allclose(nnls_bpp(G, R * s), F * s, rtol=1e-8, atol=1e-12 * s)
        np.testing.assert_allclose(nnls_bpp(G * s, R), F / s, rtol=1e-8, atol=1e-12 / s)
    G32, R32 = G.astype(np.float32), R.astype(np.float32)
    F32 = nnls_bpp(G32, R32)
    assert F32.dtype == np.float32
    F64 = nnls_bpp(G32.astype(np.float64), R32.astype(np.float64))
    np.testing.assert_allclose(F32, F64.astype(np.float32), rtol=1e-6, atol=1e-6 * F64.max())


class _ScriptedViolation(_Scripted):
    """scikit-learn's CD rule: the solver reports the projected-gradient violation of each
    iteration; v(n) = 0.8^(n−1) relative to the first."""

    stop_rule = "violation"

    @property
    def violation(self):
        return 5.0 * 0.8 ** (self.n - 1)


@pytest.mark.parametrize("tol, stop", [
    (0.1, 12),    # 0.8¹⁰ = 0.107 > 0.1, 0.8¹¹ = 0.086 ≤ 0.1: stops after iteration 12
    (0.5, 5),     # 0.8³ = 0.512 > 0.5, 0.8⁴ = 0.41
    (1e-3, 32),   # 0.8³⁰ = 0.00124, 0.8³¹ = 0.00099
])
def test_violation_rule_checks_every_iteration_against_the_first(tol, stop):
    res = run(_ScriptedViolation(_f_geometric), tol=tol, max_iter=1000)
    assert (res.n_iter, res.stop_reason, res.converged) == (stop, "tol", True)


def test_error_rule_compares_the_stopping_objective():
    """A solver may stop on part of its objective (MU: the loss without the penalties):
    a flat penalty term added to the reported objective must not change where it stops."""
    class Penalised(_Scripted):
        def stopping_objective(self, f):
            return f - 100.0

    res = run(Penalised(lambda n: _f_geometric(n) + 100.0), tol=1e-2, max_iter=1000)
    assert (res.n_iter, res.stop_reason) == (50, "tol")
    assert res.objective == pytest.approx(_f_geometric(50) + 100.0)


def test_fit_loop_history_and_silence(capfd):
    """The history starts at iteration 0, time 0, with the starting objective; times never
    go back; the loop prints nothing unless asked (verbose=0 by default)."""
    res = run(_Scripted(_f_geometric), tol=1e-2, max_iter=1000)
    h = res.history
    assert h["n_iter"][0] == 0 and h["time"][0] == 0.0 and h["objective"][0] == _f_geometric(0)
    assert h["n_iter"] == list(range(51))  # the scripted solver reports f after every step
    assert np.all(np.diff(h["time"]) >= 0)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_bpp_warm_start_reaches_the_same_solution():
    """A warm start (the previous solution's support, as alternating NNLS passes) from the
    optimum itself, from a wrong support, or from everything passive ends at the same KKT
    point as a cold start."""
    U = _ill_conditioned(10, 7, 1e6)
    Mx = np.random.RandomState(11).randn(U.shape[1], 30)
    G, R = U @ U.T, U @ Mx
    cold = nnls_bpp(G, R, 0.01, 0.001)
    wrong = np.where(cold > 0, 0.0, 1.0)  # exactly the complement of the optimal support
    for init in (cold, wrong, np.ones_like(cold)):
        np.testing.assert_allclose(nnls_bpp(G, R, 0.01, 0.001, init=init), cold, rtol=1e-8,
                                   atol=1e-12)
    assert (nnls_bpp(G, R, 0.01, 0.001, max_iter=0) == 0).all()  # no pivoting: F = 0


def test_fit_loop_edge_cases_and_verbose_log(capsys):
    """Equality at tol (strict "<" for the error rule, "≤" for the violation rule), an exact
    start, max_iter = 0, tol = 0 with a rising objective, a solver whose step returns no
    objective, what a callback sees, and the verbose lines."""
    # error rule: e = 2 → 1.5 in 10 iterations is a relative fall of exactly 0.25
    flat_after = lambda n: 2.0 if n == 0 else 1.125  # noqa: E731  (√(2·1.125) = 1.5)
    assert run(_Scripted(flat_after), tol=0.25, max_iter=15).stop_reason == "max_iter"
    assert run(_Scripted(flat_after), tol=0.2500001, max_iter=15).n_iter == 10

    class Halving(_ScriptedViolation):  # violation 1, 1/2, 1/4, ... exactly
        @property
        def violation(self):
            return 0.5 ** (self.n - 1)

    res = run(Halving(_f_geometric), tol=0.25, max_iter=100)
    assert (res.n_iter, res.stop_reason) == (3, "tol")  # 1/4 ≤ 0.25 at iteration 3
    res = run(_Scripted(lambda n: 0.0), tol=1e-4, max_iter=100)
    assert (res.n_iter, res.stop_reason, res.converged) == (1, "exact", True)
    res = run(_Scripted(_f_geometric), tol=1e-4, max_iter=0)
    assert (res.n_iter, res.objective) == (0, _f_geometric(0))
    res = run(_Scripted(lambda n: 1.0 + n), tol=0, max_iter=25)
    assert (res.n_iter, res.stop_reason) == (25, "max_iter")

    class Quiet(_Scripted):  # objective only when asked for
        def step(self):
            self.n += 1

    res = run(Quiet(_f_geometric), tol=1e-2, max_iter=1000)
    assert res.n_iter == 50 and res.history["n_iter"] == [0, 10, 20, 30, 40, 50]
    res = run(Quiet(_f_geometric), tol=0, max_iter=7)
    assert res.history["n_iter"] == [0, 7] and res.objective == _f_geometric(7)

    seen = []
    run(_Scripted(_f_geometric), tol=0, max_iter=3, callback=seen.append)
    assert [(i.n_iter, i.objective) for i in seen] == [(n, _f_geometric(n)) for n in (1, 2, 3)]
    assert all(0 <= i.elapsed < 60 for i in seen)

    capsys.readouterr()
    res = run(_Scripted(_f_geometric), tol=1e-2, max_iter=1000, verbose=1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5 and res.history["time"][-1] < 60
    import re
    for n, line in zip((10, 20, 30, 40, 50), lines):
        assert re.fullmatch(rf"iteration {n}, \d+\.\d{{3}}s, error \S+", line), line
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(1 + 0.9**n, rel=1e-5)
    run(Halving(_f_geometric), tol=0.25, max_iter=100, verbose=1)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(", ")[0] for line in lines] == ["iteration 1", "iteration 2",
                                                        "iteration 3"]
    assert [float(line.rsplit(" ", 1)[1]) for line in lines] == [1.0, 0.5, 0.25]
    assert all(", violation " in line for line in lines)


def test_fit_loop_records_the_last_iterate_when_stopped_between_checks(capsys):
    """A solver whose step returns no objective, stopped by the callback at iteration 7
    (no check there): the history still ends with iteration 7 and its objective. The
    verbose violation log is relative to the first iteration (and 0 when that is 0)."""
    class Quiet(_Scripted):
        def step(self):
            self.n += 1

    res = run(Quiet(_f_geometric), tol=1e-2, max_iter=100, callback=lambda i: i.n_iter == 7)
    assert res.stop_reason == "callback" and res.n_iter == 7
    assert res.history["n_iter"] == [0, 7] and res.objective == _f_geometric(7)
    assert res.history["objective"] == [_f_geometric(0), _f_geometric(7)]
    assert 0 <= res.history["time"][-1] < 60

    class FromFour(_ScriptedViolation):
        @property
        def violation(self):
            return 4.0 * 0.5 ** (self.n - 1)

    class Zero(_ScriptedViolation):
        violation = 0.0

    capsys.readouterr()
    run(FromFour(_f_geometric), tol=0.25, max_iter=100, verbose=1)
    assert [float(x.rsplit(" ", 1)[1]) for x in capsys.readouterr().err.splitlines()] == [
        1.0, 0.5, 0.25]
    res = run(Zero(_f_geometric), tol=0.25, max_iter=100, verbose=1)
    assert (res.n_iter, res.stop_reason) == (1, "tol")
    assert capsys.readouterr().err.strip().endswith("violation 0")
