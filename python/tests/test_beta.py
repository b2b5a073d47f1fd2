"""beta-divergences (beta_loss other than 'frobenius' / 'kullback-leibler'): from the same custom
start, nmf_gpu.NMF equals scikit-learn's NMF(solver='mu', beta_loss=beta)."""

import numpy as np
import pytest

from conftest import start

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import NMF as SkNMF  # noqa: E402

import nmf_gpu  # noqa: E402

BETAS = [0.0, 0.5, 1.5, 3.0, "itakura-saito"]


def _data(rng, n, m):
    # No zeros: scikit-learn refuses beta <= 0 on data with zeros.
    return (rng.random((n, m)) + 0.05).astype(np.float32)


@pytest.mark.parametrize("beta", BETAS)
def test_beta_fit_matches_sklearn(rng, beta):
    X = _data(rng, 90, 70)
    r = 8
    w0, h0 = start(rng, 90, 70, r, scale=0.5)
    kw = dict(n_components=r, init="custom", solver="mu", beta_loss=beta, tol=0.0,
              max_iter=150)
    sk = SkNMF(**kw)
    W_sk = sk.fit_transform(X, W=w0.copy(), H=h0.copy())
    ours = nmf_gpu.NMF(backend="cpu", **kw)
    W = ours.fit_transform(X, W=w0.copy(), H=h0.copy())

    assert ours.n_iter_ == sk.n_iter_ == 150
    assert ours.reconstruction_err_ == pytest.approx(sk.reconstruction_err_, rel=1e-5)
    rel = np.linalg.norm(W @ ours.components_ - W_sk @ sk.components_) / np.linalg.norm(X)
    assert rel < 1e-4


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_beta_transform_matches_sklearn(rng, beta):
    X = _data(rng, 60, 30)
    X_new = _data(rng, 25, 30)
    kw = dict(n_components=5, solver="mu", beta_loss=beta, tol=0.0, max_iter=100,
              random_state=0)
    ours = nmf_gpu.NMF(backend="cpu", **kw).fit(X)
    sk = SkNMF(**kw).fit(X)
    sk.components_ = ours.components_.copy()
    W_sk = sk.transform(X_new)
    W = ours.transform(X_new)
    rel = np.linalg.norm(W - W_sk) / np.linalg.norm(W_sk)
    assert rel < 1e-4


def test_beta_errors(rng):
    X = _data(rng, 12, 8)
    X[2, 3] = 0.0
    with pytest.raises(ValueError, match="zero"):
        nmf_gpu.NMF(n_components=2, solver="mu", beta_loss="itakura-saito",
                    backend="cpu").fit(X)
    # beta > 0 tolerates zeros.
    nmf_gpu.NMF(n_components=2, solver="mu", beta_loss=0.5, backend="cpu", max_iter=20).fit(X)
    with pytest.raises(ValueError, match="solver 'cd'"):
        nmf_gpu.NMF(n_components=2, solver="cd", beta_loss=1.5, backend="cpu").fit(X)
