"""Shared fixtures and data helpers of the test-suite, and CI's rule against silent skips.

Under ``CI=true`` (``.ci/run``), the optional packages CI installs must be importable: a test
or a test module skipped for want of one of them (torch, Dask, numba, zarr, h5py, RecBole's
MovieLens data, Debian's chromium) fails instead, and scikit-learn's NMF test module must
collect at least the number of tests it is known to hold. Elsewhere (the README's test
command, which installs no optional backend) those skips stay skips.
"""

import os
import re

import numpy as np
import pytest

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _ctrl_c_as_at_a_terminal():
    """Each test starts with SIGINT at Python's default handler, as at a terminal: a suite
    started as a background job inherits SIGINT ignored, and a test that leaves another
    handler behind would change what Ctrl-C does in the tests after it (the fit loop defers
    Ctrl-C only under the default handler; the CLI keeps an ignored SIGINT ignored)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    if before is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before if before is not None else signal.default_int_handler)


# skip reasons that mean "an optional package CI installs is missing"
_OPTIONAL = r"(torch|dask|distributed|numba|zarr|h5py|recbole|chromium)"
_MISSING = re.compile(
    rf"could not import '{_OPTIONAL}\b"  # pytest.importorskip
    rf"|No module named '{_OPTIONAL}\b"
    rf"|\b{_OPTIONAL}\b[^.]*\b(not installed|kernel)\b"  # skipif(not HAVE_NUMBA, ...) etc.
    rf"|\bneeds (the data in the )?{_OPTIONAL}\b"  # documentation blocks
    rf"|pip install[^.]*\b{_OPTIONAL}\b"
    r"|scikit-learn's test module",  # its NMF test module absent or unreadable
    re.IGNORECASE,
)


def _skip_reason(report) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:  # (path, line, "Skipped: reason")
        return str(lr[2])
    return str(lr)


def ci_forbids(reason: str) -> bool:
    """True when, under CI, a skip with this reason must be a failure."""
    return bool(_MISSING.search(reason))


def _fail_instead(report, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: skipped for want of an optional package that CI installs "
        f"(.ci/run, .ci/extra-requirements.txt): {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if ci_forbids(reason):
            _fail_instead(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if CI and report.skipped:  # a whole module skipped (module-level importorskip)
        reason = _skip_reason(report)
        if ci_forbids(reason):
            _fail_instead(report, reason)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """scikit-learn's NMF suite must not shrink silently: when tests/test_sklearn_suite.py is
    collected whole, it must hold at least its module's ``EXPECTED_MIN_TESTS`` tests.
    (tryfirst: counted before ``-k`` / ``-m`` deselect anything.)"""
    if any("test_sklearn_suite.py::" in str(a) for a in config.args):
        return  # a selection of single tests
    suite = [it for it in items if it.nodeid.split("::")[0].endswith("test_sklearn_suite.py")]
    if not suite:
        return
    expected = getattr(suite[0].module, "EXPECTED_MIN_TESTS", 0)
    if len(suite) < expected:
        raise pytest.UsageError(
            f"tests/test_sklearn_suite.py collected {len(suite)} tests from scikit-learn's NMF "
            f"test module, fewer than the {expected} expected: its import line or its tests "
            "changed; update the rewrite (or EXPECTED_MIN_TESTS) in that file."
        )


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


class ArrayBackend:
    """One array framework as a test sees it (the ``backend`` fixture): build its arrays from
    numpy/scipy data (``asarray``), read them back (``to_numpy``), check their type and dtype,
    and the tolerance against a float64 numpy reference for each dtype. "torch" means CPU
    tensors (a device has its own checks, tests/test_torch_backend.py)."""

    # rtol against numpy float64 for a fit of a few dozen iterations in this dtype
    RTOL = {"float64": 1e-8, "float32": 1e-3}

    def __init__(self, name: str):
        self.name = name
        self.torch = None
        if name == "torch":
            import torch

            self.torch = torch
        self.array_type = self.torch.Tensor if self.torch is not None else np.ndarray
        # the float dtype integer input is fitted in: scikit-learn's float64, torch's default
        self.int_float = "float32" if self.torch is not None else "float64"
        # an explicit backend= for the estimators (numpy input fitted on this backend)
        self.kwargs = {"backend": name, "device": "cpu"}

    def __repr__(self):
        return f"ArrayBackend({self.name!r})"

    @property
    def nx(self):
        from nmfkit.backends import get_backend

        return get_backend(backend=self.name)

    def dtype(self, name="float64"):
        if self.torch is None:
            return np.dtype(name)
        if isinstance(name, self.torch.dtype):
            return name
        return getattr(self.torch, str(np.dtype(name)))

    def rtol(self, dtype="float64") -> float:
        return self.RTOL[str(np.dtype(str(dtype).replace("torch.", "")))]

    def asarray(self, X, dtype=None, sparse=False):
        """numpy or scipy.sparse ``X`` as this backend's array; ``sparse``: False (dense;
        a scipy X stays sparse), True / "csr" or "coo"."""
        import scipy.sparse as sp

        if sparse or sp.issparse(X):
            S = sp.coo_matrix(X) if sparse == "coo" else sp.csr_matrix(X)
            if dtype is not None:
                S = S.astype(np.dtype(dtype))
            if self.torch is None:
                return S
            t = self.torch
            if sparse == "coo":  # the stored entries as they are (explicit zeros included)
                idx = t.as_tensor(np.vstack([S.row, S.col]).astype(np.int64))
                return t.sparse_coo_tensor(idx, t.as_tensor(S.data), S.shape).coalesce()
            return t.sparse_csr_tensor(t.as_tensor(S.indptr.astype(np.int64)),
                                       t.as_tensor(S.indices.astype(np.int64)),
                                       t.as_tensor(S.data), size=S.shape, check_invariants=True)
        if self.torch is None:
            return np.asarray(X, dtype=None if dtype is None else np.dtype(dtype))
        return self.torch.as_tensor(X, dtype=None if dtype is None else self.dtype(dtype))

    def to_numpy(self, A):
        """A dense numpy array of ``A`` (a tensor, a scipy matrix or an array)."""
        import scipy.sparse as sp

        if self.torch is not None and isinstance(A, self.torch.Tensor):
            A = A.detach().cpu()
            return (A.to_dense() if A.layout != self.torch.strided else A).numpy()
        return A.toarray() if sp.issparse(A) else np.asarray(A)

    def is_array(self, A, dtype=None) -> bool:
        """``A`` is a dense array of this backend (on the CPU), of ``dtype`` if given."""
        if not isinstance(A, self.array_type):
            return False
        if self.torch is not None and A.device.type != "cpu":
            return False
        return dtype is None or A.dtype == self.dtype(dtype)

    def assert_close(self, actual, expected, rtol, atol):
        """Both arrays of this backend, of one dtype, equal to the tolerances."""
        assert self.is_array(actual) and self.is_array(expected, actual.dtype)
        np.testing.assert_allclose(self.to_numpy(actual), self.to_numpy(expected), rtol=rtol,
                                   atol=atol)

    def array_equal(self, a, b) -> bool:
        """Bit for bit, of one backend and dtype."""
        return (self.is_array(a) and self.is_array(b, a.dtype)
                and np.array_equal(self.to_numpy(a), self.to_numpy(b)))


@pytest.fixture(params=["numpy", "torch"])
def backend(request):
    """The estimator tests' one switch between numpy and (CPU) torch. The torch side skips
    where torch is not installed (the README's command) and, like every such skip, fails
    under ``CI=true``; it runs with torch on one thread (``torch_one_thread``)."""
    if request.param == "torch":
        pytest.importorskip("torch")
        request.getfixturevalue("torch_one_thread")
    return ArrayBackend(request.param)
