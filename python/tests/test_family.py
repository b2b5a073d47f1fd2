"""SymmetricNMF (graph clustering) and MaskedNMF (missing entries)."""

import numpy as np
import pytest

from nmf_gpu import MaskedNMF, SymmetricNMF


def planted_graph(rng, sizes=(20, 20, 20), p_in=0.5, p_out=0.02):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    p = np.where(labels[:, None] == labels[None, :], p_in, p_out)
    upper = np.triu(rng.random(p.shape) < p, 1)
    A = (upper | upper.T).astype(np.float64)
    return A, labels


def same_partition(a, b):
    # Each found cluster maps to one planted group, and vice versa.
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("method", ["anls", "mu", "tri"])
def test_symmetric_recovers_planted_groups(rng, method):
    A, truth = planted_graph(rng)
    model = SymmetricNMF(n_components=3, method=method, n_init=3, random_state=0,
                         backend="cpu")
    labels = model.fit_predict(A)
    assert labels.shape == (60,)
    assert model.embedding_.shape == (60, 3)
    assert (model.S_ is not None) == (method == "tri")
    assert same_partition(labels, truth)


def test_symmetric_sparse_equals_dense(rng):
    sp = pytest.importorskip("scipy.sparse")
    A, _ = planted_graph(rng)
    d = SymmetricNMF(n_components=3, random_state=0, backend="cpu").fit(A)
    s = SymmetricNMF(n_components=3, random_state=0, backend="cpu").fit(sp.csr_matrix(A))
    np.testing.assert_array_equal(d.labels_, s.labels_)
    np.testing.assert_allclose(d.embedding_, s.embedding_, rtol=1e-6)


def test_symmetric_bad_input(rng):
    A, _ = planted_graph(rng)
    with pytest.raises(ValueError, match="square"):
        SymmetricNMF(backend="cpu").fit(A[:, :10])
    B = A.copy()
    B[0, 5] += 3.0
    with pytest.raises(ValueError, match="symmetric"):
        SymmetricNMF(backend="cpu").fit(B)
    with pytest.raises(ValueError, match="method"):
        SymmetricNMF(method="svd", backend="cpu").fit(A)
    with pytest.raises(ValueError, match="negative"):
        SymmetricNMF(backend="cpu").fit(-A)


def test_masked_completes_a_low_rank_matrix(rng):
    W = rng.random((40, 3)) + 0.1
    H = rng.random((3, 30)) + 0.1
    V = W @ H
    missing = rng.random(V.shape) < 0.3
    X = np.where(missing, np.nan, V)
    model = MaskedNMF(n_components=3, l2=0.0, max_iter=2000, tol=1e-7, random_state=0,
                      backend="cpu").fit(X)
    full = model.complete()
    assert full.shape == V.shape
    err = np.abs(full - V)[missing].mean() / V.mean()
    assert err < 0.05
    rows, cols = np.nonzero(missing)
    np.testing.assert_allclose(model.predict(rows, cols), full[rows, cols], rtol=1e-5)
    # The same fit from an explicit mask (the hidden entries may hold anything).
    masked = MaskedNMF(n_components=3, l2=0.0, max_iter=2000, tol=1e-7, random_state=0,
                       backend="cpu").fit(np.where(missing, -1.0, V), mask=~missing)
    np.testing.assert_allclose(masked.complete(), full, rtol=1e-5, atol=1e-6)


def test_masked_bad_input(rng):
    X = rng.random((10, 8))
    with pytest.raises(ValueError, match="mask"):
        MaskedNMF(n_components=2, backend="cpu").fit(X, mask=np.ones((10, 7), bool))
    with pytest.raises(ValueError, match=">= 0"):
        MaskedNMF(n_components=2, backend="cpu").fit(-X)
    with pytest.raises(ValueError, match="n_components"):
        MaskedNMF(n_components=0, backend="cpu").fit(X)
    m = MaskedNMF(n_components=2, max_iter=20, backend="cpu").fit(X)
    with pytest.raises(ValueError, match="out of range"):
        m.predict([10], [0])
