import os

import numpy as np
import pytest


def require_gpu():
    """Skip (loudly) when no GPU adapter exists, or fail when NMF_REQUIRE_GPU is set."""
    import nmf_gpu

    adapters = nmf_gpu.gpu_info()
    if not adapters:
        msg = "no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
        if os.environ.get("NMF_REQUIRE_GPU"):
            pytest.fail(msg + " and NMF_REQUIRE_GPU is set")
        print(f"SKIPPING GPU test: {msg}")
        pytest.skip(msg)
    return adapters


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def start(rng, n_samples, n_features, r, scale=1.0):
    """A positive custom start (W0: samples x r, H0: r x features), float32."""
    w0 = (rng.random((n_samples, r)) * scale + 0.1).astype(np.float32)
    h0 = (rng.random((r, n_features)) * scale + 0.1).astype(np.float32)
    return w0, h0
