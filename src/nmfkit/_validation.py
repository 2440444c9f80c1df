"""Input checks at the public boundary. Messages name the problem, the value and a fix.

scikit-learn's wording is kept where its tests match on it (``Negative values in data passed
to``, ``Array with wrong first dimension passed to``, ...), followed by nmfkit's hint.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

__all__ = ["check_non_negative", "check_init_factor", "check_zeros_for_beta"]


def check_non_negative(X, whom: str) -> None:
    """Raise ValueError naming the first negative entry of X (dense or sparse)."""
    if sp.issparse(X):
        Xc = sp.coo_matrix(X)
        if Xc.nnz == 0 or Xc.data.min() >= 0:
            return
        pos = int(np.argmin(Xc.data))
        i, j, v = int(Xc.row[pos]), int(Xc.col[pos]), Xc.data[pos]
    else:
        X = np.asarray(X)
        if X.size == 0 or X.min() >= 0:
            return
        flat = int(np.argmin(X))
        i, j = (int(a) for a in np.unravel_index(flat, X.shape))
        v = X[i, j]
    raise ValueError(
        f"Negative values in data passed to {whom}: the smallest is {float(v)!r} at row {i},"
        f" column {j}. NMF needs non-negative data: clip (np.clip(X, 0, None)) or shift it."
    )


def check_init_factor(A, shape, whom: str):
    """Validate a user-given W or H: 2-D, finite, right shape, non-negative, not all zero."""
    A = check_array(A, input_name=whom)
    if shape[0] != "auto" and A.shape[0] != shape[0]:
        raise ValueError(
            f"Array with wrong first dimension passed to {whom}. Expected {shape[0]}, "
            f"but got {A.shape[0]}."
        )
    if shape[1] != "auto" and A.shape[1] != shape[1]:
        raise ValueError(
            f"Array with wrong second dimension passed to {whom}. Expected {shape[1]}, "
            f"but got {A.shape[1]}."
        )
    check_non_negative(A, whom)
    if np.max(A) == 0:
        raise ValueError(
            f"Array passed to {whom} is full of zeros. An all-zero factor cannot be updated;"
            " pass a positive initial guess or use init='nndsvda'."
        )
    return A


def check_zeros_for_beta(X, beta: float) -> None:
    """β ≤ 0 divides by X: zeros make the updates diverge."""
    if beta > 0:
        return
    has_zero = (X.nnz < X.shape[0] * X.shape[1] or (X.data == 0).any()) if sp.issparse(X) else (
        X.size and X.min() == 0
    )
    if has_zero:
        raise ValueError(
            "When beta_loss <= 0 and X contains zeros, the solver may diverge. "
            "Please add small values to X, or use a positive beta_loss."
        )


#: largest |X| accepted: beyond it the objective (of order ‖X‖²) overflows float64
MAX_ABS_VALUE = 1e100


def check_magnitude(X) -> None:
    """Reject data so large that the objective cannot be represented in float64."""
    if not (X.nnz if sp.issparse(X) else X.size):
        return
    # max and −min instead of abs(X).max(): no temporary the size of X
    top = max(float(X.max()), -float(X.min()))
    if top > MAX_ABS_VALUE:
        raise ValueError(
            f"X's largest value {top:.3g} is too large: the NMF objective (of order ‖X‖²) "
            f"overflows float64 beyond {MAX_ABS_VALUE:g}. Divide X by a constant (e.g. X / "
            "X.max()) and scale the factors back: W·√c, H·√c."
        )
