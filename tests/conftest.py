"""Shared fixtures and data helpers of the test-suite."""

import numpy as np
import pytest


@pytest.fixture
def torch_one_thread():
    """torch on one thread for the test: the products are tiny and the machine is shared, so
    torch's thread pool only adds contention. Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def sparse_abs_gauss(n, m, seed=0, cut=0.5):
    """|N(0, 1)| entries with those below ``cut`` set to exactly zero: a small non-negative X
    that is genuinely sparse (n, m)."""
    rng = np.random.RandomState(seed)
    X = np.abs(rng.randn(n, m))
    X[X < cut] = 0.0
    return X
