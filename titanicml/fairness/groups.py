"""Sensitive columns: which names suggest one, and the groups each column's rows fall into.

A numeric column with many values (``Age``) is cut into bins, by quantile unless the
user gives the edges, and the bins are shown with the groups; a column with few
values (``Pclass``) and text columns keep their values. Missing values form their
own group, ``"missing"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MISSING_GROUP",
    "SENSITIVE_WORDS",
    "GroupColumn",
    "group_column",
    "intersect",
    "propose_sensitive",
]

#: Words in a column name that suggest a sensitive attribute (matched as whole words).
SENSITIVE_WORDS = frozenset(
    {
        "sex", "gender", "age", "race", "racial", "ethnicity", "ethnic", "religion",
        "religious", "nationality", "national", "citizenship", "birthplace", "disability",
        "disabled", "marital", "pregnant", "pregnancy", "orientation", "caste", "color",
        "colour", "language", "dob", "birthdate", "birthday",
    }
)  # fmt: skip
#: The group of rows whose sensitive value is missing.
MISSING_GROUP = "missing"
#: A numeric column with more distinct values than this is binned.
MAX_UNBINNED_VALUES = 10
#: Quantile bins of a numeric column, unless the user gives edges or a count.
DEFAULT_BINS = 4


def propose_sensitive(columns: Iterable[str]) -> list[str]:
    """Return the columns whose names suggest a sensitive attribute, in their order.

    Names are split into words (``passenger_age``, ``PassengerAge``, ``Age``); a
    column is proposed when one of its words is in :data:`SENSITIVE_WORDS`. A
    proposal only: nothing is assessed until the user names the columns.
    """
    proposed = []
    for column in columns:
        spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(column))
        words = set(re.split(r"[^a-z0-9]+", spaced.lower()))
        if words & SENSITIVE_WORDS:
            proposed.append(str(column))
    return proposed


@dataclass(frozen=True)
class GroupColumn:
    """The group of each row for one sensitive column (or an intersection of several).

    Attributes
    ----------
    name : str
        The column's name (``"Sex & Pclass"`` for an intersection).
    groups : Series
        Each row's group, as text.
    bins : list of float or None
        The edges a numeric column was cut at (the groups are ``(a, b]`` intervals,
        the first ``[a, b]``).
    order : list of str or None
        The groups in display order (bins in ascending order); default sorted.
    """

    name: str
    groups: pd.Series
    bins: list[float] | None = None
    order: list[str] | None = None


def group_column(
    frame: pd.DataFrame, column: str, bins: int | Sequence[float] | None = None
) -> GroupColumn:
    """Return the groups of ``frame[column]``, binning a numeric column with many values.

    Parameters
    ----------
    bins : int or sequence of float, optional
        A number of quantile bins, or the edges themselves; default: quantile
        bins (:data:`DEFAULT_BINS`) for a numeric column of more than
        :data:`MAX_UNBINNED_VALUES` values, the values themselves otherwise.

    Raises
    ------
    ConfigError
        For a column not in ``frame``, or bins given for a column that is not numeric.
    """
    import numpy as np
    import pandas as pd

    if column not in frame.columns:
        raise ConfigError(
            f"sensitive column {column!r} is not in the data; its columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    values = frame[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if bins is not None and not numeric:
        raise ConfigError(f"bins were given for {column!r}, which is not a numeric column")
    if not numeric or (bins is None and values.nunique() <= MAX_UNBINNED_VALUES):
        groups = values.astype(object).where(values.notna(), MISSING_GROUP).map(_label)
        return GroupColumn(column, groups.astype(object).reset_index(drop=True))
    numbers = values.astype("float64")
    if bins is None or isinstance(bins, int):
        count = DEFAULT_BINS if bins is None else int(bins)
        edges = np.unique(np.nanquantile(numbers.dropna(), np.linspace(0, 1, count + 1)))
    else:
        edges = np.unique(np.asarray(list(bins), dtype="float64"))
    if len(edges) < 2:
        raise ConfigError(f"column {column!r} has too few distinct values to bin; give the edges")
    codes = pd.Series(pd.cut(numbers, edges, include_lowest=True, labels=False), dtype="float64")
    names = [
        f"{'[' if i == 0 else '('}{_number(edges[i])}, {_number(edges[i + 1])}]"
        for i in range(len(edges) - 1)
    ]
    labels = codes.map(lambda code: names[int(code)] if code == code else "outside the bins")
    labels = labels.astype(object).where(numbers.notna(), MISSING_GROUP)
    order = [*names, "outside the bins", MISSING_GROUP]
    return GroupColumn(column, labels.reset_index(drop=True), [float(e) for e in edges], order)


def intersect(columns: Sequence[GroupColumn]) -> GroupColumn:
    """Return the intersectional groups of several columns (``"female, 3"``)."""
    import pandas as pd

    joined = pd.concat([c.groups for c in columns], axis=1).astype(str).agg(", ".join, axis=1)
    return GroupColumn(" & ".join(c.name for c in columns), joined.astype(object))


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: float) -> str:
    return f"{value:g}"
