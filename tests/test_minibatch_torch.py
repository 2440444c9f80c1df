"""MiniBatchNMF on the torch backend, what only torch has: refusals with the alternative,
switching backend between calls, host reads per batch, CUDA against the CPU. The trajectory
against numpy and the arrays in and out run on numpy and torch alike (the ``backend``
fixture): tests/test_minibatch_backends.py."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import MINIBATCH_CASES as CASES
from _helpers import minibatch_fit as fit
from _helpers import minibatch_kw as kw
from _helpers import planted

from nmfkit import MiniBatchNMF
from nmfkit.penalties import Graph

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()


def as_tensor(X, sparse, dtype=torch.float64, device="cpu"):
    T = torch.as_tensor(X, dtype=dtype, device=device)
    return T.to_sparse_csr() if sparse else T


def test_what_torch_cannot_run_is_refused_with_the_alternative():
    X = torch.from_numpy(planted(n=40))
    with pytest.raises(ValueError, match="numpy backend only"):
        MiniBatchNMF(2).fit(X, mask=np.ones(tuple(X.shape), dtype=bool))
    with pytest.raises(ValueError, match="numpy backend only"):
        MiniBatchNMF(2, missing_values="unobserved").fit(X.to_sparse_csr())
    g = Graph(0.1, "H", affinity=sp.identity(X.shape[1], format="csr"))
    with pytest.raises(ValueError, match="L1 and L2"):
        MiniBatchNMF(2, penalties=[g]).fit(X)
    with pytest.raises(ValueError, match="Negative values"):
        MiniBatchNMF(2).fit(-X)
    with pytest.raises(ValueError, match="beta_loss <= 0"):
        MiniBatchNMF(2, beta_loss="itakura-saito", init="nndsvda").fit(X)


def test_fit_on_tensor_then_numpy_transform_and_partial_fit():
    # the state follows each call's backend: a tensor-fitted model serves numpy input too
    X = planted()
    b, _ = fit(torch.from_numpy(X), **kw())
    W = b.transform(X[:10])
    assert isinstance(W, np.ndarray) and W.shape == (10, 4)
    b.partial_fit(X[:40])
    assert isinstance(b.components_, np.ndarray) and b.n_steps_ == 13


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver, beta", CASES)
def test_cuda_matches_cpu(solver, beta, sparse):
    X = planted(n=400)
    params = kw(solver, beta, init="random")  # random init: the same numbers on any device
    a, _ = fit(as_tensor(X, sparse), **params)
    b, Wb = fit(as_tensor(X, sparse, device="cuda"), **params)
    assert b.components_.device.type == Wb.device.type == "cuda"
    np.testing.assert_allclose(b.components_.cpu().numpy(), a.components_.numpy(),
                               rtol=1e-7, atol=1e-9)
    c = MiniBatchNMF(**params, backend="torch", device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(0, 400, 100):
            c.partial_fit(sp.csr_matrix(X[s:s + 100]) if sparse else X[s:s + 100])
    assert isinstance(c.components_, np.ndarray)
    assert c._components_numerator.device.type == "cuda"


def _count_host_reads(monkeypatch):
    """Count the ways a tensor's value reaches the host (float(), .item(), .tolist(), ...)."""
    counter = {"n": 0}
    for name in ("__float__", "__int__", "__index__", "__bool__", "item", "tolist", "numpy"):
        orig = getattr(torch.Tensor, name)

        def wrapped(self, *args, _orig=orig, **kwargs):
            counter["n"] += 1
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    return counter


@pytest.mark.parametrize("sparse, solver, beta", [(False, "mu", 2), (True, "mu", 1),
                                                  (False, "cd", 2), (True, "cd", 2)])
def test_host_reads_per_batch(monkeypatch, sparse, solver, beta):
    # none per batch without a stopping rule; one per batch (cost and H's change together)
    # with scikit-learn's rule — counted as the difference between 2 and 4 passes of 8 batches
    T = as_tensor(planted(n=400), sparse)
    counter = _count_host_reads(monkeypatch)
    reads = {}
    for rule, extra in [("none", {"tol": 0, "max_no_improvement": None}),
                        ("sklearn", {"tol": 1e-12, "max_no_improvement": 1000})]:
        for epochs in (2, 4):
            counter["n"] = 0
            fit(T, **kw(solver, beta, batch_size=50, max_iter=epochs, **extra))
            reads[rule, epochs] = counter["n"]
    assert reads["none", 4] == reads["none", 2]
    assert reads["sklearn", 4] - reads["sklearn", 2] == 2 * 8


