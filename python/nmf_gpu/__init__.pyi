from typing import Any, Literal, Optional, Union

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
    backend: Literal["auto", "cpu", "gpu"]
    orthogonal: Optional[Literal["H", "W"]]

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
        n_components: Union[int, Literal["auto"], None] = None,
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
        backend: Literal["auto", "cpu", "gpu"] = "auto",
        orthogonal: Optional[Literal["H", "W"]] = None,
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
