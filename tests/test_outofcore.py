"""Out-of-core fits (memmap, Zarr, HDF5, npz folder) under a memory bound; checkpoints."""

import functools
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import in_memory, lowrank_data

from nmfkit import NMF
from nmfkit.checkpoint import Checkpointer, load_checkpoint, resume_nmf, save_checkpoint
from nmfkit.outofcore import fit_out_of_core, parse_memory

_data = functools.partial(lowrank_data, n=400, m=30)


@pytest.fixture
def memmap(tmp_path):
    X, W0, H0 = _data()
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), X, W0, H0


@pytest.mark.parametrize("solver,beta,alpha", [("cd", 2.0, 0.01), ("mu", 2.0, 0.0),
                                               ("mu", 1.0, 0.01), ("mu", 0.5, 0.0)])
def test_memmap_equalsin_memory(memmap, solver, beta, alpha):
    Xm, X, W0, H0 = memmap
    ref = in_memory(X, W0, H0, solver, beta, 12, alpha)
    res = fit_out_of_core(Xm, 4, solver=solver, beta_loss=beta, init="custom", W=W0, H=H0,
                          tol=0, max_iter=12, max_memory=150_000, alpha_W=alpha, l1_ratio=0.5)
    assert 1 < res.block_rows < 400  # it really streamed
    assert abs(res.objective - ref.objective) <= 1e-9 * ref.objective
    np.testing.assert_allclose(res.H, ref.H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.W, ref.W, rtol=1e-9, atol=1e-12)


def test_memory_bound_is_honoured(tmp_path):
    X, _, _ = _data(n=4000, m=100, dtype=np.float32)  # 1.6 MB on disk
    np.save(tmp_path / "X.npy", X)
    budget = 400_000
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        res = fit_out_of_core(tmp_path / "X.npy", 5, max_memory=budget, max_iter=5, tol=0,
                              random_state=0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert budget / 4 < peak <= budget, (peak, budget)  # streamed, and within the bound
    with pytest.raises(ValueError, match="max_memory=1000 bytes cannot hold"):
        fit_out_of_core(tmp_path / "X.npy", 5, max_memory=1000)


def test_random_init_matches_nmf_and_objective_decreases(memmap):
    Xm, X, _, _ = memmap
    res = fit_out_of_core(Xm, 4, random_state=0, tol=0, max_iter=20, max_memory="200KB")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NMF(4, init="random", random_state=0, solver="cd", tol=0, max_iter=20,
                  solver_options={"inner": False}).fit(X)
    np.testing.assert_allclose(res.H, est.components_, rtol=1e-8, atol=1e-12)
    hist = np.asarray(res.history["objective"])
    assert np.all(np.diff(hist) <= 1e-12 * hist[0])


def _file_kw(W0, H0):
    return dict(init="custom", W=W0, H=H0, tol=0, max_iter=8, max_memory="200KB")


def test_zarr_array(tmp_path, memmap):
    zarr = pytest.importorskip("zarr")
    _, X, W0, H0 = memmap
    ref = in_memory(X, W0, H0, "cd", 2.0, 8)
    z = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=X.shape, chunks=(50, 30),
                        dtype="f8")
    z[:] = X
    np.testing.assert_allclose(fit_out_of_core(z, 4, **_file_kw(W0, H0)).H, ref.H, rtol=1e-9)


def test_hdf5_dataset(tmp_path, memmap):
    h5py = pytest.importorskip("h5py")
    _, X, W0, H0 = memmap
    ref = in_memory(X, W0, H0, "cd", 2.0, 8)
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(40, 30))
    with h5py.File(tmp_path / "X.h5", "r") as f:
        res = fit_out_of_core(f["X"], 4, **_file_kw(W0, H0))
    np.testing.assert_allclose(res.H, ref.H, rtol=1e-9)


def test_npz_folder(tmp_path, memmap):
    """A folder of sparse .npz row chunks: numpy and scipy only."""
    _, X, W0, H0 = memmap
    kw = _file_kw(W0, H0)
    Xs = X.copy()
    Xs[Xs < 0.5] = 0
    folder = tmp_path / "chunks"
    folder.mkdir()
    for i, s in enumerate(range(0, 400, 70)):
        sp.save_npz(folder / f"part-{i:03d}.npz", sp.csr_matrix(Xs[s:s + 70]))
    ref_s = in_memory(sp.csr_matrix(Xs), W0, H0, "cd", 2.0, 8)
    res = fit_out_of_core(folder, 4, **kw)
    np.testing.assert_allclose(res.H, ref_s.H, rtol=1e-9, atol=1e-12)
    ref_kl = in_memory(sp.csr_matrix(Xs), W0, H0, "mu", 1.0, 8)
    res_kl = fit_out_of_core(folder, 4, solver="mu", beta_loss="kullback-leibler", **kw)
    np.testing.assert_allclose(res_kl.H, ref_kl.H, rtol=1e-9, atol=1e-12)
    assert abs(res_kl.objective - ref_kl.objective) <= 1e-9 * ref_kl.objective


def test_input_errors(tmp_path):
    X, _, _ = _data(n=50, m=10)
    with pytest.raises(ValueError, match="Negative values"):
        fit_out_of_core(-X, 2, max_memory="1MB")
    with pytest.raises(ValueError, match="max_memory"):
        parse_memory("lots")
    assert parse_memory("2MiB") == 2 * 2**20
    with pytest.raises(ValueError, match="no .npz chunks"):
        fit_out_of_core(tmp_path, 2)
    with pytest.raises(ValueError, match="solver='cd' handles only"):
        fit_out_of_core(X, 2, beta_loss=1)


@pytest.mark.parametrize("solver", ["cd", "mu"])
def test_resume_from_checkpoint_continues_exactly(tmp_path, solver):
    X, _, _ = _data(n=120, m=15)
    kw = dict(solver=solver, init="random", random_state=0, tol=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = NMF(4, **kw)
        W_full = full.fit_transform(X)
        # a "crash" after iteration 13: the last checkpoint is iteration 10
        ck = Checkpointer(tmp_path / "ck-{n_iter}.npz", every=5,
                          then=lambda info: info.n_iter == 13)
        NMF(4, callback=ck, **kw).fit(X)
        assert [p.name for p in ck.saved] == ["ck-5.npz", "ck-10.npz"]
        est = NMF(4, **kw)
        W = resume_nmf(est, X, tmp_path / "ck-10.npz", every=5,
                       checkpoint_path=tmp_path / "ck-{n_iter}.npz")
    np.testing.assert_array_equal(W, W_full)
    np.testing.assert_array_equal(est.components_, full.components_)
    assert est.n_iter_ == 20 and est.init == "random" and est.max_iter == 20
    assert load_checkpoint(tmp_path / "ck-20.npz").n_iter == 20


def test_out_of_core_resume_and_checkpoint_file(tmp_path, memmap):
    Xm, _, _, _ = memmap
    kw = dict(random_state=0, tol=0, max_memory="200KB")
    full = fit_out_of_core(Xm, 4, max_iter=12, **kw)
    fit_out_of_core(Xm, 4, max_iter=12, callback=Checkpointer(tmp_path / "c.npz", every=4,
                                                              then=lambda i: i.n_iter == 6), **kw)
    ck = load_checkpoint(tmp_path / "c.npz")
    assert ck.n_iter == 4
    rest = fit_out_of_core(Xm, 4, **ck.resume_kwargs(12), tol=0, max_memory="200KB")
    np.testing.assert_array_equal(rest.H, full.H)
    np.testing.assert_array_equal(rest.W, full.W)
    save_checkpoint(tmp_path / "bad.npz", ck.W, ck.H, 3)
    np.savez(tmp_path / "other.npz", a=1)
    with pytest.raises(ValueError, match="not an nmfkit checkpoint"):
        load_checkpoint(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="leaves nothing to run"):
        ck.resume_kwargs(4)
