"""Every column type pandas gives trains, saves, loads (titanicml and MLflow) and scores alike.

Before issue 9 a bool column or a column of date strings crashed the model's save after
the whole time budget (MLflow's signature check), and MLflow's pyfunc refused the
training rows of nullable, categorical and time-zone columns at predict time.
"""

from __future__ import annotations

import json
import time

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.utils.proto_json_utils import dataframe_from_parsed_json

import titanicml
from titanicml import Trainer
from titanicml.batch import score_file
from titanicml.exceptions import DataError

N_ROWS = 60
WORDS = ["red", "green", "blue", "amber"]


def _missing(rng: np.random.Generator, share: float) -> np.ndarray:
    return rng.random(N_ROWS) < share


def _column(kind: str, rng: np.random.Generator, share: float) -> pd.Series:
    """A column of one pandas type, with about ``share`` of it missing where it can be."""
    gone = _missing(rng, share)
    days = rng.integers(0, 400, N_ROWS)
    dates = pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D")
    dates = dates + pd.to_timedelta(rng.integers(0, 24, N_ROWS), unit="h")
    if kind == "bool":
        return pd.Series(rng.random(N_ROWS) < 0.5)
    if kind == "int":
        return pd.Series(rng.integers(0, 50, N_ROWS))
    if kind == "float":
        return pd.Series(np.where(gone, np.nan, rng.normal(size=N_ROWS)))
    if kind == "Int64":
        values = pd.array(rng.integers(0, 50, N_ROWS), dtype="Int64")
        values[gone] = pd.NA
        return pd.Series(values)
    if kind == "boolean":
        values = pd.array(rng.random(N_ROWS) < 0.5, dtype="boolean")
        values[gone] = pd.NA
        return pd.Series(values)
    if kind == "string":
        return pd.Series(rng.choice(WORDS, N_ROWS), dtype="string").mask(gone)
    if kind == "str":  # pandas 3's default text dtype
        return pd.Series(rng.choice(WORDS, N_ROWS)).mask(gone)
    if kind == "category":
        return pd.Series(pd.Categorical(rng.choice(WORDS, N_ROWS))).mask(gone)
    if kind == "datetime":
        return pd.Series(dates).mask(gone)
    if kind == "datetime_tz":
        return (
            pd.Series(dates)
            .dt.tz_localize("Europe/Paris", ambiguous="NaT", nonexistent="NaT")
            .mask(gone)
        )
    if kind == "date_text":
        return pd.Series(dates.strftime("%Y-%m-%d")).mask(gone)
    if kind == "timedelta":
        return pd.Series(pd.to_timedelta(rng.integers(0, 4, N_ROWS) * 30, unit="m")).mask(gone)
    if kind == "object":  # mixed Python values
        pool = np.array([1, "a", 2.5, True, "b", 7], dtype=object)
        return pd.Series(pool[rng.integers(0, len(pool), N_ROWS)], dtype=object).mask(gone)
    raise AssertionError(kind)


KINDS = [
    "bool",
    "int",
    "float",
    "Int64",
    "boolean",
    "string",
    "str",
    "category",
    "datetime",
    "datetime_tz",
    "date_text",
    "timedelta",
    "object",
]


def _target(column: pd.Series, rng: np.random.Generator, labels: str) -> pd.Series:
    """A target that depends on ``column`` (so the model uses it), with 15 % noise."""
    codes = pd.Series(pd.factorize(column.astype(str), sort=True)[0])
    signal = (codes % 2 == 0).to_numpy() ^ (rng.random(N_ROWS) < 0.15)
    if labels == "bool":
        return pd.Series(signal)
    if labels == "str":
        return pd.Series(np.where(signal, "yes", "no"))
    return pd.Series(signal.astype(np.int64))


def _train(frame: pd.DataFrame) -> titanicml.TrainingResult:
    trainer = Trainer(
        target="y",
        time_budget=3,
        max_trials=2,
        estimators=["lgbm"],
        ensemble=False,
        track=False,
        on_leakage="warn",  # the target depends on the columns on purpose
        on_no_skill="warn",  # two trials of a tiny search: the types are tested, not the fit
    )
    return trainer.fit(frame)


def _json_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as a JSON client sends them: missing values null, other values as text."""
    plain = frame.astype(object).where(frame.notna(), None)
    return json.loads(json.dumps(plain.to_dict("records"), default=str))


def _check_round_trip(result, frame: pd.DataFrame, tmp_path) -> dict:
    """Save, load both ways, score every way; return the MLmodel's input types."""
    features = frame.drop(columns=["y"])
    expected = result.predict_proba(features)
    labels = result.predict(features)
    directory = result.save(tmp_path / "model")

    loaded = titanicml.load_model(directory)
    np.testing.assert_allclose(loaded.predict_proba(features), expected)
    assert loaded.predict(features).tolist() == labels.tolist()

    pyfunc = mlflow.pyfunc.load_model(str(directory))
    served = pyfunc.predict(features)
    probabilities = [f"probability_{label}" for label in result.classes]
    np.testing.assert_allclose(served[probabilities].to_numpy(), expected)
    assert served["prediction"].tolist() == labels.tolist()
    # `mlflow models serve` parses JSON records with the signature, then predicts.
    parsed = dataframe_from_parsed_json(
        _json_records(features), "records", pyfunc.metadata.get_input_schema()
    )
    np.testing.assert_allclose(pyfunc.predict(parsed)[probabilities].to_numpy(), expected)

    # The serving path: the fast path (when it compiles) on Python and on JSON values.
    for records in (features.to_dict("records"), _json_records(features)):
        scored = loaded.score_records(records)
        np.testing.assert_allclose(scored.probabilities, expected)

    # Batch scoring reads the rows back from a CSV file.
    features.to_csv(tmp_path / "rows.csv", index=False)
    score_file(loaded, tmp_path / "rows.csv", tmp_path / "out.csv", chunk_size=25)
    batch = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(batch[probabilities].to_numpy(), expected)

    mlmodel = yaml.safe_load((directory / "MLmodel").read_text())
    return {c["name"]: c["type"] for c in json.loads(mlmodel["signature"]["inputs"])}


@pytest.mark.parametrize(
    "kind, schema_type",
    [
        ("bool", "boolean"),  # crashed the save: "Can not safely convert bool to int64"
        ("date_text", "string"),  # crashed the save: "str to datetime64"
        ("datetime", "datetime"),
        ("timedelta", "any"),  # crashed the save: Timedelta is not JSON serializable
        ("Int64", "any"),  # MLflow's pyfunc refused the rows: "cannot convert NA to integer"
        ("boolean", "any"),  # the same: "cannot convert float NaN to bool"
        ("category", "any"),  # the same: "Can not safely convert category to <U0"
        ("datetime_tz", "any"),  # the same: time-zone-aware to naive
        ("object", "string"),
        ("float", "double"),
        ("int", "long"),
        ("string", "string"),
    ],
)
def test_each_column_type_survives_the_round_trip(kind, schema_type, tmp_path):
    rng = np.random.default_rng(7)
    column = _column(kind, rng, share=0.2)
    frame = pd.DataFrame({"x": column, "y": _target(column, rng, "int")})
    result = _train(frame)
    assert result.model.input_columns == ["x"]  # used, not dropped
    types = _check_round_trip(result, frame, tmp_path)
    assert types == {"x": schema_type}


def test_a_frame_of_every_type_at_once_with_a_bool_target(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({kind: _column(kind, rng, share=0.1) for kind in KINDS})
    frame["y"] = _target(frame["category"], rng, "bool")
    result = _train(frame)
    assert result.classes == [False, True]
    types = _check_round_trip(result, frame, tmp_path)
    assert set(types) == set(result.model.input_columns)
    mlmodel = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())
    outputs = {c["name"]: c["type"] for c in json.loads(mlmodel["signature"]["outputs"])}
    assert outputs["prediction"] == "boolean"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True),
    share=st.sampled_from([0.0, 0.1, 0.4]),
    labels=st.sampled_from(["int", "bool", "str"]),
    seed=st.integers(0, 2**16),
)
def test_any_mix_of_column_types_trains_saves_loads_and_agrees(
    kinds, share, labels, seed, tmp_path_factory
):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"c_{kind}": _column(kind, rng, share) for kind in kinds})
    frame["y"] = _target(frame.iloc[:, 0], rng, labels)
    result = _train(frame)
    _check_round_trip(result, frame, tmp_path_factory.mktemp("model"))


def test_a_column_the_signature_cannot_take_stops_the_fit_at_once(monkeypatch, tmp_path, store):
    # Typing bool columns "long", as titanicml did before, is refused by MLflow: the
    # pre-flight must say so before any search or MLflow run.
    from titanicml.backends.local import LocalBackend
    from titanicml.model import artifact

    monkeypatch.setitem(artifact._NUMPY_SCHEMA_TYPES, "b", "long")

    def search(*args, **kwargs):
        raise AssertionError("the search started")

    monkeypatch.setattr(LocalBackend, "submit", search)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"flag": rng.random(N_ROWS) < 0.5, "y": rng.integers(0, 2, N_ROWS)})
    started = time.monotonic()
    with pytest.raises(DataError, match=r"column 'flag' \(bool\) could not be saved") as caught:
        Trainer(target="y", time_budget=60, tracking_uri=store).fit(frame)
    assert time.monotonic() - started < 20  # not the 60 s budget
    assert "exclude=['flag']" in str(caught.value)
    assert not (tmp_path / "mlflow.db").exists()


def test_input_example_is_json_ready_and_typed_as_the_model_reads_it():
    from titanicml.model.predictor import example_rows

    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "t": pd.to_timedelta([1, 2, None], unit="h"),
            "d": pd.to_datetime(["2024-05-01 10:00", None, "2024-05-03 00:00"]).tz_localize("UTC"),
            "b": np.array([True, False, True]),
        }
    )
    rows = example_rows(frame)
    assert json.loads(json.dumps(rows)) == rows  # plain JSON values only
    assert rows[0] == {"n": 1, "t": "0 days 01:00:00", "d": "2024-05-01T10:00:00+00:00", "b": True}
    assert rows[1]["n"] is None and rows[2]["t"] is None


def test_dates_of_a_time_zone_column_are_put_in_its_zone():
    from titanicml.features.plan import ColumnPlan, FeaturePlan
    from titanicml.model.predictor import prepare_rows

    plan = FeaturePlan(
        (ColumnPlan("when", "datetime", "datetime", "", "datetime64[us, Europe/Paris]"),)
    )
    # 08:00 UTC is 10:00 in Paris; a naive 10:00 is a Paris wall time.
    for rows in (
        [{"when": "2024-05-01T08:00:00Z"}, {"when": "2024-05-01T10:00:00+02:00"}, {"when": None}],
        [{"when": "2024-05-01T08:00:00Z"}, {"when": "2024-05-01 10:00"}, {"when": None}],
        [{"when": "2024-05-01 10:00"}, {"when": "2024-05-01 10:00"}, {"when": None}],
    ):
        frame, _ = prepare_rows(plan, rows)
        assert str(frame["when"].dt.tz) == "Europe/Paris"
        assert frame["when"].dt.hour.tolist()[:2] == [10, 10]
        assert frame["when"].isna().tolist() == [False, False, True]


def test_fast_path_takes_numpy_scalars_and_pandas_missing_values(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "n": rng.normal(size=N_ROWS),
            "w": rng.choice(WORDS, N_ROWS),
        }
    )
    frame["y"] = (frame["n"] > 0).astype(int)
    model = _train(frame).model
    assert model._row_scorer() is not None  # the compiled path is the one under test
    odd = [
        {"n": np.float32(0.5), "w": np.str_("red")},
        {"n": pd.NA, "w": pd.NA},
        {"n": np.int64(2), "w": None},
    ]
    plain = [{"n": 0.5, "w": "red"}, {"n": None, "w": None}, {"n": 2.0, "w": None}]
    np.testing.assert_allclose(
        model.score_records(odd).probabilities, model.predict_proba(pd.DataFrame(plain))
    )
