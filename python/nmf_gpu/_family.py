"""The rest of the NMF family: ``SymmetricNMF`` (graph clustering) and ``MaskedNMF`` (missing
entries, recommendation)."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._base import (
    BaseEstimator,
    check_count,
    check_is_fitted,
    check_random_state,
    serialised,
    validate_data,
)
from ._nmf import _as_csr32, _is_backend, _is_sparse


def _seed(random_state):
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _check_nonneg(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_backend(backend):
    if not _is_backend(backend):
        raise ValueError(f"backend must be 'auto', 'cpu', 'gpu', 'gpu:N', 'gpu:N,M,...' or 'gpu:all', got {backend!r}")
    return backend


class SymmetricNMF(BaseEstimator):
    """Symmetric NMF for graph clustering: ``Ã ≈ H Hᵀ`` (or ``H S Hᵀ``), node i in cluster
    ``argmax_t H[i, t]``.

    ``Ã`` is the normalized adjacency ``D^{-1/2} A D^{-1/2}`` (``preprocess="normalized"``) or
    ``A`` itself (``preprocess=None``).

    Parameters
    ----------
    n_components : int, default=2
        Number of clusters k.
    method : {"anls", "mu", "tri"}, default="anls"
        "anls": alternating nonnegative least squares (Kuang, Ding & Park); "mu": the damped
        multiplicative rule; "tri": the tri-factorization ``H S Hᵀ``.
    preprocess : {"normalized", None}, default="normalized"
        How the adjacency is transformed before the fit.
    alpha : float or None, default=None
        ANLS penalty on ``‖W − H‖²`` (None: ``max(Ã)²``).
    n_init : int, default=1
        Random starts; the one with the lowest residual is kept.
    max_iter : int, default=500
        Maximum number of iterations of each start.
    tol : float, default=1e-4
        Stopping tolerance on the relative decrease of the objective.
    random_state : int, RandomState instance or None, default=None
        Seed of the starts.
    backend : {"auto", "cpu", "gpu", "gpu:all"}, "gpu:N" or "gpu:N,M,...", default="auto"
        Where the iterations run.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components)
        The factor H.
    S_ : ndarray of shape (n_components, n_components) or None
        The middle factor of ``method="tri"``.
    labels_ : ndarray of shape (n_nodes,)
        Cluster of each node.
    n_iter_ : int
        Iterations of the kept start.
    residual_ : float
        ``‖Ã − H Hᵀ‖_F`` (or with S).

    Notes
    -----
    One estimator fitted from several threads at once runs the fits one after the other (the
    last to finish wins); its attributes always come from one fit.
    """

    def __init__(self, n_components=2, *, method="anls", preprocess="normalized", alpha=None,
                 n_init=1, max_iter=500, tol=1e-4, random_state=None, backend="auto"):
        self.n_components = n_components
        self.method = method
        self.preprocess = preprocess
        self.alpha = alpha
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.backend = backend

    @serialised
    def fit(self, X, y=None):
        """Factorize the symmetric nonnegative matrix X (dense or scipy.sparse adjacency).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_nodes, n_nodes)
            Symmetric nonnegative adjacency or similarity matrix. A scipy.sparse matrix goes to
            the sparse symmetric fit (memory ``O(nnz + n_nodes * n_components)``), never
            densified. Complex input is refused.
        y : Ignored

        Returns
        -------
        self : object
        """
        config = {
            "k": check_count(self, "n_components", self.n_components),
            "method": self.method,
            "preprocess": "none" if self.preprocess is None else self.preprocess,
            "n_init": check_count(self, "n_init", self.n_init),
            "alpha": None if self.alpha is None else _check_nonneg("alpha", self.alpha),
            "max_iter": check_count(self, "max_iter", self.max_iter),
            "tol": _check_nonneg("tol", self.tol),
            "seed": _seed(self.random_state),
            "backend": _check_backend(self.backend),
        }
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"),
                          dtype=[np.float32, np.float64])
        if X.shape[0] != X.shape[1]:
            raise ValueError(f"SymmetricNMF needs a square matrix, got shape {X.shape}")
        if _is_sparse(X):
            # The sparse symmetric fit: memory O(nnz + n k), the adjacency never densified.
            shape, indptr, indices, data = _as_csr32(X)
            H, S, labels, info = _core.sym_fit_sparse(shape, indptr, indices, data, config)
        else:
            H, S, labels, info = _core.sym_fit(np.asarray(X, dtype=np.float32), config)
        self.embedding_ = H
        self.S_ = S
        self.labels_ = np.asarray(labels, dtype=np.intp)
        self.n_iter_ = int(info["n_iter"])
        self.residual_ = float(info["residual"])
        self.engine_ = info["engine"]
        return self

    @serialised
    def fit_predict(self, X, y=None):
        """Fit and return the cluster of each node (``labels_``)."""
        return self.fit(X).labels_

    @serialised
    def fit_transform(self, X, y=None):
        """Fit and return the embedding H (``embedding_``)."""
        return self.fit(X).embedding_


class MaskedNMF(BaseEstimator):
    """NMF of a matrix with missing entries: minimises ``½‖M ⊙ (X − WH)‖²`` plus penalties over
    the observed entries only, then predicts the rest (``complete``, ``predict``).

    Parameters
    ----------
    n_components : int, default=10
        Rank r.
    l2 : float, default=0.1
        L2 penalty (per observation by default, see ``penalty_scale``).
    l1 : float, default=0.0
        L1 penalty on every entry of W and H.
    penalty_scale : {"observation", "uniform"}, default="observation"
        "observation": row i of W and column j of H are weighted by their number of
        observations (weighted-λ); "uniform": all equal.
    init : {"filled", "random", "custom"}, default="filled"
        "filled": NNDSVDa of X with the missing entries filled by bias estimates.
    max_iter : int, default=500
        Maximum number of iterations.
    tol : float, default=1e-5
        Stopping tolerance.
    random_state : int, RandomState instance or None, default=None
        Seed of the random start.
    backend : {"auto", "cpu", "gpu", "gpu:all"}, "gpu:N" or "gpu:N,M,...", default="auto"
        Where the iterations run.

    Attributes
    ----------
    W_ : ndarray of shape (n_rows, n_components)
        Row factor.
    components_ : ndarray of shape (n_components, n_columns)
        Column factor H.
    n_iter_ : int
        Iterations run.

    Notes
    -----
    One estimator fitted from several threads at once runs the fits one after the other (the
    last to finish wins); its attributes always come from one fit.
    """

    def __init__(self, n_components=10, *, l2=0.1, l1=0.0, penalty_scale="observation",
                 init="filled", max_iter=500, tol=1e-5, random_state=None, backend="auto"):
        self.n_components = n_components
        self.l2 = l2
        self.l1 = l1
        self.penalty_scale = penalty_scale
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.backend = backend

    @serialised
    def fit(self, X, y=None, mask=None, W=None, H=None):
        """Fit on the observed entries of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_rows, n_columns)
            Data; missing entries are NaN (or any value where ``mask`` is False). For a
            scipy.sparse matrix the stored entries are the observed ones (a stored zero is an
            observed zero, an entry not stored is missing), fitted without densifying
            (memory linear in the stored entries). Complex input is refused.
        y : Ignored
        mask : array-like of bool, same shape as X, default=None
            True where an entry is observed. None: the entries that are not NaN (or, for
            sparse X, the stored ones; a mask with sparse X is refused).
        W, H : array-like, default=None
            Start for ``init="custom"``.

        Returns
        -------
        self : object
        """
        config = {
            "rank": check_count(self, "n_components", self.n_components),
            "l2": _check_nonneg("l2", self.l2),
            "l1": _check_nonneg("l1", self.l1),
            "penalty_scale": self.penalty_scale,
            "init": self.init,
            "max_iter": check_count(self, "max_iter", self.max_iter),
            "tol": _check_nonneg("tol", self.tol),
            "seed": _seed(self.random_state),
            "backend": _check_backend(self.backend),
        }
        w0 = None if W is None else np.ascontiguousarray(W, dtype=np.float32)
        h0 = None if H is None else np.ascontiguousarray(H, dtype=np.float32)
        if _is_sparse(X):
            if mask is not None:
                raise ValueError(
                    "mask must be None when X is a scipy.sparse matrix: its stored entries are "
                    "the observed ones"
                )
            X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"),
                              dtype=[np.float32, np.float64])
            shape, indptr, indices, data = _as_csr32(X)
            Wf, Hf, info = _core.masked_fit_sparse(shape, indptr, indices, data, config, w0, h0)
        else:
            # With a mask the hidden entries may hold anything; without, NaN marks them.
            X = validate_data(self, X, dtype=[np.float32, np.float64],
                              ensure_all_finite=False if mask is not None else "allow-nan")
            V = np.asarray(X, dtype=np.float32)
            observed = None
            if mask is not None:
                observed = np.asarray(mask)
                if observed.shape != V.shape:
                    raise ValueError(
                        f"mask has shape {observed.shape}, but X has shape {V.shape}"
                    )
                observed = observed.astype(bool, copy=False)
            Wf, Hf, info = _core.masked_fit(V, config, observed, w0, h0)
        self.W_ = Wf
        self.components_ = Hf
        self.n_iter_ = int(info["n_iter"])
        self.engine_ = info["engine"]
        return self

    @serialised
    def complete(self):
        """The completed matrix ``W H``: a prediction for every entry."""
        check_is_fitted(self, "components_")
        return self.W_ @ self.components_

    @serialised
    def predict(self, rows, cols):
        """Predictions ``(W H)[rows[k], cols[k]]`` for pairs of row and column indices."""
        check_is_fitted(self, "components_")
        rows = np.asarray(rows, dtype=np.intp)
        cols = np.asarray(cols, dtype=np.intp)
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols differ in shape: {rows.shape} and {cols.shape}")
        m, n = self.W_.shape[0], self.components_.shape[1]
        if rows.size and (rows.min() < -m or rows.max() >= m):
            raise ValueError(f"a row index is out of range for {m} rows")
        if cols.size and (cols.min() < -n or cols.max() >= n):
            raise ValueError(f"a column index is out of range for {n} columns")
        return np.einsum("kr,rk->k", self.W_[rows.ravel()],
                         self.components_[:, cols.ravel()]).reshape(rows.shape)
