"""The retrain's data: new production rows deduplicated, and none of the gate's trained on."""

from __future__ import annotations

import pandas as pd
import pytest

from titanicml.data.holdout import row_keys, split_holdout
from titanicml.retrain.data import split_new_rows

COLUMNS = ["Survived", "Pclass", "Sex", "Age"]


def production_rows(passengers: list[tuple]) -> pd.DataFrame:
    """Labelled rows as the store gives them: one request per passenger, oldest first."""
    frame = pd.DataFrame(passengers, columns=["Pclass", "Sex", "Age", "Survived"])
    frame["request_id"] = [f"request-{i}" for i in range(len(frame))]
    frame["row"] = 0
    frame["time"] = pd.date_range("2026-01-01", periods=len(frame), freq="min", tz="UTC")
    return frame


def test_a_passenger_sent_twice_is_trained_on_or_gated_on_not_both(titanic):
    parent = titanic[COLUMNS].dropna().head(100).reset_index(drop=True)
    known = tuple(parent.loc[0, ["Pclass", "Sex", "Age", "Survived"]])
    fresh = [(3, "male", 50.0 + i, 1) for i in range(30)]
    # The same new passenger in an early request and in the latest one (Age 22 and
    # 22.0 alike), a passenger of the parent's table, and the rest.
    twice = (2, "female", 61.0, 0)
    sent = [twice, known, *fresh, (2, "female", 61, 0)]
    trained, recent, counts = split_new_rows(
        production_rows(sent), parent, recent_share=0.2, min_recent=5
    )
    assert counts == {"known": 1, "repeated": 1, "new": 31}
    assert len(trained) + len(recent) == 31 and len(recent) == 7
    columns = ["Pclass", "Sex", "Age", "Survived"]
    gate_keys = set(row_keys(recent, columns))
    assert not gate_keys & set(row_keys(trained, columns))
    assert not gate_keys & set(row_keys(parent, columns))
    assert len(gate_keys) == len(recent)  # no gate row twice either
    assert set(recent.columns) >= {"request_id", "row", "time"}
    assert list(trained.columns) == columns


def test_no_gate_row_equals_a_row_the_challenger_trains_on(titanic):
    # The champion's table holds its holdout; the challenger trains on the table plus the
    # new rows, minus the holdout rows; the gate is the holdout plus the recent rows.
    table = titanic[COLUMNS].reset_index(drop=True)
    _, holdout, _ = split_holdout(table, "Survived", "binary", 0.2, seed=0)
    sent = [tuple(r) for r in table[["Pclass", "Sex", "Age", "Survived"]].sample(
        80, random_state=2).itertuples(index=False)]  # fmt: skip
    sent += [(3, "male", 40.0 + i % 10, 1) for i in range(60)]  # repeats among new rows
    trained, recent, counts = split_new_rows(production_rows(sent), table)
    training = pd.concat([table, trained], ignore_index=True)
    challenger_rows, _, _ = split_holdout(training, "Survived", "binary", 0.2, 0, rows=holdout)
    gate = pd.concat([holdout, recent[COLUMNS]], ignore_index=True)
    assert not set(row_keys(gate, COLUMNS)) & set(row_keys(challenger_rows, COLUMNS))
    # The 80 sampled rows are known; of the 60 others, the distinct ones not in the table.
    distinct = {(3, "male", 40.0 + i, 1) for i in range(10)}
    in_table = set(map(tuple, table[["Pclass", "Sex", "Age", "Survived"]].itertuples(index=False)))
    assert counts["new"] == len(distinct - in_table) == len(recent)  # fewer than 20: all gated
    assert counts["known"] == 80 + 6 * len(distinct & in_table) and len(trained) == 0


@pytest.mark.parametrize("metadata", [{}, {"spec": {"time_budget": 60}}])
def test_a_champion_without_titanicml_settings_is_refused_with_the_fix(metadata):
    from titanicml.exceptions import ConfigError
    from titanicml.retrain.run import champion_spec

    with pytest.raises(ConfigError, match=r"titanic-model:1 was not trained by titanicml.*train"):
        champion_spec(metadata, "titanic-model:1")


def test_a_champion_spec_is_the_training_settings():
    from titanicml.retrain.run import champion_spec

    spec = champion_spec({"spec": {"target": "Survived", "time_budget": 7, "holdout": 0.2}}, "m:1")
    assert (spec.target, spec.time_budget, spec.holdout) == ("Survived", 7, 0.2)


@pytest.mark.parametrize(("chosen", "expected"), [(True, None), (False, 5)])
def test_a_challenger_chooses_its_own_folds_when_the_champions_were_chosen(chosen, expected):
    from titanicml.retrain.run import champion_spec

    metadata = {
        "spec": {"target": "Survived", "time_budget": 7, "cv": 5, "cv_repeats": 2},
        "folds": {"cv": 5, "chosen": chosen, "cv_repeats": 2, "repeats_chosen": chosen},
    }
    spec = champion_spec(metadata, "m:1")
    assert spec.cv == expected
    assert spec.cv_repeats == (None if chosen else 2)


def test_a_champion_saved_before_repeats_has_its_repeats_chosen_by_the_rows():
    from titanicml.retrain.run import champion_spec

    metadata = {"spec": {"target": "Survived", "cv": 5}, "folds": {"cv": 5, "chosen": False}}
    spec = champion_spec(metadata, "m:1")
    assert (spec.cv, spec.cv_repeats) == (5, None)


@pytest.mark.parametrize(("cv", "chosen"), [(None, True), (4, False)])
def test_a_trained_model_records_whether_its_folds_were_chosen(cv, chosen):
    import numpy as np
    import pandas as pd

    from titanicml import Trainer

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    frame["y"] = (frame["x"] + rng.normal(size=200) > 0).astype(int)
    result = Trainer(target="y", cv=cv, max_trials=4, estimators=("lgbm",), track=False).fit(frame)
    assert result.metadata()["folds"] == {
        "cv": 5 if cv is None else 4,
        "chosen": chosen,
        "cv_repeats": 2,  # 200 rows
        "repeats_chosen": True,
    }
    assert result.spec.cv == (5 if cv is None else 4)
