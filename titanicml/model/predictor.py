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
    from titanicml.model.fastpath import RowScorer

__all__ = ["PROBABILITY_PREFIX", "Scored", "TabularModel"]

PROBABILITY_PREFIX = "probability_"
# Up to this many rows, the compiled row scorer beats pandas; above, the pipeline does.
FAST_PATH_MAX_ROWS = 256


@dataclass
class Scored:
    """Predictions for a batch of request rows.

    Attributes
    ----------
    labels : list
        Predicted labels (original values) or regression values.
    probabilities : ndarray or None
        One column per class, in :attr:`TabularModel.classes` order.
    warnings : list of str
        Sentences about imputed columns.
    """

    labels: list
    probabilities: np.ndarray | None
    warnings: list[str]


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

    def score_records(self, records: list[dict[str, Any]]) -> Scored:
        """Score request records strictly (unknown columns refused), fast for small batches.

        Small batches go through the compiled :class:`~titanicml.model.fastpath.RowScorer`;
        large ones, or models it cannot compile, through the pandas pipeline. Both
        give the same numbers.
        """
        import numpy as np

        scorer = self._row_scorer()
        if scorer is not None and len(records) <= FAST_PATH_MAX_ROWS:
            warnings = scorer.check(records)
            output = scorer.output(scorer.features(records))
        else:
            frame, warnings = self.prepare(records, strict=True)
            output = (
                self.pipeline.predict_proba(frame)
                if self.is_classifier
                else (self.pipeline.predict(frame))
            )
        if not self.is_classifier:
            return Scored(output.tolist(), None, warnings)
        proba = output
        labels = np.asarray(self.classes)[proba.argmax(axis=1)].tolist()
        return Scored(labels, proba, warnings)

    def _row_scorer(self) -> RowScorer | None:
        """Compile the row scorer once; ``None`` when the featurizer has no compiled form."""
        if "_scorer" not in self.__dict__:
            from titanicml.model.fastpath import RowScorer, UnsupportedFeaturizer

            try:
                self.__dict__["_scorer"] = RowScorer(self)
            except UnsupportedFeaturizer:
                self.__dict__["_scorer"] = None
        return self.__dict__["_scorer"]

    def __getstate__(self) -> dict[str, Any]:
        # The compiled scorer is rebuilt after loading, never pickled.
        return {k: v for k, v in self.__dict__.items() if k != "_scorer"}

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
