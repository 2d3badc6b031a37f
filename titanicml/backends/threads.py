"""How many threads a search's fits use, and how many an exported model predicts on.

Measured on this project's 2-core machine (LightGBM, 5,000 x 30, 20 trees): alone, a
fit on 2 threads runs 1.9x faster than on 1 (1.3-1.8x for XGBoost, LightGBM and
random forests from 700 rows on); beside another process fitting on 2 threads, each
runs 4.7x slower than on 1 thread (OpenMP threads wait for cores that are busy).
So ``n_jobs=-1`` means *the cores idle when the search starts*, sampled for a tenth
of a second, not every core. The reproducible mode (``max_trials``) must not depend
on the machine's load: it keeps a rule by data size.

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
# How long the machine's load is sampled before a search picks its threads.
LOAD_SAMPLE_SECONDS = 0.1


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def idle_cores(seconds: float = LOAD_SAMPLE_SECONDS) -> float:
    """Usable cores left idle by every process during the next ``seconds`` (a float)."""
    import psutil

    busy = psutil.cpu_percent(interval=seconds, percpu=True)
    if hasattr(os, "sched_getaffinity"):
        cores = [c for c in os.sched_getaffinity(0) if c < len(busy)]
    else:
        cores = list(range(len(busy)))
    return sum(1.0 - busy[c] / 100.0 for c in cores)


def search_threads(n_jobs: int, shape: tuple[int, int], reproducible: bool) -> int:
    """Threads per fit of a search: ``n_jobs``, or for ``-1`` the idle cores (at least 1).

    In the reproducible mode ``-1`` follows :func:`model_threads` (no load sampling).
    """
    if n_jobs != -1:
        return n_jobs
    if reproducible:
        return model_threads(shape)
    return max(1, min(usable_cores(), round(idle_cores())))


def model_threads(shape: tuple[int, int]) -> int:
    """Threads an exported model predicts on: 1 for small data, every usable core above."""
    return 1 if shape[0] * shape[1] < SMALL_DATA_CELLS else usable_cores()


def set_threads(estimator: Any, n_jobs: int) -> Any:
    """Set ``n_jobs`` on ``estimator`` and on every member it wraps; return it.

    Walks :class:`~titanicml.model.ensemble.WeightedEnsemble` members and the regressor
    of :class:`~titanicml.model.log_target.LogTargetRegressor`, templates and fitted.
    An estimator whose ``n_jobs`` is None (scikit-learn's logistic regression, which
    warns that it has no effect) is left alone.
    """
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    if params.get("n_jobs") is not None:
        estimator.set_params(n_jobs=n_jobs)
    for name in ("estimators", "estimators_", "regressor", "regressor_"):
        inner = getattr(estimator, name, None)
        for member in inner if isinstance(inner, list) else [inner]:
            if member is not None:
                set_threads(member, n_jobs)
    return estimator
