"""Error cohorts: where a model fails most, as readable rules in the user's columns.

A shallow decision tree (scikit-learn's, Azure's error analysis defaults: depth 3, at
least 20 rows a leaf) is fitted on the rows' errors (wrong or right for classifiers,
absolute error for regressors) against the user's own columns: numbers as they are
(missing values routed by the tree itself), categories one-hot. Each leaf is a
cohort, named by the conditions on its path with the bounds of one column merged
(``Pclass = 3 and Sex = male and Age > 20``), with its error rate and coverage,
sorted from the worst. The errors are the out-of-fold ones on the training rows
(:mod:`titanicml.explain.outcomes`), so the cohorts are where the model fails on rows
it did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError
from titanicml.findings import Finding

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = ["Cohort", "ErrorCohorts", "analysis_columns", "error_cohorts", "find_cohorts"]

#: Azure ML's error analysis defaults.
MAX_DEPTH = 3
MIN_LEAF_ROWS = 20
# Categories one-hot encoded per column, most frequent first.
_MAX_CATEGORIES = 20
# Featurization kinds whose columns the analyses use (free text and IDs are left out).
_USED_KINDS = ("numeric", "categorical")


@dataclass(frozen=True)
class Cohort:
    """One leaf of the error tree.

    Attributes
    ----------
    rule : str
        ``"Pclass = 3 and Sex = male and Age > 20"`` (``"all rows"`` for a tree
        without a split).
    rows : int
    coverage : float
        Share of all rows.
    error : float
        Error rate (classifiers) or mean absolute error (regressors) in the cohort.
    overall : float
        The same on all rows.
    regression : bool
    """

    rule: str
    rows: int
    coverage: float
    error: float
    overall: float
    regression: bool = False

    def __str__(self) -> str:
        if self.regression:
            return (
                f"{self.rule}: mean absolute error {self.error:.4g} on {self.coverage:.0%} of "
                f"rows, against {self.overall:.4g} overall"
            )
        return (
            f"{self.rule}: {self.error:.0%} error on {self.coverage:.0%} of rows, against "
            f"{self.overall:.0%} overall"
        )


@dataclass
class ErrorCohorts:
    """The cohorts of an error analysis, worst first.

    Attributes
    ----------
    cohorts : list of Cohort
    overall : float
        Error rate (or mean absolute error) on all rows.
    n_rows : int
    columns : list of str
        The columns the tree split on.
    source : str
        ``"out-of-fold"`` or ``"model"`` (see :mod:`titanicml.explain.outcomes`).
    leaves : ndarray
        Each row's cohort (its index in :attr:`cohorts`).
    note : str
        Why the model's own predictions were used although it has out-of-fold ones.
    """

    cohorts: list[Cohort]
    overall: float
    n_rows: int
    columns: list[str]
    source: str
    leaves: np.ndarray = field(repr=False)
    note: str = ""

    def table(self) -> pd.DataFrame:
        """Return one row per cohort: rule, rows, coverage, error, lift over overall."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"cohort": c.rule, "rows": c.rows, "coverage": c.coverage, "error": c.error,
                 "lift": c.error / self.overall if self.overall else float("nan")}
                for c in self.cohorts
            ]
        )  # fmt: skip

    def findings(self) -> list[Finding]:
        """Return an ``error_cohort`` finding per cohort: alerted when worse than overall.

        First a ``cohorts_predictions`` finding when :attr:`note` says the errors may be
        in-sample (or which rows were left out).
        """
        said = []
        if self.note:
            said.append(Finding("cohorts_predictions", None, "alerted", self.note, "info"))
        return said + [
            Finding(
                "error_cohort",
                None,
                "alerted" if c.error > self.overall else "passed",
                str(c),
                figures={
                    "rule": c.rule,
                    "rows": c.rows,
                    "coverage": c.coverage,
                    "error": c.error,
                    "overall": self.overall,
                },
            )
            for c in self.cohorts
        ]


def analysis_columns(model: TabularModel, data: pd.DataFrame) -> list[str]:
    """Return the model's numeric and categorical input columns that ``data`` holds."""
    return [c.name for c in model.plan.inputs if c.kind in _USED_KINDS and c.name in data.columns]


def error_cohorts(
    model: TabularModel,
    data: pd.DataFrame,
    labels: Any = None,
    *,
    target: str | None = None,
    oof: pd.DataFrame | None = None,
    predictions: str = "auto",
    columns: Sequence[str] | None = None,
    holdout: pd.DataFrame | None = None,
    max_depth: int = MAX_DEPTH,
    min_leaf_rows: int = MIN_LEAF_ROWS,
    seed: int = 0,
) -> ErrorCohorts:
    """Find the cohorts where a model errs most on labelled rows.

    Parameters
    ----------
    model : TabularModel
    data : DataFrame
        Labelled rows (the training table for out-of-fold errors).
    labels, target, oof, predictions, holdout
        As :func:`titanicml.explain.outcomes.labelled_outcomes`.
    columns : sequence of str, optional
        The columns to describe cohorts in; default the model's numeric and
        categorical input columns (:func:`analysis_columns`).
    max_depth, min_leaf_rows : int
        The tree's depth and smallest leaf (Azure's defaults: 3 and 20).

    Raises
    ------
    ConfigError
        For a column not in ``data`` or unusable labels.
    """
    from titanicml.explain.outcomes import labelled_outcomes

    outcomes = labelled_outcomes(model, data, labels, target, oof, predictions, holdout)
    chosen = list(columns) if columns is not None else analysis_columns(model, outcomes.rows)
    errors = outcomes.errors.astype("float64")
    found = find_cohorts(outcomes.rows, errors, chosen, max_depth, min_leaf_rows, seed)
    found.regression = outcomes.task == "regression"
    return found.result(outcomes.source, outcomes.note)


@dataclass
class _Found:
    cohorts: list[Cohort]
    leaves: np.ndarray
    overall: float
    columns: list[str]
    regression: bool = False

    def result(self, source: str, note: str = "") -> ErrorCohorts:
        from dataclasses import replace

        cohorts = [replace(c, regression=self.regression) for c in self.cohorts]
        return ErrorCohorts(
            cohorts, self.overall, len(self.leaves), self.columns, source, self.leaves, note
        )


def find_cohorts(
    frame: pd.DataFrame,
    errors: np.ndarray,
    columns: Sequence[str],
    max_depth: int = MAX_DEPTH,
    min_leaf_rows: int = MIN_LEAF_ROWS,
    seed: int = 0,
) -> _Found:
    """Fit the error tree on ``frame[columns]`` and name its leaves (worst first)."""
    import numpy as np
    from sklearn.tree import DecisionTreeRegressor

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"cohort columns {', '.join(missing)} are not in the data; its columns are "
            f"{', '.join(map(str, frame.columns))}"
        )
    if not columns:
        raise ConfigError("no column to describe cohorts in; pass columns=[...]")
    matrix, features = _encode(frame, columns)
    # The tree fits the mean error, so its leaves are cohorts of their error rate.
    tree = DecisionTreeRegressor(
        max_depth=max_depth, min_samples_leaf=min_leaf_rows, random_state=seed
    ).fit(matrix, errors)
    leaf_of = tree.apply(matrix)
    overall = float(errors.mean())
    cohorts, leaf_index = [], {}
    for leaf in np.unique(leaf_of):
        inside = leaf_of == leaf
        rule = _rule(tree, leaf, features, frame, inside)
        cohorts.append(
            Cohort(
                rule, int(inside.sum()), float(inside.mean()), float(errors[inside].mean()), overall
            )
        )
        leaf_index[leaf] = len(cohorts) - 1
    order = sorted(range(len(cohorts)), key=lambda i: (-cohorts[i].error, -cohorts[i].rows))
    rank = {old: new for new, old in enumerate(order)}
    leaves = np.array([rank[leaf_index[leaf]] for leaf in leaf_of])
    return _Found([cohorts[i] for i in order], leaves, overall, list(columns))


@dataclass(frozen=True)
class _Feature:
    column: str
    category: str | None = None  # None: the column's number
    integral: bool = False


def _encode(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[_Feature]]:
    """Numbers as they are (NaN kept), categories as 0/1 columns (missing a category)."""
    import numpy as np
    import pandas as pd

    parts, features = [], []
    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            integral = bool(np.all(np.isnan(numbers) | (numbers == np.round(numbers))))
            parts.append(numbers)
            features.append(_Feature(column, None, integral))
            continue
        text = values.astype(object).where(values.notna(), "missing").map(str)
        for category in text.value_counts().index[:_MAX_CATEGORIES]:
            parts.append((text == category).to_numpy(dtype="float64"))
            features.append(_Feature(column, str(category)))
    return np.column_stack(parts), features


def _rule(tree: Any, leaf: int, features: list[_Feature], frame: pd.DataFrame, inside: Any) -> str:
    """Name a leaf by its path's conditions, one phrase per column."""
    import numpy as np

    structure = tree.tree_
    parent = {}
    for node in range(structure.node_count):
        for child, side in (
            (structure.children_left[node], "left"),
            (structure.children_right[node], "right"),
        ):
            if child != -1:
                parent[child] = (node, side)
    bounds: dict[str, list[float]] = {}
    equal: dict[str, str] = {}
    unequal: dict[str, list[str]] = {}
    node = leaf
    while node in parent:
        node, side = parent[node]
        feature = features[structure.feature[node]]
        threshold = float(structure.threshold[node])
        if feature.category is not None:  # 0/1: left is "not this category"
            if side == "right":
                equal[feature.column] = feature.category
            else:
                unequal.setdefault(feature.column, []).append(feature.category)
            continue
        low, high = bounds.setdefault(feature.column, [-np.inf, np.inf])
        if side == "left":
            bounds[feature.column][1] = min(high, threshold)
        else:
            bounds[feature.column][0] = max(low, threshold)
    phrases = []
    for column in dict.fromkeys([f.column for f in features]):
        if column in equal:
            phrases.append(f"{column} = {equal[column]}")
        elif column in unequal:
            phrases.append(_category_phrase(column, unequal[column], frame[column][inside]))
        elif column in bounds:
            integral = next(f.integral for f in features if f.column == column)
            phrases.append(_bound_phrase(column, *bounds[column], integral, frame[column][inside]))
    return " and ".join(phrases) if phrases else "all rows"


def _category_phrase(column: str, excluded: list[str], values: pd.Series) -> str:
    """``Sex = male`` when one category is left in the leaf, else ``Embarked ≠ S``."""
    left = values.astype(object).where(values.notna(), "missing").map(str).unique()
    if len(left) == 1:
        return f"{column} = {left[0]}"
    if len(excluded) == 1:
        return f"{column} ≠ {excluded[0]}"
    return f"{column} not in {{{', '.join(sorted(excluded))}}}"


def _bound_phrase(column: str, low: float, high: float, integral: bool, values: pd.Series) -> str:
    """``Age > 20``, ``20 < Age ≤ 40``, ``Pclass = 3``; ``or missing`` when the leaf holds gaps."""
    import math

    present = values.dropna()
    gaps = " or missing" if values.isna().any() else ""
    if integral and len(present) and present.min() == present.max():
        return f"{column} = {present.min():g}{gaps}"
    if integral:  # thresholds between integers: say the integers
        low_text = f"{math.floor(low) + 1:g} ≤ " if math.isfinite(low) else ""
        high_text = f" ≤ {math.floor(high):g}" if math.isfinite(high) else ""
    else:
        low_text = f"{low:.4g} < " if math.isfinite(low) else ""
        high_text = f" ≤ {high:.4g}" if math.isfinite(high) else ""
    if low_text and not high_text:  # "Age > 20" reads better than "20 < Age"
        return f"{column} {'≥' if integral else '>'} {low_text.split(' ')[0]}{gaps}"
    return f"{low_text}{column}{high_text}{gaps}"
