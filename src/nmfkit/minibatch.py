"""Online NMF: ``MiniBatchNMF``, a drop-in for scikit-learn's, with ``partial_fit``.

The algorithm is scikit-learn's (Lefèvre, Bach & Févotte 2011, "Online algorithms for NMF
with the Itakura-Saito divergence"; Févotte & Idier 2011 for the β exponents): the data are
visited in mini-batches of ``batch_size`` rows; for each batch

1. the batch's coefficients W_b are updated by one multiplicative step (or solved from scratch
   with ``fresh_restarts``), H fixed;
2. H is updated from running sums of the MU numerator and denominator,
   A ← ρA + (∇⁻_H ⊙ H^(1/γ)), B ← ρB + ∇⁺_H, H = (A / B)^γ, with ρ = forget_factor^(batch/n).

The per-batch arithmetic is nmfkit's multiplicative-update solver (``solvers.mu``) applied to
the batch: the same quotients, penalties and dtype-aware safeguards as ``NMF(solver="mu")``.

``partial_fit(X_b)`` semantics (scikit-learn's): the first call initialises H (from ``init``,
or the given H with ``init="custom"``) and the accumulators A = H, B = 1, and fixes
ρ = forget_factor^(min(batch_size, n₁)/n₁), n₁ the number of rows of that first call (so
ρ = forget_factor unless ``batch_size`` < n₁). Every call then performs exactly one mini-batch
step on all the rows it is given: W_b solved from scratch (at most ``fresh_restarts_max_iter``
MU iterations from a constant, H fixed), then the A, B, H update above. ``n_steps_`` counts the
calls. Hence calling ``partial_fit`` on a sequence of batches, in any order, equals one pass
of ``fit(fresh_restarts=True, forget_factor=forget_factor^(n/b))`` over the rows of X
concatenated in that order with ``batch_size=b``.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real

from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._engine import fitted_divergence
from ._estimator import NMF, _FactorizationMixin
from ._extensions import apply_frozen
from ._minibatch_masked import masked_solve_W
from ._minibatch_steps import (
    backend,
    check_zeros,
    init_factors,
    mu_accumulate,
    place,
    solve_W,
    step,
    unit_scale,
    validate_X,
)
from ._minibatch_loop import run_batches
from ._unit_scale import UnitScale
from ._validation import MAX_ABS_VALUE, check_zeros_for_beta
from .masked import weighted_divergence
from .model_io import savable
from .solvers.mu import gamma_exponent

__all__ = ["MiniBatchNMF"]

def _at_scale(scale, X, obs, nx):
    """X and its observed entries divided by the fit's scale (themselves at scale 1)."""
    if not scale.active:
        return X, obs
    if obs is not None:
        obs = dataclasses.replace(obs, values=scale.values(obs.values))
    return scale.data(X, nx), obs


def _check_batch_scale(scale, X, obs, nx) -> None:
    """Refuse a batch that the scale fixed by the first batch cannot hold."""
    top = (float(obs.values.max()) if obs.nnz else 0.0) if obs is not None else nx.max(X)
    ratio = top / scale.s
    if ratio > MAX_ABS_VALUE:
        raise ValueError(
            f"this batch's largest value {top:.3g} is {ratio:.3g} at the scale fixed by the "
            "first partial_fit call, where the objective overflows float64: every batch is "
            "fitted at that scale, so batches must be of comparable magnitude; divide them "
            "all by one common constant."
        )


@savable
class MiniBatchNMF(_FactorizationMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
    r"""Mini-batch (online) NMF: X ≈ WH with W, H ≥ 0, learned from batches of rows.

    A drop-in replacement for :class:`sklearn.decomposition.MiniBatchNMF`: the same
    parameters, defaults, attributes and methods (``fit``, ``fit_transform``,
    ``partial_fit``, ``transform``, ``inverse_transform``). The objective is the one of
    :class:`nmfkit.NMF`:

    .. math::

        D_\beta(X \| WH) + \alpha_W \rho m \|W\|_1 + \tfrac12\alpha_W(1-\rho) m\|W\|_F^2
        + \alpha_H \rho n \|H\|_1 + \tfrac12 \alpha_H (1-\rho) n \|H\|_F^2

    where, as in scikit-learn, n is the number of rows of the current batch.

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"} or None
    batch_size : int ≥ 1, default=1024
        Rows per mini-batch.
    beta_loss : float or {"frobenius", "kullback-leibler", "itakura-saito"}
    tol : float ≥ 0, default=1e-4
        Stop when ‖H − H_prev‖_F / ‖H‖_F ≤ tol between two steps. 0 disables it.
    max_no_improvement : int or None, default=10
        Stop after this many steps without improvement of the exponentially weighted
        average of the batch objective. None disables it.
    max_iter : int ≥ 1, default=200
        Passes over the data.
    alpha_W, alpha_H, l1_ratio : regularisation, scaled as in scikit-learn.
    forget_factor : float in [0, 1], default=0.7
        Weight of past information after one pass over the data (1: equal weights).
    fresh_restarts : bool, default=False
        Solve W_b completely at each step instead of one MU step from the previous W_b.
    fresh_restarts_max_iter : int ≥ 1, default=30
    transform_max_iter : int or None, default=None (= max_iter)
        MU iterations of ``transform`` (and of the final W with ``fresh_restarts``).
    random_state : int, RandomState or None
    verbose : int, default=0
        Log each step's batch cost (logger "nmfkit", INFO level; never printed).
    solver : {"mu", "cd"}, default="mu"
        nmfkit extension. "mu": scikit-learn's online multiplicative updates (any β).
        "cd": online HALS for the Frobenius loss — W_b by exact coordinate descent, H by one
        HALS sweep on the forgetful sums Σρ W_bᵀW_b and Σρ W_bᵀX_b (Mairal et al. 2010's
        surrogate); it converges much faster than MU on data with exact zeros.
        "anls": the same online scheme with both NNLS problems (W_b, and H on the sums)
        solved exactly by block principal pivoting (``nmfkit.nnls.nnls_bpp``), Frobenius.
    frozen_components : array-like (f, n_features) or None
        Known components kept fixed in H's first rows.
    penalties : list of :class:`nmfkit.penalties.Penalty` or None
        Extra penalties (L1, L2 on W or H; ``Graph(factor="H")`` between features), added to
        each batch's objective with their weights as given: D(X_b‖W_b H) + pen(W_b) + pen(H).
        ``Graph(factor="W")`` is refused (a sample graph spans batches); "anls" takes L1/L2.
    missing_values : None, float (np.nan) or "unobserved"
        Fit the observed entries only (see :mod:`nmfkit.masked`), as ``fit(X, mask=M)`` and
        ``partial_fit(X, mask=M)`` do: per batch, W_b and the sums for H from the observed
        entries only — masked MU (solver="mu", any loss) or masked online HALS with one
        k × k sum per feature (solver="cd", Frobenius, L1/L2 penalties). Not "anls".
    backend : None, "numpy" or "torch", default=None
        As :class:`nmfkit.NMF`'s. None: read from X — a torch tensor (dense or sparse, CPU
        or CUDA) is fitted on its device, and ``components_`` and ``transform``'s output are
        tensors there, in X's dtype. "torch" with numpy / scipy input moves each X to
        ``device`` once per call and returns numpy (the forgetful sums of ``partial_fit``
        stay on the device). Solvers on torch: "mu" (every β), "cd" and "anls" (Frobenius);
        L1/L2 penalties and frozen components (not with "anls"); not masks or a Graph
        penalty.
    device : None, str or torch.device, default=None
        Torch device for ``backend="torch"`` ("cuda", "cuda:1", "cpu"); None: X's device.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features), H.
    n_components_ : int
    reconstruction_err_ : float, ‖X − WH‖_F (Frobenius) or √(2·D_β) on the data of ``fit``.
    n_iter_ : int, passes over the data started.
    n_steps_ : int, mini-batches processed.
    n_features_in_, feature_names_in_
    """

    _parameter_constraints: dict = {
        **{name: NMF._parameter_constraints[name] for name in (
            "n_components", "init", "beta_loss", "tol", "max_iter", "random_state", "alpha_W",
            "alpha_H", "l1_ratio", "verbose", "frozen_components", "penalties",
            "missing_values", "backend", "device")},
        "max_no_improvement": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "forget_factor": [Interval(Real, 0, 1, closed="both")],
        "fresh_restarts": ["boolean"],
        "fresh_restarts_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions({"mu", "cd", "anls"})],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        batch_size=1024,
        beta_loss="frobenius",
        tol=1e-4,
        max_no_improvement=10,
        max_iter=200,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        forget_factor=0.7,
        fresh_restarts=False,
        fresh_restarts_max_iter=30,
        transform_max_iter=None,
        random_state=None,
        verbose=0,
        solver="mu",
        frozen_components=None,
        penalties=None,
        missing_values=None,
        backend=None,
        device=None,
    ):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.solver = solver
        self.frozen_components = frozen_components
        self.penalties = penalties
        self.missing_values = missing_values
        self.backend = backend
        self.device = device

    _check_w_h = NMF._check_w_h  # NMF's validation of custom factors, and its start

    # ------------------------------------------------------------------ public API
    def fit_transform(self, X, y=None, W=None, H=None, mask=None):
        """Learn the factorisation X ≈ W H by mini-batches and return W.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data (numpy, scipy.sparse, or a torch tensor).
        y : Ignored
            Not used, present for scikit-learn API consistency.
        W : array-like of shape (n_samples, n_components), default=None
            Initial guess for W, used when ``init="custom"``.
        H : array-like of shape (n_components, n_features), default=None
            Initial guess for H, used when ``init="custom"``.
        mask : {array-like, sparse matrix} of X's shape, default=None
            Boolean or non-negative weights: only the entries with weight > 0 are fitted (see
            ``missing_values`` and :mod:`nmfkit.masked`). None: every entry.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            The coefficients of each sample (a tensor on X's device for tensor input).
        """
        self._validate_params()
        X, obs = validate_X(self, X, mask, reset=True)
        X, host, nx = place(self, X, self.batch_size)
        # data of extreme magnitude is fitted at unit scale (nmfkit._unit_scale)
        scale = unit_scale(self, X, obs, nx)
        X, obs = _at_scale(scale, X, obs, nx)
        W, H = scale.factor_in(W), scale.factor_in(H)
        self._scale = scale  # a later partial_fit continues at this scale
        with nx.compute_context():
            W, H, n_iter, n_steps = self._fit_transform(X, W=W, H=H, obs=obs)
            if obs is None:
                err = math.sqrt(2.0 * fitted_divergence(self, X, W, H, nx=nx))
            else:
                err = math.sqrt(2.0 * max(weighted_divergence(obs, W, H, self._beta_loss), 0.0))
        W, H = scale.factor_out(W), scale.factor_out(H)
        self.reconstruction_err_ = scale.error_out(float(err))
        self.n_components_ = H.shape[0]
        self.components_ = nx.to_numpy(H) if host else H
        self.n_iter_ = n_iter
        self.n_steps_ = n_steps
        return nx.to_numpy(W) if host else W

    def partial_fit(self, X, y=None, W=None, H=None, mask=None):
        """One mini-batch step on the rows of X (see the module docstring for semantics).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_features)
            A batch of new rows, with the columns of the first call.
        y : Ignored
            Not used, present for scikit-learn API consistency.
        W : array-like of shape (n_rows, n_components), default=None
            Initial guess for W, used with ``init="custom"`` on the first call only.
        H : array-like of shape (n_components, n_features), default=None
            Initial guess for H, used with ``init="custom"`` on the first call only.
        mask : {array-like, sparse matrix} of X's shape, default=None
            The batch's observation weights (as in :meth:`fit_transform`).

        Returns
        -------
        self : object
            The estimator with ``components_`` updated by this batch.
        """
        has_components = hasattr(self, "components_")
        if not has_components:
            self._validate_params()
        X, obs = validate_X(self, X, mask, reset=not has_components)
        X, host, nx = place(self, X)
        # every batch is fitted at the scale of the first (or of fit's data): the
        # accumulated statistics stay comparable, and data of extreme magnitude is fitted at
        # unit scale as fit does (an absolute floor would otherwise decide the fit)
        if not has_components:
            scale = self._scale = unit_scale(self, X, obs, nx)
        else:
            scale = getattr(self, "_scale", None) or UnitScale()
            _check_batch_scale(scale, X, obs, nx)
        X, obs = _at_scale(scale, X, obs, nx)
        with nx.compute_context():
            if not has_components:
                self._check_params(X)
                _, H = init_factors(self, X, scale.factor_in(W), scale.factor_in(H), obs)
                self._frozen = self._apply_frozen(H)
                self._init_accumulators(H)
                self.n_steps_ = 0
            else:  # the state follows this call's backend (a k × n_features copy at most)
                H = scale.factor_in(nx.adopt(self.components_, X))
                self._components_numerator = nx.adopt(self._components_numerator, X)
                self._components_denominator = nx.adopt(self._components_denominator, X)
                if obs is None:
                    check_zeros(nx, X, self._beta_loss)
                else:
                    check_zeros_for_beta(obs.values[None, :], self._beta_loss)
            self._need_cost = False  # partial_fit has no stopping rule
            self._minibatch_step(X, None, H, update_H=True, obs=obs)
        H = scale.factor_out(H)
        self.n_components_ = H.shape[0]
        self.components_ = nx.to_numpy(H) if host else H
        self.n_steps_ += 1
        return self

    def transform(self, X, mask=None):
        """The coefficients W of X for the learned components (H fixed).

        ``transform_max_iter`` MU iterations; with a mask or ``missing_values``, each row is
        solved from its observed entries only.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative data with the columns the model was fitted on.
        mask : {array-like, sparse matrix} of X's shape, default=None
            Observation weights; None: every entry (or those ``missing_values`` leaves).

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            The coefficients (a tensor on X's device for tensor input).
        """
        check_is_fitted(self)
        X, obs = validate_X(self, X, mask, reset=False)
        if obs is not None:
            return masked_solve_W(self, obs, self.components_, self._transform_max_iter)
        X, host, nx = place(self, X)
        scale = unit_scale(self, X, None, nx, fitting=False)
        with nx.compute_context():
            H = scale.factor_in(nx.adopt(self.components_, X))
            W = solve_W(self, scale.data(X, nx), H, self._transform_max_iter)
        return nx.to_numpy(scale.factor_out(W)) if host else scale.factor_out(W)

    # ------------------------------------------------------------------ internals
    def _check_params(self, X):
        self._check_rank_and_loss(X)
        self._batch_size = min(self.batch_size, X.shape[0])
        self._rho = self.forget_factor ** (self._batch_size / X.shape[0])
        self._gamma = gamma_exponent(self._beta_loss)
        if self.solver in ("cd", "anls") and self._beta_loss != 2.0:
            raise ValueError(
                f"MiniBatchNMF(solver={self.solver!r}) handles only beta_loss='frobenius', got "
                f"beta_loss={self.beta_loss!r}; use solver='mu' for other losses."
            )
        self._transform_max_iter = (
            self.max_iter if self.transform_max_iter is None else self.transform_max_iter
        )

    def _init_accumulators(self, H):
        nx = backend(self)
        if self.solver in ("cd", "anls"):  # Σρ WᵀW (k, k) and Σρ WᵀX (k, m)
            self._components_numerator = nx.zeros((H.shape[0], H.shape[0]), H.dtype)
            self._components_denominator = nx.zeros(H.shape, H.dtype)
        else:  # MU numerator and denominator
            self._components_numerator = nx.copy(H)
            self._components_denominator = nx.full(H.shape, 1.0, H.dtype)

    _mu_accumulate = mu_accumulate  # A ← ρA + num ⊙ H^(1/γ), B ← ρB + den, H = (A / B)^γ

    def _apply_frozen(self, H) -> tuple:
        """Write ``frozen_components`` into H's first rows; their indices (or ())."""
        if self.frozen_components is None:
            return ()
        return apply_frozen(self.frozen_components, H)

    def _minibatch_step(self, X, W, H, update_H, obs=None):
        """Update W_b (in place when given) and H (in place) on one batch; return the
        batch objective per row (loss + penalties at the updated W_b, before H moves).

        Frozen components: the H-update of MU is separable over H's rows, so restoring the
        frozen rows afterwards is exactly "not updating them"; the HALS / ANLS updates leave
        them out of the sweep / solve (see ``_online_hals_step``)."""
        frozen = list(getattr(self, "_frozen", ())) if update_H else []
        if frozen:
            kept = backend(self).copy(H[frozen])
            cost = step(self, X, W, H, update_H, obs)
            H[frozen] = kept
            return cost
        return step(self, X, W, H, update_H, obs)

    def _fit_transform(self, X, W=None, H=None, update_H=True, obs=None):
        self._check_params(X)
        if update_H:
            W, H = init_factors(self, X, W, H, obs)
            self._frozen = self._apply_frozen(H)
        else:
            check_zeros_for_beta(X, self._beta_loss)
            W, H = self._check_w_h(X, W, H, update_H)
        self._init_accumulators(H)
        return run_batches(self, X, W, H, update_H, obs)
