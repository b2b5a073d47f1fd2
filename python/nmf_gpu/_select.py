"""``select_rank``: which number of components? The library's rank sweep from Python."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._base import check_random_state
from ._nmf import _as_f32, _is_backend

_METHODS = ("consensus", "nmfk", "cv", "bicv")

#: The measures of the table, with their titles in ``plot()``.
_TITLES = {
    "cophenetic": "cophenetic correlation",
    "dispersion": "dispersion",
    "explained_variance": "explained variance",
    "min_silhouette": "NMFk minimum silhouette",
    "mean_silhouette": "NMFk mean silhouette",
    "cv_rmse": "held-out RMSE (cross-validation)",
    "bicv_rmse": "held-out RMSE (bi-cross-validation)",
}


class RankSelection:
    """What :func:`select_rank` found.

    Attributes
    ----------
    table_ : dict of str to list
        Per rank (key ``"rank"``), each measure run: ``cophenetic``, ``dispersion``, ``rss``,
        ``explained_variance`` (consensus), ``min_silhouette``, ``mean_silhouette``,
        ``nmfk_relative_error`` (NMFk), ``cv_rmse``, ``cv_rmse_se`` (cross-validation),
        ``bicv_rmse``, ``bicv_rmse_se`` (bi-cross-validation), ``dominance``. Pass it to
        ``pandas.DataFrame`` for a table.
    recommended_rank_ : int
        The rank recommended.
    rule_ : str
        The rule that chose it.
    choices_ : dict of str to int
        Each method's choice.
    reason_ : str
        Why the recommendation is what it is (the methods that counted, the disagreement).
    warnings_ : list of str
        What the user should know (a choice at the edge of the range, an ambiguity).
    n_fits_ : int
        Fits run.
    """

    def __init__(self, sweep):
        self._sweep = sweep
        out = sweep.table()
        self.table_ = dict(out["table"])
        self.recommended_rank_ = int(out["recommended"])
        self.rule_ = out["rule"]
        self.choices_ = dict(out["choices"])
        self.reason_ = out["reason"]
        self.warnings_ = list(out["warnings"])
        self.n_fits_ = int(out["fits"])
        self.seconds_ = float(out["seconds"])

    def __repr__(self):
        return (f"RankSelection(ranks={self.table_['rank']}, "
                f"recommended_rank_={self.recommended_rank_})")

    def png(self):
        """The curves of every measure against the rank, the recommended rank marked, as the
        bytes of a PNG picture (drawn by the library, no Python plotting needed)."""
        return self._sweep.png()

    def plot(self):
        """The curves of every measure against the rank, the recommended rank marked: a
        matplotlib Figure when matplotlib is installed, else the PNG bytes of :meth:`png`."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            return self.png()
        ranks = self.table_["rank"]
        keys = [k for k in _TITLES if k in self.table_]
        cols = min(3, max(1, len(keys)))
        rows = -(-len(keys) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        for ax, key in zip(axes.ravel(), keys):
            ys = [np.nan if y is None else y for y in self.table_[key]]
            err = self.table_.get(key + "_se")
            if err is not None:
                ax.errorbar(ranks, ys, yerr=[0 if e is None else e for e in err], marker="o")
            else:
                ax.plot(ranks, ys, marker="o")
            ax.axvline(self.recommended_rank_, color="tab:red", linestyle="--")
            ax.set_title(_TITLES[key])
            ax.set_xlabel("rank")
        for ax in axes.ravel()[len(keys):]:
            ax.set_visible(False)
        fig.suptitle(f"recommended rank: {self.recommended_rank_}")
        fig.tight_layout()
        return fig


def select_rank(
    X,
    ranks,
    method="consensus",
    n_runs=30,
    *,
    solver="cd",
    max_iter=50,
    tol=1e-4,
    random_state=0,
    backend="cpu",
    noise=0.03,
    silhouette_threshold=0.7,
    holdout=0.1,
    cv_repeats=3,
):
    """Compare the ranks of ``ranks`` on ``X`` (samples x features) and recommend one.

    Methods (the library's ``select`` module): ``"consensus"`` (Brunet et al. 2004: consensus
    clustering of the samples over ``n_runs`` random restarts: cophenetic correlation,
    dispersion, explained variance), ``"nmfk"`` (NMFk: silhouettes of the components over
    ``n_runs`` fits of noisy copies of X), ``"cv"`` (error on held-out entries, the one
    standard error rule), ``"bicv"`` (bi-cross-validation, Owen & Perry 2009), or
    ``"all"``; a list runs several, and the recommendation weighs them.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Nonnegative data.
    ranks : range or sequence of consecutive int
        The ranks compared, e.g. ``range(2, 11)``.
    method : str or list of str, default="consensus"
    n_runs : int, default=30
        Fits per rank for consensus and NMFk (at least 2).
    solver : {"cd", "mu"}, default="cd"
        The inner fits' solver.
    max_iter, tol : int, float, default=50, 1e-4
        The inner fits' budget and stopping rule.
    random_state : int, RandomState or None, default=0
        Seed of the sweep (the result is the same for the same seed).
    backend : {"auto", "cpu", "gpu", "gpu:all"}, "gpu:N" or "gpu:N,M,...", default="cpu"
    noise : float, default=0.03
        NMFk's multiplicative noise.
    silhouette_threshold : float, default=0.7
        NMFk's threshold on the minimum silhouette.
    holdout : float, default=0.1
        Share of the entries held out by cross-validation.
    cv_repeats : int, default=3
        Repeats of cross-validation.

    Returns
    -------
    selection : RankSelection
        ``table_``, ``recommended_rank_``, ``plot()``.
    """
    ranks = [int(r) for r in ranks]
    if not ranks or any(b != a + 1 for a, b in zip(ranks, ranks[1:])) or ranks[0] < 1:
        raise ValueError(
            f"ranks must be consecutive integers from at least 1, e.g. range(2, 11); got {ranks}")
    methods = [method] if isinstance(method, str) else list(method)
    if "all" in methods:
        methods = list(_METHODS)
    bad = [m for m in methods if m not in _METHODS]
    if bad or not methods:
        raise ValueError(
            f"method must be 'consensus', 'nmfk', 'cv', 'bicv', 'all' or a list of them; "
            f"got {method!r}")
    if solver not in ("cd", "mu"):
        raise ValueError(f"solver must be 'cd' or 'mu', got {solver!r}")
    if not _is_backend(backend):
        raise ValueError(f"backend must be 'auto', 'cpu', 'gpu', 'gpu:N', 'gpu:N,M,...' or 'gpu:all', got {backend!r}")
    if not isinstance(n_runs, numbers.Integral) or isinstance(n_runs, bool):
        raise ValueError(f"n_runs must be an int, got {n_runs!r}")
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise ValueError(f"X must be a 2-D numeric array, got shape {X.shape} of {X.dtype}")
    if random_state is None or isinstance(random_state, np.random.RandomState):
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    else:
        seed = int(random_state)
    config = {
        "from": ranks[0], "to": ranks[-1], "methods": methods, "runs": int(n_runs),
        "solver": "hals" if solver == "cd" else "mu", "max_iter": int(max_iter),
        "tol": float(tol), "seed": seed, "backend": backend, "noise": float(noise),
        "silhouette_threshold": float(silhouette_threshold), "holdout": float(holdout),
        "cv_repeats": int(cv_repeats),
    }
    return RankSelection(_core.select_rank(_as_f32(X), config))
