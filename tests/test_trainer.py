import signal
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import FAST_BUDGET

from titanicml import Trainer
from titanicml.exceptions import ConfigError, TitanicMLError
from titanicml.spec import ESTIMATORS


def test_titanic_result_has_a_ranked_leaderboard_of_several_families(titanic_result):
    board = titanic_result.leaderboard
    assert len(board) >= 3
    assert set(board["estimator"]) <= {*ESTIMATORS, "ensemble", "baseline"}
    assert board["selected"].tolist() == [True] + [False] * (len(board) - 1)
    scores = board["cv_accuracy"].to_numpy()
    assert np.all(scores[:-1] >= scores[1:]), "leaderboard must be sorted best first"
    assert {"cv_accuracy_std", "n_trials", "fit_time", "config"} <= set(board.columns)
    searched = board[board["estimator"] != "baseline"]
    assert (searched["n_trials"] >= 1).all()
    (baseline,) = board[board["estimator"] == "baseline"].itertuples()
    assert baseline.n_trials == 0 and not baseline.selected
    assert baseline.cv_accuracy < board["cv_accuracy"].iloc[0] - 0.1


def test_metrics_are_those_of_the_best_row(titanic_result):
    best = titanic_result.leaderboard.iloc[0]
    assert titanic_result.metrics["accuracy"] == pytest.approx(best["cv_accuracy"])
    assert titanic_result.metric == "accuracy" and titanic_result.task == "binary"
    assert 0.70 < titanic_result.metrics["accuracy"] < 0.95
    assert 0.0 <= titanic_result.metrics["accuracy_std"] < 0.1
    assert 0.5 < titanic_result.metrics["roc_auc"] <= 1.0


def test_predict_takes_raw_rows_in_every_shape(titanic_result, titanic):
    rows = titanic.head(20)
    labels = titanic_result.predict(rows)
    assert labels.shape == (20,) and set(labels) <= {0, 1}
    record = rows.iloc[0].to_dict()
    assert titanic_result.predict(record)[0] == labels[0]
    assert titanic_result.predict([record])[0] == labels[0]
    partial = titanic_result.predict({"Age": 22, "Pclass": 3, "Sex": "male"})
    assert partial.shape == (1,)


def test_predict_proba_rows_sum_to_one_and_agree_with_predict(titanic_result, titanic):
    proba = titanic_result.predict_proba(titanic)
    assert proba.shape == (len(titanic), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels = np.asarray(titanic_result.classes)[proba.argmax(axis=1)]
    np.testing.assert_array_equal(labels, titanic_result.predict(titanic))


def test_excluded_and_target_columns_are_not_features(titanic_result):
    used = set(titanic_result.model.input_columns)
    assert not used & {"Boat", "Body", "Survived"}
    features = titanic_result.features.set_index("name")
    assert features.loc["Boat", "kind"] == "dropped"


def test_multiclass_with_string_labels():
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True).frame
    data["target"] = data["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    result = Trainer(target="target", time_budget=FAST_BUDGET, track=False).fit(data)
    assert result.task == "multiclass"
    assert sorted(result.classes) == ["barbera", "barolo", "grignolino"]
    assert set(result.predict(data.head(30))) <= set(result.classes)
    assert result.predict_proba(data.head(5)).shape == (5, 3)
    assert result.metrics["accuracy"] > 0.8


def test_regression_is_inferred_and_scored_with_r2(regression_result):
    result, data = regression_result
    assert result.task == "regression" and result.metric == "r2"
    assert "lrl1" not in set(result.leaderboard["estimator"])
    assert result.metrics["r2"] > 0.2
    assert {"rmse", "mae"} <= set(result.metrics)
    with pytest.raises(AttributeError, match="classifiers"):
        result.predict_proba(data.head(2))


def test_csv_and_parquet_paths_read_like_a_frame(tmp_path, titanic):
    from titanicml.data.resolve import resolve_data

    small = titanic[["Survived", "Pclass", "Sex", "Age", "Fare"]]
    small.to_parquet(tmp_path / "t.parquet")
    small.to_csv(tmp_path / "t.csv", index=False)
    from_frame = resolve_data(small)[1]
    for name in ("t.parquet", "t.csv"):
        frame, ref = resolve_data(tmp_path / name)
        assert ref.source.endswith(name)
        assert (ref.n_rows, ref.n_columns) == (from_frame.n_rows, from_frame.n_columns)
        pd.testing.assert_frame_equal(frame[["Pclass", "Survived"]], small[["Pclass", "Survived"]])


def test_progress_reports_trials_within_the_budget(titanic, store):
    reports = []
    budget = 4.0
    trainer = Trainer(target="Survived", time_budget=budget, tracking_uri=store)
    trainer.fit(titanic, on_progress=reports.append)
    # That the whole fit keeps to its budget is measured by benchmarks/large_data.py
    # (its "titanic" case too), not here: a timed test fails on a loaded machine.
    assert all(r.budget <= budget for r in reports)
    assert reports, "no progress was reported"
    assert [r.trials for r in reports] == list(range(1, len(reports) + 1))
    assert all(r.best_score is not None and 0 < r.best_score <= 1 for r in reports)
    best = [r.best_score for r in reports]
    assert best == sorted(best), "best score so far never gets worse"


def test_max_trials_and_seed_give_the_same_leaderboard(titanic, titanic_result):
    # The settings of the shared titanic_result fixture, without tracking.
    first = titanic_result
    second = Trainer(
        target="Survived", time_budget=30, max_trials=10, exclude=["Boat", "Body"], track=False
    ).fit(titanic)
    assert first.trials["estimator"].tolist() == second.trials["estimator"].tolist()
    assert len(first.trials) == 10
    np.testing.assert_allclose(first.trials["loss"], second.trials["loss"])
    timing = ["fit_time"]
    pd.testing.assert_frame_equal(
        first.leaderboard.drop(columns=timing), second.leaderboard.drop(columns=timing)
    )
    np.testing.assert_array_equal(first.predict_proba(titanic), second.predict_proba(titanic))


def test_unused_columns_at_predict_time_are_ignored(titanic_result, titanic):
    rows = titanic.head(3).assign(Unrelated=["a", "b", "c"])
    np.testing.assert_array_equal(
        titanic_result.predict(rows), titanic_result.predict(titanic.head(3))
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"time_budget": 0}, "time_budget must be a positive"),
        ({"time_budget": -5}, "time_budget must be a positive"),
        ({"cv": 1}, "cv must be"),
        ({"max_trials": 1}, "max_trials must be"),
        ({"on_leakage": "ignore"}, "unknown on_leakage"),
        ({"task": "ranking"}, "unknown task"),
        ({"metric": "bleu"}, "unknown metric"),
        ({"task": "regression", "metric": "accuracy"}, "does not apply"),
        ({"estimators": ["catboost9"]}, "unknown estimator"),
        ({"exclude": ["Survived"]}, "cannot also be excluded"),
    ],
)
def test_bad_parameters_raise_config_errors(kwargs, match, titanic):
    with pytest.raises(ConfigError, match=match) as info:
        Trainer(target="Survived", track=False, **kwargs).fit(titanic)
    assert isinstance(info.value, ValueError)


def test_metric_unfit_for_inferred_task_is_refused(titanic):
    with pytest.raises(ConfigError, match="does not apply to a binary task"):
        Trainer(target="Survived", metric="r2", time_budget=2, track=False).fit(titanic)


def test_unknown_data_type_is_refused():
    with pytest.raises(TitanicMLError, match="give a pandas DataFrame"):
        Trainer(target="y", track=False).fit(42)


def test_empty_frame_is_refused():
    with pytest.raises(TitanicMLError, match="empty"):
        Trainer(target="y", track=False).fit(pd.DataFrame())


def test_ctrl_c_swallowed_by_a_finalizer_cancels_the_job_without_a_traceback(capfd, monkeypatch):
    from titanicml.trainer import _InterruptGuard

    # Python's own hook, as in the CLI (pytest replaces it with a warning).
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    cancelled = []

    class Backend:
        def cancel(self, job):
            cancelled.append(job)

    class InterruptedWhileCollected:
        def __del__(self):
            # The signal handler runs here, inside a finalizer, so Python swallows
            # the KeyboardInterrupt it raises and reports it as "unraisable".
            signal.raise_signal(signal.SIGINT)

    with _InterruptGuard() as interrupts:
        InterruptedWhileCollected()  # before the job exists ...
        interrupts.watch(Backend(), "job-1")  # ... which is cancelled as soon as it does
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
    assert interrupts.received == [signal.SIGINT]
    assert cancelled == ["job-1"]
    assert "Traceback" not in capfd.readouterr().err
    assert sys.unraisablehook is sys.__unraisablehook__


def test_folds_follow_the_number_of_rows_unless_given(titanic_result):
    from titanicml.spec import AUTO_CV_MAX_ROWS, TrainSpec

    spec = TrainSpec(target="y")
    assert spec.cv is None
    assert spec.with_folds(AUTO_CV_MAX_ROWS).cv == 5
    assert spec.with_folds(AUTO_CV_MAX_ROWS + 1).cv == 3
    assert TrainSpec(target="y", cv=7).with_folds(10**6).cv == 7
    # a training records the folds it used: Titanic's 1,309 rows get 5
    assert titanic_result.spec.cv == 5
    with pytest.raises(ConfigError, match="or None"):
        TrainSpec(target="y", cv=1)


def test_small_tables_repeat_their_folds_unless_told(titanic_result):
    from titanicml.spec import AUTO_CV_REPEATS, AUTO_REPEATED_CV_MAX_ROWS, TrainSpec

    spec = TrainSpec(target="y")
    assert spec.cv_repeats is None
    assert spec.with_folds(AUTO_REPEATED_CV_MAX_ROWS).cv_repeats == AUTO_CV_REPEATS == 2
    assert spec.with_folds(AUTO_REPEATED_CV_MAX_ROWS + 1).cv_repeats == 1
    assert TrainSpec(target="y", cv_repeats=3).with_folds(10**6).cv_repeats == 3
    assert TrainSpec(target="y", cv_repeats=1).with_folds(100).cv_repeats == 1
    # Titanic's 1,309 rows: 5 folds, drawn twice; the leaderboard says so
    assert titanic_result.spec.cv_repeats == 2
    assert set(titanic_result.leaderboard["validation"]) == {"5-fold cv x2"}
    for bad in (0, 1.5, "2"):
        with pytest.raises(ConfigError, match="cv_repeats must be a positive integer"):
            TrainSpec(target="y", cv_repeats=bad)


def test_a_tracked_fit_keeps_its_logging_and_reports_seconds_out_of_the_search(
    titanic, titanic_result, store
):
    from titanicml.trainer import REPORT_SECONDS, TRACKING_SECONDS

    # the shared fit is tracked with its report: 30 s, whose 40 % cap is not reached
    reserve = titanic_result.extras["search"]["reserve_seconds"]
    assert reserve == pytest.approx(TRACKING_SECONDS + REPORT_SECONDS + 2e-6 * len(titanic))
    # without the report only the logging's seconds are kept
    result = Trainer(
        target="Survived", time_budget=12, max_trials=2, estimators=["lgbm"], report=False,
        exclude=["Boat", "Body"], tracking_uri=store,
    ).fit(titanic)  # fmt: skip
    reserve = result.extras["search"]["reserve_seconds"]
    assert reserve == pytest.approx(TRACKING_SECONDS + 2e-6 * len(titanic))
