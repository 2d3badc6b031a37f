"""A trained model is a real scikit-learn estimator; the Trainer has scikit-learn's params API."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError

from titanicml import Trainer


def test_classifier_is_a_classifier_with_fitted_attributes(titanic_result):
    model = titanic_result.model
    assert is_classifier(model) and not is_regressor(model)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    assert model.n_features_in_ == len(model.input_columns)
    assert list(model.feature_names_in_) == model.input_columns
    assert "Boat" not in model.feature_names_in_


def test_score_is_accuracy_on_raw_rows(titanic_result, titanic):
    model = titanic_result.model
    sample = titanic.sample(200, random_state=1)
    expected = float(np.mean(model.predict(sample) == sample["Survived"].to_numpy()))
    assert model.score(sample, sample["Survived"]) == pytest.approx(expected)


def test_regressor_has_no_predict_proba(regression_result):
    result, frame = regression_result
    model = result.model
    assert is_regressor(model) and not is_classifier(model)
    assert not hasattr(model, "predict_proba")
    with pytest.raises(AttributeError):
        model.predict_proba(frame)
    assert not hasattr(model, "classes_")
    # R², as scikit-learn's RegressorMixin computes it.
    y, predicted = frame["target"].to_numpy(), model.predict(frame)
    r2 = 1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert model.score(frame, frame["target"]) == pytest.approx(r2)


def test_clone_is_unfitted_and_refits_on_raw_rows(titanic_result, titanic):
    model = titanic_result.model
    copy = clone(model)
    with pytest.raises(NotFittedError):
        copy.predict(titanic.head(3))
    labels = titanic["Survived"].map({0: "died", 1: "lived"})
    copy.fit(titanic, labels)
    assert set(copy.predict(titanic.head(50))) <= {"died", "lived"}
    np.testing.assert_array_equal(copy.classes_, ["died", "lived"])
    assert copy.predict_proba(titanic.head(5)).shape == (5, 2)
    # The original model is untouched.
    np.testing.assert_array_equal(model.classes_, [0, 1])


def test_permutation_importance_ranks_sex_above_a_noise_column(titanic_result, titanic):
    from sklearn.inspection import permutation_importance

    model = titanic_result.model
    rows = titanic.sample(400, random_state=0)
    found = permutation_importance(
        model, rows, rows["Survived"], n_repeats=3, random_state=0, n_jobs=1
    )
    columns = list(rows.columns)
    importance = dict(zip(columns, found.importances_mean, strict=True))
    # Permuting a column the model does not read changes nothing.
    assert importance["Boat"] == 0.0 and importance["Survived"] == 0.0
    assert importance["Sex"] > 0.05


def test_fairlearn_metric_frame_takes_the_model(titanic_result, titanic):
    fairlearn = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score

    model = titanic_result.model
    y_pred = model.predict(titanic)
    frame = fairlearn.MetricFrame(
        metrics=accuracy_score,
        y_true=titanic["Survived"],
        y_pred=y_pred,
        sensitive_features=titanic["Sex"],
    )
    for group, value in frame.by_group.items():
        rows = titanic["Sex"] == group
        expected = np.mean(y_pred[rows.to_numpy()] == titanic.loc[rows, "Survived"].to_numpy())
        assert value == pytest.approx(expected)


def test_models_pickled_before_the_estimator_api_still_load(titanic_result, titanic):
    model = titanic_result.model
    state = model.__getstate__()
    # The shape of a model saved by earlier titanicml: no fitted attributes.
    old = {k: v for k, v in state.items() if k not in ("pipeline_", "fitted_classes_")}
    revived = type(model).__new__(type(model))
    revived.__setstate__(old)
    np.testing.assert_array_equal(
        revived.predict(titanic.head(20)), model.predict(titanic.head(20))
    )
    assert pickle.loads(pickle.dumps(model)).score(titanic, titanic["Survived"]) == model.score(
        titanic, titanic["Survived"]
    )


def test_trainer_get_set_params_and_repr():
    trainer = Trainer(target="Survived", time_budget=9)
    params = trainer.get_params()
    assert params["target"] == "Survived" and params["time_budget"] == 9
    assert set(params) >= {"backend", "experiment_name", "tracking_uri", "on_leakage"}
    assert trainer.set_params(seed=3, cv=4) is trainer
    assert (trainer.seed, trainer.cv) == (3, 4)
    with pytest.raises(ValueError, match=r"no parameter.*sed"):
        trainer.set_params(sed=1)
    text = repr(trainer)
    for name, value in trainer.get_params().items():
        assert f"{name}={value!r}" in text
    assert eval(text, {"Trainer": Trainer}).get_params() == trainer.get_params()
