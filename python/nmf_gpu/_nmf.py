"""``NMF`` and ``non_negative_factorization``: scikit-learn's on the nmf-gpu engines."""

from __future__ import annotations

import numbers
import os
import warnings

import numpy as np

from . import _core
from ._base import (
    BASE_CONSTRAINTS,
    ComponentsMixin,
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ConvergenceWarning,
    Interval,
    StrOptions,
    TransformerMixin,
    beta_of,
    check_count,
    check_init,
    check_is_fitted,
    check_random_state,
    check_start_dtype,
    loss_name,
    out_dtype,
    param_error,
    serialised,
    validate_data,
    validate_params,
)

_BACKENDS = ("auto", "cpu", "gpu")


def _is_backend(backend):
    """``auto``, ``cpu``, ``gpu``, ``gpu:N`` (the adapter of index N in ``gpu_info()``),
    ``gpu:N,M,...`` (one fit over several adapters) or ``gpu:all``."""
    if not isinstance(backend, str):
        return False
    if backend in _BACKENDS:
        return True
    head, sep, rest = backend.partition(":")
    if head != "gpu" or sep != ":":
        return False
    return rest == "all" or all(k.isdigit() and k.isascii() for k in rest.split(","))


def check_backend(estimator):
    """``backend`` as the engine takes it, or scikit-learn's parameter error."""
    if not _is_backend(estimator.backend):
        raise param_error(
            estimator, "backend",
            "a str among {'auto', 'cpu', 'gpu', 'gpu:all'}, 'gpu:N' or 'gpu:N,M,...' "
            "(N, M adapter indices of gpu_info())")
    return estimator.backend


def _is_sparse(X):
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


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


def _f32(A):
    return np.ascontiguousarray(A, dtype=np.float32)


def _indices(estimator, name, r):
    """``fix_W`` / ``fix_H``: component indices below ``r`` as a list of ints, or None."""
    value = getattr(estimator, name)
    if value is None:
        return None
    idx = np.asarray(value)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise param_error(estimator, name, "None or a 1-D sequence of component indices")
    bad = [int(i) for i in idx if not 0 <= i < r]
    if bad:
        raise ValueError(
            f"{name} names component {bad[0]}, but there are {r} (indices 0 to {r - 1})")
    return sorted({int(i) for i in idx})


def _read_checkpoint(path):
    """``(W, H, iterations_done, initial_loss)`` of a checkpoint directory written by a fit
    with ``checkpoint_every``."""
    path = os.fspath(path)
    try:
        with open(os.path.join(path, "state.txt"), encoding="utf-8") as f:
            state = dict(line.split(None, 1) for line in f if line.strip())
        W = np.load(os.path.join(path, "W.npy"))
        H = np.load(os.path.join(path, "H.npy"))
        return W, H, int(state["iteration"]), float(state["initial_loss"])
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(
            f"resume_from={path!r} is not a checkpoint of nmf_gpu.NMF (a directory with "
            f"W.npy, H.npy and state.txt written by checkpoint_every): {e}") from e


class NMF(ComponentsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
    n_components : int, "auto" or None, default="auto"
        Number of components. None: the number of features. "auto": the rows of ``H`` when
        ``init="custom"``, else the number of features (scikit-learn's rules).
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
    backend : {"auto", "cpu", "gpu", "gpu:all"}, "gpu:N" or "gpu:N,M,...", default="auto"
        The engine: "auto" takes a hardware GPU when there is one, else the CPU; sparse input
        runs on the CPU with "auto", on the GPU with "gpu".
    orthogonal : {None, "H", "W"}, default=None
        Orthogonal NMF (``solver="mu"``, Frobenius): "H" constrains ``H Hᵀ = I`` (each
        sample essentially in one component), "W" constrains ``Wᵀ W = I``.
    sparse_order : {"stored", "degree"}, default="stored"
        For sparse ``X``: "degree" renumbers its rows and columns by descending number of
        stored entries while the fit iterates (faster on power-law data such as text; a
        permuted copy of ``X``, 16 bytes per stored entry). The factors come back in ``X``'s
        order and equal the stored order's up to float rounding. Dense ``X`` ignores it.
    fix_W : sequence of int or None, default=None
        Components (columns of ``W``) kept at their starting values (``init="custom"``).
    fix_H : sequence of int or None, default=None
        Components (rows of ``H``) kept at their starting values (``init="custom"``):
        known spectra or parts, the others learnt around them.
    checkpoint_every : int or None, default=None
        Every this many iterations, write the current ``W`` and ``H`` to ``checkpoint_dir``
        (replaced atomically: ``W.npy``, ``H.npy``, ``state.txt``).
    checkpoint_dir : str or path, default=None
        Where the checkpoints go.
    resume_from : str or path, default=None
        A checkpoint directory to continue from: its ``W`` and ``H`` are the start (``init``
        is ignored) and its iterations count toward ``max_iter``.

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
        n_components="auto",
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
        sparse_order="stored",
        fix_W=None,
        fix_H=None,
        checkpoint_every=None,
        checkpoint_dir=None,
        resume_from=None,
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
        self.sparse_order = sparse_order
        self.fix_W = fix_W
        self.fix_H = fix_H
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from

    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        "solver": [StrOptions({"mu", "cd"})],
        "shuffle": ["boolean"],
        "backend": [str],
        "orthogonal": [StrOptions({"H", "W"}), None],
        "sparse_order": [StrOptions({"stored", "degree"})],
        "fix_W": ["array-like", None],
        "fix_H": ["array-like", None],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume_from": [str, os.PathLike, None],
    }

    # ----------------------------------------------------------------- parameters

    def _validate(self):
        """Every parameter against scikit-learn's constraints, then the engine's bounds."""
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        check_backend(self)
        if self.shuffle:
            raise param_error(self, "shuffle",
                              "False (the coordinates are updated in order)")
        check_count(self, "max_iter", self.max_iter)
        beta = beta_of(self)
        if self.solver == "cd" and beta != 2:
            raise ValueError(
                f"Invalid beta_loss parameter: solver {self.solver!r} does not handle "
                f"beta_loss = {self.beta_loss!r}"
            )
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir: where the checkpoints go")
        return beta

    def _config(self, n_components, init, *, draw_seed=True):
        """The engine's options (the parameters were validated by ``_validate``)."""
        beta = beta_of(self)
        alpha_H = self.alpha_W if (isinstance(self.alpha_H, str) and self.alpha_H == "same") \
            else self.alpha_H
        seed = 0
        if draw_seed:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return {
            "rank": int(n_components),
            "solver": "hals" if self.solver == "cd" else "mu",
            "loss": loss_name(beta),
            "init": init,
            "max_iter": int(self.max_iter),
            "tol": float(self.tol),
            "seed": seed,
            "alpha_w": float(self.alpha_W),
            "alpha_h": float(alpha_H),
            "l1_ratio": float(self.l1_ratio),
            "backend": self.backend,
            "orthogonal": "none" if self.orthogonal is None else self.orthogonal.lower(),
            "sparse_order": self.sparse_order,
            "verbose": bool(self.verbose),
            "fix_w": None,
            "fix_h": None,
            "checkpoint_every": self.checkpoint_every,
            "checkpoint_dir": None if self.checkpoint_dir is None
            else os.fspath(self.checkpoint_dir),
            "resume": None,
        }

    # ----------------------------------------------------------------- fitting

    def _fit_transform(self, X, W=None, H=None, update_H=True):
        """scikit-learn's ``_fit_transform``: ``(W, H, n_iter)`` for validated ``X``, with
        ``update_H=False`` the encodings of ``X`` for the fixed ``H``."""
        beta = self._validate()
        n_samples, n_features = X.shape
        dtype = out_dtype(X)
        if beta <= 0 and (X.data if _is_sparse(X) else X).size and \
                (X.min() == 0):
            raise ValueError(
                "When beta_loss <= 0 and X contains zeros, the solver may diverge. Please "
                "add small values to X, or use a positive beta_loss."
            )
        n = n_features if self.n_components is None else self.n_components
        resume = None
        if self.resume_from is not None and update_H:
            W, H, done, initial_loss = _read_checkpoint(self.resume_from)
            resume = (done, initial_loss)
            H = check_init(H, (n, n_features), "NMF (checkpoint H)")
            W = check_init(W, (n_samples, H.shape[0]), "NMF (checkpoint W)")
            n = H.shape[0]
            init = "custom"
        elif self.init == "custom" and update_H:
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H: fit_transform(X, W=W, H=H)")
            H = check_init(H, (n, n_features), "NMF (input H)")
            W = check_init(W, (n_samples, n), "NMF (input W)")
            if n == "auto":
                n = H.shape[0]
            check_start_dtype(X, W, H)
            init = "custom"
        elif not update_H:
            if W is not None:
                warnings.warn("When update_H=False, the provided initial W is not used.",
                              RuntimeWarning)
            if H is None:
                raise ValueError("update_H=False needs H: the components to encode X with")
            H = check_init(H, (n, n_features), "NMF (input H)")
            if n == "auto":
                n = H.shape[0]
            check_start_dtype(X, None, H)
            init = "random"
        else:
            if W is not None or H is not None:
                warnings.warn(
                    "When init!='custom', provided W or H are ignored. Set  init='custom' to "
                    "use them as initialization.",
                    RuntimeWarning,
                )
            if n == "auto":
                n = n_features
            init = self.init
            if init is None:
                init = "nndsvda" if n <= min(n_samples, n_features) else "random"
        r = check_count(self, "n_components", n, also=", None or a str among {'auto'}")
        config = self._config(r, init, draw_seed=update_H)
        config["fix_w"] = _indices(self, "fix_W", r)
        config["fix_h"] = _indices(self, "fix_H", r)
        if (config["fix_w"] or config["fix_h"]) and init != "custom":
            raise ValueError(
                "fix_W and fix_H keep components of a custom start: set init='custom' and "
                "pass W and H to fit_transform (or resume_from a checkpoint)")
        config["resume"] = resume
        sparse = _is_sparse(X)
        if not update_H:
            comps = _f32(H)
            if sparse:
                shape, indptr, indices, data = _as_csr32(X)
                Ht, n_iter, converged = _core.transform_sparse(
                    comps, shape, indptr, indices, data, config)
            else:
                Ht, n_iter, converged = _core.transform_dense(comps, _as_f32(X).T, config)
            self._last_info = {"converged": converged, "reconstruction_err": None,
                               "engine": None, "seconds": None}
            self._warn_if_unconverged(n_iter, converged)
            return (np.ascontiguousarray(Ht.T, dtype=dtype),
                    np.asarray(H).astype(dtype, copy=False), n_iter)
        w0 = h0 = None
        if init == "custom":
            w0, h0 = _f32(W), _f32(H)
        if sparse:
            shape, indptr, indices, data = _as_csr32(X)
            Wf, Hf, info = _core.fit_sparse(shape, indptr, indices, data, config, w0, h0)
        else:
            Wf, Hf, info = _core.fit_dense(_as_f32(X), config, w0, h0)
        self._last_info = info
        n_iter = int(info["n_iter"])
        self._warn_if_unconverged(n_iter, info["converged"])
        return Wf.astype(dtype, copy=False), Hf.astype(dtype, copy=False), n_iter

    def _warn_if_unconverged(self, n_iter, converged):
        if n_iter == self.max_iter and self.tol > 0 and not converged:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to improve "
                "convergence.",
                ConvergenceWarning,
            )

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
            Start of ``W`` when ``init="custom"`` (X's dtype).
        H : array-like of shape (n_components, n_features), default=None
            Start of ``H`` when ``init="custom"`` (X's dtype).

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
            Transformed data (float32 for float32 input, float64 otherwise).
        """
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        X = validate_data(
            self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
            ensure_non_negative=True,
        )
        Wf, Hf, n_iter = self._fit_transform(X, W=W, H=H)
        info = self._last_info
        self.n_components_ = Hf.shape[0]
        self.components_ = Hf
        self.reconstruction_err_ = float(info["reconstruction_err"])
        self.n_iter_ = n_iter
        self.engine_ = info["engine"]
        self.fit_seconds_ = float(info["seconds"])
        return Wf

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
            self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
            reset=False, ensure_non_negative=True,
        )
        self._validate()
        config = self._config(self.n_components_, "random", draw_seed=False)
        config["checkpoint_every"] = None
        comps = _f32(self.components_)
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            Ht, _, _ = _core.transform_sparse(comps, shape, indptr, indices, data, config)
        else:
            Ht, _, _ = _core.transform_dense(comps, _as_f32(X).T, config)
        return np.ascontiguousarray(Ht.T, dtype=out_dtype(X))


def non_negative_factorization(
    X,
    W=None,
    H=None,
    n_components="auto",
    *,
    init=None,
    update_H=True,
    solver="cd",
    beta_loss="frobenius",
    tol=1e-4,
    max_iter=200,
    alpha_W=0.0,
    alpha_H="same",
    l1_ratio=0.0,
    random_state=None,
    verbose=0,
    shuffle=False,
    backend="auto",
):
    """Compute W and H with ``X ≈ W H``: scikit-learn's ``non_negative_factorization`` on the
    nmf-gpu engines (same parameters and semantics; ``backend`` picks the engine).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Nonnegative data.
    W : array-like of shape (n_samples, n_components), default=None
        The start of W for ``init="custom"`` (X's dtype); unused (with a warning) when
        ``update_H=False``.
    H : array-like of shape (n_components, n_features), default=None
        The start of H for ``init="custom"``; with ``update_H=False``, the fixed components
        the encodings W of X are solved for (``NMF.transform``).
    n_components : int, "auto" or None, default="auto"
        None: n_features; "auto": the rows of H when it is given (custom start or
        ``update_H=False``), else n_features.
    init, solver, beta_loss, tol, max_iter, alpha_W, alpha_H, l1_ratio, random_state, verbose, \
shuffle, backend
        As for :class:`NMF`.
    update_H : bool, default=True
        False: H is fixed and only W is solved for.

    Returns
    -------
    W : ndarray of shape (n_samples, n_components)
    H : ndarray of shape (n_components, n_features)
    n_iter : int
        Iterations run.
    """
    est = NMF(
        n_components=n_components, init=init, solver=solver, beta_loss=beta_loss, tol=tol,
        max_iter=max_iter, random_state=random_state, alpha_W=alpha_W, alpha_H=alpha_H,
        l1_ratio=l1_ratio, verbose=verbose, shuffle=shuffle, backend=backend,
    )
    validate_params({"update_H": update_H}, {"update_H": ["boolean"]},
                    "non_negative_factorization")
    validate_params(est.get_params(deep=False), est._parameter_constraints,
                    "non_negative_factorization")
    X = validate_data(
        est, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
        ensure_non_negative=True,
    )
    return est._fit_transform(X, W=W, H=H, update_H=update_H)
