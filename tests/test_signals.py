"""compute_signals on Titanic windows: verdicts, refusals, the table, JSON and findings."""

import json

import numpy as np
import pytest

from titanicml import datasets
from titanicml.data.profile import profile_frame
from titanicml.exceptions import ConfigError, DataError
from titanicml.findings import Finding
from titanicml.monitor import SignalResult, compute_signals
from titanicml.monitor.signals import TABLE_COLUMNS

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked", "Cabin"]


@pytest.fixture(scope="module")
def titanic():
    frame = datasets.load_titanic()
    return frame, profile_frame(frame[FEATURES])


def window(frame, rows=500, seed=0):
    rng = np.random.default_rng(seed)
    return frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)


def drift_alerts(result):
    table = result.table
    return set(table.loc[table["alert"] & (table["signal"] == "data_drift"), "feature"])


def third_class_twice_as_likely(frame, seed=0):
    """Relabel first/second-class rows as third until the third-class odds double."""
    out = frame.copy()
    third = out["Pclass"] == 3
    share = third.mean()
    wanted = 2 * share / (1 + share)
    rng = np.random.default_rng(seed)
    moved = rng.choice(np.flatnonzero(~third), round((wanted - share) * len(out)), replace=False)
    out.loc[moved, "Pclass"] = 3
    return out


@pytest.mark.parametrize("reference", ["profile", "table"])
def test_shifted_features_are_flagged_and_the_others_not(titanic, reference):
    frame, profile = titanic
    ref = profile if reference == "profile" else frame
    for seed in range(2):
        quiet = window(frame, seed=seed)
        older = quiet.assign(Age=quiet["Age"] + 10)
        common = {"features": FEATURES, "signals": ["data_drift"], "seed": seed}
        assert drift_alerts(compute_signals(quiet, ref, **common)) == set()
        assert drift_alerts(compute_signals(older, ref, **common)) == {"Age"}
        shifted = third_class_twice_as_likely(quiet, seed)
        assert drift_alerts(compute_signals(shifted, ref, **common)) == {"Pclass"}


def test_the_table_has_every_column_and_ranks_by_importance(titanic):
    frame, profile = titanic
    importance = {"Sex": 0.4, "Fare": 0.2, "Age": 0.1}
    result = compute_signals(window(frame), profile, features=FEATURES, importance=importance)
    assert isinstance(result, SignalResult)
    assert list(result.table.columns) == list(TABLE_COLUMNS)
    drift = result.table[result.table["signal"] == "data_drift"]
    assert drift["feature"].tolist()[:3] == ["Sex", "Fare", "Age"]
    metrics = dict(zip(drift["feature"], drift["metric"], strict=True))
    assert metrics["Age"] == "normalized_wasserstein_distance"
    assert metrics["Sex"] == "jensen_shannon_distance"
    assert metrics["Cabin"] == ""  # too many distinct values: skipped, with the reason
    cabin = drift[drift["feature"] == "Cabin"].iloc[0]
    assert cabin["status"] == "skipped" and "distinct values" in cabin["message"]
    judged = drift[drift["status"] != "skipped"]
    assert (judged["threshold"] == 0.1).all()
    assert (judged["lower"] <= judged["value"]).all() and (judged["value"] <= judged["upper"]).all()


def test_json_and_findings(titanic, tmp_path):
    frame, profile = titanic
    older = window(frame).assign(Age=lambda f: f["Age"] + 10)
    result = compute_signals(older, profile, features=FEATURES)
    data = json.loads(result.to_json())
    assert data["alert"] is True and data["reference"] == "training profile"
    age = next(r for r in data["signals"] if r["feature"] == "Age" and r["signal"] == "data_drift")
    assert age["alert"] is True and age["lower"] > age["threshold"] == 0.1
    assert all(isinstance(f, Finding) for f in result.findings)
    alerted = {(f.check, f.column) for f in result.findings if f.severity == "warning"}
    assert ("data_drift.normalized_wasserstein_distance", "Age") in alerted
    # A few ages pass the training maximum (80): more than a window of the training
    # population would, but well within the margin: no out-of-bounds alert.
    assert ("data_quality.out_of_bounds_rate", "Age") not in alerted
    age_bounds = next(
        r for r in data["signals"] if r["feature"] == "Age" and r["metric"] == "out_of_bounds_rate"
    )
    assert age_bounds["value"] > 0
    # Ages in months instead of years (a broken feed) are out of bounds: that alerts.
    months = window(frame).assign(Age=lambda f: f["Age"] * 12)
    alerted = {
        (f.check, f.column)
        for f in compute_signals(months, profile, features=FEATURES).findings
        if f.severity == "warning"
    }
    assert ("data_quality.out_of_bounds_rate", "Age") in alerted


def test_a_window_too_small_is_refused_with_the_rows_it_needs(titanic):
    frame, profile = titanic
    with pytest.raises(DataError, match=r"window of 12 rows is too small.*needs at least \d+ rows"):
        compute_signals(window(frame, rows=12), profile, features=["Age", "Fare", "Pclass"])


def test_tests_on_request_are_corrected_across_features(titanic):
    frame, profile = titanic
    older = window(frame).assign(Age=lambda f: f["Age"] + 10)
    result = compute_signals(
        older,
        profile,
        features=FEATURES,
        signals=["data_drift"],
        numeric_metrics=["two_sample_kolmogorov_smirnov_test", "population_stability_index"],
        categorical_metrics=["pearsons_chi_squared_test"],
    )
    table = result.table.set_index(["feature", "metric"])
    ks = table.xs("two_sample_kolmogorov_smirnov_test", level="metric")
    assert (ks["q_value"] >= ks["p_value"]).all()
    assert ks.loc["Age", "alert"] and ks.loc["Age", "q_value"] < 0.05
    assert table.loc[("Age", "population_stability_index"), "alert"]
    assert set(table.index[table["alert"]].get_level_values(0)) == {"Age"}


def test_prediction_drift_and_model_performance_from_logged_predictions(titanic):
    frame, _ = titanic
    rng = np.random.default_rng(0)
    quiet = window(frame, rows=400)
    proba = np.clip(0.2 + 0.6 * (quiet["Sex"] == "female") + rng.normal(0, 0.05, 400), 0, 1)
    logged = quiet.assign(
        prediction=(proba > 0.5).astype(int), probability_0=1 - proba, probability_1=proba
    )
    reference_predictions = logged[["prediction", "probability_0", "probability_1"]].copy()
    reference_predictions["probability_1"] = np.clip(proba - 0.3, 0, 1)
    reference_predictions["probability_0"] = 1 - reference_predictions["probability_1"]
    result = compute_signals(
        logged,
        frame,
        labels=quiet["Survived"],
        features=["Sex", "Age"],
        signals=["prediction_drift", "model_performance"],
        reference_predictions=reference_predictions,
        min_performance={"accuracy": 0.95},
    )
    table = result.table.set_index(["signal", "feature", "metric"])
    drifted = table.loc[("prediction_drift", "probability_1", "normalized_wasserstein_distance")]
    assert drifted["alert"]
    performance = result.table[result.table["signal"] == "model_performance"].set_index("metric")
    expected = (logged["prediction"] == quiet["Survived"]).mean()
    assert performance.loc["accuracy", "value"] == pytest.approx(expected)
    assert performance.loc["accuracy", "alert"]  # its upper bound is under 0.95
    assert set(performance.index) == {"accuracy", "precision", "recall", "f1_score", "roc_auc"}


def logged_window(frame, rows=400, seed=0):
    """A window with logged predictions and probabilities (women: 0.8, men: 0.2)."""
    rng = np.random.default_rng(seed)
    quiet = window(frame, rows=rows, seed=seed)
    proba = np.clip(0.2 + 0.6 * (quiet["Sex"] == "female") + rng.normal(0, 0.05, rows), 0, 1)
    return quiet, quiet.assign(
        prediction=(proba > 0.5).astype(int), probability_0=1 - proba, probability_1=proba
    )


def test_float_labels_match_their_classes_as_values(titanic):
    """A label column read as floats (1.0, NaN) is class "1", not the text "1.0"."""
    frame, _ = titanic
    quiet, logged = logged_window(frame)
    truth = quiet["Survived"].astype(float)
    truth.iloc[:10] = np.nan  # why a CSV's label column reads as float
    expected = (logged["prediction"] == truth)[truth.notna()].mean()
    assert 0.5 < expected < 1
    for labels in (truth, truth.astype(object), truth.map(lambda v: None if v != v else str(v))):
        result = compute_signals(
            logged, frame, labels=labels, features=["Sex"], signals=["model_performance"]
        )
        accuracy = result.table.set_index("metric").loc["accuracy"]
        assert accuracy["value"] == pytest.approx(expected)
        assert accuracy["n_production"] == len(quiet) - 10
    # The out-of-fold labels of the estimated performance (CBPE) too.
    oof = logged[["probability_0", "probability_1"]].to_numpy()
    estimates = [
        compute_signals(
            logged,
            frame,
            features=["Sex"],
            signals=["estimated_performance"],
            calibration=(oof, labels),
        ).table.iloc[0]["value"]
        for labels in (quiet["Survived"].to_numpy(), quiet["Survived"].astype(float).to_numpy())
    ]
    assert estimates[0] == pytest.approx(estimates[1])


def test_prediction_drift_computes_the_metrics_asked_for(titanic):
    frame, _ = titanic
    _, logged = logged_window(frame)
    logged["prediction"] = np.where(logged["probability_1"] > 0.5, "yes", "no")  # categorical
    reference = logged[["prediction", "probability_0", "probability_1"]].copy()
    reference["probability_1"] = np.clip(reference["probability_1"] - 0.3, 0, 1)
    reference["probability_0"] = 1 - reference["probability_1"]
    reference["prediction"] = np.where(reference["probability_1"] > 0.5, "yes", "no")
    result = compute_signals(
        logged,
        frame,
        features=["Sex"],
        signals=["prediction_drift"],
        numeric_metrics=["population_stability_index", "two_sample_kolmogorov_smirnov_test"],
        categorical_metrics=["pearsons_chi_squared_test"],
        reference_predictions=reference,
    )
    table = result.table.set_index(["feature", "metric"])
    assert set(table.index) == {
        ("probability_0", "population_stability_index"),
        ("probability_0", "two_sample_kolmogorov_smirnov_test"),
        ("probability_1", "population_stability_index"),
        ("probability_1", "two_sample_kolmogorov_smirnov_test"),
        ("prediction", "pearsons_chi_squared_test"),
    }
    assert table.loc[("probability_1", "population_stability_index"), "alert"]
    assert table.loc[("prediction", "pearsons_chi_squared_test"), "p_value"] < 1e-6


def test_unknown_signal_or_metric_is_a_clear_error(titanic):
    frame, profile = titanic
    with pytest.raises(ConfigError, match="unknown signal 'drift'"):
        compute_signals(window(frame), profile, signals=["drift"])
    with pytest.raises(ConfigError, match="not a metric of numeric features"):
        compute_signals(
            window(frame), profile, features=["Age"], numeric_metrics=["pearsons_chi_squared_test"]
        )
    with pytest.raises(DataError, match="no rows"):
        compute_signals(frame.iloc[:0], profile)


def test_multivariate_drift_needs_a_reference_table(titanic):
    frame, profile = titanic
    older = window(frame, rows=300).assign(Age=lambda f: f["Age"] + 10)
    result = compute_signals(
        older, frame, features=FEATURES, signals=["multivariate_drift"], n_boot=50
    )
    row = result.table.iloc[0]
    assert row["metric"] == "domain_classifier_auroc" and row["alert"]
    from_profile = compute_signals(
        older, profile, features=FEATURES, signals=["multivariate_drift"]
    )
    skipped = from_profile.table.iloc[0]  # joint distributions are not in a profile
    assert skipped["status"] == "skipped" and "reference rows" in skipped["message"]
    # ... but rows of the reference population beside the profile are.
    with_rows = compute_signals(
        older, profile, features=FEATURES, signals=["multivariate_drift"], n_boot=50,
        reference_rows=frame,
    ).table.iloc[0]  # fmt: skip
    assert with_rows["value"] == row["value"] and with_rows["alert"]
    assert not from_profile.alert


def test_a_trained_model_gives_features_predictions_and_its_profile(titanic, tmp_path):
    from titanicml import Trainer
    from titanicml.monitor.signals import training_profile

    frame, _ = titanic
    result = Trainer(
        target="Survived", time_budget=10, max_trials=4, exclude=["Boat", "Body"], track=False
    ).fit(frame)
    profile = training_profile(result.save(tmp_path / "model"))
    assert profile == json.loads(json.dumps(result.profile))
    model = result.model
    quiet = window(frame, rows=400)
    train_proba = model.predict_proba(frame)
    signals = compute_signals(
        quiet.drop(columns="Survived"),
        profile,
        model,
        labels=quiet["Survived"],
        calibration=(train_proba, frame["Survived"].to_numpy()),
    )
    table = signals.table
    assert set(table.loc[table["signal"] == "data_drift", "feature"]) == set(model.input_columns)
    assert not table.loc[table["signal"] == "data_drift", "alert"].any()
    prediction = table[table["signal"] == "prediction_drift"]
    assert (prediction["status"] == "skipped").all()  # a profile has no predictions
    realized = table[(table["signal"] == "model_performance") & (table["metric"] == "accuracy")]
    estimated = table[table["signal"] == "estimated_performance"].iloc[0]
    assert estimated["metric"] == "accuracy"
    # The estimate without labels covers what the labels say (in-sample calibration).
    assert estimated["lower"] <= realized["value"].iloc[0] <= estimated["upper"]
    with_table = compute_signals(
        quiet, frame, model, features=["Sex", "Age"], signals=["prediction_drift"]
    )
    drift = with_table.table.set_index("feature")
    assert drift.loc["prediction", "metric"] == "jensen_shannon_distance"
    assert not drift["alert"].any()
