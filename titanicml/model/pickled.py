"""A plain pickle of a fitted scikit-learn estimator, wrapped as a titanicml model.

The hands-on's ``train.py`` ends with ``joblib.dump(model, "outputs/model.pkl")``:
a fitted ``Pipeline`` and nothing else, no signature, nobody's signature.
:func:`read_pickle` reads such a file (through the allow-list of
:mod:`titanicml.model.unpickle`, so a pickle naming anything but scikit-learn, NumPy,
SciPy, pandas, LightGBM or XGBoost objects is refused before it runs),
:func:`build_pickled_model` gives it the input columns it reads, and the result,
a :class:`PickledModel`, is saved by :func:`titanicml.model.artifact.save_model` as
any titanicml model: an MLflow model directory signed with the workspace's key.

The input columns (the model's signature) come, in this order, from rows given
by the user (``--sample-input``), from the schema of the data the job that wrote the
file trained on (its MLflow run's dataset inputs), or from the columns the
estimator records in ``feature_names_in_``, typed from its fitted encoders and
imputers. :class:`PickledModel` is a :class:`~titanicml.model.predictor.TabularModel`
whose predictions are the estimator's own, so every path that serves a titanicml
model (the endpoint and its dialects, batch scoring, ``mlflow.pyfunc``) serves it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sklearn.base import clone
from sklearn.utils.metaestimators import available_if

from titanicml.exceptions import DataError, ModelError, UnsafePickleError
from titanicml.features.plan import ColumnPlan, FeaturePlan
from titanicml.model.predictor import Scored, TabularModel, example_rows

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "PickleFile",
    "PickledModel",
    "build_pickled_model",
    "describe_model_file",
    "is_pickle_file",
    "read_pickle",
    "read_sample",
]

#: The featurization kind of a column the user's estimator reads itself.
KIND = "estimator"
# How each compression joblib writes starts (zlib, gzip, bz2, xz, lzma, lz4).
_COMPRESSED = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"]\x00\x00", b"\x04\x22\x4d\x18")
# MLflow column types, as (the plan's dtype, the pandas dtype the signature is typed from).
_SCHEMA_DTYPES = {
    "long": ("integer", "int64"),
    "integer": ("integer", "int64"),
    "double": ("number", "float64"),
    "float": ("number", "float64"),
    "boolean": ("integer", "bool"),
    "string": ("string", "str"),
    "datetime": ("datetime", "datetime64[ns]"),
}
_NUMBER = ("number", "float64")
_TEXT = ("string", "str")
# A number whose dtype the fitted estimator does not tell (an imputer's statistics are
# floats whatever it was fitted on): "any" in the signature, so that MLflow passes both
# integers and floats through, and titanicml reads it as a number.
_SOME_NUMBER = ("number", "any")


def is_pickle_file(path: Path) -> bool:
    """Tell whether ``path`` is a file that starts as a pickle or a compressed joblib does."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(6)
    except OSError:
        return False
    return head.startswith(b"\x80") or head.startswith(_COMPRESSED)


def describe_model_file(path: Path) -> str:
    """Say what a file given where a model directory was expected is, and what to do."""
    path = Path(path)
    if is_pickle_file(path):
        return (
            f"{path} is a pickle file (a fitted model saved with joblib.dump or pickle.dump), "
            "not a model directory: register it first, then use it by name: "
            f"titanicml model register --name NAME --path {path} (then NAME@latest)"
        )
    if path.name == "MLmodel":
        return f"{path} is the MLmodel file of a model; give its folder, {path.parent}"
    return (
        f"{path} is a file, not a model directory; give a folder written by titanicml train "
        "--output, a registered model (NAME@latest) or runs:/RUN_ID/model"
    )


@dataclass(frozen=True)
class PickleFile:
    """A fitted estimator read from a pickle, and what identifies the file.

    Attributes
    ----------
    path : Path
        The file, absolute.
    sha256 : str
        The hash of the bytes that were unpickled.
    size : int
        Its size in bytes.
    estimator : Any
        The fitted estimator.
    """

    path: Path
    sha256: str
    size: int
    estimator: Any


def read_pickle(path: str | Path) -> PickleFile:
    """Unpickle a fitted estimator from a joblib or pickle file, through the allow-list.

    Raises
    ------
    ModelError
        If the file is missing, empty, compressed, not a pickle, truncated, or holds
        something that is not a fitted estimator; :class:`UnsafePickleError` if the
        pickle names anything outside the allow-list (nothing of it was run).
    """
    from titanicml.model.unpickle import load_pickled_model

    file = Path(path).expanduser().absolute()
    if not file.is_file():
        raise ModelError(f"no file at {file}; check --path")
    data = file.read_bytes()
    if not data:
        raise ModelError(f"{file} is empty (0 bytes); save the fitted model again")
    if data.startswith(_COMPRESSED):
        raise ModelError(
            f"{file} is a compressed joblib file, which titanicml does not read; save it "
            "uncompressed: joblib.dump(model, path) without compress="
        )
    if not data.startswith(b"\x80"):
        raise ModelError(
            f"{file} is not a pickle (it does not start as joblib.dump or pickle.dump "
            "writes); give the file your training script saved the fitted model to"
        )
    digest = hashlib.sha256(data).hexdigest()
    try:
        estimator = load_pickled_model(file, digest)
    except UnsafePickleError as exc:
        name = getattr(exc, "refused", "something")
        raise UnsafePickleError(
            f"{file} refers to {name}, which titanicml's allow-list does not admit (it admits "
            "the classes of scikit-learn, NumPy, SciPy, pandas, LightGBM and XGBoost, not "
            "functions or other modules' objects); nothing of it was run: save an estimator "
            "made of those packages' classes"
        ) from None
    except ModelError:
        raise ModelError(
            f"{file} is a damaged pickle (it could not be read to its end); save the fitted "
            "model again"
        ) from None
    _check_estimator(file, estimator)
    return PickleFile(file, digest, len(data), estimator)


def _check_estimator(file: Path, estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not callable(getattr(estimator, "predict", None)) or not hasattr(estimator, "get_params"):
        raise ModelError(
            f"{file} holds a {type(estimator).__name__}, not a scikit-learn estimator (an "
            "object with fit and predict); save the fitted model itself: "
            "joblib.dump(model, path)"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise ModelError(
            f"{file} holds a {type(estimator).__name__} that was not fitted; save it after "
            "model.fit(X, y)"
        ) from None
    except TypeError:
        pass  # not a scikit-learn estimator class: its predict says the rest


def read_sample(path: str | Path) -> pd.DataFrame:
    """Read example rows: a table file (CSV, Parquet), or a JSON request body of any dialect.

    Raises
    ------
    DataError
        If the file cannot be read as rows.
    """
    import pandas as pd

    from titanicml.data.io import read_table
    from titanicml.exceptions import DataFormatError, RequestError
    from titanicml.model.dialects import parse_request

    file = Path(path).expanduser()
    if file.suffix.lower() == ".json" and file.is_file():
        try:
            _, records = parse_request(file.read_bytes())
        except RequestError as exc:
            raise DataFormatError(f"cannot read rows from --sample-input {file}: {exc}") from None
        return pd.DataFrame.from_records(records)
    return read_table(file)


def build_pickled_model(
    pickle: PickleFile,
    sample: pd.DataFrame | None = None,
    sample_name: str = "--sample-input",
    schema: list[dict[str, Any]] | None = None,
    schema_name: str = "",
) -> PickledModel:
    """Wrap a fitted estimator as a model with input columns and a signature.

    Parameters
    ----------
    pickle : PickleFile
        The estimator and its file (:func:`read_pickle`).
    sample : DataFrame, optional
        Rows the estimator takes (``--sample-input``); columns it does not read
        (the target, ...) are left out when it records ``feature_names_in_``.
    sample_name : str
        How to name ``sample`` in messages.
    schema : list of dict, optional
        MLflow column specs (``{"name", "type"}``) of the data the estimator was
        trained on: the job's input data.
    schema_name : str
        Where ``schema`` comes from, for the model's metadata.

    Raises
    ------
    ModelError
        If no source gives the input columns (the message names ``--sample-input``),
        or the estimator cannot predict rows of those columns.
    """
    estimator = pickle.estimator
    names = _feature_names(estimator)
    frame = None
    if sample is not None:
        frame = _sample_columns(sample, names, sample_name)
        columns, origin = _columns_from_frame(frame), sample_name
    elif schema and names and {s.get("name") for s in schema} >= set(names):
        columns, origin = _columns_from_schema(schema, names), schema_name
    elif schema and not names:  # fitted on an array: the job's columns, in their order
        columns = _columns_from_schema(schema, [str(s.get("name")) for s in schema])
        origin = schema_name
    elif names:
        columns, origin = _columns_from_estimator(estimator, names), "feature_names_in_"
    else:
        raise ModelError(
            f"{pickle.path} holds a {type(estimator).__name__} that does not record its input "
            "columns (it was fitted on an array, not a DataFrame), and no job's data is known "
            "for it: give a few rows it takes with --sample-input FILE (a CSV or JSON file)"
        )
    task, classes = _task(estimator)
    plan = FeaturePlan(columns, task=task)
    info = {
        "estimator": _describe(estimator),
        "input_example": None if frame is None else example_rows(frame),
        "signature_from": origin,
        "source_file": str(pickle.path),
        "source_sha256": pickle.sha256,
    }
    model = PickledModel.from_fitted(estimator, plan, task, classes, info)
    if frame is not None:
        fix = "give rows of the columns it was trained on only (no target), as it was fitted"
        _check_predicts(model, frame.head(5), f"the rows of {sample_name}", fix)
    else:
        # A row of values the fitted steps learned: it checks the columns' types, and is
        # the example every scoring path warms up with (made-up text could be refused).
        rows = _placeholder_rows(estimator, columns)
        fix = "give a few rows it takes with --sample-input FILE"
        _check_predicts(model, rows, f"a row of the columns found in {origin}", fix)
        info["input_example"] = rows
    return model


class PickledModel(TabularModel):
    """A fitted estimator from a plain pickle, on raw rows, answering with its own predictions.

    A :class:`~titanicml.model.predictor.TabularModel` whose ``pipeline`` is the
    user's fitted estimator (any scikit-learn estimator or pipeline): rows are
    aligned to its input columns and their training types, then given to the
    estimator's own ``predict`` and ``predict_proba``. There is no compiled fast path:
    the estimator is the user's, and only it knows what its steps do.
    """

    def fit(self, X: Any, y: Any) -> PickledModel:
        """Fit a clone of the estimator on raw rows ``X`` and labels (or values) ``y``."""
        frame = self._frame(X)
        self.pipeline_ = clone(self.pipeline).fit(frame, y)
        _, self.fitted_classes_ = _task(self.pipeline_)
        return self

    def _row_scorer(self) -> None:
        return None

    def _has_proba(self) -> bool:
        estimator = self.__dict__.get("pipeline_", self.pipeline)
        return self.is_classifier and hasattr(estimator, "predict_proba")

    @property
    def has_probabilities(self) -> bool:
        """Whether the estimator gives class probabilities (``predict_proba``)."""
        return self._has_proba()

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class in :attr:`classes_` order."""
        return self._run("predict_proba", self._frame(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the estimator: labels (classifiers) or values (regressors)."""
        import numpy as np

        return np.asarray(self._run("predict", self._frame(X)))

    def score_records(self, records: list[dict[str, Any]]) -> Scored:
        """Score request records strictly (unknown columns refused) with the estimator."""
        frame, warnings = self.prepare(records, strict=True)
        frame = self._as_trained(frame)
        labels = self._run("predict", frame)
        proba = self._run("predict_proba", frame) if self._has_proba() else None
        import numpy as np

        return Scored(np.asarray(labels).tolist(), proba, warnings)

    def predict_frame(self, rows: Any) -> pd.DataFrame:
        """Predictions as a table: ``prediction`` plus one ``probability_<class>`` per class."""
        import pandas as pd

        from titanicml.model.predictor import PROBABILITY_PREFIX

        frame = self._frame(rows)
        out: dict[str, Any] = {"prediction": self._run("predict", frame)}
        if self._has_proba():
            proba = self._run("predict_proba", frame)
            for index, label in enumerate(self.labels or []):
                out[f"{PROBABILITY_PREFIX}{label}"] = proba[:, index]
        return pd.DataFrame(out)

    def _frame(self, rows: Any) -> pd.DataFrame:
        frame, _ = self.prepare(rows)
        return self._as_trained(frame)

    def _as_trained(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Give integer and boolean columns their training dtype back when no value is missing."""
        import numpy as np

        for column in self.plan.inputs:
            if column.source_dtype not in ("bool", "int64", "int32", "int16", "int8"):
                continue
            values = frame[column.name]
            if values.isna().any():
                continue
            if column.source_dtype == "bool":
                if values.isin([0.0, 1.0]).all():
                    frame[column.name] = values.astype(bool)
            elif bool(np.all(values == np.round(values))):
                frame[column.name] = values.astype(column.source_dtype)
        return frame

    def _run(self, method: str, frame: pd.DataFrame) -> Any:
        """Call the estimator; its refusal of the rows (missing values...) is a DataError."""
        estimator = self._fitted()
        # An estimator fitted on an array (no feature_names_in_) is given an array.
        rows = frame if hasattr(estimator, "feature_names_in_") else frame.to_numpy()
        try:
            return getattr(estimator, method)(rows)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            detail = _first_line(exc)
            if "NaN" in detail:
                detail += " (this model takes no missing value: send every column of every row)"
            raise DataError(f"the model could not score these rows: {detail}") from None


def _feature_names(estimator: Any) -> list[str] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    return [str(name) for name in names]


def _sample_columns(sample: pd.DataFrame, names: list[str] | None, where: str) -> pd.DataFrame:
    if sample.empty:
        raise DataError(f"{where} holds no rows; give a few rows the model takes")
    if names is None:
        return sample
    missing = [n for n in names if n not in sample.columns]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) the estimator was trained on: "
            f"{', '.join(map(repr, missing))}; give rows with {', '.join(names)}"
        )
    return sample[names]


def _columns_from_frame(frame: pd.DataFrame) -> tuple[ColumnPlan, ...]:
    import pandas as pd

    columns = []
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kind = "datetime"
        elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
            kind = "integer"
        elif pd.api.types.is_numeric_dtype(dtype):
            kind = "number"
        else:
            kind = "string"
        columns.append(ColumnPlan(str(name), KIND, kind, "read by the estimator", str(dtype)))
    return tuple(columns)


def _columns_from_schema(schema: list[dict[str, Any]], names: list[str]) -> tuple[ColumnPlan, ...]:
    types = {str(s.get("name")): str(s.get("type")) for s in schema}
    columns = []
    for name in names:
        dtype, source = _SCHEMA_DTYPES.get(types[name], ("string", "object"))
        columns.append(ColumnPlan(name, KIND, dtype, "read by the estimator", source))
    return tuple(columns)


def _columns_from_estimator(estimator: Any, names: list[str]) -> tuple[ColumnPlan, ...]:
    """Type each input column from the fitted step that reads it (encoder, imputer...).

    A column an encoder learned text categories of is text (integers, if they were);
    one a median imputer, a scaler or the estimator itself reads is a number, of a
    dtype the estimator does not tell.
    """
    types = dict.fromkeys(names, _SOME_NUMBER)
    transformer = _column_transformer(estimator)
    for _, step, selected in getattr(transformer, "transformers_", []):
        if not isinstance(selected, list | tuple) or not all(isinstance(c, str) for c in selected):
            continue  # columns chosen by position, mask or callable: typed as numbers
        for index, column in enumerate(selected):
            if column in types:
                types[column] = _step_dtype(step, index)
    return tuple(
        ColumnPlan(name, KIND, types[name][0], "read by the estimator", types[name][1])
        for name in names
    )


def _column_transformer(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer

    if isinstance(estimator, ColumnTransformer):
        return estimator
    steps = getattr(estimator, "steps", None)
    if steps and isinstance(steps[0][1], ColumnTransformer):
        return steps[0][1]
    return None


def _step_dtype(step: Any, index: int) -> tuple[str, str]:
    """Return the (plan dtype, pandas dtype) of the ``index``-th column a fitted step reads."""
    if step == "drop":
        return _TEXT  # not read: any value passes
    steps = getattr(step, "steps", None)
    if steps:
        step = steps[0][1]
    categories = getattr(step, "categories_", None)
    if isinstance(categories, list) and index < len(categories):
        return _numpy_dtype(categories[index].dtype)
    statistics = getattr(step, "statistics_", None)
    if statistics is not None and getattr(statistics, "dtype", None) is not None:
        return _TEXT if statistics.dtype.kind in "OUS" else _SOME_NUMBER
    if hasattr(step, "vocabulary_"):
        return _TEXT
    return _SOME_NUMBER


def _numpy_dtype(dtype: Any) -> tuple[str, str]:
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return ("integer", "bool")
    if kind in "iu":
        return ("integer", "int64")
    if kind == "f":
        return _NUMBER
    return _TEXT


def _placeholder_rows(estimator: Any, columns: tuple[ColumnPlan, ...]) -> list[dict[str, Any]]:
    """One row of plausible values: a category or statistic the fitted steps learned."""
    values: dict[str, Any] = {}
    transformer = _column_transformer(estimator)
    for _, step, selected in getattr(transformer, "transformers_", []):
        if not isinstance(selected, list | tuple):
            continue
        inner = step.steps[0][1] if getattr(step, "steps", None) else step
        learned = getattr(inner, "categories_", None) or getattr(inner, "statistics_", None)
        for index, column in enumerate(selected):
            if learned is not None and index < len(learned):
                value = learned[index]
                value = value[0] if getattr(value, "ndim", 0) else value
                values[str(column)] = value.item() if hasattr(value, "item") else value
    blank = {"string": "", "datetime": "2024-01-01", "integer": 0, "number": 0.0}
    row = {}
    for column in columns:
        value = values.get(column.name, blank[column.dtype])
        if column.dtype == "number" and isinstance(value, int | float):
            value = float(value)
        row[column.name] = value
    return [row]


def _check_predicts(model: PickledModel, rows: Any, what: str, fix: str) -> None:
    try:
        model.predict(rows)
    except Exception as exc:  # the user's estimator: any error says it cannot take them
        detail = _first_line(exc).removeprefix("the model could not score these rows: ")
        raise ModelError(f"the estimator could not predict {what} ({detail}); {fix}") from None


def _task(estimator: Any) -> tuple[str, list | None]:
    """Return the task of a fitted estimator and its class labels (``None``: a regressor)."""
    from sklearn.base import is_regressor

    classes = getattr(estimator, "classes_", None)
    if classes is None or is_regressor(estimator):
        return "regression", None
    labels = [c.item() if hasattr(c, "item") else c for c in classes]
    return ("binary" if len(labels) == 2 else "multiclass"), labels


def _describe(estimator: Any) -> str:
    """``Pipeline(ColumnTransformer, RandomForestClassifier)``, ``LogisticRegression``."""
    steps = getattr(estimator, "steps", None)
    if steps:
        inner = ", ".join(type(step).__name__ for _, step in steps)
        return f"{type(estimator).__name__}({inner})"
    return type(estimator).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
