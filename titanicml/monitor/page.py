"""``monitor.html``: the signal table and the histograms of the drifted features.

One self-contained page (:mod:`titanicml._utils.htmlpage`: inline CSS and SVG, no
JavaScript, nothing fetched). Each drifted feature (data or prediction drift that
alerts; at most :data:`MAX_FIGURES`, most important first) gets a histogram of the
reference against the production window, as shares of their rows: numeric features
on common bins, categorical ones as bars per category (a binary classifier's two
probabilities mirror each other: only the second is drawn). A training profile
reference is drawn from the distribution rebuilt from the profile. The figures are
``matplotlib.figure.Figure`` objects saved as SVG (no pyplot, fixed margins instead of
``tight_layout``, which lays every text out once more). Without matplotlib (the
``explain`` extra) the page says so and keeps the table.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from titanicml._utils.htmlpage import escape, figure_html, html_page, section, table_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from titanicml.monitor.runs import MonitorRun

__all__ = ["MAX_FIGURES", "monitor_page"]

#: Histograms drawn at most (the page stays far under 1 MB).
MAX_FIGURES = 12
_BINS = 20
_SHOWN = ("signal", "feature", "metric", "value", "lower", "upper", "threshold", "status",
          "importance", "n_production", "message")  # fmt: skip


def monitor_page(run: MonitorRun, reference: Any) -> str:
    """Return the HTML page of a monitoring run."""
    settings = run.signals.settings
    verdict = (
        '<span class="badge alert">alert</span>'
        if run.alert
        else ('<span class="badge ok">no alert</span>')
    )
    facts = [
        ("endpoint", run.endpoint), ("deployment", run.deployment or "all"),
        ("window", f"{settings.get('window')}: {settings.get('start')} to {settings.get('end')}"),
        ("model", run.model), ("reference", run.reference),
        ("rows", f"{run.window.rows:,} ({run.window.answered:,} answered, "
                 f"{len(run.window.frame):,} used, {run.window.labelled:,} labelled)"),
    ]  # fmt: skip
    summary = (
        "<p>"
        + verdict
        + "</p>\n"
        + table_html([{"": k, "value": v} for k, v in facts], columns=["", "value"])
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in run.notes)
    body = [section("Summary", summary + (f"\n<ul>{notes}</ul>" if notes else ""))]
    body.append(section("Drifted features", _figures(run, reference)))
    rows = []
    for row in run.signals.table.to_dict(orient="records"):
        shown = {k: _plain(row.get(k)) for k in _SHOWN}
        shown["class"] = "alert" if row["alert"] else "muted" if row["status"] == "skipped" else ""
        rows.append(shown)
    body.append(section("Signals", table_html(rows, columns=_SHOWN, row_class="class")))
    return html_page(f"Monitoring {run.endpoint}", body, subtitle=f"titanicml monitor run, "
                     f"{settings.get('end')}")  # fmt: skip


def _figures(run: MonitorRun, reference: Any) -> str:
    table = run.signals.table
    drifted = table[table["alert"] & table["signal"].isin(["data_drift", "prediction_drift"])]
    names = list(dict.fromkeys(drifted["feature"].dropna()))
    logged = [c for c in run.window.frame.columns if str(c).startswith("probability_")]
    if len(logged) == 2 and set(logged) <= set(names):
        names.remove(logged[0])  # a binary model's two are mirror images: draw one
    names = names[:MAX_FIGURES]
    if not names:
        return "<p>No feature drifted.</p>"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return '<p>Histograms need matplotlib: pip install "titanicml[explain]".</p>'
    figures = []
    for name in names:
        figure = _histogram(name, run.window.frame, reference, run.reference_predictions)
        if figure is not None:
            figures.append(figure_html(figure, caption=f"{name}: reference vs production"))
    return '<div class="figures">' + "\n".join(figures) + "</div>"


def _histogram(name: str, production: Any, reference: Any, predictions: Any) -> Figure | None:
    """Return the histogram of one feature, reference against production (shares of rows)."""
    import numpy as np
    from matplotlib.figure import Figure

    from titanicml.monitor.stats.distributions import (
        Numeric,
        categorical_from_values,
        numeric_from_values,
    )
    from titanicml.monitor.stats.table import feature_set

    if name not in production.columns:
        return None
    source = reference
    if name not in _reference_names(reference):
        source = predictions
        if source is None or name not in source.columns:
            return None
    ref = feature_set(source, [name]).features.get(name)
    if ref is None or ref.distribution is None:
        return None
    figure = Figure(figsize=(4.2, 2.8), dpi=100)
    axes = figure.subplots()
    if isinstance(ref.distribution, Numeric):
        prod = numeric_from_values(production[name])
        low = float(np.nanmin([ref.distribution.low, prod.low]))
        high = float(np.nanmax([ref.distribution.high, prod.high]))
        edges = np.linspace(low, high if high > low else low + 1, _BINS + 1)
        for dist, label, color in ((ref.distribution, "reference", "#90a4ae"),
                                   (prod, "production", "#e53935")):  # fmt: skip
            counts, _ = np.histogram(dist.values, edges, weights=dist.weights)
            share = counts / counts.sum() if counts.sum() else counts
            axes.stairs(share, edges, label=label, color=color, fill=label == "reference",
                        alpha=0.6 if label == "reference" else 1.0, linewidth=1.5)  # fmt: skip
    else:
        prod = categorical_from_values(production[name], keep_all=True)
        ref_counts = ref.distribution.counts
        categories = list(ref_counts)[:15]
        categories += [c for c in prod.counts if c not in ref_counts][
            : max(0, 20 - len(categories))
        ]
        x = np.arange(len(categories))
        ref_total = sum(ref_counts.values()) or 1
        prod_total = sum(prod.counts.values()) or 1
        ref_share = [ref_counts.get(c, 0) / ref_total for c in categories]
        prod_share = [prod.counts.get(c, 0) / prod_total for c in categories]
        axes.bar(x - 0.2, ref_share, 0.4, label="reference", color="#90a4ae")
        axes.bar(x + 0.2, prod_share, 0.4, label="production", color="#e53935")
        axes.set_xticks(x, [c[:12] for c in categories], rotation=45, ha="right", fontsize=7)
    axes.set_title(name, fontsize=10)
    axes.set_ylabel("share of rows", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, frameon=False)
    # Fixed margins: tight_layout would lay out every text once more before the draw.
    bottom = 0.17 if isinstance(ref.distribution, Numeric) else 0.3
    figure.subplots_adjust(left=0.15, right=0.97, top=0.9, bottom=bottom)
    return figure


def _reference_names(reference: Any) -> set[str]:
    if isinstance(reference, dict):
        return {c["name"] for c in reference.get("columns", [])}
    return {str(c) for c in getattr(reference, "columns", [])}


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
