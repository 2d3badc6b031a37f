"""Out-of-bounds rates judged against what the reference predicts without drift.

Hand calculations on small data (the expected rate, the threshold, the verdict at the
boundary) and seeded simulations: windows of fresh draws from a reference's own
distribution stay quiet, real shifts alert.
"""

import numpy as np
import pandas as pd
import pytest

from titanicml import datasets
from titanicml.data.profile import profile_frame
from titanicml.monitor import compute_signals
from titanicml.monitor.stats.distributions import (
    categorical_from_profile,
    categorical_from_values,
    numeric_from_profile,
    numeric_from_values,
)
from titanicml.monitor.stats.quality import (
    OUT_OF_BOUNDS_MARGIN,
    categorical_quality,
    expected_out_of_bounds,
    expected_unseen,
    numeric_quality,
)

# Wilson upper bound of 2 of 99 at 95 % (z = 1.959964, z^2 = 3.841459), by hand:
# centre (2 + z^2 / 2) / (99 + z^2) = 0.038124; half-width
# z / (2 (99 + z^2)) * sqrt(4 * 99 * (2/99) * (97/99) + z^2) = 0.032566; upper 0.070690.
UPPER_2_OF_99 = 0.070690


def numeric(values):
    return numeric_from_values(np.array(values, dtype=float))


def out_of_bounds_row(production, reference, **options):
    result = compute_signals(production, reference, signals=["data_quality"], **options)
    table = result.table
    return table[table["metric"] == "out_of_bounds_rate"].iloc[0]


def test_expected_rate_of_a_numeric_reference_by_hand():
    # Nine distinct values: a new one is below the min or above the max with
    # probability 1/10 each.
    assert expected_out_of_bounds(numeric(range(1, 10))) == (2, pytest.approx(2 / 10))
    # The min held by two rows: leaving one out keeps the min, only the max counts.
    assert expected_out_of_bounds(numeric([0, 0, 1, 2, 5])) == (1, pytest.approx(1 / 6))
    # Both ends tied (Pclass-like): nothing is expected outside.
    assert expected_out_of_bounds(numeric([1, 1, 2, 3, 3, 3])) == (0, 0.0)
    # One value is its own min and max: 1 of 1, and a threshold no rate reaches.
    assert expected_out_of_bounds(numeric([5])) == (1, 0.5)
    single = numeric_quality(pd.Series([1.0, 9.0]), numeric([5]), 0.0)[2]
    assert (single.count, single.threshold) == (2, pytest.approx(1 + OUT_OF_BOUNDS_MARGIN))


def test_a_profile_uses_the_bound_two_over_n_plus_one():
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0, 3.0, 4.0, None]})
    column = profile_frame(frame)["columns"][0]
    reference = numeric_from_profile(column, 6)
    # The profile does not keep the count at its min: 2 / (5 + 1), the bound.
    assert expected_out_of_bounds(reference) == (2, pytest.approx(2 / 6))


def test_expected_unseen_rate_is_good_turing_by_hand():
    # 10 rows; "c" and "d" seen once: 2 / 10 of new rows are expected unseen.
    values = pd.Series(list("aaaaabbbcd"))
    assert expected_unseen(categorical_from_values(values)) == (2, pytest.approx(0.2))
    column = profile_frame(values.to_frame("c"))["columns"][0]
    assert expected_unseen(categorical_from_profile(column, 10)) == (2, pytest.approx(0.2))


def test_a_pooled_reference_counts_every_category():
    # 30 "a" and 24 categories seen once: the table keeps 20 by name, pools 5, and the
    # unseen rate still comes from all 24 singletons: 24 / 54.
    values = pd.Series(["a"] * 30 + [f"s{i:02d}" for i in range(24)])
    pooled = categorical_from_values(values)
    assert "(other)" in pooled.counts
    every = categorical_from_values(values, keep_all=True)
    production = pd.Series(["a", "new", "s00"])
    _, unseen = categorical_quality(production, pooled, 0.0, every_category=every)
    assert (unseen.count, unseen.n, unseen.expected) == (1, 3, pytest.approx(24 / 54))
    # Without the counts of the pooled values it is not judged.
    assert [r.metric for r in categorical_quality(production, pooled, 0.0)] == ["null_value_rate"]
    row = out_of_bounds_row(production.to_frame("c"), values.to_frame("c"))
    assert row["value"] == pytest.approx(1 / 3) and "0.444" in row["message"]


def test_threshold_and_verdict_at_the_boundary():
    # Reference 0..98 (99 distinct values): expected 2/100, threshold the Wilson upper
    # bound of 2/99 plus the margin 0.01: 0.080690. A window of 100 values with 13
    # outside has a Wilson lower bound of 0.07757 (quiet); with 14, 0.08526 (alert).
    reference = pd.DataFrame({"x": np.arange(99.0)})
    threshold = UPPER_2_OF_99 + OUT_OF_BOUNDS_MARGIN
    for outside, lower, alert in [(13, 0.07757, False), (14, 0.08526, True)]:
        production = pd.DataFrame({"x": [50.0] * (100 - outside) + [200.0] * outside})
        row = out_of_bounds_row(production, reference)
        assert row["threshold"] == pytest.approx(threshold, abs=1e-6)
        assert row["lower"] == pytest.approx(lower, abs=1e-5)
        assert row["alert"] == alert
        assert row["n_reference"] == 99
        assert "expected without drift 0.02" in row["message"]


def test_the_margin_is_settable_and_a_given_threshold_is_absolute():
    reference = pd.DataFrame({"x": np.arange(99.0)})
    production = pd.DataFrame({"x": [50.0] * 99 + [200.0]})
    quiet = out_of_bounds_row(production, reference)
    assert not quiet["alert"]
    wider = out_of_bounds_row(production, reference, thresholds={"out_of_bounds_rate_margin": 0.1})
    assert wider["threshold"] == pytest.approx(UPPER_2_OF_99 + 0.1, abs=1e-6)
    # Azure's threshold 0, given explicitly: one value past the max alerts.
    azure = out_of_bounds_row(production, reference, thresholds={"out_of_bounds_rate": 0.0})
    assert azure["threshold"] == 0.0 and azure["alert"]


def test_a_type_error_still_alerts_at_zero():
    # A text in a numeric column is never expected: one in 200 alerts.
    reference = numeric(np.arange(1000))
    production = pd.Series([str(v) for v in range(199)] + ["forty"], dtype=object)
    _, type_error, out_of_bounds = numeric_quality(production, reference, 0.0)
    assert type_error.threshold == 0.0 and type_error.lower > 0.0
    assert out_of_bounds.count == 0 and out_of_bounds.threshold > 0.0


@pytest.mark.parametrize("n_reference", [50, 300, 2000])
@pytest.mark.parametrize("rows", [200, 5000])
def test_fresh_draws_of_the_reference_distribution_rarely_alert(n_reference, rows):
    # 40 references of a skewed continuous column, 5 fresh windows each: the windows
    # share their reference, as a month of monitoring does.
    rng = np.random.default_rng(n_reference + rows)
    alerts = 0
    for _ in range(40):
        reference = numeric(rng.gamma(2.0, 10.0, n_reference))
        for _ in range(5):
            window = pd.Series(rng.gamma(2.0, 10.0, rows))
            out_of_bounds = numeric_quality(window, reference, 0.0)[2]
            alerts += out_of_bounds.lower > out_of_bounds.threshold
    assert alerts <= 10  # at most 5 % of 200 windows


@pytest.mark.parametrize("rows", [200, 5000])
def test_fresh_draws_of_a_long_tailed_category_rarely_alert(rows):
    # 2,000 categories with Zipf weights: a reference of 1,000 rows misses many of them;
    # Good-Turing predicts how often a fresh row holds one it never saw.
    rng = np.random.default_rng(rows)
    weights = 1 / np.arange(1, 2001) ** 1.1
    weights /= weights.sum()
    alerts, unseen_share = 0, []
    for _ in range(40):
        values = pd.Series(rng.choice(2000, 1000, p=weights).astype(str))
        reference = categorical_from_values(values)
        every = categorical_from_values(values, keep_all=True)
        for _ in range(5):
            window = pd.Series(rng.choice(2000, rows, p=weights).astype(str))
            unseen = categorical_quality(window, reference, 0.0, every_category=every)[1]
            alerts += unseen.lower > unseen.threshold
            unseen_share.append(unseen.value)
    assert np.mean(unseen_share) > 0.1  # unseen categories are common here...
    assert alerts <= 10  # ...and still not an alert: at most 5 % of 200 windows


def test_real_shifts_still_alert():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {"Age": rng.uniform(0, 80, 1000), "Embarked": rng.choice(list("SCQ"), 1000)}
    )
    quiet = pd.DataFrame({"Age": rng.uniform(0, 80, 200), "Embarked": rng.choice(list("SCQ"), 200)})
    # Age + 10: an eighth of the ages are past the max; a new port in 10 % of rows.
    older = quiet.assign(Age=quiet["Age"] + 10)
    new_port = quiet.assign(
        Embarked=["X" if i % 10 == 0 else e for i, e in enumerate(quiet["Embarked"])]
    )
    for reference_kind in (reference, profile_frame(reference)):

        def alerted(window, ref=reference_kind):
            table = compute_signals(window, ref, signals=["data_quality"]).table
            return set(table.loc[table["alert"], "feature"])

        assert alerted(quiet) == set()
        assert alerted(older) == {"Age"}
        assert alerted(new_port) == {"Embarked"}


def test_held_out_titanic_rows_do_not_alert_out_of_bounds():
    # A profile of 70 % of the rows, windows of the other 30 %: two held-out passengers
    # (76 and 80) are older than the training maximum, 74, as happens without any drift
    # (Azure's threshold 0 alerted on most of these windows).
    frame = datasets.load_titanic()
    order = np.random.default_rng(0).permutation(len(frame))
    training, held_out = frame.iloc[order[:916]], frame.iloc[order[916:]]
    assert (held_out["Age"] > training["Age"].max()).sum() == 2
    features = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    profile = profile_frame(training[features])
    rng = np.random.default_rng(1)
    alerts = 0
    for _ in range(40):
        window = held_out.iloc[rng.integers(0, len(held_out), 200)]
        table = compute_signals(window, profile, features=features, signals=["data_quality"]).table
        alerts += bool(table.loc[table["metric"] == "out_of_bounds_rate", "alert"].any())
    assert alerts <= 2


def test_the_mass_outside_a_reference_is_the_beta_the_margin_is_chosen_for():
    # n uniform values: the mass below their min plus above their max is a Beta(2, n - 1)
    # of mean 2 / (n + 1) (exchangeability), whatever the continuous distribution.
    from scipy.stats import beta, kstest

    from titanicml.monitor.stats.quality import rate

    rng = np.random.default_rng(3)
    samples = rng.uniform(size=(4000, 20))
    mass = samples.min(axis=1) + 1 - samples.max(axis=1)
    assert mass.mean() == pytest.approx(2 / 21, rel=0.03)
    assert kstest(mass, beta(2, 19).cdf).pvalue > 0.01
    # The figures OUT_OF_BOUNDS_MARGIN's comment gives for its choice.
    for n, at_most in [(10, 0.008), (300, 0.0004), (1000, 1e-6)]:
        threshold = rate("out_of_bounds_rate", 2, n, 0.0).upper + OUT_OF_BOUNDS_MARGIN
        assert beta.sf(threshold, 2, n - 1) < at_most
    assert beta.sf(2 / 101 + OUT_OF_BOUNDS_MARGIN, 2, 99) > 0.19  # the margin alone
    assert 0.005 < beta.sf(rate("out_of_bounds_rate", 2, 1000, 0.0).upper, 2, 999) < 0.007


def test_bounds_are_the_reference_values_own_min_and_max():
    # Over 2,048 distinct values the distribution keeps quantiles as its support; the
    # bounds stay the values' own min and max.
    values = np.random.default_rng(4).normal(size=5000)
    reference = numeric(values)
    production = pd.Series([values.min(), values.max(), values.max() + 1])
    assert numeric_quality(production, reference, 0.0)[2].count == 1
