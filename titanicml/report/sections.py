"""The report's first sections: the scorecard, the data checks, the leaderboard, the plots.

Each function returns a :class:`Section`: an anchor, a title, a one-line lead saying
what the section tells, and its HTML body (text escaped here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from titanicml._utils.htmlpage import escape, figure_html, png_figure_html, table_html
from titanicml.metrics import scored_on_split
from titanicml.report.targets import FAIL, NOT_MEASURED, PASS

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.report.curves import Plot
    from titanicml.report.inputs import ReportInputs
    from titanicml.report.targets import Verdict

__all__ = [
    "PLOTS",
    "ROW_CLASS",
    "Section",
    "checks_section",
    "figures_html",
    "frame_table",
    "leaderboard_section",
    "note",
    "performance_section",
    "scorecard_section",
]

#: Where a section's body shows its plots (drawn when the page is made).
PLOTS = "<!-- plots -->"
_ROW_CLASS = {PASS: "pass", FAIL: "fail", NOT_MEASURED: "na"}
#: Key of a row's CSS class in the records given to ``table_html`` (not shown).
ROW_CLASS = "_class"
#: Figures drawn as PNG (thousands of dots); the others are SVG.
PNG_FIGURES = frozenset({"beeswarm", "predicted_vs_actual"})
#: Figures across the whole width of the page.
WIDE_FIGURES = frozenset({"fairness_by_group"})
# Metrics the scorecard shows when no target names them, by task.
_HEADLINE = {
    "binary": ("accuracy", "roc_auc", "f1", "log_loss"),
    "multiclass": ("accuracy", "log_loss"),
    "regression": ("r2", "rmse", "mae"),
}
_LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


@dataclass
class Section:
    """One section of the page."""

    anchor: str
    title: str
    lead: str
    body: str
    plots: list[Plot] = field(default_factory=list)

    def html(self, fmt: str = "svg") -> str:
        """Return the section as HTML, its plots drawn where the body says (:data:`PLOTS`)."""
        lead = f'<p class="lead">{escape(self.lead)}</p>' if self.lead else ""
        body = self.body.replace(PLOTS, figures_html(self.plots, fmt), 1)
        heading = f"<h2>{escape(self.title)}</h2>"
        return f'<section id="{self.anchor}">{heading}{lead}{body}</section>'


def note(text: str) -> str:
    """Return a grey note paragraph (text escaped)."""
    return f'<p class="note">{escape(text)}</p>'


def figures_html(plots: list[Plot], fmt: str = "svg") -> str:
    """Return plots as a grid of figures, each with its title and caption.

    ``fmt="svg"`` draws line plots as SVG and the dotted ones as PNG; ``"png"`` draws
    every plot as PNG once, for a report whose plots are also saved as files.
    """
    items = []
    for plot in plots:
        if fmt == "png" or plot.name in PNG_FIGURES:
            image = png_figure_html(plot.png(), caption=plot.caption)
        else:
            image = figure_html(plot.figure, fmt="svg", caption=plot.caption)
        css = "plot wide" if plot.name in WIDE_FIGURES else "plot"
        items.append(f'<div class="{css}"><h3>{escape(plot.title)}</h3>{image}</div>')
    return f'<div class="grid">{"".join(items)}</div>'


def frame_table(frame: pd.DataFrame, max_rows: int = 50, row_class: str | None = None) -> str:
    """Return a DataFrame as an HTML table (at most ``max_rows`` rows, then a note)."""
    shown = frame.head(max_rows)
    columns = [c for c in shown.columns if c != row_class]
    records = shown.to_dict("records")
    table = table_html(records, columns=columns, row_class=row_class)
    if len(frame) > max_rows:
        table += note(f"{len(frame) - max_rows} more rows not shown.")
    return table


def scorecard_section(
    inputs: ReportInputs, verdicts: list[Verdict], figures: dict[str, float]
) -> Section:
    """Return the metrics against the user's targets (pass / fail), then the headline ones."""
    import pandas as pd

    rows = []
    for verdict in verdicts:
        rows.append(
            {
                "metric": verdict.target.metric,
                "value": _value_text(verdict.value, verdict.spread),
                "target": f"{verdict.target.op} {verdict.target.threshold:g}",
                "verdict": verdict.status,
                ROW_CLASS: _ROW_CLASS[verdict.status],
            }
        )
    targeted = {v.target.metric for v in verdicts}
    for name in _HEADLINE.get(inputs.task, ()):
        if name in targeted or name not in figures:
            continue
        rows.append(
            {
                "metric": name + (" (lower is better)" if name in _LOWER_IS_BETTER else ""),
                "value": _value_text(figures[name], inputs.metrics.get(f"{name}_std")),
                "target": "",
                "verdict": "no target",
                ROW_CLASS: "na",
            }
        )
    passed = sum(v.status == PASS for v in verdicts)
    failed = sum(v.status == FAIL for v in verdicts)
    cards = [
        (inputs.task, "task"),
        (_best_estimator(inputs), "best model"),
        (_metric_card(inputs), f"cross-validated {inputs.metric or 'score'}"),
    ]
    summary = "".join(f"<div><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards)
    if verdicts:
        css = "fail" if failed else "pass" if passed == len(verdicts) else ""
        summary = (
            f'<div class="{css}"><b>{passed} / {len(verdicts)}</b><span>targets met</span></div>'
            + summary
        )
    body = f'<div class="summary">{summary}</div>'
    if rows:
        body += (
            f'<div class="scorecard">{frame_table(pd.DataFrame(rows), row_class=ROW_CLASS)}</div>'
        )
    if not verdicts:
        body += note(
            "No target set: pass them as --target accuracy>=0.8 --target dp_difference<=0.1 "
            "(or targets=[...] in Python) to get a pass or fail for each."
        )
    elif any(v.status == NOT_MEASURED for v in verdicts):
        body += note(
            "A target is not measured when its figure is not available: fairness figures "
            "need the sensitive columns (--sensitive) and labelled rows."
        )
    lead = "Cross-validated means ± their spread (standard deviation over the folds)."
    if verdicts:
        lead = (
            f"{failed} of {len(verdicts)} targets failed. "
            if failed
            else f"{passed} of {len(verdicts)} targets met. "
        ) + lead
    return Section("scorecard", "Scorecard", lead, body)


def checks_section(checks: pd.DataFrame | None) -> Section:
    """Return the data checks run before training, alerts first."""
    title = "Data checks"
    if checks is None or checks.empty:
        return Section("checks", title, "", note("This model carries no data check results."))
    order = {"alerted": 0, "fixed": 1, "passed": 2}
    table = checks.assign(_order=checks["status"].map(order).fillna(3)).sort_values("_order")
    css = {"alerted": "warn", "fixed": "", "passed": "muted"}
    shown = table[[c for c in ("check", "column", "status", "message") if c in table.columns]]
    shown = shown.assign(**{ROW_CLASS: [css.get(s, "na") for s in shown["status"]]})
    counts = checks["status"].value_counts()
    lead = (
        f"{counts.get('alerted', 0)} alert(s), {counts.get('fixed', 0)} fixed, "
        f"{counts.get('passed', 0)} passed: what the checks found in the training data "
        "before the search."
    )
    return Section("checks", title, lead, frame_table(shown.fillna(""), row_class=ROW_CLASS))


def leaderboard_section(inputs: ReportInputs) -> Section:
    """Return the best configuration of each estimator family, ranked."""
    board = inputs.leaderboard
    title = "Leaderboard"
    if board is None or board.empty:
        return Section("leaderboard", title, "", note("This model carries no leaderboard."))
    metric = inputs.metric
    shown = board.drop(columns=[c for c in ("config",) if c in board.columns])
    keep = ["estimator"]
    for name in (metric, *_HEADLINE.get(inputs.task, ())):
        if f"cv_{name}" in shown.columns and f"cv_{name}" not in keep:
            keep.append(f"cv_{name}")
            if f"cv_{name}_std" in shown.columns:
                keep.append(f"cv_{name}_std")
    keep += [c for c in ("validation", "n_trials", "fit_time") if c in shown.columns]
    table = shown[keep].rename(columns=lambda c: c.removeprefix("cv_").replace("_std", " ±"))
    lead = (
        f"Each estimator family's best configuration, ranked by cross-validated {metric}; "
        "the first row is the model. The baseline is the trivial model the search had to beat."
    )
    if "validation" in shown.columns and shown["validation"].map(scored_on_split).any():
        lead += (
            " On this large table the search scored its trials on a validation split of the "
            "rows (one set, no spread); the families rescored on the folds say so."
        )
    return Section("leaderboard", title, lead, frame_table(table))


def performance_section(inputs: ReportInputs) -> Section:
    """Return ROC, precision-recall, confusion, calibration and lift (or regression plots)."""
    from titanicml.report.curves import performance_plots

    title = "Performance"
    if inputs.predictions is None:
        why = inputs.no_predictions_reason or "saved before they were kept"
        text = (
            f"No predictions to draw from: this model has no out-of-fold predictions ({why}); "
            "pass labelled rows (--data FILE) to draw the plots from them."
        )
        return Section("performance", title, "", note(text))
    plots = performance_plots(inputs.predictions, inputs.labels)
    lead = f"Drawn from {inputs.source} ({len(inputs.predictions)} rows)."
    return Section("performance", title, lead, PLOTS, plots)


def _value_text(value: float | None, spread: float | None) -> str:
    if value is None:
        return "—"
    if spread is None or spread != spread:
        return f"{value:.3f}"
    return f"{value:.3f} ± {spread:.3f}"


def _best_estimator(inputs: ReportInputs) -> str:
    board = inputs.leaderboard
    if board is None or board.empty or "estimator" not in board.columns:
        return "—"
    return str(board.iloc[0]["estimator"])


def _metric_card(inputs: ReportInputs) -> str:
    value = inputs.metrics.get(inputs.metric)
    return "—" if value is None else _value_text(value, inputs.metrics.get(f"{inputs.metric}_std"))
