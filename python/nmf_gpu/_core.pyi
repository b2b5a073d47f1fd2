"""The compiled core of nmf_gpu (Rust, PyO3). Used by the estimators; not a stable API."""

from typing import Any, Optional, TypedDict

import numpy as np
import numpy.typing as npt

class _Config(TypedDict):
    rank: int
    solver: str
    loss: str
    init: str
    max_iter: int
    tol: float
    seed: int
    alpha_w: float
    alpha_h: float
    l1_ratio: float
    backend: str
    orthogonal: str
    sparse_order: str
    verbose: bool
    fix_w: Optional[list[int]]
    fix_h: Optional[list[int]]
    checkpoint_every: Optional[int]
    checkpoint_dir: Optional[str]
    resume: Optional[tuple[int, float]]

_F32 = npt.NDArray[np.float32]
_I64 = npt.NDArray[np.int64]

def fit_dense(
    v: _F32, config: _Config, w0: Optional[_F32] = None, h0: Optional[_F32] = None
) -> tuple[_F32, _F32, dict[str, Any]]: ...
def fit_sparse(
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: _Config,
    w0: Optional[_F32] = None,
    h0: Optional[_F32] = None,
) -> tuple[_F32, _F32, dict[str, Any]]: ...
def transform_dense(
    components: _F32, vt: _F32, config: _Config
) -> tuple[_F32, int, bool]: ...
def transform_sparse(
    components: _F32,
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: _Config,
) -> tuple[_F32, int, bool]: ...
def initial_factors(v: _F32, config: _Config) -> tuple[_F32, _F32]: ...
def initial_factors_sparse(
    shape: tuple[int, int], indptr: _I64, indices: _I64, data: _F32, config: _Config
) -> tuple[_F32, _F32]: ...
def online_fit(
    x: _F32,
    config: dict[str, Any],
    components: Optional[_F32] = None,
    encodings: Optional[_F32] = None,
) -> tuple[dict[str, Any], Optional[_F32], dict[str, Any]]: ...
def online_fit_sparse(
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: dict[str, Any],
    components: Optional[_F32] = None,
    encodings: Optional[_F32] = None,
) -> tuple[dict[str, Any], Optional[_F32], dict[str, Any]]: ...
def online_fit_path(
    path: str,
    samples_as_rows: bool,
    config: dict[str, Any],
    components: Optional[_F32] = None,
) -> tuple[dict[str, Any], Optional[_F32], dict[str, Any]]: ...
def source_shape(path: str, samples_as_rows: bool) -> tuple[int, int]: ...
def online_partial_fit(
    x: _F32,
    config: dict[str, Any],
    state: Optional[dict[str, Any]] = None,
    components: Optional[_F32] = None,
) -> tuple[dict[str, Any], dict[str, Any]]: ...
def online_transform(components: _F32, x: _F32, config: dict[str, Any]) -> _F32: ...
def online_transform_sparse(
    components: _F32,
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: dict[str, Any],
) -> _F32: ...

class RankSweep:
    def png(self) -> bytes: ...
    def table(self) -> dict[str, Any]: ...

def select_rank(x: _F32, config: dict[str, Any]) -> RankSweep: ...
def gpu_info() -> list[dict[str, Any]]: ...
def sym_fit(
    a: _F32, config: dict[str, Any]
) -> tuple[_F32, Optional[_F32], list[int], dict[str, Any]]: ...
def masked_fit(
    v: _F32,
    config: dict[str, Any],
    observed: Optional[npt.NDArray[np.bool_]] = None,
    w0: Optional[_F32] = None,
    h0: Optional[_F32] = None,
) -> tuple[_F32, _F32, dict[str, Any]]: ...
def sym_fit_sparse(
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: dict[str, Any],
) -> tuple[_F32, Optional[_F32], list[int], dict[str, Any]]: ...
def masked_fit_sparse(
    shape: tuple[int, int],
    indptr: _I64,
    indices: _I64,
    data: _F32,
    config: dict[str, Any],
    w0: Optional[_F32] = None,
    h0: Optional[_F32] = None,
) -> tuple[_F32, _F32, dict[str, Any]]: ...
