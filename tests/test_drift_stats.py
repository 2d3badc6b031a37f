"""The monitor's statistics against hand calculations on small data."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from titanicml import datasets
from titanicml.data.profile import profile_frame
from titanicml.monitor.stats.distributions import (
    categorical_from_profile,
    categorical_from_values,
    numeric_from_profile,
    numeric_from_values,
)
from titanicml.monitor.stats.drift import (
    Measurement,
    benjamini_hochberg,
    interval,
    jensen_shannon,
    measure_categorical,
    measure_numeric,
    rows_needed,
)
from titanicml.monitor.stats.performance import (
    domain_classifier_auroc,
    estimated_accuracy,
    realized_performance,
)
from titanicml.monitor.stats.quality import numeric_quality, rate


def numeric(values):
    return numeric_from_values(np.array(values, dtype=float))


def test_normalized_wasserstein_of_two_four_point_samples():
    # Sorted, paired: |0-1| + |1-2| + |3-2| + |6-3| = 6 over 4 points: W = 1.5.
    # Reference [1, 2, 2, 3]: mean 2, variance (1 + 0 + 0 + 1) / 3, std sqrt(2/3).
    m = measure_numeric(
        numeric([0, 1, 3, 6]), numeric([1, 2, 2, 3]), "normalized_wasserstein_distance"
    )
    assert m.value == pytest.approx(1.5 / math.sqrt(2 / 3))
    assert m.lower <= m.value <= m.upper


def test_wasserstein_is_divided_by_the_reference_std_floored_as_azure():
    # A constant reference has std 0: Azure divides by max(std, 0.001).
    m = measure_numeric(numeric([1, 2]), numeric([1, 1, 1]), "normalized_wasserstein_distance")
    assert m.value == pytest.approx(0.5 / 0.001)


def test_kolmogorov_smirnov_statistic_by_hand():
    # CDFs at 0, 1, 2, 3, 6: a = .25 .5 .5 .75 1, b = 0 .25 .75 1 1: D = 0.25.
    a, b = [0, 1, 3, 6], [1, 2, 2, 3]
    m = measure_numeric(numeric(a), numeric(b), "two_sample_kolmogorov_smirnov_test")
    assert m.value == pytest.approx(0.25)
    assert m.p_value == pytest.approx(ks_2samp(a, b).pvalue)


def test_jensen_shannon_distance_of_two_three_category_distributions():
    # P = (1/2, 1/2, 0), Q = (0, 1/2, 1/2), M = (1/4, 1/2, 1/4):
    # KL(P||M) = 1/2 log2(2) + 1/2 log2(1) = 1/2 = KL(Q||M); JSD = 1/2, distance sqrt(1/2).
    production = categorical_from_values(pd.Series(["a", "a", "b", "b"]), keep_all=True)
    reference = categorical_from_values(pd.Series(["b", "b", "c", "c"]))
    m = measure_categorical(production, reference, "jensen_shannon_distance")
    assert m.value == pytest.approx(math.sqrt(0.5))


def test_population_stability_index_by_hand_with_azures_laplace_smoothing():
    # Counts (3, 1) against (1, 3); +1 per bin: p = (4/6, 2/6), q = (2/6, 4/6).
    # PSI = (1/3) ln 2 + (-1/3) ln(1/2) = (2/3) ln 2.
    production = categorical_from_values(pd.Series(["x", "x", "x", "y"]), keep_all=True)
    reference = categorical_from_values(pd.Series(["x", "y", "y", "y"]))
    m = measure_categorical(production, reference, "population_stability_index")
    assert m.value == pytest.approx(2 / 3 * math.log(2))


def test_chi_square_effect_is_cramers_v_with_the_tests_p_value():
    # Table [[3, 1], [1, 3]]: expected 2 everywhere, chi2 = 4 * 1/2 = 2, N = 8:
    # V = sqrt(2 / 8) = 0.5; p = P(chi2_1 > 2) = 0.1573.
    production = categorical_from_values(pd.Series(["x", "x", "x", "y"]), keep_all=True)
    reference = categorical_from_values(pd.Series(["x", "y", "y", "y"]))
    m = measure_categorical(production, reference, "pearsons_chi_squared_test")
    assert m.value == pytest.approx(0.5)
    assert m.p_value == pytest.approx(0.157299, abs=1e-6)


def test_benjamini_hochberg_on_a_hand_list():
    # Sorted 0.01, 0.03, 0.04, 0.20 -> p*4/rank = 0.04, 0.06, 0.0533, 0.2 -> running min
    # from the top: 0.04, 0.0533, 0.0533, 0.2; back in input order.
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.20]))
    assert q == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])


def test_basic_bootstrap_interval_by_hand():
    # Quantiles 0.25 / 0.75 of (0.2, 0.3, 0.4, 0.5), linear: 0.275 and 0.425.
    lower, upper, spread = interval(0.3, np.array([0.2, 0.3, 0.4, 0.5]), confidence=0.5)
    assert lower == pytest.approx(0.6 - 0.425)
    assert upper == pytest.approx(0.6 - 0.275)
    assert spread == pytest.approx(0.15)
    # Clipped at 0, and never below the value.
    assert interval(0.05, np.array([0.2, 0.3]), 0.5)[:2] == (0.0, 0.05)


def test_rows_needed_by_hand():
    # spread^2 = c (1/100 + 1/100) with spread 0.2: c = 2. Half-width <= 0.1 means
    # spread <= 0.2: 2 (1/n + 1/n_ref) <= 0.04.
    m = Measurement(0.1, 0.0, 0.2, 0.2, None, 100, 100)
    assert rows_needed(m, 0.1, 10**12) == 50
    assert rows_needed(m, 0.1, 100) == 100
    assert math.isinf(rows_needed(m, 0.1, 50))  # the reference alone is too small


def test_intervals_are_seeded_and_bounded_in_cost():
    rng = np.random.default_rng(0)
    big = numeric(rng.normal(size=200_000))
    ref = numeric(rng.normal(size=5_000))
    one = measure_numeric(big, ref, "normalized_wasserstein_distance", seed=3, max_rows=2_000)
    two = measure_numeric(big, ref, "normalized_wasserstein_distance", seed=3, max_rows=2_000)
    assert one == two
    assert one.n_production == 2_000  # each replicate resampled at most max_rows rows
    assert len(big.values) == 2048  # a large column is reduced to quantiles


def test_identical_samples_have_no_drift_and_a_shift_has_its_size():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=3_000)
    same = measure_numeric(
        numeric(rng.normal(size=3_000)), numeric(ref), "normalized_wasserstein_distance"
    )
    assert same.lower == 0.0 and same.value < 0.1
    shifted = measure_numeric(
        numeric(rng.normal(size=3_000) + 0.5), numeric(ref), "normalized_wasserstein_distance"
    )
    assert 0.4 < shifted.lower < 0.5 < shifted.upper < 0.6


@pytest.fixture(scope="module")
def titanic():
    frame = datasets.load_titanic()
    return frame, profile_frame(frame)


def test_profile_rebuilds_small_integer_columns_exactly(titanic):
    frame, profile = titanic
    column = next(c for c in profile["columns"] if c["name"] == "Pclass")
    rebuilt = numeric_from_profile(column, profile["n_rows"])
    counts = frame["Pclass"].value_counts().sort_index()
    assert rebuilt.values.tolist() == [1.0, 2.0, 3.0]
    assert rebuilt.weights == pytest.approx(counts.to_numpy(), abs=1.0)


@pytest.mark.parametrize("name", ["Age", "Fare", "SibSp", "Parch"])
def test_profile_is_close_to_its_data(titanic, name):
    frame, profile = titanic
    column = next(c for c in profile["columns"] if c["name"] == name)
    m = measure_numeric(
        numeric_from_values(frame[name]),
        numeric_from_profile(column, profile["n_rows"]),
        "normalized_wasserstein_distance",
    )
    assert m.value < 0.05  # the approximation costs well under half the threshold


def test_profile_categories_match_the_table(titanic):
    frame, profile = titanic
    column = next(c for c in profile["columns"] if c["name"] == "Embarked")
    from_profile = categorical_from_profile(column, profile["n_rows"])
    assert from_profile.counts == categorical_from_values(frame["Embarked"]).counts
    assert from_profile.known == frozenset({"S", "C", "Q"})


def test_wilson_interval_by_hand():
    # p = 0.2, n = 10, z = 1.96: centre 0.28327, half-width 0.22658.
    r = rate("null_value_rate", 2, 10, 0.0)
    assert (r.lower, r.upper) == pytest.approx((0.05669, 0.50984), abs=1e-4)


def test_data_quality_rates_by_hand():
    production = pd.Series(["1", "x", None, "99"], dtype=object)
    reference = numeric([0, 10])
    null, type_error, out_of_bounds = numeric_quality(production, reference, 0.0)
    assert (null.count, null.n) == (1, 4)
    assert (type_error.count, type_error.n) == (1, 3)  # "x"
    assert (out_of_bounds.count, out_of_bounds.n) == (1, 3)  # 99 > max 10


def test_classification_performance_by_hand():
    # tp = 2, fp = 0, fn = 1: precision 1, recall 2/3, F1 0.8, accuracy 4/5.
    y, pred = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1])
    proba = np.column_stack([1 - pred * 0.9, pred * 0.9])
    figures = {e.metric: e for e in realized_performance("binary", y, pred, proba)}
    assert figures["accuracy"].value == pytest.approx(0.8)
    assert figures["precision"].value == pytest.approx(1.0)
    assert figures["recall"].value == pytest.approx(2 / 3)
    assert figures["f1_score"].value == pytest.approx(0.8)
    assert figures["roc_auc"].value == pytest.approx(5 / 6)
    assert all(e.lower <= e.value <= e.upper for e in figures.values())


def test_regression_performance_by_hand():
    # Errors 0, 0, -2: MAE 2/3, RMSE sqrt(4/3), R² = 1 - 4 / 2 = -1.
    y, pred = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    figures = {e.metric: e.value for e in realized_performance("regression", y, pred)}
    assert figures == pytest.approx({"MAE": 2 / 3, "RMSE": math.sqrt(4 / 3), "r2": -1.0})


def test_cbpe_expected_accuracy_by_hand():
    # Calibration: score 0.2 -> 1 of 5 positive, 0.8 -> 4 of 5: isotonic keeps 0.2, 0.8.
    # Production rows 0.2, 0.8, 0.8: each predicted class is right with probability 0.8.
    scores = np.array([0.2] * 5 + [0.8] * 5)
    labels = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    calibration = np.column_stack([1 - scores, scores])
    production = np.array([[0.8, 0.2], [0.2, 0.8], [0.2, 0.8]])
    estimate = estimated_accuracy(calibration, labels, production)
    assert estimate.value == pytest.approx(0.8)
    half = 1.96 * math.sqrt(3 * 0.8 * 0.2) / 3
    assert estimate.lower == pytest.approx(0.8 - half, abs=1e-3)
    assert estimate.upper == pytest.approx(1.0)  # 0.8 + 0.45, capped at 1


def test_domain_classifier_sees_a_joint_shift_no_single_column_shows():
    # x and y keep their marginals; only their correlation flips sign.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 400))
    reference = pd.DataFrame({"x": x[0], "y": x[0] + 0.3 * rng.normal(size=400)})
    production = pd.DataFrame({"x": x[1], "y": -x[1] + 0.3 * rng.normal(size=400)})
    drifted = domain_classifier_auroc(reference, production, ["x", "y"], n_boot=50)
    assert drifted.lower > 0.8
    same = pd.DataFrame({"x": x[1], "y": x[1] + 0.3 * rng.normal(size=400)})
    quiet = domain_classifier_auroc(reference, same, ["x", "y"], n_boot=50)
    assert quiet.lower < 0.6


def test_wasserstein_value_is_scipys_on_the_full_supports():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=700).round(1), rng.gamma(2.0, size=400).round(2)
    m = measure_numeric(numeric(a), numeric(b), "normalized_wasserstein_distance")
    assert m.value == pytest.approx(wasserstein_distance(a, b) / b.std(ddof=1), rel=1e-12)


def test_jensen_shannon_rows_are_scipys_and_an_empty_row_is_zero():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(5)
    p, q = rng.integers(0, 9, (6, 4)).astype(float), rng.integers(1, 9, (6, 4)).astype(float)
    p[2] = [3, 0, 0, 1]
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2, axis=1))
    # By hand: (1/2, 1/2, 0) against (0, 1/2, 1/2) is sqrt(1/2) (see above); identical is 0.
    pair = jensen_shannon(np.array([[1.0, 1, 0], [2, 2, 0]]), np.array([[0.0, 1, 1], [1, 1, 0]]))
    assert pair == pytest.approx([math.sqrt(0.5), 0.0])
    assert jensen_shannon(np.zeros((1, 3)), np.ones((1, 3))) == pytest.approx([0.0])


@pytest.mark.parametrize(("count", "n"), [(0, 10), (2, 10), (10, 10), (1, 1_000_000), (37, 91)])
def test_wilson_interval_is_scipys(count, n):
    from scipy.stats import binomtest

    ci = binomtest(count, n).proportion_ci(0.9, method="wilson")
    r = rate("out_of_bounds_rate", count, n, 0.0, confidence=0.9)
    assert (r.lower, r.upper) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)
    # No value is an alert of a zero-threshold rate: its lower bound is exactly 0.
    assert count > 0 or r.lower == 0.0
