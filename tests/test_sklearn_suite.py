"""scikit-learn's own NMF test module, run against nmfkit.

The module ships with the installed scikit-learn (sklearn/decomposition/tests/test_nmf.py).
Its import of ``NMF`` and ``non_negative_factorization`` is rewritten to take nmfkit's; the
tests then run unchanged. ``MiniBatchNMF`` comes from nmfkit when nmfkit provides it, else
from scikit-learn (those tests then check scikit-learn against itself, plus the MU
equivalence test, which compares nmfkit's NMF with scikit-learn's MiniBatchNMF).

Tests that exercise scikit-learn's private helpers (``nmf._initialize_nmf``,
``nmf._beta_divergence``, ``nmf._special_sparse_dot``) still run: they check scikit-learn,
and nmfkit's own equivalents are tested in test_init.py and test_losses.py. Deliberate
deviations are listed in DEVIATIONS with the reason, and documented in docs/compatibility.md.
"""

import importlib.util
import pathlib

import pytest

import nmfkit

_spec = importlib.util.find_spec("sklearn")
_path = pathlib.Path(_spec.submodule_search_locations[0]) / "decomposition" / "tests" / "test_nmf.py"
_ORIGINAL = "from sklearn.decomposition import NMF, MiniBatchNMF, non_negative_factorization"

if not _path.exists():  # pragma: no cover - scikit-learn installed without its tests
    pytest.skip(f"scikit-learn's test module not found at {_path}", allow_module_level=True)

# tests collected from scikit-learn 1.9.1's module (parametrised cases included); fewer fails
# the run (tests/conftest.py), so a changed module cannot shrink the suite unnoticed
EXPECTED_MIN_TESTS = 284

_source = _path.read_text()
if _ORIGINAL not in _source:  # a future scikit-learn changed the import: fail, never skip
    raise ImportError(
        f"scikit-learn's NMF test module ({_path}) no longer contains the line {_ORIGINAL!r}, "
        "so its ~280 tests cannot be pointed at nmfkit; update _ORIGINAL and the rewrite in "
        "tests/test_sklearn_suite.py."
    )

_replacement = "from nmfkit import NMF, non_negative_factorization\n"
if hasattr(nmfkit, "MiniBatchNMF"):
    _replacement += "from nmfkit import MiniBatchNMF\n"
else:
    _replacement += "from sklearn.decomposition import MiniBatchNMF\n"

# deliberate deviations: test id -> reason (kept in sync with docs/compatibility.md)
DEVIATIONS: dict[str, str] = {
    "test_minibatch_nmf_partial_fit": (
        "passes in scikit-learn only because its fit(init='custom') updates the caller's H in "
        "place and partial_fit then aliases that same array, so components_ of both models are "
        "one object; nmfkit never mutates the caller's W/H, so the two genuinely different "
        "fits differ (partial_fit semantics are tested in tests/test_minibatch.py)"
    ),
    "test_parameter_checking": (
        "asserts NMF(solver='cd', beta_loss=1.0) raises 'solver 'cd' does not handle "
        "beta_loss = 1.0'; nmfkit's cd handles KL (Newton coordinate descent, Hsieh & Dhillon "
        "2011; issue 3). The test's other checks run in tests/test_solvers_fast.py::"
        "test_sklearn_parameter_checking_without_the_cd_kl_line"
    ),
}

exec(compile(_source.replace(_ORIGINAL, _replacement), str(_path), "exec"), globals())

# pytest does not call collection hooks defined in a test module: mark the deviations here
for _name, _reason in DEVIATIONS.items():
    if _name in globals():
        globals()[_name] = pytest.mark.xfail(reason=_reason, strict=True)(globals()[_name])

