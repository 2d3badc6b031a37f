"""Category codes: on a large table a column of many categories gives its rank too."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from titanicml.features import plan_features
from titanicml.model.predictor import prepare_rows


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "room": rng.choice(["b", "a", "c", "e", "d"], n),  # one-hot, 5 values (6 with None)
            "smoker": rng.choice(["yes", "no"], n),  # one-hot, too few values for a code
            "agent": [f"ag{i:02d}" for i in rng.integers(0, 40, n)],  # many: encoded
            "nights": rng.integers(1, 9, n),
        }
    )
    frame.loc[[0, 5], "room"] = None
    return frame, rng.normal(size=n)


def _codes(plan, frame, y):
    inputs, _ = prepare_rows(plan, frame)
    featurizer = plan.build()
    matrix = featurizer.fit_transform(inputs, y)
    return featurizer, inputs, matrix[:, featurizer.output_indices_["codes"]]


def test_codes_are_each_categorys_sorted_rank_standardized_against_a_hand_count():
    frame, y = _frame()
    plan = plan_features(frame, task="regression", codes=True)
    assert (plan.names("categorical"), plan.names("encoded")) == (["room", "smoker"], ["agent"])
    assert [c.name for c in plan.columns if c.coded] == ["room", "agent"]
    featurizer, _, codes = _codes(plan, frame, y)
    # by hand: missing is one more category, "__missing__", which sorts before letters
    room_rank = frame["room"].map({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}).fillna(0).to_numpy()
    agent_rank = frame["agent"].map({v: i for i, v in enumerate(sorted(set(frame["agent"])))})
    for got, rank in ((codes[:, 0], room_rank), (codes[:, 1], agent_rank.to_numpy())):
        np.testing.assert_allclose(got, (rank - rank.mean()) / rank.std(), atol=1e-12)
    # an unseen category is -1, below every known one; a new row's known value keeps its rank
    new = pd.DataFrame(
        {"room": ["z", "c"], "smoker": ["no", "no"], "agent": ["ag99", "ag00"], "nights": [2, 3]}
    )
    inputs, _ = prepare_rows(plan, new)
    seen = featurizer.transform(inputs)[:, featurizer.output_indices_["codes"]]
    np.testing.assert_allclose(seen[:, 0], (np.array([-1, 3]) - room_rank.mean()) / room_rank.std())
    assert seen[0, 1] < codes[:, 1].min() and seen[1, 1] == codes[:, 1].min()
    reasons = plan.to_frame().set_index("name")["reason"]
    assert reasons["room"].endswith("; and its category code")
    assert reasons["agent"].endswith("; and its category code")
    assert "category code" not in reasons["nights"] + reasons["smoker"]


def test_a_plan_without_codes_has_no_codes_step():
    frame, y = _frame()
    plan = plan_features(frame, task="regression")
    featurizer = plan.build()
    featurizer.fit(prepare_rows(plan, frame)[0], y)
    assert "codes" not in featurizer.output_indices_
    assert "category code" not in " ".join(plan.to_frame()["reason"])


def test_each_code_is_traced_to_its_column():
    from titanicml.explain.columns import feature_map

    frame, y = _frame()
    plan = plan_features(frame, task="regression", codes=True)
    featurizer, inputs, _ = _codes(plan, frame, y)
    mapping = feature_map(featurizer, list(inputs.columns))
    place = featurizer.output_indices_["codes"]
    assert mapping.sources[place] == ["room", "agent"]


def test_the_fast_path_gives_the_pipelines_codes_for_known_unseen_and_missing_values():
    from lightgbm import LGBMRegressor
    from sklearn.pipeline import Pipeline

    from titanicml.model.predictor import TabularModel

    frame, y = _frame()
    plan = plan_features(frame, task="regression", codes=True)
    featurizer, inputs, _ = _codes(plan, frame, y)
    matrix = featurizer.transform(inputs)
    estimator = LGBMRegressor(n_estimators=5, verbose=-1, n_jobs=1).fit(matrix, y)
    pipeline = Pipeline([("features", featurizer), ("estimator", estimator)])
    model = TabularModel.from_fitted(pipeline, plan, "regression", None)
    rows = pd.concat(
        [frame, pd.DataFrame({"room": ["z", None], "agent": ["ag99", None], "nights": [2, 3]})],
        ignore_index=True,
    )
    scorer = model._row_scorer()
    assert scorer is not None, "a featurizer with codes must compile"
    records = json.loads(rows.to_json(orient="records"))
    prepared, _ = model.prepare(rows)
    assert np.array_equal(scorer.features(records), featurizer.transform(prepared))


@pytest.mark.parametrize(("rows", "coded"), [(400, False), (401, True)])
def test_the_local_search_asks_for_codes_above_the_split_threshold(monkeypatch, rows, coded):
    from titanicml import Trainer
    from titanicml.backends import flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)  # 10,000 rows in real use
    frame, y = _frame(rows)
    frame["price"] = y + (frame["room"] == "a")
    result = Trainer(
        target="price", time_budget=6, estimators=("lgbm",), track=False, ensemble=False
    ).fit(frame)
    featurizer = result.model.pipeline_.named_steps["features"]
    assert ("codes" in featurizer.output_indices_) is coded
    assert (result.extras["search"]["validation"] == "10% split") is coded
