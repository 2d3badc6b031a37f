"""Which input column each featurized column comes from.

A fitted :class:`~sklearn.compose.ColumnTransformer` says which input columns each
of its transformers reads (``transformers_``) and where its outputs land in the
matrix (``output_indices_``). Inside one transformer, outputs are traced to inputs
by the fitted step itself: the imputer's kept columns and missing indicators, the
one-hot encoder's categories (infrequent ones pooled, dropped ones left out), the
target encoder's classes, the ordinal encoder's code per column, the calendar parts
of each date column. A transformer that reads one column gives all its outputs to it.
Names are compared only as a last resort, for a user's own transformer of several
columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ModelError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FeatureMap", "feature_map"]


class FeatureMap:
    """The featurized columns of a model and the input column of each.

    Parameters
    ----------
    names : list of str
        Featurized column names, in matrix order.
    sources : list of str
        The input column each one comes from.
    inputs : list of str, optional
        The input columns, in the model's order (default: those of ``sources``); a
        column without features (a text column with no frequent word) contributes 0.
    """

    def __init__(
        self, names: list[str], sources: list[str], inputs: list[str] | None = None
    ) -> None:
        if len(names) != len(sources):
            raise ValueError("one source per feature")
        self.names = names
        self.sources = sources
        self.columns = list(inputs) if inputs is not None else list(dict.fromkeys(sources))

    def matrix(self) -> np.ndarray:
        """Return the 0/1 matrix (features x columns) that sums contributions per column."""
        import numpy as np

        columns = self.columns
        position = {name: index for index, name in enumerate(columns)}
        summing = np.zeros((len(self.sources), len(columns)))
        summing[np.arange(len(self.sources)), [position[s] for s in self.sources]] = 1.0
        return summing


def feature_map(featurizer: Any, inputs: list[str]) -> FeatureMap:
    """Trace every output column of a fitted featurizer to the input column it comes from.

    Parameters
    ----------
    featurizer : ColumnTransformer, Pipeline, "passthrough" or None
        The fitted steps before the estimator (``None``: the estimator reads the input
        columns themselves).
    inputs : list of str
        The columns the featurizer reads, in order.

    Raises
    ------
    ModelError
        If a featurized column cannot be traced to one input column.
    """
    if featurizer is None or featurizer == "passthrough":
        return FeatureMap(list(inputs), list(inputs), list(inputs))
    indices = _sources(featurizer, list(inputs))
    names = _names(featurizer, len(indices))
    return FeatureMap(names, [inputs[i] for i in indices], list(inputs))


def _names(featurizer: Any, width: int) -> list[str]:
    try:
        names = [str(n) for n in featurizer.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = []
    return names if len(names) == width else [f"feature_{i}" for i in range(width)]


def _sources(step: Any, inputs: list[str]) -> list[int]:
    """Index in ``inputs`` of the input each output column of ``step`` comes from."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from titanicml.features.transformers import DatetimeParts, GroupSize

    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, inputs)
    if isinstance(step, Pipeline):
        sources = list(range(len(inputs)))
        for _, inner in step.steps:
            if inner is None or inner == "passthrough":
                continue
            names = [inputs[i] for i in sources]
            sources = [sources[i] for i in _sources(inner, names)]
        return sources
    if step == "passthrough":
        return list(range(len(inputs)))
    if isinstance(step, SimpleImputer):
        return _imputer(step, len(inputs))
    if isinstance(step, OneHotEncoder):
        return _one_hot(step)
    if type(step).__name__ == "TargetEncoder":
        per_input = len(step.classes_) if step.target_type_ == "multiclass" else 1
        return [i for i in range(len(inputs)) for _ in range(per_input)]
    if isinstance(step, GroupSize | OrdinalEncoder | StandardScaler):
        return list(range(len(inputs)))
    if isinstance(step, DatetimeParts):
        return [step.columns_.index(column) for column, _ in step.parts_]
    if len(inputs) == 1:  # text tokens and any transformer of one column
        return [0] * _width(step, inputs)
    if isinstance(step, CountVectorizer):
        raise ModelError("a CountVectorizer reads one column; the featurizer gives it several")
    return _by_name(step, inputs)


def _column_transformer(transformer: Any, inputs: list[str]) -> list[int]:
    import numpy as np

    width = sum(s.stop - s.start for s in transformer.output_indices_.values())
    sources = np.full(width, -1)
    position = {name: index for index, name in enumerate(inputs)}
    for name, step, selected in transformer.transformers_:
        place = transformer.output_indices_.get(name)
        if step == "drop" or place is None or place.stop == place.start:
            continue
        columns = _selected(selected, inputs)
        inner = _sources(step, columns)
        if len(inner) != place.stop - place.start:
            raise ModelError(
                f"the featurizer's step {name!r} makes {place.stop - place.start} columns but "
                f"{len(inner)} were traced to its inputs; titanicml cannot sum its "
                "contributions by column"
            )
        sources[place] = [position[columns[i]] for i in inner]
    return [int(s) for s in sources]


def _selected(selected: Any, inputs: list[str]) -> list[str]:
    """Column names a ColumnTransformer step reads (names, positions or a mask)."""
    import numpy as np

    if isinstance(selected, str):
        return [selected]
    values = list(selected) if not callable(selected) else []
    if values and all(isinstance(v, str) for v in values):
        return [str(v) for v in values]
    array = np.asarray(values)
    if array.dtype == bool:
        return [c for c, keep in zip(inputs, array, strict=True) if keep]
    return [inputs[int(i)] for i in array]


def _imputer(imputer: Any, n_inputs: int) -> list[int]:
    import numpy as np

    statistics = np.asarray(imputer.statistics_)
    if imputer.keep_empty_features or statistics.dtype.kind in "OUS":
        kept = list(range(n_inputs))
    else:
        kept = [i for i in range(n_inputs) if not np.isnan(statistics[i])]
    indicator = getattr(imputer, "indicator_", None)
    flagged = [] if indicator is None else [int(i) for i in indicator.features_]
    return kept + flagged


def _one_hot(encoder: Any) -> list[int]:
    drop = getattr(encoder, "drop_idx_", None)
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(
        encoder.categories_
    )
    sources = []
    for index, categories in enumerate(encoder.categories_):
        count = len(categories)
        pooled = infrequent[index]
        if pooled is not None and len(pooled):
            count -= len(pooled) - 1
        if drop is not None and drop[index] is not None:
            count -= 1
        sources.extend([index] * count)
    return sources


def _width(step: Any, inputs: list[str]) -> int:
    try:
        return len(step.get_feature_names_out(inputs))
    except (AttributeError, ValueError, TypeError):
        return len(step.get_feature_names_out())


def _by_name(step: Any, inputs: list[str]) -> list[int]:
    """Trace outputs by name: the input named so, or whose name plus "_" starts it."""
    try:
        names = [str(n) for n in step.get_feature_names_out(inputs)]
    except (AttributeError, ValueError, TypeError) as exc:
        raise ModelError(
            f"the featurizer step {type(step).__name__} does not name its output columns, so "
            "titanicml cannot tell which input column each comes from"
        ) from exc
    sources = []
    for name in names:
        matches = [i for i, c in enumerate(inputs) if name == c or name.startswith(f"{c}_")]
        if not matches:
            raise ModelError(
                f"the featurized column {name!r} of {type(step).__name__} names none of its "
                f"input columns ({', '.join(inputs)}); titanicml cannot sum it by column"
            )
        sources.append(max(matches, key=lambda i: len(inputs[i])))
    return sources
