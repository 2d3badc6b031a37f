"""Data checks: each check firing and not firing, the leakage modes, and Titanic."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from titanicml._utils.sklearn_compat import cross_fitting_folds, target_encoder
from titanicml.data.checks import CHECKS, CheckReport, run_checks
from titanicml.data.checks.leakage import find_leaks
from titanicml.data.columns import MAX_ONE_HOT_CATEGORIES, classify_column
from titanicml.exceptions import ColumnError, ConfigError, DataError
from titanicml.features import plan_features
from titanicml.findings import FINDING_COLUMNS, Finding, findings_frame

HONEST = ("Sex", "Pclass", "Fare", "Name", "Ticket", "Cabin", "Age", "Embarked", "HomeDest")


def _frame(n: int = 200, seed: int = 0, **columns) -> pd.DataFrame:
    """Noise features and a balanced binary target ``y``, plus the given columns."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
            "y": rng.permutation(np.arange(n) % 2),
        }
    )
    return frame.assign(**columns)


def _rows(report: CheckReport, check: str) -> pd.DataFrame:
    return report.table[report.table["check"] == check]


def _flagged(report: CheckReport, check: str, status: str | None = None) -> set[str]:
    rows = _rows(report, check)
    if status is not None:
        rows = rows[rows["status"] == status]
    return set(rows["column"].dropna())


@pytest.fixture(scope="module")
def titanic_report(titanic) -> CheckReport:
    return run_checks(titanic, "Survived", "binary")


@pytest.fixture(scope="module")
def clean_report() -> CheckReport:
    """Noise features only; ``on_leakage="error"`` must not raise on them."""
    return run_checks(_frame(), "y", "binary", on_leakage="error")


# --- Titanic ------------------------------------------------------------------------------


def test_titanic_leaks_are_exactly_boat_and_body(titanic_report):
    # The leakage detector's verdicts, in column order, as run_checks reports them.
    assert titanic_report.leaking == ["Boat", "Body"]
    assert titanic_report.leakage_scores["leaks"].sum() == 2
    assert {"Boat", "Body"} <= set(titanic_report.dropped)
    rows = _rows(titanic_report, "target_leakage").set_index("column")
    assert set(rows["status"]) == {"fixed"}
    assert "Boat alone predicts Survived with CV ROC AUC 0.9" in rows.loc["Boat", "message"]
    assert rows.loc["Boat", "message"].endswith("probably recorded after the outcome; dropped")
    assert "Body is present in 121 rows (9.2 %)" in rows.loc["Body", "message"]
    assert "Survived is 0 in 100 %" in rows.loc["Body", "message"]


def test_titanic_honest_strong_features_are_kept(titanic_report):
    scores = titanic_report.leakage_scores.set_index("column")
    for name in HONEST:
        assert name not in titanic_report.dropped
        assert scores.loc[name, "score"] < 0.85, name
    assert scores.loc["Sex", "score"] == pytest.approx(0.76, abs=0.03)
    assert scores.loc["Boat", "score"] >= 0.95
    assert scores.loc["Body", "pure_subset"].startswith("is present in 121 rows")


def test_titanic_report_other_findings(titanic_report):
    report = titanic_report
    assert _flagged(report, "id_like", "fixed") == set()
    assert _flagged(report, "high_missingness", "alerted") == {"Cabin"}
    assert _flagged(report, "missing_values", "fixed") == {"Age", "Fare", "Embarked", "HomeDest"}
    # Name and HomeDest are free text; Ticket and Cabin are codes with many values.
    assert _flagged(report, "high_cardinality", "alerted") == {"Ticket", "Cabin"}
    assert _rows(report, "class_imbalance")["status"].tolist() == ["passed"]
    assert set(report.dropped) == {"Boat", "Body"}


def test_report_shape_and_printing(titanic_report):
    table = titanic_report.to_frame()
    assert list(table.columns) == ["check", "column", "status", "severity", "message"]
    assert list(dict.fromkeys(table["check"])) == list(CHECKS)  # every check, in order
    assert table.loc[table["status"] == "passed", "column"].isna().all()
    assert table["message"].str.len().min() > 20
    text = str(titanic_report)
    assert text.splitlines()[0].startswith("Data checks for 'Survived' (binary): 6 fixed")
    assert "Boat alone predicts Survived" in text
    assert len(titanic_report.alerts) == 3
    table.loc[0, "message"] = "changed"
    assert titanic_report.table.loc[0, "message"] != "changed"


def test_same_seed_same_report_and_input_unchanged(titanic):
    before = titanic.copy()
    first = run_checks(titanic, "Survived", "binary", seed=7)
    again = run_checks(titanic, "Survived", "binary", seed=7)
    pd.testing.assert_frame_equal(first.table, again.table)
    pd.testing.assert_frame_equal(first.leakage_scores, again.leakage_scores)
    pd.testing.assert_frame_equal(titanic, before)


@settings(max_examples=3, deadline=None)
@given(
    resample_seed=st.integers(0, 2**32 - 1),
    check_seed=st.integers(0, 10_000),
    fraction=st.floats(0.7, 1.0),
    bootstrap=st.booleans(),
)
def test_resampled_titanic_flags_the_same_columns(
    titanic, resample_seed, check_seed, fraction, bootstrap
):
    if bootstrap:
        sample = titanic.sample(frac=fraction, replace=True, random_state=resample_seed)
    else:
        sample = titanic.sample(frac=1.0, random_state=resample_seed)
    report = run_checks(sample, "Survived", "binary", seed=check_seed)
    assert set(report.leaking) == {"Boat", "Body"}
    assert _flagged(report, "id_like") == set()


# --- on_leakage ---------------------------------------------------------------------------


def test_on_leakage_warn_keeps_the_columns(titanic):
    report = run_checks(titanic, "Survived", "binary", on_leakage="warn")
    assert set(report.leaking) == {"Boat", "Body"}
    assert not {"Boat", "Body"} & set(report.dropped)
    assert _flagged(report, "target_leakage", "alerted") == {"Boat", "Body"}
    assert "kept because on_leakage='warn'" in _rows(report, "target_leakage")["message"].iloc[0]
    # Kept, so the other checks see them: Body is 91 % missing.
    assert "Body" in _flagged(report, "high_missingness", "alerted")


def test_on_leakage_error_names_columns_and_fixes(titanic):
    with pytest.raises(DataError) as caught:
        run_checks(titanic, "Survived", "binary", on_leakage="error")
    message = str(caught.value)
    assert "Boat, Body" in message
    assert "exclude=['Boat', 'Body']" in message
    assert "on_leakage='warn'" in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value", ["ignore", "DROP", None])
def test_unknown_on_leakage_is_a_config_error(value):
    with pytest.raises(ConfigError, match="on_leakage"):
        run_checks(_frame(), "y", "binary", on_leakage=value)


def test_bad_task_or_target():
    with pytest.raises(ConfigError, match="task"):
        run_checks(_frame(), "y", "auto")
    with pytest.raises(ColumnError, match="'nope'"):
        run_checks(_frame(), "nope", "binary")


# --- target leakage -----------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS)
def test_every_check_passes_clean_data(clean_report, check):
    assert _rows(clean_report, check)["status"].tolist() == ["passed"]


def test_no_leak_in_noise(clean_report):
    assert clean_report.leaking == []
    assert clean_report.dropped == {}
    message = _rows(clean_report, "target_leakage")["message"].iloc[0]
    assert message.startswith("no column predicts y suspiciously well")


def test_regression_leak_is_flagged():
    rng = np.random.default_rng(1)
    n = 500
    x = rng.normal(size=n)
    y = 2 * x + 2 * rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "noise": rng.normal(size=n),
            "shop": rng.choice(list("abc"), n),
            "leak": y + rng.normal(scale=0.05, size=n),
            "y": y,
        }
    )
    report = run_checks(frame, "y", "regression")
    assert report.leaking == ["leak"]
    assert (
        "leak alone predicts y with CV R² 0.9" in _rows(report, "target_leakage").iloc[0]["message"]
    )
    assert report.dropped.keys() == {"leak"}


def test_copies_of_a_leak_are_all_flagged(titanic):
    frame = titanic.assign(BoatCode="b" + titanic["Boat"])
    report = run_checks(frame, "Survived", "binary")
    assert set(report.leaking) == {"Boat", "Body", "BoatCode"}


def test_pure_subset_rule_fires():
    frame = _frame(n=400)
    marker = pd.Series(np.nan, index=frame.index)
    died = frame.index[frame["y"] == 0][:40]
    marker[died] = np.arange(40.0)  # present in 10 % of rows, all of them y == 0
    report = run_checks(frame.assign(marker=marker), "y", "binary")
    assert report.leaking == ["marker"]
    message = _rows(report, "target_leakage").iloc[0]["message"]
    assert "marker is present in 40 rows (10 %) and y is 0 in 100 % of them" in message


def test_pure_subset_rule_on_a_category():
    frame = _frame(n=400)
    code = np.where(frame["y"] == 1, "open", "closed").astype(object)
    code[np.flatnonzero(frame["y"] == 1)[:40]] = "rescued"
    code[np.flatnonzero(frame["y"] == 1)[40:]] = frame["color"][frame["y"] == 1][40:]
    code[np.flatnonzero(frame["y"] == 0)] = frame["color"][frame["y"] == 0]
    report = run_checks(frame.assign(code=code), "y", "binary")
    assert report.leaking == ["code"]
    assert "code is 'rescued' in 40 rows" in _rows(report, "target_leakage").iloc[0]["message"]


def test_pure_subset_rule_ignores_a_dominant_class():
    # 95 % of rows are class 0: a subset of 40 class-0 rows is no evidence of a leak.
    rng = np.random.default_rng(2)
    n = 400
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, 20, replace=False)] = 1
    marker = np.full(n, np.nan)
    marker[np.flatnonzero(y == 0)[:40]] = 1.0
    frame = pd.DataFrame({"x": rng.normal(size=n), "marker": marker, "y": y})
    report = run_checks(frame, "y", "binary")
    assert report.leaking == []


def test_strong_honest_features_of_iris_are_not_leaks():
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    report = run_checks(frame, "target", "multiclass")
    assert report.leaking == []
    scores = report.leakage_scores.set_index("column")
    assert scores.loc["petal length (cm)", "score"] > 0.95  # strong, but so are the others
    message = _rows(report, "target_leakage").iloc[0]["message"]
    assert "strong but not a leak" in message
    assert "for the other columns" in message


def test_strong_honest_predictor_of_a_rare_class_is_not_a_leak():
    # A loan-default shape: a balance ranks defaulters well (ROC AUC about 0.93) and
    # nothing else predicts, but most defaulters still look like the others.
    rng = np.random.default_rng(0)
    n = 6000
    balance = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-5.5 + 2.2 * balance)))).astype(int)
    frame = pd.DataFrame({"balance": balance, "income": rng.normal(size=n), "y": y})
    report = run_checks(frame, "y", "binary")
    scores = report.leakage_scores.set_index("column")
    assert scores.loc["balance", "score"] >= 0.90
    assert scores.loc["balance", "score"] - scores.loc["balance", "rest_score"] >= 0.05
    assert report.leaking == []
    # the balance ranks defaulters well but never makes one likelier than not
    message = _rows(report, "target_leakage").iloc[0]["message"]
    assert "balance 0.91 but predicts no better than the majority class" in message


def test_error_reduction_against_a_hand_count():
    from titanicml.data.checks.scoring import ColumnScorer

    scorer = ColumnScorer("binary", np.array([0, 0, 0, 0, 1, 1]), ["a", "b"], [], 0)
    # argmax: a a b a b a -> errors at rows 2 and 5: 2/6; the majority class errs on 2/6
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    assert scorer.error_reduction(proba) == pytest.approx(1 - (2 / 6) / (2 / 6))
    # one error left of the majority class's two: half removed
    proba[2] = [0.9, 0.1]
    assert scorer.error_reduction(proba) == pytest.approx(0.5)


def test_error_reduction_breaks_ties_toward_the_majority_class():
    from titanicml.data.checks.scoring import ColumnScorer

    # class 1 ("b") is the majority; a column that says 50/50 everywhere is the baseline
    scorer = ColumnScorer("binary", np.array([1, 1, 1, 1, 0, 0]), ["b", "a"], [], 0)
    assert scorer.error_reduction(np.full((6, 2), 0.5)) == pytest.approx(0.0)
    # ties on rows 0-1 go to "b" (right); row 4 is a real "a": one of two errors removed
    proba = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    assert scorer.error_reduction(proba) == pytest.approx(0.5)


def test_too_few_rows_skips_leakage():
    report = run_checks(_frame(n=30), "y", "binary")
    rows = _rows(report, "target_leakage")
    assert rows["status"].tolist() == ["passed"]
    assert rows["message"].iloc[0].startswith("skipped: 30 distinct rows")


# --- ID-like, constant, missing -----------------------------------------------------------


def test_id_like_columns_are_dropped():
    n = 200
    rng = np.random.default_rng(3)
    frame = _frame(
        n=n,
        uuid=[f"{rng.integers(16**8):08x}-{i:04d}" for i in range(n)],
        row=np.arange(1000, 1000 + n),
        shuffled_key=rng.permutation(n) + 1,
    )
    report = run_checks(frame, "y", "binary")
    assert _flagged(report, "id_like", "fixed") == {"uuid", "row", "shuffled_key"}
    assert {"uuid", "row", "shuffled_key"} <= set(report.dropped)
    assert report.dropped["row"].startswith("ID-like: row has 200 distinct integers")


def test_free_text_floats_and_sparse_integers_are_not_ids():
    n = 200
    rng = np.random.default_rng(4)
    words = ["red", "boat", "green", "house", "small", "river", "cold", "tall"]
    frame = _frame(
        n=n,
        comment=[f"{' '.join(rng.choice(words, 4))} {i}" for i in range(n)],
        weight=rng.normal(70, 10, n),
        phone=rng.choice(10**9, n, replace=False),
        repeated=np.arange(n) % 50,
    )
    report = run_checks(frame, "y", "binary")
    assert _rows(report, "id_like")["status"].tolist() == ["passed"]
    assert report.dropped == {}


def test_constant_and_empty_columns_are_dropped():
    frame = _frame(one="same", empty=np.nan, flag=[1.0] * 100 + [np.nan] * 100)
    report = run_checks(frame, "y", "binary")
    assert _flagged(report, "constant", "fixed") == {"one", "empty"}
    assert report.dropped == {
        "one": "constant: one value in every row",
        "empty": "every value is missing",
    }
    assert "flag" not in report.dropped  # one value or missing: an indicator, kept


def test_missingness_thresholds():
    n = 200
    mostly_empty = np.where(np.arange(n) < 6, 1.0, np.nan)  # 97 % missing
    half_empty = np.where(np.arange(n) % 5 < 2, "a", None)  # 60 % missing
    some = np.where(np.arange(n) % 10 == 0, np.nan, np.arange(n) % 7)  # 10 % missing
    frame = _frame(n=n, mostly_empty=mostly_empty, half_empty=half_empty, some=some)
    report = run_checks(frame, "y", "binary")
    assert _flagged(report, "high_missingness", "fixed") == {"mostly_empty"}
    assert _flagged(report, "high_missingness", "alerted") == {"half_empty"}
    assert "mostly_empty" in report.dropped and "half_empty" not in report.dropped
    rows = _rows(report, "missing_values").set_index("column")
    assert rows.index.tolist() == ["some"]
    assert rows.loc["some", "status"] == "fixed"
    assert "filled with the median, plus a missing indicator" in rows.loc["some", "message"]


# --- high cardinality, imbalance, duplicates ----------------------------------------------


def test_high_cardinality_text_is_alerted():
    n = 200
    frame = _frame(
        n=n,
        zip_code=[f"Z{i % 40:03d}" for i in range(n)],
        few=[f"F{i % 10}" for i in range(n)],
        note=[f"call back on day {i % 60}" for i in range(n)],
    )
    report = run_checks(frame, "y", "binary")
    rows = _rows(report, "high_cardinality").set_index("column")
    assert rows.index.tolist() == ["zip_code"]
    assert rows.loc["zip_code", "status"] == "alerted"
    assert "40 distinct values" in rows.loc["zip_code", "message"]
    assert "target-encoded inside cross-validation" in rows.loc["zip_code", "message"]


def test_class_imbalance_ratio():
    frame = _frame(n=300).assign(y=np.where(np.arange(300) < 25, "fraud", "ok"))
    row = _rows(run_checks(frame, "y", "binary"), "class_imbalance").iloc[0]
    assert (row["column"], row["status"]) == ("y", "alerted")
    assert "'ok': 275, 'fraud': 25" in row["message"]
    assert "metric='roc_auc'" in row["message"] and "metric='f1'" in row["message"]


def test_class_imbalance_tiny_class():
    frame = _frame(n=90).assign(y=np.repeat(["a", "b", "c"], [40, 38, 12]))
    row = _rows(run_checks(frame, "y", "multiclass"), "class_imbalance").iloc[0]
    assert row["status"] == "alerted"
    assert "class 'c' has only 12 rows" in row["message"]
    assert "times the rows" not in row["message"]  # 12 / 40 is not below 0.2


def test_regression_passes_class_imbalance():
    rng = np.random.default_rng(5)
    regression = pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)})
    row = _rows(run_checks(regression, "y", "regression"), "class_imbalance").iloc[0]
    assert row["status"] == "passed" and "regression" in row["message"]


def test_duplicate_and_conflicting_rows():
    frame = _frame(n=100)
    copies = frame.iloc[:7]
    clash = frame.iloc[10:13].assign(y=1 - frame["y"].iloc[10:13])
    report = run_checks(pd.concat([frame, copies, clash], ignore_index=True), "y", "binary")
    rows = _rows(report, "duplicate_rows")
    assert rows["status"].tolist() == ["alerted", "alerted"]
    assert rows["message"].iloc[0].startswith("7 rows (6.4 %) repeat an earlier row")
    assert rows["message"].iloc[1].startswith("6 rows (5.5 %) share identical features")


# --- robustness ---------------------------------------------------------------------------


def test_odd_column_types():
    n = 120
    rng = np.random.default_rng(6)
    frame = _frame(
        n=n,
        when=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        took=pd.to_timedelta(rng.integers(1, 100, n), unit="s"),
        flag=rng.random(n) > 0.5,
        count=pd.array(np.where(np.arange(n) % 9 == 0, None, np.arange(n) % 4), dtype="Int64"),
        tags=[["a", "b"] if i % 2 else ["c"] for i in range(n)],
        kind=pd.Categorical(rng.choice(["p", "q"], n)),
        huge=np.where(np.arange(n) % 3 == 0, np.inf, rng.normal(size=n) * 1e300),
    )
    report = run_checks(frame, "y", "binary")
    assert report.leaking == []
    assert report.leakage_scores["column"].tolist()[-7:] == [
        "when",
        "took",
        "flag",
        "count",
        "tags",
        "kind",
        "huge",
    ]


def test_nothing_left_to_check():
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(60)], "y": np.arange(60) % 2})
    report = run_checks(frame, "y", "binary")
    assert report.dropped.keys() == {"key"}
    assert _rows(report, "target_leakage").iloc[0]["message"].startswith("no feature column")


# --- one classification: the classifier, the plan and the checks agree ----------------------


def test_twenty_values_are_high_cardinality_target_encoded_and_alerted():
    n = 200
    frame = _frame(
        n=n,
        twenty=[f"shop-{i % 20}" for i in range(n)],
        fifteen=[f"shop-{i % MAX_ONE_HOT_CATEGORIES}" for i in range(n)],
        prose=[f"open on day {i % 20}" for i in range(n)],
    )
    kinds = {name: classify_column(frame[name]).kind for name in ("twenty", "fifteen", "prose")}
    assert kinds == {"twenty": "high_cardinality", "fifteen": "category", "prose": "free_text"}
    plan = plan_features(frame.drop(columns="y"))
    assert plan.names("encoded") == ["twenty"]
    assert plan.names("categorical") == ["color", "fifteen"]
    assert plan.names("text") == ["prose"]
    report = run_checks(frame, "y", "binary")
    assert _flagged(report, "high_cardinality", "alerted") == {"twenty"}
    row = _rows(report, "high_cardinality").iloc[0]
    assert "twenty has 20 distinct values, more than the 15 that are one-hot" in row["message"]


def test_alerted_and_target_encoded_columns_are_the_same_on_titanic(titanic, titanic_report):
    features = titanic.drop(columns="Survived")
    plan = plan_features(features, dropped=titanic_report.dropped)
    assert set(plan.names("encoded")) == _flagged(titanic_report, "high_cardinality")
    assert set(plan.names("encoded")) == {"Ticket", "Cabin"}


def test_unique_date_strings_are_dates_not_keys():
    n = 120
    frame = _frame(n=n, day=pd.date_range("2024-01-01", periods=n).astype(str))
    info = classify_column(frame["day"])
    assert (info.kind, info.date_share) == ("date_text", 1.0)
    report = run_checks(frame, "y", "binary")
    assert "day" not in report.dropped
    assert plan_features(frame.drop(columns="y")).names("datetime") == ["day"]


# --- Finding records ----------------------------------------------------------------------


def test_findings_are_records_with_severity_and_figures():
    n = 60
    age = np.where(np.arange(n) % 5 == 0, np.nan, np.arange(n) % 7 + 20.0)  # 12 missing
    mostly = np.where(np.arange(n) < 2, 1.0, np.nan)  # 58 missing
    frame = _frame(n=n, age=age, mostly=mostly)
    report = run_checks(frame, "y", "binary")
    assert [f.check for f in report.findings] == report.table["check"].tolist()
    pd.testing.assert_frame_equal(report.table, findings_frame(report.findings))
    by_column = {(f.check, f.column): f for f in report.findings}

    missing = by_column["missing_values", "age"]
    assert (missing.status, missing.severity) == ("fixed", "warning")
    assert missing.figures == {"n_rows": 60, "n_missing": 12, "missing_fraction": 0.2}
    assert missing.message == (
        "age is missing in 12 rows (20 %): filled with the median, plus a missing indicator"
    )
    dropped = by_column["high_missingness", "mostly"]
    assert (dropped.status, dropped.severity) == ("fixed", "warning")
    assert dropped.figures["n_missing"] == 58
    assert dropped.figures["missing_fraction"] == pytest.approx(58 / 60)
    passed = [f for f in report.findings if f.status == "passed"]
    assert passed and {f.severity for f in passed} == {"info"}
    assert {f.column for f in passed} == {None}
    balance = by_column["class_imbalance", None]
    assert balance.figures["class_counts"] == {"0": 30, "1": 30}
    for f in report.findings:
        assert json.loads(json.dumps(f.to_dict(), allow_nan=False)) == f.to_dict()


def test_leak_findings_are_critical_with_their_figures(titanic_report):
    leaks = {f.column: f for f in titanic_report.findings if f.check == "target_leakage"}
    assert set(leaks) == {"Boat", "Body"}
    assert {f.severity for f in leaks.values()} == {"critical"}
    boat, body = leaks["Boat"].figures, leaks["Body"].figures
    assert boat["metric"] == "CV ROC AUC"
    assert boat["score"] >= 0.95 and boat["score"] - boat["rest_score"] >= 0.05
    assert body["pure_subset"] == "is present"
    assert body["pure_subset_rows"] == 121 and body["pure_subset_class_share"] == 1.0
    assert set(titanic_report.table["severity"]) == {"info", "warning", "critical"}
    assert (
        titanic_report.table.loc[titanic_report.table["status"] == "alerted", "severity"]
        .eq("warning")
        .all()
    )


def test_finding_defaults_and_validation():
    passed = Finding("constant", None, "passed", "no column is constant")
    assert passed.severity == "info" and passed.figures == {}
    alerted = Finding(
        "drift",
        "Age",
        "alerted",
        "Age moved",
        figures={"psi": np.float64(0.31), "n": np.int64(5), "gap": float("nan"), "q": (1, 2)},
    )
    assert alerted.severity == "warning"
    assert alerted.figures == {"psi": 0.31, "n": 5, "gap": None, "q": [1, 2]}
    assert type(alerted.figures["n"]) is int
    assert alerted.to_dict() == {
        "check": "drift",
        "column": "Age",
        "status": "alerted",
        "severity": "warning",
        "message": "Age moved",
        "figures": {"psi": 0.31, "n": 5, "gap": None, "q": [1, 2]},
    }
    hash(alerted)  # usable in sets, figures aside
    with pytest.raises(ConfigError, match="status 'failed'"):
        Finding("x", None, "failed", "message")
    with pytest.raises(ConfigError, match="severity 'fatal'"):
        Finding("x", None, "alerted", "message", severity="fatal")
    with pytest.raises(ConfigError, match="figure 'values' is a ndarray"):
        Finding("x", None, "alerted", "message", figures={"values": np.arange(3)})


def test_findings_frame_of_nothing_has_the_columns():
    assert list(findings_frame([]).columns) == list(FINDING_COLUMNS)


# --- the leakage detector on its own, and target encoding -----------------------------------


def test_detector_finds_nothing_in_noise():
    rng = np.random.default_rng(11)
    n = 600
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "count": rng.integers(0, 5, n),
            "shop": rng.choice([f"s{i}" for i in range(40)], n),  # target-encoded
            "color": rng.choice(["red", "green", "blue"], n),
            "sparse": np.where(rng.random(n) < 0.3, rng.normal(size=n), np.nan),
            "y": rng.integers(0, 2, n),
        }
    )
    infos = {name: classify_column(frame[name]) for name in frame.columns if name != "y"}
    for task, target in (("binary", frame["y"]), ("regression", rng.normal(size=n))):
        leakage = find_leaks(frame.assign(y=target), "y", task, infos, seed=3)
        assert leakage.leaks == {}
        assert leakage.scores["score"].max() < 0.65
        assert leakage.summary["n_distinct_rows"] == n
        assert leakage.note.startswith("no column predicts y suspiciously well")


def test_multiclass_with_a_class_missing_from_a_fold():
    rng = np.random.default_rng(12)
    n = 300
    y = rng.choice(["a", "b"], n).astype(object)
    y[0] = "rare"  # one row: the training folds without it hold two classes
    shops = rng.choice([f"s{i}" for i in range(30)], n)
    frame = pd.DataFrame({"x": rng.normal(size=n), "shop": shops, "y": y})
    report = run_checks(frame, "y", "multiclass")
    assert report.leaking == []
    assert _flagged(report, "class_imbalance", "alerted") == {"y"}


def test_cross_fitting_folds_in_both_spellings(monkeypatch):
    import sklearn
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = cross_fitting_folds("binary", seed=4)
    assert isinstance(folds["cv"], StratifiedKFold)
    assert (folds["cv"].n_splits, folds["cv"].shuffle, folds["cv"].random_state) == (5, True, 4)
    assert isinstance(cross_fitting_folds("regression", 0, n_splits=3)["cv"], KFold)
    monkeypatch.setattr(sklearn, "__version__", "1.6.1")
    assert cross_fitting_folds("binary", 4) == {"cv": 5, "shuffle": True, "random_state": 4}


def test_target_encoder_matches_the_task():
    encoder = target_encoder("regression", seed=1, smooth=10.0)
    assert (encoder.target_type, encoder.smooth) == ("continuous", 10.0)
    assert target_encoder("multiclass", seed=1).target_type == "multiclass"
    codes = np.arange(100)[:, None] % 4
    y = (codes[:, 0] == 0).astype(int)
    encoded = target_encoder("binary", seed=1, smooth=10.0).fit(codes, y).transform(codes)
    # Category 0: 25 rows all 1, shrunk toward the mean 0.25 as if with 10 more rows.
    assert encoded[0, 0] == pytest.approx((25 + 10 * 0.25) / (25 + 10))


def test_a_strong_column_no_better_than_the_majority_class_says_so():
    from titanicml.data.checks.leakage import _strong_phrase

    worse = _strong_phrase("balance", {"balance": 0.93}, {"balance": 0.54}, {"balance": -0.1})
    assert worse == "balance 0.93 but predicts no better than the majority class"
    some = _strong_phrase("balance", {"balance": 0.93}, {"balance": 0.54}, {"balance": 0.18})
    assert some == "balance 0.93 but removes only 18 % of the majority class's errors"
