"""``assess_fairness``: a model's metrics by group of sensitive columns, with intervals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, ExtraNotInstalledError
from titanicml.findings import Finding, findings_frame

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.explain.outcomes import Outcomes
    from titanicml.fairness.groups import GroupColumn
    from titanicml.fairness.measures import GroupMeasures
    from titanicml.fairness.mitigation import MitigationCandidate
    from titanicml.model.predictor import TabularModel

__all__ = ["FairnessReport", "GroupAnalysis", "assess_fairness"]

INSTALL_FAIRLEARN = 'pip install "titanicml[explain]"'
# The disparities a finding is made of, per kind of task: (check, measure).
_CHECKED = {
    "binary": (
        ("demographic_parity", "demographic_parity_difference"),
        ("equalized_odds", "equalized_odds_difference"),
    ),
    "multiclass": (("accuracy_parity", "accuracy_difference"),),
    "regression": (("mae_parity", "mae_difference"),),
}
_CONSTRAINTS = ("demographic_parity", "equalized_odds")


@dataclass
class GroupAnalysis:
    """The metrics by group of one sensitive column (or an intersection of several).

    Attributes
    ----------
    sensitive : str
        The column (``"Sex & Pclass"`` for an intersection).
    bins : list of float or None
        The edges a numeric column was cut at.
    measures : GroupMeasures
        Metrics by group (``by_group``), overall, and the disparities with intervals.
    """

    sensitive: str
    bins: list[float] | None
    measures: GroupMeasures

    @property
    def small_groups(self) -> dict[str, int]:
        """Groups under the minimum size (shown, not compared), with their row counts."""
        table = self.measures.by_group
        return {str(g): int(n) for g, n in table.loc[table["small"], "count"].items()}

    def disparity(self, measure: str) -> float:
        """Return one disparity's value (NaN when fewer than two groups were compared)."""
        table = self.measures.disparities.set_index("measure")
        return float(table.loc[measure, "value"])


@dataclass
class FairnessReport:
    """What :func:`assess_fairness` found.

    Attributes
    ----------
    task : str
    source : str
        ``"out-of-fold"`` (the training rows, predicted by models not fitted on them)
        or ``"model"`` (the model's own predictions on the rows given).
    n_rows : int
    positive_label : object
        The class whose selection rate, TPR and FPR are measured (binary models).
    analyses : dict
        :class:`GroupAnalysis` by sensitive column.
    findings : list of Finding
    mitigation : dict
        :class:`~titanicml.fairness.mitigation.MitigationCandidate` by sensitive
        column, when asked for.
    settings : dict
        ``min_group_size``, ``n_bootstrap``, ``confidence``, ``seed``, ``max_difference``.
    note : str
        Why the model's own predictions were used although it has out-of-fold ones.
    """

    task: str
    source: str
    n_rows: int
    positive_label: Any
    analyses: dict[str, GroupAnalysis]
    findings: list[Finding]
    mitigation: dict[str, MitigationCandidate] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def by_group(self) -> pd.DataFrame:
        """Return every analysis' metrics by group, one row per (sensitive, group)."""
        return self._stacked(lambda measures: measures.by_group.reset_index())

    def disparities(self) -> pd.DataFrame:
        """Return every analysis' disparities, one row per (sensitive, measure)."""
        return self._stacked(lambda measures: measures.disparities.copy())

    def _stacked(self, table_of: Callable[[GroupMeasures], pd.DataFrame]) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for name, analysis in self.analyses.items():
            table = table_of(analysis.measures)
            table.insert(0, "sensitive", name)
            parts.append(table)
        return pd.concat(parts, ignore_index=True)

    def comparison(self) -> pd.DataFrame:
        """Return the model beside each mitigation candidate: accuracy and disparities."""
        import pandas as pd

        rows = []
        for name, candidate in self.mitigation.items():
            for label, measures in (
                ("model", self.analyses[name].measures),
                (f"ThresholdOptimizer({candidate.constraints})", candidate.measures),
            ):
                row = {"sensitive": name, "candidate": label, **_headline(measures)}
                rows.append(row)
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the report's tables: by_group, disparities, findings (and mitigation)."""
        tables = {
            "by_group": self.by_group(),
            "disparities": self.disparities(),
            "findings": findings_frame(self.findings),
        }
        if self.mitigation:
            tables["mitigation"] = self.comparison()
        return tables

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (NaN as None)."""
        import json

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(frame.to_json(orient="records"))

        return {
            "task": self.task,
            "source": self.source,
            "n_rows": self.n_rows,
            "note": self.note,
            "positive_label": _plain(self.positive_label),
            "settings": self.settings,
            "bins": {n: a.bins for n, a in self.analyses.items() if a.bins is not None},
            "by_group": records(self.by_group()),
            "disparities": records(self.disparities()),
            "findings": [f.to_dict() for f in self.findings],
            "mitigation": records(self.comparison()) if self.mitigation else [],
            "mitigation_note": _mitigation_note() if self.mitigation else None,
        }


def assess_fairness(
    model: TabularModel,
    data: pd.DataFrame | None = None,
    labels: Any = None,
    sensitive: Sequence[str] = (),
    *,
    target: str | None = None,
    oof: pd.DataFrame | None = None,
    predictions: str = "auto",
    holdout: pd.DataFrame | None = None,
    bins: Mapping[str, int | Sequence[float]] | None = None,
    intersections: bool = True,
    min_group_size: int = 30,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    max_difference: float = 0.1,
    mitigate: bool | str = False,
) -> FairnessReport:
    """Measure a model's metrics by group of each sensitive column, with bootstrap intervals.

    On the training rows (``data`` the training table and ``oof`` the model's
    out-of-fold predictions) the predictions are out of fold; on any other labelled
    rows they are the model's (:func:`titanicml.explain.outcomes.labelled_outcomes`).

    Parameters
    ----------
    model : TabularModel
    data : DataFrame
        Labelled rows holding the model's inputs and the sensitive columns.
    labels : array-like or str, optional
        True labels or their column; default the ``target`` column.
    sensitive : sequence of str
        The sensitive columns. Required: when empty, the columns whose names suggest
        one are named in the error (:func:`~titanicml.fairness.groups.propose_sensitive`).
    oof, predictions, holdout
        As :func:`titanicml.explain.outcomes.labelled_outcomes`: a model trained with a
        holdout finds its training rows in the table once the holdout's are left out.
    bins : mapping, optional
        Column -> number of quantile bins, or the edges (numeric columns).
    intersections : bool
        With several sensitive columns, also their intersection (``"Sex & Pclass"``).
    min_group_size : int
        Groups with fewer rows are flagged and left out of the disparities.
    n_bootstrap, confidence, seed
        The stratified bootstrap of the intervals (``docs/explain.md``).
    max_difference : float
        A disparity above this is an ``alerted`` finding.
    mitigate : bool or str
        Also fit fairlearn's ``ThresholdOptimizer`` per sensitive column (``True``:
        under demographic parity; or ``"equalized_odds"``) and show it beside the
        model (binary classifiers). Never applied to the model.

    Raises
    ------
    ConfigError
        No sensitive column, a column not in ``data``, unusable labels.
    ExtraNotInstalledError
        When fairlearn is not installed.
    """
    from titanicml.explain.outcomes import labelled_outcomes
    from titanicml.fairness.groups import group_column, intersect, propose_sensitive

    if data is None:
        raise ConfigError(
            "fairness needs the labelled rows with the sensitive columns (data=...): the "
            "training table for the out-of-fold predictions, or any labelled data"
        )
    if not sensitive:
        proposed = propose_sensitive(data.columns)
        hint = (
            f"columns whose names suggest one: {', '.join(proposed)}; "
            f"name them with sensitive=[...] (--sensitive {' '.join(proposed)})"
            if proposed
            else "no column's name suggests one; name them with sensitive=[...] (--sensitive)"
        )
        raise ConfigError(f"no sensitive column given (titanicml never assumes one): {hint}")
    _require_fairlearn()
    constraints = _constraints(mitigate)
    bins = dict(bins or {})
    unknown = sorted(set(bins) - set(sensitive))
    if unknown:
        raise ConfigError(f"bins given for {', '.join(unknown)}, which are not sensitive columns")
    outcomes = labelled_outcomes(model, data, labels, target, oof, predictions, holdout)
    columns = [group_column(outcomes.rows, c, bins.get(c)) for c in sensitive]
    if intersections and len(columns) > 1:
        columns.append(intersect(columns))
    settings = {
        "min_group_size": min_group_size,
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
        "max_difference": max_difference,
    }

    def measure(column: GroupColumn, y_pred: Any) -> GroupMeasures:
        from titanicml.fairness.measures import measure_groups

        return measure_groups(
            outcomes.task, outcomes.y_true, y_pred, column.groups,
            min_group_size, n_bootstrap, confidence, seed, column.order,
        )  # fmt: skip

    analyses = {c.name: GroupAnalysis(c.name, c.bins, measure(c, outcomes.y_pred)) for c in columns}
    report = FairnessReport(
        task=outcomes.task,
        source=outcomes.source,
        n_rows=len(outcomes.rows),
        positive_label=outcomes.labels[-1] if outcomes.task == "binary" else None,
        analyses=analyses,
        findings=[],
        settings=settings,
        note=outcomes.note,
    )
    if constraints is not None:
        if outcomes.task != "binary":
            raise ConfigError("mitigation (ThresholdOptimizer) is for binary classifiers only")
        report.mitigation = _candidates(
            model, outcomes, columns, sensitive, bins, constraints, measure, seed, min_group_size
        )
    report.findings = _findings(report, max_difference, confidence)
    return report


def _candidates(
    model: TabularModel,
    outcomes: Outcomes,
    columns: list[GroupColumn],
    sensitive: Sequence[str],
    bins: Mapping[str, Any],
    constraints: str,
    measure: Callable[[GroupColumn, Any], GroupMeasures],
    seed: int,
    min_group_size: int,
) -> dict[str, MitigationCandidate]:
    """One ThresholdOptimizer candidate per sensitive column (not per intersection)."""
    from titanicml.fairness.groups import group_column
    from titanicml.fairness.mitigation import threshold_candidate

    found = {}
    for column in columns[: len(sensitive)]:

        def group_of(rows: pd.DataFrame, name: str = column.name, edges: Any = column.bins) -> Any:
            return group_column(rows, name, edges if edges is not None else bins.get(name)).groups

        found[column.name] = threshold_candidate(
            outcomes.proba[:, 1], outcomes.y_true, column, constraints,
            lambda y_pred, c=column: measure(c, y_pred), seed, model, group_of, min_group_size,
        )  # fmt: skip
    return found


def _findings(report: FairnessReport, max_difference: float, confidence: float) -> list[Finding]:
    findings = []
    if report.note:
        findings.append(Finding("fairness_predictions", None, "alerted", report.note, "info"))
    level = f"{confidence:.0%}"
    for name, analysis in report.analyses.items():
        small = analysis.small_groups
        minimum = report.settings["min_group_size"]
        if small:
            listed = ", ".join(f"{g} ({n} rows)" for g, n in small.items())
            findings.append(
                Finding(
                    "fairness_small_groups", name, "alerted",
                    f"{name}: groups under {minimum} rows are shown but not compared: {listed}",
                    figures={"groups": small, "min_group_size": minimum},
                )
            )  # fmt: skip
        table = analysis.measures.disparities.set_index("measure")
        for check, measure in _CHECKED[report.task]:
            value, low, high = (float(table.loc[measure, k]) for k in ("value", "low", "high"))
            compared = int(table.loc[measure, "compared"])
            figures = {"value": value, "low": low, "high": high, "compared": compared}
            label = measure.replace("_", " ")
            if compared < 2:
                message = f"{name}: fewer than two groups of {minimum}+ rows, {label} not measured"
                findings.append(Finding(check, name, "alerted", message, "info", figures))
                continue
            verdict = _verdict(value, low, high, max_difference)
            message = (
                f"{name}: {label} {value:.3f} ({level} interval {low:.3f} to {high:.3f}) over "
                f"{compared} groups; {_VERDICT_TEXT[verdict]} {max_difference:g}"
            )
            status, severity = _VERDICT_STATUS[verdict]
            figures["verdict"] = verdict
            findings.append(Finding(check, name, status, message, severity, figures))
    for name, candidate in report.mitigation.items():
        before, after = _headline(report.analyses[name].measures), _headline(candidate.measures)
        message = (
            f"{name}: ThresholdOptimizer({candidate.constraints}) would give accuracy "
            f"{after['accuracy']:.3f} (model {before['accuracy']:.3f}), demographic parity "
            f"difference {after['demographic_parity_difference']:.3f} (model "
            f"{before['demographic_parity_difference']:.3f}), out of fold; {_mitigation_note()}"
        )
        figures = {"model": before, "candidate": after, "thresholded": candidate.thresholded}
        findings.append(Finding("fairness_mitigation", name, "alerted", message, "info", figures))
    return findings


def _verdict(value: float, low: float, high: float, max_difference: float) -> str:
    """``above`` or ``within`` the limit when the whole interval is; else ``inconclusive``.

    Without an interval (no resample), the point estimate decides.
    """
    if low != low or high != high:
        low = high = value
    if low > max_difference:
        return "above"
    if high <= max_difference:
        return "within"
    return "inconclusive"


_VERDICT_TEXT = {
    "above": "above",
    "within": "within",
    "inconclusive": "inconclusive (the interval straddles the limit; more rows would tell) for",
}
_VERDICT_STATUS = {
    "above": ("alerted", "warning"),
    "within": ("passed", "info"),
    "inconclusive": ("alerted", "info"),
}


def _headline(measures: GroupMeasures) -> dict[str, float]:
    table = measures.disparities.set_index("measure")
    found = {"accuracy": measures.overall.get("accuracy", float("nan"))}
    for measure in ("demographic_parity_difference", "equalized_odds_difference"):
        if measure in table.index:
            found[measure] = float(table.loc[measure, "value"])
            found[f"{measure}_low"] = float(table.loc[measure, "low"])
            found[f"{measure}_high"] = float(table.loc[measure, "high"])
    return found


def _mitigation_note() -> str:
    from titanicml.fairness.mitigation import NEEDS_SENSITIVE

    return NEEDS_SENSITIVE


def _constraints(mitigate: bool | str) -> str | None:
    if mitigate is False or mitigate is None:
        return None
    if mitigate is True:
        return "demographic_parity"
    if mitigate not in _CONSTRAINTS:
        raise ConfigError(
            f"mitigate must be True or one of {', '.join(_CONSTRAINTS)}, not {mitigate!r}"
        )
    return str(mitigate)


def _require_fairlearn() -> None:
    try:
        import fairlearn  # noqa: F401
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"fairness needs fairlearn, an optional extra: {INSTALL_FAIRLEARN} ({exc})"
        ) from None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
