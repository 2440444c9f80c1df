"""Dask fit: equals the in-memory fit, sparse chunks, a worker killed mid-fit."""

import functools
import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import in_memory, lowrank_data

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from nmfkit.distributed import fit_dask

_data = functools.partial(lowrank_data, n=240, m=24)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.mark.parametrize("solver,beta,alpha", [("cd", 2.0, 0.01), ("mu", 2.0, 0.0),
                                               ("mu", 1.0, 0.01)])
def test_equals_in_memory_fit(client, solver, beta, alpha):
    X, W0, H0 = _data()
    ref = in_memory(X, W0, H0, solver, beta, 15, alpha)
    res = fit_dask(da.from_array(X, chunks=(50, 12)), 4, client=client, solver=solver,
                   beta_loss=beta, init="custom", W=W0, H=H0, tol=0, max_iter=15,
                   alpha_W=alpha, l1_ratio=0.5, split_every=2)
    assert abs(res.objective - ref.objective) <= 1e-6 * ref.objective
    # docs/scaling.md promises the in-memory iterates to 1e-9 (measured: 3e-12 at most)
    np.testing.assert_allclose(res.H, ref.H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.W, ref.W, rtol=1e-9, atol=1e-12)
    assert res.n_iter == 15


def test_sparse_chunks_equal_dense(client):
    X, W0, H0 = _data()
    X[X < 0.4] = 0
    Xd = da.from_array(X, chunks=(60, 24))
    dense = fit_dask(Xd, 4, client=client, init="custom", W=W0, H=H0, tol=0, max_iter=10)
    sparse = fit_dask(Xd.map_blocks(sp.csr_matrix), 4, client=client, init="custom", W=W0,
                      H=H0, tol=0, max_iter=10)
    np.testing.assert_allclose(sparse.H, dense.H, rtol=1e-9, atol=1e-12)
    # a user-given scheduler address works the same way
    by_address = fit_dask(Xd, 4, address=client.scheduler.address, init="custom", W=W0, H=H0,
                          tol=0, max_iter=10)
    np.testing.assert_allclose(by_address.H, dense.H, rtol=1e-12)


def test_random_init_and_stopping_rule_and_lazy_W(client):
    X, _, _ = _data(seed=1)
    seen = []
    res = fit_dask(da.from_array(X, chunks=(80, 24)), 3, client=client, random_state=0,
                   tol=1e-3, max_iter=200, sync_every=3,
                   callback=lambda info: seen.append(np.asarray(info.W).shape))
    assert res.converged and res.n_iter < 200 and seen[0] == (240, 3)
    hist = np.asarray(res.history["objective"])
    assert np.all(np.diff(hist) <= 1e-9 * hist[0])
    with pytest.raises(ValueError, match="Negative values"):
        fit_dask(da.from_array(-X, chunks=(80, 24)), 3, client=client)
    with pytest.raises(TypeError, match="must be a 2-D dask.array"):
        fit_dask(X, 3, client=client)
    for bad in (0, -2):  # refused as the out-of-core fit refuses it, before any work
        with pytest.raises(ValueError, match=r"sweeps must be an integer >= 1"):
            fit_dask(da.from_array(X, chunks=(80, 24)), 3, client=client, sweeps=bad)


def test_worker_killed_mid_fit_gives_the_same_result():
    X, W0, H0 = _data(n=200, m=20)
    ref = in_memory(X, W0, H0, "cd", 2.0, 12)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, memory_limit="400MB") as cluster:
        with distributed.Client(cluster) as c:
            pids = c.run(os.getpid)
            killed = []

            def kill_one(info):
                if info.n_iter == 5 and not killed:
                    pid = sorted(pids.values())[0]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

            res = fit_dask(da.from_array(X, chunks=(50, 20)), 4, client=c, init="custom",
                           W=W0, H=H0, tol=0, max_iter=12, callback=kill_one, sync_every=4)
            assert killed and killed[0] not in c.run(os.getpid).values()
    np.testing.assert_allclose(res.H, ref.H, rtol=1e-9, atol=1e-12)
    assert abs(res.objective - ref.objective) <= 1e-6 * ref.objective


def test_checkpoint_and_resume_on_dask(client, tmp_path):
    from nmfkit.checkpoint import Checkpointer, load_checkpoint

    X, W0, H0 = _data(seed=2)
    Xd = da.from_array(X, chunks=(60, 24))
    kw = dict(client=client, solver="mu", beta_loss=1.0, tol=0)
    full = fit_dask(Xd, 4, init="custom", W=W0, H=H0, max_iter=8, **kw)
    fit_dask(Xd, 4, init="custom", W=W0, H=H0, max_iter=8, sync_every=3,
             callback=Checkpointer(tmp_path / "c.npz", every=3, then=lambda i: i.n_iter == 4),
             **kw)
    ck = load_checkpoint(tmp_path / "c.npz")
    assert ck.n_iter == 3
    rest = fit_dask(Xd, 4, **ck.resume_kwargs(8), **kw)
    np.testing.assert_array_equal(rest.H, full.H)
    np.testing.assert_array_equal(rest.W, full.W)
