"""The trivial baseline in every leaderboard, and a useless model reported as a failure.

Before issue 9 a search whose best model scored the majority-class share was reported
as a success. The baseline's scores are checked against a hand calculation, the verdict
against Student's t by hand, and the whole path (Python, MLflow run, CLI) end to end.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from titanicml import Trainer
from titanicml.backends.baseline import baseline_scores, judge_skill
from titanicml.exceptions import NoSkillError, TrainingError
from titanicml.result import TrainingResult
from titanicml.spec import TrainSpec


def test_binary_baseline_scores_by_hand():
    # Stratified 2-fold: each validation fold holds 3 zeros and 2 ones, each training
    # fold has shares 0.6 / 0.4, so the baseline says 0 with probability 0.6.
    y = np.array([0] * 6 + [1] * 4)
    scores = baseline_scores("binary", y, cv=2, seed=0)
    assert scores["cv_accuracy"] == pytest.approx(0.6)
    assert scores["cv_accuracy_std"] == pytest.approx(0.0)
    assert scores["cv_log_loss"] == pytest.approx(-(0.6 * math.log(0.6) + 0.4 * math.log(0.4)))
    assert scores["cv_roc_auc"] == pytest.approx(0.5)
    assert scores["cv_f1"] == pytest.approx(0.0)


def test_multiclass_baseline_scores_by_hand():
    y = np.array([0] * 4 + [1] * 2 + [2] * 2)  # each fold: 2, 1, 1; shares .5, .25, .25
    scores = baseline_scores("multiclass", y, cv=2, seed=3)
    assert scores["cv_accuracy"] == pytest.approx(0.5)
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert scores["cv_log_loss"] == pytest.approx(expected)


def test_regression_baseline_predicts_the_training_folds_mean():
    # Two rows, two folds: each row is predicted by the other one, 6 away.
    scores = baseline_scores("regression", np.array([0.0, 6.0]), cv=2, seed=0)
    assert scores["cv_mae"] == pytest.approx(6.0)
    assert scores["cv_rmse"] == pytest.approx(6.0)


def _judged(best: float, std: float, on_no_skill: str = "error") -> TrainingResult:
    """A result whose best model scored ``best`` ± ``std`` over 5 folds, on 60/40 labels."""
    board = pd.DataFrame(
        {
            "estimator": ["lgbm"],
            "family": ["LightGBM"],
            "selected": [True],
            "cv_accuracy": [best],
            "cv_accuracy_std": [std],
            "n_trials": [7],
            "fit_time": [0.1],
            "trial": [3],
            "config": ["{}"],
        }
    )
    result = TrainingResult(
        model=None,
        leaderboard=board,
        metrics={"accuracy": best, "accuracy_std": std},
        task="binary",
        metric="accuracy",
        spec=TrainSpec(target="y", cv=5, on_no_skill=on_no_skill),
        data=None,
        features=pd.DataFrame(),
        trials=pd.DataFrame(),
        backend="local",
    )
    y = np.array([0] * 60 + [1] * 40)  # every stratified fold: 12 zeros, 8 ones: 0.6
    judge_skill(result, y, result.spec)
    return result


def test_a_best_model_beyond_the_noise_passes():
    # t(0.95, 4 dof) = 2.1318 (table); standard error 0.01 / sqrt(4) = 0.005.
    result = _judged(best=0.62, std=0.01)
    verdict = result.extras["baseline"]
    assert verdict["skilled"] is True
    assert verdict["baseline"] == pytest.approx(0.6)
    assert verdict["margin"] == pytest.approx(2.1318 * 0.005, abs=1e-5)
    board = result.leaderboard
    assert board["estimator"].tolist() == ["lgbm", "baseline"]
    assert board["selected"].tolist() == [True, False]
    assert board.loc[1, "n_trials"] == 0
    (finding,) = result.data_checks.itertuples()
    assert (finding.check, finding.status, finding.severity) == ("model_skill", "passed", "info")


def test_a_best_model_within_the_noise_fails_the_search():
    # Same 0.02 gain, but a standard error of 0.015: margin 0.0320 > 0.02.
    with pytest.raises(NoSkillError, match="does not beat the trivial baseline") as caught:
        _judged(best=0.62, std=0.03)
    assert isinstance(caught.value, TrainingError)
    result = caught.value.result
    assert result.extras["baseline"]["margin"] == pytest.approx(2.1318 * 0.015, abs=1e-5)
    (finding,) = result.data_checks.itertuples()
    assert (finding.check, finding.status, finding.severity) == (
        "model_skill",
        "alerted",
        "critical",
    )
    assert "7 trial(s)" in finding.message


def test_on_no_skill_warn_keeps_the_model_with_the_alert():
    result = _judged(best=0.6, std=0.0, on_no_skill="warn")  # exactly the baseline
    assert result.extras["baseline"]["skilled"] is False
    assert result.data_checks["status"].tolist() == ["alerted"]


def test_unknown_on_no_skill_is_refused():
    with pytest.raises(ValueError, match="on_no_skill"):
        TrainSpec(target="y", on_no_skill="ignore")


def _noise(rows: int = 400) -> pd.DataFrame:
    """Features and a target drawn independently: nothing to learn."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(4)})
    frame["y"] = (rng.random(rows) < 0.3).astype(int)
    return frame


def test_a_search_on_noise_fails_its_run_and_saves_no_model(store):
    trainer = Trainer(
        target="y", time_budget=6, max_trials=6, tracking_uri=store, experiment_name="noise"
    )
    with pytest.raises(NoSkillError) as caught:
        trainer.fit(_noise())
    result = caught.value.result
    assert "baseline" in set(result.leaderboard["estimator"])
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("noise").experiment_id])
    assert run.info.status == "FAILED"
    assert "does not beat the trivial baseline" in run.data.tags["titanicml.error"]
    assert "model" not in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_the_titanic_search_beats_its_baseline(titanic_result):
    verdict = titanic_result.extras["baseline"]
    assert verdict["skilled"] is True
    assert verdict["best"] - verdict["baseline"] > 0.1  # about 0.83 against 0.62
    checks = titanic_result.data_checks.set_index("check")
    assert checks.loc["model_skill", "status"] == "passed"


def test_cli_shows_the_leaderboard_and_exits_1_on_noise(tmp_path, cli):
    path = tmp_path / "noise.csv"
    _noise().to_csv(path, index=False)
    out = cli(
        "train", "--data", path, "--target", "y", "--time-budget", "6", "--max-trials", "6",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Baseline (class shares)" in out.stdout  # the leaderboard was printed
    assert "model_skill" in out.stdout  # and the data checks, with the alert
    assert "titanicml: error: the best model" in out.stderr
    assert "Traceback" not in out.stderr
    warned = cli(
        "train", "--data", path, "--target", "y", "--time-budget", "6", "--max-trials", "6",
        "--on-no-skill", "warn", cwd=tmp_path,
    )  # fmt: skip
    assert warned.returncode == 0, warned.stderr
    assert "model_skill" in warned.stdout


def test_the_checks_are_reported_before_the_search_starts(titanic):
    events = []
    Trainer(target="Survived", time_budget=4, track=False, exclude=["Boat", "Body"]).fit(
        titanic,
        on_progress=lambda report: events.append("trial"),
        on_checks=lambda table: events.append(("checks", set(table["check"]))),
    )
    first, *rest = events
    assert first[0] == "checks" and "target_leakage" in first[1]
    assert "model_skill" not in first[1]  # that one needs the search
    assert rest and set(rest) == {"trial"}
