"""Decide, per column, how it becomes features; build the scikit-learn transformer.

=============  ===========================================================
kind           featurization
=============  ===========================================================
numeric        median imputation plus a missing indicator
categorical    one-hot (few values; rare ones pooled as "infrequent")
encoded        target encoding, cross-fitted (many values, not free text)
text           binary bag of the most frequent words (free text)
datetime       calendar parts (year, month, day, weekday, ...)
dropped        not used; the reason says why
=============  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

__all__ = ["KINDS", "ColumnPlan", "FeaturePlan", "plan_features"]

KINDS = ("numeric", "categorical", "encoded", "text", "datetime", "dropped")
# A text column with at most this many distinct values is one-hot encoded.
MAX_ONE_HOT_CATEGORIES = 15
# A category seen fewer times than this is pooled as "infrequent".
MIN_CATEGORY_COUNT = 5
# Free text: at least this many words per value on average.
MIN_WORDS_PER_TEXT = 2.0
MISSING_CATEGORY = "__missing__"
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


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
    """

    name: str
    kind: str
    dtype: str
    reason: str = ""


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

        return pd.DataFrame(
            [c.__dict__ for c in self.columns], columns=list(ColumnPlan.__annotations__)
        )

    def build(self) -> ColumnTransformer:
        """Build the unfitted scikit-learn transformer for this plan."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, TargetEncoder

        from titanicml.features.transformers import DatetimeParts, TextTokens

        def missing_category() -> SimpleImputer:
            return SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)

        steps = []
        if numeric := self.names("numeric"):
            steps.append(("numeric", SimpleImputer(strategy="median", add_indicator=True), numeric))
        if categorical := self.names("categorical"):
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_COUNT,
                sparse_output=False,
                dtype=float,
            )
            steps.append(("categorical", make_pipeline(missing_category(), encoder), categorical))
        if encoded := self.names("encoded"):
            target_type = "continuous" if self.task == "regression" else self.task
            encoder = TargetEncoder(target_type=target_type, **self._cross_fitting())
            steps.append(("encoded", make_pipeline(missing_category(), encoder), encoded))
        steps.extend((f"text_{name}", TextTokens(), [name]) for name in self.names("text"))
        if dates := self.names("datetime"):
            steps.append(("datetime", DatetimeParts(), dates))
        return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)

    def _cross_fitting(self) -> dict:
        """Shuffled, seeded cross-fitting folds, in the spelling of the installed scikit-learn."""
        from sklearn import __version__ as sklearn_version
        from sklearn.model_selection import KFold, StratifiedKFold

        if tuple(int(p) for p in sklearn_version.split(".")[:2]) < (1, 9):
            return {"shuffle": True, "random_state": self.seed}
        splitter = KFold if self.task == "regression" else StratifiedKFold
        return {"cv": splitter(5, shuffle=True, random_state=self.seed)}


def plan_features(
    frame: pd.DataFrame,
    exclude: Sequence[str] = (),
    dropped: Mapping[str, str] | None = None,
    task: str = "binary",
    seed: int = 0,
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
    """
    dropped = dict(dropped or {})
    plans = []
    for name in frame.columns:
        reason = "excluded by the user" if name in exclude else dropped.get(name, "")
        plans.append(_plan_column(frame[name], reason))
    return FeaturePlan(tuple(plans), task=task, seed=seed)


def _plan_column(column: pd.Series, drop_reason: str) -> ColumnPlan:
    import pandas as pd

    name = str(column.name)
    if pd.api.types.is_datetime64_any_dtype(column):
        dtype = "datetime"
    elif pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
        dtype = "integer"
    elif pd.api.types.is_numeric_dtype(column):
        dtype = "number"
    else:
        dtype = "string"
    if drop_reason:
        return ColumnPlan(name, "dropped", dtype, drop_reason)
    values = column.dropna()
    n_unique = values.nunique()
    if n_unique == 0:
        return ColumnPlan(name, "dropped", dtype, "every value is missing")
    if n_unique == 1 and len(values) == len(column):
        return ColumnPlan(name, "dropped", dtype, "constant: one value in every row")
    if dtype in ("integer", "number"):
        return ColumnPlan(name, "numeric", dtype, "median-imputed, with a missing indicator")
    if dtype == "datetime" or _looks_like_dates(values):
        return ColumnPlan(name, "datetime", "datetime", "calendar parts")
    if n_unique <= MAX_ONE_HOT_CATEGORIES:
        return ColumnPlan(name, "categorical", dtype, f"one-hot, {n_unique} categories")
    words = values.astype(str).str.split().str.len().mean()
    if words >= MIN_WORDS_PER_TEXT:
        return ColumnPlan(name, "text", dtype, f"free text ({words:.1f} words a value): word flags")
    return ColumnPlan(
        name, "encoded", dtype, f"{n_unique} distinct values: target-encoded, cross-fitted"
    )


def _looks_like_dates(values: pd.Series, sample: int = 200) -> bool:
    head = values.astype(str).head(sample)
    return bool(len(head)) and head.map(lambda v: bool(_DATE_LIKE.match(v))).mean() >= 0.9
