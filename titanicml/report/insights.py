"""The report's sections on the model's reasons and failures: explanations, fairness, cohorts.

Each reads the input rows aligned with the plotted predictions (``ReportInputs.rows``):
the training rows for out-of-fold predictions, or the user's labelled rows. A part
that cannot be computed says why in a note instead of failing the report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from titanicml._utils.htmlpage import escape
from titanicml.report.curves import Plot
from titanicml.report.sections import PLOTS, ROW_CLASS, Section, frame_table, note

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.report.inputs import ReportInputs

__all__ = ["cohorts_section", "explanation_section", "fairness_figures", "fairness_section"]

_logger = logging.getLogger("titanicml")
#: Rows explained at most (a seeded sample beyond): the plots' cost grows with them.
EXPLAINED_ROWS = 400
_NO_ROWS = (
    "needs the input rows: pass the training data or other labelled rows (--data FILE, "
    "data= in Python)"
)


def explanation_section(
    inputs: ReportInputs, top: int = 10, max_rows: int = EXPLAINED_ROWS
) -> Section:
    """Return the importance and the SHAP summary (beeswarm) of a sample of the rows."""
    from titanicml.explain import beeswarm_plot, explain_model, importance_plot

    title = "Explanations"
    if inputs.rows is None:
        return Section("explanations", title, "", note(f"Explanations {_NO_ROWS}."))
    rows = _sample(inputs.rows.drop(columns=[inputs.target], errors="ignore"), max_rows)
    try:
        explanation = explain_model(inputs.model, rows, background=rows)
    except Exception as exc:  # an estimator without an exact path: say so, keep the report
        return Section("explanations", title, "", note(f"This model is not explained: {exc}"))
    plotted = explanation
    if explanation.multiclass:
        plotted = explanation.for_class(explanation.labels[0])
    plots = [
        Plot(
            "importance",
            "Importance",
            "Mean absolute contribution of each of your columns: how much it moves the "
            f"output ({explanation.output}) on average, whichever way.",
            importance_plot(explanation, top),
        ),
        Plot(
            "beeswarm",
            "SHAP summary",
            "One dot per row: right of the line the column pushed the output up, left "
            "down; red dots are high values of the column, blue low ones.",
            beeswarm_plot(plotted, top),
        ),
    ]
    exact = "exact" if explanation.exact else "exact in sum (see docs/explain.md)"
    lead = (
        f"Contributions of {len(rows)} rows in {explanation.output} space, in your columns "
        f"({explanation.method}; {exact}, largest additivity error "
        f"{explanation.additivity_error:.1g})."
    )
    if explanation.multiclass:
        lead += f" The summary shows class {explanation.labels[0]!r}."
    return Section("explanations", title, lead, PLOTS, plots)


def fairness_section(
    inputs: ReportInputs, sensitive: Sequence[str] | None
) -> tuple[Section, dict[str, float]]:
    """Metrics by group with intervals; returns the section and the scorecard's figures."""
    title = "Fairness"
    try:
        from titanicml.fairness import assess_fairness, propose_sensitive
    except ImportError:
        text = "Fairness is not available in this installation (titanicml.fairness is absent)."
        return Section("fairness", title, "", note(text)), {}
    if inputs.rows is None:
        return Section("fairness", title, "", note(f"Fairness {_NO_ROWS}.")), {}
    if not sensitive:
        proposed = ", ".join(map(str, propose_sensitive(inputs.rows))) or "none"
        text = (
            "No sensitive column given, so no group is compared: name them with "
            f"--sensitive (sensitive=[...] in Python). Columns whose names suggest one: {proposed}."
        )
        return Section("fairness", title, "", note(text)), {}
    try:
        assessed = assess_fairness(
            inputs.model,
            inputs.rows,
            sensitive=list(sensitive),
            target=inputs.target,
            **_prediction_source(inputs),
        )
    except Exception as exc:  # a bad column is the user's to fix; the rest of the page stands
        _logger.warning("the report's fairness section failed: %s", exc)
        return Section("fairness", title, "", note(f"Fairness could not be assessed: {exc}")), {}
    settings = assessed.settings
    lead = (
        f"The model's {assessed.source} predictions on {assessed.n_rows} rows, by group of "
        f"{', '.join(sensitive)}; brackets are {settings.get('confidence', 0.95):.0%} "
        "bootstrap intervals. Groups under "
        f"{settings.get('min_group_size', 30)} rows are flagged and not compared."
    )
    by_group = assessed.by_group()
    plots = [_group_plot(by_group)]
    body = PLOTS
    body += "<h3>Disparities</h3>" + frame_table(_with_intervals(assessed.disparities()))
    body += "<h3>By group</h3>" + frame_table(_with_intervals(by_group), max_rows=40)
    alerts = [f for f in assessed.findings if f.status == "alerted"]
    if alerts:
        body += "<h3>Alerts</h3><ul>" + "".join(f"<li>{escape(f.message)}</li>" for f in alerts)
        body += "</ul>"
    return Section("fairness", title, lead, body, plots), fairness_figures(assessed)


def fairness_figures(assessed: Any) -> dict[str, float]:
    """Return the scorecard's fairness figures: the worst disparity of the sensitive columns.

    Each column counts on its own; their intersections are shown, not scored.

    ``dp_difference``, ``eo_difference``, ``accuracy_difference`` (the largest) and
    ``dp_ratio``, ``eo_ratio`` (the smallest).
    """
    table = assessed.disparities()
    table = table[~table["sensitive"].astype(str).str.contains(" & ")]  # not intersections
    figures: dict[str, float] = {}
    for measure, short in _FAIRNESS_NAMES.items():
        values = table.loc[table["measure"] == measure, "value"].dropna()
        if not values.empty:
            figures[short] = float(values.min() if short.endswith("ratio") else values.max())
    return figures


def cohorts_section(inputs: ReportInputs) -> Section:
    """Return the cohorts where the model errs most (a shallow tree on the errors)."""
    title = "Error cohorts"
    try:
        from titanicml.explain.cohorts import error_cohorts
    except ImportError:
        text = "Error cohorts are not available in this installation."
        return Section("cohorts", title, "", note(text))
    if inputs.rows is None or inputs.predictions is None:
        return Section("cohorts", title, "", note(f"Error cohorts {_NO_ROWS}."))
    try:
        found = error_cohorts(
            inputs.model, inputs.rows, target=inputs.target, **_prediction_source(inputs)
        )
    except Exception as exc:
        _logger.warning("the report's error cohorts failed: %s", exc)
        return Section("cohorts", title, "", note(f"Error cohorts could not be found: {exc}"))
    measure = "mean absolute error" if inputs.task == "regression" else "error rate"
    lead = (
        f"Where the model fails most: the leaves of a shallow tree fitted on its "
        f"{found.source} errors (depth 3, at least 20 rows a leaf), worst first; the "
        f"{measure} on all {found.n_rows} rows is {found.overall:.3g}."
    )
    table = found.table()
    table[ROW_CLASS] = ["warn" if lift > 1.2 else "" for lift in table["lift"]]
    table["coverage"] = [f"{share:.1%}" for share in table["coverage"]]
    if inputs.task != "regression":
        table["error"] = [f"{rate:.1%}" for rate in table["error"]]
    table["lift"] = [f"{lift:.2f}x" for lift in table["lift"]]
    if found.cohorts:
        worst = found.cohorts[0]
        lead += f" Worst: {worst.rule}, {worst.error:.0%} on {worst.coverage:.0%} of the rows."
    body = frame_table(table, row_class=ROW_CLASS)
    if found.note:
        body = note(found.note) + body
    return Section("cohorts", title, lead, body)


_FAIRNESS_NAMES = {
    "demographic_parity_difference": "dp_difference",
    "demographic_parity_ratio": "dp_ratio",
    "equalized_odds_difference": "eo_difference",
    "equalized_odds_ratio": "eo_ratio",
    "accuracy_difference": "accuracy_difference",
}


def _prediction_source(inputs: ReportInputs) -> dict[str, Any]:
    """Out-of-fold predictions for the training rows, the model's for other rows."""
    from titanicml.report.inputs import OUT_OF_FOLD

    if inputs.source == OUT_OF_FOLD and inputs.predictions is not None:
        return {"oof": inputs.predictions, "predictions": "out-of-fold"}
    # The holdout tells honest rows from possibly in-sample ones (said in a note).
    return {"predictions": "model", "holdout": inputs.holdout}


def _with_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Fold each ``x``, ``x_low``, ``x_high`` (and ``value``, ``low``, ``high``) into one column."""
    out = table.copy()
    pairs = [("value", "low", "high")] + [
        (c, f"{c}_low", f"{c}_high") for c in table.columns if f"{c}_low" in table.columns
    ]
    for column, low, high in pairs:
        if {column, low, high} <= set(out.columns):
            out[column] = [
                "" if v != v else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                for v, lo, hi in zip(out[column], out[low], out[high], strict=True)
            ]
            out = out.drop(columns=[low, high])
    if "small" in out.columns:
        out["small"] = ["under the minimum" if small else "" for small in out["small"]]
    return out


def _group_plot(by_group: pd.DataFrame) -> Plot:
    """Draw selection rate and accuracy by group, with their intervals (single columns only)."""
    import numpy as np

    from titanicml.explain.plots import new_figure

    single = by_group[~by_group["sensitive"].astype(str).str.contains(" & ")].head(16)
    labels = [f"{s} = {g}" for s, g in zip(single["sensitive"], single["group"], strict=True)]
    figure = new_figure(7, 0.32 * len(single) + 1.3)
    axes = figure.subplots(1, 2, sharey=True)
    y = np.arange(len(single))[::-1]
    for ax, measure in zip(axes, ("selection_rate", "accuracy"), strict=True):
        if measure not in single.columns:
            continue
        value = single[measure].to_numpy(float)
        low = single.get(f"{measure}_low", single[measure]).to_numpy(float)
        high = single.get(f"{measure}_high", single[measure]).to_numpy(float)
        colors = ["#b0b7c3" if small else "#1f5fa6" for small in single["small"]]
        ax.barh(y, value, color=colors, height=0.6)
        ax.errorbar(value, y, xerr=[value - low, high - value], fmt="none", ecolor="#222",
                    capsize=3, linewidth=1)  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_xlabel(measure.replace("_", " "))
        ax.grid(True, axis="x", color="#e5e7eb", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y, labels)
    figure.tight_layout()
    return Plot(
        "fairness_by_group",
        "Selection rate and accuracy by group",
        "Bars are each group's share predicted positive (left) and accuracy (right); the "
        "whiskers are the bootstrap intervals: groups whose whiskers do not overlap differ "
        "beyond chance. Grey bars are groups too small to compare.",
        figure,
    )


def _sample(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    return rows if len(rows) <= n else rows.sample(n=n, random_state=0)
