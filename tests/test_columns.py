"""The column classifier: every kind on small hand-made columns, its figures and edge cases."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from titanicml.data import columns
from titanicml.data.columns import (
    KINDS,
    MAX_ONE_HOT_CATEGORIES,
    TEXT_KINDS,
    UNUSABLE,
    VALUE_TYPES,
    ColumnInfo,
    classify_column,
    count_unique,
    numeric_values,
    value_type,
)
from titanicml.data.profile import profile_frame

N = 40
WORDS = ["red", "boat", "green", "house", "small", "river", "cold", "tall"]


def _kind(values, **kwargs) -> str:
    return classify_column(pd.Series(values, **kwargs)).kind


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([np.nan] * N, "empty"),
        ([None] * N, "empty"),
        (["same"] * N, "constant"),
        ([7] * N, "constant"),
        ([True, False] * (N // 2), "boolean"),
        (pd.array([True, None] * (N // 2), dtype="boolean"), "boolean"),
        (np.arange(N) % 7 * 1.5, "numeric"),
        (pd.array([1, None, 3, 4] * (N // 4), dtype="Int64"), "numeric"),
        (pd.date_range("2024-01-01", periods=N, freq="D"), "datetime"),
        (pd.date_range("2024-01-01", periods=N, freq="h", tz="UTC"), "datetime"),
        ([f"2024-03-{1 + i % 28:02d}" for i in range(N)], "date_text"),
        ([f"{1 + i % 28}/03/2024 10:00" for i in range(N)], "date_text"),
        ([f"c{i % MAX_ONE_HOT_CATEGORIES}" for i in range(N)], "category"),
        ([f"New York {i % 3}" for i in range(N)], "category"),  # few values: one-hot
        ([f"code-{i % 20}" for i in range(N)], "high_cardinality"),
        ([f"{WORDS[i % 8]} {WORDS[(i // 8) % 8]} {i % 17}" for i in range(N)], "free_text"),
        ([f"a1b2-{i:04d}" for i in range(N)], "id_like"),
        (np.arange(100, 100 + N), "id_like"),  # integers in row order
        (np.random.default_rng(0).permutation(N) + 1, "id_like"),  # 1..n shuffled
        (np.arange(N) * 1000.0, "id_like"),  # integer floats in row order
    ],
)
def test_each_kind(values, kind):
    assert _kind(values) == kind


def test_kinds_are_consistent_and_documented():
    assert len(set(KINDS)) == len(KINDS) and len(set(VALUE_TYPES)) == len(VALUE_TYPES)
    assert set(TEXT_KINDS) <= set(KINDS)
    assert KINDS[: len(UNUSABLE)] == tuple(UNUSABLE)  # the unusable kinds match first
    # The module's table of kinds lists every kind, in the order the rules are tried.
    assert tuple(re.findall(r"^``(\w+)`` {2}", columns.__doc__, re.MULTILINE)) == KINDS


def test_string_dtypes_of_pandas_3_and_object_columns_agree():
    values = [f"code-{i % 20}" if i % 9 else None for i in range(N)]
    infos = [
        classify_column(pd.Series(values, dtype=dtype))
        for dtype in (object, "string", pd.StringDtype("pyarrow"), "str")
    ]
    assert {info.kind for info in infos} == {"high_cardinality"}
    assert {info.value_type for info in infos} == {"text"}
    assert {(info.n_missing, info.n_unique) for info in infos} == {(5, 20)}
    # The default string dtype of pandas 3 (or object in pandas 2) classifies the same.
    default = classify_column(pd.Series(values))
    assert pd.api.types.is_string_dtype(pd.Series(values))
    assert (default.kind, default.n_unique) == ("high_cardinality", 20)


def test_categoricals_are_text_even_with_numeric_categories():
    info = classify_column(pd.Series(pd.Categorical(np.arange(N) % 3)))
    assert (info.kind, info.value_type) == ("category", "text")
    many = classify_column(pd.Series(pd.Categorical([f"k{i % 25}" for i in range(N)])))
    assert many.kind == "high_cardinality"


def test_figures_match_a_hand_count():
    column = pd.Series(["a b", "c", None, "d e f", "c", None], name="note")
    info = classify_column(column)
    assert info.name == "note"
    assert (info.n_rows, info.n_missing, info.n_unique) == (6, 2, 3)
    assert info.words == pytest.approx((2 + 1 + 3 + 1) / 4)
    assert info.single_token == pytest.approx(2 / 4)
    assert info.date_share == 0.0
    assert info.missing_fraction == pytest.approx(2 / 6)
    assert info.kind == info.base_kind == "category"


def test_numeric_columns_have_no_text_figures():
    info = classify_column(pd.Series([1.0, 2.0, np.nan, 2.0]))
    assert (info.kind, info.value_type) == ("numeric", "numeric")
    assert (info.n_missing, info.n_unique) == (1, 2)
    assert info.words is info.single_token is info.date_share is None


def test_the_one_hot_limit_is_the_boundary():
    at_limit = [f"v{i % MAX_ONE_HOT_CATEGORIES}" for i in range(60)]
    above = [f"v{i % (MAX_ONE_HOT_CATEGORIES + 1)}" for i in range(60)]
    assert _kind(at_limit) == "category"
    assert _kind(above) == "high_cardinality"


def test_keys_keep_their_base_kind_and_rule():
    text = classify_column(pd.Series([f"A-{i:04d}" for i in range(N)]))
    assert (text.kind, text.base_kind, text.id_rule) == (
        "id_like",
        "high_cardinality",
        "single_tokens",
    )
    ordered = classify_column(pd.Series(np.arange(N, 0, -1)))
    assert (ordered.kind, ordered.base_kind, ordered.id_rule) == (
        "id_like",
        "numeric",
        "ordered_integers",
    )
    assert ordered.id_range == (1.0, float(N))
    rng = np.random.default_rng(1)
    dense = classify_column(pd.Series(rng.permutation(np.r_[1:N, N + 2])))  # one gap
    assert dense.id_rule == "dense_integers"
    assert dense.id_density == pytest.approx(N / (N + 2))


@pytest.mark.parametrize(
    "values",
    [
        [f"{WORDS[i % 8]} {WORDS[i // 8 % 8]} {i}" for i in range(N)],  # free text, unique
        np.random.default_rng(2).normal(size=N),  # distinct floats
        np.random.default_rng(3).choice(10**9, N, replace=False),  # sparse integers
        np.arange(N) % 10,  # repeated integers
        [f"k{i}" for i in range(10)],  # too few rows for a key
    ],
)
def test_not_keys(values):
    assert classify_column(pd.Series(values)).kind != "id_like"


def test_durations_are_text_by_value_type_duration():
    seconds = np.random.default_rng(4).integers(1, 100, N)
    info = classify_column(pd.Series(pd.to_timedelta(seconds, unit="s")))
    assert info.value_type == "duration"
    assert info.kind == "free_text"  # "0 days 00:01:39": three words a value
    few = classify_column(pd.Series(pd.to_timedelta(np.arange(N) % 4, unit="s")))
    assert few.kind == "category"


def test_unhashable_cells_are_counted_by_their_text():
    column = pd.Series([["a", "b"] if i % 2 else ["c"] for i in range(N)])
    assert count_unique(column) == 2
    assert classify_column(column).kind == "category"


def test_a_column_with_no_rows():
    info = classify_column(pd.Series([], dtype=float))
    assert (info.kind, info.n_rows, info.missing_fraction) == ("empty", 0, 0.0)


def test_not_a_series_is_a_type_error():
    with pytest.raises(TypeError, match="pandas Series, not DataFrame"):
        classify_column(pd.DataFrame({"a": [1]}))


def test_to_dict_is_json():
    info = classify_column(pd.Series(np.arange(N), name="row"))
    data = info.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["id_range"] == [0.0, float(N - 1)]
    assert ColumnInfo(**{**data, "id_range": (0.0, float(N - 1))}) == info


def test_numeric_values_of_every_orderable_type():
    assert numeric_values(pd.Series([1, None], dtype="Int64")).tolist()[0] == 1.0
    assert np.isnan(numeric_values(pd.Series([1, None], dtype="Int64"))[1])
    assert numeric_values(pd.Series([True, False])).tolist() == [1.0, 0.0]
    stamps = pd.Series(pd.to_datetime(["1970-01-01 00:00:10"]).tz_localize("UTC"))
    assert numeric_values(stamps).tolist() == [10.0]
    assert numeric_values(pd.Series(pd.to_timedelta([90], unit="s"))).tolist() == [90.0]


def test_profile_kinds_come_from_the_value_type():
    frame = pd.DataFrame(
        {
            "flag": [True, False] * 10,
            "constant_number": [3] * 20,  # a constant is still numeric in a profile
            "row": np.arange(20),  # and so is a key
            "when": pd.date_range("2024-01-01", periods=20),
            "took": pd.to_timedelta(np.arange(20), unit="s"),
            "dates": pd.date_range("2024-01-01", periods=20).astype(str),
            "name": [f"n{i % 3}" for i in range(20)],
        }
    )
    kinds = {c["name"]: c["kind"] for c in profile_frame(frame)["columns"]}
    assert kinds == {
        "flag": "boolean",
        "constant_number": "numeric",
        "row": "numeric",
        "when": "datetime",
        "took": "categorical",
        "dates": "categorical",
        "name": "categorical",
    }
    assert {name: value_type(frame[name]) for name in ("flag", "took", "name")} == {
        "flag": "boolean",
        "took": "duration",
        "name": "text",
    }
