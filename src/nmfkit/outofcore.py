"""Out-of-core NMF: fit an X that lives on disk, streamed in row blocks under a memory bound.

X may be a NumPy array or ``np.memmap`` (``np.load(path, mmap_mode="r")``), a Zarr array, an
HDF5 dataset (h5py), or a folder of sparse row chunks (``scipy.sparse.save_npz`` files, read
in name order). Each iteration is one pass over the blocks: the W rows of a block are updated
with H fixed and the block's statistics (WᵀW, WᵀX, or the MU quotients) are accumulated; H is
then updated from the sums (see ``nmfkit._blocks``). The iterates are those of the in-memory
solver from the same start ("cd" = HALS, "mu" = multiplicative updates, any β), up to rounding.

Memory: W (n_samples × k) and a few k × n_features arrays stay in memory; X never does. The
block height is chosen so that these plus one block and its temporaries fit in
``max_memory``; a dense memmap is read with ``readinto`` into one reused buffer, so the
process's anonymous memory stays within the bound (the kernel's page cache is not counted).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import _fit
from ._blocks import (
    BlockConfig,
    block_objective,
    block_step,
    block_summary,
    combine,
    merge_summaries,
    update_H,
)
from .init import random_factors
from .losses import beta_loss_to_float
from .penalties import sklearn_penalties
from ._validation import check_largest_value

__all__ = ["StreamedSolver", "fit_out_of_core", "open_blocks", "parse_memory"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30}


def parse_memory(value) -> int:
    """Bytes from an int or a string such as "512MB", "2GiB"."""
    if isinstance(value, (int, np.integer)) and value > 0:
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(value))
    if not m or m.group(2).upper() not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(
            f"max_memory must be a positive number of bytes or a string like '512MB', "
            f"got {value!r}."
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


# ----------------------------------------------------------------------------- sources
class ArrayBlocks:
    """Row blocks of a 2-D array-like (ndarray, memmap, Zarr, h5py) with ``X[a:b]``."""

    sparse = False

    def __init__(self, X):
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D, got shape {tuple(X.shape)}.")
        self.X = X
        self.shape = tuple(int(s) for s in X.shape)
        src = np.dtype(X.dtype)
        self.dtype = src if src in (np.float32, np.float64) else np.dtype(np.float64)
        self._direct = (
            isinstance(X, np.memmap) and X.flags.c_contiguous and src == self.dtype
            and getattr(X, "filename", None) is not None
        )
        chunks = getattr(X, "chunks", None)  # zarr / h5py chunking
        self.chunk_rows = int(chunks[0]) if chunks else 1
        self.chunk_bytes = (int(np.prod(chunks)) * src.itemsize) if chunks else 0
        self.conversion = src != self.dtype

    def row_bytes(self) -> int:
        m, it = self.shape[1], self.dtype.itemsize
        return m * it * (2 if self.conversion else 1)

    def blocks(self, rows: int):
        n, m = self.shape
        if self._direct:
            buf = np.empty(rows * m, dtype=self.dtype)
            offset = self.X.offset if hasattr(self.X, "offset") else 0
            with open(self.X.filename, "rb", buffering=0) as f:
                f.seek(offset)
                for a in range(0, n, rows):
                    b = min(a + rows, n)
                    view = buf[: (b - a) * m]
                    f.readinto(memoryview(view).cast("B"))
                    yield a, b, view.reshape(b - a, m)
            return
        in_memory = isinstance(self.X, np.ndarray) and not isinstance(self.X, np.memmap)
        for a in range(0, n, rows):
            b = min(a + rows, n)
            blk = self.X[a:b]
            yield a, b, (blk if in_memory and not self.conversion
                         else np.asarray(blk, dtype=self.dtype))


class NpzFolderBlocks:
    """A folder of ``scipy.sparse.save_npz`` row chunks, read one at a time in name order."""

    sparse = True

    def __init__(self, folder):
        self.files = sorted(Path(folder).glob("*.npz"))
        if not self.files:
            raise ValueError(f"no .npz chunks in {str(folder)!r}; write them with "
                             "scipy.sparse.save_npz(folder / 'part-000.npz', block).")
        self.rows, m, self.nbytes, dtype = [], None, [], None
        for f in self.files:
            with np.load(f) as z:
                shape = tuple(int(s) for s in z["shape"])
                nnz = z["data"].shape[0] if "data" in z else 0
                dt = z["data"].dtype if "data" in z else np.float64
            if m is not None and shape[1] != m:
                raise ValueError(f"chunk {f.name!r} has {shape[1]} columns, the first had {m}.")
            m = shape[1]
            dtype = np.result_type(dtype or dt, dt)
            self.rows.append(shape[0])
            self.nbytes.append(nnz * (np.dtype(dt).itemsize + 8) + (shape[0] + 1) * 8)
        self.shape = (int(sum(self.rows)), int(m))
        self.dtype = np.dtype(dtype) if np.dtype(dtype) in (np.float32, np.float64) else np.dtype(
            np.float64)
        self.chunk_rows, self.chunk_bytes = max(self.rows), max(self.nbytes)

    def row_bytes(self) -> int:
        return 0  # blocks are the files; their size is checked against the budget

    def blocks(self, rows: int):
        a = 0
        for f, r in zip(self.files, self.rows):
            blk = sp.load_npz(f).tocsr().astype(self.dtype, copy=False)
            yield a, a + r, blk
            a += r


def open_blocks(X):
    """A block reader for X: an array-like (ndarray, memmap, Zarr, h5py) or a folder path."""
    if isinstance(X, (ArrayBlocks, NpzFolderBlocks)):
        return X
    if isinstance(X, (str, os.PathLike)):
        p = Path(X)
        if p.is_dir():
            return NpzFolderBlocks(p)
        if p.suffix == ".npy":
            return ArrayBlocks(np.load(p, mmap_mode="r"))
        raise ValueError(f"cannot stream {str(X)!r}: give a folder of .npz chunks, a .npy "
                         "file, or an opened memmap / Zarr / HDF5 array.")
    if sp.issparse(X):
        raise TypeError("a sparse matrix in memory needs no streaming: use nmfkit.NMF, or "
                        "save it as .npz row chunks in a folder.")
    if not hasattr(X, "shape") or not hasattr(X, "__getitem__"):
        raise TypeError(f"cannot stream an object of type {type(X).__name__}.")
    return ArrayBlocks(X)


# ----------------------------------------------------------------------------- the solver
class StreamedSolver:
    """The fit loop's solver protocol over an engine that runs passes over row blocks."""

    monotone = True

    def __init__(self, engine, H, cfg: BlockConfig, sq_norm_X: float):
        self.engine, self.Hc, self.cfg, self.sq_norm_X = engine, H, cfg, sq_norm_X

    @property
    def W(self):
        return self.engine.get_W()

    @property
    def H(self):
        return self.Hc

    def get_factors(self):
        return self.engine.snapshot(), self.Hc.copy()

    def set_factors(self, W, H):
        self.engine.restore(W)
        self.Hc = H

    def objective(self) -> float:
        return self.engine.objective(self.Hc, self.cfg) + sum(
            p.value(self.Hc) for p in self.cfg.penalties_H)

    def step(self):
        GH = self.Hc @ self.Hc.T
        stats = self.engine.run_pass(self.Hc, self.cfg, GH)
        return update_H(self.Hc, stats, self.cfg, self.sq_norm_X)

    def finalize(self):
        return self.engine.get_W(), self.Hc


class _LocalEngine:
    def __init__(self, source, W, rows: int):
        self.source, self.Wm, self.rows = source, W, rows

    def get_W(self):
        return self.Wm

    def snapshot(self):
        return self.Wm.copy()

    def restore(self, W):
        self.Wm[...] = W

    def run_pass(self, H, cfg, GH):
        total = None
        for a, b, Xb in self.source.blocks(self.rows):
            Wn, st = block_step(Xb, self.Wm[a:b], H, cfg, GH)
            self.Wm[a:b] = Wn
            total = st if total is None else combine(total, st)
        return total

    def objective(self, H, cfg) -> float:
        return sum(block_objective(Xb, self.Wm[a:b], H, cfg)
                   for a, b, Xb in self.source.blocks(self.rows))


class ScaledBlocks:
    """A row-block source read at unit scale: each block divided by 2**exponent as it is read
    (exact; one extra block in memory), for data of extreme magnitude (nmfkit._unit_scale)."""

    def __init__(self, source, exponent: int):
        self.source, self.exponent = source, int(exponent)

    def __getattr__(self, name):
        return getattr(self.source, name)

    def blocks(self, rows: int):
        from .backends import get_backend

        for a, b, Xb in self.source.blocks(rows):
            yield a, b, get_backend(Xb).times_pow2(Xb, -self.exponent)


def unit_scaled(source, summary, rows, beta: float):
    """(source, summary, UnitScale): extreme data gets a scaled view and its summary from one
    more pass (its Σx² may have under- or overflowed); ordinary data is returned as it is."""
    from ._unit_scale import UnitScale

    scale = UnitScale.of(summary[3], beta)
    if not scale.active:
        return source, summary, scale
    source = ScaledBlocks(source, scale.exponent)
    return source, _summary(source, rows), scale


def _summary(source, rows):
    return merged_summary(block_summary(Xb) for _, _, Xb in source.blocks(rows))


def merged_summary(summaries):
    """One summary of X from those of its blocks (in order)."""
    return functools.reduce(merge_summaries, summaries)


def block_config(solver: str, beta: float, pens, sweeps) -> BlockConfig:
    """The row-block steps' settings: the penalties split by factor, ``sweeps`` checked."""
    if int(sweeps) < 1:
        raise ValueError(f"sweeps must be an integer >= 1, got {sweeps!r}.")
    return BlockConfig(solver, beta, tuple(p for p in pens if p.factor == "W"),
                       tuple(p for p in pens if p.factor == "H"), int(sweeps))


def streamed_start(init, W, H, shape, k: int, summary, dtype, random_state, scale, what: str):
    """(W, H) of a streamed fit: a custom start checked and brought to the fit's scale, or
    the in-memory init's random draws for mean(X) (from the summary)."""
    n, m = shape
    if init == "custom":
        if W is None or H is None or W.shape != (n, k) or H.shape != (k, m):
            raise ValueError(f"init='custom' needs W of shape {(n, k)} and H of shape {(k, m)}.")
        return (scale.factor_in(np.array(W, dtype=dtype, order="C", copy=True)),
                scale.factor_in(np.array(H, dtype=dtype, order="C", copy=True)))
    if init == "random":
        return random_factors(n, m, k, float(summary[0] / (n * m)), dtype, random_state)
    raise ValueError(f"init must be 'random' or 'custom' for {what} fits, got {init!r}"
                     " (NNDSVD needs an SVD of X; compute W, H and pass init='custom').")


def check_summary(summary, beta: float) -> None:
    """Validate X from its streamed summary (finite, non-negative, zeros vs β ≤ 0, a largest
    value the objective can represent)."""
    if summary[4] > 0:
        raise ValueError(f"X contains {int(summary[4])} NaN or infinite values; NMF needs "
                         "finite data.")
    if summary[2] < 0:
        raise ValueError(f"Negative values in data passed to NMF (minimum {summary[2]!r}); "
                         "NMF needs X ≥ 0.")
    if beta <= 0 and summary[2] == 0:
        raise ValueError("When beta_loss <= 0 and X contains zeros, the solver may diverge. "
                         "Please add small values to X, or use a positive beta_loss.")
    check_largest_value(summary[3])


def block_rows(source, k: int, max_memory: int, cfg: BlockConfig) -> tuple[int, int]:
    """(rows per block, fixed bytes), or an error naming the smallest workable budget."""
    n, m = source.shape
    it = source.dtype.itemsize
    fixed = 2 * n * k * it + 10 * k * m * 8  # W + its snapshot; H-sized arrays
    # per row: the block, its conversion, and temporaries (MU quotients; the objective's
    # float64 working copies, about 7 per element, are the largest)
    per_row = max(source.row_bytes(), 1) + m * 8 * (7 if not cfg.frobenius_stats else 1)
    per_row = max(per_row, m * 8 * 7) if not source.sparse else per_row
    if source.sparse:
        need = fixed + 4 * source.chunk_bytes
        if need > max_memory:
            raise ValueError(f"max_memory={max_memory} bytes is below what one chunk of the "
                             f"folder needs ({need} bytes); write smaller chunks or raise it.")
        return 0, fixed
    rows = (max_memory - fixed - source.chunk_bytes) // per_row
    if source.chunk_rows > 1:
        rows = (rows // source.chunk_rows) * source.chunk_rows
    if rows < 1:
        need = fixed + source.chunk_bytes + per_row * max(source.chunk_rows, 1)
        raise ValueError(
            f"max_memory={max_memory} bytes cannot hold W ({n}×{k}) and one block of X; it "
            f"needs at least {need} bytes. Raise max_memory or lower n_components."
        )
    return int(min(rows, n)), fixed


def fit_out_of_core(
    X,
    n_components: int,
    *,
    solver: str = "cd",
    beta_loss="frobenius",
    init="random",
    W=None,
    H=None,
    max_memory="512MB",
    tol: float = 1e-4,
    max_iter: int = 200,
    max_time: float | None = None,
    alpha_W: float = 0.0,
    alpha_H="same",
    l1_ratio: float = 0.0,
    random_state=None,
    callback=None,
    verbose: int = 0,
    sweeps: int = 1,
) -> _fit.FitResult:
    """Fit X ≈ WH with X streamed from disk in row blocks within ``max_memory`` bytes.

    Parameters
    ----------
    X : np.memmap / ndarray, Zarr array, h5py dataset (n_samples, n_features), a path to a
        ``.npy`` file, or a folder of ``.npz`` sparse row chunks.
    n_components : int, the rank k.
    solver : "cd" (HALS, Frobenius) or "mu" (multiplicative updates, any β).
    init : "random" (one streamed pass for mean(X)), or "custom" with W (n_samples, k) and
        H (k, n_features).
    max_memory : int bytes or str ("512MB"): bound on what the fit holds in memory.
    tol, max_iter, max_time, callback, verbose : as :class:`nmfkit.NMF` (the same fit loop;
        ``nmfkit.checkpoint.Checkpointer`` is a callback).
    alpha_W, alpha_H, l1_ratio : scikit-learn's regularisation.
    sweeps : int ≥ 1, HALS sweeps per half-iteration ("cd"). 1 reproduces
        ``NMF(solver="cd", solver_options={"inner": False})``; a few more make each pass
        over the disk do more work (the sweeps cost O((n + m)k²), the pass O(nnz·k)).

    Returns
    -------
    FitResult with W (n_samples, k) and H (k, n_features) as NumPy arrays, ``n_iter``,
    ``objective`` and ``history``; ``result.block_rows`` is the block height used.
    """
    source = open_blocks(X)
    n, m = source.shape
    k = int(n_components)
    beta = beta_loss_to_float(beta_loss)
    if solver not in ("cd", "mu"):
        raise ValueError(f"solver must be 'cd' or 'mu' for out-of-core fits, got {solver!r}.")
    if solver == "cd" and beta != 2.0:
        raise ValueError(f"solver='cd' handles only beta_loss='frobenius', got {beta_loss!r};"
                         " use solver='mu'.")
    pens = sklearn_penalties(alpha_W, alpha_H, l1_ratio, n, m)
    cfg = block_config(solver, beta, pens, sweeps)
    budget = parse_memory(max_memory)
    rows, _ = block_rows(source, k, budget, cfg)
    summary = _summary(source, rows)
    check_summary(summary, beta)
    source, summary, scale = unit_scaled(source, summary, rows, beta)
    if scale.active:
        cfg = block_config(solver, beta, scale.penalties(pens), sweeps)
    W, H = streamed_start(init, W, H, (n, m), k, summary, source.dtype, random_state, scale,
                          "out-of-core")
    solver_obj = StreamedSolver(_LocalEngine(source, W, rows), H, cfg, float(summary[1]))
    result = _fit.run(solver_obj, tol=tol, max_iter=max_iter, max_time=max_time,
                      callback=callback, verbose=verbose)
    scale.result_out(result)
    result.block_rows = rows
    return result
