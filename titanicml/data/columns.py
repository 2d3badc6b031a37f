"""Classify a column once: what it holds, and so how titanicml treats it.

The data checks, the featurization plan and the profile all ask :func:`classify_column`,
so a column called high-cardinality by the checks is the column the plan target-encodes.

====================  ==================================================  ========================
kind                  rule (first match)                                  featurized as
====================  ==================================================  ========================
``empty``             every value is missing                              dropped
``constant``          one value in every row, none missing                dropped
``boolean``           boolean dtype                                       numeric
``numeric``           numeric dtype                                       numeric
``datetime``          datetime dtype                                      calendar parts
``date_text``         text, 90 % of the sampled values start like a date  calendar parts
``category``          other text, at most 15 distinct values              one-hot
``free_text``         more values, at least 2 words per value on average  word flags
``high_cardinality``  more values, fewer words (codes, names, ...)        target enc. + group size
``id_like``           a key (below), whatever it would be otherwise       dropped by checks
====================  ==================================================  ========================

"Text" is every column that is not boolean, numeric or datetime: strings (``object`` or
``StringDtype``), categoricals, and durations, which are featurized from their text.

A column is ``id_like`` with at least 20 rows and at least 90 % distinct values (of all
rows), when it is text (not dates) of which at least 90 % of the values are one token
(UUIDs, ``"A-1234"``), or distinct integers (integer floats too, no bool) in increasing
or decreasing row order, or covering at least 90 % of their range (``1..n`` shuffled).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DATE_PATTERN",
    "FREE_TEXT_MIN_WORDS",
    "KINDS",
    "MAX_ONE_HOT_CATEGORIES",
    "TEXT_KINDS",
    "UNUSABLE",
    "VALUE_TYPES",
    "ColumnInfo",
    "classify_column",
    "count_unique",
    "numeric_values",
    "value_type",
]

KINDS = (
    "empty",
    "constant",
    "boolean",
    "numeric",
    "datetime",
    "date_text",
    "category",
    "free_text",
    "high_cardinality",
    "id_like",
)
TEXT_KINDS = ("date_text", "category", "free_text", "high_cardinality")
VALUE_TYPES = ("boolean", "numeric", "datetime", "duration", "text")
# Kinds that carry no information, with the reason a column of that kind is not used.
UNUSABLE = {"empty": "every value is missing", "constant": "constant: one value in every row"}

# Text with at most this many distinct values is one-hot encoded; with more, it is
# target-encoded (unless it is free text or dates), and the data checks alert on it.
MAX_ONE_HOT_CATEGORIES = 15
# Free text has at least this many words per value on average.
FREE_TEXT_MIN_WORDS = 2.0
# Text is dates when this share of the first DATE_SAMPLE sampled values match.
DATE_PATTERN = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
DATE_MIN_SHARE = 0.9
DATE_SAMPLE = 200
# Word counts and date detection look at this many values (a seeded sample).
TEXT_SAMPLE = 2_000
ID_MIN_ROWS = 20
ID_MIN_UNIQUE = 0.90
ID_MIN_SINGLE_TOKEN = 0.90
ID_MIN_DENSITY = 0.90


@dataclass(frozen=True)
class ColumnInfo:
    """What a column holds: its kind and the figures the kind was decided on.

    Attributes
    ----------
    name : str
        Column name.
    kind : str
        One of :data:`KINDS`.
    base_kind : str
        The kind from the values alone, ignoring the key rule: equal to ``kind``
        unless ``kind`` is ``"id_like"`` (then ``"numeric"``, ``"free_text"``, ...).
    value_type : str
        Type of the values, one of :data:`VALUE_TYPES`, from the dtype alone.
    n_rows, n_missing, n_unique : int
        Rows, missing values, distinct values (missing excluded).
    words : float or None
        Text: mean number of words per value (on a sample of the values).
    single_token : float or None
        Text: share of the values that are one word or none.
    date_share : float or None
        Text: share of the first sampled values that start like a date.
    id_rule : str or None
        Keys: ``"single_tokens"``, ``"ordered_integers"`` or ``"dense_integers"``.
    id_density : float or None
        Integer keys: distinct values / (max - min + 1).
    id_range : tuple of float or None
        Integer keys: (min, max).
    """

    name: str
    kind: str
    base_kind: str
    value_type: str
    n_rows: int
    n_missing: int
    n_unique: int
    words: float | None = None
    single_token: float | None = None
    date_share: float | None = None
    id_rule: str | None = None
    id_density: float | None = None
    id_range: tuple[float, float] | None = None

    @property
    def missing_fraction(self) -> float:
        """Share of the rows that are missing (0.0 for no rows)."""
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the classification as a JSON-serializable dict."""
        figures = asdict(self)
        if self.id_range is not None:
            figures["id_range"] = list(self.id_range)
        return figures


def classify_column(column: pd.Series) -> ColumnInfo:
    """Classify one column.

    Parameters
    ----------
    column : Series
        Any dtype; cells that cannot be hashed (lists, dicts) are counted by their text.

    Returns
    -------
    ColumnInfo

    Raises
    ------
    TypeError
        If ``column`` is not a pandas Series.
    """
    import pandas as pd

    if not isinstance(column, pd.Series):
        raise TypeError(f"classify_column takes a pandas Series, not {type(column).__name__}")
    vtype = value_type(column)
    n_missing = int(column.isna().sum())
    n_unique = count_unique(column)
    common: dict[str, Any] = {
        "name": str(column.name),
        "value_type": vtype,
        "n_rows": len(column),
        "n_missing": n_missing,
        "n_unique": n_unique,
    }
    if n_unique == 0:
        return ColumnInfo(kind="empty", base_kind="empty", **common)
    if n_unique == 1 and n_missing == 0:
        return ColumnInfo(kind="constant", base_kind="constant", **common)
    if vtype in ("boolean", "numeric", "datetime"):
        info = ColumnInfo(kind=vtype, base_kind=vtype, **common)
    else:
        info = _classify_text(column, common)
    key = _key_rule(column, info)
    if key is None:
        return info
    rule, density, value_range = key
    return replace(info, kind="id_like", id_rule=rule, id_density=density, id_range=value_range)


def value_type(column: pd.Series) -> str:
    """Return the type of a column's values, from its dtype: one of :data:`VALUE_TYPES`.

    Object columns are ``"text"`` whatever they hold; so are categoricals.
    """
    from pandas.api import types

    dtype = column.dtype
    if types.is_bool_dtype(dtype):
        return "boolean"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_timedelta64_dtype(dtype):
        return "duration"
    if types.is_numeric_dtype(dtype):
        return "numeric"
    return "text"


def count_unique(column: pd.Series) -> int:
    """Count the distinct values of a column, missing excluded, unhashable cells by text."""
    try:
        return int(column.nunique(dropna=True))
    except TypeError:  # lists, dicts, sets
        return int(column.dropna().astype(str).nunique())


def numeric_values(column: pd.Series) -> np.ndarray:
    """Return a numeric, boolean, datetime or duration column as floats (NaN if missing).

    Datetimes become seconds since 1970 (in UTC if they have a time zone), durations
    seconds.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert(None)
        column = column - pd.Timestamp(0)
    if pd.api.types.is_timedelta64_dtype(column):
        return column.dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    return column.to_numpy(dtype=float, na_value=np.nan)


def _classify_text(column: pd.Series, common: dict[str, Any]) -> ColumnInfo:
    """Classify a text column: dates, category, free text or high cardinality."""
    present = column.dropna()
    if len(present) > TEXT_SAMPLE:
        present = present.sample(TEXT_SAMPLE, random_state=0)
    text = present.astype(str)
    words = text.str.split().str.len()
    figures = {
        "words": float(words.mean()),
        "single_token": float((words <= 1).mean()),
        "date_share": float(text.head(DATE_SAMPLE).str.match(DATE_PATTERN).mean()),
    }
    if figures["date_share"] >= DATE_MIN_SHARE:
        kind = "date_text"
    elif common["n_unique"] <= MAX_ONE_HOT_CATEGORIES:
        kind = "category"
    elif figures["words"] >= FREE_TEXT_MIN_WORDS:
        kind = "free_text"
    else:
        kind = "high_cardinality"
    return ColumnInfo(kind=kind, base_kind=kind, **common, **figures)


def _key_rule(
    column: pd.Series, info: ColumnInfo
) -> tuple[str, float | None, tuple[float, float] | None] | None:
    """Return (rule, density, range) if the column looks like a key, else None."""
    import numpy as np

    if info.n_rows < ID_MIN_ROWS or info.n_unique < ID_MIN_UNIQUE * info.n_rows:
        return None
    if info.value_type == "text":
        if info.kind == "date_text" or (info.single_token or 0.0) < ID_MIN_SINGLE_TOKEN:
            return None
        return "single_tokens", None, None
    if info.value_type != "numeric":
        return None
    values = numeric_values(column.dropna())
    if not np.isfinite(values).all() or info.n_unique != len(values):
        return None
    if not np.all(values == np.round(values)):
        return None
    value_range = (float(values.min()), float(values.max()))
    steps = np.diff(values)
    if np.all(steps > 0) or np.all(steps < 0):
        return "ordered_integers", None, value_range
    density = info.n_unique / (value_range[1] - value_range[0] + 1)
    if density >= ID_MIN_DENSITY:
        return "dense_integers", float(density), value_range
    return None
