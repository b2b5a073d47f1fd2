"""nmf_gpu.NMF: input kinds, orientation, dtypes, attributes, warnings, interruption."""

import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from conftest import require_gpu, start

import nmf_gpu
from nmf_gpu import NMF


def fit_custom(X, w0, h0, **kw):
    """A fit from the custom start (w0, h0), given in X's dtype as scikit-learn requires
    (float32 for float32 data, float64 for any other)."""
    params = dict(n_components=w0.shape[1], init="custom", solver="mu", tol=0.0,
                  max_iter=60, backend="cpu")
    params.update(kw)
    model = NMF(**params)
    dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
    W = model.fit_transform(X, W=w0.astype(dtype), H=h0.astype(dtype))
    return model, W


def test_orientation_and_attributes(rng):
    X = rng.random((40, 25)) * 3
    model = NMF(n_components=4, max_iter=300, random_state=0, backend="cpu")
    W = model.fit_transform(X)
    assert W.shape == (40, 4)
    assert model.components_.shape == (4, 25)
    assert model.n_components_ == 4
    assert model.n_features_in_ == 25
    assert 1 <= model.n_iter_ <= 300
    assert (W >= 0).all() and (model.components_ >= 0).all()
    err = np.linalg.norm(X - W @ model.components_)
    assert model.reconstruction_err_ == pytest.approx(err, rel=1e-3)
    assert err < np.linalg.norm(X)
    np.testing.assert_allclose(model.inverse_transform(W), W @ model.components_)
    assert list(model.get_feature_names_out()) == ["nmf0", "nmf1", "nmf2", "nmf3"]
    assert model.engine_.startswith("cpu")


def test_n_components_none_is_n_features(rng):
    X = rng.random((30, 6))
    model = NMF(max_iter=50, random_state=0, backend="cpu").fit(X)
    assert model.n_components_ == 6


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64,
                                   np.uint8])
def test_dtypes(rng, dtype):
    X32 = rng.integers(0, 6, size=(30, 20)).astype(np.float32)
    w0, h0 = start(rng, 30, 20, 3)
    ref, W_ref = fit_custom(X32, w0, h0)
    model, W = fit_custom(X32.astype(dtype), w0, h0)
    # scikit-learn's rule: float32 stays float32, every other dtype gives float64.
    assert W.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert model.components_.dtype == W.dtype
    np.testing.assert_allclose(W, W_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.components_, ref.components_, rtol=1e-5, atol=1e-6)


def test_memory_orders_and_views(rng):
    X = rng.random((35, 28)).astype(np.float32)
    w0, h0 = start(rng, 35, 28, 4)
    ref, W_ref = fit_custom(X, w0, h0)
    variants = [
        np.asfortranarray(X),
        np.ascontiguousarray(X.T).T,          # F-ordered view
        np.repeat(X, 2, axis=1)[:, ::2],      # strided, not contiguous
        X.tolist(),                           # nested lists
    ]
    for Xv in variants:
        model, W = fit_custom(Xv, w0, h0)
        np.testing.assert_allclose(W, W_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.components_, ref.components_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.transform(Xv), ref.transform(X), rtol=1e-5,
                                   atol=1e-6)


def test_transposed_data_swaps_the_factors(rng):
    # X ≈ W H  <=>  Xᵀ ≈ Hᵀ Wᵀ: both fits reach the same error from mirrored starts with HALS
    # only up to the update order, so compare reconstructions loosely.
    X = rng.random((30, 22)).astype(np.float32)
    a = NMF(n_components=3, solver="cd", max_iter=400, tol=1e-6, random_state=0,
            backend="cpu")
    b = NMF(n_components=3, solver="cd", max_iter=400, tol=1e-6, random_state=0,
            backend="cpu")
    Wa = a.fit_transform(X)
    Wb = b.fit_transform(X.T)
    assert Wb.shape == (22, 3) and b.components_.shape == (3, 30)
    ea = np.linalg.norm(X - Wa @ a.components_)
    eb = np.linalg.norm(X.T - Wb @ b.components_)
    assert ea == pytest.approx(eb, rel=0.05)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("solver,beta_loss", [("mu", "frobenius"), ("mu", "kullback-leibler"),
                                              ("cd", "frobenius")])
def test_sparse_equals_dense(rng, fmt, solver, beta_loss):
    sp = pytest.importorskip("scipy.sparse")
    X = rng.random((45, 35)).astype(np.float32)
    X[X < 0.6] = 0.0
    w0, h0 = start(rng, 45, 35, 4)
    dense, W_d = fit_custom(X, w0, h0, solver=solver, beta_loss=beta_loss)
    Xs = getattr(sp, f"{fmt}_matrix")(X)
    sparse, W_s = fit_custom(Xs, w0, h0, solver=solver, beta_loss=beta_loss)
    np.testing.assert_allclose(W_s, W_d, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(sparse.components_, dense.components_, rtol=1e-3, atol=1e-5)
    assert sparse.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-4)
    np.testing.assert_allclose(sparse.transform(Xs), dense.transform(X), rtol=1e-3, atol=1e-5)


def test_sparse_int64_indices_and_duplicates(rng):
    sp = pytest.importorskip("scipy.sparse")
    rows = np.array([0, 0, 1, 2, 2, 2, 3], dtype=np.int64)
    cols = np.array([1, 1, 0, 2, 3, 0, 1], dtype=np.int64)
    vals = np.array([1.0, 2.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    Xs = sp.coo_matrix((vals, (rows, cols)), shape=(4, 4))
    X = Xs.toarray()  # duplicates summed
    w0, h0 = start(rng, 4, 4, 2)
    _, W_d = fit_custom(X, w0, h0)
    _, W_s = fit_custom(Xs, w0, h0)
    np.testing.assert_allclose(W_s, W_d, rtol=1e-4, atol=1e-6)


def test_dataframe_feature_names(rng):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(rng.random((20, 5)), columns=list("abcde"))
    model = NMF(n_components=2, max_iter=50, random_state=0, backend="cpu").fit(X)
    assert list(model.feature_names_in_) == list("abcde")
    assert model.transform(X).shape == (20, 2)
    assert list(model.get_feature_names_out()) == ["nmf0", "nmf1"]
    with pytest.raises(ValueError, match="feature names"):
        model.transform(X.rename(columns={"a": "z"}))


def test_convergence_warning(rng):
    from nmf_gpu import ConvergenceWarning

    X = rng.random((20, 15))
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations 3"):
        NMF(n_components=3, max_iter=3, tol=1e-12, random_state=0, backend="cpu").fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = NMF(n_components=3, max_iter=3, tol=0.0, random_state=0, backend="cpu").fit(X)
        assert m.n_iter_ == 3


def test_random_state_is_reproducible(rng):
    X = rng.random((25, 18))
    a = NMF(n_components=3, init="random", max_iter=30, random_state=7, backend="cpu").fit(X)
    b = NMF(n_components=3, init="random", max_iter=30, random_state=7, backend="cpu").fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvda", "nndsvdar"])
def test_inits(rng, init):
    X = rng.random((30, 20))
    m = NMF(n_components=4, init=init, max_iter=200, random_state=0, backend="cpu").fit(X)
    assert m.reconstruction_err_ < np.linalg.norm(X)


def test_orthogonal_h(rng):
    X = rng.random((40, 30))
    m = NMF(n_components=3, solver="mu", orthogonal="H", max_iter=200, random_state=0,
            backend="cpu").fit(X)
    H = m.components_
    assert H.shape == (3, 30)
    assert np.isfinite(H).all() and (H >= 0).all()


def test_sparse_order_degree_equals_stored(rng):
    sp = pytest.importorskip("scipy.sparse")
    # Rows and columns of very different degrees (power-law-like), and an empty column.
    X = rng.random((60, 40)) * (rng.random((60, 40)) < np.linspace(0.05, 0.9, 40))
    X[:, 7] = 0.0
    Xs = sp.csr_matrix(X)
    kw = dict(n_components=4, solver="mu", beta_loss="kullback-leibler", max_iter=150,
              tol=0.0, random_state=0, backend="cpu")
    stored = NMF(**kw)
    W_s = stored.fit_transform(Xs)
    degree = NMF(sparse_order="degree", **kw)
    W_d = degree.fit_transform(Xs)
    assert degree.get_params()["sparse_order"] == "degree"
    np.testing.assert_allclose(W_d, W_s, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(degree.components_, stored.components_, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="sparse_order"):
        NMF(sparse_order="rcm", **kw).fit(Xs)


def test_gil_released_and_ctrl_c_stops_a_fit(rng):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    X = rng.random((400, 300)).astype(np.float32)
    model = NMF(n_components=20, solver="mu", beta_loss="kullback-leibler", tol=0.0,
                max_iter=10_000_000, backend="cpu")
    ticks = []
    stop = threading.Event()

    def count():  # runs only while the fit releases the GIL
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    counter = threading.Thread(target=count)
    counter.start()
    # Python's own Ctrl-C handler, also where the process started with SIGINT ignored (as a
    # background job of a non-interactive shell does), in which case Python installs none.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X)
    finally:
        stop.set()
        timer.cancel()
        counter.join()
        signal.signal(signal.SIGINT, previous)
    assert len(ticks) > 10
    assert not hasattr(model, "components_")


def test_gpu_info_lists_adapters():
    adapters = nmf_gpu.gpu_info()
    assert isinstance(adapters, list)
    for a in adapters:
        assert {"name", "backend", "device_type"} <= set(a)


@pytest.mark.parametrize("solver,beta_loss", [("mu", "frobenius"), ("mu", "kullback-leibler"),
                                              ("cd", "frobenius")])
def test_gpu_equals_cpu(rng, solver, beta_loss):
    require_gpu()
    X = rng.random((64, 48)).astype(np.float32)
    w0, h0 = start(rng, 64, 48, 5, scale=0.5)
    cpu, W_c = fit_custom(X, w0, h0, solver=solver, beta_loss=beta_loss, max_iter=50)
    gpu, W_g = fit_custom(X, w0, h0, solver=solver, beta_loss=beta_loss, max_iter=50,
                          backend="gpu")
    assert gpu.engine_.startswith("gpu"), gpu.engine_
    assert gpu.reconstruction_err_ == pytest.approx(cpu.reconstruction_err_, rel=1e-3)
    rel = np.linalg.norm(W_g @ gpu.components_ - W_c @ cpu.components_) / np.linalg.norm(X)
    assert rel < 1e-3
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-2, atol=1e-3)


def test_works_without_sklearn():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np, nmf_gpu, warnings\n"
        "assert not nmf_gpu._base.HAVE_SKLEARN\n"
        "assert issubclass(nmf_gpu.ConvergenceWarning, UserWarning)\n"
        "X = np.random.default_rng(0).random((20, 10))\n"
        "m = nmf_gpu.NMF(n_components=3, max_iter=100, random_state=0, backend='cpu')\n"
        "W = m.fit_transform(X)\n"
        "assert W.shape == (20, 3) and m.components_.shape == (3, 10)\n"
        "assert m.get_params()['n_components'] == 3\n"
        "assert list(m.get_feature_names_out()) == ['nmf0', 'nmf1', 'nmf2']\n"
        "try:\n"
        "    m.fit(-X)\n"
        "except ValueError as e:\n"
        "    assert 'Negative values' in str(e)\n"
        "else:\n"
        "    raise SystemExit('negative input accepted')\n"
        "try:\n"
        "    nmf_gpu.NMF().transform(X)\n"
        "except ValueError as e:\n"
        "    assert 'not fitted' in str(e)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("order", ["C", "F"])
def test_float32_contiguous_input_reaches_the_engine_uncopied(rng, monkeypatch, order):
    import nmf_gpu._nmf as mod

    seen = []
    real = mod._core.fit_dense

    def spy(v, *args):
        seen.append(v)
        return real(v, *args)

    monkeypatch.setattr(mod._core, "fit_dense", spy)
    X = np.asarray(rng.random((30, 20)), dtype=np.float32, order=order)
    NMF(n_components=3, max_iter=20, backend="cpu").fit(X)
    assert np.shares_memory(seen[-1], X)
    X64 = X.astype(np.float64)
    NMF(n_components=3, max_iter=20, backend="cpu").fit(X64)
    assert seen[-1].dtype == np.float32 and not np.shares_memory(seen[-1], X64)


def test_backend_names_an_adapter_by_its_index():
    adapters = require_gpu()
    X = np.random.default_rng(3).random((30, 20)).astype(np.float32)
    last = len(adapters) - 1
    m = nmf_gpu.NMF(n_components=3, max_iter=20, random_state=0, backend=f"gpu:{last}").fit(X)
    assert m.engine_.startswith("gpu"), m.engine_
    assert adapters[last]["name"] in m.engine_
    with pytest.raises(RuntimeError, match=f"there is no adapter {len(adapters)}"):
        nmf_gpu.NMF(n_components=3, backend=f"gpu:{len(adapters)}").fit(X)
    for bad in ("gpu:", "gpu:x", "gpu:-1", "tpu", "gpu:0,x", "gpu:al"):
        with pytest.raises(ValueError, match="gpu:N"):
            nmf_gpu.NMF(n_components=3, backend=bad).fit(X)
    # Two contexts on one adapter stand in for two GPUs: the fit of one device, to f32 sums.
    one = nmf_gpu.NMF(n_components=3, max_iter=20, random_state=0, backend="gpu:0").fit(X)
    two = nmf_gpu.NMF(n_components=3, max_iter=20, random_state=0, backend="gpu:0,0").fit(X)
    assert two.engine_.startswith("gpu x2"), two.engine_
    np.testing.assert_allclose(two.components_, one.components_, rtol=1e-4, atol=1e-6)
