"""Host threads for the compiled kernels whose work splits into independent parts.

The compiled kernels of ``cd`` (HALS sweeps by blocks of columns, KL Newton rows, the sparse
cross products of the blocked extrapolation) are serial numba functions compiled with
``nogil``. Their work splits exactly: HALS's subproblem separates over columns, KL's over
rows, a product's output over rows or columns. Each part is computed by the same code in the
same order as the serial kernel would, so the result is bit for bit the serial one, whatever
the number of threads — except the sparse Xᵀ W of the blocked extrapolation, whose two row
ranges are summed apart and then added (rounding differs from one thread's), and dense
products, which BLAS blocks its own way on one thread or two.

Why plain Python threads rather than numba's ``prange``: measured on the 2-core benchmark
machine, a ``prange`` sweep was 2× faster alone but slowed the fit, because numba's
threading layer and OpenBLAS's threads both spin while they wait and fought for the two
cores between kernels (docs/benchmarks.md, "What the rounds taught"). The threads of a
``ThreadPoolExecutor`` sleep on a lock between calls: nothing spins while BLAS runs.

How many: the CPUs this process may run on, capped by numba's ``NUMBA_NUM_THREADS``, by
``OMP_NUM_THREADS`` when set and by the BLAS thread limit in force (``threadpoolctl``'s
``threadpool_limits(1)`` makes every kernel serial, as it makes BLAS), read at each call.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["blas_single", "kernel_threads", "matmul_cols", "matmul_rows", "n_threads",
           "run_parts", "split_even", "split_weighted"]

_FIXED = threading.local()  # the count fixed by kernel_threads() for the calling thread

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_CTL = None
_CTL_FAILED = False


def _reset_after_fork() -> None:  # a forked child has none of the parent's threads
    global _POOL, _CTL
    _POOL = None
    _CTL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _blas_threads() -> int | None:
    """The largest thread count of the BLAS libraries loaded (threadpoolctl), None if unknown."""
    global _CTL, _CTL_FAILED
    if _CTL_FAILED:
        return None
    try:
        if _CTL is None:
            from threadpoolctl import ThreadpoolController

            _CTL = ThreadpoolController()
        ns = [c.num_threads for c in _CTL.lib_controllers if c.user_api == "blas"]
    except Exception:  # threadpoolctl missing or failing: no BLAS cap
        _CTL_FAILED = True
        return None
    return max(ns) if ns else None


def n_threads() -> int:
    """Threads the compiled kernels may use now (≥ 1); inside ``kernel_threads()`` the count
    it fixed."""
    fixed = getattr(_FIXED, "n", None)
    if fixed is not None:
        return fixed
    n = _cpus()
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").split(",")[0].strip()
        if v.isdigit() and int(v) > 0:
            n = min(n, int(v))
    blas = _blas_threads()
    if blas is not None and blas > 0:
        n = min(n, blas)
    return max(1, n)


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            old, _POOL = _POOL, ThreadPoolExecutor(max_workers=workers,
                                                   thread_name_prefix="nmfkit-kernel")
            if old is not None:
                old.shutdown(wait=False)
        return _POOL


def run_parts(fn, parts):
    """``[fn(*args) for args in parts]``, the first part in the calling thread and the others
    on the pool's threads at the same time; exceptions propagate."""
    parts = list(parts)
    if len(parts) <= 1:
        return [fn(*a) for a in parts]
    futures = [_pool(len(parts) - 1).submit(fn, *a) for a in parts[1:]]
    try:
        first = fn(*parts[0])
    finally:
        rest = [f.result() for f in futures]  # waits for every part, even after an error
    return [first, *rest]


def split_even(n_items: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """[(start, stop)] covering range(n_items) in ≤ ``parts`` contiguous ranges of about equal
    size, every boundary a multiple of ``align``; no empty range."""
    units = -(-n_items // align)
    parts = max(1, min(parts, units))
    cuts = [min(n_items, (units * i // parts) * align) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def split_weighted(cum, parts: int) -> list[tuple[int, int]]:
    """Ranges of rows of about equal weight, given ``cum`` (length N + 1, non-decreasing: e.g.
    a CSR indptr plus a per-row cost): [(start, stop)], no empty range."""
    import numpy as np

    cum = np.asarray(cum)
    N = cum.shape[0] - 1
    if N <= 0:
        return []
    parts = max(1, min(parts, N))
    total = float(cum[-1] - cum[0])
    cuts = [0]
    for i in range(1, parts):
        c = int(np.searchsorted(cum, cum[0] + total * i / parts, side="left"))
        cuts.append(min(N, max(cuts[-1], c)))
    cuts.append(N)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


@contextlib.contextmanager
def kernel_threads():
    """Context for one step of a fit: fixes the kernels' thread count at ``n_threads()``
    and, when that is more than one, limits BLAS to one thread meanwhile — the products
    are then split over the same host threads (``matmul_rows``), each part one BLAS call.

    Why: after every multithreaded call OpenBLAS's idle threads spin for a while instead of
    sleeping, so a compiled kernel's second thread, started right after a product, found its
    core taken (measured, ORL-faces shapes: 20 HALS sweeps on two threads 23.4 → 11.0 ms
    alone, but 21.6 → 20.9 ms when each followed a two-thread product). One BLAS thread
    per part leaves nothing spinning; under load it was also the faster way to a product
    (the dense benchmark's X Hᵀ at load 1.7: 24 ms with BLAS's two threads, 12.7 ms split).
    Yields the thread count. BLAS is a process-wide setting: another thread's BLAS calls
    during a step also run on one thread (as with scikit-learn's own ``threadpool_limits``)."""
    prev = getattr(_FIXED, "n", None), getattr(_FIXED, "blas1", False)
    n = n_threads()
    _FIXED.n = n
    held = []
    try:
        if n > 1 and not prev[1] and _blas_threads() is not None:
            # the libraries' own setters (threadpoolctl's limit() cost 80 µs a step)
            for c in _CTL.lib_controllers:
                if c.user_api == "blas":
                    t = c.num_threads
                    if t != 1:
                        c.set_num_threads(1)
                        held.append((c, t))
            _FIXED.blas1 = True
        yield n
    finally:
        for c, t in held:
            c.set_num_threads(t)
        _FIXED.n, _FIXED.blas1 = prev


def blas_single() -> bool:
    """Whether BLAS is held at one thread by an enclosing ``kernel_threads()`` (products may
    then be split over the kernels' threads without oversubscribing the cores)."""
    return getattr(_FIXED, "blas1", False)


def matmul_rows(A, B, parts: int):
    """A @ B (dense, (n, k), C order) by ranges of rows of A computed at the same time on host
    threads, each one BLAS call into its rows of the result (numpy releases the GIL)."""
    import numpy as np

    out = np.empty((A.shape[0], B.shape[1]), dtype=np.result_type(A.dtype, B.dtype))
    run_parts(lambda a, b: np.matmul(A[a:b], B, out=out[a:b]),
              split_even(A.shape[0], parts))
    return out


def matmul_cols(A, B, parts: int):
    """A @ B (dense, (k, m), C order) by ranges of columns of B computed at the same time on
    host threads, each one BLAS call writing its columns of the result in place."""
    import numpy as np

    out = np.empty((A.shape[0], B.shape[1]), dtype=np.result_type(A.dtype, B.dtype))
    run_parts(lambda a, b: np.matmul(A, B[:, a:b], out=out[:, a:b]),
              split_even(B.shape[1], parts, 8))
    return out
