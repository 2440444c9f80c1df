"""Initial factors: random, NNDSVD and its variants (Boutsidis & Gallopoulos 2008), custom.

The numerics follow scikit-learn's ``_initialize_nmf`` exactly for the same
``random_state``, so a fit started from ``init="nndsvda"`` in nmfkit and in scikit-learn starts
from the same W and H. ``init=None`` is NNDSVDa from a randomized SVD with 4 power iterations:
scikit-learn's start wherever scikit-learn takes 4 (k ≥ min(n, m)/10), a cheaper one where it
takes 7 (``DEFAULT_POWER_ITERATIONS``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd

__all__ = ["initialize", "initial_factors", "random_factors", "nndsvd_from_svd", "INIT_METHODS",
           "resolve_init"]

INIT_METHODS = ("random", "nndsvd", "nndsvda", "nndsvdar")
# power iterations of the randomized SVD behind init=None's NNDSVDa start (scikit-learn's
# randomized_svd takes 7 when k < min(n, m)/10, else 4; an explicit init keeps its choice).
# On the TF-IDF benchmark (11314×39116, k=10) the SVD took 0.36 s with 7, about half of the
# default fit, and 0.24 s with 4; the fits from both starts reached scikit-learn's default
# error at the same iteration (22), as on the dense benchmark (10000×2000, k=20: iteration 3).
# Two were not enough there (26 iterations); one led to a worse minimum.
DEFAULT_POWER_ITERATIONS = 4


def resolve_init(init, n_components: int, n_samples: int, n_features: int) -> str:
    """The method ``init=None`` stands for: 'nndsvda' when k ≤ min(n, m), else 'random'."""
    if init is None:
        return "nndsvda" if n_components <= min(n_samples, n_features) else "random"
    return init


def check_init_rank(init, n_components: int, n_samples: int, n_features: int) -> None:
    """SVD-based inits need k ≤ min(n_samples, n_features): say so with the fix."""
    if init is not None and init != "random" and n_components > min(n_samples, n_features):
        raise ValueError(
            f"init = '{init}' can only be used when n_components <= min(n_samples, n_features)"
            f" (here n_components={n_components}, X has shape {(n_samples, n_features)}); use"
            " init='random' or a smaller n_components."
        )


def rank_without_custom_start(est, W, H, n_features: int) -> int:
    """For an estimator whose ``init`` is not "custom": warn when W or H were passed anyway
    (scikit-learn's message), resolve ``n_components="auto"`` to n_features, return the rank.
    Shared by the numpy, torch and minibatch paths."""
    import warnings

    if W is not None or H is not None:
        warnings.warn(
            "When init!='custom', provided W or H are ignored. Set  init='custom' to use"
            " them as initialization.",
            RuntimeWarning,
        )
    if est._n_components == "auto":
        est._n_components = n_features
    return est._n_components


def _mean(X):
    """mean(X) as a scalar of X's dtype (as numpy computes it for a dense X)."""
    if sp.issparse(X):
        n = X.shape[0] * X.shape[1]
        return X.dtype.type(X.sum() / n if n else 0.0)
    return X.mean()


def _scaled(avg, a):
    """avg · a, in place when the result keeps a's dtype (the same numbers, no temporary)."""
    if np.result_type(avg, a) == a.dtype:
        return np.multiply(avg, a, out=a)
    return avg * a


def _power_iterations(power_iterations, init):
    """The randomized SVD's ``n_iter``: None → 4 for init=None, scikit-learn's choice ("auto")
    for an explicit init."""
    if power_iterations is None:
        return DEFAULT_POWER_ITERATIONS if init is None else "auto"
    if isinstance(power_iterations, str) and power_iterations == "auto":
        return "auto"
    if (isinstance(power_iterations, bool) or not isinstance(power_iterations, (int, np.integer))
            or power_iterations < 0):
        raise ValueError(
            f"power_iterations must be None, 'auto' (scikit-learn's choice) or an integer >= 0,"
            f" got {power_iterations!r}."
        )
    return int(power_iterations)


def initialize(X, n_components: int, init=None, eps: float = 1e-6, random_state=None,
               h_order: str = "C", power_iterations=None, products=None):
    """Initial W (n_samples, k) and H (k, n_features) for X ≈ WH, both ≥ 0.

    Parameters
    ----------
    X : ndarray or sparse matrix, non-negative, float32 or float64.
    n_components : int, the rank k.
    init : None, 'random', 'nndsvd', 'nndsvda' or 'nndsvdar'.
        None means 'nndsvda' when k ≤ min(n_samples, n_features), else 'random'; its SVD
        takes 4 power iterations (below), so it is scikit-learn's start wherever scikit-learn
        takes 4 (k ≥ min(n, m)/10). An explicit 'nndsvda' is scikit-learn's start exactly.
    eps : values of the NNDSVD factors below eps are set to zero.
    random_state : int, RandomState or None; makes 'random' and 'nndsvdar' deterministic.
    h_order : 'C' or 'F', the memory layout of the returned H (the same values). 'F' is what
        solver "cd" works in on sparse X; for 'random' the conversion happens before W is
        drawn, so that the start never holds X, W and two copies of H at once (peak memory).
    power_iterations : None, 'auto' or int ≥ 0, the power iterations of the NNDSVD family's
        randomized SVD. 'auto' is scikit-learn's choice (7 when k < min(n, m)/10, else 4).
        None: ``DEFAULT_POWER_ITERATIONS`` (4) for init=None, a cheaper start where
        scikit-learn would take 7, and 'auto' for an explicit init (scikit-learn's start).
    products : None, or ``(xq, xtq)``: X @ Q and Xᵀ @ Q for a dense Q, run on the solvers' host
        threads (passed in by the engine for a large X of the default start: a sparse X's
        products split over threads, a dense X's split so that the thin QR, LU and SVD run on
        one BLAS thread); the randomized SVD then runs :func:`randomized_svd_with` —
        scikit-learn's algorithm and random draws (the same start but for the products'
        rounding).

    Notes
    -----
    'random' draws |N(0,1)|·√(mean(X)/k). NNDSVD takes the positive or negative part of each
    singular pair, whichever has the larger norm product; 'nndsvda' fills its zeros with
    mean(X), 'nndsvdar' with small random values (mean(X)·|N(0,1)|/100).
    """
    n_samples, n_features = X.shape
    check_init_rank(init, n_components, n_samples, n_features)
    n_iter = _power_iterations(power_iterations, init)
    init = resolve_init(init, n_components, n_samples, n_features)
    if init not in INIT_METHODS:
        raise ValueError(
            f"Invalid init parameter: got {init!r} instead of one of "
            f"{(None,) + INIT_METHODS + ('custom',)}."
        )
    dtype = X.dtype
    avg_X = _mean(X)
    if init == "random":
        return random_factors(n_samples, n_features, n_components, avg_X, dtype, random_state,
                              h_order=h_order)
    if products is not None and n_iter != "auto":
        U, S, V = randomized_svd_with(X, n_components, n_iter, random_state, *products)
    else:
        U, S, V = randomized_svd(X, n_components, n_iter=n_iter, random_state=random_state)
    W, H = nndsvd_from_svd(U, S, V, init, avg_X, random_state, eps=eps)
    H = H.astype(dtype, copy=False)
    return W.astype(dtype, copy=False), np.asfortranarray(H) if h_order == "F" else H


def randomized_svd_with(X, k: int, n_iter: int, random_state, xq, xtq, n_oversamples=10):
    """A rank-k randomized SVD (U (n, k), S (k,), V (k, m)) of X by Halko, Martinsson & Tropp's
    range finder, step for step as scikit-learn's ``randomized_svd`` (its default
    oversampling, LU normalisation between power iterations beyond two, the transposed
    problem when n < m, its random draws and sign convention), with the products given:
    ``xq(Q)`` = X @ Q and ``xtq(Q)`` = Xᵀ @ Q for a dense Q. scikit-learn's products of a
    sparse X run on one thread; these may run on several (the TF-IDF workload's default
    start: 0.25 s with scikit-learn's, see docs/benchmarks.md for the threaded figure)."""
    from scipy import linalg
    from sklearn.utils.extmath import svd_flip

    rng = check_random_state(random_state)
    transpose = X.shape[0] < X.shape[1]
    a_q, at_q = (xtq, xq) if transpose else (xq, xtq)  # A = Xᵀ when transposed
    cols = X.shape[0] if transpose else X.shape[1]
    Q = rng.normal(size=(cols, k + n_oversamples))
    if X.dtype.kind == "f":
        Q = Q.astype(X.dtype, copy=False)
    if n_iter > 2:
        def norm(M):
            return linalg.lu(M, permute_l=True, check_finite=False)[0]
    else:
        def norm(M):
            return M
    for _ in range(n_iter):
        Q = norm(at_q(norm(a_q(Q))))
    Q = linalg.qr(a_q(Q), mode="economic", check_finite=False)[0]
    B = np.asarray(at_q(Q)).T  # Qᵀ A
    Uhat, s, Vt = linalg.svd(B, full_matrices=False, lapack_driver="gesdd")
    U = Q @ Uhat
    U, Vt = svd_flip(U, Vt, u_based_decision=not transpose)
    if transpose:
        return Vt[:k].T, s[:k], U[:, :k].T
    return U[:, :k], s[:k], Vt[:k]


def random_factors(n_samples: int, n_features: int, n_components: int, mean, dtype,
                   random_state, h_order: str = "C"):
    """The 'random' start from mean(X) alone: |N(0,1)|·√(mean/k), H drawn first, then W
    (scikit-learn's order, so the same seed gives the same start). Every path that starts at
    random draws here: in memory, on a device (numbers drawn on the host, O((n+m)·k)), from
    observed entries only, streamed from disk and on a Dask cluster.

    ``mean`` is a float or a scalar of X's dtype (then the scaling runs in that precision,
    as scikit-learn's does); ``h_order`` 'F' converts H before W is drawn, so the start never
    holds two copies of H at once.
    """
    dtype = np.dtype(dtype)
    avg = np.sqrt(mean / n_components)
    rng = check_random_state(random_state)
    H = _scaled(avg, rng.standard_normal(size=(n_components, n_features)).astype(dtype, copy=False))
    H = np.abs(H, out=H).astype(dtype, copy=False)
    H = np.asfortranarray(H) if h_order == "F" else H
    W = _scaled(avg, rng.standard_normal(size=(n_samples, n_components)).astype(dtype, copy=False))
    return np.abs(W, out=W).astype(dtype, copy=False), H


def nndsvd_from_svd(U, S, V, init: str, avg_X, random_state, eps: float = 1e-6):
    """NNDSVD (Boutsidis & Gallopoulos 2008) from a rank-k SVD U (n, k), S (k,), V (k, m):
    each singular pair's positive or negative part, whichever has the larger norm product;
    'nndsvda' fills the zeros with mean(X) (``avg_X``), 'nndsvdar' with mean(X)·|N(0,1)|/100
    drawn from ``random_state``. Returns float64 (W, H) for any SVD (numpy's randomized SVD,
    a device's low-rank SVD)."""
    n_components = S.shape[0]
    W = np.zeros_like(U)
    H = np.zeros_like(V)
    # the leading singular pair of a non-negative matrix can be taken non-negative
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0, :] = np.sqrt(S[0]) * np.abs(V[0, :])
    for j in range(1, n_components):
        x, y = U[:, j], V[j, :]
        x_p, y_p = np.maximum(x, 0), np.maximum(y, 0)
        x_n, y_n = np.abs(np.minimum(x, 0)), np.abs(np.minimum(y, 0))
        x_p_nrm, y_p_nrm = np.sqrt(np.dot(x_p, x_p)), np.sqrt(np.dot(y_p, y_p))
        x_n_nrm, y_n_nrm = np.sqrt(np.dot(x_n, x_n)), np.sqrt(np.dot(y_n, y_n))
        m_p, m_n = x_p_nrm * y_p_nrm, x_n_nrm * y_n_nrm
        with np.errstate(invalid="ignore", divide="ignore"):
            if m_p > m_n:
                u, v, sigma = x_p / x_p_nrm, y_p / y_p_nrm, m_p
            else:
                u, v, sigma = x_n / x_n_nrm, y_n / y_n_nrm, m_n
        lbd = np.sqrt(S[j] * sigma)
        W[:, j] = lbd * u
        H[j, :] = lbd * v

    W[W < eps] = 0
    H[H < eps] = 0
    # a singular pair of zero norm (rank-deficient X) leaves NaN from 0/0: make it zero
    np.nan_to_num(W, copy=False, nan=0.0)
    np.nan_to_num(H, copy=False, nan=0.0)

    if init == "nndsvda":
        W[W == 0] = avg_X
        H[H == 0] = avg_X
    elif init == "nndsvdar":
        rng = check_random_state(random_state)
        W[W == 0] = abs(avg_X * rng.standard_normal(size=len(W[W == 0])) / 100)
        H[H == 0] = abs(avg_X * rng.standard_normal(size=len(H[H == 0])) / 100)
    return W, H


def initial_factors(nx, X, n_components: int, init, random_state, h_order: str = "C",
                    on_device: bool = False, power_iterations=None, products=None):
    """The start of ``init`` for X on its backend (numpy array, sparse matrix or tensor), in
    X's dtype and on its device.

    Host data (and a CPU tensor, unless ``on_device``) gets exactly :func:`initialize`'s
    numbers. On a device X never leaves it: 'random' draws its O((n+m)·k) numbers on the host,
    the NNDSVD family takes the backend's randomized low-rank SVD (``nx.randomized_svd``;
    as good a start as numpy's, not the same numbers). ``power_iterations``: see
    :func:`initialize` (host data only; a device's SVD keeps its own), and ``products``.
    """
    if nx.on_host(X) and not on_device:
        W, H = initialize(nx.to_numpy(X), n_components, init=init, random_state=random_state,
                          h_order=h_order, power_iterations=power_iterations,
                          products=products)
        return nx.asarray(W), nx.asarray(H)  # numpy: the arrays themselves
    n, m = X.shape
    check_init_rank(init, n_components, n, m)
    init = resolve_init(init, n_components, n, m)
    dtype = nx.dtype_of(X)
    mean = nx.mean_value(X)
    if init == "random":
        W, H = random_factors(n, m, n_components, mean, np.float64, random_state)
    else:
        rng = check_random_state(random_state)
        U, S, V = nx.randomized_svd(X, n_components, seed=int(rng.randint(2**31 - 1)))
        W, H = nndsvd_from_svd(U, S, V, init, mean, rng)
    return nx.asarray(W, dtype=dtype), nx.asarray(H, dtype=dtype)
