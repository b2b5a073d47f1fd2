"""``NMF``: scikit-learn's estimator on the nmf-gpu engines."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import _core
from ._base import (
    HAVE_SKLEARN,
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ConvergenceWarning,
    TransformerMixin,
    check_count,
    check_is_fitted,
    check_random_state,
    serialised,
    validate_data,
)

_INITS = (None, "random", "nndsvd", "nndsvda", "nndsvdar", "custom")
_BACKENDS = ("auto", "cpu", "gpu")


def _is_backend(backend):
    """``auto``, ``cpu``, ``gpu``, or ``gpu:N`` (the adapter of index N in ``gpu_info()``)."""
    if not isinstance(backend, str):
        return False
    if backend in _BACKENDS:
        return True
    head, sep, index = backend.partition(":")
    return head == "gpu" and sep == ":" and index.isdigit() and index.isascii()


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _beta_loss_name(beta_loss, solver):
    """The engine's loss name for scikit-learn's ``beta_loss``: a name, or ``beta=<float>``."""
    names = {"frobenius": "frobenius", "kullback-leibler": "kullback-leibler",
             "itakura-saito": "itakura-saito"}
    if isinstance(beta_loss, str):
        name = names.get(beta_loss)
    elif isinstance(beta_loss, numbers.Real) and not isinstance(beta_loss, bool) \
            and np.isfinite(beta_loss):
        beta = float(beta_loss)
        name = {2.0: "frobenius", 1.0: "kullback-leibler", 0.0: "itakura-saito"}.get(
            beta, f"beta={beta!r}")
    else:
        name = None
    if name is None:
        raise ValueError(
            "beta_loss must be 'frobenius' (2), 'kullback-leibler' (1), 'itakura-saito' (0) "
            f"or a finite number; got {beta_loss!r}"
        )
    if solver == "cd" and name != "frobenius":
        raise ValueError(
            f"Invalid beta_loss parameter: solver 'cd' does not handle beta_loss = {beta_loss!r}; "
            "use solver='mu' for other beta-divergences"
        )
    return name


def _as_csr32(X):
    """CSR with sorted, summed entries, float32 values and int64 index arrays."""
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    data = np.ascontiguousarray(X.data, dtype=np.float32)
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(X.indices, dtype=np.int64)
    return X.shape, indptr, indices, data


def _as_f32(X):
    """X as float32 without a copy when it already is float32 and contiguous."""
    if X.dtype == np.float32 and (X.flags.c_contiguous or X.flags.f_contiguous):
        return X
    return np.asarray(X, dtype=np.float32, order="K")


class NMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Non-Negative Matrix Factorization on the nmf-gpu engines.

    Finds nonnegative ``W`` (n_samples x n_components) and ``H`` (n_components x n_features)
    whose product approximates the nonnegative data ``X``, minimising

    .. math::

        0.5 ||X - WH||_{loss}^2
        + alpha_W l1_ratio n_features ||vec(W)||_1
        + alpha_H l1_ratio n_samples ||vec(H)||_1
        + 0.5 alpha_W (1 - l1_ratio) n_features ||W||_{Fro}^2
        + 0.5 alpha_H (1 - l1_ratio) n_samples ||H||_{Fro}^2

    exactly as :class:`sklearn.decomposition.NMF` does, with the same parameters, attributes
    and orientation (``X`` is samples x features). The iterations run in Rust, on the CPU
    engine (multithreaded, AVX-512 where available) or on the GPU (wgpu: Vulkan, Metal, DX12),
    with the GIL released; Ctrl-C stops a fit within a fraction of a second.

    Parameters
    ----------
    n_components : int, "auto" or None, default=None
        Number of components. None or "auto": the number of features (or the rows of ``H``
        with ``init="custom"``).
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}, default=None
        Start of the iterations. None: "nndsvda" when ``n_components <= min(n_samples,
        n_features)``, else "random". "custom" uses the ``W`` and ``H`` given to
        ``fit_transform``.
    solver : {"cd", "mu"}, default="cd"
        "cd": coordinate descent (HALS, Frobenius loss only); "mu": multiplicative updates.
    beta_loss : float or {"frobenius", "kullback-leibler", "itakura-saito"}, default="frobenius"
        The beta-divergence minimised: "frobenius" (2), "kullback-leibler" (1),
        "itakura-saito" (0) or any finite beta; all but "frobenius" need ``solver="mu"``
        (scikit-learn's rules). For beta <= 0 the input must have no zeros.
    tol : float, default=1e-4
        Stopping rule: the relative decrease of the error between checks (every 10
        iterations) falls below ``tol``; 0 runs exactly ``max_iter`` iterations.
    max_iter : int, default=200
        Maximum number of iterations.
    random_state : int, RandomState instance or None, default=None
        Seed of the "random" and "nndsvdar" starts.
    alpha_W : float, default=0.0
        Regularisation of ``W`` (scaled by n_features).
    alpha_H : float or "same", default="same"
        Regularisation of ``H`` (scaled by n_samples); "same" takes ``alpha_W``.
    l1_ratio : float, default=0.0
        Mix of L1 (1.0) and L2 (0.0) in the regularisation.
    verbose : int, default=0
        Print the loss at each check.
    shuffle : bool, default=False
        Only False is supported (the coordinates are updated in order).
    backend : {"auto", "cpu", "gpu"} or "gpu:N", default="auto"
        The engine: "auto" takes a hardware GPU when there is one, else the CPU; sparse input
        runs on the CPU with "auto", on the GPU with "gpu".
    orthogonal : {None, "H", "W"}, default=None
        Orthogonal NMF (``solver="mu"``, Frobenius): "H" constrains ``H Hᵀ = I`` (each
        sample essentially in one component), "W" constrains ``Wᵀ W = I``.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The factor ``H``.
    n_components_ : int
        Number of components.
    reconstruction_err_ : float
        ``sqrt(2 D(X || WH))`` for the beta-divergence D: the Frobenius norm of ``X - WH``
        for the Frobenius loss.
    n_iter_ : int
        Iterations run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features (when ``X`` has string column names, e.g. a DataFrame).
    engine_ : str
        The engine that ran the fit, e.g. ``"cpu (2 threads)"``.
    fit_seconds_ : float
        Wall time of the fit inside the engine (validation, start and iterations).

    Notes
    -----
    One estimator fitted from several threads at once runs the fits one after the other (the
    last to finish wins); its attributes always come from one fit. Clone it
    (``sklearn.base.clone``) to fit in parallel.

    Examples
    --------
    >>> import numpy as np
    >>> from nmf_gpu import NMF
    >>> X = np.random.default_rng(0).random((100, 40))
    >>> model = NMF(n_components=5, init="nndsvda", max_iter=400)
    >>> W = model.fit_transform(X)
    >>> W.shape, model.components_.shape
    ((100, 5), (5, 40))
    """

    def __init__(
        self,
        n_components=None,
        *,
        init=None,
        solver="cd",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        verbose=0,
        shuffle=False,
        backend="auto",
        orthogonal=None,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.verbose = verbose
        self.shuffle = shuffle
        self.backend = backend
        self.orthogonal = orthogonal

    # ----------------------------------------------------------------- parameters

    def _config(self, n_components, init, *, draw_seed=True):
        """The engine's options (validated: every bad value raises ValueError here)."""
        if self.solver not in ("cd", "mu"):
            raise ValueError(f"solver must be 'cd' or 'mu', got {self.solver!r}")
        loss = _beta_loss_name(self.beta_loss, self.solver)
        if not _is_backend(self.backend):
            raise ValueError(
                f"backend must be 'auto', 'cpu', 'gpu' or 'gpu:N', got {self.backend!r}"
            )
        if self.orthogonal not in (None, "H", "W"):
            raise ValueError(f"orthogonal must be None, 'H' or 'W', got {self.orthogonal!r}")
        if self.shuffle:
            raise ValueError("shuffle=True is not supported: the coordinates are updated in order")
        check_count(self, "max_iter", self.max_iter)
        for name in ("tol", "alpha_W", "l1_ratio"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.l1_ratio > 1:
            raise ValueError(f"l1_ratio must lie in [0, 1], got {self.l1_ratio!r}")
        alpha_H = self.alpha_W if (isinstance(self.alpha_H, str) and self.alpha_H == "same") \
            else self.alpha_H
        if not isinstance(alpha_H, numbers.Real) or isinstance(alpha_H, bool) \
                or not np.isfinite(alpha_H) or alpha_H < 0:
            raise ValueError(f"alpha_H must be a finite number >= 0 or 'same', got {alpha_H!r}")
        seed = 0
        if draw_seed:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return {
            "rank": int(n_components),
            "solver": self.solver,
            "loss": loss,
            "init": init,
            "max_iter": int(self.max_iter),
            "tol": float(self.tol),
            "seed": seed,
            "alpha_w": float(self.alpha_W),
            "alpha_h": float(alpha_H),
            "l1_ratio": float(self.l1_ratio),
            "backend": self.backend,
            "orthogonal": "none" if self.orthogonal is None else self.orthogonal,
            "verbose": bool(self.verbose),
        }

    def _n_components_for(self, X, H):
        n = self.n_components
        if n is None or (isinstance(n, str) and n == "auto"):
            if self.init == "custom" and H is not None:
                return np.shape(H)[0]
            return X.shape[1]
        return check_count(self, "n_components", n, also=", None or a str among {'auto'}")

    @staticmethod
    def _check_factor(A, shape, whom):
        A = np.asarray(A)
        if A.shape != shape:
            raise ValueError(
                f"Array with wrong shape passed to {whom}. Expected {shape}, but got {A.shape} "
            )
        if A.dtype.kind not in "biuf" or not np.isfinite(A).all():
            raise ValueError(f"{whom} must be finite numbers")
        if A.size and A.min() < 0:
            raise ValueError(f"Negative values in data passed to {whom}")
        if A.size and A.max() == 0:
            raise ValueError(f"Array passed to {whom} is full of zeros.")
        return np.ascontiguousarray(A, dtype=np.float32)

    # ----------------------------------------------------------------- fitting

    @serialised
    def fit(self, X, y=None, **params):
        """Learn an NMF model for the data X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Nonnegative training data.
        y : Ignored
            Not used, present for API consistency by convention.
        **params : dict
            ``W`` and ``H``, the start for ``init="custom"``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self.fit_transform(X, **params)
        return self

    @serialised
    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn an NMF model for the data X and return the transformed data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Nonnegative training data: numpy arrays of any float or integer dtype and either
            memory order, scipy.sparse matrices, pandas DataFrames.
        y : Ignored
            Not used, present for API consistency by convention.
        W : array-like of shape (n_samples, n_components), default=None
            Start of ``W`` when ``init="custom"``.
        H : array-like of shape (n_components, n_features), default=None
            Start of ``H`` when ``init="custom"``.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            Transformed data (float64 for float64 input, float32 otherwise).
        """
        if self.init not in _INITS:
            raise ValueError(
                "init must be None, 'random', 'nndsvd', 'nndsvda', 'nndsvdar' or 'custom', "
                f"got {self.init!r}"
            )
        X = validate_data(
            self, X, accept_sparse=("csr", "csc"), dtype=[np.float32, np.float64],
            ensure_non_negative=True,
        )
        out_dtype = np.float64 if X.dtype == np.float64 else np.float32
        n_samples, n_features = X.shape
        r = self._n_components_for(X, H)
        init = self.init
        if init is None:
            init = "nndsvda" if r <= min(n_samples, n_features) else "random"
        w0 = h0 = None
        if init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H: fit_transform(X, W=W, H=H)")
            h0 = self._check_factor(H, (r, n_features), "NMF (input H)")
            w0 = self._check_factor(W, (n_samples, r), "NMF (input W)")
        elif W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set init='custom' to use "
                "them as initialization.",
                RuntimeWarning,
            )
        config = self._config(r, init)
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            Wf, Hf, info = _core.fit_sparse(shape, indptr, indices, data, config, w0, h0)
        else:
            Wf, Hf, info = _core.fit_dense(_as_f32(X), config, w0, h0)

        self.n_components_ = Hf.shape[0]
        self.components_ = Hf.astype(out_dtype, copy=False)
        self.reconstruction_err_ = float(info["reconstruction_err"])
        self.n_iter_ = int(info["n_iter"])
        self.engine_ = info["engine"]
        self.fit_seconds_ = float(info["seconds"])
        if self.n_iter_ == self.max_iter and self.tol > 0 and not info["converged"]:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to improve "
                "convergence.",
                ConvergenceWarning,
            )
        return Wf.astype(out_dtype, copy=False)

    @serialised
    def transform(self, X):
        """Transform the data X with the fitted components (``W`` with ``H`` fixed).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Nonnegative data.

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            Transformed data.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=("csr", "csc"), dtype=[np.float32, np.float64],
            reset=False, ensure_non_negative=True,
        )
        out_dtype = np.float64 if X.dtype == np.float64 else np.float32
        config = self._config(self.n_components_, "random", draw_seed=False)
        comps = np.ascontiguousarray(self.components_, dtype=np.float32)
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            Ht = _core.transform_sparse(comps, shape, indptr, indices, data, config)
        else:
            Ht = _core.transform_dense(comps, _as_f32(X).T, config)
        return np.ascontiguousarray(Ht.T, dtype=out_dtype)

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
