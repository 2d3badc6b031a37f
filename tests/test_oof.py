"""Out-of-fold predictions of the selected model ship with every model (titanicml/oof.parquet)."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd
import pytest

from titanicml.backends.ensembling import EnsembleOutcome
from titanicml.backends.learners import cv_splitter
from titanicml.backends.oof import selected_out_of_fold
from titanicml.model.layout import OOF_FILE, read_metadata, read_oof


def _fold_mean_accuracy(oof: pd.DataFrame, classes: list, cv: int, seed: int) -> float:
    """Mean over the search's folds of the OOF accuracy, as the leaderboard averages it."""
    codes = pd.Series(range(len(classes)), index=classes).loc[oof["label"]].to_numpy()
    folds = cv_splitter("binary", cv, seed).split(codes.reshape(-1, 1), codes)
    hits = (oof["label"] == oof["prediction"]).to_numpy()
    return float(np.mean([hits[valid].mean() for _, valid in folds]))


@pytest.fixture(scope="module", name="oof_result")
def fixture_oof_result(titanic):
    """A Titanic training with time to spare: max_trials ends the search well before the budget.

    Untracked, so the tests here do not depend on the shared ``titanic_result``'s store.
    The folds are drawn once, so the table's rows are the folds' own outputs (repeated
    folds average theirs: tests/test_repeated_folds.py).
    """
    from titanicml import Trainer

    return Trainer(
        target="Survived",
        time_budget=120,
        max_trials=10,
        cv_repeats=1,
        exclude=["Boat", "Body"],
        track=False,
    ).fit(titanic)


@pytest.fixture(scope="module", name="oof_model")
def fixture_oof_model(oof_result, tmp_path_factory):
    return oof_result.save(tmp_path_factory.mktemp("oof") / "model")


def _training_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    return frame[frame[target].notna()].reset_index(drop=True)


def test_oof_has_one_row_per_training_row_and_the_leaderboards_cv_accuracy(titanic, oof_result):
    result = oof_result
    oof = result.oof
    assert oof is not None, result.extras.get("oof")
    rows = _training_rows(titanic, "Survived")
    assert len(oof) == len(rows)
    assert list(oof.columns) == [
        "label",
        "prediction",
        *(f"probability_{c}" for c in result.classes),
    ]
    # Row order is the training rows': the labels are the target column itself.
    np.testing.assert_array_equal(oof["label"].to_numpy(), rows["Survived"].to_numpy())
    proba = oof[[f"probability_{c}" for c in result.classes]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(
        oof["prediction"].to_numpy(), np.asarray(result.classes)[proba.argmax(axis=1)]
    )
    facts = result.extras["oof"]
    assert facts["available"] is True and facts["folds"] == result.spec.cv
    selected = result.leaderboard.iloc[0]
    assert facts["estimator"] == selected["estimator"]
    # Same folds as the leaderboard row: its CV accuracy is the mean of the folds' accuracy.
    expected = _fold_mean_accuracy(oof, result.classes, result.spec.cv, result.spec.seed)
    assert selected["cv_accuracy"] == pytest.approx(expected, abs=1e-9)
    # Pooled over all rows it differs only by the folds' unequal sizes (262 or 261 rows).
    pooled = float((oof["label"] == oof["prediction"]).mean())
    assert pooled == pytest.approx(expected, abs=1e-3)
    # Out of fold is not in-sample: the final model, fitted on every row, scores higher.
    in_sample = float((result.predict(rows) == rows["Survived"].to_numpy()).mean())
    assert in_sample > pooled


def test_oof_is_saved_signed_and_read_back(oof_result, oof_model):
    from titanicml.model.manifest import verify_manifest

    back = read_oof(oof_model)
    pd.testing.assert_frame_equal(back, oof_result.oof)
    manifest = verify_manifest(oof_model)
    assert OOF_FILE in manifest["sha256"]
    assert read_metadata(oof_model)["oof"] == json.loads(json.dumps(oof_result.extras["oof"]))


def test_models_without_oof_read_none_and_say_why(oof_result, tmp_path):
    azure_like = dataclasses.replace(oof_result, oof=None, extras={}, backend="azure")
    path = azure_like.save(tmp_path / "model")
    assert read_oof(path) is None
    facts = read_metadata(path)["oof"]
    assert facts["available"] is False
    assert "azure backend does not compute" in facts["reason"]


def test_oof_without_ensemble_refits_the_selected_configuration_on_the_search_folds(titanic):
    from titanicml import Trainer

    result = Trainer(
        target="Survived",
        time_budget=20,
        max_trials=6,
        cv_repeats=1,
        ensemble=False,
        exclude=["Boat", "Body"],
        track=False,
    ).fit(titanic)
    assert "fitted on each of the search's folds" in result.extras["oof"]["source"]
    expected = _fold_mean_accuracy(result.oof, result.classes, result.spec.cv, result.spec.seed)
    # FLAML scored the same configuration on the same folds.
    assert result.leaderboard.iloc[0]["cv_accuracy"] == pytest.approx(expected, abs=1e-9)


def test_regression_oof_has_values():
    from sklearn.datasets import load_diabetes

    from titanicml import Trainer

    data = load_diabetes(as_frame=True).frame
    result = Trainer(target="target", time_budget=10, max_trials=6, track=False).fit(data)
    oof = result.oof
    assert oof is not None, result.extras["oof"]
    assert list(oof.columns) == ["label", "prediction"]
    np.testing.assert_allclose(oof["label"].to_numpy(), data["target"].to_numpy())
    r2 = (
        1
        - ((oof["label"] - oof["prediction"]) ** 2).sum()
        / ((oof["label"] - oof["label"].mean()) ** 2).sum()
    )
    # The leaderboard averages the folds' R²; pooled over all rows it is close.
    assert r2 == pytest.approx(result.leaderboard.iloc[0]["cv_r2"], abs=0.05)


def _board(estimator: str, fit_time: float) -> pd.DataFrame:
    return pd.DataFrame([{"estimator": estimator, "config": "{}", "fit_time": fit_time}])


def test_the_ensembles_oof_is_its_blend_and_no_time_means_none():
    from titanicml.spec import TrainSpec

    spec = TrainSpec(target="y")
    y = np.array([0, 1, 1, 0])
    blend = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    outcome = EnsembleOutcome({}, blend=blend)
    args = (np.zeros((4, 1)), y, "binary", ["no", "yes"], spec)
    from titanicml.backends.learners import SearchOutput

    found = SearchOutput("lgbm", {}, {}, pd.DataFrame())
    table, facts = selected_out_of_fold(
        found, _board("ensemble", 1.0), outcome, *args, time.monotonic() + 60, 1
    )
    assert table["prediction"].tolist() == ["no", "yes", "no", "no"]
    assert table["label"].tolist() == ["no", "yes", "yes", "no"]
    np.testing.assert_array_equal(table["probability_yes"].to_numpy(), blend[:, 1])
    assert facts["available"] and "weighted" in facts["source"]
    # A family not rescored whose CV time does not fit before the deadline: none, and why.
    table, facts = selected_out_of_fold(
        found, _board("lgbm", 30.0), outcome, *args, time.monotonic() + 5, 1
    )
    assert table is None and not facts["available"] and "no time left" in facts["reason"]
    # A trial scored on a validation split (one fit on 90 % of the rows) stands for a
    # fraction of the folds' cost: 2 s of trial with 5 folds is 2 * 4 / 0.9 = 8.9 s of CV.
    on_split = SearchOutput("lgbm", {}, {}, pd.DataFrame(), cv_cost=4 / 0.9)
    table, facts = selected_out_of_fold(
        on_split, _board("lgbm", 2.0), outcome, *args, time.monotonic() + 5, 1
    )
    assert table is None and "its CV needs 8.9 s" in facts["reason"]
    table, facts = selected_out_of_fold(
        found, _board("lgbm", 0.0), None, *args, time.monotonic() + 60, 1, sampled=True
    )
    assert table is None and "sample of the rows" in facts["reason"]


def _small_search():
    """A real search output with one FLAML learner, and a small binary task."""
    from flaml.automl.model import LGBMEstimator
    from sklearn.datasets import make_classification

    from titanicml.backends.learners import SearchOutput

    matrix, y = make_classification(n_samples=120, n_features=4, random_state=0)
    config = {"n_estimators": 4, "num_leaves": 4}
    found = SearchOutput("lgbm", config, {"lgbm": LGBMEstimator}, pd.DataFrame())
    board = pd.DataFrame([{"estimator": "lgbm", "config": json.dumps(config), "fit_time": 0.2}])
    return found, board, matrix, y


def test_a_cheap_refit_uses_the_reserve_when_the_search_used_the_time():
    from titanicml.spec import TrainSpec

    found, board, matrix, y = _small_search()
    spec = TrainSpec(target="y", cv=3)
    args = (found, board, None, matrix, y, "binary", [0, 1], spec)
    past = time.monotonic() - 1  # the search ran up to (and past) the refit's deadline
    table, facts = selected_out_of_fold(*args, past, 1, reserve=2.0)
    assert table is not None and facts["available"], facts
    assert len(table) == len(y) and "fitted on each of the search's folds" in facts["source"]
    # A CV costing more than the reserve still waits for no one: none, and why.
    table, facts = selected_out_of_fold(*args, past, 1, reserve=0.1)
    assert table is None and "0.1 s of reserve, its CV needs 0.2 s" in facts["reason"]


def test_ensemble_selection_rescores_the_selected_family_in_the_reserve():
    from titanicml.backends.ensembling import select_ensemble
    from titanicml.metrics import metric_for_task
    from titanicml.spec import TrainSpec

    found, board, matrix, y = _small_search()
    spec = TrainSpec(target="y", cv=3)
    metric = metric_for_task("accuracy", "binary")
    args = (found, {}, matrix, y, "binary", metric, spec, board)
    outcome = select_ensemble(*args, deadline=time.monotonic() - 1, n_jobs=1, reserve=2.0)
    assert list(outcome.oof) == ["lgbm"] and outcome.oof["lgbm"].shape == (len(y), 2)
    outcome = select_ensemble(*args, deadline=time.monotonic() - 1, n_jobs=1)
    assert outcome.oof == {}


def test_a_small_budget_with_ensembling_ships_oof(titanic):
    from titanicml import Trainer

    result = Trainer(
        target="Survived", time_budget=8, max_trials=6, exclude=["Boat", "Body"], track=False
    ).fit(titanic)
    assert result.oof is not None, result.extras["oof"]
    assert result.extras["oof"]["available"] is True


@pytest.fixture(scope="module", name="holdout_result")
def fixture_holdout_result(titanic):
    """A Titanic training with a 20 % holdout: its out-of-fold table has 1047 rows, not 1309."""
    from titanicml import Trainer

    return Trainer(
        target="Survived", time_budget=60, max_trials=6, holdout=0.2,
        exclude=["Boat", "Body"], track=False,
    ).fit(titanic)  # fmt: skip


def test_the_training_rows_of_a_holdout_model_are_found_in_the_whole_table(titanic, holdout_result):
    from titanicml.explain.outcomes import labelled_outcomes, training_rows

    result = holdout_result
    assert result.oof is not None and len(result.oof) == 1047 and len(result.holdout) == 262
    found = training_rows(result.model, titanic, "Survived", result.oof, result.holdout)
    assert found is not None and len(found) == 1047
    np.testing.assert_array_equal(found["Survived"].to_numpy(), result.oof["label"].to_numpy())
    both = found.merge(result.holdout, on=["Name", "Ticket"])  # they tell passengers apart
    assert both.empty
    outcomes = labelled_outcomes(
        result.model, titanic, target="Survived", oof=result.oof, holdout=result.holdout
    )
    assert outcomes.source == "out-of-fold" and len(outcomes.rows) == 1047
    assert "262 rows of the model's holdout were left out" in outcomes.note
    # Without the holdout the rows do not line up: the model's own, said to be optimistic.
    blind = labelled_outcomes(result.model, titanic, target="Survived", oof=result.oof)
    assert blind.source == "model" and "optimistic" in blind.note
    # The holdout itself: honest rows, no warning.
    honest = labelled_outcomes(
        result.model, result.holdout, target="Survived", oof=result.oof, holdout=result.holdout
    )
    assert honest.source == "model" and honest.note == "" and len(honest.rows) == 262
    # The model's own predictions asked for on its training rows: said to be in-sample there.
    asked = labelled_outcomes(
        result.model, titanic, target="Survived", oof=result.oof, holdout=result.holdout,
        predictions="model",
    )  # fmt: skip
    assert asked.source == "model" and len(asked.rows) == 1309
    assert "predictions were asked for" in asked.note and "in-sample" in asked.note
    assert "1047 training rows among these 1309" in asked.note
    assert "not the model's" not in asked.note


def test_without_oof_the_models_own_predictions_are_said_to_be_in_sample(titanic, oof_result):
    from titanicml.explain.outcomes import labelled_outcomes

    outcomes = labelled_outcomes(oof_result.model, titanic, target="Survived", oof=None)
    assert outcomes.source == "model"
    assert "no out-of-fold predictions" in outcomes.note and "in-sample" in outcomes.note


def test_an_ensemble_mixed_on_the_split_gets_its_members_out_of_fold_output_weighted():
    from flaml.automl.model import LGBMEstimator, RandomForestEstimator

    from titanicml.backends.ensembling import out_of_fold, search_folds
    from titanicml.backends.learners import SearchOutput
    from titanicml.spec import TrainSpec

    found, _, matrix, y = _small_search()
    found = SearchOutput("lgbm", {}, {"lgbm": LGBMEstimator, "rf": RandomForestEstimator},
                         pd.DataFrame(), cv_cost=2 / 0.9)  # fmt: skip
    configs = {"lgbm": {"n_estimators": 4, "num_leaves": 4}, "rf": {"n_estimators": 4}}
    mix = {"members": ["lgbm", "rf"], "weights": [1.0, 3.0]}
    board = pd.DataFrame(
        [
            {"estimator": "ensemble", "config": json.dumps(mix), "fit_time": 0.0},
            {"estimator": "rf", "config": json.dumps(configs["rf"]), "fit_time": 0.5},
            {"estimator": "lgbm", "config": json.dumps(configs["lgbm"]), "fit_time": 0.4},
        ]
    )
    spec = TrainSpec(target="y", cv=3)
    args = (matrix, y, "binary", [0, 1], spec)
    outcome = EnsembleOutcome({}, candidates=["lgbm", "rf"])  # mixed on the split: no blend
    table, facts = selected_out_of_fold(found, board, outcome, *args, time.monotonic() + 60, 1)
    assert facts["available"] and "members" in facts["source"], facts
    folds = search_folds("binary", spec, y)
    expected = sum(
        weight * out_of_fold(found, name, configs[name], matrix, y, folds, "binary", 1)[:, 1]
        for name, weight in (("lgbm", 0.25), ("rf", 0.75))
    )
    np.testing.assert_allclose(table["probability_1"].to_numpy(), expected)
    # the members' CV: (0.4 + 0.5) s of trials on the split, 2 / 0.9 each: 2.0 s
    table, facts = selected_out_of_fold(found, board, outcome, *args, time.monotonic() + 1, 1)
    assert table is None and "the ensemble's members" in facts["reason"]
    assert "its CV needs 2.0 s" in facts["reason"]
