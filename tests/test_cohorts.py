"""Error cohorts: a shallow tree on the out-of-fold errors names where the model fails."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from test_oof import fixture_holdout_result  # noqa: F401 (fixture)

from titanicml.exceptions import ConfigError
from titanicml.explain.cohorts import error_cohorts, find_cohorts


@pytest.fixture(scope="module")
def planted():
    """y = (A - 50) / 29 + D > 0, except in B = z and A > 70, where half the labels are flipped.

    Neither A nor D predicts y alone well enough to be dropped as a leak.
    """
    from titanicml import Trainer

    rng = np.random.default_rng(3)
    n = 2000
    data = pd.DataFrame(
        {
            "A": rng.uniform(0, 100, n).round(1),
            "B": rng.choice(["x", "y", "z"], n),
            "D": rng.normal(size=n),
        }
    )
    y = ((data["A"] - 50) / 29 + data["D"] > 0).astype(int)
    cohort = (data["B"] == "z") & (data["A"] > 70)
    flipped = cohort & (rng.random(n) < 0.5)
    data["y"] = np.where(flipped, 1 - y, y)
    result = Trainer(target="y", time_budget=15, max_trials=12, track=False).fit(data)
    return data, cohort.to_numpy(), result


def test_the_planted_failing_cohort_is_found_first(planted):
    data, cohort, result = planted
    found = error_cohorts(result.model, data, target="y", oof=result.oof)
    assert found.source == "out-of-fold"
    worst = found.cohorts[0]
    # The worst cohort is the planted one (the tree may split it once more, on D).
    prefix = re.match(r"A > (6[5-9]|7[0-5])(\.\d+)? and B = z", worst.rule)
    assert prefix, worst.rule
    rows = found.leaves == 0
    assert (rows & cohort).sum() / rows.sum() > 0.9
    errors = (result.oof["label"] != result.oof["prediction"]).to_numpy()
    assert worst.error == pytest.approx(errors[rows].mean())
    assert worst.error > 0.3 > 3 * found.overall
    # Its leaves together hold most of the planted rows.
    planted_leaves = [i for i, c in enumerate(found.cohorts) if c.rule.startswith(prefix[0])]
    covered = np.isin(found.leaves, planted_leaves)
    assert (covered & cohort).sum() / cohort.sum() > 0.9
    assert worst.rows == rows.sum() and worst.coverage == pytest.approx(rows.mean())
    assert "error on" in str(worst) and "overall" in str(worst)
    # Sorted worst first; coverages add up to all rows.
    assert [c.error for c in found.cohorts] == sorted(
        (c.error for c in found.cohorts), reverse=True
    )
    assert sum(c.rows for c in found.cohorts) == len(data)
    assert found.findings()[0].status == "alerted"


def test_tree_follows_azures_defaults_and_names_rules_readably():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"Pclass": rng.choice([1, 2, 3], 900), "Sex": rng.choice(["female", "male"], 900),
         "Age": rng.uniform(1, 80, 900)}
    )  # fmt: skip
    hard = (frame["Pclass"] == 3) & (frame["Sex"] == "male") & (frame["Age"] > 20)
    errors = np.where(hard, rng.random(900) < 0.6, rng.random(900) < 0.05).astype(float)
    found = find_cohorts(frame, errors, ["Pclass", "Sex", "Age"])
    assert len(found.cohorts) <= 2**3  # depth 3
    assert min(c.rows for c in found.cohorts) >= 20
    worst = found.cohorts[0]
    assert worst.rule.startswith("Pclass = 3 and Sex = male and Age > ")
    tiny = find_cohorts(frame, errors, ["Pclass"], min_leaf_rows=1000)
    assert [c.rule for c in tiny.cohorts] == ["all rows"]
    with pytest.raises(ConfigError, match="Deck are not in the data"):
        find_cohorts(frame, errors, ["Deck"])


def test_cli_cohorts(cli, planted, tmp_path):
    data, _, result = planted
    model = result.save(tmp_path / "model")
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    done = cli("explain", "--model", model, "--data", path, "--cohorts", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "out-of-fold" and report["columns"] == ["A", "B", "D"]
    assert "B = z" in report["cohorts"][0]["rule"]
    shown = cli("explain", "--model", model, "--data", path, "--cohorts")
    assert shown.returncode == 0 and "Error cohorts, worst first" in shown.stdout
    wrong = cli("explain", "--model", model, "--data", path, "--cohorts", "--label-column", "Z")
    assert wrong.returncode == 2 and "'Z' is not in the data" in wrong.stderr


def test_a_holdout_models_cohorts_are_of_its_out_of_fold_errors(titanic, holdout_result):
    result = holdout_result
    found = error_cohorts(
        result.model, titanic, target="Survived", oof=result.oof, holdout=result.holdout
    )
    assert found.source == "out-of-fold" and found.n_rows == 1047
    errors = (result.oof["label"] != result.oof["prediction"]).to_numpy()
    assert found.overall == pytest.approx(errors.mean())


def test_in_sample_errors_are_said_in_a_note_and_a_finding(titanic, holdout_result):
    found = error_cohorts(holdout_result.model, titanic, target="Survived", oof=None)
    assert found.source == "model" and "in-sample" in found.note
    assert found.findings()[0].check == "cohorts_predictions"
    # On the holdout alone (rows set apart before the search) there is nothing to warn of.
    honest = error_cohorts(
        holdout_result.model, holdout_result.holdout, target="Survived",
        holdout=holdout_result.holdout,
    )  # fmt: skip
    assert honest.note == "" and honest.findings()[0].check == "error_cohort"
