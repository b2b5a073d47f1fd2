"""scikit-learn's API beyond the estimators' fits: non_negative_factorization, n_components
"auto", the dtype rules, the shape errors, the warnings and the parameter errors; and the
library's own additions (fixed components, checkpoints, rank selection, adapters)."""

import warnings

import numpy as np
import pytest

from conftest import start

import nmf_gpu

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import NMF as SkNMF  # noqa: E402
from sklearn.decomposition import MiniBatchNMF as SkMiniBatchNMF  # noqa: E402
from sklearn.decomposition import non_negative_factorization as sk_nnf  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

PRODUCT_REL = 1e-4


def quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


@pytest.mark.parametrize("solver,beta_loss", [("cd", "frobenius"), ("mu", "frobenius"),
                                              ("mu", "kullback-leibler")])
def test_non_negative_factorization_equals_sklearn(rng, solver, beta_loss):
    X = rng.random((50, 20)).astype(np.float32)
    w0, h0 = start(rng, 50, 20, 4)
    kw = dict(init="custom", solver=solver, beta_loss=beta_loss, tol=0.0, max_iter=80)
    W_sk, H_sk, n_sk = quiet(sk_nnf, X, w0.copy(), h0.copy(), **kw)
    W, H, n = quiet(nmf_gpu.non_negative_factorization, X, w0.copy(), h0.copy(), backend="cpu",
                    **kw)
    assert n == n_sk == 80
    assert W.dtype == H.dtype == np.float32
    assert H.shape == H_sk.shape == (4, 20)  # n_components="auto" from H
    rel = np.linalg.norm(W @ H - W_sk @ H_sk) / np.linalg.norm(X)
    assert rel < PRODUCT_REL


@pytest.mark.parametrize("solver,beta_loss", [("cd", "frobenius"), ("mu", "frobenius"),
                                              ("mu", "kullback-leibler")])
def test_update_h_false_is_transform_with_h_fixed(rng, solver, beta_loss):
    X = rng.random((40, 15))
    H = rng.random((3, 15)) + 0.1
    kw = dict(update_H=False, solver=solver, beta_loss=beta_loss, tol=1e-4, max_iter=200)
    W_sk, H_sk, n_sk = quiet(sk_nnf, X, H=H.copy(), **kw)
    W, H_out, n = quiet(nmf_gpu.non_negative_factorization, X, H=H.copy(), backend="cpu", **kw)
    np.testing.assert_array_equal(H_out, H)  # H is not updated
    assert W.shape == (40, 3) and W.dtype == np.float64
    assert 1 <= n <= 200
    assert np.linalg.norm(W - W_sk) < 1e-3 * np.linalg.norm(W_sk)
    with pytest.warns(RuntimeWarning, match="When update_H=False, the provided initial W is "
                                            "not used."):
        nmf_gpu.non_negative_factorization(X, W=np.ones((40, 3)), H=H, update_H=False,
                                           max_iter=5, backend="cpu")


def test_n_components_auto_and_none(rng):
    X = rng.random((30, 8))
    w0, h0 = (a.astype(np.float64) for a in start(rng, 30, 8, 5))
    for Est, Sk in [(nmf_gpu.NMF, SkNMF), (nmf_gpu.MiniBatchNMF, SkMiniBatchNMF)]:
        for n_components, kw, fit_kw in [
            ("auto", dict(init="custom"), dict(W=w0, H=h0)),  # from H
            ("auto", {}, {}),                                 # n_features
            (None, {}, {}),                                   # n_features
        ]:
            ours = quiet(Est(n_components=n_components, max_iter=5, backend="cpu",
                             **kw).fit, X, **fit_kw)
            sk = quiet(Sk(n_components=n_components, max_iter=5, **kw).fit, X, **fit_kw)
            assert ours.n_components_ == sk.n_components_, (Est, n_components, kw)


@pytest.mark.parametrize("Est", [nmf_gpu.NMF, nmf_gpu.MiniBatchNMF])
@pytest.mark.parametrize("dtype,expected", [(np.float32, np.float32), (np.float64, np.float64),
                                            (np.int64, np.float64), (np.int32, np.float64),
                                            (np.uint8, np.float64)])
def test_output_dtype(rng, Est, dtype, expected):
    X = rng.integers(0, 5, size=(24, 6)).astype(dtype)
    model = Est(n_components=2, max_iter=5, backend="cpu")
    W = quiet(model.fit_transform, X)
    assert W.dtype == model.components_.dtype == expected
    assert model.transform(X).dtype == expected


@pytest.mark.parametrize("Est", [nmf_gpu.NMF, nmf_gpu.MiniBatchNMF])
def test_custom_start_of_another_dtype_is_a_type_error(rng, Est):
    X = rng.random((20, 6))  # float64
    w0, h0 = start(rng, 20, 6, 2)  # float32
    model = Est(n_components=2, init="custom", backend="cpu")
    with pytest.raises(TypeError, match="H and W should have the same dtype as X. Got "
                                        "H.dtype = float32 and W.dtype = float32."):
        model.fit(X, W=w0, H=h0)
    with pytest.raises(TypeError, match="H should have the same dtype as X"):
        nmf_gpu.non_negative_factorization(X, H=h0, update_H=False, backend="cpu")


@pytest.mark.parametrize("Est,Sk", [(nmf_gpu.NMF, SkNMF),
                                    (nmf_gpu.MiniBatchNMF, SkMiniBatchNMF)])
def test_shape_errors_and_warnings_as_sklearn(rng, Est, Sk):
    X = rng.random((20, 6))
    W, H = np.ones((20, 2)), np.ones((2, 6))
    for w, h in [(W[:19], H), (W, H[:, :5]), (W, np.ones((3, 6)))]:
        with pytest.raises(ValueError) as sk_err:
            Sk(n_components=2, init="custom").fit(X, W=w, H=h)
        with pytest.raises(ValueError) as err:
            Est(n_components=2, init="custom", backend="cpu").fit(X, W=w, H=h)
        assert str(err.value) == str(sk_err.value)
    with pytest.warns(RuntimeWarning) as sk_warn:
        quiet_sk = Sk(n_components=2, max_iter=5)
        quiet_sk.fit(X, W=W, H=H)
    with pytest.warns(RuntimeWarning) as ours:
        Est(n_components=2, max_iter=5, backend="cpu").fit(X, W=W, H=H)
    sk_msgs = {str(w.message) for w in sk_warn if w.category is RuntimeWarning}
    assert {str(w.message) for w in ours if w.category is RuntimeWarning} == sk_msgs


@pytest.mark.parametrize("Est,Sk", [(nmf_gpu.NMF, SkNMF),
                                    (nmf_gpu.MiniBatchNMF, SkMiniBatchNMF)])
@pytest.mark.parametrize("params", [dict(tol=-1), dict(max_iter=0), dict(n_components=0),
                                    dict(n_components="x"), dict(init="svd"),
                                    dict(beta_loss="itakura"), dict(alpha_W=-1),
                                    dict(alpha_H="other"), dict(l1_ratio=2),
                                    dict(verbose="loud")])
def test_parameter_errors_in_sklearn_words(Est, Sk, params):
    X = np.ones((6, 4))
    with pytest.raises(InvalidParameterError) as sk_err:
        Sk(**params).fit(X)
    with pytest.raises(InvalidParameterError) as err:
        Est(backend="cpu", **params).fit(X)
    assert str(err.value) == str(sk_err.value)


def test_fixed_components_stay_fixed(rng):
    X = rng.random((30, 12))
    w0, h0 = (a.astype(np.float64) for a in start(rng, 30, 12, 4))
    model = nmf_gpu.NMF(n_components=4, init="custom", solver="mu", max_iter=50, fix_H=[0, 2],
                        fix_W=[1], backend="cpu")
    W = quiet(model.fit_transform, X, W=w0, H=h0)
    np.testing.assert_allclose(model.components_[[0, 2]], h0[[0, 2]], rtol=1e-6)
    np.testing.assert_allclose(W[:, 1], w0[:, 1], rtol=1e-6)
    assert not np.allclose(model.components_[1], h0[1])
    with pytest.raises(ValueError, match="fix_H names component 4"):
        nmf_gpu.NMF(n_components=4, init="custom", fix_H=[4], backend="cpu").fit(X, W=w0, H=h0)
    with pytest.raises(ValueError, match="custom start"):
        nmf_gpu.NMF(n_components=4, fix_H=[0], backend="cpu").fit(X)


def test_checkpoint_and_resume_continue_the_fit(tmp_path, rng):
    X = rng.random((30, 12)).astype(np.float32)
    w0, h0 = start(rng, 30, 12, 3)
    kw = dict(n_components=3, solver="mu", tol=0.0, backend="cpu")
    whole = nmf_gpu.NMF(init="custom", max_iter=40, **kw)
    W_whole = whole.fit_transform(X, W=w0, H=h0)
    ckpt = tmp_path / "ckpt"
    first = nmf_gpu.NMF(init="custom", max_iter=20, checkpoint_every=10, checkpoint_dir=ckpt,
                        **kw)
    first.fit(X, W=w0, H=h0)
    assert sorted(p.name for p in ckpt.iterdir()) == ["H.npy", "W.npy", "state.txt"]
    resumed = nmf_gpu.NMF(max_iter=40, resume_from=ckpt, **kw)
    W = resumed.fit_transform(X)
    assert resumed.n_iter_ == 40
    np.testing.assert_allclose(W @ resumed.components_, W_whole @ whole.components_,
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="not a checkpoint"):
        nmf_gpu.NMF(resume_from=tmp_path / "missing", **kw).fit(X)


def test_select_rank_finds_a_planted_rank():
    # Three groups of samples, each built from its own part, plus a little noise.
    rng = np.random.default_rng(0)
    parts = np.zeros((3, 30))
    for k in range(3):
        parts[k, k * 10:(k + 1) * 10] = 1.0
    labels = np.repeat(np.arange(3), 12)
    X = parts[labels] * (1 + 0.5 * rng.random((36, 1))) + 0.01 * rng.random((36, 30))
    sel = nmf_gpu.select_rank(X, range(2, 6), method="consensus", n_runs=6, random_state=1)
    assert sel.recommended_rank_ == 3
    assert sel.table_["rank"] == [2, 3, 4, 5]
    assert len(sel.table_["cophenetic"]) == 4
    assert sel.choices_["consensus"] == 3
    picture = sel.png()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    plotted = sel.plot()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert plotted == picture
    else:
        assert plotted.__class__.__name__ == "Figure"
    with pytest.raises(ValueError, match="consecutive"):
        nmf_gpu.select_rank(X, [2, 4])
    with pytest.raises(ValueError, match="method"):
        nmf_gpu.select_rank(X, range(2, 4), method="guess")


def test_gpu_info_lists_adapters_with_their_index_and_type():
    adapters = nmf_gpu.gpu_info()
    for i, a in enumerate(adapters):
        assert a["index"] == i
        assert isinstance(a["device_type"], str) and a["device_type"]
        assert a["backend"] in ("vulkan", "metal", "dx12", "gl", "browserwebgpu")
