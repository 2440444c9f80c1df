"""Checkpoints of a fit — (W, H, iteration) on disk every N iterations — and resuming.

A :class:`Checkpointer` is a fit-loop callback (``nmfkit._fit.IterationInfo``), so it works
with ``NMF(callback=...)``, ``fit_out_of_core(callback=...)`` and ``fit_dask(callback=...)``.
Files are ``.npz`` (no pickle) written atomically (a temporary file, then ``os.replace``), so
a crash while writing leaves the previous checkpoint intact.

Resuming starts the same solver from the saved (W, H) with ``init="custom"`` for the
remaining iterations. The solvers that keep no state between iterations besides (W, H) —
MU, HALS (``cd`` without ``extrapolate`` or ``shuffle``), the out-of-core and Dask fits —
then continue the trajectory exactly: the factors after resuming at iteration t and running
N − t more equal those of an uninterrupted N-iteration run, bit for bit. The stopping rule
restarts its reference (the objective at the checkpoint) on resume, so with ``tol > 0`` the
stopping iteration may differ; ``tol=0`` with a ``max_iter`` budget is exact. Data with a
largest entry outside [1e-6, 1e6] is fitted at unit scale (see ``nmfkit._fit.factorize``) and
callbacks see the rescaled factors; checkpoint such data after scaling it yourself.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Checkpoint", "Checkpointer", "load_checkpoint", "resume_nmf", "save_checkpoint"]

_FORMAT = 1


@dataclass
class Checkpoint:
    """A saved state: W (n_samples, k), H (k, n_features), the iteration it was taken at."""

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    objective: float | None = None
    metadata: dict = field(default_factory=dict)

    def resume_kwargs(self, max_iter: int) -> dict:
        """Keyword arguments continuing a ``max_iter`` budget from here (custom init)."""
        if max_iter <= self.n_iter:
            raise ValueError(f"the checkpoint is at iteration {self.n_iter}; max_iter="
                             f"{max_iter} leaves nothing to run. Raise max_iter.")
        return {"init": "custom", "W": self.W.copy(), "H": self.H.copy(),
                "max_iter": max_iter - self.n_iter}


def save_checkpoint(path, W, H, n_iter: int, objective=None, metadata=None) -> Path:
    """Write (W, H, n_iter) atomically to ``path`` (.npz). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": _FORMAT, "n_iter": int(n_iter),
            "objective": None if objective is None else float(objective),
            "metadata": dict(metadata or {})}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, W=np.asarray(W), H=np.asarray(H), meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` / :class:`Checkpointer`.

    Everything read is checked first (the archive, every array's declared size, the JSON's
    types, finite non-negative factors of matching rank), so a damaged or crafted file is a
    ``ValueError`` naming it, never a crash or a resumed fit from garbage.
    """
    from ._file_checks import check_npz

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; check the path")

    def bad(why):
        return ValueError(f"{str(path)!r} is not a valid nmfkit checkpoint: {why}.")

    try:
        check_npz(path)
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            W, H = z["W"], z["H"]
    except KeyError as exc:
        raise ValueError(f"{str(path)!r} is not an nmfkit checkpoint (missing {exc}).") from None
    except (ValueError, RecursionError, OSError, EOFError) as exc:
        raise bad(str(exc)) from None
    if not isinstance(meta, dict):
        raise bad("its metadata is not a JSON object")
    version = meta.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad(f"unknown format {version!r}")
    if version > _FORMAT:
        raise ValueError(f"{str(path)!r} was written by a newer nmfkit (format "
                         f"{meta['format']}); upgrade nmfkit to read it.")
    n_iter = meta.get("n_iter")
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0:
        raise bad(f"n_iter is {n_iter!r}, not an integer >= 0")
    for name, F in (("W", W), ("H", H)):
        if F.ndim != 2 or F.dtype.kind != "f" or not np.all(np.isfinite(F)) or (
                F.size and F.min() < 0):
            raise bad(f"{name} is not a 2-D array of finite non-negative floats")
    if W.shape[1] != H.shape[0]:
        raise bad(f"W {W.shape} and H {H.shape} disagree on the rank")
    extra = meta.get("metadata", {})
    return Checkpoint(W, H, n_iter, meta.get("objective"), extra if isinstance(extra, dict)
                      else {})


class Checkpointer:
    """Fit-loop callback saving (W, H, iteration) every ``every`` iterations.

    Parameters
    ----------
    path : str or Path. May contain ``{n_iter}`` (e.g. ``"ckpt-{n_iter:05d}.npz"``) to keep
        one file per checkpoint; otherwise one file is overwritten.
    every : int ≥ 1.
    start : int, iterations already done before this fit (when resuming), so that file
        names and saved iteration numbers count the whole trajectory.
    then : optional callback called after each iteration (its return value is returned, so
        it can still stop the fit).
    """

    def __init__(self, path, every: int = 10, *, start: int = 0, then=None, metadata=None):
        if int(every) < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}.")
        self.path, self.every, self.start, self.then = str(path), int(every), int(start), then
        self.metadata = dict(metadata or {})
        self.saved: list[Path] = []

    def __call__(self, info):
        n = self.start + info.n_iter
        if info.n_iter % self.every == 0:
            p = self.path.format(n_iter=n) if "{n_iter" in self.path else self.path
            self.saved.append(save_checkpoint(p, np.asarray(info.W), np.asarray(info.H), n,
                                              info.objective, self.metadata))
        return self.then(info) if self.then is not None else None


def resume_nmf(estimator, X, path, *, every: int | None = None, checkpoint_path=None):
    """Continue ``estimator``'s fit (an NMF with ``max_iter`` the total budget) from a
    checkpoint; returns W. ``n_iter_`` counts the iterations before the checkpoint too.

    With ``every``, checkpoints keep being written (to ``checkpoint_path``, default ``path``).
    """
    from sklearn.base import clone

    ck = load_checkpoint(path)
    kw = ck.resume_kwargs(estimator.max_iter)
    est = clone(estimator)
    cb = estimator.callback
    if every is not None:
        cb = Checkpointer(checkpoint_path or path, every, start=ck.n_iter, then=cb)
    est.set_params(init="custom", max_iter=kw["max_iter"], callback=cb)
    W = est.fit_transform(X, W=kw["W"].astype(X.dtype), H=kw["H"].astype(X.dtype))
    est.n_iter_ += ck.n_iter
    for name, value in vars(est).items():  # fitted state only; the user's parameters stay
        if name.endswith("_") or name.startswith("_"):
            setattr(estimator, name, value)
    return W
