"""From the same custom start, nmf_gpu.NMF equals scikit-learn's NMF."""

import numpy as np
import pytest

from conftest import start

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import NMF as SkNMF  # noqa: E402

import nmf_gpu  # noqa: E402

CASES = [
    ("mu", "frobenius"),
    ("mu", "kullback-leibler"),
    ("cd", "frobenius"),
]


@pytest.mark.parametrize("solver,beta_loss", CASES)
def test_same_error_as_sklearn(rng, solver, beta_loss):
    X = rng.random((90, 70)).astype(np.float32)
    r = 8
    w0, h0 = start(rng, 90, 70, r, scale=0.5)
    kw = dict(n_components=r, init="custom", solver=solver, beta_loss=beta_loss,
              tol=0.0, max_iter=150)
    sk = SkNMF(**kw)
    W_sk = sk.fit_transform(X, W=w0.copy(), H=h0.copy())
    ours = nmf_gpu.NMF(backend="cpu", **kw)
    W = ours.fit_transform(X, W=w0.copy(), H=h0.copy())

    assert ours.n_iter_ == sk.n_iter_ == 150
    assert W.shape == W_sk.shape == (90, r)
    assert ours.components_.shape == sk.components_.shape == (r, 70)
    assert ours.reconstruction_err_ == pytest.approx(sk.reconstruction_err_, rel=1e-5)
    # The factors themselves, measured as relative Frobenius distance.
    rel = np.linalg.norm(W @ ours.components_ - W_sk @ sk.components_) / np.linalg.norm(X)
    assert rel < 1e-4
    # The relative error ||X - WH|| / ||X|| from each model's own factors.
    e_ours = np.linalg.norm(X - W.astype(np.float64) @ ours.components_) / np.linalg.norm(X)
    e_sk = np.linalg.norm(X - W_sk.astype(np.float64) @ sk.components_) / np.linalg.norm(X)
    assert e_ours == pytest.approx(e_sk, rel=1e-5)


@pytest.mark.parametrize("solver,beta_loss", CASES)
def test_transform_matches_sklearn(rng, solver, beta_loss):
    X = rng.random((60, 30)).astype(np.float32)
    X_new = rng.random((25, 30)).astype(np.float32)
    ours = nmf_gpu.NMF(n_components=5, solver=solver, beta_loss=beta_loss, tol=0.0,
                       max_iter=100, random_state=0, backend="cpu").fit(X)
    sk = SkNMF(n_components=5, solver=solver, beta_loss=beta_loss, tol=0.0, max_iter=100,
               random_state=0).fit(X)
    sk.components_ = ours.components_.copy()
    W_sk = sk.transform(X_new)
    W = ours.transform(X_new)
    assert W.shape == (25, 5)
    rel = np.linalg.norm(W - W_sk) / np.linalg.norm(W_sk)
    assert rel < 1e-4


def test_penalties_match_sklearn(rng):
    X = rng.random((50, 40)).astype(np.float32)
    w0, h0 = start(rng, 50, 40, 6, scale=0.5)
    kw = dict(n_components=6, init="custom", solver="cd", tol=0.0, max_iter=80,
              alpha_W=0.01, alpha_H=0.02, l1_ratio=0.5)
    sk = SkNMF(**kw)
    sk.fit_transform(X, W=w0.copy(), H=h0.copy())
    ours = nmf_gpu.NMF(backend="cpu", **kw)
    ours.fit_transform(X, W=w0.copy(), H=h0.copy())
    assert ours.reconstruction_err_ == pytest.approx(sk.reconstruction_err_, rel=1e-5)
