import numpy as np
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
