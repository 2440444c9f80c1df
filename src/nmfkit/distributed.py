"""NMF of a row-partitioned ``dask.array`` on a Dask cluster (``pip install "nmfkit[dask]"``).

Layout (the data-parallel scheme of MPI-FAUN's 1-D case): X's row blocks X_i stay on the
workers that hold them, and so do W's row blocks W_i (each task that updates W_i runs where
X_i lives, the scheduler placing it by its largest input). Per iteration:

1. H (k × n_features) and H Hᵀ go to every worker (a k·m broadcast);
2. each worker updates its W_i with H fixed and returns the small statistics of its block —
   (W_iᵀW_i, W_iᵀX_i) for Frobenius, the MU numerator/denominator for other β — which are
   summed by a binary tree of tasks (``split_every`` children per node) into one k × m
   result fetched by the client;
3. the client updates H (k² m or k m work) exactly as the in-memory solver does.

The block arithmetic is the out-of-core fit's (``nmfkit._blocks``): HALS ("cd", Frobenius) and
multiplicative updates ("mu", any β), so from the same start the iterates equal the in-memory
ones up to rounding. Everything a worker holds is the output of a task whose inputs Dask still
knows, so when a worker is lost Dask recomputes its blocks from their lineage; every
``sync_every`` iterations W is fetched and re-seeded as new graph roots, which bounds that
lineage (and the recomputation after a loss) to ``sync_every`` passes.
"""

from __future__ import annotations

import operator

import numpy as np

from . import _fit
from ._blocks import block_objective, block_step, block_summary, combine
from .losses import beta_loss_to_float
from ._unit_scale import UnitScale
from .outofcore import (
    StreamedSolver,
    block_config,
    check_summary,
    merged_summary,
    streamed_start,
)
from .penalties import sklearn_penalties

__all__ = ["fit_dask"]


def _require_dask():
    try:
        import dask.array  # noqa: F401
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            'nmfkit.distributed needs Dask: pip install "nmfkit[dask]"'
        ) from exc
    return distributed


def _identity(a):
    return a


class _LazyW:
    """W on the cluster; ``np.asarray(w)`` gathers it (only callbacks that need it pay)."""

    def __init__(self, engine):
        self._engine, self.shape = engine, (engine.n, engine.k)

    def __array__(self, dtype=None, copy=None):
        W = self._engine.gather_W()
        return W if dtype is None else W.astype(dtype, copy=False)


class _DaskEngine:
    def __init__(self, client, x_futures, offsets, W, split_every: int, sync_every: int):
        self.client, self.xf, self.offsets = client, x_futures, offsets
        self.n, self.k = W.shape
        self.split_every, self.sync_every = split_every, sync_every
        self.passes = 0
        self.wf = self._seed(W)

    def _seed(self, W):
        """W's row blocks as graph roots placed with their X blocks (recomputable tasks)."""
        who = self.client.who_has(self.xf)
        out = []
        for i, f in enumerate(self.xf):
            a, b = self.offsets[i], self.offsets[i + 1]
            workers = list(who.get(f.key, ())) or None
            out.append(self.client.submit(_identity, np.array(W[a:b]), workers=workers,
                                          allow_other_workers=True, pure=False))
        return out

    def gather_W(self):
        return np.concatenate(self.client.gather(self.wf), axis=0)

    def get_W(self):
        return _LazyW(self)

    def snapshot(self):
        return list(self.wf)

    def restore(self, wf):
        self.wf = list(wf)

    def _tree(self, futures, func):
        c = self.client
        while len(futures) > 1:
            nxt = []
            for s in range(0, len(futures), self.split_every):
                group = futures[s : s + self.split_every]
                acc = group[0]
                for g in group[1:]:  # a node sums its children in order
                    acc = c.submit(func, acc, g, pure=False)
                nxt.append(acc)
            futures = nxt
        return futures[0].result()

    def run_pass(self, H, cfg, GH):
        c = self.client
        Hf = c.submit(_identity, H.copy(), pure=False)
        GHf = c.submit(_identity, GH, pure=False)
        res = [c.submit(block_step, x, w, Hf, cfg, GHf, pure=False)
               for x, w in zip(self.xf, self.wf)]
        self.wf = [c.submit(operator.getitem, r, 0, pure=False) for r in res]
        stats = self._tree([c.submit(operator.getitem, r, 1, pure=False) for r in res],
                           combine)
        self.passes += 1
        if self.sync_every and self.passes % self.sync_every == 0:
            self.wf = self._seed(self.gather_W())  # new roots: bounded lineage
        return stats

    def objective(self, H, cfg) -> float:
        c = self.client
        Hf = c.submit(_identity, H.copy(), pure=False)
        parts = [c.submit(block_objective, x, w, Hf, cfg, pure=False)
                 for x, w in zip(self.xf, self.wf)]
        return float(self._tree(parts, operator.add))


def _times_pow2(Xb, exponent: int):
    """A block times 2**exponent (runs on a worker)."""
    from .backends import get_backend

    return get_backend(Xb).times_pow2(Xb, exponent)


def fit_dask(
    X,
    n_components: int,
    *,
    client=None,
    address: str | None = None,
    solver: str = "cd",
    beta_loss="frobenius",
    init="random",
    W=None,
    H=None,
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
    split_every: int = 4,
    sync_every: int = 10,
) -> _fit.FitResult:
    """Fit a ``dask.array`` X ≈ WH on a Dask cluster; W and H come back as NumPy arrays.

    Parameters
    ----------
    X : dask.array (n_samples, n_features), dense or with scipy.sparse chunks; chunks along
        the columns are merged (the layout is by rows).
    n_components : int, the rank k.
    client : ``distributed.Client`` to use; else ``address`` (a scheduler address) is
        connected to; else the current client; else a temporary in-process LocalCluster.
    solver : "cd" (HALS, Frobenius) or "mu" (multiplicative updates, any β).
    init : "random" (the same draws as the in-memory init for ``random_state``) or
        "custom" with W (n_samples, k) and H (k, n_features).
    tol, max_iter, max_time, callback, verbose, alpha_W, alpha_H, l1_ratio, sweeps :
        as :func:`nmfkit.outofcore.fit_out_of_core`. The callback's ``info.W`` gathers W
        only when converted with ``np.asarray``.
    split_every : int ≥ 2, fan-in of the reduction tree.
    sync_every : int ≥ 1 or 0, re-root W's lineage every this many iterations (0: never).

    Returns
    -------
    FitResult (W (n_samples, k), H (k, n_features), n_iter, objective, history).
    """
    distributed = _require_dask()
    import dask.array as da

    if not isinstance(X, da.Array) or X.ndim != 2:
        raise TypeError(f"X must be a 2-D dask.array, got {type(X).__name__}; wrap NumPy "
                        "data with dask.array.from_array(X, chunks=(rows, -1)).")
    if split_every < 2:
        raise ValueError(f"split_every must be >= 2, got {split_every!r}.")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    n, m = X.shape
    k = int(n_components)
    beta = beta_loss_to_float(beta_loss)
    if solver not in ("cd", "mu") or (solver == "cd" and beta != 2.0):
        raise ValueError(f"fit_dask supports solver='cd' (Frobenius) and 'mu' (any beta); got "
                         f"solver={solver!r} with beta_loss={beta_loss!r}.")
    own = None
    if client is None:
        if address is not None:
            client = own = distributed.Client(address)
        else:
            try:
                client = distributed.get_client()
            except ValueError:
                cluster = distributed.LocalCluster(processes=False, dashboard_address=None)
                client = own = distributed.Client(cluster)
    try:
        pens = sklearn_penalties(alpha_W, alpha_H, l1_ratio, n, m)
        cfg = block_config(solver, beta, pens, sweeps)
        xf = client.compute(list(X.to_delayed().ravel()))
        offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
        total = merged_summary(client.gather(client.map(block_summary, xf, pure=False)))
        check_summary(total, beta)
        scale = UnitScale.of(total[3], beta)  # extreme data: the blocks at unit scale, exactly
        if scale.active:
            xf = client.map(_times_pow2, xf, exponent=-scale.exponent, pure=False)
            total = merged_summary(client.gather(client.map(block_summary, xf, pure=False)))
            cfg = block_config(solver, beta, scale.penalties(pens), sweeps)
        dtype = np.dtype(X.dtype) if np.dtype(X.dtype) in (np.float32, np.float64) else np.dtype(
            np.float64)
        W0, H0 = streamed_start(init, W, H, (n, m), k, total, dtype, random_state, scale, "Dask")
        engine = _DaskEngine(client, xf, offsets, W0, split_every, sync_every)
        result = _fit.run(StreamedSolver(engine, H0, cfg, float(total[1])), tol=tol,
                          max_iter=max_iter, max_time=max_time, callback=callback,
                          verbose=verbose)
        result.W = np.asarray(result.W)
        return scale.result_out(result)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None and address is None:
                cluster.close()
