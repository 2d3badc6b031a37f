"""How many threads a search's fits use, and how many an exported model predicts on.

Measured on this project's 2-core machine (LightGBM, 5,000 x 30, 20 trees): alone, a
fit on 2 threads runs 1.9x faster than on 1 (1.3-1.8x for XGBoost, LightGBM and
random forests from 700 rows on); beside another process fitting on 2 threads, each
runs 4.7x slower than on 1 thread (OpenMP threads wait for cores that are busy).
So ``n_jobs=-1`` means *the cores idle when the search starts*, sampled for a tenth
of a second, not every core, and at most one thread per ``CELLS_PER_THREAD`` cells of
the matrix (a tiny table on a 64-core machine gets a few threads, not 64). Two fits
started at the same instant both see the cores idle: start them one after the other,
or give each an ``n_jobs``. The reproducible mode (``max_trials``) must not depend on
the machine's load: it keeps a rule by data size.

An exported model predicts on one thread for small data (a request is a few rows,
and thread start-up costs more than the work) and on every usable core for large
data (batch scoring), whatever the search used.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["idle_cores", "model_threads", "search_threads", "set_threads", "usable_cores"]

# Below this many matrix cells, a model predicts (and a reproducible search fits) on
# one thread.
SMALL_DATA_CELLS = 2_000_000
# A search fits on at most one thread per this many matrix cells. Measured on 2 cores,
# 2 threads against 1: LightGBM and XGBoost 1.2-1.6x faster from 3,000 cells on, but
# scikit-learn's extra trees 0.4x at 3,000 cells and 0.8x at 20,000 (joblib's start-up
# on every fit), random forests 1.4x from 21,000: two threads from 20,000 cells.
CELLS_PER_THREAD = 10_000
# How long the machine's load is sampled before a search picks its threads.
LOAD_SAMPLE_SECONDS = 0.1


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity and its container's CPU quota.

    joblib's count (loky's), which reads both.
    """
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def idle_cores(seconds: float = LOAD_SAMPLE_SECONDS) -> float:
    """Cores left idle by every process during the next ``seconds``, at most the usable ones.

    Sums the idle share of each CPU this process may run on; when psutil's CPU list and
    the affinity's CPU numbers do not match (offline or renumbered CPUs), of every CPU.
    Without psutil, every usable core counts as idle.
    """
    try:
        import psutil
    except ImportError:  # an environment built without titanicml's dependencies
        return float(usable_cores())
    busy = psutil.cpu_percent(interval=seconds, percpu=True)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cores or cores[-1] >= len(busy):
        cores = list(range(len(busy)))
    idle = sum(1.0 - busy[c] / 100.0 for c in cores)
    return min(idle, float(usable_cores()))


def search_threads(
    n_jobs: int, shape: tuple[int, int], reproducible: bool, idle: float | None = None
) -> int:
    """Threads per fit of a search: ``n_jobs``, or for ``-1`` the idle cores (at least 1).

    At most one thread per :data:`CELLS_PER_THREAD` cells. In the reproducible mode
    ``-1`` follows :func:`model_threads` (no load sampling). ``idle`` is the number of
    idle cores (:func:`idle_cores` samples it when None and the table is large enough
    for more than one thread).
    """
    if n_jobs != -1:
        return n_jobs
    if reproducible:
        return model_threads(shape)
    most = min(usable_cores(), max(1, shape[0] * shape[1] // CELLS_PER_THREAD))
    if most == 1:
        return 1
    if idle is None:
        idle = idle_cores()
    return max(1, min(most, int(idle + 0.5)))


def model_threads(shape: tuple[int, int]) -> int:
    """Threads an exported model predicts on: 1 for small data, every usable core above."""
    return 1 if shape[0] * shape[1] < SMALL_DATA_CELLS else usable_cores()


def set_threads(estimator: Any, n_jobs: int) -> Any:
    """Set ``n_jobs`` on ``estimator`` and on every member it wraps; return it.

    Walks :class:`~titanicml.model.ensemble.WeightedEnsemble` members and the regressor
    of :class:`~titanicml.model.log_target.LogTargetRegressor`, templates and fitted.
    An estimator whose ``n_jobs`` is None (scikit-learn's logistic regression, which
    warns that it has no effect) is left alone; CatBoost's is ``thread_count``.
    """
    from titanicml.backends.catboost_family import set_params
    from titanicml.model.ensemble import WeightedEnsemble
    from titanicml.model.log_target import LogTargetRegressor

    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    if params.get("n_jobs") is not None:
        estimator.set_params(n_jobs=n_jobs)
    elif params.get("thread_count") is not None:  # CatBoost's name for it
        set_params(estimator, thread_count=n_jobs)
    if isinstance(estimator, WeightedEnsemble):
        inner = [*estimator.estimators, *getattr(estimator, "estimators_", [])]
    elif isinstance(estimator, LogTargetRegressor):
        inner = [estimator.regressor, getattr(estimator, "regressor_", None)]
    else:
        inner = []
    for member in inner:
        if member is not None:
            set_threads(member, n_jobs)
    return estimator
