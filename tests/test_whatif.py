"""What-if: counterfactuals really flip the model's prediction and stay within observed values."""

from __future__ import annotations

import json

import pytest

from titanicml.exceptions import ConfigError
from titanicml.explain.whatif import counterfactuals


def _changed_columns(changes: str) -> list[str]:
    return [part.split(":")[0] for part in changes.split("; ")]


@pytest.mark.parametrize("row", [0, 5, 12])
def test_counterfactuals_flip_the_prediction_within_observed_values(titanic, titanic_result, row):
    model = titanic_result.model
    found = counterfactuals(model, titanic, row, top=8)
    original = titanic.iloc[[row]]
    assert found.prediction == model.predict(original)[0]
    assert len(found.counterfactuals), "no counterfactual found"
    columns = list(titanic.columns)
    for record in found.counterfactuals.to_dict("records"):
        changed = original.copy()
        for column in _changed_columns(record["changes"]):
            changed[column] = record[column]
            observed = titanic[column].dropna()
            if observed.dtype.kind in "if":
                assert observed.min() <= record[column] <= observed.max()
            else:
                assert record[column] in set(observed)
        # The model itself, on the changed row: another class.
        assert model.predict(changed[columns])[0] == record["prediction"] != found.prediction
        assert len(_changed_columns(record["changes"])) == record["n_changed"] <= 2
    table = found.counterfactuals
    assert list(table["n_changed"]) == sorted(table["n_changed"])
    # Minimal: no two-column change contains a one-column change that flips alone.
    singles = {(r["changes"]) for r in table.to_dict("records") if r["n_changed"] == 1}
    for record in table[table["n_changed"] == 2].to_dict("records"):
        assert not any(part in singles for part in record["changes"].split("; "))


def test_frozen_columns_never_change_and_bad_requests_are_refused(titanic, titanic_result):
    found = counterfactuals(titanic_result.model, titanic, 0, frozen=["Sex"], top=5)
    for changes in found.counterfactuals["changes"]:
        assert "Sex" not in _changed_columns(changes)
    with pytest.raises(ConfigError, match="out of range"):
        counterfactuals(titanic_result.model, titanic, len(titanic))
    with pytest.raises(ConfigError, match="desired class 7"):
        counterfactuals(titanic_result.model, titanic, 0, desired=7)


def test_regressors_are_refused(regression_result):
    result, data = regression_result
    with pytest.raises(ConfigError, match="regressor"):
        counterfactuals(result.model, data, 0)


def test_cli_what_if(cli, titanic, saved_model, tmp_path):
    path = tmp_path / "titanic.csv"
    titanic.to_csv(path, index=False)
    done = cli("explain", "--model", saved_model, "--data", path, "--what-if", "--row", "0",
               "--top", "3", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["row"] == 0 and 1 <= len(answer["counterfactuals"]) <= 3
    assert all(c["prediction"] != answer["prediction"] for c in answer["counterfactuals"])
    missing = cli("explain", "--model", saved_model, "--data", path, "--what-if")
    assert missing.returncode == 2 and "--row N" in missing.stderr
    assert "--what-if" in cli("explain", "--help").stdout
