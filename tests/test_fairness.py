"""Fairness by group: hand-counted figures, bootstrap intervals, small groups, bins, mitigation."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from test_oof import (  # noqa: F401 (fixtures)
    fixture_holdout_result,
    fixture_oof_model,
    fixture_oof_result,
)

from titanicml.exceptions import ConfigError, ExtraNotInstalledError
from titanicml.fairness import propose_sensitive
from titanicml.fairness.groups import group_column
from titanicml.fairness.measures import measure_groups


def _planted() -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Three groups with counts chosen by hand.

    a: 40 rows, 20 positives of which 15 predicted positive, 20 negatives of which 5.
    b: 35 rows, 10 positives of which 5 predicted positive, 25 negatives of which 2.
    c: 5 rows, all predicted positive (too small to compare).
    """
    a_true = [1] * 20 + [0] * 20
    a_pred = [1] * 15 + [0] * 5 + [1] * 5 + [0] * 15
    b_true = [1] * 10 + [0] * 25
    b_pred = [1] * 5 + [0] * 5 + [1] * 2 + [0] * 23
    c_true, c_pred = [0, 0, 1, 0, 1], [1] * 5
    y_true = np.array(a_true + b_true + c_true)
    y_pred = np.array(a_pred + b_pred + c_pred)
    groups = pd.Series(["a"] * 40 + ["b"] * 35 + ["c"] * 5)
    return y_true, y_pred, groups


def _resampled_rows(groups: pd.Series, n: int, seed: int) -> dict[str, list[np.ndarray]]:
    """The stratified resampling, one resample at a time: each group's rows drawn within
    the group, groups in sorted order, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    draws = {}
    for group in sorted(set(groups)):
        rows = np.flatnonzero((groups == group).to_numpy())
        draws[group] = [rows[rng.integers(0, len(rows), size=len(rows))] for _ in range(n)]
    return draws


def test_metrics_by_group_and_disparities_equal_the_hand_counts():
    y_true, y_pred, groups = _planted()
    measures = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=50)
    table = measures.by_group
    assert table.loc["a", ["accuracy", "selection_rate", "tpr", "fpr"]].tolist() == pytest.approx(
        [30 / 40, 20 / 40, 15 / 20, 5 / 20]
    )
    assert table.loc["b", ["accuracy", "selection_rate", "tpr", "fpr"]].tolist() == pytest.approx(
        [28 / 35, 7 / 35, 5 / 10, 2 / 25]
    )
    assert table["count"].tolist() == [40, 35, 5]
    disparities = measures.disparities.set_index("measure")["value"]
    assert disparities["demographic_parity_difference"] == pytest.approx(0.5 - 0.2)
    assert disparities["demographic_parity_ratio"] == pytest.approx(0.2 / 0.5)
    assert disparities["equalized_odds_difference"] == pytest.approx(max(0.75 - 0.5, 0.25 - 0.08))
    assert disparities["equalized_odds_ratio"] == pytest.approx(min(0.5 / 0.75, 0.08 / 0.25))
    # fairlearn's own functions on the compared groups agree.
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    compared = (groups != "c").to_numpy()
    kwargs = {"sensitive_features": groups[compared]}
    assert disparities["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true[compared], y_pred[compared], **kwargs)
    )
    assert disparities["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true[compared], y_pred[compared], **kwargs)
    )


def test_small_groups_are_flagged_shown_and_not_compared():
    y_true, y_pred, groups = _planted()
    measures = measure_groups("binary", y_true, y_pred, groups, min_group_size=30, n_bootstrap=20)
    assert measures.by_group["small"].tolist() == [False, False, True]
    assert measures.by_group.loc["c", "selection_rate"] == 1.0  # shown
    row = measures.disparities.set_index("measure").loc["demographic_parity_difference"]
    # Compared, c's selection rate 1.0 would make it 1.0 - 0.2.
    assert row["value"] == pytest.approx(0.3) and row["compared"] == 2
    everyone = measure_groups("binary", y_true, y_pred, groups, min_group_size=1, n_bootstrap=20)
    dp = everyone.disparities.set_index("measure").loc["demographic_parity_difference", "value"]
    assert dp == pytest.approx(0.8)


def test_bootstrap_interval_is_a_stratified_basic_bootstrap():
    y_true, y_pred, groups = _planted()
    n, seed = 400, 7
    measures = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=n, seed=seed)
    # The same resampling, then the difference of selection rates of a and b.
    draws = _resampled_rows(groups, n, seed)
    differences, tprs_a = [], []
    for b in range(n):
        rate_a = y_pred[draws["a"][b]].mean()
        rate_b = y_pred[draws["b"][b]].mean()
        differences.append(abs(rate_a - rate_b))
        positive = y_true[draws["a"][b]] == 1
        tprs_a.append(y_pred[draws["a"][b]][positive].mean())
    # The union of the basic (quantiles reflected about the value) and percentile intervals.
    row = measures.disparities.set_index("measure").loc["demographic_parity_difference"]
    q_low, q_high = np.percentile(differences, [2.5, 97.5])
    value = abs(y_pred[groups == "a"].mean() - y_pred[groups == "b"].mean())
    assert row["value"] == pytest.approx(value)
    low = max(0.0, min(2 * value - q_high, q_low))
    high = min(1.0, max(2 * value - q_low, q_high))
    assert (row["low"], row["high"]) == pytest.approx((low, high))
    assert low < row["value"] < high
    tpr_low, tpr_high = np.percentile(tprs_a, [2.5, 97.5])
    assert measures.by_group.loc["a", "tpr_low"] == pytest.approx(tpr_low)
    assert measures.by_group.loc["a", "tpr_high"] == pytest.approx(tpr_high)
    # Seeded: the same seed, the same interval; another seed, another.
    again = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=n, seed=seed)
    pd.testing.assert_frame_equal(again.disparities, measures.disparities)
    other = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=n, seed=seed + 1)
    assert not other.disparities["low"].equals(measures.disparities["low"])


def test_ratio_interval_is_centred_on_the_estimate_not_on_the_resamples():
    # A min/max ratio over groups is biased low on resamples; the percentile interval of
    # the resamples sat below the estimate (0.686 in [0.100, 0.696]); the basic one not,
    # and the interval given holds both.
    y_true, y_pred, groups = _planted()
    n, seed = 500, 3
    measures = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=n, seed=seed)
    draws = _resampled_rows(groups, n, seed)

    def rates(rows: np.ndarray) -> tuple[float, float]:
        positive = y_true[rows] == 1
        return y_pred[rows][positive].mean(), y_pred[rows][~positive].mean()

    def eo_ratio(a_rows: np.ndarray, b_rows: np.ndarray) -> float:
        (tpr_a, fpr_a), (tpr_b, fpr_b) = rates(a_rows), rates(b_rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            # Undefined (NaN) when either ratio is.
            return np.minimum(
                min(tpr_a, tpr_b) / max(tpr_a, tpr_b), min(fpr_a, fpr_b) / max(fpr_a, fpr_b)
            )

    value = eo_ratio(np.flatnonzero(groups == "a"), np.flatnonzero(groups == "b"))
    replicates = np.array([eo_ratio(draws["a"][b], draws["b"][b]) for b in range(n)])
    q_low, q_high = np.nanpercentile(replicates, [2.5, 97.5])
    row = measures.disparities.set_index("measure").loc["equalized_odds_ratio"]
    assert row["value"] == pytest.approx(value)
    expected = (max(0.0, min(2 * value - q_high, q_low)), min(1.0, max(2 * value - q_low, q_high)))
    assert (row["low"], row["high"]) == pytest.approx(expected)
    # The resamples' median is below the estimate (the bias); the interval holds it well inside.
    assert np.nanmedian(replicates) < value
    assert row["low"] < value < row["high"]


def test_equal_rates_do_not_give_a_zero_width_interval():
    # Two groups of 60 with the same selection rate: the basic interval was [0, 0].
    y_pred = np.array(([1] * 30 + [0] * 30) * 2)
    y_true = np.array([1, 0] * 60)
    groups = pd.Series(["a"] * 60 + ["b"] * 60)
    measures = measure_groups("binary", y_true, y_pred, groups, n_bootstrap=500, seed=1)
    table = measures.disparities.set_index("measure")
    assert table.loc["demographic_parity_difference", "value"] == 0.0
    assert table.loc["demographic_parity_difference", "high"] > 0.1
    assert table.loc["demographic_parity_ratio", "value"] == 1.0
    assert table.loc["demographic_parity_ratio", "low"] < 0.8


def test_a_true_gap_above_the_limit_is_seldom_said_within():
    # True selection rates 0.40 and 0.55 (gap 0.15) in two groups of 60, limit 0.1: a
    # 95 % interval may say "within" (its high end <= 0.1) in about 2.5 % of samples.
    rng = np.random.default_rng(2026)
    runs, limit = 200, 0.1
    groups = pd.Series(["a"] * 60 + ["b"] * 60)
    rates = np.repeat([0.40, 0.55], 60)
    within = 0
    for _ in range(runs):
        y_pred = (rng.random(120) < rates).astype(int)
        y_true = rng.integers(0, 2, 120)
        measures = measure_groups(
            "binary", y_true, y_pred, groups, n_bootstrap=200, seed=int(rng.integers(1 << 31))
        )
        row = measures.disparities.set_index("measure").loc["demographic_parity_difference"]
        within += row["high"] <= limit
    assert within / runs <= 0.05


def test_numeric_columns_are_binned_and_the_bins_shown(titanic):
    quartiles = group_column(titanic, "Age")
    ages = titanic["Age"]
    edges = np.nanquantile(ages, [0, 0.25, 0.5, 0.75, 1])
    assert quartiles.bins == pytest.approx(list(edges))
    assert (quartiles.groups == "missing").sum() == ages.isna().sum()
    young = quartiles.groups[ages <= edges[1]]
    assert set(young) == {f"[{edges[0]:g}, {edges[1]:g}]"}
    assert quartiles.order[0] == f"[{edges[0]:g}, {edges[1]:g}]"
    chosen = group_column(titanic, "Age", [0, 18, 40, 80])
    assert chosen.bins == [0.0, 18.0, 40.0, 80.0]
    assert (chosen.groups == "(18, 40]").sum() == ((ages > 18) & (ages <= 40)).sum()
    assert (chosen.groups == "[0, 18]").sum() == (ages <= 18).sum()
    # Few values: the values themselves, no bins.
    classes = group_column(titanic, "Pclass")
    assert classes.bins is None and set(classes.groups) == {"1", "2", "3"}
    with pytest.raises(ConfigError, match="not a numeric column"):
        group_column(titanic, "Sex", 3)
    with pytest.raises(ConfigError, match="'Gender' is not in the data"):
        group_column(titanic, "Gender")


def test_sensitive_columns_are_proposed_by_name_never_assumed(titanic, titanic_result):
    columns = [
        "PassengerId",
        "Sex",
        "Age",
        "Stage",
        "passenger_gender",
        "HomeNationality",
        "Pclass",
    ]
    assert propose_sensitive(columns) == ["Sex", "Age", "passenger_gender", "HomeNationality"]
    with pytest.raises(ConfigError, match=r"never assumes one.*suggest one: Sex, Age"):
        titanic_result.fairness(titanic)


def test_out_of_fold_fairness_of_the_training_rows_matches_a_groupby(titanic, oof_result):
    titanic_result = oof_result
    report = titanic_result.fairness(titanic, ["Sex", "Pclass"], n_bootstrap=200)
    assert report.source == "out-of-fold" and report.positive_label == 1
    oof = titanic_result.oof.assign(Sex=titanic["Sex"].to_numpy())
    hits = (oof["label"] == oof["prediction"]).groupby(oof["Sex"]).mean()
    selected = (oof["prediction"] == 1).groupby(oof["Sex"]).mean()
    table = report.analyses["Sex"].measures.by_group
    assert table["accuracy"].to_dict() == pytest.approx(hits.to_dict())
    assert table["selection_rate"].to_dict() == pytest.approx(selected.to_dict())
    assert report.analyses["Sex"].disparity("demographic_parity_difference") == pytest.approx(
        selected.max() - selected.min()
    )
    assert set(report.analyses) == {"Sex", "Pclass", "Sex & Pclass"}
    checks = {(f.check, f.column): f for f in report.findings}
    sex_parity = checks[("demographic_parity", "Sex")]
    assert (
        sex_parity.status == "alerted" and sex_parity.figures["low"] < sex_parity.figures["value"]
    )
    json.dumps(report.to_dict())  # JSON-ready
    # A limit inside the interval: neither above nor within, inconclusive.
    low, high = sex_parity.figures["low"], sex_parity.figures["high"]
    straddled = titanic_result.fairness(
        titanic, ["Sex"], n_bootstrap=200, max_difference=(low + high) / 2
    )
    verdict = next(f for f in straddled.findings if f.check == "demographic_parity")
    assert verdict.figures["verdict"] == "inconclusive" and "inconclusive" in verdict.message
    assert sex_parity.figures["verdict"] == "above"
    # Rows that are not the training rows: the model's own predictions.
    other = titanic_result.fairness(titanic.head(400), ["Sex"], n_bootstrap=50)
    assert other.source == "model" and other.n_rows == 400
    # ... and it says so: on training rows they would be in-sample.
    assert "not the model's 1309 training rows" in other.note
    assert any(f.check == "fairness_predictions" for f in other.findings)
    assert report.note == ""


def test_mitigation_candidate_has_lower_disparity_and_needs_the_sensitive_column(
    titanic, titanic_result
):
    report = titanic_result.fairness(titanic, ["Sex"], n_bootstrap=100, mitigate=True)
    candidate = report.mitigation["Sex"]
    before = report.analyses["Sex"].disparity("demographic_parity_difference")
    after = candidate.measures.disparities.set_index("measure").loc[
        "demographic_parity_difference", "value"
    ]
    assert after < before / 2
    comparison = report.comparison()
    assert comparison["candidate"].tolist() == ["model", "ThresholdOptimizer(demographic_parity)"]
    assert any(
        f.check == "fairness_mitigation" and "prediction time" in f.message for f in report.findings
    )
    labels = candidate.predict(titanic.head(50))
    assert set(labels) <= {0, 1}
    # The model itself is unchanged: mitigation is never applied silently.
    np.testing.assert_array_equal(
        titanic_result.predict(titanic.head(50)), titanic_result.model.predict(titanic.head(50))
    )
    with pytest.raises(ConfigError, match="'Sex' is not in the data"):
        candidate.predict(titanic.head(5).drop(columns=["Sex"]))
    # Groups too small (or of one label) for a threshold of their own keep the model's:
    # Embarked has 2 rows without a port; an unseen port at prediction time too.
    ports = titanic_result.fairness(titanic, ["Embarked"], n_bootstrap=20, mitigate=True)
    by_port = ports.mitigation["Embarked"]
    assert by_port.thresholded == ["C", "Q", "S"]
    unseen = titanic.head(20).assign(Embarked="Z")
    np.testing.assert_array_equal(by_port.predict(unseen), titanic_result.predict(unseen))
    gaps = titanic["Embarked"].isna().to_numpy()
    own = (ports.analyses["Embarked"].measures.by_group.index == "missing").any()
    assert own and gaps.sum() == 2


def test_cli_fairness_json_and_the_proposal_exit(cli, titanic, oof_model, tmp_path):
    saved_model = oof_model
    data = tmp_path / "titanic.csv"
    titanic.to_csv(data, index=False)
    done = cli("fairness", "--model", saved_model, "--data", data, "--sensitive", "Sex", "Age",
               "--bins", "Age=0,18,40,80", "--bootstrap", "100", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "out-of-fold"
    assert report["bins"] == {"Age": [0.0, 18.0, 40.0, 80.0]}
    groups = {(r["sensitive"], r["group"]) for r in report["by_group"]}
    assert ("Age", "[0, 18]") in groups and ("Sex", "female") in groups
    shown = cli("fairness", "--model", saved_model, "--data", data, "--sensitive", "Pclass",
                "--bootstrap", "50")  # fmt: skip
    assert shown.returncode == 0 and "demographic_parity_difference" in shown.stdout
    no_file = cli("fairness", "--model", saved_model, "--sensitive", "Sex")
    assert no_file.returncode == 2 and "pass the labelled rows with --data FILE" in no_file.stderr
    proposal = cli("fairness", "--model", saved_model, "--data", data)
    assert proposal.returncode == 2
    assert "--sensitive Sex Age" in proposal.stderr and "Traceback" not in proposal.stderr
    bad = cli("fairness", "--model", saved_model, "--data", data, "--sensitive", "Sex",
              "--bins", "Sex")  # fmt: skip
    assert bad.returncode == 2 and "COL=N" in bad.stderr


def test_without_fairlearn_the_error_names_the_extra(titanic, titanic_result, monkeypatch):
    monkeypatch.setitem(sys.modules, "fairlearn", None)
    with pytest.raises(ExtraNotInstalledError, match=r'pip install "titanicml\[explain\]"'):
        titanic_result.fairness(titanic, ["Sex"])


def test_regression_fairness_measures_mae_and_r2_by_group(regression_result):
    from sklearn.metrics import r2_score

    result, data = regression_result
    report = result.fairness(data, ["sex"], n_bootstrap=100)
    table = report.analyses["sex"].measures.by_group
    assert len(table) == 2 and not table["small"].any()
    oof = result.oof
    predicted = (
        oof["prediction"].to_numpy() if report.source == "out-of-fold" else result.predict(data)
    )
    groups = group_column(data, "sex").groups.to_numpy()
    truth = data["target"].to_numpy()
    for group in table.index:
        rows = groups == group
        assert table.loc[group, "mae"] == pytest.approx(np.abs(truth - predicted)[rows].mean())
        assert table.loc[group, "r2"] == pytest.approx(r2_score(truth[rows], predicted[rows]))
    assert report.analyses["sex"].disparity("mae_difference") == pytest.approx(
        table["mae"].max() - table["mae"].min()
    )
    assert {"mae_ratio", "r2_difference"} <= set(report.disparities()["measure"])


def test_multiclass_measures_accuracy_by_group():
    # g1: 40 rows, 30 right; g2: 50 rows, 45 right (3 classes).
    y_true = np.array([0, 1, 2, 0] * 10 + [2, 1, 0, 1, 2] * 10)
    y_pred = y_true.copy()
    y_pred[:10] = (y_true[:10] + 1) % 3
    y_pred[40:45] = (y_true[40:45] + 2) % 3
    groups = pd.Series(["g1"] * 40 + ["g2"] * 50)
    measures = measure_groups("multiclass", y_true, y_pred, groups, n_bootstrap=50)
    assert measures.by_group["accuracy"].tolist() == pytest.approx([30 / 40, 45 / 50])
    assert list(measures.disparities["measure"]) == ["accuracy_difference"]
    assert measures.disparities["value"].iloc[0] == pytest.approx(45 / 50 - 30 / 40)
    assert measures.overall["accuracy"] == pytest.approx(75 / 90)


def test_a_holdout_models_fairness_uses_oof_on_its_training_rows(titanic, holdout_result):
    report = holdout_result.fairness(titanic, ["Sex"], n_bootstrap=50)
    assert report.source == "out-of-fold" and report.n_rows == 1047
    selected = (holdout_result.oof["prediction"] == 1).to_numpy()
    # Name and ticket tell the Titanic's passengers apart (two names are shared).
    held = pd.MultiIndex.from_frame(holdout_result.holdout[["Name", "Ticket"]])
    training = ~pd.MultiIndex.from_frame(titanic[["Name", "Ticket"]]).isin(held)
    sexes = titanic.loc[training, "Sex"].to_numpy()
    rates = pd.Series(selected).groupby(sexes).mean()
    table = report.analyses["Sex"].measures.by_group
    assert table["selection_rate"].to_dict() == pytest.approx(rates.to_dict())


def test_in_sample_predictions_are_said_in_a_finding(titanic, oof_result):
    import dataclasses

    without = dataclasses.replace(oof_result, oof=None)
    report = without.fairness(titanic, ["Sex"], n_bootstrap=20)
    assert report.source == "model" and "in-sample" in report.note
    said = [f for f in report.findings if f.check == "fairness_predictions"]
    assert said and "optimistic" in said[0].message


def test_cli_fairness_of_a_holdout_model_on_its_training_file(
    cli, titanic, holdout_result, tmp_path
):
    model = holdout_result.save(tmp_path / "model")
    data = tmp_path / "titanic.csv"
    titanic.to_csv(data, index=False)
    done = cli("fairness", "--model", model, "--data", data, "--sensitive", "Sex", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["source"] == "out-of-fold" and found["n_rows"] == 1047
