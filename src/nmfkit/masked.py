"""Missing entries and element-wise weights: the weighted objective and the masked fit path.

NMF with a mask fits only what is observed. With weights M ≥ 0 (M_ij = 0: unobserved) the
objective is

    Σ_ij M_ij · d_β(X_ij, (WH)_ij)  + penalties,

with d_2(x, y) = ½(x − y)² (Frobenius) and d_1(x, y) = x log(x/y) − x + y (generalised KL).

Three ways to say what is observed (see docs/missing.md):

* dense X with NaN where a value is missing, with ``missing_values=np.nan`` (scikit-learn's
  imputer convention; any other number v marks the entries equal to v as missing);
* sparse X whose stored entries are the observations, with ``missing_values="unobserved"``:
  an absent entry is unknown, not zero (ratings, implicit feedback); stored zeros are
  observed zeros;
* an explicit mask / weight matrix ``fit(X, mask=M)``, boolean or non-negative, dense or
  sparse, X's shape.

Whatever the input, the observed entries are held once as an :class:`Observed` set: a CSR
structure with the values and the weights aligned to it, and the permutation to its
transpose. Nothing of size n_samples × n_features is ever formed, so a 10⁶ × 10⁶ matrix with
10⁵ ratings costs memory in proportion to 10⁵ (plus the factors).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Observed",
    "observed_entries",
    "weighted_divergence",
    "sampled_product",
    "fit_masked",
    "resolve_masked_solver",
]


@dataclass
class Observed:
    """The observed entries of an (n_samples, n_features) matrix, in CSR order.

    Attributes
    ----------
    shape : (n_samples, n_features)
    indptr, indices : CSR structure (row pointers, column of each observation), int arrays.
    rows : ndarray (nnz,), the row of each observation.
    values : ndarray (nnz,), X at the observations (zeros included).
    weights : ndarray (nnz,), M at the observations, all > 0.
    t_indptr, t_indices : CSR structure of the transpose (column pointers, rows).
    t_perm : ndarray (nnz,); observation ``t_perm[q]`` is the q-th in transposed order.
    """

    shape: tuple
    indptr: np.ndarray
    indices: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_perm: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def unit_weights(self) -> bool:
        return bool(np.all(self.weights == 1))

    @classmethod
    def from_coo(cls, rows, cols, values, weights, shape, dtype) -> "Observed":
        """Build from coordinates (duplicates are not allowed)."""
        n, m = shape
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        values = np.asarray(values, dtype=dtype)[order]
        weights = np.asarray(weights, dtype=dtype)[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        t_perm = np.lexsort((rows, cols))
        t_indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=m), out=t_indptr[1:])
        return cls(
            shape=(n, m), indptr=indptr, indices=cols, rows=rows, values=values,
            weights=weights, t_indptr=t_indptr, t_indices=rows[t_perm], t_perm=t_perm,
        )

    def csr(self, data=None):
        """A CSR matrix with this structure and the given data (default: the values)."""
        data = self.values if data is None else data
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def transposed(self) -> "Observed":
        """The observed entries of Xᵀ (the roles of rows and columns swapped)."""
        inv = np.empty_like(self.t_perm)
        inv[self.t_perm] = np.arange(self.t_perm.shape[0])
        return Observed(
            shape=self.shape[::-1], indptr=self.t_indptr, indices=self.t_indices,
            rows=self.indices[self.t_perm], values=self.values[self.t_perm],
            weights=self.weights[self.t_perm], t_indptr=self.indptr, t_indices=self.indices,
            t_perm=inv,
        )


def _is_nan(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isnan(v)


def _check_no_nan(values, where: str) -> None:
    if np.isnan(values).any():
        raise ValueError(
            f"Input X contains NaN at {where}. Pass missing_values=np.nan to treat NaN as a "
            "missing entry, or give those entries weight 0 in mask."
        )


def observed_entries(X, mask=None, missing_values=None) -> Observed:
    """The :class:`Observed` set of X, from NaN / a sentinel, sparse storage, or a mask.

    Parameters
    ----------
    X : ndarray or sparse matrix (n_samples, n_features), validated float32/float64.
    mask : None, or array-like / sparse matrix of X's shape, boolean or non-negative weights.
        Entries with weight 0 are unobserved. Combined with ``missing_values``: an entry is
        observed when its weight is > 0 and it is not missing.
    missing_values : None, a number (np.nan included) or "unobserved".
        A number v marks the dense entries equal to v (NaN: the NaN entries) as missing.
        "unobserved": X must be sparse; its stored entries are the observations.

    Returns
    -------
    Observed
    """
    dtype = X.dtype
    shape = X.shape
    if missing_values == "unobserved" and not sp.issparse(X):
        raise ValueError(
            "missing_values='unobserved' means the stored entries of a sparse X are the "
            "observations, but X is dense. Pass a scipy.sparse X, or use missing_values=np.nan "
            "with NaN at the missing entries of a dense X."
        )
    if sp.issparse(X) and missing_values is not None and missing_values != "unobserved":
        raise ValueError(
            f"missing_values={missing_values!r} with a sparse X is ambiguous (are the absent "
            "entries zeros or missing?). Use missing_values='unobserved' (absent = missing) "
            "or pass a mask."
        )
    if mask is None:
        if sp.issparse(X):
            if missing_values != "unobserved":
                raise ValueError(
                    "A sparse X has no missing entries unless missing_values='unobserved' says "
                    "that its absent entries are unknown; or pass a mask."
                )
            Xc = sp.coo_matrix(X)
            Xc.sum_duplicates()
            _check_no_nan(Xc.data, "stored entries")
            return Observed.from_coo(Xc.row, Xc.col, Xc.data, np.ones(Xc.nnz), shape, dtype)
        X = np.asarray(X)
        missing = np.isnan(X) if _is_nan(missing_values) else (X == missing_values)
        if not _is_nan(missing_values):
            _check_no_nan(X[~missing], "observed entries")
        rows, cols = np.nonzero(~missing)
        return Observed.from_coo(rows, cols, X[rows, cols], np.ones(rows.shape[0]), shape, dtype)

    # an explicit mask or weight matrix
    if sp.issparse(mask):
        Mc = sp.coo_matrix(mask)
        Mc.sum_duplicates()
        r, c, w = Mc.row, Mc.col, np.asarray(Mc.data, dtype=np.float64)
    else:
        M = np.asarray(mask)
        if M.ndim != 2:
            raise ValueError(f"mask must be 2-D with X's shape {shape}, got ndim={M.ndim}.")
        r, c = np.nonzero(M)
        w = np.asarray(M[r, c], dtype=np.float64)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but X has shape {tuple(shape)}; pass a mask of "
            "X's shape (True/weight > 0 where observed)."
        )
    if w.size and (not np.isfinite(w).all() or w.min() < 0):
        bad = w[~np.isfinite(w) | (w < 0)][0]
        raise ValueError(
            f"mask must hold non-negative finite weights (or booleans); found {float(bad)!r}."
        )
    keep = w > 0
    r, c, w = r[keep], c[keep], w[keep]
    if sp.issparse(X):
        vals = np.asarray(sp.csr_matrix(X)[r, c], dtype=dtype).ravel()
    else:
        vals = np.asarray(X)[r, c]
    isnan = np.isnan(vals)
    if isnan.any():
        if _is_nan(missing_values):
            r, c, w, vals = r[~isnan], c[~isnan], w[~isnan], vals[~isnan]
        else:
            _check_no_nan(vals, "entries the mask marks as observed")
    elif missing_values is not None and not _is_nan(missing_values) and not sp.issparse(X):
        keep = vals != missing_values
        r, c, w, vals = r[keep], c[keep], w[keep], vals[keep]
    return Observed.from_coo(r, c, vals, w, shape, dtype)


def sampled_product(obs: Observed, W, H, block: int = 65536):
    """(WH) at the observed entries, in CSR order: O(nnz·k), never forms WH."""
    out = np.empty(obs.nnz, dtype=np.result_type(W.dtype, H.dtype))
    Ht = np.ascontiguousarray(H.T)
    for s in range(0, obs.nnz, block):
        e = min(s + block, obs.nnz)
        np.einsum("ij,ij->i", W[obs.rows[s:e]], Ht[obs.indices[s:e]], out=out[s:e])
    return out


def elementwise_divergence(x, y, beta: float, floor: float):
    """d_β(x, y) for arrays of observed values x and predictions y (float64)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.maximum(np.asarray(y, dtype=np.float64), floor)
    if beta == 2.0:
        return 0.5 * (x - y) ** 2
    if beta == 1.0:
        out = y - x
        pos = x > 0
        out[pos] += x[pos] * np.log(x[pos] / y[pos])
        return out
    if beta == 0.0:
        q = x / y
        return q - np.log(q) - 1.0
    return (x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)) / (beta * (beta - 1))


def weighted_divergence(obs: Observed, W, H, beta: float = 2.0) -> float:
    """Σ over observed entries of M_ij · d_β(X_ij, (WH)_ij), as a float (never NaN)."""
    y = sampled_product(obs, W, H)
    scale = float(np.abs(obs.values).mean()) if obs.nnz else 1.0
    floor = float(np.finfo(y.dtype).eps) * max(scale, float(np.finfo(y.dtype).tiny))
    if beta == 2.0:
        floor = -np.inf
    d = elementwise_divergence(obs.values, y, beta, floor)
    res = float(np.dot(obs.weights.astype(np.float64), d))
    return res if math.isfinite(res) else float(np.finfo(np.float64).max)


# ----------------------------------------------------------------------- the fit path
def resolve_masked_solver(name: str, beta: float, penalties=()):
    """The masked solver class for ``name``: itself when it honours masks, else the masked
    variant registered for it (``masked_for``), else get_solver's error naming those that do."""
    from .solvers import SOLVERS, get_solver

    if name == "auto":
        name = "masked_als" if beta == 2.0 else "masked_mu"
    cls = SOLVERS.get(name)
    if cls is not None and not getattr(cls, "masks", False):
        variants = [n for n, c in sorted(SOLVERS.items())
                    if getattr(c, "masks", False) and name in getattr(c, "masked_for", ())]
        fitting = [n for n in variants if SOLVERS[n].supports_beta(beta)]
        if variants and not fitting:
            ok = sorted(n for n, c in SOLVERS.items()
                        if getattr(c, "masks", False) and c.supports_beta(beta))
            raise ValueError(
                f"solver {name!r} with a mask or missing values runs {variants}, which do not "
                f"handle beta_loss={beta!r}; masked solvers that do: {ok} (e.g. solver='mu')."
            )
        if fitting:
            name = fitting[0]
    return get_solver(name, beta=beta, penalties=penalties, sparse=True, masked=True)


def initialize_masked(obs: Observed, k: int, init, random_state):
    """Initial W, H from the observed entries only.

    'random': |N(0,1)|·√(mean of the observed values / k). The NNDSVD family runs on the
    sparse matrix of observations scaled by n·m/nnz (an unbiased estimate of the full matrix),
    so no dense n × m array is formed.
    """
    from sklearn.utils import check_random_state

    from .init import initialize, resolve_init

    n, m = obs.shape
    dtype = obs.values.dtype
    init = resolve_init(init, k, n, m)
    mean = float(np.mean(obs.values)) if obs.nnz else 1.0
    if init == "random" or obs.nnz == 0:
        rng = check_random_state(random_state)
        avg = math.sqrt((mean if mean > 0 else 1.0) / k)
        H = np.abs(avg * rng.standard_normal(size=(k, m))).astype(dtype)
        W = np.abs(avg * rng.standard_normal(size=(n, k))).astype(dtype)
        return W, H
    Xs = obs.csr(obs.values * dtype.type(n * m / obs.nnz))
    return initialize(Xs, k, init=init, random_state=random_state)


def fit_masked(est, X, obs: Observed, W=None, H=None, update_H: bool = True):
    """Fit the estimator ``est`` (an ``NMF``) to the observed entries; returns (W, H, n_iter).

    Uses the estimator's parameters (rank, init, solver, β, penalties, tol, limits, callback)
    and stores ``loss_curve_``, ``history_`` and ``stop_reason_`` on it, as the unmasked path.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state

    from . import _fit
    from .backends import get_backend
    from .penalties import sklearn_penalties
    from .solvers import Problem

    beta = est._beta_loss
    if beta <= 0 and obs.nnz and obs.values.min() <= 0:
        raise ValueError(
            "When beta_loss <= 0 and the observed entries contain zeros, the solver may "
            "diverge. Please add small values to X, or use a positive beta_loss."
        )
    penalties = sklearn_penalties(est.alpha_W, est.alpha_H, est.l1_ratio, *obs.shape)
    cls = resolve_masked_solver(est.solver, beta, penalties)
    if est.init == "custom" or not update_H:
        W, H = est._check_w_h(X, W, H, update_H)
        if not update_H:
            # a multiplicative update cannot leave zero: start from a flat positive W
            mean = float(np.mean(obs.values)) if obs.nnz else 1.0
            fill = math.sqrt((mean if mean > 0 else 1.0) / H.shape[0]) if cls.multiplicative else 0.0
            W = np.full_like(W, fill)
    else:
        if W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set  init='custom' to use"
                " them as initialization.",
                RuntimeWarning,
            )
        k = obs.shape[1] if est._n_components in (None, "auto") else est._n_components
        est._n_components = k
        W, H = initialize_masked(obs, k, est.init, est.random_state)
    pen_W = [p for p in penalties if p.factor == "W"]
    pen_H = [p for p in penalties if p.factor == "H"]
    # extreme data is fitted at unit scale, as in the unmasked path (nmfkit._fit.factorize):
    # d_β is homogeneous of degree β, so X/s from (W/√s, H/√s) is the same problem
    s = float(np.max(obs.values)) if obs.nnz else 0.0
    scaled = s > 0 and not (_fit._SCALE_RANGE[0] <= s <= _fit._SCALE_RANGE[1])
    if scaled:
        import dataclasses

        root_s, s_beta = math.sqrt(s), s**beta
        obs = dataclasses.replace(obs, values=obs.values * obs.values.dtype.type(1.0 / s))
        W = W * W.dtype.type(1.0 / root_s)
        H = H * H.dtype.type(1.0 / root_s)
        pen_W = _fit._rescaled_penalties(pen_W, root_s, s_beta)
        pen_H = _fit._rescaled_penalties(pen_H, root_s, s_beta)
    nx = get_backend(W)
    Xo = obs.csr()
    problem = Problem(
        X=Xo, Xt=None, W=W, H=H, beta=beta, nx=nx,
        penalties_W=pen_W,
        penalties_H=pen_H,
        update_W=True, update_H=update_H, rng=check_random_state(est.random_state),
        shuffle=est.shuffle, options=dict(est.solver_options or {}), M=obs,
    )
    result = _fit.run(
        cls(problem), tol=est.tol, max_iter=est.max_iter, max_time=est.max_time,
        callback=est.callback, verbose=est.verbose,
    )
    W, H = result.W, result.H
    if scaled:
        W = W * W.dtype.type(root_s)
        H = H * H.dtype.type(root_s)
        result.history["objective"] = [f * s_beta for f in result.history["objective"]]
    est.loss_curve_ = list(result.history["objective"])
    est.history_ = result.history
    est.stop_reason_ = result.stop_reason
    if result.stop_reason == "max_iter" and est.tol > 0:
        warnings.warn(
            f"Maximum number of iterations {est.max_iter} reached. Increase it to"
            " improve convergence.",
            ConvergenceWarning,
        )
    return W, H, result.n_iter


# ------------------------------------------------------------------ estimator entry points
def _validate_masked(est, X, reset: bool):
    from sklearn.utils.validation import validate_data

    X = validate_data(
        est, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan", reset=reset,
    )
    if sp.issparse(X) and est.missing_values != "unobserved" and np.isnan(X.data).any():
        _check_no_nan(X.data, "stored entries of a sparse X")
    return X


def _check_observed_non_negative(est, obs: Observed) -> None:
    if obs.nnz and obs.values.min() < 0:
        q = int(np.argmin(obs.values))
        raise ValueError(
            f"Negative values in data passed to {type(est).__name__} (input X): the smallest "
            f"observed value is {float(obs.values[q])!r} at row {int(obs.rows[q])}, column "
            f"{int(obs.indices[q])}. NMF needs non-negative data: clip or shift it."
        )
    if obs.nnz == 0:
        raise ValueError(
            "No observed entries: every entry of X is missing or has weight 0 in mask."
        )


def fit_transform_masked(est, X, mask=None, W=None, H=None):
    """``NMF.fit_transform`` when a mask or ``missing_values`` is given; returns W.

    Sets the estimator's fitted attributes; ``reconstruction_err_`` is
    √(2·Σ M_ij d_β(X_ij, (WH)_ij)) over the observed entries.
    """
    est._validate_params()
    X = _validate_masked(est, X, reset=True)
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    est._check_params(X)
    W, H, n_iter = fit_masked(est, X, obs, W=W, H=H)
    finals = [est.loss_curve_[-1]]
    if getattr(est, "n_init", 1) > 1:
        # restarts as in the unmasked path: run 0 is the n_init=1 fit, runs 1.. start from
        # init="random" with seeds drawn from random_state; the lowest final objective wins
        from sklearn.base import clone

        from ._restarts import restart_seeds

        for seed in restart_seeds(est.random_state, est.n_init - 1):
            run = clone(est).set_params(init="random", random_state=int(seed), n_init=1)
            run._check_params(X)
            Wr, Hr, nr = fit_masked(run, X, obs)
            finals.append(run.loss_curve_[-1])
            if finals[-1] < min(finals[:-1]):
                W, H, n_iter = Wr, Hr, nr
                for name in est._fitted_attributes():
                    setattr(est, name, getattr(run, name))
    est.reconstruction_err_ = math.sqrt(2.0 * max(weighted_divergence(obs, W, H, est._beta_loss), 0))
    est.n_components_ = H.shape[0]
    est.components_ = H
    est.n_iter_ = n_iter
    est.init_objectives_ = np.array(finals)
    return W


def transform_masked(est, X, mask=None):
    """``NMF.transform`` on data with missing entries: W for new rows, H fixed."""
    X = _validate_masked(est, X, reset=False)
    obs = observed_entries(X, mask=mask, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    fitted = {k: getattr(est, k) for k in est._fitted_attributes() if hasattr(est, k)}
    try:
        est._check_params(X)
        W, _, _ = fit_masked(est, X, obs, H=est.components_, update_H=False)
    finally:
        for k, v in fitted.items():
            setattr(est, k, v)
    return W


def factorization_masked(est, X, W=None, H=None, update_H: bool = True):
    """``non_negative_factorization(..., missing_values=...)``: (W, H, n_iter) on the
    observed entries (``update_H=False``: W for the given H)."""
    if update_H:
        W = fit_transform_masked(est, X, W=W, H=H)
        return W, est.components_, est.n_iter_
    est._validate_params()
    X = _validate_masked(est, X, reset=True)
    obs = observed_entries(X, missing_values=est.missing_values)
    _check_observed_non_negative(est, obs)
    est._check_params(X)
    return fit_masked(est, X, obs, W=W, H=H, update_H=False)
