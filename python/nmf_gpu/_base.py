"""scikit-learn integration when it is installed, small stand-ins when it is not.

Everything the estimators need from scikit-learn goes through this module: the base classes, the
input validation (``validate_data``), ``check_is_fitted``, ``check_random_state`` and
``ConvergenceWarning``. Without scikit-learn (or with one older than 1.6) the stand-ins give the
same behaviour for the estimators' own use: parameters by ``get_params``/``set_params``, the
number and names of the input features, and the same errors for bad input.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import sys
import threading
import weakref

import numpy as np

try:  # scikit-learn >= 1.6 (validate_data and __sklearn_tags__)
    from sklearn.base import (  # noqa: F401
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        TransformerMixin,
    )
    from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: F401
    from sklearn.utils import check_random_state  # noqa: F401
    from sklearn.utils.validation import check_is_fitted, validate_data

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    HAVE_SKLEARN = False

    class ConvergenceWarning(UserWarning):
        """A fit stopped at ``max_iter`` before its stopping rule was met."""

    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before ``fit``."""

    class BaseEstimator:
        """Parameters from the constructor's signature: ``get_params``, ``set_params``."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(
                p.name
                for p in sig.parameters.values()
                if p.name != "self" and p.kind != p.VAR_KEYWORD
            )

        def get_params(self, deep=True):
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for k, v in params.items():
                if k not in valid:
                    raise ValueError(
                        f"Invalid parameter {k!r} for estimator {type(self).__name__}. "
                        f"Valid parameters are: {valid!r}."
                    )
                setattr(self, k, v)
            return self

        def __repr__(self):
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class TransformerMixin:
        """``fit_transform`` as ``fit`` then ``transform``."""

        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)

    class ClassNamePrefixFeaturesOutMixin:
        """Output feature names ``<classname><i>``."""

        def get_feature_names_out(self, input_features=None):
            check_is_fitted(self, "_n_features_out")
            prefix = type(self).__name__.lower()
            return np.asarray(
                [f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object
            )

    def check_random_state(seed):
        if seed is None or seed is np.random:
            return np.random.mtrand._rand
        if isinstance(seed, numbers.Integral):
            return np.random.RandomState(seed)
        if isinstance(seed, np.random.RandomState):
            return seed
        raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")

    def check_is_fitted(estimator, attributes=None):
        attrs = [attributes] if isinstance(attributes, str) else attributes
        if attrs is None:
            fitted = [v for v in vars(estimator) if v.endswith("_") and not v.startswith("__")]
        else:
            fitted = [a for a in attrs if hasattr(estimator, a)]
        if not fitted or (attrs is not None and len(fitted) != len(attrs)):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _feature_names(X):
        cols = getattr(X, "columns", None)
        if cols is None:
            return None
        names = np.asarray(cols, dtype=object)
        if len(names) and all(isinstance(c, str) for c in names):
            return names
        return None

    def validate_data(estimator, X, *, reset=True, accept_sparse=False, dtype=None,
                      ensure_non_negative=False, ensure_all_finite=True, **_):
        name = type(estimator).__name__
        names = _feature_names(X)
        if hasattr(X, "tocsr") and hasattr(X, "nnz"):
            if not accept_sparse:
                raise TypeError(f"Sparse data was passed to {name}, but dense data is required.")
            X = X.tocsr()
            data = X.data
            if data.dtype.kind == "c":
                raise ValueError(f"Complex data not supported\n{X}\n")
        else:
            X = np.asarray(X)
            if X.dtype.kind == "c":
                raise ValueError(f"Complex data not supported\n{X}\n")
            if X.dtype.kind not in "biuf":
                try:
                    X = X.astype(np.float64)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"could not convert the input of {name} to float: {e}") from e
            if X.ndim != 2:
                raise ValueError(
                    f"Expected 2D array, got {X.ndim}D array instead. Reshape your data either "
                    "using array.reshape(-1, 1) if your data has a single feature or "
                    "array.reshape(1, -1) if it contains a single sample."
                )
            data = X
        if dtype is not None and X.dtype not in [np.dtype(d) for d in dtype]:
            X = X.astype(dtype[0])
            data = X.data if hasattr(X, "nnz") else X
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                f"(shape={X.shape}) while a minimum of 1 is required by {name}."
            )
        if ensure_all_finite == "allow-nan":
            if data.size and np.isinf(data).any():
                raise ValueError(f"Input X contains infinity ({name}).")
        elif ensure_all_finite and data.size and not np.isfinite(data).all():
            raise ValueError(f"Input X contains NaN or infinity ({name}).")
        if ensure_non_negative and data.size and data.min() < 0:
            raise ValueError(f"Negative values in data passed to {name}.")
        if reset:
            estimator.n_features_in_ = X.shape[1]
            if names is not None:
                estimator.feature_names_in_ = names
            elif hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        else:
            expected = getattr(estimator, "n_features_in_", None)
            if expected is not None and X.shape[1] != expected:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {name} is expecting {expected} "
                    "features as input."
                )
            fitted = getattr(estimator, "feature_names_in_", None)
            if fitted is not None and names is not None and list(fitted) != list(names):
                raise ValueError(
                    "The feature names should match those that were passed during fit."
                )
        return X


# ------------------------------------------------------------------ shared by every estimator

#: The largest integer the engines take for a count (a rank, a number of iterations or starts).
MAX_COUNT = sys.maxsize


def check_count(estimator, name, value, low=1, also=""):
    """``value`` as an int in ``[low, MAX_COUNT]``; otherwise a ValueError in scikit-learn's
    parameter-validation style, e.g. "The 'n_components' parameter of NMF must be an int in the
    range [1, 9223372036854775807]. Got 18446744073709551616 instead." ``also`` names the other
    accepted values (", None or a str among {'auto'}")."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) \
            or not low <= value <= MAX_COUNT:
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be an int in the range "
            f"[{low}, {MAX_COUNT}]{also}. Got {value!r} instead."
        )
    return int(value)


# One lock per estimator instance, held while it fits or reads its fitted attributes: fits of
# one estimator from several threads run one after the other (the last to finish wins), so its
# attributes always come from one fit. The locks live beside the estimators (not in them), so
# that estimators stay picklable and clonable.
_LOCKS = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_of(estimator):
    with _LOCKS_GUARD:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
        return lock


def serialised(method):
    """Run ``method`` holding the estimator's lock (see ``_LOCKS``); reentrant, so a method that
    calls another (``fit`` calling ``fit_transform``) takes it once."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _lock_of(self):
            return method(self, *args, **kwargs)

    return wrapper
