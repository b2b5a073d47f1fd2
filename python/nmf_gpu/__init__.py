"""Nonnegative Matrix Factorization on the GPU and a fast CPU engine, with scikit-learn's API.

``nmf_gpu.NMF`` is a drop-in for :class:`sklearn.decomposition.NMF` (same parameters, same
orientation: ``X`` is samples x features) whose iterations run in the Rust engines of nmf-gpu,
on the CPU or on a GPU (``backend="auto" | "cpu" | "gpu"``). ``gpu_info()`` lists the GPU
adapters the GPU engine can use.
"""

from __future__ import annotations

from . import _core
from ._base import ConvergenceWarning
from ._family import MaskedNMF, SymmetricNMF
from ._nmf import NMF

__all__ = ["NMF", "SymmetricNMF", "MaskedNMF", "ConvergenceWarning", "gpu_info"]
__version__ = "0.1.0"


def gpu_info():
    """The GPU adapters found (wgpu): one dict per adapter.

    Returns
    -------
    adapters : list of dict
        Keys ``name``, ``backend`` (``"vulkan"``, ``"metal"``, ``"dx12"``, ``"gl"``),
        ``device_type`` (``"DiscreteGpu"``, ``"IntegratedGpu"``, ``"Cpu"`` for a software
        adapter such as lavapipe, ...), ``driver``, ``driver_info``, ``vendor``, ``device``.
        Empty when there is none (``backend="gpu"`` then raises RuntimeError).
    """
    return _core.gpu_info()
