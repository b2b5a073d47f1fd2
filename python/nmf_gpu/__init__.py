"""Nonnegative Matrix Factorization on the GPU and a fast CPU engine, with scikit-learn's API.

``nmf_gpu.NMF``, ``nmf_gpu.MiniBatchNMF`` and ``nmf_gpu.non_negative_factorization`` are
drop-ins for scikit-learn's (same parameters, same orientation: ``X`` is samples x features)
whose iterations run in the Rust engines of nmf-gpu, on the CPU or on a GPU
(``backend="auto" | "cpu" | "gpu" | "gpu:N" | "gpu:all"``). ``gpu_info()`` lists the GPU adapters,
``select_rank`` compares ranks.
"""

from __future__ import annotations

from . import _core
from ._base import ConvergenceWarning
from ._family import MaskedNMF, SymmetricNMF
from ._minibatch import MiniBatchNMF
from ._nmf import NMF, non_negative_factorization
from ._select import RankSelection, select_rank

__all__ = [
    "NMF",
    "MiniBatchNMF",
    "non_negative_factorization",
    "SymmetricNMF",
    "MaskedNMF",
    "select_rank",
    "RankSelection",
    "ConvergenceWarning",
    "gpu_info",
]
__version__ = "0.1.0"


def gpu_info():
    """The GPU adapters found (wgpu): one dict per adapter.

    Returns
    -------
    adapters : list of dict
        Keys ``index`` (the N of ``backend="gpu:N"``), ``name``, ``backend`` (``"vulkan"``, ``"metal"``, ``"dx12"``, ``"gl"``),
        ``device_type`` (``"DiscreteGpu"``, ``"IntegratedGpu"``, ``"Cpu"`` for a software
        adapter such as lavapipe, ...), ``driver``, ``driver_info``, ``vendor``, ``device``.
        Empty when there is none (``backend="gpu"`` then raises RuntimeError).
    """
    return _core.gpu_info()
