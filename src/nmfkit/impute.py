"""NMFImputer: fill missing values with a non-negative low-rank reconstruction.

A scikit-learn transformer in the mould of ``sklearn.impute.SimpleImputer`` /
``IterativeImputer``: ``fit`` learns H (n_components × n_features) from the observed entries
only (masked NMF, :mod:`nmfkit.masked`); ``transform`` solves each row's coefficients from its
own observed entries, H fixed, and replaces the missing entries by (WH)_ij. Observed entries
are returned unchanged. Usable in a ``Pipeline`` (e.g. before a classifier).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._estimator import NMF

__all__ = ["NMFImputer"]


class NMFImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing values of non-negative data with an NMF fitted to the observed entries.

    Parameters
    ----------
    n_components : int, default=5
        Rank of the model.
    missing_values : float, default=np.nan
        The placeholder of a missing entry (NaN, or a number such as -1).
    solver : {"cd", "mu"} or a masked solver name, default="cd"
        "cd" runs masked ALS (Frobenius); "mu" masked multiplicative updates (any β).
    beta_loss : float or str, default="frobenius"
    alpha_W, alpha_H, l1_ratio : regularisation, as in :class:`nmfkit.NMF`.
    init : str or None, default=None
    max_iter : int, default=300
    tol : float, default=1e-4
    random_state : int, RandomState or None
    solver_options : dict or None

    Attributes
    ----------
    nmf_ : the fitted :class:`nmfkit.NMF`.
    n_iter_ : int, iterations of the fit.
    components_ : ndarray (n_components, n_features), H.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names.

    Notes
    -----
    A feature with no observed value at fit time has no information: its column of H is set
    to 0 and it is imputed as 0; a row with no observed value is imputed as 0 too.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "missing_values": [Real],
        "solver": [str],
        "beta_loss": [StrOptions({"frobenius", "kullback-leibler", "itakura-saito"}), Real],
        "alpha_W": [Interval(Real, 0, None, closed="left")],
        "alpha_H": [Interval(Real, 0, None, closed="left"), StrOptions({"same"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "init": [StrOptions({"random", "nndsvd", "nndsvda", "nndsvdar"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "solver_options": [dict, None],
    }

    def __init__(self, n_components=5, *, missing_values=np.nan, solver="cd",
                 beta_loss="frobenius", alpha_W=0.0, alpha_H="same", l1_ratio=0.0, init=None,
                 max_iter=300, tol=1e-4, random_state=None, solver_options=None):
        self.n_components = n_components
        self.missing_values = missing_values
        self.solver = solver
        self.beta_loss = beta_loss
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.solver_options = solver_options

    def _nmf(self) -> NMF:
        return NMF(
            self.n_components, missing_values=self.missing_values, solver=self.solver,
            beta_loss=self.beta_loss, alpha_W=self.alpha_W, alpha_H=self.alpha_H,
            l1_ratio=self.l1_ratio, init=self.init, max_iter=self.max_iter, tol=self.tol,
            random_state=self.random_state, solver_options=self.solver_options,
        )

    def _validate(self, X, reset: bool):
        if sp.issparse(X):
            raise TypeError(
                "NMFImputer needs a dense X (its output is dense). For a sparse matrix of "
                "ratings use nmfkit.NMF(missing_values='unobserved') or "
                "nmfkit.recommend.RatingsNMF and predict the entries you need."
            )
        return validate_data(self, X, dtype=[np.float64, np.float32],
                             ensure_all_finite="allow-nan", reset=reset)

    def _missing(self, X):
        if isinstance(self.missing_values, float) and np.isnan(self.missing_values):
            return np.isnan(X)
        return X == self.missing_values

    def fit(self, X, y=None):
        """Fit the NMF to the observed entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative data; entries equal to ``missing_values`` (NaN by default) are
            missing and not fitted.
        y : Ignored
            Not used, present for scikit-learn API consistency.

        Returns
        -------
        self : object
            The fitted imputer (``nmf_``, ``components_``, ``n_iter_``).
        """
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, then return X with its missing entries replaced by the reconstruction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Non-negative data with missing entries (``missing_values``).
        y : Ignored
            Not used, present for scikit-learn API consistency.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            X with every missing entry replaced by (WH)_ij; observed entries unchanged, X's
            dtype.
        """
        self._validate_params()
        X = self._validate(X, reset=True)
        nmf = self._nmf()
        W = nmf.fit_transform(X)
        empty = self._missing(X).all(axis=0)
        if empty.any():
            nmf.components_[:, empty] = 0
        self.nmf_ = nmf
        self.n_iter_ = nmf.n_iter_
        return self._fill(X, W)

    def transform(self, X):
        """X with its missing entries replaced by (WH)_ij, H fixed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New rows, with the columns seen in :meth:`fit`; W is solved for each row from its
            observed entries.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            X with every missing entry replaced by (WH)_ij; observed entries unchanged, X's
            dtype.
        """
        check_is_fitted(self, "nmf_")
        X = self._validate(X, reset=False)
        W = self.nmf_.transform(X)
        return self._fill(X, W)

    def _fill(self, X, W):
        missing = self._missing(X)
        out = np.array(X, copy=True)
        if missing.any():
            rows = np.flatnonzero(missing.any(axis=1))
            R = (W[rows] @ self.nmf_.components_).astype(X.dtype, copy=False)
            sub = out[rows]
            sub[missing[rows]] = R[missing[rows]]
            out[rows] = sub
        return out

    @property
    def components_(self):
        check_is_fitted(self, "nmf_")
        return self.nmf_.components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
