"""TabularModel: featurization plus the best estimator, predicting on raw rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ColumnError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from titanicml.features.plan import FeaturePlan

__all__ = ["PROBABILITY_PREFIX", "TabularModel"]

PROBABILITY_PREFIX = "probability_"


@dataclass
class TabularModel:
    """A fitted model that takes raw rows, as they come in the training file.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Featurizer followed by the estimator, fitted on encoded labels.
    plan : FeaturePlan
        The input columns and their expected types.
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    classes : list, optional
        Original label of each encoded class.
    info : dict
        Free-form facts kept with the model (estimator name, metrics, ...).
    """

    pipeline: Pipeline
    plan: FeaturePlan
    task: str
    classes: list | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_columns(self) -> list[str]:
        """Columns the model reads, in training order."""
        return [c.name for c in self.plan.inputs]

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes."""
        return self.task != "regression"

    def prepare(self, rows: Any, strict: bool = False) -> tuple[pd.DataFrame, list[str]]:
        """Turn rows into the frame the pipeline expects.

        Parameters
        ----------
        rows : DataFrame, dict or list of dicts
            Raw rows; columns the model does not use are ignored unless ``strict``.
        strict : bool
            Refuse columns the model does not know (serving does this).

        Returns
        -------
        frame : DataFrame
            The input columns in training order, with the expected types.
        warnings : list of str
            One sentence per input column that was absent and will be imputed.
        """
        import pandas as pd

        if isinstance(rows, dict):
            rows = [rows]
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(rows)
        if frame.shape[0] == 0:
            raise DataError("no rows to score; send at least one row")
        frame = frame.rename(columns=str)
        known = set(self.input_columns)
        if strict:
            dropped = {c.name for c in self.plan.columns if c.kind == "dropped"}
            unknown = [c for c in frame.columns if c not in known and c not in dropped]
            if unknown:
                raise ColumnError(
                    f"unknown column(s) {', '.join(map(repr, unknown))}; the model takes: "
                    f"{', '.join(self.input_columns)}"
                )
        missing = [c for c in self.input_columns if c not in frame.columns]
        frame = frame.reindex(columns=self.input_columns)
        for column in self.plan.inputs:
            frame[column.name] = _coerce(frame[column.name], column.dtype)
        warnings = [f"column {c!r} was absent and has been imputed" for c in missing]
        return frame, warnings

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, one column per class in :attr:`classes` order."""
        if not self.is_classifier:
            raise ModelTaskError("predict_proba is for classifiers; this model is a regressor")
        frame, _ = self.prepare(rows)
        return self.pipeline.predict_proba(frame)

    def predict(self, rows: Any) -> np.ndarray:
        """Predicted labels (original label values) or regression values."""
        import numpy as np

        frame, _ = self.prepare(rows)
        if not self.is_classifier:
            return self.pipeline.predict(frame)
        return np.asarray(self.classes)[self.pipeline.predict_proba(frame).argmax(axis=1)]

    def predict_frame(self, rows: Any) -> pd.DataFrame:
        """Predictions as a table: ``prediction`` plus one ``probability_<class>`` per class."""
        import numpy as np
        import pandas as pd

        frame, _ = self.prepare(rows)
        if not self.is_classifier:
            return pd.DataFrame({"prediction": self.pipeline.predict(frame)})
        proba = self.pipeline.predict_proba(frame)
        out = {"prediction": np.asarray(self.classes)[proba.argmax(axis=1)]}
        for index, label in enumerate(self.classes or []):
            out[f"{PROBABILITY_PREFIX}{label}"] = proba[:, index]
        return pd.DataFrame(out)


class ModelTaskError(DataError):
    """The call does not apply to the model's task."""


def _coerce(column: pd.Series, dtype: str) -> pd.Series:
    import pandas as pd

    if dtype == "datetime":
        converted = pd.to_datetime(column, errors="coerce", format="mixed")
        bad = column[converted.isna() & column.notna()]
        if not bad.empty:
            raise ColumnError(
                f"column {column.name!r} must be a date or time, got {bad.iloc[0]!r}; "
                "send an ISO 8601 date such as 2024-05-01 or leave it out"
            )
        return converted
    if dtype != "string":
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            return column.astype(float)
        converted = pd.to_numeric(column, errors="coerce")
        bad = column[converted.isna() & column.notna()]
        if not bad.empty:
            raise ColumnError(
                f"column {column.name!r} must be a number, got {bad.iloc[0]!r}; "
                "send a number or leave it out"
            )
        return converted.astype(float)
    import numpy as np

    # scikit-learn's imputers take NaN, not None, as the missing marker of text columns.
    text = column.map(lambda v: v if isinstance(v, str) else str(v), na_action="ignore")
    return text.astype(object).where(column.notna(), np.nan)
