"""Robust losses of NMF: Huber, Cauchy, row-wise L2,1, a non-negative sparse outlier term and a
group-structured (block) outlier term.

The math of ``NMF(loss="huber" | "cauchy" | "l21")`` and ``NMF(outliers="sparse")``, on any
backend (written on operators and ``nx`` ops, so numpy arrays and torch tensors share it). The
solver that fits them is :mod:`nmfkit.solvers.robust_mm`; the estimator's wiring is
:mod:`nmfkit._robust_fit`.

With R = X − WH the residual, the objectives are

* ``"huber"``: Σ ρ_δ(r_ij), ρ_δ(r) = ½r² for |r| ≤ δ and δ|r| − ½δ² beyond. It equals
  min_S ½‖X − WH − S‖² + δ‖S‖₁: a signed sparse outlier term with L1 weight δ.
* ``"cauchy"`` (Lorentzian): Σ ½c² log(1 + (r_ij/c)²); a gross outlier costs only log |r|.
* ``"sparse"`` (``outliers="sparse"``): min_{S ≥ 0} ½‖X − WH − S‖² + λ‖S‖₁ = Σ ρ⁺_λ(r_ij),
  the one-sided Huber (½r² for r ≤ λ, λr − ½λ² beyond): entries far *above* the model are
  outliers (the optimal S is max(0, R − λ)).
* ``"l21"``: Σ_i ‖x_i − w_i H‖₂ over the rows (samples): a whole outlying sample costs its
  distance, not its square (Kong, Ding & Huang 2011).
* ``"groups"`` (``outliers="groups"``, ``outlier_groups=labels``): X ≈ WH + S with S signed
  and group-sparse, min_S ½‖X − WH − S‖² + λ Σ_i Σ_g √|g| ‖S_{i,g}‖₂, the groups g a partition
  of the features (image tiles: :func:`image_tiles`; spectral windows, gene sets). The
  optimal S is the block soft-threshold of the residual, S_{i,g} = (1 − a_g/‖r_{i,g}‖)₊ r_{i,g}
  with a_g = λ√|g|, and the objective is Huber's on each group's residual norm:
  Σ_{i,g} h_{a_g}(‖r_{i,g}‖), h_a(t) = ½t² for t ≤ a, a t − ½a² beyond. An occluding block
  is many moderate residuals in one place: per entry no outlier, per tile one (the evidence
  of |g| entries adds up in the norm). With entry weights M the norm is ‖√M ∘ r_{i,g}‖ (and
  the penalty ‖√M ∘ S_{i,g}‖), so that the S-step stays exact.

Each is fitted by majorise–minimise. For the entrywise losses ρ(r) ≤ ½ω(r₀) r² + const with
ω(r) = ψ(r)/r ∈ (0, 1] and equality at r₀, where ψ(r) is the part of the residual fitted as
least squares: ψ(r) = clip(r, −δ, δ) (Huber), r / (1 + (r/c)²) (Cauchy), min(r, λ) (sparse).
With entry weights M ≥ 0 (a mask, missing values) the objective is Σ M_ij ρ(r_ij) and the
majoriser ½ Σ M_ij ω_ij (x_ij − (WH)_ij)²: a weighted least-squares problem with the weights
held fixed for one iteration (iteratively reweighted least squares); its weighted
multiplicative updates (the pilot's) cannot increase it, hence cannot increase the
robust objective. Since 0 ≤ M ω / μ ≤ 1 (μ = max M), the weighted square is majorised in
turn by an unweighted one: ½ a (x − y)² ≤ ½ (t − y)² + const with t = y₀ + a (x − y₀), so
that μ·½‖T − WH‖² with T = WH + (M/μ)∘ψ(R) majorises the objective, and HALS sweeps on it
(``solver="auto"``/``"cd"``, the default) or multiplicative updates on it (``solver="mu"``;
T ≥ 0, between WH and X) cannot increase it either. From the corrupted
start HALS on T stalls (relative error 0.9 on planted data where weighted updates reached
0.02): the pilot below, with weighted updates, comes first, and from its end HALS on T
converged in fewer iterations than the weighted updates (planted 200×100: 0.018 after 50
iterations against 0.048).

For the groups, h_a(t) ≤ ½ω t² + const with ω = a / max(t₀, a) ∈ (0, 1] (Huber's majoriser on
the norm t): the same weighted least squares with one weight per (sample, group), hence the
same target T = WH + (M/μ)∘ψ(R) with ψ(r_{i,g}) = ω_{i,g} r_{i,g} = r_{i,g} − S_{i,g}: forming T
is taking S exactly, and the HALS or multiplicative steps on ½‖T − WH‖² are the W and H
steps on X − S.

For L2,1, ‖r‖ ≤ ‖r‖²/(2‖r₀‖) + ‖r₀‖/2: each sample gets the weight 1/‖r_i‖ and the step is a
row-weighted least-squares step, computed from Gram products (sparse X is never densified).

The default scale (δ, c or λ) comes from the residuals: σ̂ = 1.4826·MAD(R), the
normal-consistent median absolute deviation, times 1.345 (Huber, 95 % efficiency under
Gaussian noise), 2.385 (Cauchy, the same) or 1.345 (sparse outliers); the groups' λ is
the factor of :data:`SCALE_FACTORS` ["groups"] times σ̂, per √feature (a_g = λ√|g|;
:class:`Groups` says why 1.345 is the default). The residuals of the
start are dominated by the outliers (the start fits them), so the fit starts with a pilot:
Cauchy-weighted iterations with σ̂ re-estimated at every second one until it settles (a
graduated start; 10 to 30 iterations), after which the loss's scale is read from the
residuals and held fixed for the whole fit
(:func:`nmfkit.solvers.robust_mm.pilot_scale`): the objective is then one function,
non-increasing at every iteration, and the same for every ``n_init`` restart.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "LOSSES",
    "OUTLIERS",
    "SCALE_FACTORS",
    "Groups",
    "check_groups",
    "entry_scores",
    "estimate_scale",
    "estimate_scale_at",
    "group_psi",
    "group_rho_sum",
    "group_sums",
    "group_weights",
    "image_tiles",
    "kind_of",
    "objective",
    "psi",
    "psi_inplace",
    "rho_sum",
    "row_norms",
    "row_scores",
    "weights",
]

#: the values of ``NMF(loss=...)`` beyond None (Frobenius / β-divergence)
LOSSES = ("huber", "cauchy", "l21")
#: the values of ``NMF(outliers=...)`` beyond None
OUTLIERS = ("sparse", "groups")
#: the scale = factor × σ̂ (σ̂ = 1.4826·MAD of the start's residuals) of each entrywise loss;
#: for "groups" per √feature (a group's threshold is factor × σ̂ × √|g|)
SCALE_FACTORS = {"huber": 1.345, "cauchy": 2.385, "sparse": 1.345, "groups": 1.345}
_MAD_TO_SIGMA = 1.4826
#: entries of the residual read for the median (a deterministic stride beyond this)
_MEDIAN_SAMPLE = 1 << 18


def kind_of(loss, outliers) -> str | None:
    """The robust objective of ``NMF(loss=..., outliers=...)``: "huber", "cauchy", "l21",
    "sparse" (Frobenius with a sparse outlier term), "groups" (a group-sparse one), or None
    (not robust)."""
    if outliers in OUTLIERS:
        return outliers
    return loss


def _log1p(a):
    """log(1 + a) elementwise for a numpy array or a torch tensor (its own method)."""
    method = getattr(a, "log1p", None)
    return method() if method is not None else np.log1p(a)


def psi(kind: str, R, scale: float):
    """ψ(R): the part of each residual that the majoriser fits as least squares.

    Huber: clip(R, −δ, δ); Cauchy: R / (1 + (R/c)²); sparse outliers: min(R, λ). Written
    with ``abs`` and arithmetic only, so it runs on numpy arrays and torch tensors alike.
    """
    s = float(scale)
    if kind == "huber":
        return (abs(R + s) - abs(R - s)) * 0.5
    if kind == "cauchy":
        return R / (1.0 + (R * (1.0 / s)) ** 2)
    if kind == "sparse":
        return (R + s - abs(R - s)) * 0.5
    raise ValueError(f"psi has no form for {kind!r}; the entrywise kinds are huber, cauchy, "
                     "sparse.")


def psi_inplace(nx, kind: str, R, scale: float):
    """ψ(R) computed in R's own memory (R is overwritten); returns R. The same values as
    :func:`psi`, with no temporary of R's size for Huber and sparse outliers."""
    s = float(scale)
    if kind in ("huber", "sparse"):
        R *= -1.0
        nx.clip_min(R, -s, out=R)  # −min(R, s)
        R *= -1.0
        if kind == "huber":
            nx.clip_min(R, -s, out=R)  # max(·, −s)
        return R
    if kind == "cauchy":  # c²R / (c² + R²): one temporary, four passes
        den = R * R
        den += s * s
        R *= s * s
        R /= den
        return R
    raise ValueError(f"psi has no form for {kind!r}; the entrywise kinds are huber, cauchy, "
                     "sparse.")


def psi_weights_cauchy(R, s: float):
    """1 / (1 + (R/c)²), the Cauchy weights, as a new array."""
    out = R * (1.0 / s)
    out *= out
    out += 1.0
    return 1.0 / out  # a division, not a power: ``**= -1`` took 5× a Huber iteration


def weights(nx, kind: str, R, scale: float):
    """ω(R) = ψ(R)/R ∈ (0, 1], the weight of each squared residual in the majoriser at R.

    Huber: δ / max(|R|, δ); Cauchy: 1 / (1 + (R/c)²); sparse outliers: λ / max(R, λ).
    """
    s = float(scale)
    if kind == "huber":
        return s / nx.clip_min(abs(R), s)
    if kind == "cauchy":
        return psi_weights_cauchy(R, s)
    if kind == "sparse":
        return s / nx.clip_min(R, s)
    raise ValueError(f"weights has no form for {kind!r}; the entrywise kinds are huber, "
                     "cauchy, sparse.")


def _total(nx, a) -> float:
    return float(nx.sum(a))


def rho_sum(nx, kind: str, R, scale: float, weights=None) -> float:
    """Σ M_ij ρ(R_ij): the entrywise robust loss of the residual R (weights M, default 1)."""
    s = float(scale)
    if kind == "cauchy":
        v = _log1p((R * (1.0 / s)) ** 2) * (0.5 * s * s)
    else:  # Huber and one-sided Huber: ρ = ψ·r − ½ψ²
        P = psi(kind, R, s)
        v = P * (R - 0.5 * P)
    if weights is not None:
        v = v * weights
    return _total(nx, v)


def entry_scores(nx, kind: str, R, scale: float, observed=None):
    """Per-entry outlier scores 1 − ω(r) = (|r| − |ψ(r)|) / |r| ∈ [0, 1): the share of the
    residual that the robust loss does not fit as least squares (0: an ordinary entry, → 1: an
    entry the fit ignores). Huber: max(0, 1 − δ/|r|); Cauchy: (r/c)² / (1 + (r/c)²); sparse
    outliers: S_ij / r_ij, the share of the entry's excess over WH put into S. Entries with
    r = 0, or not observed (``observed`` is 0 there), score 0."""
    A = abs(R)
    P = abs(psi(kind, R, scale))
    tiny = nx.tiny(nx.dtype_of(R))
    out = (A - P) / nx.clip_min(A, tiny)
    nx.clip_min(out, 0.0, out=out)
    if observed is not None:
        out = out * observed
    return out


def row_norms(nx, X, W, H, weights=None):
    """‖x_i − w_i H‖ of every row (‖√M_i ∘ r_i‖ with entry weights M): from Gram products
    ‖x_i‖² − 2 w_i·(H x_iᵀ) + w_i HHᵀ w_iᵀ without weights, so a sparse X is not densified."""
    if weights is not None:
        R = X - nx.matmul(W, H)
        return nx.sum(weights * R * R, axis=1) ** 0.5
    X2 = nx.with_data(X, nx.sparse_data(X) ** 2) if nx.issparse(X) else X * X
    XHt = nx.matmul(X, H.T)
    sq = nx.sum(X2, axis=1) - 2.0 * nx.sum(W * XHt, axis=1) + nx.sum(
        W * nx.matmul(W, H @ H.T), axis=1)
    return nx.clip_min(sq, 0.0) ** 0.5


def row_scores(nx, row_norms):
    """Per-sample scores of L2,1: max(0, 1 − median_i ‖r_i‖ / ‖r_i‖) ∈ [0, 1). A sample at
    or below the median residual norm scores 0; one at twice the median 0.5 (its weight in
    the last step was half an ordinary sample's)."""
    host = np.asarray(nx.to_numpy(row_norms), dtype=np.float64)
    med = float(np.median(host)) if host.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(host > med, 1.0 - med / np.maximum(host, np.finfo(np.float64).tiny), 0.0)
    return np.clip(out, 0.0, 1.0)


def estimate_scale(nx, R, observed=None) -> float:
    """σ̂ = 1.4826·MAD of the residuals R (over the observed entries when ``observed`` is
    given): the robust estimate of the noise level, read on the host from at most 2¹⁸
    entries (a deterministic stride). Falls back to the mean absolute residual, then to the
    smallest positive float, so that the scale is always positive and finite."""
    host = np.asarray(nx.to_numpy(R), dtype=np.float64).ravel()
    if observed is not None:
        keep = np.asarray(nx.to_numpy(observed)).ravel() > 0
        host = host[keep]
    if host.size > _MEDIAN_SAMPLE:
        host = host[:: int(math.ceil(host.size / _MEDIAN_SAMPLE))]
    if host.size == 0:
        return 1.0
    finite = np.isfinite(host)
    if not finite.all():
        host = host[finite]
    # the medians are taken in a work array of our own (``host`` may be a view of R)
    sigma = _sigma_inplace(host.copy())
    if not sigma > 0:
        sigma = float(np.mean(np.abs(host))) if host.size else 0.0
    if not (sigma > 0 and math.isfinite(sigma)):
        sigma = float(np.finfo(np.float64).tiny)
    return sigma


def _median_inplace(a) -> float:
    """The median of the 1-D float64 array ``a`` (reordered in place; at least one entry),
    exactly ``np.median(a)``: one selection with a single kth (``np.partition`` with the two
    middle ranks as kth took 4.7× one with the upper one, 20,000 residuals: 114 against
    24 µs), the lower middle value for an even count being the largest entry left of it."""
    n = a.shape[0]
    h = n // 2
    a.partition(h)
    upper = float(a[h])
    if n % 2:
        return upper
    return (float(a[:h].max()) + upper) / 2.0


def _sigma_inplace(a) -> float:
    """1.4826·MAD of the finite float64 entries ``a`` (0 for none), ``a`` overwritten: the
    second median, of |a − med|, is taken in the same array. The value of
    ``1.4826 * np.median(np.abs(a - np.median(a)))`` without its copies (20,000 residuals:
    about 60 against 310 µs)."""
    if a.size == 0:
        return 0.0
    med = _median_inplace(a)
    np.subtract(a, med, out=a)
    np.abs(a, out=a)
    return _MAD_TO_SIGMA * _median_inplace(a)


def estimate_scale_at(nx, X, Y, observed=None) -> float:
    """:func:`estimate_scale` of the residuals X − Y, without forming X − Y whole on the host:
    only the entries the estimate reads (the observed ones, then the stride) are subtracted.
    The same value as ``estimate_scale(nx, X - Y, observed)``."""
    if nx.issparse(X) or nx.issparse(Y):
        return estimate_scale(nx, X - Y, observed)
    # the entries estimate_scale reads, X − Y at them only: our own float64 host array
    r = nx.residual_sample(X, Y, observed, _MEDIAN_SAMPLE)
    if r.size and np.isfinite(r).all():
        sigma = _sigma_inplace(r)  # the medians are taken in r
        if sigma > 0 and math.isfinite(sigma):
            return sigma
    # none, or not finite entries, or MAD 0: the fallbacks, on the same entries
    return estimate_scale(nx, nx.residual_sample(X, Y, observed, _MEDIAN_SAMPLE))


# ------------------------------------------------------------------ group-structured outliers
def check_groups(labels, n_features: int) -> np.ndarray:
    """The group label of every feature, checked: a 1-D sequence of ``n_features`` integers
    ≥ 0 (any ids: they are renumbered 0..G−1 in order of first value). Returns int64 ids.

    Raises ValueError (TypeError for non-numeric input) naming what is wrong and the fix."""
    fix = ("give one non-negative integer group id per feature (column of X), e.g. "
           "nmfkit.robust.image_tiles((height, width), (8, 8)) for images")
    if labels is None:
        raise ValueError(f"outliers='groups' needs outlier_groups: {fix}.")
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"outlier_groups must be an array of integers, got "
                        f"{type(labels).__name__}; {fix}.")
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"outlier_groups must be 1-D (one id per feature), got shape "
                         f"{a.shape}; {fix}.")
    if a.shape[0] != int(n_features):
        raise ValueError(f"outlier_groups has {a.shape[0]} labels but X has {n_features} "
                         f"features; {fix}.")
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                               or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"outlier_groups must hold integers, got dtype {a.dtype}; {fix}.")
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"outlier_groups must hold integers: feature {j} has "
                             f"{a[j]!r}; {fix}.")
    if a.size and float(a.min()) < 0:
        j = int(np.argmin(a))
        raise ValueError(f"outlier_groups must be non-negative: feature {j} has {a[j]!r}; "
                         f"{fix}.")
    if a.size and float(a.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"outlier_groups holds an id above 2⁶³ − 1; {fix}.")
    _, ids = np.unique(a.astype(np.int64), return_inverse=True)
    return ids.astype(np.int64).reshape(-1)


def image_tiles(image_shape, tile) -> np.ndarray:
    """Group labels of image pixels by tiles: for images of ``image_shape`` = (height, width)
    flattened row by row (numpy's C order, as ``image.reshape(-1)``), the id of each pixel's
    tile of ``tile`` = (th, tw) pixels (an int for square tiles), numbered row by row. When a
    side is not a multiple of the tile the last tiles of that row/column are smaller (the
    remainder): every pixel is in exactly one tile. For ``NMF(outliers="groups",
    outlier_groups=image_tiles(...))``.

    >>> image_tiles((4, 6), (2, 3)).reshape(4, 6)
    array([[0, 0, 0, 1, 1, 1],
           [0, 0, 0, 1, 1, 1],
           [2, 2, 2, 3, 3, 3],
           [2, 2, 2, 3, 3, 3]])
    """
    shape = _two_ints(image_shape, "image_shape")
    size = _two_ints((tile, tile) if np.ndim(tile) == 0 else tile, "tile")
    for side, t, name in zip(shape, size, ("height", "width")):
        if t > side:
            raise ValueError(f"tile {size[0]}x{size[1]} is larger than the image's {name} "
                             f"({side}); use a tile of at most {shape[0]}x{shape[1]}.")
    rows = np.arange(shape[0]) // size[0]
    cols = np.arange(shape[1]) // size[1]
    per_row = -(-shape[1] // size[1])
    return (rows[:, None] * per_row + cols[None, :]).reshape(-1).astype(np.int64)


def _two_ints(value, name):
    try:
        a = np.asarray(value)
        ok = a.shape == (2,) and a.dtype != bool and np.all(a == np.round(a)) and np.all(a >= 1)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be two positive integers (height, width), got "
                         f"{value!r}.")
    return int(a[0]), int(a[1])


class Groups:
    """A partition of the features into groups, for ``outliers="groups"``.

    ``labels``: the group id of each feature (:func:`check_groups`). Holds the ids
    (``labels``, 0..G−1), the sizes |g| and their square roots, and, per backend, the ids and
    a sparse G × m indicator for the group sums (:meth:`on`).

    The threshold of group g is a_g = λ√|g|, λ per √feature (group lasso's weighting, Yuan &
    Lin 2006: a group of |g| pure-noise entries has a residual norm near σ√|g|). The default
    λ is 1.345 σ̂: a group is shrunk when its RMS residual exceeds 1.345 σ̂, which for single
    features is Huber's 95 %-efficiency constant (``outliers="groups"`` with one feature per
    group is Huber's loss), and for larger groups a stricter rule still against noise: the
    RMS of |g| Gaussian residuals concentrates at σ (a tile of 8×8 pure-noise pixels exceeds
    1.345σ with probability about 10⁻⁶), while a block of structured corruption a few σ
    high exceeds it in every tile it covers.
    """

    def __init__(self, labels, n_features: int):
        self.labels = check_groups(labels, n_features)
        self.sizes = np.bincount(self.labels).astype(np.float64)
        self.n_groups = int(self.sizes.shape[0])
        self.root = np.sqrt(self.sizes)
        self._on = {}

    def on(self, nx, like):
        """(ids, indicator Gᵀ (G × m, sparse), √|g|) on ``like``'s backend, dtype and
        device; cached per backend and dtype."""
        key = (nx.name, str(nx.dtype_of(like)), str(getattr(like, "device", "")))
        got = self._on.get(key)
        if got is None:
            import scipy.sparse as sp

            m = self.labels.shape[0]
            ind = sp.csr_matrix((np.ones(m), (self.labels, np.arange(m))),
                                shape=(self.n_groups, m))
            dtype = nx.dtype_of(like)
            ind = nx.to_like(ind, like)  # scipy's CSR on the host, a sparse tensor on torch
            got = (nx.asarray(self.labels), ind, nx.asarray(self.root, dtype=dtype))
            self._on[key] = got
        return got


def group_sums(nx, groups: Groups, A):
    """Σ_{j ∈ g} A_ij for every row i and group g: (n, G), from the sparse indicator."""
    _, ind, _ = groups.on(nx, A)
    return nx.matmul(ind, A.T).T


def group_weights(nx, groups: Groups, R, lam: float, M=None):
    """ω_{i,g} = a_g / max(‖√M ∘ r_{i,g}‖, a_g) ∈ (0, 1], a_g = λ√|g|: the share of each group's
    residual that the model keeps (1 − ω is the share put into S). Returns (ω, the norms),
    both (n, G)."""
    sq = R * R if M is None else M * R * R
    t = nx.clip_min(group_sums(nx, groups, sq), 0.0) ** 0.5
    a = groups.on(nx, R)[2] * float(lam)
    return a[None, :] / nx.clip_min(t, a[None, :]), t


def group_psi(nx, groups: Groups, R, lam: float, M=None):
    """ψ(R) = R − S: each group's residual scaled by ω_{i,g} (the block soft-threshold's
    complement). Returns (ψ(R), ω)."""
    om, _ = group_weights(nx, groups, R, lam, M)
    ids = groups.on(nx, R)[0]
    return R * om[:, ids], om


def group_rho_sum(nx, groups: Groups, R, lam: float, M=None) -> float:
    """Σ_{i,g} h_{a_g}(‖√M ∘ r_{i,g}‖): min over S of ½‖√M ∘ (R − S)‖² + λ Σ √|g| ‖√M ∘ S_{i,g}‖."""
    sq = R * R if M is None else M * R * R
    return group_rho_from_sums(nx, groups, group_sums(nx, groups, sq), lam, like=R)


def group_rho_from_sums(nx, groups: Groups, sums, lam: float, like=None) -> float:
    """:func:`group_rho_sum` from the groups' weighted squared residual norms (n, G)."""
    t = nx.clip_min(sums, 0.0) ** 0.5
    a = groups.on(nx, sums if like is None else like)[2][None, :] * float(lam)
    u = -nx.clip_min(-t, -a)  # min(t, a_g): Huber's ρ = ψ·t − ½ψ² on the norm
    return _total(nx, u * (t - 0.5 * u))


def objective(X, W, H, kind: str, scale: float | None = None, weights=None,
              groups=None) -> float:
    """The robust objective of (W, H) for X, as the fit minimises it.

    Parameters
    ----------
    X : array (n_samples, n_features) (numpy or torch; 0 where not observed); sparse for
        "l21" only.
    W, H : the factors, (n_samples, k) and (k, n_features).
    kind : "huber", "cauchy", "sparse" (``outliers="sparse"``), "groups"
        (``outliers="groups"``) or "l21".
    scale : δ, c or λ (a fitted model's ``loss_scale_``); not used by "l21".
    weights : dense entry weights M ≥ 0 of X's shape, or None (every entry, weight 1).
    groups : the group label of each feature (``outlier_groups``), for "groups" only.

    Returns
    -------
    float : Σ M_ij ρ(r_ij) for the entrywise kinds, Σ_i ‖√M_i ∘ r_i‖ for "l21",
    Σ_{i,g} h_{λ√|g|}(‖√M ∘ r_{i,g}‖) for "groups".
    """
    from .backends import get_backend

    nx = get_backend(X)
    if kind == "groups":
        g = groups if isinstance(groups, Groups) else Groups(groups, X.shape[1])
        return group_rho_sum(nx, g, X - nx.matmul(W, H), scale, weights)
    if kind == "l21":
        return float(nx.sum(row_norms(nx, X, W, H, weights)))
    return rho_sum(nx, kind, X - nx.matmul(W, H), scale, weights)
