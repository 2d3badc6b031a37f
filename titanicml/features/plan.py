"""Decide, per column, how it becomes features; build the scikit-learn transformer.

=============  ===========================================================
kind           featurization
=============  ===========================================================
numeric        median imputation plus a missing indicator, standardized (for the
               linear families; trees split the same)
categorical    one-hot (few values; rare ones pooled as "infrequent")
encoded        target encoding, cross-fitted, and the size of the row's group (the
               rows sharing its value: a ticket's passengers, an agent's bookings)
text           binary bag of the most frequent words (free text)
datetime       calendar parts (year, month, day, weekday, ...)
dropped        not used; the reason says why
=============  ===========================================================

On a large table (``codes=True``: the local search asks for it above
``SPLIT_ABOVE_ROWS`` rows) every categorical and encoded column of at least
``MIN_CODED_CATEGORIES`` values also gives its category code: the category's rank in
sorted order (missing values one more category, unseen ones -1), standardized. A tree
splits a column's categories in ranges of the code, which the one-hot columns and the
cross-fitted, noisy target encoding cannot offer it (measured: docs/backends.md).

The kind follows the column's kind in :mod:`titanicml.data.columns` (the data checks
use the same classification): ``category`` is one-hot encoded (at most
``MAX_ONE_HOT_CATEGORIES`` values), ``high_cardinality`` target-encoded, ``free_text``
word flags, ``date_text`` and ``datetime`` calendar parts, ``numeric`` and ``boolean``
numeric, ``empty`` and ``constant`` dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml._utils.sklearn_compat import target_encoder
from titanicml.data.columns import (
    MAX_ONE_HOT_CATEGORIES,
    UNUSABLE,
    ColumnInfo,
    classify_column,
    value_type,
)

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

__all__ = ["KINDS", "MAX_ONE_HOT_CATEGORIES", "ColumnPlan", "FeaturePlan", "plan_features"]

KINDS = ("numeric", "categorical", "encoded", "text", "datetime", "dropped")
# The columns of FeaturePlan.to_frame (the featurization table of a result and a model).
TABLE_COLUMNS = ("name", "kind", "dtype", "reason")
# A category seen fewer times than this is pooled as "infrequent".
MIN_CATEGORY_COUNT = 5
MISSING_CATEGORY = "__missing__"
#: A large table's categorical column gets a code from this many values: below, its
#: one-hot columns let a tree isolate any set of values in a split or two (measured:
#: docs/backends.md).
MIN_CODED_CATEGORIES = 5

# How each kind of titanicml.data.columns is featurized (id_like: by its base kind).
FEATURIZATION = {
    "empty": "dropped",
    "constant": "dropped",
    "boolean": "numeric",
    "numeric": "numeric",
    "datetime": "datetime",
    "date_text": "datetime",
    "category": "categorical",
    "free_text": "text",
    "high_cardinality": "encoded",
}


@dataclass(frozen=True)
class ColumnPlan:
    """How one input column is used.

    Attributes
    ----------
    name : str
        Column name.
    kind : str
        One of :data:`KINDS`.
    dtype : {"integer", "number", "string", "datetime"}
        The type the column had in training, which the model expects at predict time.
    reason : str
        Sentence for a human: how it is featurized, or why it is dropped.
    source_dtype : str
        The column's pandas dtype in the training data (``"bool"``, ``"Int64"``,
        ``"category"``, ``"datetime64[us]"``, ...): the model's MLflow signature is
        typed from it. Empty in plans made before titanicml recorded it.
    coded : bool
        Whether the column also gives its category code (a large table's categorical
        or encoded column of at least ``MIN_CODED_CATEGORIES`` values).
    """

    name: str
    kind: str
    dtype: str
    reason: str = ""
    source_dtype: str = ""
    coded: bool = False


@dataclass(frozen=True)
class FeaturePlan:
    """The featurization of a table: one :class:`ColumnPlan` per input column.

    Attributes
    ----------
    columns : tuple of ColumnPlan
        In input order.
    task : str
        Task of the target (target encoding depends on it).
    seed : int
        Seed of the cross-fitting folds of target encoding.
    """

    columns: tuple[ColumnPlan, ...]
    task: str = "binary"
    seed: int = 0

    def names(self, kind: str) -> list[str]:
        """Columns of one kind, in input order."""
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def inputs(self) -> list[ColumnPlan]:
        """Columns the model reads (all but the dropped ones)."""
        return [c for c in self.columns if c.kind != "dropped"]

    def to_frame(self) -> pd.DataFrame:
        """Return the plan as a table (name, kind, dtype, reason)."""
        import pandas as pd

        rows = [{name: getattr(c, name) for name in TABLE_COLUMNS} for c in self.columns]
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    def build(self) -> ColumnTransformer:
        """Build the unfitted scikit-learn transformer for this plan."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

        from titanicml.features.transformers import DatetimeParts, GroupSize, TextTokens

        def missing_category() -> SimpleImputer:
            return SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)

        steps = []
        if numeric := self.names("numeric"):
            imputer = SimpleImputer(strategy="median", add_indicator=True)
            steps.append(("numeric", make_pipeline(imputer, StandardScaler()), numeric))
        if categorical := self.names("categorical"):
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_COUNT,
                sparse_output=False,
                dtype=float,
            )
            steps.append(("categorical", make_pipeline(missing_category(), encoder), categorical))
        if encoded := self.names("encoded"):
            encoder = target_encoder(self.task, self.seed)
            steps.append(("encoded", make_pipeline(missing_category(), encoder), encoded))
            steps.append(("group_size", GroupSize(), encoded))
        if coded := [c.name for c in self.columns if c.coded]:
            ranks = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            steps.append(
                ("codes", make_pipeline(missing_category(), ranks, StandardScaler()), coded)
            )
        steps.extend((f"text_{name}", TextTokens(), [name]) for name in self.names("text"))
        if dates := self.names("datetime"):
            steps.append(("datetime", DatetimeParts(), dates))
        return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def plan_features(
    frame: pd.DataFrame,
    exclude: Sequence[str] = (),
    dropped: Mapping[str, str] | None = None,
    task: str = "binary",
    seed: int = 0,
    columns: Mapping[str, ColumnInfo] | None = None,
    codes: bool = False,
) -> FeaturePlan:
    """Choose a role for every column of ``frame`` (the target already removed).

    Parameters
    ----------
    frame : DataFrame
        Feature columns.
    exclude : sequence of str
        Columns the user asked not to use.
    dropped : mapping of str to str, optional
        Columns the data checks removed, with the reason.
    task : str
        Task of the target.
    seed : int
        Seed for the cross-fitting of target encoding.
    columns : mapping of str to ColumnInfo, optional
        Classifications already made of these columns (the data checks'), reused.
    codes : bool
        Also give each categorical and encoded column's category code (large tables).
    """
    dropped = dict(dropped or {})
    known = columns or {}
    plans = []
    for name in frame.columns:
        reason = "excluded by the user" if name in exclude else dropped.get(name, "")
        plans.append(_plan_column(frame[name], reason, known.get(name), codes))
    return FeaturePlan(tuple(plans), task=task, seed=seed)


def _plan_column(
    column: pd.Series, drop_reason: str, info: ColumnInfo | None, codes: bool = False
) -> ColumnPlan:
    """Featurize a column as its kind (:func:`~titanicml.data.columns.classify_column`) says.

    A key (``id_like``) is featurized as what its values are: dropping keys is the data
    checks' call, which arrives as ``drop_reason``. With ``codes``, a categorical or
    encoded column of at least :data:`MIN_CODED_CATEGORIES` values is ``coded``.
    """
    name = str(column.name)
    dtype = _input_dtype(column, value_type(column))
    source = str(column.dtype)
    if drop_reason:
        return ColumnPlan(name, "dropped", dtype, drop_reason, source)
    info = info or classify_column(column)
    kind = info.base_kind
    featurized = FEATURIZATION[kind]
    if featurized == "dropped":
        return ColumnPlan(name, "dropped", dtype, UNUSABLE[kind], source)
    if featurized == "numeric":
        reason = "median-imputed, with a missing indicator; standardized"
        return ColumnPlan(name, "numeric", dtype, reason, source)
    if featurized == "datetime":
        return ColumnPlan(name, "datetime", "datetime", "calendar parts", source)
    coded = codes and info.n_unique >= MIN_CODED_CATEGORIES
    code = "; and its category code" if coded else ""
    if featurized == "categorical":
        reason = f"one-hot, {info.n_unique} categories{code}"
        return ColumnPlan(name, "categorical", dtype, reason, source, coded)
    if featurized == "text":
        reason = f"free text ({info.words:.1f} words a value): word flags"
        return ColumnPlan(name, "text", dtype, reason, source)
    reason = f"{info.n_unique} distinct values: target-encoded, cross-fitted; and group size"
    return ColumnPlan(name, "encoded", dtype, reason + code, source, coded)


def _input_dtype(column: pd.Series, values: str) -> str:
    """Return the type the model expects at predict time: integer, number, string, datetime."""
    import pandas as pd

    if values == "datetime":
        return "datetime"
    if values == "boolean" or pd.api.types.is_integer_dtype(column.dtype):
        return "integer"
    return "number" if values == "numeric" else "string"
