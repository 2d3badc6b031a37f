"""Target leakage: a column that predicts the target too well to be known before the outcome.

A column leaks if it alone predicts the target with a CV score of 0.90 or more, beats
all the other columns together by 0.05 and, for a class target, alone removes at least
half of the errors of always predicting the most common class (a leak makes the outcome
nearly certain; a strong honest predictor of a rare class, such as a balance for loan
defaults, ranks rows well but leaves most errors), or if one simple condition on it (value present,
value missing, one category) picks a sizeable share of rows in which the target is
(almost) always one class. ``docs/data-checks.md`` explains the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from titanicml.data.checks.report import format_count, format_percent, format_value
from titanicml.data.checks.scoring import ColumnScorer, model_inputs

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.data.columns import ColumnInfo

__all__ = ["LEAK_MARGIN", "LEAK_MIN_ERROR_REDUCTION", "LEAK_SCORE", "Leakage", "find_leaks"]

# A column alone reaching this CV ROC AUC (classification) or R² (regression) is a suspect ...
LEAK_SCORE = 0.90
# ... and is flagged when it also beats all the other columns together by this much.
LEAK_MARGIN = 0.05
# ... and, for a class target, alone removes this share of the majority class's errors.
LEAK_MIN_ERROR_REDUCTION = 0.5
# Out-of-fold predictions this correlated come from two copies of the same information.
COPY_CORRELATION = 0.98
# Pure subset: a share of rows in which the target is (almost) always one class.
PURE_SHARE = 0.99
PURE_MIN_FRACTION = 0.05
PURE_MIN_ROWS = 30
# The class must not be this common overall (else pure subsets happen by themselves) ...
PURE_MAX_CLASS_RATE = 0.90
# ... and the subset would hold at least this many other-class rows if the column were noise.
PURE_MIN_EXPECTED_OTHERS = 10.0
LEAK_MAX_ROWS = 20_000
# Wide tables get fewer rows: at most this many cells (rows x columns), but 2,000 rows.
LEAK_MAX_CELLS = 1_000_000
LEAK_MIN_SAMPLE = 2_000
LEAK_MIN_ROWS = 50
SCORE_COLUMNS = ["column", "score", "rest_score", "pure_subset", "leaks"]


@dataclass(frozen=True)
class Leakage:
    """What the leakage check found.

    Attributes
    ----------
    leaks : dict of str to str
        Leaking column -> the evidence, as a phrase (``"alone predicts ..."``), in
        column order.
    scores : DataFrame
        One row per column checked: ``column``, ``score``, ``rest_score`` (suspects
        only), ``pure_subset`` (the phrase, or ``""``) and ``leaks``; the metric's name
        is in ``scores.attrs["metric"]``.
    note : str
        What the check did, for the report's ``passed`` finding.
    figures : dict of str to dict
        Per column checked, the numbers behind its verdict.
    summary : dict
        The numbers behind ``note``.
    """

    leaks: dict[str, str]
    scores: pd.DataFrame
    note: str
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def find_leaks(
    frame: pd.DataFrame,
    target: str,
    task: str,
    infos: dict[str, ColumnInfo],
    seed: int,
) -> Leakage:
    """Find the columns of ``infos`` that leak ``target``.

    Parameters
    ----------
    frame : DataFrame
        The table, with hashable cells, the target column included.
    target : str
        Target column.
    task : {"binary", "multiclass", "regression"}
        The target's task.
    infos : dict of str to ColumnInfo
        The columns to check, classified.
    seed : int
        Seed of the row sampling, the folds and the trees.
    """
    import numpy as np
    import pandas as pd

    columns = list(infos)
    empty = pd.DataFrame(columns=SCORE_COLUMNS)
    if not columns:
        return Leakage({}, empty, "no feature column left to check for leakage")
    # Shuffled (the data may be sorted), sampled, and without duplicate rows: a copy of a
    # row on both sides of a split makes any column that memorizes rows look predictive.
    data = frame[[*columns, target]]
    rows = min(LEAK_MAX_ROWS, max(LEAK_MIN_SAMPLE, LEAK_MAX_CELLS // len(columns)))
    data = data.sample(min(len(data), rows), random_state=seed)
    data = data.drop_duplicates().reset_index(drop=True)
    counted = {"n_distinct_rows": len(data)}
    if len(data) < LEAK_MIN_ROWS:
        note = f"skipped: {len(data)} distinct rows, too few to measure leakage"
        return Leakage({}, empty, note, summary=counted)
    problem = ColumnScorer.build(data[target], task, seed)
    if problem is None:
        note = "skipped: fewer than two classes among the distinct rows"
        return Leakage({}, empty, note, summary=counted)

    oof: dict[str, np.ndarray] = {}
    single: dict[str, float] = {}
    pure: dict[str, _PureSubset] = {}
    for name in columns:
        features, codes = model_inputs(data[name], infos[name])
        oof[name] = problem.out_of_fold(features, codes)
        single[name] = problem.score(oof[name])
        if task != "regression" and (subset := _pure_subset(data[name], codes, problem)):
            pure[name] = subset

    metric = problem.metric_name
    leaks: dict[str, str] = {}
    rest: dict[str, float] = {}
    reduction: dict[str, float] = {}
    suspects = [c for c in columns if single[c] >= LEAK_SCORE]
    for name in suspects:
        others = [
            c for c in columns if c != name and c not in pure and not _copies(oof[name], oof[c])
        ]
        rest[name] = problem.stacked_score([oof[c] for c in others]) if others else problem.chance
        if task != "regression":
            reduction[name] = problem.error_reduction(oof[name])
        certain = reduction.get(name, 1.0) >= LEAK_MIN_ERROR_REDUCTION
        if single[name] - rest[name] >= LEAK_MARGIN and certain:
            leaks[name] = (
                f"alone predicts {target} with {metric} {single[name]:.2f} "
                f"(all other columns together: {rest[name]:.2f})"
            )
    phrases = {name: subset.phrase(target, problem) for name, subset in pure.items()}
    for name, phrase in phrases.items():
        leaks[name] = f"{leaks[name]}, and {phrase}" if name in leaks else phrase
    leaks = {name: leaks[name] for name in columns if name in leaks}

    scores = pd.DataFrame(
        {
            "column": columns,
            "score": [single[c] for c in columns],
            "rest_score": [rest.get(c, np.nan) for c in columns],
            "pure_subset": [phrases.get(c, "") for c in columns],
            "leaks": [c in leaks for c in columns],
        }
    )
    scores.attrs["metric"] = metric
    figures = {
        name: {
            "metric": metric,
            "score": single[name],
            "rest_score": rest.get(name),
            **({"error_reduction": reduction[name]} if name in reduction else {}),
            **(pure[name].figures(problem) if name in pure else {}),
        }
        for name in columns
    }
    best = max(columns, key=single.__getitem__)
    note = (
        f"no column predicts {target} suspiciously well: the best single column is {best}, "
        f"{metric} {single[best]:.2f} (flagged from {LEAK_SCORE:.2f}, if {LEAK_MARGIN} above "
        "all other columns together and, for classes, removing half the majority class's "
        "errors)"
    )
    strong = sorted((c for c in suspects if c not in leaks), key=lambda c: -single[c])
    if strong:
        listed = ", ".join(_strong_phrase(c, single, rest, reduction) for c in strong[:3])
        more = f" and {len(strong) - 3} more" if len(strong) > 3 else ""
        note += f"; strong but not a leak: {listed}{more}"
    summary = {**counted, "metric": metric, "best_column": best, "best_score": single[best]}
    return Leakage(leaks, scores, note, figures, summary)


def _strong_phrase(
    name: str, single: dict[str, float], rest: dict[str, float], reduction: dict[str, float]
) -> str:
    """Why a suspect is not a leak: matched by the other columns, or far from certain."""
    if single[name] - rest[name] >= LEAK_MARGIN:
        if reduction[name] <= 0:
            return f"{name} {single[name]:.2f} but predicts no better than the majority class"
        share = format_percent(reduction[name])
        return f"{name} {single[name]:.2f} but removes only {share} of the majority class's errors"
    return f"{name} {single[name]:.2f} vs {rest[name]:.2f} for the other columns"


def _copies(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two columns' out-of-fold predictions are (almost) the same."""
    import numpy as np

    a, b = a.ravel(), b.ravel()
    if a.std() == 0 or b.std() == 0:
        return False
    return bool(np.corrcoef(a, b)[0, 1] >= COPY_CORRELATION)


class _PureSubset(NamedTuple):
    """Rows picked by one condition on a column, in which the target is one class."""

    condition: str  # "is present", "is missing", "is 'rescued'"
    size: int
    share: float  # of the subset's rows in the class
    label: int  # class code

    def phrase(self, target: str, problem: ColumnScorer) -> str:
        overall = float((problem.y == self.label).mean())
        return (
            f"{self.condition} in {format_count(self.size, len(problem.y))} and {target} is "
            f"{format_value(problem.labels[self.label])} in {format_percent(self.share)} of "
            f"them ({format_percent(overall)} overall)"
        )

    def figures(self, problem: ColumnScorer) -> dict[str, Any]:
        return {
            "pure_subset": self.condition,
            "pure_subset_rows": self.size,
            "pure_subset_class_share": self.share,
            "class_rate": float((problem.y == self.label).mean()),
        }


def _pure_subset(
    column: pd.Series, codes: np.ndarray | None, problem: ColumnScorer
) -> _PureSubset | None:
    """Find a simple subset of rows in which the target is one class, or return None.

    The subsets are "value present", "value missing", and each category of a text column.
    """
    import numpy as np

    y, n, k = problem.y, len(problem.y), problem.n_classes
    rates = np.bincount(y, minlength=k) / n
    min_rows = max(PURE_MIN_ROWS, PURE_MIN_FRACTION * n)
    missing = column.isna().to_numpy()
    subsets: list[tuple[str, np.ndarray]] = []
    for label, mask in (("missing", missing), ("present", ~missing)):
        subsets.append((f"is {label}", np.bincount(y[mask], minlength=k)))
    if codes is not None:
        n_codes = int(codes.max()) + 1
        table = np.bincount(codes * k + y, minlength=n_codes * k).reshape(n_codes, k)
        values = column.to_numpy()
        _, first = np.unique(codes, return_index=True)
        for code in np.flatnonzero(table.sum(axis=1) >= min_rows):
            if missing[first[code]]:
                continue
            subsets.append((f"is {format_value(values[first[code]])}", table[code]))
    for condition, counts in subsets:
        size = int(counts.sum())
        if size < min_rows or size == n:
            continue
        top = int(counts.argmax())
        share = float(counts[top] / size)
        if (
            share >= PURE_SHARE
            and rates[top] <= PURE_MAX_CLASS_RATE
            and size * (1 - rates[top]) >= PURE_MIN_EXPECTED_OTHERS
        ):
            return _PureSubset(condition, size, share, top)
    return None
