"""``MiniBatchNMF``: scikit-learn's online NMF on the library's online engine."""

from __future__ import annotations

import math
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
    TransformerMixin,
    beta_divergence,
    beta_of,
    check_count,
    check_init,
    check_is_fitted,
    check_random_state,
    check_start_dtype,
    loss_name,
    out_dtype,
    serialised,
    validate_data,
    validate_params,
)
from ._nmf import _as_csr32, _as_f32, _f32, _is_sparse, check_backend


def _is_path(X):
    return isinstance(X, (str, os.PathLike))


class MiniBatchNMF(ComponentsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Mini-batch Non-Negative Matrix Factorization on the nmf-gpu online engine.

    scikit-learn's :class:`sklearn.decomposition.MiniBatchNMF`, with its parameters, methods
    and attributes: the samples (rows of ``X``) arrive in batches of ``batch_size``; for each,
    the batch's encodings ``W_b`` are solved with ``H`` fixed (multiplicative updates from
    ``sqrt(mean(X_b)/r)``, up to ``fresh_restarts_max_iter`` steps, or one step from the
    kept encodings when ``fresh_restarts=False``), then ``H`` takes scikit-learn's online
    multiplicative step

    .. math::

        A \\leftarrow \\rho A + H \\odot N_b, \\quad B \\leftarrow \\rho B + D_b, \\quad
        H \\leftarrow A \\oslash B, \\qquad \\rho = \\text{forget\\_factor}^{b/n}

    where ``N_b / D_b`` is the batch's multiplicative ratio for ``H`` with its penalty
    (``W_bᵀ X_b / (W_bᵀ W_b H + l1 + l2 H)`` for Frobenius). The stopping rules are
    scikit-learn's (``tol`` on the change of ``H``, ``max_no_improvement`` on the smoothed
    batch cost). The batches are computed by the Rust engines (CPU or GPU), the next one read
    on a second thread while the current one computes.

    ``fit`` also takes a path instead of an array: a ``.npy`` file (samples as rows, read a
    batch at a time, so it may be larger than memory), a TIFF stack or a directory of TIFF
    files (one frame per sample), a directory of images (one image per sample, grey levels as
    they are), or a CSV / TSV / MatrixMarket file (loaded whole).

    Parameters
    ----------
    n_components : int, "auto" or None, default="auto"
        Number of components (scikit-learn's rules, as :class:`NMF`).
    init : {"random", "nndsvd", "nndsvda", "nndsvdar", "custom"}, default=None
        The start, computed on the whole of ``X`` (on the first batch for a path). None:
        "nndsvda" when ``n_components <= min(n_samples, n_features)``, else "random".
    batch_size : int, default=1024
        Samples per batch.
    beta_loss : {"frobenius", "kullback-leibler"} or float in {2, 1}, default="frobenius"
        The divergence (the online engine has Frobenius and Kullback–Leibler).
    tol : float, default=1e-4
        Stop when ``H`` moves less than ``tol`` (relative) in one batch; 0 turns it off.
    max_no_improvement : int or None, default=10
        Stop after this many batches without a new minimum of the smoothed batch cost.
    max_iter : int, default=200
        Passes over the data.
    alpha_W, alpha_H, l1_ratio : float, default=0.0, "same", 0.0
        The penalties, as scikit-learn (``alpha_W`` scaled by n_features, ``alpha_H`` by
        the batch's samples).
    forget_factor : float, default=0.7
        How much of the past the statistics keep per pass.
    fresh_restarts : bool, default=False
        Solve each batch's encodings afresh (True), or keep them from pass to pass and take
        one step from them (False).
    fresh_restarts_max_iter : int, default=30
        Steps of each fresh solve.
    transform_max_iter : int or None, default=None
        Steps of ``transform`` (None: ``max_iter``).
    random_state : int, RandomState instance or None, default=None
        Seed of the random starts.
    verbose : int, default=0
        Print the cost after every batch.
    backend : {"auto", "cpu", "gpu", "gpu:all"}, "gpu:N" or "gpu:N,M,...", default="auto"
        The engine.
    memory_limit : int or None, default=None
        Bytes a fit may take (None: the memory available); a fit that would take more is
        refused before it reads anything.
    checkpoint_every : int or None, default=None
        Every this many batches, write the model's state (and the kept encodings) to
        ``checkpoint_dir``, replaced atomically.
    checkpoint_dir : str or path, default=None
        Where the checkpoints go.
    resume_from : str or path, default=None
        A checkpoint directory: ``fit`` continues from it, at the sample after the last one
        it learnt from, and ends as the uninterrupted fit would (same data, same parameters).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
    n_components_ : int
    reconstruction_err_ : float
        ``sqrt(2 D(X || WH))`` (not computed for a path: NaN).
    n_iter_ : int
        Passes begun.
    n_steps_ : int
        Batches processed.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    engine_ : str
    """

    _parameter_constraints = {
        **BASE_CONSTRAINTS,
        "max_no_improvement": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "forget_factor": [Interval(numbers.Real, 0, 1, closed="both")],
        "fresh_restarts": ["boolean"],
        "fresh_restarts_max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "transform_max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "backend": [str],
        "memory_limit": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume_from": [str, os.PathLike, None],
    }

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        batch_size=1024,
        beta_loss="frobenius",
        tol=1e-4,
        max_no_improvement=10,
        max_iter=200,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        forget_factor=0.7,
        fresh_restarts=False,
        fresh_restarts_max_iter=30,
        transform_max_iter=None,
        random_state=None,
        verbose=0,
        backend="auto",
        memory_limit=None,
        checkpoint_every=None,
        checkpoint_dir=None,
        resume_from=None,
    ):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.backend = backend
        self.memory_limit = memory_limit
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = checkpoint_dir
        self.resume_from = resume_from

    # ----------------------------------------------------------------- parameters

    def _validate(self):
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        check_backend(self)
        for name in ("max_iter", "batch_size", "fresh_restarts_max_iter"):
            check_count(self, name, getattr(self, name))
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir: where the checkpoints go")
        beta = beta_of(self)
        if beta not in (1.0, 2.0):
            raise ValueError(
                f"beta_loss={self.beta_loss!r}: the online engine minimises the Frobenius "
                "(2) and Kullback-Leibler (1) divergences; use NMF(solver='mu') for other "
                "beta-divergences"
            )
        return beta

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _online_config(self, r, init, seed=0):
        alpha_H = self.alpha_W if (isinstance(self.alpha_H, str) and self.alpha_H == "same") \
            else self.alpha_H
        return {
            "rank": int(r),
            "solver": "mu",
            "loss": loss_name(beta_of(self)),
            "init": init,
            "batch_size": int(self.batch_size),
            "forget_factor": float(self.forget_factor),
            "max_iter": int(self.max_iter),
            "tol": float(self.tol),
            "max_no_improvement": self.max_no_improvement,
            "inner_max_iter": int(self.fresh_restarts_max_iter),
            # The library's dictionary is scikit-learn's H, its encodings scikit-learn's W.
            "alpha_w": float(alpha_H),
            "alpha_h": float(self.alpha_W),
            "l1_ratio": float(self.l1_ratio),
            "fresh_restarts": bool(self.fresh_restarts),
            "seed": seed,
            "backend": self.backend,
            "memory_limit": self.memory_limit,
            "verbose": bool(self.verbose),
            "checkpoint_every": self.checkpoint_every,
            "checkpoint_dir": None if self.checkpoint_dir is None
            else os.fspath(self.checkpoint_dir),
        }

    def _resume(self):
        """``(state, kept encodings or None)`` of the checkpoint ``resume_from``, or
        ``(None, None)``."""
        if self.resume_from is None:
            return None, None
        path = os.fspath(self.resume_from)
        try:
            state = {}
            with open(os.path.join(path, "state.txt"), encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        key, value = line.split(None, 1)
                        value = value.strip()
                        state[key] = None if value == "none" else (
                            float(value) if key in ("smoothed_cost", "smoothed_min",
                                                    "last_cost") else int(value))
            for key in ("w", "num", "den"):
                state[key] = np.load(os.path.join(path, f"{key}.npy"))
            enc_path = os.path.join(path, "encodings.npy")
            enc = np.load(enc_path) if os.path.exists(enc_path) else None
        except (OSError, ValueError) as e:
            raise ValueError(
                f"resume_from={path!r} is not a checkpoint of nmf_gpu.MiniBatchNMF (a directory "
                f"with w.npy, num.npy, den.npy and state.txt written by checkpoint_every): {e}"
            ) from e
        return state, enc

    def _transform_config(self):
        config = self._online_config(self.n_components_, "custom")
        config["checkpoint_every"] = None
        config["inner_max_iter"] = int(
            self.max_iter if self.transform_max_iter is None else self.transform_max_iter)
        return config

    def _start(self, X, W, H, *, whole):
        """The rank, the engine's init name and the starts ``(encodings, components)`` for
        in-memory ``X`` (scikit-learn's ``_check_w_h`` with ``update_H=True``): the custom
        ones, or the configured start computed on ``X`` by the batch engine."""
        n_samples, n_features = X.shape
        n = n_features if self.n_components is None else self.n_components
        if self.init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H: fit_transform(X, W=W, H=H)")
            H = check_init(H, (n, n_features), "NMF (input H)")
            W = check_init(W, (n_samples, n), "NMF (input W)")
            if n == "auto":
                n = H.shape[0]
            check_start_dtype(X, W, H)
            r = check_count(self, "n_components", n, also=", None or a str among {'auto'}")
            return r, _f32(W), _f32(H)
        if W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set  init='custom' to use "
                "them as initialization.",
                RuntimeWarning,
            )
        if n == "auto":
            n = n_features
        r = check_count(self, "n_components", n, also=", None or a str among {'auto'}")
        init = self.init
        if init is None:
            init = "nndsvda" if r <= min(n_samples, n_features) else "random"
        config = {
            "rank": r, "solver": "mu", "loss": loss_name(beta_of(self)), "init": init,
            "max_iter": 1, "tol": 0.0, "seed": self._seed(), "alpha_w": 0.0, "alpha_h": 0.0,
            "l1_ratio": 0.0, "backend": "cpu", "orthogonal": "none", "sparse_order": "stored",
            "verbose": False,
            "fix_w": None, "fix_h": None, "checkpoint_every": None, "checkpoint_dir": None,
            "resume": None,
        }
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            W0, H0 = _core.initial_factors_sparse(shape, indptr, indices, data, config)
        else:
            W0, H0 = _core.initial_factors(_as_f32(X), config)
        return r, W0, H0

    # ----------------------------------------------------------------- fitting

    def _set_fitted(self, state, info, dtype):
        self._state = state
        self.components_ = np.ascontiguousarray(state["w"].T, dtype=dtype)
        self.n_components_ = self.components_.shape[0]
        self.engine_ = info["engine"]
        self.fit_seconds_ = float(info["seconds"])

    def _finish_fit(self, info, n_samples, batch_size):
        self.n_steps_ = int(info["steps"])
        per_pass = math.ceil(n_samples / batch_size)
        self.n_iter_ = math.ceil(self.n_steps_ / per_pass)
        if self.n_iter_ == self.max_iter and self.tol > 0:
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to "
                "improve convergence.",
                ConvergenceWarning,
            )

    @serialised
    def fit(self, X, y=None, W=None, H=None, samples_as_rows=True):
        """Learn the model from X: an array, a sparse matrix or a path.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or str / PathLike
            The data, or a file or directory streamed a batch at a time (see the class docs;
            ``samples_as_rows=False`` reads a ``.npy`` or text file as features x samples).
        y : Ignored
        W, H : array-like, default=None
            The start for ``init="custom"`` (H alone, the components, for a path).

        Returns
        -------
        self : object
        """
        if _is_path(X):
            self._fit_path(X, H, samples_as_rows)
        else:
            self.fit_transform(X, W=W, H=H)
        return self

    def _fit_path(self, path, H, samples_as_rows):
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        self._validate()
        path = os.fspath(path)
        n_samples, n_features = _core.source_shape(path, bool(samples_as_rows))
        n = n_features if self.n_components is None else self.n_components
        components = None
        init = self.init
        if init == "custom":
            if H is None:
                raise ValueError("init='custom' on a path needs H (the components) in fit")
            H = check_init(H, (n, n_features), "NMF (input H)")
            n = H.shape[0]
            components = _f32(H)
        elif n == "auto":
            n = n_features
        state0, enc0 = self._resume()
        if state0 is not None:
            n, init, components = state0["w"].shape[1], "custom", None
        r = check_count(self, "n_components", n, also=", None or a str among {'auto'}")
        if init is None:
            init = "nndsvda"
        config = self._online_config(r, init, self._seed())
        state, _, info = _core.online_fit_path(path, bool(samples_as_rows), config, components,
                                               enc0, state0)
        self.n_features_in_ = n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._set_fitted(state, info, np.float32)
        self.reconstruction_err_ = float("nan")
        self._finish_fit(info, n_samples, min(self.batch_size, n_samples))

    @serialised
    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn the model from X and return its encodings W.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        W : array-like of shape (n_samples, n_components), default=None
            Start of W for ``init="custom"`` (X's dtype).
        H : array-like of shape (n_components, n_features), default=None
            Start of H for ``init="custom"`` (X's dtype).

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
        """
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        X = validate_data(self, X, accept_sparse=("csr", "csc"),
                          dtype=[np.float64, np.float32], ensure_non_negative=True)
        beta = self._validate()
        dtype = out_dtype(X)
        n_samples = X.shape[0]
        state0, enc0 = self._resume()
        if state0 is None:
            r, W0, H0 = self._start(X, W, H, whole=True)
            kept = None if self.fresh_restarts else W0
        else:
            r, H0, kept = state0["w"].shape[1], None, enc0
        config = self._online_config(r, "custom", self._seed())
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            state, enc, info = _core.online_fit_sparse(
                shape, indptr, indices, data, config, H0, kept, state0)
        else:
            state, enc, info = _core.online_fit(_as_f32(X), config, H0, kept, state0)
        self._set_fitted(state, info, dtype)
        if self.fresh_restarts:
            Wout = self._encode(X)
        else:
            Wout = np.ascontiguousarray(enc, dtype=dtype)
        self.reconstruction_err_ = float(
            beta_divergence(X, Wout, self.components_, beta, square_root=True))
        self._finish_fit(info, n_samples, min(self.batch_size, n_samples))
        return Wout

    @serialised
    def partial_fit(self, X, y=None, W=None, H=None):
        """Update the model with one batch X (out-of-core or online learning).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        W, H : array-like, default=None
            The start for ``init="custom"``, used by the first call only.

        Returns
        -------
        self : object
        """
        has_components = hasattr(self, "components_")
        validate_params(self.get_params(deep=False), self._parameter_constraints,
                        type(self).__name__)
        X = validate_data(self, X, accept_sparse=("csr", "csc"),
                          dtype=[np.float64, np.float32], ensure_non_negative=True,
                          reset=not has_components)
        self._validate()
        dense = _f32(X.toarray()) if _is_sparse(X) else _as_f32(X)
        if not has_components:
            r, _, H0 = self._start(X, W, H, whole=False)
            config = self._online_config(r, "custom", self._seed())
            state, info = _core.online_partial_fit(dense, config, None, H0)
            self.n_steps_ = 0
        else:
            config = self._online_config(self.n_components_, "custom")
            state, info = _core.online_partial_fit(dense, config, self._state)
        self._set_fitted(state, info, out_dtype(X))
        self.n_steps_ += 1
        return self

    def _encode(self, X):
        config = self._transform_config()
        comps = _f32(self.components_)
        if _is_sparse(X):
            shape, indptr, indices, data = _as_csr32(X)
            W = _core.online_transform_sparse(comps, shape, indptr, indices, data, config)
        else:
            W = _core.online_transform(comps, _as_f32(X), config)
        return np.ascontiguousarray(W, dtype=out_dtype(X))

    @serialised
    def transform(self, X):
        """The encodings W of X with the fitted components fixed (all samples at once, up to
        ``transform_max_iter`` steps).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        W : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"),
                          dtype=[np.float64, np.float32], reset=False,
                          ensure_non_negative=True)
        self._validate()
        return self._encode(X)
