"""scikit-learn's estimator checks, in the configuration scikit-learn uses for its own NMF."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from nmfkit import NMF


@parametrize_with_checks([NMF(max_iter=500)])
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
