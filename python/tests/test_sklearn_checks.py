"""scikit-learn's estimator checks on nmf_gpu.NMF and nmf_gpu.MiniBatchNMF."""

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from nmf_gpu import NMF, MiniBatchNMF  # noqa: E402

# Checks that cannot pass, and why: none; every check of scikit-learn 1.9 passes (scikit-learn
# itself skips the array-API check unless SCIPY_ARRAY_API is set).
EXPECTED_FAILED = {}


@parametrize_with_checks(
    [NMF(n_components=2, max_iter=500, backend="cpu"),
     MiniBatchNMF(n_components=2, fresh_restarts=True, backend="cpu")],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
