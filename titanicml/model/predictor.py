"""TabularModel: featurization plus the best estimator, a scikit-learn estimator on raw rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if

from titanicml.exceptions import ColumnError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.utils import Tags

    from titanicml.features.plan import FeaturePlan
    from titanicml.model.fastpath import RowScorer

__all__ = ["PROBABILITY_PREFIX", "Scored", "TabularModel", "example_rows", "prepare_rows"]

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
        One column per class, in :attr:`TabularModel.classes_` order.
    warnings : list of str
        Sentences about imputed columns.
    """

    labels: list
    probabilities: np.ndarray | None
    warnings: list[str]


def _is_classifier(model: TabularModel) -> bool:
    return model.task != "regression"


class TabularModel(BaseEstimator):
    """A model that takes raw rows, as they come in the training file.

    A scikit-learn estimator: a classifier or a regressor by its ``task``
    (:func:`sklearn.base.is_classifier` tells which), with ``fit``, ``predict``,
    ``predict_proba`` (classifiers only), ``score``, ``classes_``,
    ``feature_names_in_`` and ``n_features_in_``, so that :func:`sklearn.base.clone`,
    :func:`sklearn.inspection.permutation_importance`, fairlearn and SHAP take it.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Featurizer followed by the estimator, working on encoded labels ``0..k-1``;
        :meth:`fit` fits a clone of it.
    plan : FeaturePlan
        The input columns and their expected types.
    task : {"binary", "multiclass", "regression"}
        What the model predicts.
    classes : list, optional
        Original label of each encoded class, for a pipeline fitted elsewhere
        (:meth:`from_fitted`); :meth:`fit` learns them from ``y``.
    info : dict, optional
        Facts kept with the model (estimator name, metrics, input example, ...).

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted pipeline.
    classes_ : ndarray
        Class labels, in the column order of :meth:`predict_proba` (classifiers only).
    feature_names_in_ : ndarray
        The input columns, in training order.
    n_features_in_ : int
        How many input columns the model reads.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        plan: FeaturePlan,
        task: str,
        classes: list | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.plan = plan
        self.task = task
        self.classes = classes
        self.info = info

    @classmethod
    def from_fitted(
        cls,
        pipeline: Pipeline,
        plan: FeaturePlan,
        task: str,
        classes: list | None = None,
        info: dict[str, Any] | None = None,
    ) -> TabularModel:
        """Wrap a pipeline fitted on encoded labels (``classes[code]`` is each code's label)."""
        model = cls(pipeline, plan, task, classes, info if info is not None else {})
        model.pipeline_ = pipeline
        model.fitted_classes_ = list(classes) if classes is not None else None
        return model

    def fit(self, X: Any, y: Any) -> TabularModel:
        """Fit a clone of the pipeline on raw rows ``X`` and labels (or values) ``y``."""
        import numpy as np

        frame, _ = self.prepare(X)
        y = np.asarray(y)
        if len(y) != len(frame):
            raise DataError(f"X has {len(frame)} rows but y has {len(y)} values")
        if _is_classifier(self):
            labels, codes = np.unique(y, return_inverse=True)
            self.fitted_classes_ = [v.item() if hasattr(v, "item") else v for v in labels]
            target = codes
        else:
            self.fitted_classes_ = None
            target = y.astype(float)
        self.pipeline_ = clone(self.pipeline).fit(frame, target)
        self.__dict__.pop("_scorer", None)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return "pipeline_" in self.__dict__

    def __sklearn_tags__(self) -> Tags:
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        if _is_classifier(self):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=self.task == "multiclass")
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags

    @property
    def classes_(self) -> np.ndarray:
        """Class labels of a fitted classifier, in :meth:`predict_proba` column order."""
        import numpy as np

        if not _is_classifier(self):
            raise AttributeError("a regressor has no classes_")
        self._check_fitted()
        return np.asarray(self.fitted_classes_)

    @property
    def labels(self) -> list | None:
        """Class labels as a plain list, in :meth:`predict_proba` order (``None``: regressor)."""
        if not _is_classifier(self):
            return None
        self._check_fitted()
        return list(self.fitted_classes_)

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The input columns, in training order."""
        import numpy as np

        return np.asarray(self.input_columns, dtype=object)

    @property
    def n_features_in_(self) -> int:
        """How many input columns the model reads."""
        return len(self.plan.inputs)

    @property
    def input_columns(self) -> list[str]:
        """Columns the model reads, in training order."""
        return [c.name for c in self.plan.inputs]

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes."""
        return _is_classifier(self)

    def prepare(self, rows: Any, strict: bool = False) -> tuple[pd.DataFrame, list[str]]:
        """Turn raw rows into the frame the pipeline expects (see :func:`prepare_rows`)."""
        return prepare_rows(self.plan, rows, strict)

    @available_if(_is_classifier)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in :attr:`classes_` order."""
        frame, _ = self.prepare(X)
        return self._fitted().predict_proba(frame)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (original label values) or regression values."""
        frame, _ = self.prepare(X)
        pipeline = self._fitted()
        if not self.is_classifier:
            return pipeline.predict(frame)
        return self.classes_[pipeline.predict_proba(frame).argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classifiers) or R² (regressors) on raw rows, as scikit-learn's mixins."""
        from sklearn.metrics import accuracy_score, r2_score

        metric = accuracy_score if self.is_classifier else r2_score
        return float(metric(y, self.predict(X), sample_weight=sample_weight))

    def score_records(self, records: list[dict[str, Any]]) -> Scored:
        """Score request records strictly (unknown columns refused), fast for small batches.

        Small batches go through the compiled :class:`~titanicml.model.fastpath.RowScorer`;
        large ones, or models it cannot compile, through the pandas pipeline. Both
        give the same numbers.
        """
        scorer = self._row_scorer()
        if scorer is not None and len(records) <= FAST_PATH_MAX_ROWS:
            warnings = scorer.check(records)
            output = scorer.output(scorer.features(records))
        else:
            frame, warnings = self.prepare(records, strict=True)
            pipeline = self._fitted()
            output = (
                pipeline.predict_proba(frame) if self.is_classifier else pipeline.predict(frame)
            )
        if not self.is_classifier:
            return Scored(output.tolist(), None, warnings)
        labels = self.classes_[output.argmax(axis=1)].tolist()
        return Scored(labels, output, warnings)

    def predict_frame(self, rows: Any) -> pd.DataFrame:
        """Predictions as a table: ``prediction`` plus one ``probability_<class>`` per class."""
        import pandas as pd

        frame, _ = self.prepare(rows)
        pipeline = self._fitted()
        if not self.is_classifier:
            return pd.DataFrame({"prediction": pipeline.predict(frame)})
        proba = pipeline.predict_proba(frame)
        out = {"prediction": self.classes_[proba.argmax(axis=1)]}
        for index, label in enumerate(self.labels or []):
            out[f"{PROBABILITY_PREFIX}{label}"] = proba[:, index]
        return pd.DataFrame(out)

    def _fitted(self) -> Pipeline:
        self._check_fitted()
        return self.pipeline_

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)

    def _row_scorer(self) -> RowScorer | None:
        """Compile the row scorer once; ``None`` when the featurizer has no compiled form."""
        if "_scorer" not in self.__dict__:
            from titanicml.exceptions import UnsupportedFeaturizer
            from titanicml.model.fastpath import RowScorer

            try:
                self.__dict__["_scorer"] = RowScorer(self._fitted(), self.plan, self.is_classifier)
            except UnsupportedFeaturizer:
                self.__dict__["_scorer"] = None
        return self.__dict__["_scorer"]

    def __getstate__(self) -> dict[str, Any]:
        # The compiled scorer is rebuilt after loading, never pickled.
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k != "_scorer"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models saved before titanicml's estimator API held a fitted ``pipeline`` only.
        super().__setstate__(state)
        if "pipeline_" not in self.__dict__ and self.pipeline is not None:
            self.pipeline_ = self.pipeline
            self.fitted_classes_ = self.classes


def prepare_rows(
    plan: FeaturePlan, rows: Any, strict: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """Turn rows into the frame a model's pipeline expects.

    Parameters
    ----------
    plan : FeaturePlan
        The model's featurization plan (its input columns and their types).
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

    Raises
    ------
    DataError
        No rows; :class:`~titanicml.exceptions.ColumnError` for an unknown column
        (``strict``) or a value of the wrong type.
    """
    import pandas as pd

    if isinstance(rows, dict):
        rows = [rows]
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(rows)
    if frame.shape[0] == 0:
        raise DataError("no rows to score; send at least one row")
    frame = frame.rename(columns=str)
    inputs = [c.name for c in plan.inputs]
    if strict:
        known = {c.name for c in plan.columns}
        unknown = [c for c in frame.columns if c not in known]
        if unknown:
            raise ColumnError(
                f"unknown column(s) {', '.join(map(repr, unknown))}; the model takes: "
                f"{', '.join(inputs)}"
            )
    missing = [c for c in inputs if c not in frame.columns]
    frame = frame.reindex(columns=inputs)
    for column in plan.inputs:
        frame[column.name] = _coerce(frame[column.name], column.dtype, column.source_dtype)
    warnings = [f"column {c!r} was absent and has been imputed" for c in missing]
    return frame, warnings


def example_rows(inputs: pd.DataFrame, n_rows: int = 3) -> list[dict[str, Any]]:
    """Pick a few rows, complete ones first, as JSON-ready records (the input example).

    Missing values become ``None``, numpy scalars Python ones, dates ISO 8601 text,
    and other values (durations, ...) the text the model reads them as.
    """
    complete = inputs.dropna()
    sample = (complete if len(complete) >= n_rows else inputs).head(n_rows)
    records = sample.astype(object).where(sample.notna(), None).to_dict("records")
    return [{name: _json_value(value) for name, value in row.items()} for row in records]


def _json_value(value: Any) -> Any:
    import datetime

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.timedelta):
        return str(value)  # durations are read as text (see titanicml.data.columns)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _coerce(column: pd.Series, dtype: str, source_dtype: str = "") -> pd.Series:
    """Convert a column to the type the plan expects (``dtype``), refusing what does not fit.

    ``source_dtype`` is the column's dtype in training: dates of a column that had a
    time zone are put in it (naive ones are taken as its wall time).
    """
    import pandas as pd

    if dtype == "datetime":
        converted = _to_datetime(column, _time_zone(source_dtype))
        bad = column[converted.isna() & column.notna()]
        if not bad.empty:
            raise ColumnError(
                f"column {column.name!r} must be a date or time, got {bad.iloc[0]!r}; "
                "send an ISO 8601 date such as 2024-05-01 or leave it out"
            )
        return converted
    if dtype != "string":
        import numpy as np

        from titanicml.model.fastpath import not_a_number, not_finite

        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            converted = column.astype(float)
        else:
            try:
                converted = pd.to_numeric(column, errors="coerce")
            except OverflowError:  # an integer of over 308 digits
                raise not_finite(str(column.name), _beyond_float(column)) from None
            bad = column[converted.isna() & column.notna()]
            if not bad.empty:
                raise not_a_number(str(column.name), bad.iloc[0])
            converted = converted.astype(float)
        # As the row scorer: NaN is a missing value (imputed), an infinity is refused.
        infinite = np.isinf(converted.to_numpy())
        if infinite.any():
            raise not_finite(str(column.name), column[infinite].iloc[0])
        return converted
    import numpy as np

    # scikit-learn's imputers take NaN, not None, as the missing marker of text columns.
    if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        text = column  # already text: no per-cell conversion
    else:
        text = column.map(lambda v: v if isinstance(v, str) else str(v), na_action="ignore")
    return text.astype(object).where(column.notna(), np.nan)


def _to_datetime(column: pd.Series, time_zone: Any = None) -> pd.Series:
    """Parse dates and times, put in ``time_zone`` (the training column's) if it has one.

    Naive values are taken as wall times of that zone. Values of several zones, or
    aware and naive ones together, are parsed one by one (naive training columns
    keep each value's wall time).
    """
    import pandas as pd

    try:
        parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    except (TypeError, ValueError):  # several time zones, or aware and naive values
        stamps = [_timestamp(value, time_zone) for value in column]
        return pd.Series(pd.to_datetime(stamps), index=column.index, name=column.name)
    if time_zone is None or not pd.api.types.is_datetime64_any_dtype(parsed):
        return parsed
    if parsed.dt.tz is None:
        return parsed.dt.tz_localize(time_zone, ambiguous="NaT", nonexistent="NaT")
    return parsed.dt.tz_convert(time_zone)


def _timestamp(value: Any, time_zone: Any) -> Any:
    import pandas as pd

    stamp = pd.to_datetime(value, errors="coerce", format="mixed")
    if stamp is pd.NaT:
        return stamp
    if time_zone is None:
        return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp
    if stamp.tzinfo is None:
        return stamp.tz_localize(time_zone, ambiguous="NaT", nonexistent="NaT")
    return stamp.tz_convert(time_zone)


def _time_zone(source_dtype: str) -> Any:
    """Return the time zone of a datetime dtype name (``"datetime64[us, UTC]"``), or None."""
    if not source_dtype.startswith("datetime64[") or "," not in source_dtype:
        return None
    import pandas as pd

    try:
        return getattr(pd.api.types.pandas_dtype(source_dtype), "tz", None)
    except TypeError:
        return None


def _beyond_float(column: pd.Series) -> Any:
    """Return the first value of ``column`` too large for a float (an integer)."""
    for value in column:
        try:
            float(value)
        except OverflowError:
            return value
        except (TypeError, ValueError):
            continue
    return None
