"""The log-scale family of skewed positive regression targets (``lgbm_log1p``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from sklearn.base import clone

from titanicml import Trainer
from titanicml.backends.log_target import wants_log_target
from titanicml.model.log_target import LogTargetRegressor


def test_skewness_rule_against_a_hand_calculation():
    # mean 2.8, std 3.6: standardized -0.5 (x4) and 2; mean cube (4 * -0.125 + 8) / 5 = 1.5
    assert wants_log_target(np.array([1, 1, 1, 1, 10]))
    # the mirror image is skewed to the left (-1.5), and negative values never qualify
    assert not wants_log_target(np.array([10, 10, 10, 10, 1]))
    assert not wants_log_target(np.array([-1, 1, 1, 1, 10]))
    assert not wants_log_target(np.array([3.0, 3.0, 3.0]))  # constant


def test_regressor_fits_the_logarithm_and_predicts_the_original_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = np.exp(1 + x[:, 0])
    model = clone(LogTargetRegressor(LGBMRegressor(n_estimators=50, verbose=-1))).fit(x, y)
    inner = model.regressor_.predict(x)
    np.testing.assert_allclose(model.predict(x), np.expm1(inner))
    assert np.corrcoef(inner, np.log1p(y))[0, 1] > 0.95
    assert model.n_features_in_ == 2
    with pytest.raises(ValueError, match="above -1"):
        LogTargetRegressor(LGBMRegressor()).fit(x, np.full(300, -2.0))


def _prices(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    size = rng.uniform(20, 200, n)
    rooms = rng.integers(1, 6, n)
    price = np.exp(8 + 0.012 * size + 0.1 * rooms + rng.normal(0, 0.3, n))
    return pd.DataFrame({"size": size, "rooms": rooms, "price": price})


def test_search_tries_the_log_scale_on_a_skewed_price_and_exports_it():
    data = _prices()
    assert wants_log_target(data["price"].to_numpy())
    result = Trainer(
        target="price", estimators=["lgbm"], max_trials=8, time_budget=30, track=False
    ).fit(data)
    board = result.leaderboard.set_index("estimator")
    assert {"lgbm", "lgbm_log1p"} <= set(board.index)
    assert board.loc["lgbm_log1p", "family"] == "LightGBM (log1p target)"
    estimator = result.model.pipeline.named_steps["estimator"]
    assert isinstance(estimator, LogTargetRegressor) == (
        result.leaderboard.iloc[0]["estimator"] == "lgbm_log1p"
    )
    assert result.model.predict(data.drop(columns="price").head(5)).min() > 1000


def test_a_log_scale_model_answers_by_the_fast_path_bit_for_bit():
    from titanicml.features import plan_features
    from titanicml.model.predictor import TabularModel, prepare_rows

    data = _prices()
    features = data.drop(columns="price")
    plan = plan_features(features, task="regression")
    inputs, _ = prepare_rows(plan, features)
    featurizer = plan.build().fit(inputs, data["price"])
    log_model = LogTargetRegressor(LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1))
    log_model.fit(featurizer.transform(inputs), data["price"])
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("features", featurizer), ("estimator", log_model)])
    model = TabularModel.from_fitted(pipeline, plan, "regression")
    records = features.to_dict(orient="records")  # JSON would round the floats to 10 digits
    scorer = model._row_scorer()
    assert scorer is not None
    matrix = scorer.features(records)
    frame, _ = model.prepare(features)
    assert np.array_equal(matrix, pipeline.named_steps["features"].transform(frame))
    assert np.array_equal(scorer.output(matrix), pipeline.predict(frame))


def test_a_target_that_is_not_skewed_gets_no_log_family(regression_result):
    result, data = regression_result
    y = data["target"].to_numpy()
    skew = np.mean(((y - y.mean()) / y.std()) ** 3)
    assert skew < 1.0
    assert "lgbm_log1p" not in set(result.leaderboard["estimator"])
