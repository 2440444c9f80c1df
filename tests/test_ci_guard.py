"""CI's rule against silent skips (tests/conftest.py), checked on small generated test files.

Each case runs an inner pytest with this repository's conftest: under ``CI=true`` a skip for a
missing optional backend fails, other skips stay skips, and without CI nothing changes.
"""

import pathlib

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (pathlib.Path(__file__).parent / "conftest.py").read_text()

TESTS = '''
import pytest

def test_missing_zarr():
    pytest.skip("could not import 'zarr': No module named 'zarr'")

@pytest.mark.skipif(True, reason="numba not installed (pip install 'nmfkit[fast]')")
def test_numba_kernel():
    pass

@pytest.mark.skipif(True, reason="Debian's chromium is not installed")
def test_report_rendering():
    pass

@pytest.mark.skipif(True, reason="needs a CUDA device")
def test_gpu_only():
    pass

@pytest.mark.xfail(reason="a known deviation", strict=True)
def test_deviation():
    assert False
'''


@pytest.fixture
def inner(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_cases=TESTS)
    return pytester


def test_ci_turns_backend_skips_into_failures(inner, monkeypatch):
    monkeypatch.setenv("CI", "true")
    res = inner.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(failed=1, errors=2, skipped=1, xfailed=1)  # skipif: at setup
    res.stdout.fnmatch_lines(["*CI=true: skipped for want of an optional package*zarr*"])


def test_without_ci_skips_stay_skips(inner, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    res = inner.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(skipped=4, xfailed=1)


def test_ci_fails_a_module_skipped_for_a_missing_backend(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_h5='''
import pytest
pytest.skip("could not import 'h5py': No module named 'h5py'", allow_module_level=True)

def test_never():
    pass
''')
    monkeypatch.setenv("CI", "true")
    res = pytester.runpytest("-p", "no:cacheprovider")
    assert res.ret != 0
    res.stdout.fnmatch_lines(["*CI=true*h5py*"])
    monkeypatch.delenv("CI")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=1)


def test_sklearn_suite_shrinking_is_an_error(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_sklearn_suite='''
EXPECTED_MIN_TESTS = 3

def test_a():
    pass

def test_b():
    pass
''')
    monkeypatch.delenv("CI", raising=False)
    # in a subprocess: the real tests/test_sklearn_suite.py may already be imported here
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert res.ret != 0
    res.stderr.fnmatch_lines(["*collected 2 tests*fewer than the 3 expected*"])
    # a selection of single tests is not a shrunken suite
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                        "test_sklearn_suite.py::test_a")
    res.assert_outcomes(passed=1)
