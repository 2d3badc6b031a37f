"""Decide, per column, how it becomes features; build the scikit-learn transformer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

__all__ = ["ColumnPlan", "FeaturePlan", "plan_features"]

# A text column with at most this many distinct values is one-hot encoded.
MAX_ONE_HOT_CATEGORIES = 30
# A category seen fewer times than this is pooled as "infrequent".
MIN_CATEGORY_COUNT = 5
MISSING_CATEGORY = "__missing__"


@dataclass(frozen=True)
class ColumnPlan:
    """How one input column is used.

    Attributes
    ----------
    name : str
        Column name.
    kind : {"numeric", "categorical", "dropped"}
        Role of the column.
    dtype : {"integer", "number", "string"}
        The type the column had in training, which the model expects at predict time.
    reason : str
        Sentence for a human, e.g. why a column was dropped.
    """

    name: str
    kind: str
    dtype: str
    reason: str = ""


@dataclass(frozen=True)
class FeaturePlan:
    """The featurization of a table: one :class:`ColumnPlan` per input column."""

    columns: tuple[ColumnPlan, ...]

    def names(self, kind: str) -> list[str]:
        """Columns of one kind, in input order."""
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def inputs(self) -> list[ColumnPlan]:
        """Columns the model reads (all but the dropped ones)."""
        return [c for c in self.columns if c.kind != "dropped"]

    def to_frame(self) -> pd.DataFrame:
        """Return the plan as a table (column, kind, dtype, reason)."""
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.columns])

    def build(self) -> ColumnTransformer:
        """Build the unfitted scikit-learn transformer for this plan."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        steps = []
        numeric = self.names("numeric")
        if numeric:
            steps.append(("numeric", SimpleImputer(strategy="median", add_indicator=True), numeric))
        categorical = self.names("categorical")
        if categorical:
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_CATEGORY_COUNT,
                sparse_output=False,
                dtype=float,
            )
            imputer = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)
            steps.append(("categorical", make_pipeline(imputer, encoder), categorical))
        return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def plan_features(frame: pd.DataFrame, exclude: tuple[str, ...] | list[str] = ()) -> FeaturePlan:
    """Choose a role for every column of ``frame`` (the target already removed).

    Parameters
    ----------
    frame : DataFrame
        Feature columns.
    exclude : sequence of str
        Columns the user asked not to use.
    """
    import pandas as pd

    plans = []
    for name in frame.columns:
        column = frame[name]
        is_numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        if pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
            dtype = "integer"
        else:
            dtype = "number" if is_numeric else "string"
        n_unique = column.nunique(dropna=True)
        if name in exclude:
            plans.append(ColumnPlan(name, "dropped", dtype, "excluded by the user"))
        elif n_unique == 0:
            plans.append(ColumnPlan(name, "dropped", dtype, "every value is missing"))
        elif n_unique == 1 and not column.isna().any():
            plans.append(ColumnPlan(name, "dropped", dtype, "constant: one value in every row"))
        elif is_numeric:
            plans.append(ColumnPlan(name, "numeric", dtype, "median-imputed, missing indicator"))
        elif n_unique <= MAX_ONE_HOT_CATEGORIES:
            plans.append(ColumnPlan(name, "categorical", dtype, f"one-hot, {n_unique} categories"))
        else:
            plans.append(
                ColumnPlan(
                    name,
                    "dropped",
                    dtype,
                    f"high-cardinality text ({n_unique} distinct values)",
                )
            )
    return FeaturePlan(tuple(plans))
