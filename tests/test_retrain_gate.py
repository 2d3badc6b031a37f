"""The retrain gate's statistics against hand calculations, and the holdout option."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from titanicml.exceptions import ConfigError, DataError
from titanicml.model.scoring import ScoredRows
from titanicml.retrain.gate import decide, judge, mcnemar, paired_bootstrap, paired_interval


def rights(b: int, c: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness of two models: b only the first right, c only the second."""
    first = [1] * b + [0] * c + [1] * both + [0] * neither
    second = [0] * b + [1] * c + [1] * both + [0] * neither
    return np.array(first, bool), np.array(second, bool)


def test_mcnemar_exact_for_few_discordant_pairs():
    # b = 1, c = 7: two-sided exact binomial p = 2 * P(X <= 1), X ~ Bin(8, 1/2).
    found = mcnemar(*rights(1, 7, 20, 5))
    by_hand = 2 * (math.comb(8, 0) + math.comb(8, 1)) / 2**8
    assert found["test"] == "mcnemar_exact" and (found["b"], found["c"]) == (1, 7)
    assert found["p_value"] == pytest.approx(by_hand)  # 0.0703125
    assert found["statistic"] == pytest.approx((abs(1 - 7) - 1) ** 2 / 8)
    # One-sided: P(X >= 7) = 9/256 ("not better" rejected), P(X <= 7) = 255/256.
    assert found["p_better"] == pytest.approx(9 / 256)
    assert found["p_worse"] == pytest.approx(255 / 256)


def test_mcnemar_statistic_is_zero_when_the_discordant_pairs_balance():
    # b = c: the continuity correction max(|b - c| - 1, 0)^2 gives 0, not 1 / n.
    assert mcnemar(*rights(5, 5, 10, 2))["statistic"] == 0.0
    assert mcnemar(*rights(20, 20, 10, 2))["statistic"] == 0.0
    assert mcnemar(*rights(20, 21, 10, 2))["statistic"] == 0.0  # |b - c| - 1 = 0


def test_mcnemar_chi_square_for_many_discordant_pairs():
    # b = 10, c = 30: (|10 - 30| - 1)^2 / 40 = 9.025; P(chi2_1 > 9.025) = erfc(sqrt(9.025/2)).
    found = mcnemar(*rights(10, 30, 50, 10))
    assert found["test"] == "mcnemar_chi2"
    assert found["statistic"] == pytest.approx(9.025)
    assert found["p_value"] == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))
    # One-sided, continuity corrected: z = (30 - 10 - 1) / sqrt(40); P(Z > z) = erfc(z/√2)/2.
    z = 19 / math.sqrt(40)
    assert found["p_better"] == pytest.approx(math.erfc(z / math.sqrt(2)) / 2)
    assert found["p_better"] == pytest.approx(found["p_value"] / 2)


def test_wald_interval_of_paired_proportions_by_hand():
    # n = 20, b = 2, c = 6: d = 4/20 = 0.2, sd = sqrt(8 - 16/20) / 20 = sqrt(7.2) / 20.
    difference, lower, upper = paired_interval(*rights(2, 6, 10, 2))
    assert difference == pytest.approx(0.2)
    assert lower == pytest.approx(0.2 - 1.959964 * 0.1341641, abs=1e-6)  # -0.062956
    assert upper == pytest.approx(0.2 + 1.959964 * 0.1341641, abs=1e-6)  # +0.462956
    # No discordant pair: the interval is the point 0.
    assert paired_interval(*rights(0, 0, 7, 3)) == (0.0, 0.0, 0.0)


def test_mcnemar_without_discordant_pairs_says_nothing():
    found = mcnemar(*rights(0, 0, 10, 3))
    assert found["p_value"] == 1.0 and found["statistic"] == 0.0


def test_paired_bootstrap_matches_a_numpy_loop():
    rng = np.random.default_rng(5)
    y = rng.normal(size=60)
    first = ScoredRows("regression", y, y + rng.normal(scale=1.0, size=60), None)
    second = ScoredRows("regression", y, y + rng.normal(scale=0.5, size=60), None)

    def rmse(truth, prediction, _proba):
        return float(np.sqrt(np.mean((truth - prediction) ** 2)))

    found = paired_bootstrap(rmse, first, second, replicates=300, seed=11, loss=True)
    # The same draws, one replicate at a time.
    draws = np.random.default_rng(11).integers(0, 60, size=(300, 60))
    gaps = []
    for rows in draws:
        gaps.append(rmse(y[rows], first.prediction[rows], None) -
                    rmse(y[rows], second.prediction[rows], None))  # fmt: skip
    gaps = np.array(gaps)
    assert found["lower"] == pytest.approx(np.percentile(gaps, 2.5))
    assert found["upper"] == pytest.approx(np.percentile(gaps, 97.5))
    assert found["difference"] == pytest.approx(
        rmse(y, first.prediction, None) - rmse(y, second.prediction, None)
    )
    assert found["p_value"] == pytest.approx(
        min(1, 2 * min((gaps <= 0).mean(), (gaps >= 0).mean()))
    )
    assert found["difference"] > 0 and found["lower"] > 0  # the second model is better


def test_paired_bootstrap_of_a_constant_gain_is_that_gain():
    # Every row: the challenger's absolute error is 0.5 smaller, so every resample's MAE
    # difference is exactly 0.5: the interval is [0.5, 0.5], "not better" has p = 0.
    y = np.arange(10, dtype=float)
    first = ScoredRows("regression", y, y + 1.0, None)
    second = ScoredRows("regression", y, y - 0.5, None)

    def mae(truth, prediction, _proba):
        return float(np.mean(np.abs(truth - prediction)))

    found = paired_bootstrap(mae, first, second, replicates=500, seed=3, loss=True)
    assert found["difference"] == pytest.approx(0.5)
    assert found["lower"] == pytest.approx(0.5) and found["upper"] == pytest.approx(0.5)
    assert found["p_better"] == 0.0 and found["p_worse"] == 1.0


def test_paired_bootstrap_matches_the_enumerated_resamples_of_two_rows():
    # Two rows, per-row MAE gaps +1 and -1: a resample of 2 rows takes row 1 twice (1/4,
    # mean gap +1), each once (1/2, 0) or row 2 twice (1/4, -1). So P*(d <= 0) = 3/4,
    # P*(d >= 0) = 3/4, the 2.5 and 97.5 percentiles are -1 and +1.
    y = np.zeros(2)
    first = ScoredRows("regression", y, np.array([1.0, 0.0]), None)
    second = ScoredRows("regression", y, np.array([0.0, 1.0]), None)

    def mae(truth, prediction, _proba):
        return float(np.mean(np.abs(truth - prediction)))

    found = paired_bootstrap(mae, first, second, replicates=4000, seed=1, loss=True)
    # 4000 draws: a share of 3/4 is within 0.03 (more than 4 standard errors).
    assert found["p_better"] == pytest.approx(0.75, abs=0.03)
    assert found["p_worse"] == pytest.approx(0.75, abs=0.03)
    assert (found["lower"], found["upper"]) == (-1.0, 1.0)
    assert found["difference"] == 0.0


def comparison(difference, lower, p_better, p_worse=1.0, source=None):
    found = {"difference": difference, "lower": lower, "p_better": p_better, "p_worse": p_worse}
    return found if source is None else {**found, "source": source}


def test_the_decision_needs_a_gain_beyond_chance_the_minimum_and_no_source_worse():
    good = [comparison(0.02, -0.1, 0.5, 0.5, "holdout"), comparison(0.1, 0.0, 0.01, 1, "recent")]
    assert decide(comparison(0.05, 0.01, 0.01), good, 0.0)[0]
    promote, reason = decide(comparison(0.05, 0.01, 0.2), good, 0.0)
    assert not promote and "not better beyond chance" in reason  # could be chance
    promote, reason = decide(comparison(0.05, 0.01, 0.01), good, 0.02)
    assert not promote and "lower bound +0.01 is below --min-improvement 0.02" in reason
    assert not decide(comparison(0.05, -0.001, 0.04), good, 0.0)[0]  # interval reaches 0
    worse = [comparison(-0.08, -0.2, 1.0, 0.01, "holdout"), good[1]]
    promote, reason = decide(comparison(0.05, 0.01, 0.01), worse, 0.0)
    assert not promote and "worse on the champion's holdout rows" in reason
    assert not decide(comparison(0.0, 0.0, 1.0), good, 0.0)[0]  # a tie keeps the champion


def simulated(rng, n, right_first, right_second):
    """Two classifiers of a binary label, right independently with the given chances."""
    y = rng.integers(0, 2, n)
    first = np.where(rng.random(n) < right_first, y, 1 - y)
    second = np.where(rng.random(n) < right_second, y, 1 - y)
    return ScoredRows("binary", y, first, None), ScoredRows("binary", y, second, None)


def accuracy(y, prediction, _proba):
    return float(np.mean(y == prediction))


def promotions(trials, right_first, right_second, seed):
    rng = np.random.default_rng(seed)
    sources = np.array(["holdout"] * 262 + ["recent"] * 50)
    promoted = 0
    for _ in range(trials):
        first, second = simulated(rng, len(sources), right_first, right_second)
        promoted += judge("accuracy", first, second, sources, accuracy)[2]
    return promoted / trials


def test_two_equal_models_are_promoted_at_most_5_percent_of_the_time():
    # 400 seeded gates of two classifiers each right 80 % of the time, independently:
    # any promotion is a false one.
    assert promotions(400, 0.8, 0.8, seed=0) <= 0.05
    # ... while a challenger right 90 % of the time is promoted nearly always.
    assert promotions(100, 0.8, 0.9, seed=1) >= 0.8


def test_a_challenger_worse_on_one_source_is_not_promoted():
    # Much better on the 262 holdout rows, much worse on the 50 recent ones.
    rng = np.random.default_rng(4)
    old = simulated(rng, 262, 0.7, 0.95)
    new = simulated(rng, 50, 0.95, 0.5)
    first = ScoredRows("binary", np.r_[old[0].y, new[0].y], np.r_[old[0].prediction,
                       new[0].prediction], None)  # fmt: skip
    second = ScoredRows("binary", first.y, np.r_[old[1].prediction, new[1].prediction], None)
    sources = ["holdout"] * 262 + ["recent"] * 50
    pooled, per_source, promote, reason = judge("accuracy", first, second, sources, accuracy)
    assert pooled["p_better"] < 0.05 and pooled["lower"] > 0  # pooled, it looks better
    assert [s["source"] for s in per_source] == ["holdout", "recent"]
    assert per_source[1]["p_worse"] < 0.05 and not per_source[1]["not_worse"]
    assert not promote and "worse on the recent production rows" in reason


def test_a_gate_too_small_is_refused_with_the_rows_it_needs(titanic_result, titanic):
    from titanicml.retrain.gate import gate_models

    rows = titanic.head(12)
    with pytest.raises(DataError, match=r"12 scorable row.*at least 30 \(18 more\)"):
        gate_models(titanic_result.model, titanic_result.model, rows, "Survived", "accuracy")


def test_a_model_equal_to_itself_is_not_promoted(titanic_result, titanic):
    from titanicml.retrain.gate import gate_models

    rows = titanic.sample(100, random_state=0)
    sources = ["holdout"] * 60 + ["recent"] * 40
    model = titanic_result.model
    found = gate_models(model, model, rows, "Survived", "roc_auc", replicates=300, sources=sources)
    assert found.test == "paired_bootstrap" and found.difference == 0 and not found.promote
    assert [(s["source"], s["n_rows"]) for s in found.sources] == [("holdout", 60), ("recent", 40)]
    assert "not better beyond chance" in found.reason and found.p_value == 1.0


def test_holdout_is_set_apart_stratified_and_seeded(titanic):
    from titanicml.data.holdout import split_holdout, without_rows

    frame = titanic[["Survived", "Pclass", "Sex", "Age"]]
    training, holdout, stratified = split_holdout(frame, "Survived", "binary", 0.2, seed=3)
    again = split_holdout(frame, "Survived", "binary", 0.2, seed=3)[1]
    assert stratified and len(holdout) == math.ceil(0.2 * len(frame))
    assert len(training) + len(holdout) == len(frame)
    pd.testing.assert_frame_equal(holdout, again)
    share = frame["Survived"].mean()
    assert abs(holdout["Survived"].mean() - share) < 0.01
    # Rows given instead of a draw leave the training rows by their values.
    left, _, _ = split_holdout(frame, "Survived", "binary", 0.2, 3, rows=holdout)
    assert len(without_rows(left, holdout)) == len(left)
    assert len(left) <= len(training)


def test_a_holdout_share_that_leaves_no_row_is_refused(titanic):
    from titanicml.data.holdout import split_holdout
    from titanicml.spec import TrainSpec

    with pytest.raises(ConfigError, match="holdout must be a share"):
        TrainSpec(target="Survived", holdout=0.9)
    with pytest.raises(ConfigError, match="must leave rows on both sides"):
        split_holdout(titanic.head(1), "Survived", "binary", 0.2, 0)


def test_cli_refuses_a_bad_canary_with_exit_2(cli):
    out = cli("retrain", "--endpoint", "nowhere", "--canary", "150")
    assert out.returncode == 2 and "--canary" in out.stderr
    out = cli("retrain", "--endpoint", "nowhere", "--dry-run")
    assert out.returncode == 2 and "nowhere" in out.stderr
    out = cli("retrain", "--if-alert", "-f", "no-such-monitor.yml")
    assert out.returncode == 2 and "no monitor schedule file at no-such-monitor.yml" in out.stderr


def test_cli_help_states_the_rule_and_every_exit_status(cli):
    text = " ".join(cli("retrain", "--help").stdout.split())
    assert "one-sided paired test rejects 'not better' at 5 % and the 95 % interval" in text
    assert "3 the gate promoted the challenger but its rollout failed" in text
    assert "2 an error of yours" in text and "--window" in text and "--reference" in text


def test_exit_codes_of_the_results():
    from titanicml.retrain.run import EXIT_ROLLOUT_FAILED, RetrainResult

    failed = RetrainResult("e", "rollout_failed", "m:1", "m:2", error="the canary died")
    assert failed.exit_code == EXIT_ROLLOUT_FAILED == 3
    assert "rollout failed: the canary died" in failed.summary()
    assert RetrainResult("e", "no_alert").exit_code == 0


def test_only_drift_and_performance_alerts_trigger_a_retrain():
    from titanicml.retrain.run import retrain_triggers

    table = pd.DataFrame(
        {
            "signal": ["data_quality", "data_drift", "data_drift", "estimated_performance"],
            "feature": ["Age", "Age", "Sex", None],
            "metric": [
                "out_of_bounds_rate",
                "normalized_wasserstein_distance",
                "jensen_shannon_distance",
                "accuracy",
            ],
            "alert": [True, False, False, False],
        }
    )
    triggers, ignored = retrain_triggers(table)
    assert triggers == [] and ignored == ["data_quality.Age.out_of_bounds_rate"]
    table.loc[3, "alert"] = True
    triggers, ignored = retrain_triggers(table)
    assert triggers == ["estimated_performance.all.accuracy"]
    assert ignored == ["data_quality.Age.out_of_bounds_rate"]


def test_trainer_holdout_is_scored_logged_and_shipped(titanic, store, tmp_path):
    import mlflow

    from titanicml import Trainer
    from titanicml.model.layout import read_holdout, read_metadata

    frame = titanic[["Survived", "Pclass", "Sex", "Age", "Fare"]]
    result = Trainer(
        target="Survived", time_budget=4, estimators=["lgbm"], ensemble=False, max_trials=2,
        holdout=0.25, tracking_uri=store,
    ).fit(frame)  # fmt: skip
    facts = result.extras["holdout"]
    assert facts["rows"] == len(result.holdout) == math.ceil(0.25 * len(frame))
    accuracy = (result.predict(result.holdout) == result.holdout["Survived"]).mean()
    assert facts["metrics"]["accuracy"] == pytest.approx(accuracy)
    metrics = mlflow.tracking.MlflowClient(store).get_run(result.run_id).data.metrics
    assert metrics["holdout_accuracy"] == pytest.approx(accuracy)
    assert metrics["holdout_rows"] == facts["rows"]
    saved = result.save(tmp_path / "model")
    shipped = read_holdout(saved)
    pd.testing.assert_frame_equal(shipped, result.holdout, check_dtype=False)
    assert read_metadata(saved)["holdout"]["rows"] == facts["rows"]
    assert read_metadata(saved)["spec"]["holdout"] == 0.25
    # The search saw the other rows only: the training profile counts them.
    assert result.profile["n_rows"] == len(frame) - facts["rows"]
    assert result.data.n_rows == len(frame)  # the data given, holdout included


def test_without_a_holdout_nothing_is_set_apart(saved_model, titanic_result):
    from titanicml.model.layout import read_holdout, read_metadata

    assert titanic_result.spec.holdout == 0 and titanic_result.holdout is None
    assert read_holdout(saved_model) is None
    assert "holdout" not in read_metadata(saved_model)


def test_an_azure_upload_without_the_holdout_rows_gets_its_own_version(titanic):
    from titanicml.backends.azure.data import asset_identity
    from titanicml.data.resolve import DataRef

    frame = titanic.drop(columns=["Boat", "Body"])
    ref = DataRef("titanic-dataset@1", "0" * 64, len(frame), frame.shape[1], "titanic-dataset@1")
    assert asset_identity(ref, frame, frame.shape[1]) == ("titanic-dataset", "1")
    name, version = asset_identity(ref, frame.iloc[:-100], frame.shape[1])
    assert name == "titanic-dataset" and version.startswith("1-") and len(version) == 10


def test_train_holdout_flag(cli, titanic, tmp_path, store):
    path = tmp_path / "titanic.csv"
    titanic[["Survived", "Pclass", "Sex", "Age"]].to_csv(path, index=False)
    common = ("train", "--data", str(path), "--target", "Survived", "--tracking-uri", store)
    refused = cli(*common, "--holdout", "0.9")
    assert refused.returncode == 2 and "holdout must be a share of the rows" in refused.stderr
    out = cli(*common, "--holdout", "0.2", "--time-budget", "4", "--estimators", "lgbm",
              "--max-trials", "2", "--no-ensemble")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "on 262 row(s) set apart before the search" in out.stdout
