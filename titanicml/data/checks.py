"""Data checks run before training: what Azure AutoML calls "data guardrails".

=====================  ========================================================  ==========
check                  finds                                                     status
=====================  ========================================================  ==========
``target_leakage``     a column that predicts the target too well to be known    fixed /
                       before the outcome (single-column CV model, pure subset)  alerted
``id_like``            a key: unique single-token strings, unique integers in    fixed
                       order or in a near-contiguous range
``constant``           one value in every row, or every value missing            fixed
``high_missingness``   >= 95 % missing (dropped), >= 50 % missing (kept)         fixed /
                                                                                 alerted
``missing_values``     some values missing: imputed, with a missing indicator    fixed
``high_cardinality``   text with more than 30 distinct values (target-encoded)   alerted
``class_imbalance``    smallest / largest class < 0.2, or a class of < 20 rows   alerted
``duplicate_rows``     copies of a row; identical features, different targets    alerted
=====================  ========================================================  ==========

``fixed`` means titanicml handles the finding itself (for instance by dropping
the column); ``alerted`` means the data is used as is and the user should look.
Every check that found nothing still has one ``passed`` row in the report.
See ``docs/data-checks.md`` for the rules and why the thresholds are what they are.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from titanicml.exceptions import ColumnError, ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["CHECKS", "ON_LEAKAGE", "CheckReport", "run_checks"]

CHECKS = (
    "target_leakage",
    "id_like",
    "constant",
    "high_missingness",
    "missing_values",
    "high_cardinality",
    "class_imbalance",
    "duplicate_rows",
)
ON_LEAKAGE = ("drop", "warn", "error")
TASKS = ("binary", "multiclass", "regression")

# --- target leakage ---------------------------------------------------------------------
# A column alone reaching this CV ROC AUC (classification) or R² (regression) is a suspect ...
LEAK_SCORE = 0.90
# ... and is flagged when it also beats all the other columns together by this much.
LEAK_MARGIN = 0.05
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
LEAK_FOLDS = 5
TREE_DEPTH = 4
# Target encoding: a category's mean is shrunk toward the overall mean as if it had
# this many more rows at the overall mean.
ENCODING_SMOOTHING = 10.0

# --- the other checks -------------------------------------------------------------------
ID_MIN_UNIQUE = 0.90
ID_MIN_SINGLE_TOKEN = 0.90
ID_MIN_DENSITY = 0.90
ID_MIN_ROWS = 20
# Free text has at least this many words per value on average (as in features.plan).
FREE_TEXT_MIN_WORDS = 2.0
MISSING_DROP = 0.95
MISSING_ALERT = 0.50
HIGH_CARDINALITY = 30
IMBALANCE_RATIO = 0.2
MIN_CLASS_ROWS = 20
# Word counts and date detection look at this many values of a column.
_TEXT_SAMPLE = 2_000
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


@dataclass
class CheckReport:
    """What the data checks found.

    Attributes
    ----------
    table : DataFrame
        One row per finding: ``check``, ``column`` (None for checks of the whole table
        and for ``passed`` rows), ``status`` (``"passed"``, ``"alerted"`` or ``"fixed"``)
        and ``message``, a sentence for a human.
    dropped : dict of str to str
        Columns the Trainer must not use, with the reason.
    leaking : list of str
        Columns flagged as target leakage (dropped or, with ``on_leakage="warn"``, kept).
    leakage_scores : DataFrame
        Per column checked for leakage: its single-column CV score, the score of all other
        columns together (suspects only), the pure subset found, and whether it leaks.
    target, task : str
        What the data was checked for.
    """

    table: pd.DataFrame
    dropped: dict[str, str] = field(default_factory=dict)
    leaking: list[str] = field(default_factory=list)
    leakage_scores: pd.DataFrame | None = None
    target: str = ""
    task: str = ""

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the findings table."""
        return self.table.copy()

    @property
    def alerts(self) -> pd.DataFrame:
        """The findings the user should look at (status ``"alerted"``)."""
        return self.table[self.table["status"] == "alerted"].reset_index(drop=True)

    def __str__(self) -> str:
        rows = self.table.fillna({"column": "-"})
        counts = rows["status"].value_counts()
        header = f"Data checks for {self.target!r} ({self.task}): " + ", ".join(
            f"{counts.get(s, 0)} {s}" for s in ("fixed", "alerted", "passed")
        )
        check_width = max(len("check"), *(len(c) for c in rows["check"]))
        column_width = min(24, max(len("column"), *(len(str(c)) for c in rows["column"])))
        lines = [
            header,
            f"{'status':<8} {'check':<{check_width}} {'column':<{column_width}} message",
        ]
        for row in rows.itertuples(index=False):
            lines.append(
                f"{row.status:<8} {row.check:<{check_width}} "
                f"{row.column!s:<{column_width}} {row.message}"
            )
        return "\n".join(lines)


def run_checks(
    frame: pd.DataFrame,
    target: str,
    task: str,
    on_leakage: str = "drop",
    seed: int = 0,
) -> CheckReport:
    """Check a training table before featurization.

    Parameters
    ----------
    frame : DataFrame
        Training table including the target column, rows with a missing target removed.
    target : str
        Name of the target column.
    task : {"binary", "multiclass", "regression"}
        The (already inferred) task.
    on_leakage : {"drop", "warn", "error"}
        What to do with leaking columns: drop them (status ``fixed``), keep them
        (status ``alerted``), or raise :class:`~titanicml.exceptions.DataError`.
    seed : int
        Seed of the row shuffling, sampling and folds of the leakage check.

    Returns
    -------
    CheckReport

    Raises
    ------
    ConfigError
        If ``on_leakage`` or ``task`` is unknown.
    ColumnError
        If ``target`` is not a column of ``frame``.
    DataError
        If a column leaks the target and ``on_leakage="error"``.
    """
    import pandas as pd

    if on_leakage not in ON_LEAKAGE:
        raise ConfigError(
            f"unknown on_leakage={on_leakage!r}; choose one of: {', '.join(ON_LEAKAGE)}"
        )
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if target not in frame.columns:
        raise ColumnError(f"target column {target!r} is not in the data")
    if frame.columns.has_duplicates:
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ColumnError(f"column names must be unique; repeated: {', '.join(repeated)}")

    frame = _hashable(frame)
    features = [c for c in frame.columns if c != target]
    infos = {name: _describe(frame[name], seed) for name in features}
    findings: dict[str, list[tuple[str | None, str, str]]] = {check: [] for check in CHECKS}
    dropped: dict[str, str] = {}

    for name in features:
        info = infos[name]
        if info.n_unique == 0:
            findings["constant"].append((name, "fixed", f"{name} is empty: dropped"))
            dropped[name] = "every value is missing"
        elif info.n_unique == 1 and info.n_missing == 0:
            value = _short(frame[name].iloc[0])
            message = f"{name} is {value} in every row: it carries no information; dropped"
            findings["constant"].append((name, "fixed", message))
            dropped[name] = "constant: one value in every row"
    for name in features:
        if name in dropped:
            continue
        reason = _id_like(frame[name], infos[name])
        if reason:
            findings["id_like"].append(
                (name, "fixed", f"{name} {reason}: a key, not a feature; dropped")
            )
            dropped[name] = f"ID-like: {name} {reason}"
    for name in features:
        info = infos[name]
        if name not in dropped and info.missing_rate >= MISSING_DROP:
            message = (
                f"{name} is missing in {_count(info.n_missing, info.n_rows)}: too few values "
                f"to learn from (the limit is {_pct(MISSING_DROP)}); dropped"
            )
            findings["high_missingness"].append((name, "fixed", message))
            dropped[name] = f"{_pct(info.missing_rate)} of the values are missing"

    checked = [c for c in features if c not in dropped]
    leaks, scores, note = _leakage(frame, target, task, checked, infos, seed)
    leaking = list(leaks)
    if leaking and on_leakage == "error":
        details = "; ".join(f"{name} {evidence}" for name, evidence in leaks.items())
        raise DataError(
            f"column(s) {', '.join(map(str, leaking))} leak the target {target!r}: {details}. "
            f"Leave them out with exclude={leaking!r}, or keep them with on_leakage='warn'"
        )
    for name, evidence in leaks.items():
        if on_leakage == "drop":
            action, status = "dropped", "fixed"
            dropped[name] = f"leaks the target: {name} {evidence}"
        else:
            action, status = "kept because on_leakage='warn'", "alerted"
        message = f"{name} {evidence}: it is probably recorded after the outcome; {action}"
        findings["target_leakage"].append((name, status, message))
    if not leaks:
        findings["target_leakage"].append((None, "passed", note))

    kept = [c for c in features if c not in dropped]
    for name in kept:
        info = infos[name]
        if not info.n_missing:
            continue
        if info.missing_rate >= MISSING_ALERT:
            message = (
                f"{name} is missing in {_count(info.n_missing, info.n_rows)}: kept, and the "
                "model sees which rows miss it (that can itself be informative); exclude it "
                "if it should not be used"
            )
            findings["high_missingness"].append((name, "alerted", message))
        else:
            if info.free_text:
                fill = "read as empty text"
            elif info.kind == "text":
                fill = "filled with a 'missing' category of its own"
            else:
                fill = "filled with the median, plus a missing indicator"
            message = f"{name} is missing in {_count(info.n_missing, info.n_rows)}: {fill}"
            findings["missing_values"].append((name, "fixed", message))
    for name in kept:
        info = infos[name]
        plain_text = info.kind == "text" and not info.free_text and not info.date_like
        if plain_text and info.n_unique > HIGH_CARDINALITY:
            message = (
                f"{name} has {info.n_unique:,} distinct values, too many to one-hot encode: "
                "it is target-encoded inside cross-validation (cross-fitted), rare values "
                "shrunk toward the overall mean"
            )
            findings["high_cardinality"].append((name, "alerted", message))
    if task != "regression":
        findings["class_imbalance"].extend(_imbalance(frame[target], target))
    findings["duplicate_rows"].extend(_duplicates(frame[[*kept, target]], target, task))

    _add_passed(findings, task, target)
    table = pd.DataFrame(
        [
            {"check": check, "column": column, "status": status, "message": message}
            for check in CHECKS
            for column, status, message in findings[check]
        ],
        columns=["check", "column", "status", "message"],
    )
    return CheckReport(
        table=table,
        dropped=dropped,
        leaking=leaking,
        leakage_scores=scores,
        target=target,
        task=task,
    )


# --- columns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ColumnInfo:
    """What the checks need to know about one column."""

    kind: str  # "numeric", "datetime" or "text"
    n_rows: int
    n_missing: int
    n_unique: int
    single_token: float = 0.0  # share of values without whitespace
    words: float = 0.0  # mean words per value
    date_like: bool = False

    @property
    def missing_rate(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else 0.0

    @property
    def free_text(self) -> bool:
        return self.kind == "text" and self.words >= FREE_TEXT_MIN_WORDS


def _describe(column: pd.Series, seed: int) -> _ColumnInfo:
    """Measure a column: kind, missing and distinct counts, words per value."""
    import pandas as pd

    n_missing = int(column.isna().sum())
    common = {"n_rows": len(column), "n_missing": n_missing, "n_unique": column.nunique()}
    if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
        return _ColumnInfo("datetime", **common)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return _ColumnInfo("numeric", **common)
    values = column.dropna()
    if len(values) > _TEXT_SAMPLE:
        values = values.sample(_TEXT_SAMPLE, random_state=seed)
    text = values.astype(str)
    if text.empty:
        return _ColumnInfo("text", **common)
    words = text.str.split().str.len()
    return _ColumnInfo(
        "text",
        **common,
        single_token=float((words <= 1).mean()),
        words=float(words.mean()),
        date_like=bool(text.head(200).str.match(_DATE_LIKE).mean() >= 0.9),
    )


def _id_like(column: pd.Series, info: _ColumnInfo) -> str:
    """Say why a column looks like a key, or return ``""``."""
    import numpy as np
    import pandas as pd

    n_rows = info.n_rows
    if n_rows < ID_MIN_ROWS or info.n_unique < ID_MIN_UNIQUE * n_rows:
        return ""
    if info.kind == "text":
        if info.single_token < ID_MIN_SINGLE_TOKEN:
            return ""
        example = _short(column.dropna().iloc[0])
        return (
            f"has {info.n_unique:,} distinct values in {n_rows:,} rows, single tokens "
            f"like {example}"
        )
    if info.kind != "numeric" or pd.api.types.is_bool_dtype(column):
        return ""
    values = _numeric_values(column.dropna())
    if not np.isfinite(values).all() or info.n_unique != len(values):
        return ""
    if not np.all(values == np.round(values)):
        return ""
    steps = np.diff(values)
    if np.all(steps > 0) or np.all(steps < 0):
        return f"has {info.n_unique:,} distinct integers, in increasing or decreasing row order"
    density = info.n_unique / (values.max() - values.min() + 1)
    if density >= ID_MIN_DENSITY:
        return (
            f"has {info.n_unique:,} distinct integers covering {density:.0%} of the range "
            f"{values.min():.0f}..{values.max():.0f}"
        )
    return ""


def _numeric_values(column: pd.Series) -> np.ndarray:
    """Return a numeric, boolean, datetime or timedelta column as floats (NaN if missing)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert(None)
        column = column - pd.Timestamp(0)
    if pd.api.types.is_timedelta64_dtype(column):
        return column.dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    return column.to_numpy(dtype=float, na_value=np.nan)


# --- target leakage ---------------------------------------------------------------------


def _leakage(
    frame: pd.DataFrame,
    target: str,
    task: str,
    columns: list[str],
    infos: dict[str, _ColumnInfo],
    seed: int,
) -> tuple[dict[str, str], pd.DataFrame, str]:
    """Find leaking columns.

    Returns
    -------
    leaks : dict of str to str
        Leaking column -> the evidence, as a phrase ("alone predicts ...").
    scores : DataFrame
        The measurements, one row per column checked.
    note : str
        What the check did, for the report's ``passed`` row.
    """
    import numpy as np
    import pandas as pd

    empty = pd.DataFrame(columns=["column", "score", "rest_score", "pure_subset", "leaks"])
    if not columns:
        return {}, empty, "no feature column left to check for leakage"
    # Shuffled (the data may be sorted), sampled, and without duplicate rows: a copy of a
    # row on both sides of a split makes any column that memorizes rows look predictive.
    data = frame[[*columns, target]]
    rows = min(LEAK_MAX_ROWS, max(LEAK_MIN_SAMPLE, LEAK_MAX_CELLS // len(columns)))
    data = data.sample(min(len(data), rows), random_state=seed)
    data = data.drop_duplicates().reset_index(drop=True)
    if len(data) < LEAK_MIN_ROWS:
        return {}, empty, f"skipped: {len(data)} distinct rows, too few to measure leakage"
    problem = _Problem.build(data[target], task, seed)
    if problem is None:
        return {}, empty, "skipped: fewer than two classes among the distinct rows"

    oof: dict[str, np.ndarray] = {}
    single: dict[str, float] = {}
    pure: dict[str, str] = {}
    for name in columns:
        features, codes = _single_column_inputs(data[name], infos[name].kind)
        oof[name] = problem.out_of_fold(features, codes, seed)
        single[name] = problem.score(oof[name])
        if task != "regression":
            pure[name] = _pure_subset(data[name], codes, problem, target)

    metric = problem.metric_name
    leaks: dict[str, str] = {}
    rest: dict[str, float] = {}
    suspects = [c for c in columns if single[c] >= LEAK_SCORE]
    for name in suspects:
        others = [
            c for c in columns if c != name and not pure.get(c) and not _copies(oof[name], oof[c])
        ]
        rest[name] = problem.stacked_score([oof[c] for c in others]) if others else problem.chance
        if single[name] - rest[name] >= LEAK_MARGIN:
            leaks[name] = (
                f"alone predicts {target} with {metric} {single[name]:.2f} "
                f"(all other columns together: {rest[name]:.2f})"
            )
    for name in columns:
        if pure.get(name):
            leaks[name] = f"{leaks[name]}, and {pure[name]}" if name in leaks else pure[name]
    leaks = {name: leaks[name] for name in columns if name in leaks}

    scores = pd.DataFrame(
        {
            "column": columns,
            "score": [single[c] for c in columns],
            "rest_score": [rest.get(c, np.nan) for c in columns],
            "pure_subset": [pure.get(c, "") for c in columns],
            "leaks": [c in leaks for c in columns],
        }
    )
    scores.attrs["metric"] = metric
    best = max(columns, key=single.__getitem__)
    note = (
        f"no column predicts {target} suspiciously well: the best single column is {best}, "
        f"{metric} {single[best]:.2f} (flagged from {LEAK_SCORE:.2f}, if {LEAK_MARGIN} above "
        "all other columns together)"
    )
    strong = sorted((c for c in suspects if c not in leaks), key=lambda c: -single[c])
    if strong:
        listed = ", ".join(f"{c} {single[c]:.2f} vs {rest[c]:.2f}" for c in strong[:3])
        more = f" and {len(strong) - 3} more" if len(strong) > 3 else ""
        note += f"; strong but matched by the other columns: {listed}{more}"
    return leaks, scores, note


@dataclass
class _Problem:
    """The target of the leakage check, its folds, and how predictions are scored."""

    task: str
    y: np.ndarray  # class codes, or float values
    encoded: np.ndarray  # what target encoding averages: class indicators or values
    labels: list
    splits: list[tuple[np.ndarray, np.ndarray]]
    seed: int

    @classmethod
    def build(cls, target: pd.Series, task: str, seed: int) -> _Problem | None:
        import numpy as np
        import pandas as pd
        from sklearn.model_selection import KFold, StratifiedKFold

        if task == "regression":
            y = target.to_numpy(dtype=float)
            encoded, labels = y[:, None], []
            folds = KFold(LEAK_FOLDS, shuffle=True, random_state=seed)
        else:
            codes, uniques = pd.factorize(target, sort=False)
            if len(uniques) < 2:
                return None
            y, labels = codes.astype(np.int64), list(uniques)
            encoded = np.eye(len(labels))[y]
            encoded = encoded[:, 1:] if len(labels) == 2 else encoded
            folds = StratifiedKFold(LEAK_FOLDS, shuffle=True, random_state=seed)
        if task != "regression" and np.bincount(y).min() < LEAK_FOLDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "the least populated class has only n members"
                splits = list(folds.split(np.zeros(len(y)), y))
        else:
            splits = list(folds.split(np.zeros(len(y)), y))
        return cls(task, y, encoded, labels, splits, seed)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def metric_name(self) -> str:
        return {"binary": "CV ROC AUC", "multiclass": "CV ROC AUC (one-vs-rest, weighted)"}.get(
            self.task, "CV R²"
        )

    @property
    def chance(self) -> float:
        return 0.0 if self.task == "regression" else 0.5

    def score(self, predictions: np.ndarray) -> float:
        """CV ROC AUC, or R², of pooled out-of-fold predictions."""
        from sklearn.metrics import r2_score, roc_auc_score

        if self.task == "regression":
            return float(r2_score(self.y, predictions))
        if self.task == "binary":
            return float(roc_auc_score(self.y, predictions[:, 1]))
        return float(
            roc_auc_score(
                self.y,
                predictions,
                multi_class="ovr",
                average="weighted",
                labels=list(range(self.n_classes)),
            )
        )

    def out_of_fold(
        self, features: np.ndarray | None, codes: np.ndarray | None, seed: int
    ) -> np.ndarray:
        """Out-of-fold predictions of a shallow tree on one column's features."""
        import numpy as np
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        n = len(self.y)
        leaf = max(5, n // 100)
        regression = self.task == "regression"
        out = np.zeros(n) if regression else np.zeros((n, self.n_classes))
        for train, test in self.splits:
            if codes is not None:
                enc_train, enc_test = _target_encode(codes, self.encoded, train, test)
                x_train = np.column_stack([enc_train, features[train]])
                x_test = np.column_stack([enc_test, features[test]])
            else:
                x_train, x_test = _impute(features, train, test)
            if regression:
                tree = DecisionTreeRegressor(
                    max_depth=TREE_DEPTH, min_samples_leaf=leaf, random_state=seed
                )
                out[test] = tree.fit(x_train, self.y[train]).predict(x_test)
            else:
                tree = DecisionTreeClassifier(
                    max_depth=TREE_DEPTH, min_samples_leaf=leaf, random_state=seed
                )
                tree.fit(x_train, self.y[train])
                out[np.ix_(test, tree.classes_)] = tree.predict_proba(x_test)
        return out

    def stacked_score(self, predictions: list[np.ndarray]) -> float:
        """CV score of a linear model on several columns' out-of-fold predictions.

        Classification: one logistic regression per class (one-vs-rest) on the columns'
        logits of that class; fast, and the same in every scikit-learn version.
        """
        import numpy as np
        from sklearn.linear_model import LogisticRegression, Ridge

        n = len(self.y)
        if self.task == "regression":
            x = np.column_stack(predictions)
            out = np.zeros(n)
            for train, test in self.splits:
                out[test] = Ridge(alpha=1.0).fit(x[train], self.y[train]).predict(x[test])
            return self.score(out)
        clipped = [np.clip(p, 1e-3, 1 - 1e-3) for p in predictions]
        logits = [np.log(p) - np.log1p(-p) for p in clipped]
        out = np.zeros((n, self.n_classes))
        for j in range(1 if self.task == "binary" else 0, self.n_classes):
            x = np.column_stack([logit[:, j] for logit in logits])
            y = (self.y == j).astype(int)
            for train, test in self.splits:
                if y[train].min() == y[train].max():
                    out[test, j] = y[train][0]
                    continue
                model = LogisticRegression(solver="newton-cholesky", max_iter=200)
                out[test, j] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        if self.task == "binary":
            out[:, 0] = 1 - out[:, 1]
        else:
            out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
        return self.score(out)


def _single_column_inputs(column: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn a column into model inputs: values and a missing indicator, or category codes.

    Returns
    -------
    features : ndarray
        Numeric: (rank of the value, NaN if missing; is-missing) per row; text:
        is-missing per row.
    codes : ndarray or None
        Text: category codes (missing is its own category), for target encoding.
    """
    import numpy as np
    import pandas as pd

    missing = column.isna().to_numpy()
    if kind == "text":
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.where(codes < 0, len(uniques), codes)
        return missing[:, None].astype(float), codes
    # A tree only sees the order of the values: ranks keep it, and turn infinities and
    # values beyond float32 (which scikit-learn's trees use) into ordinary numbers.
    values = _numeric_values(column)
    finite = np.isfinite(values)
    distinct, ranks = np.unique(values[finite], return_inverse=True)
    ranked = np.full(len(values), np.nan)
    ranked[finite] = ranks
    ranked[values == np.inf] = len(distinct)
    ranked[values == -np.inf] = -1
    return np.column_stack([ranked, missing]), None


def _impute(
    features: np.ndarray, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing values with the training fold's median."""
    import numpy as np

    values = features[:, 0]
    present = values[train][~np.isnan(values[train])]
    median = float(np.median(present)) if len(present) else 0.0
    filled = np.column_stack([np.where(np.isnan(values), median, values), features[:, 1]])
    return filled[train], filled[test]


def _target_encode(
    codes: np.ndarray, targets: np.ndarray, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed per-category target means: cross-fitted on ``train``, fitted on it for ``test``.

    ``targets`` has one column per encoded quantity (class indicator or value).
    """
    import numpy as np

    n_codes = int(codes.max()) + 1
    prior = targets[train].mean(axis=0)

    def encode(fit: np.ndarray, apply: np.ndarray) -> np.ndarray:
        counts = np.bincount(codes[fit], minlength=n_codes)[:, None]
        sums = np.column_stack(
            [
                np.bincount(codes[fit], weights=targets[fit, j], minlength=n_codes)
                for j in range(targets.shape[1])
            ]
        )
        means = (sums + ENCODING_SMOOTHING * prior) / (counts + ENCODING_SMOOTHING)
        return means[codes[apply]]

    inner = np.arange(len(train)) % LEAK_FOLDS
    encoded_train = np.empty((len(train), targets.shape[1]))
    for fold in range(LEAK_FOLDS):
        held = inner == fold
        encoded_train[held] = encode(train[~held], train[held])
    return encoded_train, encode(train, test)


def _copies(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two columns' out-of-fold predictions are (almost) the same."""
    import numpy as np

    a, b = a.ravel(), b.ravel()
    if a.std() == 0 or b.std() == 0:
        return False
    return bool(np.corrcoef(a, b)[0, 1] >= COPY_CORRELATION)


def _pure_subset(
    column: pd.Series, codes: np.ndarray | None, problem: _Problem, target: str
) -> str:
    """Describe a simple subset of rows in which the target is one class, or return ``""``.

    The subsets are "value present", "value missing", and each category of a text column.
    """
    import numpy as np

    y, n, k = problem.y, len(problem.y), problem.n_classes
    rates = np.bincount(y, minlength=k) / n
    min_rows = max(PURE_MIN_ROWS, PURE_MIN_FRACTION * n)
    missing = column.isna().to_numpy()
    subsets: list[tuple[str, np.ndarray]] = []
    for label, mask in (("missing", missing), ("present", ~missing)):
        counts = np.bincount(y[mask], minlength=k)
        subsets.append((f"is {label}", counts))
    if codes is not None:
        n_codes = int(codes.max()) + 1
        table = np.bincount(codes * k + y, minlength=n_codes * k).reshape(n_codes, k)
        values = column.to_numpy()
        _, first = np.unique(codes, return_index=True)
        for code in np.flatnonzero(table.sum(axis=1) >= min_rows):
            if missing[first[code]]:
                continue
            subsets.append((f"is {_short(values[first[code]])}", table[code]))
    for label, counts in subsets:
        size = int(counts.sum())
        if size < min_rows or size == n:
            continue
        top = int(counts.argmax())
        share = counts[top] / size
        if (
            share >= PURE_SHARE
            and rates[top] <= PURE_MAX_CLASS_RATE
            and size * (1 - rates[top]) >= PURE_MIN_EXPECTED_OTHERS
        ):
            return (
                f"{label} in {_count(size, n)} and {target} is {_short(problem.labels[top])} "
                f"in {_pct(share)} of them ({_pct(rates[top])} overall)"
            )
    return ""


# --- the other checks -------------------------------------------------------------------


def _imbalance(target: pd.Series, name: str) -> list[tuple[str | None, str, str]]:
    counts = target.value_counts()
    counts = counts[counts > 0]
    listed = ", ".join(f"{_short(label)}: {count:,}" for label, count in counts.head(8).items())
    if len(counts) > 8:
        listed += f", ... ({len(counts)} classes)"
    smallest, largest = int(counts.iloc[-1]), int(counts.iloc[0])
    ratio = smallest / largest
    problems = []
    if ratio < IMBALANCE_RATIO:
        problems.append(
            f"the smallest class has {ratio:.2f} times the rows of the largest (alert below "
            f"{IMBALANCE_RATIO}); accuracy rewards predicting the majority class, so consider "
            "metric='roc_auc' or metric='f1'"
        )
    if smallest < MIN_CLASS_ROWS:
        problems.append(
            f"class {_short(counts.index[-1])} has only {smallest} rows (alert below "
            f"{MIN_CLASS_ROWS}): its scores are noisy and some CV folds may miss it; collect "
            "more rows or merge it with a similar class"
        )
    if problems:
        return [(name, "alerted", f"{name} classes {listed}: " + "; ".join(problems))]
    return [
        (None, "passed", f"{name} classes {listed}: balanced enough (smallest/largest {ratio:.2f})")
    ]


def _duplicates(frame: pd.DataFrame, target: str, task: str) -> list[tuple[str | None, str, str]]:
    findings = []
    copies = int(frame.duplicated().sum())
    if copies:
        findings.append(
            (
                None,
                "alerted",
                f"{_count(copies, len(frame))} repeat an earlier row in every used column and "
                "the target: copies can land on both sides of a CV split and inflate its score; "
                "remove them unless they are real repeated observations",
            )
        )
    features = [c for c in frame.columns if c != target]
    if task != "regression" and features:
        groups = frame.groupby(features, dropna=False, sort=False)[target]
        conflicts = int((groups.transform("nunique") > 1).sum())
        if conflicts:
            findings.append(
                (
                    None,
                    "alerted",
                    f"{_count(conflicts, len(frame))} share identical features with a row of "
                    f"another {target}: no model can tell them apart (label noise, or a "
                    "missing feature)",
                )
            )
    return findings


def _add_passed(findings: dict[str, list], task: str, target: str) -> None:
    """Give every check that found nothing one ``passed`` row."""
    messages = {
        "id_like": "no column looks like a key (unique single-token strings or integers)",
        "constant": "no column is constant or empty",
        "high_missingness": f"no column is missing in {_pct(MISSING_ALERT)} of the rows or more",
        "missing_values": "no used column has missing values",
        "high_cardinality": f"no text column has more than {HIGH_CARDINALITY} distinct values",
        "class_imbalance": "regression: no classes to balance",
        "duplicate_rows": "no duplicate rows, and no identical features with different targets"
        if task != "regression"
        else "no duplicate rows",
    }
    for check, message in messages.items():
        if not findings[check]:
            findings[check].append((None, "passed", message))


# --- helpers ----------------------------------------------------------------------------


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn object columns holding lists, dicts and the like into strings."""
    copy = None
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            try:
                column.nunique()
            except TypeError:
                copy = frame.copy() if copy is None else copy
                copy[name] = column.astype(str).where(column.notna(), None)
    return frame if copy is None else copy


def _count(part: int, whole: int) -> str:
    """Format a number of rows and its share, e.g. ``"121 rows (9.2 %)"``."""
    share = _pct(part / whole if whole else 0.0)
    return f"{part:,} rows ({share})" if part != 1 else f"1 row ({share})"


def _pct(share: float) -> str:
    """Format a share as a percentage: ``"98.1 %"``, ``"100 %"``, ``"0.15 %"``."""
    percent = 100 * share
    if 0 < percent < 1:
        return f"{percent:.2g} %"
    return f"{percent:.1f}".removesuffix(".0") + " %"


def _short(value: object, width: int = 30) -> str:
    """Format a value for a message: quoted if text, shortened if long."""
    if hasattr(value, "item"):
        value = value.item()
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
