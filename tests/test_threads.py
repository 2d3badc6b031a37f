"""Threads: a search fits on the idle cores; an exported model predicts on its own count."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from titanicml import Trainer
from titanicml.backends.threads import (
    CELLS_PER_THREAD,
    SMALL_DATA_CELLS,
    idle_cores,
    model_threads,
    search_threads,
    set_threads,
    usable_cores,
)
from titanicml.model.ensemble import WeightedEnsemble
from titanicml.model.log_target import LogTargetRegressor


def test_an_explicit_n_jobs_is_kept_and_the_reproducible_mode_ignores_the_load():
    assert search_threads(3, (10, 2), reproducible=False) == 3
    assert search_threads(-1, (1_000, 20), reproducible=True) == 1
    big = (SMALL_DATA_CELLS, 1)
    assert search_threads(-1, big, reproducible=True) == usable_cores()


def test_a_tiny_table_fits_on_one_thread_whatever_the_cores():
    assert search_threads(-1, (100, CELLS_PER_THREAD // 100 - 1), reproducible=False) == 1


def test_a_model_predicts_on_one_thread_for_small_data_and_every_core_for_large():
    assert model_threads((891, 30)) == 1
    assert model_threads((SMALL_DATA_CELLS // 10, 10)) == usable_cores()


def test_the_threads_follow_the_idle_cores_and_the_size_of_the_table():
    cores = usable_cores()
    big = (100_000, 30)
    # every core busy, or less than half a core idle: one thread
    assert search_threads(-1, big, reproducible=False, idle=0.0) == 1
    assert search_threads(-1, big, reproducible=False, idle=0.4) == 1
    # 1.6 idle cores: two threads, if this process may use two
    assert search_threads(-1, big, reproducible=False, idle=1.6) == min(2, cores)
    # every core idle: every usable core, but one per 10,000 cells at most
    assert search_threads(-1, big, reproducible=False, idle=float(cores)) == cores
    assert search_threads(-1, (1_000, 25), reproducible=False, idle=float(cores)) == min(2, cores)


def test_idle_cores_is_between_none_and_every_usable_core():
    assert 0.0 <= idle_cores() <= usable_cores() + 1e-9


def test_set_threads_reaches_every_member_of_an_ensemble_and_a_log_target_model():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    members = [RandomForestClassifier(n_estimators=3, n_jobs=2).fit(X, y), LogisticRegression()]
    members[1].fit(X, y)
    ensemble = WeightedEnsemble.from_fitted(members, [0.5, 0.5], ["rf", "lrl2"])
    assert set_threads(ensemble, 1) is ensemble
    assert members[0].n_jobs == 1 and ensemble.estimators_[0].n_jobs == 1
    logged = LogTargetRegressor(LGBMRegressor(n_estimators=3, n_jobs=2, verbose=-1))
    logged.fit(X, np.abs(X[:, 0]))
    set_threads(logged, 1)
    assert logged.regressor.n_jobs == 1 and logged.regressor_.n_jobs == 1


def test_a_fit_records_its_search_threads_and_exports_a_one_thread_model():
    # 5,000 rows x 6 columns: enough cells for the search to fit on several threads;
    # 10 s: enough for the ensemble selection to run (and often to pick both families)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=5_000) for i in range(6)})
    frame["y"] = (frame["x0"] + rng.normal(size=5_000) > 0).astype(int)
    trainer = Trainer(target="y", time_budget=10, estimators=("rf", "lgbm"), track=False)
    result = trainer.fit(frame)
    assert 1 <= result.extras["search"]["threads"] <= usable_cores()
    estimator = result.model.pipeline_.named_steps["estimator"]
    models = estimator.estimators_ if isinstance(estimator, WeightedEnsemble) else [estimator]
    assert {model.get_params()["n_jobs"] for model in models} == {1}
