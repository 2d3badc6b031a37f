"""Repeated folds on small tables: drawn anew each repeat, scored fold by fold, averaged per row."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from titanicml.backends.learners import SearchFolds, cv_splitter, mean_over_repeats


def test_each_repeat_partitions_the_rows_and_shuffles_them_anew():
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, StratifiedKFold

    y = np.array([0, 1] * 10)
    assert isinstance(cv_splitter("binary", 5, 0), StratifiedKFold)  # one draw: as before
    assert isinstance(cv_splitter("binary", 5, 0, repeats=2), RepeatedStratifiedKFold)
    assert isinstance(cv_splitter("regression", 5, 0, repeats=2), RepeatedKFold)
    splits = list(cv_splitter("binary", 5, 0, repeats=2).split(y.reshape(-1, 1), y))
    assert len(splits) == 10
    first, second = splits[:5], splits[5:]
    for repeat in (first, second):
        valid = np.sort(np.concatenate([v for _, v in repeat]))
        np.testing.assert_array_equal(valid, np.arange(20))
        assert all(np.bincount(y[v]).tolist() == [2, 2] for _, v in repeat)  # stratified
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, second, strict=True))


def test_an_output_holds_one_block_of_rows_per_repeat():
    y = np.array([0, 0, 0, 1, 1, 1])
    folds = SearchFolds.of("binary", y, n_splits=3, seed=0, repeats=2)
    assert (folds.repeats, folds.rows, len(folds.splits)) == (2, 6, 6)
    placed = [p for _, p in folds.scored()]
    # the first repeat's folds write rows 0-5, the second's rows 6-11, each row once
    np.testing.assert_array_equal(np.sort(np.concatenate(placed[:3])), np.arange(6))
    np.testing.assert_array_equal(np.sort(np.concatenate(placed[3:])), np.arange(6, 12))
    np.testing.assert_array_equal(folds.truth(y), [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])
    # per row: the mean of its two outputs, by hand
    output = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]] * 2 + [[0.0, 1.0]] * 6)
    expected = np.array([[0.5, 0.5], [0.25, 0.75], [0.1, 0.9]] * 2)
    np.testing.assert_allclose(mean_over_repeats(output, folds.repeats), expected)
    np.testing.assert_allclose(mean_over_repeats(np.arange(4.0), 2), [1.0, 2.0])


def _small_search(rows: int = 120):
    from flaml.automl.model import LGBMEstimator
    from sklearn.datasets import make_classification

    from titanicml.backends.learners import SearchOutput

    matrix, y = make_classification(n_samples=rows, n_features=4, random_state=0)
    config = {"n_estimators": 4, "num_leaves": 4}
    found = SearchOutput("lgbm", config, {"lgbm": LGBMEstimator}, pd.DataFrame())
    board = pd.DataFrame(
        [
            {
                "estimator": "lgbm",
                "config": json.dumps(config),
                "fit_time": 0.2,
                "cv_accuracy": 0.5,
            }
        ]
    )
    return found, board, matrix, y, config


def test_out_of_fold_output_is_each_folds_model_on_its_unseen_rows_per_repeat():
    from flaml.automl.model import LGBMEstimator

    from titanicml.backends.ensembling import out_of_fold

    found, _, matrix, y, config = _small_search()
    folds = SearchFolds.of("binary", y, n_splits=3, seed=0, repeats=2)
    output = out_of_fold(found, "lgbm", config, matrix, y, folds, "binary", 1)
    assert output.shape == (240, 2)
    for train, valid, placed in folds.blocks():
        model = LGBMEstimator(task="classification", n_jobs=1, **config)
        model.fit(matrix[train], y[train])
        np.testing.assert_allclose(output[placed], model.predict_proba(matrix[valid]))


def test_rescored_scores_average_every_fold_of_every_repeat():
    from titanicml.backends.ensembling import out_of_fold, select_ensemble
    from titanicml.metrics import METRICS
    from titanicml.spec import TrainSpec

    found, board, matrix, y, config = _small_search()
    spec = TrainSpec(target="y", cv=3, cv_repeats=2)
    outcome = select_ensemble(
        found, {}, matrix, y, "binary", METRICS["accuracy"], spec, board,
        deadline=time.monotonic() + 60, n_jobs=1,
    )  # fmt: skip
    folds = SearchFolds.of("binary", y, 3, 0, 2)
    output = out_of_fold(found, "lgbm", config, matrix, y, folds, "binary", 1)
    hits = output.argmax(axis=1) == folds.truth(y)
    by_fold = [hits[placed].mean() for _, placed in folds.scored()]
    assert len(by_fold) == 6
    scores = outcome.rescored["lgbm"]
    assert scores["cv_accuracy"] == pytest.approx(np.mean(by_fold), abs=1e-12)
    assert scores["cv_accuracy_std"] == pytest.approx(np.std(by_fold), abs=1e-12)
    np.testing.assert_allclose(outcome.oof["lgbm"], output)


def test_the_shipped_oof_is_the_mean_over_the_repeats():
    from titanicml.backends.ensembling import out_of_fold
    from titanicml.backends.oof import selected_out_of_fold
    from titanicml.spec import TrainSpec

    found, board, matrix, y, config = _small_search()
    spec = TrainSpec(target="y", cv=3, cv_repeats=2)
    table, facts = selected_out_of_fold(
        found, board, None, matrix, y, "binary", [0, 1], spec, time.monotonic() + 60, 1
    )
    assert facts["available"] and (facts["folds"], facts["repeats"]) == (3, 2)
    stacked = out_of_fold(found, "lgbm", config, matrix, y, SearchFolds.of("binary", y, 3, 0, 2),
                          "binary", 1)  # fmt: skip
    expected = (stacked[:120, 1] + stacked[120:, 1]) / 2
    np.testing.assert_allclose(table["probability_1"].to_numpy(), expected)
    assert len(table) == len(y)


def test_the_baseline_is_scored_on_every_repeat_by_hand():
    from sklearn.model_selection import RepeatedKFold

    from titanicml.backends.baseline import baseline_scores

    y = np.array([0.0, 1.0, 2.0, 3.0, 10.0, 20.0])
    scores = baseline_scores("regression", y, cv=2, seed=4, repeats=3)
    # by hand: each fold predicts its training rows' mean; the MAE of each of the 6 folds
    errors = [
        np.abs(y[valid] - y[train].mean()).mean()
        for train, valid in RepeatedKFold(n_splits=2, n_repeats=3, random_state=4).split(y)
    ]
    assert len(errors) == 6
    assert scores["cv_mae"] == pytest.approx(np.mean(errors))
    assert scores["cv_mae_std"] == pytest.approx(np.std(errors))
    once = baseline_scores("regression", y, cv=2, seed=4)
    assert once["cv_mae"] != pytest.approx(scores["cv_mae"])  # the repeats are scored


def test_small_tables_rate_the_l1_logistic_regression_as_flaml_rates_random_forest():
    from flaml.automl.model import LRL1Classifier, RandomForestEstimator

    from titanicml.backends.ratings import rated_learners
    from titanicml.spec import AUTO_REPEATED_CV_MAX_ROWS

    assert LRL1Classifier.cost_relative2lgbm() == 160  # FLAML's own rating
    rated = rated_learners(["lgbm", "lrl1"], AUTO_REPEATED_CV_MAX_ROWS)
    assert list(rated) == ["lrl1"]
    assert issubclass(rated["lrl1"], LRL1Classifier)
    assert rated["lrl1"].cost_relative2lgbm() == RandomForestEstimator.cost_relative2lgbm() == 2
    assert rated["lrl1"].__name__ == "LRL1Classifier"  # its trials keep the family's name
    assert rated_learners(["lgbm", "lrl1"], AUTO_REPEATED_CV_MAX_ROWS + 1) == {}
    assert rated_learners(["lgbm"], 100) == {}


def test_a_small_search_scores_every_trial_on_the_repeated_folds(monkeypatch):
    """FLAML's trials are scored on the same 10 folds as the rescoring and the baseline,
    and the rated logistic regression is the learner FLAML searches."""
    from flaml import AutoML
    from sklearn.datasets import make_classification

    from titanicml import Trainer
    from titanicml.backends.flaml_search import FlamlSearch

    matrix, y = make_classification(n_samples=300, n_features=5, random_state=1)
    frame = pd.DataFrame(matrix, columns=[f"x{i}" for i in range(5)]).assign(y=y)
    scored: list[np.ndarray] = []
    registered: dict[str, type] = {}
    score_fold, add_learner = FlamlSearch._score_fold, AutoML.add_learner

    def spy_score(self, X_val, y_val, estimator, *args, **kwargs):
        scored.append(np.asarray(y_val).copy())
        return score_fold(self, X_val, y_val, estimator, *args, **kwargs)

    def spy_add(self, learner_name, learner_class):
        registered[learner_name] = learner_class
        return add_learner(self, learner_name, learner_class)

    monkeypatch.setattr(FlamlSearch, "_score_fold", spy_score)
    monkeypatch.setattr(AutoML, "add_learner", spy_add)
    result = Trainer(
        target="y", time_budget=8, estimators=("lgbm", "lrl1"), ensemble=False, track=False
    ).fit(frame)
    assert (result.spec.cv, result.spec.cv_repeats) == (5, 2)
    assert registered["lrl1"].cost_relative2lgbm() == 2
    # every trial: the 10 folds of SearchFolds, in order (FLAML keeps the rows' order)
    folds = SearchFolds.of("binary", y, 5, 0, 2)
    assert len(scored) % 10 == 0 and len(scored) >= 10 * len(result.trials) > 0
    for trial in range(len(scored) // 10):
        for k, (_, valid) in enumerate(folds.splits):
            np.testing.assert_array_equal(scored[10 * trial + k], y[valid])
    board = result.leaderboard.set_index("estimator")
    assert set(board["validation"]) == {"5-fold cv x2"}
    assert result.extras["oof"]["repeats"] == 2 and len(result.oof) == len(frame)
