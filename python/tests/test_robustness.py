"""Parameters checked before any work, input handled as documented (complex refused, sparse
kept sparse), and one estimator fitted from several threads."""

import threading
import time

import numpy as np
import pytest

import nmf_gpu
from nmf_gpu import NMF, MaskedNMF, SymmetricNMF

X = np.random.default_rng(0).random((12, 8))


def graph(rng, n, edges):
    """A random symmetric sparse adjacency with about ``edges`` edges on ``n`` nodes."""
    sp = pytest.importorskip("scipy.sparse")
    i = rng.integers(0, n, edges)
    j = rng.integers(0, n, edges)
    keep = i != j
    a = sp.coo_matrix((np.ones(keep.sum()), (i[keep], j[keep])), shape=(n, n)).tocsr()
    a = a + a.T
    a.data[:] = 1.0
    return a


# ------------------------------------------------------------------ n_components and counts

@pytest.mark.parametrize("Est", [NMF, SymmetricNMF, MaskedNMF])
@pytest.mark.parametrize("bad", [2**64, 2**63, -1, 0, 2.5, "3", True])
def test_n_components_out_of_range_is_named(Est, bad):
    with pytest.raises(ValueError) as e:
        Est(n_components=bad, backend="cpu").fit(X[:8, :8])
    msg = str(e.value)
    assert f"The 'n_components' parameter of {Est.__name__} must be an int in the range [1, " \
        in msg, msg
    assert f"Got {bad!r} instead." in msg
    assert "extract" not in msg and "Config" not in msg


@pytest.mark.parametrize("Est", [NMF, SymmetricNMF, MaskedNMF])
def test_max_iter_out_of_range_is_named(Est):
    with pytest.raises(ValueError, match="The 'max_iter' parameter of .* Got 18446744073709551616"):
        Est(n_components=2, max_iter=2**64, backend="cpu").fit(X[:8, :8])


def test_n_init_out_of_range_is_named():
    with pytest.raises(ValueError, match="The 'n_init' parameter of SymmetricNMF"):
        SymmetricNMF(n_components=2, n_init=2**64, backend="cpu").fit(np.ones((8, 8)))


# ------------------------------------------------------------------ complex input

@pytest.mark.parametrize("Est", [NMF, SymmetricNMF, MaskedNMF])
def test_complex_input_is_refused(Est):
    A = (X[:8, :8] + X[:8, :8].T).astype(np.complex128) + 1j
    with pytest.raises(ValueError, match="Complex data not supported"):
        Est(n_components=2, backend="cpu").fit(A)


@pytest.mark.parametrize("Est", [NMF, SymmetricNMF, MaskedNMF])
def test_complex_sparse_input_is_refused(Est):
    sp = pytest.importorskip("scipy.sparse")
    A = sp.csr_matrix((X[:8, :8] + X[:8, :8].T).astype(np.complex128) * (1 + 1j))
    with pytest.raises(ValueError, match="Complex data not supported"):
        Est(n_components=2, backend="cpu").fit(A)


# ------------------------------------------------------------------ sparse paths

def test_symmetric_sparse_takes_the_sparse_path(rng, monkeypatch):
    sp = pytest.importorskip("scipy.sparse")
    a = graph(rng, 3000, 8000)

    def densified(*_a, **_k):
        raise AssertionError("the adjacency was densified")

    # Neither the dense core nor any densifying conversion may run.
    monkeypatch.setattr(nmf_gpu._core, "sym_fit", densified)
    monkeypatch.setattr(sp.csr_matrix, "toarray", densified)
    monkeypatch.setattr(sp.csr_matrix, "todense", densified)
    model = SymmetricNMF(n_components=4, max_iter=30, random_state=0, backend="cpu").fit(a)
    assert model.embedding_.shape == (3000, 4)
    assert model.labels_.shape == (3000,)
    assert model.n_features_in_ == 3000
    for fmt in ("csc", "coo"):
        m = SymmetricNMF(n_components=4, max_iter=30, random_state=0, backend="cpu")
        m.fit(a.asformat(fmt))
        np.testing.assert_array_equal(m.labels_, model.labels_)


def test_symmetric_sparse_large_graph_fits_in_little_memory(rng):
    """60,000 nodes, 80k edges: 13.4 GiB densified (float32: 14.4 GB); sparse it is a few MB."""
    a = graph(rng, 60_000, 80_000)
    t = time.perf_counter()
    model = SymmetricNMF(n_components=8, max_iter=20, random_state=0, backend="cpu").fit(a)
    assert model.embedding_.shape == (60_000, 8)
    assert np.isfinite(model.embedding_).all()
    assert time.perf_counter() - t < 120


def test_masked_sparse_stored_entries_are_the_observed_ones(rng, monkeypatch):
    sp = pytest.importorskip("scipy.sparse")
    W = rng.random((40, 3)) + 0.1
    H = rng.random((3, 30)) + 0.1
    V = W @ H
    observed = rng.random(V.shape) < 0.7
    rows, cols = np.nonzero(observed)
    S = sp.coo_matrix((V[rows, cols], (rows, cols)), shape=V.shape)
    assert S.nnz == observed.sum()

    def densified(*_a, **_k):
        raise AssertionError("the sparse input took the dense path")

    monkeypatch.setattr(nmf_gpu._core, "masked_fit", densified)
    kw = dict(n_components=3, l2=0.0, max_iter=2000, tol=1e-7, random_state=0, backend="cpu")
    for fmt in ("csr", "csc", "coo"):
        model = MaskedNMF(**kw).fit(S.asformat(fmt))
        assert model.components_.shape == (3, 30)
        assert model.n_features_in_ == 30
        # The entries not stored are missing, not zeros: they are predicted from the rest.
        full = model.complete()
        err = np.abs(full - V)[~observed].mean() / V.mean()
        assert err < 0.05, err
    with pytest.raises(ValueError, match="mask must be None"):
        MaskedNMF(**kw).fit(S, mask=observed)


def test_masked_sparse_stored_zero_is_observed(rng):
    sp = pytest.importorskip("scipy.sparse")
    V = rng.random((20, 15)) + 1.0
    observed = rng.random(V.shape) < 0.8
    observed[:, 0] = True
    V[:, 0] = 0.0  # column 0: every entry a stored zero
    rows, cols = np.nonzero(observed)
    S = sp.csr_matrix((V[rows, cols], (rows, cols)), shape=V.shape)
    assert S.nnz == observed.sum()  # explicit zeros kept
    model = MaskedNMF(n_components=2, l2=0.0, max_iter=500, random_state=0,
                      backend="cpu").fit(S)
    assert np.abs(model.complete()[:, 0]).max() < 0.05


# ------------------------------------------------------------------ threads

@pytest.mark.parametrize("Est,core_fn,data", [
    (NMF, "fit_dense", lambda k: np.random.default_rng(k).random((20, 6 + k))),
    (SymmetricNMF, "sym_fit", lambda k: np.ones((6 + k, 6 + k)) + np.eye(6 + k)),
    (MaskedNMF, "masked_fit", lambda k: np.random.default_rng(k).random((20, 6 + k))),
])
def test_one_estimator_from_two_threads_is_serialised(Est, core_fn, data, monkeypatch):
    real = getattr(nmf_gpu._core, core_fn)
    busy = []
    overlapped = []
    guard = threading.Lock()

    def slow(*args, **kwargs):
        with guard:
            busy.append(1)
            if len(busy) > 1:
                overlapped.append(1)
        time.sleep(0.3)  # long enough for the other thread to enter if nothing stops it
        try:
            return real(*args, **kwargs)
        finally:
            with guard:
                busy.pop()

    monkeypatch.setattr(nmf_gpu._core, core_fn, slow)
    est = Est(n_components=2, max_iter=20, backend="cpu")
    start = threading.Barrier(2)
    errors = []

    def fit(k):
        try:
            start.wait()
            est.fit(data(k))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=fit, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not overlapped, "two fits of one estimator ran at once"
    # The attributes come from one fit.
    out = est.embedding_.shape[0] if Est is SymmetricNMF else est.components_.shape[1]
    assert out == est.n_features_in_


def test_estimators_stay_picklable_after_a_fit():
    import pickle

    m = NMF(n_components=2, max_iter=20, backend="cpu").fit(X)
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(again.components_, m.components_)
    again.fit(X)


def test_the_stand_ins_without_sklearn_refuse_complex_and_keep_nan_for_masked():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np, nmf_gpu\n"
        "assert not nmf_gpu._base.HAVE_SKLEARN\n"
        "X = np.random.default_rng(0).random((8, 8)); X = X + X.T\n"
        "for Est in (nmf_gpu.NMF, nmf_gpu.SymmetricNMF, nmf_gpu.MaskedNMF):\n"
        "    try:\n"
        "        Est(n_components=2, backend='cpu').fit(X + 1j)\n"
        "    except ValueError as e:\n"
        "        assert 'Complex data not supported' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit(f'{Est.__name__} accepted complex input')\n"
        "    try:\n"
        "        Est(n_components=2**64, backend='cpu').fit(X)\n"
        "    except ValueError as e:\n"
        "        assert \"The 'n_components' parameter\" in str(e), e\n"
        "    else:\n"
        "        raise SystemExit(f'{Est.__name__} accepted n_components=2**64')\n"
        "Y = X.copy(); Y[0, 1] = np.nan\n"
        "m = nmf_gpu.MaskedNMF(n_components=2, max_iter=50, backend='cpu').fit(Y)\n"
        "assert m.n_features_in_ == 8 and np.isfinite(m.complete()).all()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_ctrl_c_stops_a_transform():
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    rng = np.random.default_rng(1)
    model = NMF(n_components=10, solver="mu", max_iter=5, tol=0.0, backend="cpu")
    model.fit(rng.random((300, 200)))
    # A budget of ten million iterations: only the stop flag ends it.
    model.max_iter = 10_000_000
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.transform(rng.random((2000, 200)))
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 5.0
