"""The retrain gate's statistics against hand calculations, and the holdout option."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from titanicml.exceptions import ConfigError, DataError
from titanicml.model.scoring import ScoredRows
from titanicml.retrain.gate import decide, mcnemar, paired_bootstrap


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


def test_mcnemar_chi_square_for_many_discordant_pairs():
    # b = 10, c = 30: (|10 - 30| - 1)^2 / 40 = 9.025; P(chi2_1 > 9.025) = erfc(sqrt(9.025/2)).
    found = mcnemar(*rights(10, 30, 50, 10))
    assert found["test"] == "mcnemar_chi2"
    assert found["statistic"] == pytest.approx(9.025)
    assert found["p_value"] == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))


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


def test_the_decision_needs_a_gain_beyond_chance_and_the_minimum():
    assert decide(0.05, 0.01, 0.0)[0]
    assert not decide(0.05, 0.2, 0.0)[0]  # could be chance
    assert not decide(0.05, 0.01, 0.1)[0]  # below --min-improvement
    promote, reason = decide(-0.05, 0.01, 0.0)
    assert not promote and "worse" in reason
    assert not decide(0.0, 1.0, 0.0)[0]  # a tie keeps the champion


def test_a_gate_too_small_is_refused_with_the_rows_it_needs(titanic_result, titanic):
    from titanicml.retrain.gate import gate_models

    rows = titanic.head(12)
    with pytest.raises(DataError, match=r"12 scorable row.*at least 30 \(18 more\)"):
        gate_models(titanic_result.model, titanic_result.model, rows, "Survived", "accuracy")


def test_a_model_equal_to_itself_is_not_promoted(titanic_result, titanic):
    from titanicml.retrain.gate import gate_models

    rows = titanic.sample(100, random_state=0)
    found = gate_models(titanic_result.model, titanic_result.model, rows, "Survived", "roc_auc")
    assert found.test == "paired_bootstrap" and found.difference == 0 and not found.promote


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
