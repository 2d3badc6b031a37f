"""CatBoost joins the default families on tables scored on a split, and ships like the others."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "target": y})


def test_catboost_joins_only_the_default_families_of_a_table_scored_on_a_split():
    from titanicml.backends.catboost_family import catboost_joins

    assert catboost_joins(defaults=True, split=True)
    assert not catboost_joins(defaults=True, split=False)  # cross-validated: too slow
    assert not catboost_joins(defaults=False, split=True)  # a user's own list is kept


def test_a_large_table_searches_catboost_from_its_defaults(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search
    from titanicml import Trainer
    from titanicml.backends.catboost_family import CATBOOST_START

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    result = Trainer(
        target="target", seed=0, track=False, time_budget=60, max_trials=14, ensemble=False
    ).fit(_table(500))
    trials = result.trials.sort_values("trial")
    assert "catboost" in set(trials["estimator"])
    first = json.loads(trials[trials["estimator"] == "catboost"]["config"].iloc[0])
    assert {k: first[k] for k in CATBOOST_START} == pytest.approx(CATBOOST_START)
    # as many trees as the other strong starts: fewer than the 450 rows a trial fits on
    lgbm = json.loads(trials[trials["estimator"] == "lgbm"]["config"].iloc[0])
    assert first["n_estimators"] == lgbm["n_estimators"] == 449
    row = result.leaderboard[result.leaderboard["estimator"] == "catboost"].iloc[0]
    assert row["family"] == "CatBoost"
    own = Trainer(
        target="target", seed=0, track=False, time_budget=30, max_trials=4,
        estimators=["lgbm", "rf"], ensemble=False,
    ).fit(_table(500))  # fmt: skip
    assert set(own.trials["estimator"]) == {"lgbm", "rf"}  # a user's own list is kept


def test_a_catboost_trial_stops_before_its_time_limit():
    from titanicml.backends.catboost_family import catboost_learners
    from titanicml.backends.learners import fitted_rounds

    learner = catboost_learners(["catboost"])["catboost"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20))
    y = x[:, 0] + rng.normal(size=20_000)
    model = learner(task="regression", n_jobs=1, n_estimators=8192, depth=8)
    started = time.monotonic()
    model.fit(x, y, budget=0.5)
    assert time.monotonic() - started < 8192 * 0.5 / 100  # far below all its trees' time
    grown = fitted_rounds(model.estimator)
    assert 0 < grown < 8192 and grown == model.estimator.tree_count_


def test_a_fitted_catboost_model_takes_new_threads_and_trees_for_its_clones():
    from sklearn.base import clone

    from titanicml.backends.catboost_family import set_params
    from titanicml.backends.threads import set_threads

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=200)
    model = CatBoostRegressor(
        n_estimators=30, thread_count=2, verbose=0, allow_writing_files=False
    ).fit(x, y)
    before = model.predict(x)
    set_threads(model, 1)
    set_params(model, n_estimators=10)
    assert model.get_params()["thread_count"] == 1
    np.testing.assert_array_equal(model.predict(x), before)  # the fitted trees are kept
    assert clone(model).fit(x, y).tree_count_ == 10


def test_a_regression_ensemble_led_by_catboost_predicts_numbers():
    from sklearn.linear_model import Ridge

    from titanicml.model.ensemble import WeightedEnsemble

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = 3 * x[:, 0] + rng.normal(size=300)
    members = [
        CatBoostRegressor(n_estimators=50, verbose=0, allow_writing_files=False),
        Ridge(),
    ]
    ensemble = WeightedEnsemble(members, [1.0, 1.0], ["catboost", "ridge"]).fit(x, y)
    assert not hasattr(ensemble, "classes_")  # CatBoost's regressor has an empty classes_
    fitted = ensemble.estimators_
    expected = (fitted[0].predict(x) + fitted[1].predict(x)) / 2
    np.testing.assert_allclose(ensemble.predict(x), expected, rtol=1e-12)


def test_a_saved_catboost_model_loads_through_the_allow_list_and_pins_catboost(titanic, tmp_path):
    from importlib.metadata import version

    from sklearn.pipeline import Pipeline

    from titanicml import load_model
    from titanicml.features import plan_features
    from titanicml.model.artifact import save_model
    from titanicml.model.ensemble import WeightedEnsemble
    from titanicml.model.predictor import TabularModel, prepare_rows

    frame, y = titanic.drop(columns=["Survived"]), titanic["Survived"].to_numpy()
    plan = plan_features(frame, exclude=["Boat", "Body"], task="binary")
    inputs, _ = prepare_rows(plan, frame)
    members = [
        CatBoostClassifier(n_estimators=30, verbose=0, allow_writing_files=False),
        CatBoostClassifier(n_estimators=10, depth=3, verbose=0, allow_writing_files=False),
    ]
    estimator = WeightedEnsemble(members, [2.0, 1.0], ["catboost", "catboost"])
    pipeline = Pipeline([("features", plan.build()), ("estimator", estimator)]).fit(inputs, y)
    model = TabularModel.from_fitted(pipeline, plan, "binary", [0, 1])
    save_model(model, tmp_path / "m", {"target": "Survived"})
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"catboost=={version('catboost')}" in requirements  # an ensemble's member too
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(frame), model.predict_proba(frame))
