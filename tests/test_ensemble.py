import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from titanicml.backends.ensembling import greedy_selection
from titanicml.metrics import METRICS
from titanicml.model.ensemble import WeightedEnsemble


def testgreedy_selection_mixes_complementary_models():
    y = np.array([0, 1] * 50)
    # Each model is confidently right on one half and unsure on the other.
    left = np.where(np.arange(100)[:, None] < 50, np.eye(2)[y] * 0.9 + 0.05, 0.5)
    right = np.where(np.arange(100)[:, None] >= 50, np.eye(2)[y] * 0.9 + 0.05, 0.5)
    counts = greedy_selection([left, right], y, "binary", METRICS["log_loss"])
    assert counts[0] > 0 and counts[1] > 0


def testgreedy_selection_keeps_a_dominant_model_alone():
    y = np.array([0, 1] * 50)
    good = np.eye(2)[y] * 0.9 + 0.05
    bad = np.full((100, 2), 0.5)
    counts = greedy_selection([good, bad], y, "binary", METRICS["log_loss"])
    assert counts[1] == 0 and counts[0] >= 1


def test_weighted_ensemble_averages_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    members = [LogisticRegression().fit(X, y), DecisionTreeClassifier(max_depth=2).fit(X, y)]
    ensemble = WeightedEnsemble.from_fitted(members, [3.0, 1.0], ["lr", "tree"])
    expected = 0.75 * members[0].predict_proba(X) + 0.25 * members[1].predict_proba(X)
    np.testing.assert_allclose(ensemble.predict_proba(X), expected)
    np.testing.assert_array_equal(ensemble.predict(X), expected.argmax(axis=1))
    assert ensemble.describe() == "lr 75% + tree 25%"


def test_weighted_ensemble_is_a_scikit_learn_estimator():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    templates = [LogisticRegression(), DecisionTreeClassifier(max_depth=2)]
    ensemble = WeightedEnsemble(templates, [1.0, 1.0], ["lr", "tree"])
    with pytest.raises(NotFittedError):
        ensemble.predict(X)
    ensemble.fit(X[:100], y[:100])
    # fit() fills estimators_ with fitted clones and leaves the constructor argument alone.
    assert ensemble.estimators is templates
    assert all(
        fitted is not template
        for fitted, template in zip(ensemble.estimators_, templates, strict=True)
    )
    assert not hasattr(templates[0], "coef_")
    assert ensemble.n_features_in_ == 3
    np.testing.assert_array_equal(ensemble.classes_, [0, 1])
    unfitted = clone(ensemble)
    with pytest.raises(NotFittedError):
        unfitted.predict_proba(X)
    assert unfitted.fit(X, y).predict(X).shape == (200,)


@pytest.mark.parametrize("ensemble", [True, False])
def test_ensemble_switch_is_respected(titanic, ensemble):
    from titanicml import Trainer

    result = Trainer(
        target="Survived", time_budget=20, max_trials=8, ensemble=ensemble, track=False,
        exclude=["Boat", "Body"],
    ).fit(titanic)  # fmt: skip
    best = result.leaderboard.iloc[0]
    assert bool(best["selected"])
    assert result.metrics["accuracy"] == pytest.approx(best["cv_accuracy"])
    if not ensemble:
        assert "ensemble" not in set(result.leaderboard["estimator"])
        assert "ensemble" not in result.extras
        return
    # Only ensemble selection rescores the families out of fold and records a blend.
    selection = result.extras["ensemble"]
    assert len(selection["candidates"]) >= 2
    assert set(selection["candidates"]) <= set(result.leaderboard["estimator"])
    assert set(selection["weights"]) <= set(selection["candidates"])
    assert sum(selection["weights"].values()) == pytest.approx(1.0)
    assert selection["scores"]["cv_accuracy"] > 0.7
    assert selection["selected"] == (best["estimator"] == "ensemble")
    if selection["selected"]:
        chosen = result.model.pipeline_[-1]
        assert isinstance(chosen, WeightedEnsemble)
        assert sorted(chosen.names) == sorted(selection["weights"])
        assert best["cv_accuracy"] == pytest.approx(selection["scores"]["cv_accuracy"])
    else:  # a blend that did not beat the best family is not the model
        assert not isinstance(result.model.pipeline_[-1], WeightedEnsemble)


def test_ensemble_cost_against_a_hand_calculation():
    from titanicml.backends.ensembling import ensemble_cost

    trials = pd.DataFrame(
        {
            "trial": range(8),
            "estimator": ["lgbm", "lgbm", "rf", "rf", "xgboost", "lrl1", "kneighbor", "sgd"],
            "loss": [0.20, 0.18, 0.25, 0.22, 0.30, 0.40, 0.50, float("inf")],
            "fit_time": [1.0, 2.0, 4.0, 3.0, 5.0, 0.5, 0.25, 9.0],
        }
    )
    # best trial per family: lgbm 2.0, rf 3.0, xgboost 5.0, lrl1 0.5, kneighbor 0.25 (the
    # five best; sgd never finished): 1.5 * (2 + 3 + 5 + 0.5 + 0.25) = 16.125
    assert ensemble_cost(trials) == pytest.approx(16.125)
    assert ensemble_cost(trials.iloc[:0]) == 0.0


def test_unused_ensemble_time_goes_back_to_the_search(titanic, monkeypatch):
    from titanicml import Trainer
    from titanicml.backends.flaml_search import FlamlSearch

    runs = []
    original = FlamlSearch._fit_flaml

    def spy(self, matrix, y, families, max_trials, verbose, starting_points="static"):
        automl, trials = original(self, matrix, y, families, max_trials, verbose, starting_points)
        runs.append((starting_points, automl.best_config_per_estimator))
        return automl, trials

    monkeypatch.setattr(FlamlSearch, "_fit_flaml", spy)
    # Two cheap families on Titanic: the selection needs a fraction of its 4.5 s share
    # (a budget of 30 s keeps a second for the extension on a loaded machine too).
    result = Trainer(
        target="Survived", time_budget=30, estimators=["lgbm", "xgboost"], track=False,
        exclude=["Boat", "Body"],
    ).fit(titanic)  # fmt: skip
    search = result.extras["search"]
    # 15 % of the time left when the search starts (the data checks ran before it)
    assert search["ensemble_seconds"] == pytest.approx(
        0.15 * (30 - search["before_search_seconds"])
    )
    assert search["extension_planned_seconds"] >= 1.0
    assert search["extension_planned_seconds"] == pytest.approx(
        search["ensemble_seconds"] - 2 * search["extension_ensemble_estimate"]
    )
    assert search["extension_seconds"] > 0  # what the second run took
    trials = result.trials
    assert set(trials["search_run"]) == {1, 2}
    # the second run starts from the first one's best configuration of each family
    (first_start, first_best), (second_start, _) = runs
    assert first_start == "static"
    assert second_start == {k: v for k, v in first_best.items() if v}
    assert set(second_start) == {"lgbm", "xgboost"}
    second = trials[trials["search_run"] == 2]
    assert set(second["estimator"]) == {"lgbm", "xgboost"}
    # the leaderboard counts the trials of both runs
    board = result.leaderboard.set_index("estimator")
    for family in ("lgbm", "xgboost"):
        assert board.loc[family, "n_trials"] == (trials["estimator"] == family).sum()
