"""nmf_gpu.MiniBatchNMF: scikit-learn's MiniBatchNMF from the same start, the batch fit it
reduces to, partial_fit, pickling, and fits streamed from a path."""

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from conftest import start

import nmf_gpu

sklearn = pytest.importorskip("sklearn")
from sklearn.decomposition import MiniBatchNMF as SkMiniBatchNMF  # noqa: E402

# The tolerance of the batch parity tests (test_parity.py): the factors' product relative to
# ||X||, and the reconstruction error relative.
PRODUCT_REL = 1e-4
ERR_REL = 1e-5

PENALTIES = dict(alpha_W=0.01, alpha_H=0.02, l1_ratio=0.4)


def fit_both(X, w0, h0, **kw):
    params = dict(n_components=w0.shape[1], init="custom")
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SkMiniBatchNMF(**params)
        W_sk = sk.fit_transform(X, W=w0.copy(), H=h0.copy())
        ours = nmf_gpu.MiniBatchNMF(backend="cpu", **params)
        W = ours.fit_transform(X, W=w0.copy(), H=h0.copy())
    return sk, W_sk, ours, W


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
@pytest.mark.parametrize("fresh_restarts", [False, True])
@pytest.mark.parametrize("penalties", [{}, PENALTIES], ids=["plain", "penalised"])
def test_same_fit_as_sklearn(rng, beta_loss, fresh_restarts, penalties):
    X = rng.random((120, 30)).astype(np.float32)
    w0, h0 = start(rng, 120, 30, 4)
    sk, W_sk, ours, W = fit_both(X, w0, h0, batch_size=30, beta_loss=beta_loss, max_iter=25,
                                 fresh_restarts=fresh_restarts, **penalties)
    assert ours.n_steps_ == sk.n_steps_
    assert ours.n_iter_ == sk.n_iter_
    assert W.dtype == W_sk.dtype == np.float32
    rel = np.linalg.norm(W @ ours.components_ - W_sk @ sk.components_) / np.linalg.norm(X)
    assert rel < PRODUCT_REL
    assert ours.reconstruction_err_ == pytest.approx(sk.reconstruction_err_, rel=ERR_REL)
    X_new = rng.random((15, 30)).astype(np.float32)
    sk.components_ = ours.components_.copy()
    assert np.linalg.norm(ours.transform(X_new) - sk.transform(X_new)) \
        < PRODUCT_REL * np.linalg.norm(sk.transform(X_new))


def test_stopping_rules_stop_where_sklearn_stops():
    # Exact rank-3 data: the change of H falls below tol part-way.
    rng = np.random.default_rng(1)
    X = rng.random((90, 3)) @ rng.random((3, 20))
    w0, h0 = rng.random((90, 3)) + 0.1, rng.random((3, 20)) + 0.1
    for tol, max_no_improvement in [(1e-3, 5), (1e-2, 5)]:
        sk, _, ours, _ = fit_both(X, w0, h0, batch_size=30, max_iter=200, tol=tol,
                                  max_no_improvement=max_no_improvement)
        assert sk.n_steps_ < 200 * 3  # a rule stopped it early
        assert ours.n_steps_ == sk.n_steps_
        assert ours.n_iter_ == sk.n_iter_


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
def test_partial_fit_equals_sklearn(rng, beta_loss):
    X = rng.random((120, 25)).astype(np.float32)
    w0, h0 = start(rng, 30, 25, 3)
    kw = dict(n_components=3, init="custom", beta_loss=beta_loss, alpha_W=0.01, l1_ratio=0.5)
    sk = SkMiniBatchNMF(**kw)
    ours = nmf_gpu.MiniBatchNMF(backend="cpu", **kw)
    for i in range(4):
        batch = X[i * 30:(i + 1) * 30]
        sk.partial_fit(batch, W=w0.copy(), H=h0.copy())
        ours.partial_fit(batch, W=w0.copy(), H=h0.copy())
    assert ours.n_steps_ == sk.n_steps_ == 4
    np.testing.assert_allclose(ours.components_, sk.components_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("beta_loss", ["frobenius", "kullback-leibler"])
def test_one_batch_without_memory_is_the_batch_mu_fit(rng, beta_loss):
    # One batch of every sample, the past forgotten (forget_factor=0: rho = 0) and the
    # encodings kept (one step each pass): each pass is one multiplicative iteration.
    X = rng.random((50, 20)).astype(np.float32)
    w0, h0 = start(rng, 50, 20, 3)
    kw = dict(n_components=3, init="custom", beta_loss=beta_loss, tol=0.0, max_iter=30)
    mini = nmf_gpu.MiniBatchNMF(batch_size=50, forget_factor=0.0, fresh_restarts=False,
                                max_no_improvement=None, backend="cpu", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W_mini = mini.fit_transform(X, W=w0.copy(), H=h0.copy())
    batch = nmf_gpu.NMF(solver="mu", backend="cpu", **kw)
    W_batch = batch.fit_transform(X, W=w0.copy(), H=h0.copy())
    np.testing.assert_allclose(mini.components_, batch.components_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(W_mini, W_batch, rtol=1e-4, atol=1e-6)
    assert mini.reconstruction_err_ == pytest.approx(batch.reconstruction_err_, rel=1e-4)


def test_dtypes_pickling_and_continuing(rng):
    X = rng.integers(0, 5, size=(60, 12))
    model = nmf_gpu.MiniBatchNMF(n_components=3, batch_size=20, max_iter=5, random_state=0,
                                 backend="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = model.fit_transform(X)
    assert W.dtype == model.components_.dtype == np.float64  # integers give float64
    W32 = model.transform(X.astype(np.float32))
    assert W32.dtype == np.float32
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.transform(X), model.transform(X))
    batch = X[:20].astype(np.float64)
    model.partial_fit(batch)
    clone.partial_fit(batch)
    np.testing.assert_array_equal(clone.components_, model.components_)
    assert clone.n_steps_ == model.n_steps_


def test_bad_parameters_in_sklearn_words():
    X = np.ones((10, 4))
    for params, match in [
        (dict(batch_size=0), "The 'batch_size' parameter of MiniBatchNMF must be an int"),
        (dict(forget_factor=1.5), "The 'forget_factor' parameter of MiniBatchNMF"),
        (dict(beta_loss="itakura-saito"), "Frobenius .* Kullback-Leibler"),
        (dict(backend="tpu"), "The 'backend' parameter of MiniBatchNMF"),
    ]:
        with pytest.raises(ValueError, match=match):
            nmf_gpu.MiniBatchNMF(n_components=2, **params).fit(X)


def write_npy(path, rows, cols, seed=0):
    """A float32 .npy of rows x cols written in pieces (never whole in memory)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    step = 4096
    for i in range(0, rows, step):
        out[i:i + step] = rng.random((min(step, rows - i), cols), dtype=np.float32)
    out.flush()
    del out


def test_fit_from_a_npy_path_equals_the_array_fit(tmp_path, rng):
    X = rng.random((80, 16)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    h0 = start(rng, 80, 16, 3)[1]
    kw = dict(n_components=3, init="custom", batch_size=20, max_iter=10, fresh_restarts=True,
              backend="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_path = nmf_gpu.MiniBatchNMF(**kw).fit(str(path), H=h0)
        from_array = nmf_gpu.MiniBatchNMF(**kw).fit(X, W=np.ones((80, 3), np.float32), H=h0)
    np.testing.assert_allclose(from_path.components_, from_array.components_, rtol=1e-5)
    assert from_path.n_features_in_ == 16 and from_path.n_steps_ == from_array.n_steps_


def test_fit_from_a_zarr_array_equals_the_array_fit(rng):
    # A Blosc-LZ4 uint16 array written by zarr-python (tests/fixtures/zarr): 10 samples of 8x8,
    # value ((s * 7 + y * 8 + x) * 3) % 251, read chunk by chunk.
    store = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                         "fixtures", "zarr", "v2.zarr", "blosc_lz4_u2")
    if not os.path.isdir(store):
        pytest.skip(f"no Zarr fixture at {store} (run from a checkout)")
    s, y, x = np.meshgrid(np.arange(10), np.arange(8), np.arange(8), indexing="ij")
    X = (((s * 7 + y * 8 + x) * 3) % 251).reshape(10, 64).astype(np.float32)
    h0 = start(rng, 10, 64, 3)[1]
    kw = dict(n_components=3, init="custom", batch_size=4, max_iter=5, fresh_restarts=True,
              backend="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_store = nmf_gpu.MiniBatchNMF(**kw).fit(store, H=h0)
        from_array = nmf_gpu.MiniBatchNMF(**kw).fit(X, W=np.ones((10, 3), np.float32), H=h0)
    np.testing.assert_allclose(from_store.components_, from_array.components_, rtol=1e-5)


def test_fit_from_an_image_directory(tmp_path, rng):
    # Four grey 6x5 PGM images: one sample each, 30 pixels as features.
    for i in range(4):
        pixels = rng.integers(0, 256, size=(6, 5), dtype=np.uint8)
        (tmp_path / f"im{i}.pgm").write_bytes(b"P5 5 6 255\n" + pixels.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nmf_gpu.MiniBatchNMF(n_components=2, batch_size=2, max_iter=3, backend="cpu")
        model.fit(tmp_path)
    assert model.components_.shape == (2, 30)
    assert model.n_steps_ == 6


STREAM_CHILD = textwrap.dedent("""
    import resource, sys, warnings
    import numpy as np
    import nmf_gpu

    path, budget = sys.argv[1], int(sys.argv[2])

    def data_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

    limit = data_bytes() + budget
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.load(path)
    except MemoryError:
        print("whole: MemoryError")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nmf_gpu.MiniBatchNMF(n_components=4, batch_size=512, max_iter=1,
                                     fresh_restarts_max_iter=3, backend="cpu")
        model.fit(path)
    print("streamed:", model.components_.shape, model.n_steps_)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc")
def test_stream_a_npy_larger_than_the_memory_limit(tmp_path):
    # 96 MiB of data, a process limited to 40 MiB above what it holds after the imports:
    # loading the file whole fails, streaming it batch by batch fits.
    rows, cols = 24576, 1024
    path = tmp_path / "big.npy"
    write_npy(path, rows, cols)
    env = dict(os.environ, MALLOC_ARENA_MAX="2", RAYON_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", STREAM_CHILD, str(path), str(40 << 20)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "whole: MemoryError" in out.stdout, out.stdout
    assert f"streamed: (4, {cols}) {rows // 512}" in out.stdout, out.stdout


def test_gpu_engine_fits_as_the_cpu_engine(rng):
    from conftest import require_gpu

    adapters = require_gpu()
    X = rng.random((96, 24)).astype(np.float32)
    w0, h0 = start(rng, 96, 24, 3)
    kw = dict(n_components=3, init="custom", batch_size=32, max_iter=10, alpha_W=0.01,
              l1_ratio=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = nmf_gpu.MiniBatchNMF(backend="cpu", **kw)
        W_cpu = cpu.fit_transform(X, W=w0.copy(), H=h0.copy())
        gpu = nmf_gpu.MiniBatchNMF(backend=f"gpu:{len(adapters) - 1}", **kw)
        W_gpu = gpu.fit_transform(X, W=w0.copy(), H=h0.copy())
    assert gpu.engine_.startswith("gpu"), gpu.engine_
    rel = np.linalg.norm(W_gpu @ gpu.components_ - W_cpu @ cpu.components_) / np.linalg.norm(X)
    assert rel < 2e-3


@pytest.mark.parametrize("fresh_restarts", [True, False])
def test_checkpoint_and_resume_end_as_the_whole_fit(tmp_path, rng, fresh_restarts):
    X = rng.random((90, 12)).astype(np.float32)
    kw = dict(n_components=3, batch_size=30, max_iter=8, tol=0.0, max_no_improvement=None,
              fresh_restarts=fresh_restarts, random_state=0, backend="cpu")
    ckpt = tmp_path / "ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = nmf_gpu.MiniBatchNMF(**kw)
        W_whole = whole.fit_transform(X)
        # The same fit, stopped after 10 batches (its checkpoint), then resumed.
        first = nmf_gpu.MiniBatchNMF(checkpoint_every=10, checkpoint_dir=ckpt,
                                     **{**kw, "max_iter": 4})
        first.fit(X)
        assert (ckpt / "state.txt").exists()
        assert (ckpt / "encodings.npy").exists() == (not fresh_restarts)
        resumed = nmf_gpu.MiniBatchNMF(resume_from=ckpt, **kw)
        W = resumed.fit_transform(X)
    assert resumed.n_steps_ == whole.n_steps_ == 24
    np.testing.assert_allclose(resumed.components_, whole.components_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(W, W_whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a checkpoint"):
        nmf_gpu.MiniBatchNMF(resume_from=tmp_path / "none", **kw).fit(X)
