"""nmfkit: Non-negative Matrix Factorization — a scikit-learn drop-in and more.

X (n_samples × n_features, non-negative) ≈ W H with W, H ≥ 0 and rank k.

>>> from nmfkit import NMF          # replaces: from sklearn.decomposition import NMF
>>> W = NMF(n_components=10).fit_transform(X)   # doctest: +SKIP
"""

from ._estimator import NMF, non_negative_factorization
from ._fit import FitResult, IterationInfo
from ._version import __version__
from .batched import batched_factorize
from .init import initialize
from .impute import NMFImputer
from .losses import beta_divergence
from .minibatch import MiniBatchNMF
from .model_io import load
from .recommend import RatingsNMF
from .selection import select_rank
from .solvers import solver_table


__all__ = [
    "NMF",
    "MiniBatchNMF",
    "non_negative_factorization",
    "NMFImputer",
    "RatingsNMF",
    "initialize",
    "beta_divergence",
    "solver_table",
    "load",
    "select_rank",
    "batched_factorize",
    "FitResult",
    "IterationInfo",
    "__version__",
]
