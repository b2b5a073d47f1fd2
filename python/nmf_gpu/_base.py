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


# ------------------------------------------------------------------ parameters, as scikit-learn

try:  # scikit-learn's own validation: its classes, its wording, its InvalidParameterError
    from sklearn.utils._param_validation import (  # noqa: F401
        Interval,
        InvalidParameterError,
        StrOptions,
        validate_parameter_constraints as _sk_validate,
    )
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _sk_validate = None

    class InvalidParameterError(ValueError, TypeError):
        """A constructor parameter of the wrong type or value (scikit-learn's class)."""

    class Interval:
        """Numbers of ``type`` between ``left`` and ``right`` (None: unbounded)."""

        def __init__(self, type, left, right, *, closed):
            self.type, self.left, self.right, self.closed = type, left, right, closed

        def is_satisfied_by(self, val):
            if not isinstance(val, self.type) or isinstance(val, bool):
                return False
            lo_ok = self.left is None or (
                val >= self.left if self.closed in ("left", "both") else val > self.left)
            hi_ok = self.right is None or (
                val <= self.right if self.closed in ("right", "both") else val < self.right)
            return lo_ok and hi_ok

        def __str__(self):
            integral = self.type is numbers.Integral
            left = "-inf" if self.left is None else (self.left if integral else float(self.left))
            right = "inf" if self.right is None else (
                self.right if integral else float(self.right))
            return (f"{'an int' if integral else 'a float'} in the range "
                    f"{'[' if self.closed in ('left', 'both') else '('}{left}, {right}"
                    f"{']' if self.closed in ('right', 'both') else ')'}")

    class StrOptions:
        """One of a set of strings."""

        def __init__(self, options):
            self.options = options

        def is_satisfied_by(self, val):
            return isinstance(val, str) and val in self.options

        def __str__(self):
            return "a str among {" + ", ".join(repr(o) for o in sorted(self.options)) + "}"


def _fallback_satisfied(constraint, value):  # pragma: no cover - without scikit-learn
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "verbose":
        return isinstance(value, (numbers.Integral, bool, np.bool_))
    if constraint == "random_state":
        return value is None or isinstance(value, np.random.RandomState) or (
            isinstance(value, numbers.Integral) and 0 <= value <= 2**32 - 1)
    if constraint == "array-like":
        return hasattr(value, "__len__") or hasattr(value, "shape")
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.is_satisfied_by(value)


def _fallback_str(constraint):  # pragma: no cover - without scikit-learn
    return {None: "None", "boolean": "an instance of 'bool'",
            "verbose": "an int or a bool",
            "random_state": "an int in the range [0, 4294967295], an instance of "
                            "'numpy.random.mtrand.RandomState' or None",
            "array-like": "an array-like"}.get(
        constraint, f"an instance of {constraint.__name__!r}"
        if isinstance(constraint, type) else str(constraint))


def validate_params(params, constraints, caller):
    """Raise scikit-learn's InvalidParameterError ("The 'tol' parameter of NMF must be a float
    in the range [0.0, inf). Got -1 instead.") for the first parameter of ``params`` that meets
    none of its ``constraints`` (scikit-learn's own check when it is installed)."""
    if _sk_validate is not None:
        _sk_validate(constraints, params, caller_name=caller)
        return
    for name, value in params.items():  # pragma: no cover - without scikit-learn
        cons = constraints.get(name)
        if cons is None or cons == "no_validation":
            continue
        if not any(_fallback_satisfied(c, value) for c in cons):
            strs = [_fallback_str(c) for c in cons]
            desc = strs[0] if len(strs) == 1 else f"{', '.join(strs[:-1])} or {strs[-1]}"
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be {desc}. Got {value!r} instead.")


def param_error(estimator, name, expected):
    """InvalidParameterError in scikit-learn's words for a parameter checked here."""
    value = getattr(estimator, name)
    return InvalidParameterError(
        f"The {name!r} parameter of {type(estimator).__name__} must be {expected}. "
        f"Got {value!r} instead."
    )


#: The constraints scikit-learn's NMF and MiniBatchNMF share (``_BaseNMF``).
BASE_CONSTRAINTS = {
    "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None,
                     StrOptions({"auto"})],
    "init": [StrOptions({"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}), None],
    "beta_loss": [StrOptions({"frobenius", "kullback-leibler", "itakura-saito"}),
                  numbers.Real],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "alpha_W": [Interval(numbers.Real, 0, None, closed="left")],
    "alpha_H": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"same"})],
    "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
    "verbose": ["verbose"],
}

#: scikit-learn's ``beta_loss`` names and their β.
BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}


def beta_of(estimator):
    """β of ``beta_loss`` (validated before), finite."""
    b = BETA_NAMES.get(estimator.beta_loss) if isinstance(estimator.beta_loss, str) \
        else float(estimator.beta_loss)
    if b is None or not np.isfinite(b):
        raise param_error(estimator, "beta_loss",
                          "a str among {'frobenius', 'itakura-saito', 'kullback-leibler'} or "
                          "a finite float")
    return b


def loss_name(beta):
    """The engine's name of the β-divergence (``frobenius``, ``kl``, ``is`` or ``beta=<β>``)."""
    return {2.0: "frobenius", 1.0: "kl", 0.0: "is"}.get(beta, f"beta={beta!r}")


def out_dtype(X):
    """scikit-learn's output dtype: float32 for float32 data, float64 for anything else."""
    return np.float32 if X.dtype == np.float32 else np.float64


def check_init(A, shape, whom):
    """scikit-learn's ``_check_init``: a 2-D finite array of ``shape`` ("auto" matches any
    size), nonnegative, not all zero; the wrong dimension is named ("Array with wrong first
    dimension passed to NMF (input H). Expected 3, but got 4.")."""
    A = np.asarray(A)
    if A.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {A.ndim}D array instead for {whom}.")
    if A.dtype.kind not in "biuf" or not np.isfinite(A).all():
        raise ValueError(f"Input contains NaN, infinity or a value that is not a number "
                         f"({whom}).")
    for axis, word in ((0, "first"), (1, "second")):
        if shape[axis] != "auto" and A.shape[axis] != shape[axis]:
            raise ValueError(
                f"Array with wrong {word} dimension passed to {whom}. Expected "
                f"{shape[axis]}, but got {A.shape[axis]}."
            )
    if A.size and A.min() < 0:
        raise ValueError(f"Negative values in data passed to {whom}")
    if not A.size or A.max() == 0:
        raise ValueError(f"Array passed to {whom} is full of zeros.")
    return A


def check_start_dtype(X, W=None, H=None):
    """scikit-learn's rule: a custom start has X's dtype, else TypeError."""
    if W is None:
        if np.asarray(H).dtype != X.dtype:
            raise TypeError(
                f"H should have the same dtype as X. Got H.dtype = {np.asarray(H).dtype}.")
        return
    if np.asarray(H).dtype != X.dtype or np.asarray(W).dtype != X.dtype:
        raise TypeError(
            "H and W should have the same dtype as X. Got "
            f"H.dtype = {np.asarray(H).dtype} and W.dtype = {np.asarray(W).dtype}."
        )


def beta_divergence(X, W, H, beta, square_root=False):
    """scikit-learn's ``_beta_divergence`` of X and W H, in float64 (``sqrt(2 D)`` with
    ``square_root``): the ``reconstruction_err_`` of its estimators."""
    eps = np.finfo(np.float32).eps
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    WH = W @ H
    if beta == 2:
        res = 0.5 * np.sum((X - WH) ** 2)
    else:
        x = X.ravel()
        y = WH.ravel()
        keep = x > eps
        xk, yk = x[keep], np.maximum(y[keep], eps)
        if beta == 1:
            res = float(np.dot(xk, np.log(xk / yk))) + float(W.sum(0) @ H.sum(1)) - xk.sum()
        elif beta == 0:
            div = xk / yk
            res = float(np.sum(div)) - x.size - float(np.sum(np.log(div)))
        else:
            res = float(np.sum(xk ** beta)) - beta * float(np.dot(xk, yk ** (beta - 1)))
            res += float(np.sum(WH ** beta)) * (beta - 1)
            res /= beta * (beta - 1)
    res = max(float(res), 0.0)
    return np.sqrt(2 * res) if square_root else res


class ComponentsMixin:
    """What NMF and MiniBatchNMF share once fitted (``X ≈ W H``, ``H = components_``): the
    inverse transform, the output width and scikit-learn's tags. Listed before scikit-learn's
    bases, so that its tags extend theirs."""

    @serialised
    def inverse_transform(self, X):
        """Transform data back to its original space: ``X @ components_``.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_components)
            Transformed data.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Data of the original shape.
        """
        check_is_fitted(self)
        return X @ self.components_

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    if HAVE_SKLEARN:

        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.positive_only = True
            tags.input_tags.sparse = True
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
            return tags
