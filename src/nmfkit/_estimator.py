"""The scikit-learn estimator ``NMF`` and the function ``non_negative_factorization``.

Both share one ``_fit_transform``, so they cannot drift. The estimator validates its input and
parameters; the fit itself — on numpy, scipy.sparse or torch — is the one of
:mod:`nmfkit._engine` (observed entries: :mod:`nmfkit._masked_fit`).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _engine, _topics
from ._validation import (
    check_finite_params,
    check_non_negative,
    check_rank_size,
    split_masked_array,
    validate_input,
)
from .backends import get_backend, remembered_statistics
from .losses import beta_loss_to_float
from .model_io import savable, save
from ._unit_scale import error_on_data_scale
from .penalties import sklearn_penalties
from .solvers import SOLVERS
from .solvers._auto import resolve_solver

__all__ = ["NMF", "non_negative_factorization"]

_MU_NNDSVD_WARNING = (
    "The multiplicative update ('mu') solver cannot update zeros present in the "
    "initialization, and so leads to poorer results when used jointly with init='nndsvd'. "
    "You may try init='nndsvda' or init='nndsvdar' instead."
)


class _FactorizationMixin:
    """What NMF and MiniBatchNMF share: ``fit``, ``inverse_transform``, the tags, the
    parameter checks and the rank/loss part of ``_check_params``."""

    def fit(self, X, y=None, **params):
        """Learn the factorisation X ≈ W H.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data (numpy, scipy.sparse CSR/CSC, or a torch tensor).
        y : Ignored
            Not used, present for scikit-learn API consistency.
        **params : dict
            ``W``, ``H`` (initial guesses for ``init="custom"``) and ``mask``, passed to
            :meth:`fit_transform`.

        Returns
        -------
        self : object
            The fitted estimator (``components_``, ``n_iter_``, ``reconstruction_err_``, ...).
        """
        self.fit_transform(X, **params)
        return self

    def inverse_transform(self, X):
        """Map coefficients back to data space: W @ components_.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Coefficients W, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_approx : ndarray of shape (n_samples, n_features)
            The reconstruction W H.
        """
        check_is_fitted(self)
        k = self.components_.shape[0]
        shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
        if len(shape) != 2 or shape[1] != k:
            raise ValueError(
                f"inverse_transform takes coefficients W of shape (n_samples, {k}) (the "
                f"model has {k} components); got shape {shape}. Pass the output of "
                "transform.")
        return X @ self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate_params(self):
        """scikit-learn's declarative checks, then finiteness and range of every number."""
        super()._validate_params()
        check_finite_params(self)

    def _check_rank_and_loss(self, X):
        """``_n_components`` (None: n_features), checked against X, and ``_beta_loss``."""
        self._n_components = self.n_components
        if self._n_components is None:
            self._n_components = X.shape[1]
        check_rank_size(self._n_components, X.shape, X.dtype.itemsize, type(self).__name__)
        self._beta_loss = beta_loss_to_float(self.beta_loss)


@savable
class NMF(_FactorizationMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Non-negative Matrix Factorization: find W, H ≥ 0 with X ≈ WH.

    A drop-in replacement for :class:`sklearn.decomposition.NMF`: the same parameters,
    defaults, methods, attributes, warnings and errors. The objective is

    .. math::

        L(W, H) = D_\beta(X \| WH)
            + \alpha_W \rho\, m \|W\|_1 + \tfrac12 \alpha_W (1-\rho)\, m \|W\|_F^2
            + \alpha_H \rho\, n \|H\|_1 + \tfrac12 \alpha_H (1-\rho)\, n \|H\|_F^2

    with n = n_samples, m = n_features, ρ = ``l1_ratio`` and D_β the β-divergence
    (½‖·‖²_F for β = 2).

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Rank k. None: n_features. "auto": from the shape of a custom W/H, else n_features.
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"} or None
        Initialisation (see :func:`nmfkit.init.initialize`). None: "nndsvda" when
        k ≤ min(n_samples, n_features), else "random".
    solver : str, default="auto"
        A registered solver or "auto": "cd" (HALS for Frobenius, scikit-learn's iteration and
        stopping rule; Newton coordinate descent for KL), "anls" (exact alternating NNLS,
        block principal pivoting), "pgd" (accelerated projected gradient), "mu"
        (multiplicative updates, any β, scikit-learn's), and those of the extensions. "auto"
        (the default; scikit-learn's is "cd") picks per loss, input and penalties from the
        measurements in docs/benchmarks.md (``nmfkit.solvers._auto``): accelerated HALS for
        Frobenius, which reaches scikit-learn's result sooner. docs/solvers.md describes each;
        ``nmfkit.solvers.solver_table()`` lists what each supports.
    beta_loss : float or {"frobenius", "kullback-leibler", "itakura-saito"}
    tol : float ≥ 0, default=1e-4
        Stop when the relative decrease of √(2·objective) over 10 iterations, divided by its
        initial value, falls below tol; "cd" (Frobenius) stops as scikit-learn's CD, when the
        projected-gradient violation falls below tol times the first iteration's, and so does
        the default "auto" for Frobenius (the violation measured where each accelerated
        half-step starts; the table in docs/solvers.md). 0 runs ``max_iter`` iterations.
    max_iter : int ≥ 1, default=200
    random_state : int, RandomState or None
    alpha_W, alpha_H, l1_ratio : regularisation, scaled as in scikit-learn.
    verbose : int, default=0
        Log the objective every 10 iterations (logger "nmfkit", to stderr).
    shuffle : bool, default=False
        Randomise the order of the components in the coordinate-descent sweeps (``cd``; with
        a mask or missing values ``masked_als``'s per-row descent and ``masked_cd``; the
        robust losses' HALS; drawn from ``random_state``). Solvers without coordinates
        (``mu``, ``anls``, ``pgd``) have no order to shuffle, as scikit-learn's ``mu``.
    max_time : float or None, default=None
        Wall-clock limit of the fit in seconds (nmfkit extension).
    callback : callable or None, default=None
        Called after each iteration with an :class:`nmfkit._fit.IterationInfo`; returning
        True stops the fit (nmfkit extension).
    solver_options : dict or None
        Solver-specific options (nmfkit extension; docs/solvers.md). A key that the solver
        which runs does not read is refused with an error naming its options.
    n_init : int ≥ 1, default=1
        Number of fits from different starts; the one with the lowest final objective is kept
        (nmfkit extension). Run 0 is the fit ``n_init=1`` would do; the others start from
        ``init="random"`` with seeds drawn from ``random_state``. 1 is scikit-learn's behaviour.
    n_jobs : int or None, default=None
        joblib workers (threads) for the ``n_init`` runs; None runs them one after another.
        With a single run (``n_init=1``, and in ``transform``) it caps the threads of the
        BLAS/OpenMP pools (threadpoolctl) and of numba kernels instead; None leaves them
        as they are, −1 uses all cores (see :func:`nmfkit._threads.thread_limits`).
        With ``n_init > 1`` and n_jobs > 1, the runs share n_jobs threads, one BLAS thread each.

    missing_values : None, float (e.g. np.nan; "nan" is read as NaN) or "unobserved"
        What marks a missing entry (nmfkit extension; see :mod:`nmfkit.masked`): NaN (or the
        given number) in a dense X, or "unobserved" for a sparse X whose absent entries are
        unknown. Missing entries are left out of the objective. None: NaN is an error, as in
        scikit-learn. ``fit(X, mask=M)`` gives explicit observation weights instead.
    backend : None, "numpy" or "torch", default=None
        Array framework of the fit (nmfkit extension). None: read from X (a torch tensor
        selects torch; W and H then come back as tensors on X's device, in X's dtype).
        "torch" with numpy input moves X to ``device`` once and returns numpy. Needs
        ``pip install "nmfkit[torch]"``. Solvers on torch: "mu" (every β), "cd" (Frobenius
        and KL), "anls" and "pgd" (Frobenius); masks / missing values with "mu".
        ``solver_options={"allow_tf32": True}`` lets float32 products use TF32 (CUDA).
    device : None, str or torch.device, default=None
        Torch device for ``backend="torch"`` ("cuda", "cuda:1", "cpu"); None: X's device.
    penalties : list of :class:`nmfkit.penalties.Penalty` or None, default=None
        Extra penalties composed with ``alpha_W``/``alpha_H`` (nmfkit extension; see
        docs/extensions.md): ``L1(λ, "W")``, ``L2(λ, "H")``, ``Graph(λ, "H", affinity=B)``...
        A solver that cannot honour one says so and names those that can.
    graph : None, {"binary", "heat", "cosine"} or array/sparse (n_samples, n_samples)
        Graph-regularised NMF (GNMF, Cai et al. 2011): adds ½·graph_weight·tr(WᵀLW), L the
        Laplacian of this sample affinity; a string builds a symmetric k-NN graph of X with
        that weighting (:func:`nmfkit.graph.knn_affinity`). Not used by ``transform``.
    graph_weight : float ≥ 0, default=0.0
        λ of the graph penalty (Cai et al.'s λ); 0 is plain NMF.
    graph_neighbors : int ≥ 1, default=5
        k of the k-NN graph when ``graph`` is a string.
    smoothness : float in [0, 1], default=0.0
        nsNMF's θ (Pascual-Montano et al. 2006): X ≈ W S H, S = (1−θ)I + (θ/k)11ᵀ. Then
        ``components_`` is S H (so ``inverse_transform(transform(X))`` uses the smoothed
        model) and the raw H is ``components_unsmoothed_``. 0 is plain NMF.
    frozen_components : array (n_frozen, n_features) or None, default=None
        Known components kept fixed: they are the first n_frozen rows of ``components_``,
        bit-identical after the fit; the other n_components − n_frozen rows are learned.
        Solvers "mu" and "cd".
    sparseness_W, sparseness_H : float in [0, 1] or None, default=None
        Hoyer's sparseness constraint (Hoyer 2004) on each column of W / each row of H;
        needs ``solver="nmfsc"``.
    loss : None or {"huber", "cauchy", "l21"}, default=None
        A robust loss in place of the Frobenius one (nmfkit extension; docs/robust.md,
        :mod:`nmfkit.robust`): Huber and Cauchy per entry, "l21" Σ_i ‖x_i − w_i H‖ per sample.
        Fitted by majorise–minimise (each iteration cannot increase it) with weighted HALS
        (``solver="auto"``/``"cd"``) or multiplicative updates (``"mu"``). None: the
        β-divergence of ``beta_loss``, exactly as without this parameter.
    loss_scale : float > 0 or None, default=None
        Huber's δ or Cauchy's c, on the data's scale. None: from the residuals of the start,
        1.345 (Huber) or 2.385 (Cauchy) times 1.4826·MAD; the value used is ``loss_scale_``.
    outliers : None, "sparse" or "groups", default=None
        "sparse": X ≈ WH + S with S ≥ 0 sparse, min ½‖X − WH − S‖² + λ‖S‖₁ (S is
        ``outliers_``), for corruption above the model (spikes, saturated pixels).
        "groups": X ≈ WH + S with S signed and group-sparse, min ½‖X − WH − S‖² +
        λ Σ_i Σ_g √|g| ‖S_{i,g}‖₂ over the groups of ``outlier_groups`` (image tiles,
        spectral windows, gene sets), for structured corruption of whole regions of a
        sample (an occluding block): S is the block soft-threshold of the residual.
    outlier_penalty : float > 0 or None, default=None
        λ of ``outliers="sparse"`` or ``"groups"`` (per √feature), on the data's scale.
        None: 1.345 · 1.4826·MAD of the residuals after the robust pilot.
    outlier_groups : array-like of int (n_features,) or None, default=None
        With ``outliers="groups"``: the group id (≥ 0) of every feature, e.g.
        :func:`nmfkit.robust.image_tiles` ``((112, 92), (8, 8))``.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features), the factor H.
    n_components_ : int
    reconstruction_err_ : float, ‖X − WH‖_F for Frobenius, else √(2·D_β(X‖WH)).
    explained_variance_ : float, 1 − ‖X − WH‖²_F / ‖X − 1μᵀ‖²_F (μ the column means) of the
        fitted data; set by fits without a mask or missing values (nmfkit extension).
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names.
    feature_names_ : list of str, the feature names (e.g. a vocabulary) kept in a model file
        and restored by :func:`nmfkit.load`; :meth:`top_features` uses them.
    loss_curve_ : list of float, the objective (loss + penalties) at each recorded iteration.
    history_ : dict with "n_iter", "objective" and "time" lists.
    stop_reason_ : str, why the fit stopped ("tol", "max_iter", "max_time", "callback",
        "interrupted" or "exact").
    init_objectives_ : ndarray (n_init,), the final objective of every run; the model keeps
        the run with the lowest (nmfkit extension).
    outlier_scores_ : ndarray (n_samples,), robust fits only: per sample, the mean over its
        (observed) entries of the entry scores below; for "l21", max(0, 1 − median_i ‖r_i‖ /
        ‖r_i‖) (0: an ordinary sample; 0.5: a residual twice the median's).
    outlier_entry_scores_ : ndarray (n_samples, n_features) or None, robust fits only: per
        entry, 1 − ω = (|r| − |ψ(r)|)/|r| ∈ [0, 1), the share of the residual r = X − WH that
        the loss did not fit as least squares (0: ordinary; near 1: ignored; 0 where not
        observed; a tensor on X's device for tensor input). None for "l21", which weighs
        whole samples.
    outliers_ : ndarray (n_samples, n_features) or None, the fitted S of ``outliers="sparse"``
        or ``"groups"`` (signed for "groups"; 0 where not observed).
    loss_scale_ : float or None, the δ, c or λ used (None for "l21").
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None, StrOptions({"auto"})],
        "init": [StrOptions({"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}), None],
        "solver": [StrOptions(set(SOLVERS) | {"auto"})],
        "beta_loss": [StrOptions({"frobenius", "kullback-leibler", "itakura-saito"}), Real],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "alpha_W": [Interval(Real, 0, None, closed="left")],
        "alpha_H": [Interval(Real, 0, None, closed="left"), StrOptions({"same"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "verbose": ["verbose"],
        "shuffle": ["boolean"],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "callback": [callable, None],
        "solver_options": [dict, None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "missing_values": [None, StrOptions({"unobserved", "nan"}), Real],
        "backend": [StrOptions({"numpy", "torch"}), None],
        "device": "no_validation",
        "penalties": [list, None],
        "graph": [StrOptions({"binary", "heat", "cosine"}), "array-like", "sparse matrix", None],
        "graph_weight": [Interval(Real, 0, None, closed="left")],
        "graph_neighbors": [Interval(Integral, 1, None, closed="left")],
        "smoothness": [Interval(Real, 0, 1, closed="both")],
        "frozen_components": ["array-like", None],
        "sparseness_W": [Interval(Real, 0, 1, closed="both"), None],
        "sparseness_H": [Interval(Real, 0, 1, closed="both"), None],
        "loss": [StrOptions({"huber", "cauchy", "l21"}), None],
        "loss_scale": [Interval(Real, 0, None, closed="neither"), None],
        "outliers": [StrOptions({"sparse", "groups"}), None],
        "outlier_penalty": [Interval(Real, 0, None, closed="neither"), None],
        "outlier_groups": ["array-like", None],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        solver="auto",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        verbose=0,
        shuffle=False,
        max_time=None,
        callback=None,
        solver_options=None,
        n_init=1,
        n_jobs=None,
        missing_values=None,
        backend=None,
        device=None,
        penalties=None,
        graph=None,
        graph_weight=0.0,
        graph_neighbors=5,
        smoothness=0.0,
        frozen_components=None,
        sparseness_W=None,
        sparseness_H=None,
        loss=None,
        loss_scale=None,
        outliers=None,
        outlier_penalty=None,
        outlier_groups=None,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.verbose = verbose
        self.shuffle = shuffle
        self.max_time = max_time
        self.callback = callback
        self.solver_options = solver_options
        self.n_init = n_init
        self.n_jobs = n_jobs
        self.missing_values = missing_values
        self.backend = backend
        self.device = device
        self.penalties = penalties
        self.graph = graph
        self.graph_weight = graph_weight
        self.graph_neighbors = graph_neighbors
        self.smoothness = smoothness
        self.frozen_components = frozen_components
        self.sparseness_W = sparseness_W
        self.sparseness_H = sparseness_H
        self.loss = loss
        self.loss_scale = loss_scale
        self.outliers = outliers
        self.outlier_penalty = outlier_penalty
        self.outlier_groups = outlier_groups

    # ------------------------------------------------------------------ public API
    def fit_transform(self, X, y=None, W=None, H=None, mask=None):
        """Learn the factorisation X ≈ W H and return W.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data (numpy, scipy.sparse CSR/CSC, or a torch tensor; NaN only with
            ``missing_values=np.nan``).
        y : Ignored
            Not used, present for scikit-learn API consistency.
        W : array-like of shape (n_samples, n_components), default=None
            Initial guess for W, used when ``init="custom"``.
        H : array-like of shape (n_components, n_features), default=None
            Initial guess for H, used when ``init="custom"``.
        mask : {array-like, sparse matrix} of X's shape, default=None
            Boolean or non-negative weights: only the entries with weight > 0 are fitted,
            each with its weight (see :mod:`nmfkit.masked`). None: every entry.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            The coefficients of each sample (a tensor on X's device for tensor input); the
            components are in ``components_``.
        """
        X, mask = split_masked_array(X, mask, type(self).__name__)
        if mask is not None or self.missing_values is not None:  # the observed entries
            from ._engine import fit_transform_observed
            from ._masked_fit import fit_transform_masked

            fit = fit_transform_observed if self._is_robust() else fit_transform_masked
            return fit(self, X, mask=mask, W=W, H=H)
        self._validate_params()
        X = validate_input(self, X, reset=True)
        with remembered_statistics(X):  # X's min, max and ‖X‖²: one pass each in the fit
            W, H, n_iter = self._fit_transform(X, W=W, H=H)
            self.reconstruction_err_ = error_on_data_scale(
                X, W, H, self._beta_loss,
                lambda X_, W_, H_: _engine.fitted_divergence(self, X_, W_, H_), get_backend(X))
            self.explained_variance_ = _topics.fitted_explained_variance(
                X, W, H, self.reconstruction_err_, self._beta_loss)
        self.n_components_ = H.shape[0]
        self.components_ = H
        self.n_iter_ = n_iter
        return W

    def transform(self, X):
        """The coefficients W of new data for the learned components (H fixed).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data with the columns the model was fitted on.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            The coefficients, in X's dtype (a tensor on X's device for tensor input).
        """
        check_is_fitted(self)
        X, _ = split_masked_array(X, None, f"{type(self).__name__}.transform", allow_mask=False)
        if self.missing_values is not None:
            from ._engine import transform_observed
            from ._masked_fit import transform_masked

            return (transform_observed if self._is_robust() else transform_masked)(self, X)
        X = validate_input(self, X, reset=False)
        fitted = {k: getattr(self, k) for k in self._fitted_attributes() if hasattr(self, k)}
        try:
            with remembered_statistics(X):  # the checks and the fit read X's min/max once
                check_non_negative(X, f"{type(self).__name__} (input X)")  # on X's backend
                H = self.components_
                if isinstance(H, np.ndarray) and H.dtype != X.dtype:
                    H = H.astype(X.dtype)  # the model's parts in the precision of the new data
                W, *_ = self._fit_transform(X, H=H, update_H=False)
        finally:
            # transform must not change what fit learned
            for k, v in fitted.items():
                setattr(self, k, v)
        return W

    def top_features(self, n=10, feature_names=None):
        """The ``n`` heaviest features of each component (for text: the top words).

        Parameters
        ----------
        n : int, default=10
            Features per component (those of weight 0 are left out).
        feature_names : sequence of str of length n_features, optional
            Default: ``feature_names_in_`` (a DataFrame's columns), else ``feature_names_``
            (the names kept in a model file), else ``feature_<j>``.

        Returns
        -------
        :class:`nmfkit._topics.TopFeatures`
            A table with columns component, rank (1 = heaviest), feature, weight (the entry of
            ``components_``); ``.words(c)``, ``.to_csv(path)``, ``.to_dict()``,
            ``.to_pandas()``.
        """
        return _topics.top_features_of(self, n, feature_names)

    def save(self, path, *, feature_names=None, metadata=None):
        """Write the fitted model to a safe ``.npz`` file; read it with :func:`nmfkit.load`.

        Arrays are stored with ``allow_pickle=False`` and the parameters as JSON metadata, so
        loading executes nothing (see :func:`nmfkit.model_io.save`).

        Parameters
        ----------
        path : str or path-like
            The file to write (``.npz`` is appended when missing).
        feature_names : sequence of str of length n_features, default=None
            Column labels kept in the file (default: ``feature_names_in_`` when fitted on a
            DataFrame); :meth:`top_features` of the loaded model uses them.
        metadata : dict, default=None
            JSON-serialisable extras kept in the file (e.g. ``{"image_shape": [8, 8]}``).

        Returns
        -------
        path : pathlib.Path
            The path written.
        """
        return save(self, path, feature_names=feature_names, metadata=metadata)

    # ------------------------------------------------------------------ internals
    def _is_robust(self) -> bool:
        """A robust loss or sparse outliers in place of the β-divergence alone."""
        return self.loss is not None or self.outliers is not None

    @staticmethod
    def _fitted_attributes():
        return ("loss_curve_", "history_", "stop_reason_")

    def _check_params(self, X):
        self._check_rank_and_loss(X)
        self._solver = self._resolve_solver(X)
        if self._solver == "mu" and self.init == "nndsvd":
            warnings.warn(_MU_NNDSVD_WARNING, UserWarning)

    def _resolve_solver(self, X, penalties=None):
        """The solver name, with "auto" resolved (nmfkit.solvers._auto)."""
        if self.solver != "auto":
            return self.solver
        if penalties is None:
            penalties = sklearn_penalties(
                self.alpha_W, self.alpha_H, self.l1_ratio, X.shape[0], X.shape[1]
            )
        return resolve_solver(
            self._beta_loss, sparse=sp.issparse(X), n_components=self._n_components,
            penalties=penalties,
        )

    def _check_w_h(self, X, W, H, update_H):
        """Validate a custom W/H or a fixed H, or initialise (W, H) from X (numpy/scipy X;
        MiniBatchNMF starts this way too)."""
        from . import _engine

        return _engine.start(self, X, W, H, update_H)

    def _fit_transform(self, X, y=None, W=None, H=None, update_H=True):
        """Fit from validated X; returns (W, H, n_iter). Shared with the public function:
        both are the one fit of nmfkit._engine, on every backend."""
        from . import _engine

        return _engine.fit(self, X, W=W, H=H, update_H=update_H)


def non_negative_factorization(
    X,
    W=None,
    H=None,
    n_components="auto",
    *,
    init=None,
    update_H=True,
    solver="auto",
    beta_loss="frobenius",
    tol=1e-4,
    max_iter=200,
    alpha_W=0.0,
    alpha_H="same",
    l1_ratio=0.0,
    random_state=None,
    verbose=0,
    shuffle=False,
    **nmfkit_params,
):
    """Compute W, H ≥ 0 with X ≈ WH; returns (W, H, n_iter).

    The same signature and meaning as :func:`sklearn.decomposition.non_negative_factorization`;
    further keyword arguments (``max_time``, ``callback``, ``solver_options``) are the
    :class:`NMF` extensions. With ``update_H=False`` H is fixed and only W is solved for.
    """
    est = NMF(
        n_components=n_components,
        init=init,
        solver=solver,
        beta_loss=beta_loss,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        alpha_W=alpha_W,
        alpha_H=alpha_H,
        l1_ratio=l1_ratio,
        verbose=verbose,
        shuffle=shuffle,
        **nmfkit_params,
    )
    est._validate_params()
    X, _ = split_masked_array(X, None, "non_negative_factorization", allow_mask=False)
    if est.missing_values is not None and est._is_robust():
        from ._engine import fit_transform_observed

        if not update_H:
            raise ValueError("non_negative_factorization with a robust loss and missing_values "
                             "fits W and H (update_H=True); for W of a fixed H use "
                             "NMF(...).fit(X_train).transform(X).")
        W = fit_transform_observed(est, X, W=W, H=H)
        return W, est.components_, est.n_iter_
    if est.missing_values is not None:  # fit the observed entries only (nmfkit.masked)
        from ._masked_fit import factorization_masked

        return factorization_masked(est, X, W=W, H=H, update_H=update_H)
    X = validate_input(est, X, reset=True, estimator_checks=False)
    W, H, n_iter = est._fit_transform(X, W=W, H=H, update_H=update_H)
    return W, H, n_iter
