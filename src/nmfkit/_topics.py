"""What a fitted model says in words: the top features of each component, as a table, and the
share of the data's variance the fit explains (``explained_variance_``).

:class:`TopFeatures` is the table ``NMF.top_features`` returns (one row per component and rank:
component, rank, feature, weight), with its CSV and JSON forms used by ``nmfkit fit``
(``top_features.csv`` and the ``top_features`` block of ``summary.json``).
"""

from __future__ import annotations

import csv
import pathlib
from typing import NamedTuple

import numpy as np

__all__ = ["TopFeature", "TopFeatures", "top_features_of", "fitted_explained_variance"]


class TopFeature(NamedTuple):
    """One row of :class:`TopFeatures`: ``rank`` 1 is the heaviest feature of ``component``."""

    component: int
    rank: int
    feature: str
    weight: float


class TopFeatures:
    """The top features of each component: a table with columns component, rank, feature, weight.

    Iterating gives :class:`TopFeature` rows (component by component, best first);
    ``len`` is the number of rows. ``words(c)`` lists the features of component ``c``;
    ``to_csv(path)`` writes the table, ``to_dict()`` gives its JSON form and ``to_pandas()``
    a DataFrame (needs pandas).
    """

    columns = ("component", "rank", "feature", "weight")

    def __init__(self, rows, n_components: int, n_top: int):
        self.rows = [TopFeature(*r) for r in rows]
        self.n_components = int(n_components)
        self.n_top = int(n_top)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def words(self, component: int) -> list:
        """The features of ``component``, heaviest first."""
        if not 0 <= component < self.n_components:
            raise IndexError(f"component {component} does not exist; the model has "
                             f"{self.n_components} (0..{self.n_components - 1})")
        return [r.feature for r in self.rows if r.component == component]

    def by_component(self) -> list:
        """A list (one entry per component) of lists of (feature, weight), heaviest first."""
        out = [[] for _ in range(self.n_components)]
        for r in self.rows:
            out[r.component].append((r.feature, r.weight))
        return out

    def to_dict(self) -> dict:
        """JSON form: ``{"n_top": n, "components": [{"component", "features", "weights"}]}``."""
        return {"n_top": self.n_top, "components": [
            {"component": c, "features": [f for f, _ in fw], "weights": [w for _, w in fw]}
            for c, fw in enumerate(self.by_component())]}

    def to_csv(self, path) -> pathlib.Path:
        """Write the table (a header row, then one row per component and rank) to ``path``."""
        path = pathlib.Path(path)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(self.columns)
            for r in self.rows:
                w.writerow([r.component, r.rank, r.feature, repr(float(r.weight))])
        return path

    def to_pandas(self):
        """The table as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows, columns=list(self.columns))

    def __repr__(self) -> str:
        lines = [f"TopFeatures({self.n_components} components, top {self.n_top})"]
        for c, fw in enumerate(self.by_component()):
            lines.append(f"  {c}: " + ", ".join(str(f) for f, _ in fw))
        return "\n".join(lines)


def feature_names_of(model, feature_names=None):
    """The names of a model's features: given, ``feature_names_in_``, ``feature_names_`` (the
    vocabulary kept in a model file), else ``feature_<j>``."""
    m = np.shape(model.components_)[1]
    for names in (feature_names, getattr(model, "feature_names_in_", None),
                  getattr(model, "feature_names_", None)):
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != m:
                raise ValueError(f"feature_names has {len(names)} entries but the model has "
                                 f"{m} features; pass one name per column of X")
            return names
    return [f"feature_{j}" for j in range(m)]


def top_features_of(model, n: int = 10, feature_names=None) -> TopFeatures:
    """The ``n`` heaviest features of each component of a fitted model (rows of H).

    Features of weight 0 are left out, so a component may list fewer than ``n``.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "components_")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (features per component); got {n!r}")
    H = model.components_
    if not isinstance(H, np.ndarray):  # a torch tensor: H is small (k × n_features)
        H = H.detach().cpu().numpy()
    H = np.asarray(H, dtype=np.float64)
    names = feature_names_of(model, feature_names)
    n = min(int(n), H.shape[1])
    rows = []
    for c in range(H.shape[0]):
        order = np.argsort(-H[c], kind="stable")[:n]
        order = order[H[c, order] > 0]
        rows += [(c, r + 1, names[j], float(H[c, j])) for r, j in enumerate(order)]
    return TopFeatures(rows, H.shape[0], n)


def fitted_explained_variance(X, W, H, reconstruction_err=None, beta_loss=2.0) -> float:
    """1 − ‖X − WH‖²_F / ‖X − 1μᵀ‖²_F (μ the column means), for numpy, scipy or torch X.

    ``reconstruction_err`` (the fit's ‖X − WH‖_F when the loss is Frobenius) saves a pass.
    """
    from .backends import get_backend
    from .losses import beta_divergence

    from ._unit_scale import UnitScale

    nx = get_backend(X, W, H)
    scale = UnitScale.of(nx.max(X), 2.0)  # a ratio: computed at unit scale, exactly
    if scale.active:  # (‖X‖² of data at 1e-200 underflows)
        X, W, H = scale.data(X, nx), scale.factor_in(W), scale.factor_in(H)
        reconstruction_err = None
    n = X.shape[0]
    mu = np.asarray(nx.to_numpy(nx.sum(X, axis=0)), dtype=np.float64).ravel() / max(n, 1)
    total = nx.sq_norm(X) - n * float(mu @ mu)
    if reconstruction_err is not None and beta_loss in (2, 2.0, "frobenius"):
        resid = float(reconstruction_err) ** 2
    else:
        resid = float(beta_divergence(X, W, H, 2, square_root=True)) ** 2
    if total <= 0:
        return 1.0 if resid == 0 else 0.0
    return 1.0 - resid / total
