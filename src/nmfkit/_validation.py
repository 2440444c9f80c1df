"""Input checks at the public boundary. Messages name the problem, the value and a fix.

scikit-learn's wording is kept where its tests match on it (``Negative values in data passed
to``, ``Array with wrong first dimension passed to``, ...), followed by nmfkit's hint.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

__all__ = ["check_non_negative", "check_init_factor", "check_zeros_for_beta",
           "check_finite_params", "split_masked_array", "check_rank_size", "BETA_RANGE",
           "MAX_WEIGHT"]

#: the β-divergences nmfkit fits: beyond |β| = 10, X**β over- or underflows for ordinary data
#: (the literature uses β in [0, 2], occasionally up to 3)
BETA_RANGE = (-10.0, 10.0)
#: the largest penalty weight accepted: beyond it weight × ‖W‖ overflows (float32 first), and
#: a weight that large sets the factor to zero anyway
MAX_WEIGHT = 1e30
#: parameters that are penalty weights (checked against MAX_WEIGHT)
_WEIGHTS = ("alpha_W", "alpha_H", "graph_weight")


def _is_real(value) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_finite_params(est) -> None:
    """Every numeric parameter of ``est`` finite and in range, before any work is done.

    scikit-learn's declarative constraints accept any real ``beta_loss`` (NaN, inf, 1e6) and
    any finite weight (1e308, whose scaled value overflows). This closes those gaps for every
    estimator and the public function, naming the parameter, the value and what is allowed.
    """
    params = est.get_params(deep=False)
    whom = type(est).__name__
    for name, value in params.items():
        if name == "missing_values":  # a marker (NaN marks a missing entry), not a number
            continue
        if _is_real(value) and not np.isfinite(float(value)):
            raise ValueError(f"The {name!r} parameter of {whom} must be a finite number; got "
                             f"{value!r}.")
    for key, value in (params.get("solver_options") or {}).items():
        if _is_real(value) and not np.isfinite(float(value)):
            raise ValueError(f"solver_options[{key!r}] of {whom} must be a finite number; got "
                             f"{value!r}.")
    beta = params.get("beta_loss")
    if _is_real(beta) and not BETA_RANGE[0] <= float(beta) <= BETA_RANGE[1]:
        raise ValueError(
            f"The 'beta_loss' parameter of {whom} must lie in [{BETA_RANGE[0]:g}, "
            f"{BETA_RANGE[1]:g}]; got {beta!r}. Beyond it X**beta overflows; the usual losses "
            "are 2 ('frobenius'), 1 ('kullback-leibler') and 0 ('itakura-saito').")
    for name in _WEIGHTS:
        value = params.get(name)
        if _is_real(value) and float(value) > MAX_WEIGHT:
            raise ValueError(f"The {name!r} parameter of {whom} must be at most "
                             f"{MAX_WEIGHT:g}; got {value!r}. A weight that large sets the "
                             "factor to zero and overflows the objective.")
    if "device" in params:
        check_device(params["device"], params.get("backend"), whom)
    for pen in params.get("penalties") or ():
        weight = getattr(pen, "weight", None)
        if _is_real(weight) and float(weight) > MAX_WEIGHT:
            raise ValueError(f"The penalty {type(pen).__name__} on {pen.factor} in "
                             f"'penalties' of {whom} has weight {weight!r}; it must be at most "
                             f"{MAX_WEIGHT:g} (a weight that large overflows the objective).")


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(device, backend, whom: str) -> None:
    """``device`` names a torch device ("cpu", "cuda", "cuda:1", ...) and only with torch."""
    if device is None:
        return
    if type(device).__name__ == "device" and type(device).__module__.startswith("torch"):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise TypeError(f"The 'device' parameter of {whom} must be a str such as 'cuda', "
                        f"'cuda:1' or 'cpu' (or a torch.device); got {device!r}.")
    kind, _, index = text.partition(":")
    if kind not in _DEVICE_TYPES or (index and not index.isdigit()):
        raise ValueError(f"The 'device' parameter of {whom} must be a torch device such as "
                         f"'cuda', 'cuda:1' or 'cpu'; got {device!r}.")
    if backend == "numpy" and kind != "cpu":
        raise ValueError(f"{whom}(backend='numpy', device={device!r}): the numpy backend runs "
                         "on the CPU only; use backend='torch' for a GPU, or drop device.")


def split_masked_array(X, mask, whom: str, *, allow_mask: bool = True):
    """A numpy masked array's mask becomes the fit's mask (masked = missing), never dropped.

    Also turns a mask given as nested lists into an array. Where no mask can be honoured
    (``allow_mask=False``), a masked array with masked entries is refused with the fix.
    """
    if isinstance(X, np.ma.MaskedArray):
        hidden = np.ma.getmaskarray(X)
        data = np.ma.getdata(X)
        if not hidden.any():
            X = data
        elif not allow_mask:
            raise ValueError(
                f"X passed to {whom} is a numpy masked array with {int(hidden.sum())} masked "
                "entries, and this call cannot leave entries out; fill them "
                "(X.filled(value)), or fit with a mask: fit(X.data, mask=~X.mask).")
        elif mask is not None:
            raise ValueError(
                f"X passed to {whom} is a numpy masked array and a mask was given too; pass "
                "one of them (masked entries are treated as missing).")
        else:
            X = np.where(hidden, 0, data)
            mask = ~hidden
    if mask is not None and not sp.issparse(mask) and not hasattr(mask, "shape"):
        try:
            mask = np.asarray(mask, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"mask passed to {whom} must be an array of booleans or "
                            f"non-negative weights of X's shape; got {type(mask).__name__} "
                            "that is not numeric.") from None
    return X, mask


def validate_input(est, X, *, reset: bool, estimator_checks: bool = True):
    """X as a fit or a transform reads it: a torch tensor checked on its own device
    (``backends._torch_io.validate_tensor``), numpy / scipy.sparse X by scikit-learn's
    ``validate_data`` (feature count and names recorded or checked per ``reset``), or by
    ``check_array`` alone with ``estimator_checks=False`` (the function API)."""
    from .backends import get_backend

    return get_backend(X).validate_input(est, X, reset=reset, estimator_checks=estimator_checks)


def check_non_negative(X, whom: str) -> None:
    """Raise ValueError naming the first negative entry of X (dense or sparse, on any
    backend: the sign is read where X lives, and only a refusal reads X on the host to
    name the entry)."""
    from .backends import get_backend

    nx = get_backend(X)
    if nx.min(X) >= 0:  # implicit zeros of a sparse X included; an empty X has none
        return
    X = nx.to_numpy(X)  # a negative (or NaN) entry is located on the host
    if sp.issparse(X):
        Xc = sp.coo_matrix(X)
        pos = int(np.argmin(Xc.data))
        i, j, v = int(Xc.row[pos]), int(Xc.col[pos]), Xc.data[pos]
    else:
        X = np.asarray(X)
        flat = int(np.argmin(X))
        i, j = (int(a) for a in np.unravel_index(flat, X.shape))
        v = X[i, j]
    raise ValueError(
        f"Negative values in data passed to {whom}: the smallest is {float(v)!r} at row {i},"
        f" column {j}. NMF needs non-negative data: clip (np.clip(X, 0, None)) or shift it."
    )


def check_init_factor(A, shape, whom: str):
    """Validate a user-given W or H: 2-D, finite, right shape, non-negative, not all zero."""
    if A is None:
        raise ValueError(
            f"{whom} is None: init='custom' starts from your W and H, so pass both "
            "(fit_transform(X, W=W0, H=H0)), and update_H=False needs H; or choose another "
            "init, e.g. init='nndsvda'.")
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
    """β ≤ 0 divides by X: zeros make the updates diverge. X ≥ 0 (its sign is checked
    first), on any backend: a zero is its minimum, implicit zeros of a sparse X included."""
    if beta > 0:
        return
    from .backends import get_backend

    if get_backend(X).min(X) <= 0:
        raise ValueError(
            "When beta_loss <= 0 and X contains zeros, the solver may diverge. "
            "Please add small values to X, or use a positive beta_loss."
        )


#: largest |X| accepted: beyond it the objective (of order ‖X‖²) overflows float64
MAX_ABS_VALUE = 1e100


def check_largest_value(top: float) -> None:
    """Reject data whose largest value ``top`` makes the objective unrepresentable in float64
    (every backend and path calls this with its own max)."""
    if top > MAX_ABS_VALUE:
        raise ValueError(
            f"X's largest value {top:.3g} is too large: the NMF objective (of order ‖X‖²) "
            f"overflows float64 beyond {MAX_ABS_VALUE:g}. Divide X by a constant (e.g. X / "
            "X.max()) and scale the factors back: W·√c, H·√c."
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    import os

    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(need: int, what: str, fix: str, available=None) -> None:
    """Refuse, before anything is allocated, work whose arrays grow with user input past half
    of the memory available now: ``MemoryError`` saying what needs how much, and the fix.
    ``what`` reads "<the work> needs about N GB (<what is held>)" with N filled in."""
    avail = available_memory() if available is None else available
    if avail is not None and need > avail // 2:
        raise MemoryError(
            f"{what.format(gb=f'{need / 1e9:.1f}')}, more than half of the "
            f"{avail / 1e9:.1f} GB available; {fix}"
        )


def _memory_bytes():
    """This machine's physical memory in bytes, or None where it cannot be read."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_rank_size(k, shape, itemsize: int, whom: str) -> None:
    """Refuse a rank whose factors (W, H and the k × k products) cannot fit in memory, before
    anything is allocated: ``n_components=10**6`` on a 8 × 5 X would ask for terabytes."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        return
    n, m = int(shape[0]), int(shape[1])
    need = itemsize * (int(k) * (n + m) + 2 * int(k) ** 2)
    memory = _memory_bytes()
    if memory is not None and need > memory:
        raise ValueError(
            f"n_components={int(k)} needs W ({n}×{k}), H ({k}×{m}) and {k}×{k} products: "
            f"about {need / 2**30:.3g} GiB, more than this machine's {memory / 2**30:.3g} GiB "
            f"of memory. Choose n_components <= min(n_samples, n_features) = {min(n, m)} "
            "(a larger rank adds no information).")
