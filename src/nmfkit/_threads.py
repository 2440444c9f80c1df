"""Thread control for the compute kernels: BLAS/OpenMP pools (threadpoolctl) and numba.

``thread_limits(n_jobs)`` is the context manager behind the estimators' ``n_jobs``
parameter; it can also be used directly around any nmfkit call::

    with nmfkit.thread_limits(1):
        NMF(10).fit(X)

None leaves every pool as it is; −1 means all cores; a positive int caps every pool at that
many threads (scikit-learn's convention).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["thread_limits", "small_fit_threads", "resolve_n_jobs"]

#: multiply-adds of one product X Hᵀ (n·m·k, or nnz·k for sparse X) below which a fit with
#: ``n_jobs=None`` runs BLAS on one thread (see :func:`fit_threads`)
SMALL_WORK = 1 << 22


def resolve_n_jobs(n_jobs: int | None) -> int | None:
    """The thread count for ``n_jobs`` (None: no limit; −1: all cores; −2: all but one...)."""
    if n_jobs is None:
        return None
    n_cpu = os.cpu_count() or 1
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 is not allowed; use None (no limit), -1 (all cores) or "
                         "a positive number of threads.")
    if n_jobs < 0:
        return max(1, n_cpu + 1 + n_jobs)
    return int(n_jobs)


@contextlib.contextmanager
def thread_limits(n_jobs: int | None):
    """Limit BLAS / OpenMP threads (threadpoolctl) and numba's threads within the block."""
    n = resolve_n_jobs(n_jobs)
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    numba = sys.modules.get("numba")
    old_numba = None
    if numba is not None:
        old_numba = numba.get_num_threads()
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if numba is not None:
            numba.set_num_threads(old_numba)


@contextlib.contextmanager
def small_fit_threads(n_jobs: int | None, work: int | None):
    """With ``n_jobs=None`` and products under ``SMALL_WORK`` multiply-adds (``work``): BLAS
    on one thread for the whole fit (its start included); otherwise nothing.

    Why: a small product gains nothing from a second BLAS thread, and on a busy machine it
    loses badly — after each multithreaded call OpenBLAS's threads spin or wait for a core,
    and a fit makes hundreds of such calls. Measured on the digits (1797×64, k=16, NNDSVDa
    start and 400 iterations of ``cd``), 2 cores at load 2, five fresh processes each:
    0.32–7.5 s with BLAS's two threads, 0.25–0.27 s with one (the same iterates)."""
    if n_jobs is not None or work is None or work >= SMALL_WORK:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
