import os
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

class ConvergenceWarning(UserWarning): ...

def gpu_info() -> list[dict[str, Any]]: ...

_ArrayLike = Any  # numpy array, scipy.sparse matrix or pandas DataFrame

class NMF:
    n_components: Union[int, Literal["auto"], None]
    init: Optional[Literal["random", "nndsvd", "nndsvda", "nndsvdar", "custom"]]
    solver: Literal["cd", "mu"]
    beta_loss: Union[Literal["frobenius", "kullback-leibler", "itakura-saito"], float]
    tol: float
    max_iter: int
    random_state: Union[int, np.random.RandomState, None]
    alpha_W: float
    alpha_H: Union[float, Literal["same"]]
    l1_ratio: float
    verbose: int
    shuffle: bool
    backend: str
    orthogonal: Optional[Literal["H", "W"]]
    sparse_order: Literal["stored", "degree"]
    fix_W: Optional[Sequence[int]]
    fix_H: Optional[Sequence[int]]
    checkpoint_every: Optional[int]
    checkpoint_dir: Union[str, os.PathLike[str], None]
    resume_from: Union[str, os.PathLike[str], None]

    components_: npt.NDArray[np.floating[Any]]
    n_components_: int
    reconstruction_err_: float
    n_iter_: int
    n_features_in_: int
    feature_names_in_: npt.NDArray[np.object_]
    engine_: str
    fit_seconds_: float

    def __init__(
        self,
        n_components: Union[int, Literal["auto"], None] = "auto",
        *,
        init: Optional[Literal["random", "nndsvd", "nndsvda", "nndsvdar", "custom"]] = None,
        solver: Literal["cd", "mu"] = "cd",
        beta_loss: Union[Literal["frobenius", "kullback-leibler", "itakura-saito"], float] = "frobenius",
        tol: float = 1e-4,
        max_iter: int = 200,
        random_state: Union[int, np.random.RandomState, None] = None,
        alpha_W: float = 0.0,
        alpha_H: Union[float, Literal["same"]] = "same",
        l1_ratio: float = 0.0,
        verbose: int = 0,
        shuffle: bool = False,
        backend: str = "auto",
        orthogonal: Optional[Literal["H", "W"]] = None,
        sparse_order: Literal["stored", "degree"] = "stored",
        fix_W: Optional[Sequence[int]] = None,
        fix_H: Optional[Sequence[int]] = None,
        checkpoint_every: Optional[int] = None,
        checkpoint_dir: Union[str, os.PathLike[str], None] = None,
        resume_from: Union[str, os.PathLike[str], None] = None,
    ) -> None: ...
    def fit(self, X: _ArrayLike, y: Any = None, **params: Any) -> "NMF": ...
    def fit_transform(
        self,
        X: _ArrayLike,
        y: Any = None,
        W: Optional[npt.ArrayLike] = None,
        H: Optional[npt.ArrayLike] = None,
    ) -> npt.NDArray[np.floating[Any]]: ...
    def transform(self, X: _ArrayLike) -> npt.NDArray[np.floating[Any]]: ...
    def inverse_transform(self, X: _ArrayLike) -> npt.NDArray[np.floating[Any]]: ...
    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[np.object_]: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "NMF": ...

class MiniBatchNMF:
    n_components: Union[int, Literal["auto"], None]
    init: Optional[Literal["random", "nndsvd", "nndsvda", "nndsvdar", "custom"]]
    batch_size: int
    beta_loss: Union[Literal["frobenius", "kullback-leibler"], float]
    tol: float
    max_no_improvement: Optional[int]
    max_iter: int
    alpha_W: float
    alpha_H: Union[float, Literal["same"]]
    l1_ratio: float
    forget_factor: float
    fresh_restarts: bool
    fresh_restarts_max_iter: int
    transform_max_iter: Optional[int]
    random_state: Union[int, np.random.RandomState, None]
    verbose: int
    backend: str
    memory_limit: Optional[int]
    checkpoint_every: Optional[int]
    checkpoint_dir: Union[str, os.PathLike[str], None]
    resume_from: Union[str, os.PathLike[str], None]

    components_: npt.NDArray[np.floating[Any]]
    n_components_: int
    reconstruction_err_: float
    n_iter_: int
    n_steps_: int
    n_features_in_: int
    feature_names_in_: npt.NDArray[np.object_]
    engine_: str
    fit_seconds_: float

    def __init__(
        self,
        n_components: Union[int, Literal["auto"], None] = "auto",
        *,
        init: Optional[Literal["random", "nndsvd", "nndsvda", "nndsvdar", "custom"]] = None,
        batch_size: int = 1024,
        beta_loss: Union[Literal["frobenius", "kullback-leibler"], float] = "frobenius",
        tol: float = 1e-4,
        max_no_improvement: Optional[int] = 10,
        max_iter: int = 200,
        alpha_W: float = 0.0,
        alpha_H: Union[float, Literal["same"]] = "same",
        l1_ratio: float = 0.0,
        forget_factor: float = 0.7,
        fresh_restarts: bool = False,
        fresh_restarts_max_iter: int = 30,
        transform_max_iter: Optional[int] = None,
        random_state: Union[int, np.random.RandomState, None] = None,
        verbose: int = 0,
        backend: str = "auto",
        memory_limit: Optional[int] = None,
        checkpoint_every: Optional[int] = None,
        checkpoint_dir: Union[str, os.PathLike[str], None] = None,
        resume_from: Union[str, os.PathLike[str], None] = None,
    ) -> None: ...
    def fit(
        self,
        X: Union[_ArrayLike, str, os.PathLike[str]],
        y: Any = None,
        W: Optional[npt.ArrayLike] = None,
        H: Optional[npt.ArrayLike] = None,
        samples_as_rows: bool = True,
    ) -> "MiniBatchNMF": ...
    def fit_transform(
        self,
        X: _ArrayLike,
        y: Any = None,
        W: Optional[npt.ArrayLike] = None,
        H: Optional[npt.ArrayLike] = None,
    ) -> npt.NDArray[np.floating[Any]]: ...
    def partial_fit(
        self,
        X: _ArrayLike,
        y: Any = None,
        W: Optional[npt.ArrayLike] = None,
        H: Optional[npt.ArrayLike] = None,
    ) -> "MiniBatchNMF": ...
    def transform(self, X: _ArrayLike) -> npt.NDArray[np.floating[Any]]: ...
    def inverse_transform(self, X: _ArrayLike) -> npt.NDArray[np.floating[Any]]: ...
    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[np.object_]: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "MiniBatchNMF": ...

def non_negative_factorization(
    X: _ArrayLike,
    W: Optional[npt.ArrayLike] = None,
    H: Optional[npt.ArrayLike] = None,
    n_components: Union[int, Literal["auto"], None] = "auto",
    *,
    init: Optional[Literal["random", "nndsvd", "nndsvda", "nndsvdar", "custom"]] = None,
    update_H: bool = True,
    solver: Literal["cd", "mu"] = "cd",
    beta_loss: Union[Literal["frobenius", "kullback-leibler", "itakura-saito"], float] = "frobenius",
    tol: float = 1e-4,
    max_iter: int = 200,
    alpha_W: float = 0.0,
    alpha_H: Union[float, Literal["same"]] = "same",
    l1_ratio: float = 0.0,
    random_state: Union[int, np.random.RandomState, None] = None,
    verbose: int = 0,
    shuffle: bool = False,
    backend: str = "auto",
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]], int]: ...

class RankSelection:
    table_: dict[str, list[Any]]
    recommended_rank_: int
    rule_: str
    choices_: dict[str, int]
    reason_: str
    warnings_: list[str]
    n_fits_: int
    seconds_: float
    def png(self) -> bytes: ...
    def plot(self) -> Any: ...

def select_rank(
    X: npt.ArrayLike,
    ranks: Sequence[int],
    method: Union[str, Sequence[str]] = "consensus",
    n_runs: int = 30,
    *,
    solver: Literal["cd", "mu"] = "cd",
    max_iter: int = 50,
    tol: float = 1e-4,
    random_state: Union[int, np.random.RandomState, None] = 0,
    backend: str = "cpu",
    noise: float = 0.03,
    silhouette_threshold: float = 0.7,
    holdout: float = 0.1,
    cv_repeats: int = 3,
) -> RankSelection: ...

class SymmetricNMF:
    n_components: int
    method: Literal["anls", "mu", "tri"]
    preprocess: Optional[Literal["normalized"]]
    alpha: Optional[float]
    n_init: int
    max_iter: int
    tol: float
    random_state: Union[int, np.random.RandomState, None]
    backend: Literal["auto", "cpu", "gpu"]

    embedding_: npt.NDArray[np.float32]
    S_: Optional[npt.NDArray[np.float32]]
    labels_: npt.NDArray[np.intp]
    n_iter_: int
    residual_: float
    engine_: str
    n_features_in_: int

    def __init__(
        self,
        n_components: int = 2,
        *,
        method: Literal["anls", "mu", "tri"] = "anls",
        preprocess: Optional[Literal["normalized"]] = "normalized",
        alpha: Optional[float] = None,
        n_init: int = 1,
        max_iter: int = 500,
        tol: float = 1e-4,
        random_state: Union[int, np.random.RandomState, None] = None,
        backend: Literal["auto", "cpu", "gpu"] = "auto",
    ) -> None: ...
    def fit(self, X: _ArrayLike, y: Any = None) -> "SymmetricNMF": ...
    def fit_predict(self, X: _ArrayLike, y: Any = None) -> npt.NDArray[np.intp]: ...
    def fit_transform(self, X: _ArrayLike, y: Any = None) -> npt.NDArray[np.float32]: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "SymmetricNMF": ...

class MaskedNMF:
    n_components: int
    l2: float
    l1: float
    penalty_scale: Literal["observation", "uniform"]
    init: Literal["filled", "random", "custom"]
    max_iter: int
    tol: float
    random_state: Union[int, np.random.RandomState, None]
    backend: Literal["auto", "cpu", "gpu"]

    W_: npt.NDArray[np.float32]
    components_: npt.NDArray[np.float32]
    n_iter_: int
    engine_: str
    n_features_in_: int

    def __init__(
        self,
        n_components: int = 10,
        *,
        l2: float = 0.1,
        l1: float = 0.0,
        penalty_scale: Literal["observation", "uniform"] = "observation",
        init: Literal["filled", "random", "custom"] = "filled",
        max_iter: int = 500,
        tol: float = 1e-5,
        random_state: Union[int, np.random.RandomState, None] = None,
        backend: Literal["auto", "cpu", "gpu"] = "auto",
    ) -> None: ...
    def fit(
        self,
        X: npt.ArrayLike,
        y: Any = None,
        mask: Optional[npt.ArrayLike] = None,
        W: Optional[npt.ArrayLike] = None,
        H: Optional[npt.ArrayLike] = None,
    ) -> "MaskedNMF": ...
    def complete(self) -> npt.NDArray[np.float32]: ...
    def predict(self, rows: npt.ArrayLike, cols: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def get_params(self, deep: bool = True) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "MaskedNMF": ...
