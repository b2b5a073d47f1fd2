"""Bad input and bad parameters raise before any work, with messages that say what to fix."""

import numpy as np
import pytest

from nmf_gpu import NMF

X = np.random.default_rng(0).random((12, 8))


@pytest.mark.parametrize("data,match", [
    (-X, "Negative values"),
    (np.where(X > 0.5, np.nan, X), "NaN"),
    (np.where(X > 0.5, np.inf, X), "infinity"),
    (X[0], "2D array"),
    (np.zeros((0, 8)), "0 sample"),
    (np.zeros((5, 0)), "0 feature"),
])
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        NMF(n_components=2, backend="cpu").fit(data)


@pytest.mark.parametrize("params,match", [
    (dict(solver="als"), "solver"),
    (dict(beta_loss="itakura", solver="mu"), "beta_loss"),
    (dict(beta_loss=float("nan"), solver="mu"), "beta_loss"),
    (dict(beta_loss=0.5, solver="cd"), "solver 'cd'"),
    (dict(beta_loss="kullback-leibler", solver="cd"), "solver 'cd'"),
    (dict(init="svd"), "init"),
    (dict(n_components=0), "n_components"),
    (dict(n_components=2.5), "n_components"),
    (dict(tol=-1.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(alpha_W=-1.0), "alpha_W"),
    (dict(alpha_H=-0.1), "alpha_H"),
    (dict(l1_ratio=1.5), "l1_ratio"),
    (dict(backend="tpu"), "backend"),
    (dict(orthogonal="X"), "orthogonal"),
    (dict(shuffle=True), "shuffle"),
    (dict(init="nndsvd", n_components=10), "too large"),  # from the Rust engine (NmfError)
    (dict(orthogonal="H", solver="cd"), "rthogonal"),    # from the Rust engine
])
def test_bad_parameters(params, match):
    kw = dict(n_components=2, backend="cpu")
    kw.update(params)
    with pytest.raises(ValueError, match=match):
        NMF(**kw).fit(X)


def test_custom_init_errors():
    r = 3
    W = np.ones((12, r))
    H = np.ones((r, 8))
    m = NMF(n_components=r, init="custom", backend="cpu")
    with pytest.raises(ValueError, match="needs both W and H"):
        m.fit_transform(X, W=W)
    with pytest.raises(ValueError, match=r"wrong second dimension passed to NMF \(input H\). "
                                         "Expected 8, but got 9"):
        m.fit_transform(X, W=W, H=np.ones((r, 9)))
    with pytest.raises(ValueError, match=r"wrong first dimension passed to NMF \(input W\). "
                                         "Expected 12, but got 11"):
        m.fit_transform(X, W=W[:11], H=H)
    with pytest.raises(ValueError, match="Negative values"):
        m.fit_transform(X, W=-W, H=H)
    with pytest.raises(ValueError, match="full of zeros"):
        m.fit_transform(X, W=W, H=np.zeros((r, 8)))
    with pytest.warns(RuntimeWarning, match="ignored"):
        NMF(n_components=r, max_iter=5, backend="cpu").fit_transform(X, W=W, H=H)


def test_transform_errors():
    m = NMF(n_components=2, max_iter=20, backend="cpu")
    with pytest.raises(ValueError, match="not fitted"):
        m.transform(X)
    m.fit(X)
    with pytest.raises(ValueError, match="8 features"):
        m.transform(X[:, :5])
    with pytest.raises(ValueError, match="Negative values"):
        m.transform(-X)


def test_sparse_on_gpu_runs_like_the_cpu():
    sp = pytest.importorskip("scipy.sparse")
    import nmf_gpu

    if not nmf_gpu.gpu_info():
        pytest.skip("no GPU adapter")
    Xs = sp.csr_matrix(np.where(X > 0.4, X, 0.0))
    kw = dict(n_components=2, init="random", random_state=0, max_iter=50, tol=0.0)
    g = NMF(backend="gpu", **kw).fit(Xs)
    c = NMF(backend="cpu", **kw).fit(Xs)
    assert abs(g.reconstruction_err_ - c.reconstruction_err_) <= 1e-3 * c.reconstruction_err_
