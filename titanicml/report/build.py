"""``build_report``: one self-contained HTML page about a model, and its plots as PNG."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.htmlpage import CSS, escape, html_page
from titanicml.report.targets import FAIL, Target, Verdict, judge, parse_targets

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.report.curves import Plot
    from titanicml.report.sections import Section

__all__ = ["Report", "build_report"]


@dataclass
class Report:
    """A built report: the page (:attr:`html`), its sections, verdicts and plots.

    Attributes
    ----------
    html : str
        The whole page: no script, no external resource, figures inline.
    sections : list of Section
        In page order, the scorecard first.
    verdicts : list of Verdict
        Each target judged: ``pass``, ``fail`` or ``not measured``.
    plots : list of Plot
        Every figure of the page (for PNG files: :meth:`write_plots`).
    seconds : float
        What building it took.
    """

    html: str
    sections: list[Section]
    verdicts: list[Verdict]
    plots: list[Plot] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether no target failed (targets not measured do not fail)."""
        return not any(v.status == FAIL for v in self.verdicts)

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (whole or not at all); return the path."""
        from titanicml._utils.staging import staged_path

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with staged_path(target, overwrite=True) as building:
            Path(building).write_text(self.html, encoding="utf-8")
        return target

    def write_plots(self, folder: str | Path) -> list[Path]:
        """Write every plot as ``<name>.png`` into ``folder``; return the files."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for plot in self.plots:
            path = out / f"{_file_part(plot.name)}.png"
            path.write_bytes(plot.png())
            written.append(path)
        return written

    def _repr_html_(self) -> str:
        """Show the page inline in a notebook (an iframe of the page, no script)."""
        return (
            '<iframe style="width:100%;height:720px;border:1px solid #ddd" srcdoc="'
            f'{escape(self.html)}"></iframe>'
        )


def build_report(
    model: Any,
    data: Any = None,
    *,
    targets: Sequence[str | Target] = (),
    endpoint: str | None = None,
    sensitive: Sequence[str] | None = None,
    rows: pd.DataFrame | None = None,
    tracking_uri: str | None = None,
    title: str | None = None,
    figure_format: str = "svg",
    explained_rows: int = 400,
) -> Report:
    """Build the report of a model: scorecard, checks, leaderboard, plots, reasons, fairness.

    Parameters
    ----------
    model : TrainingResult, str or Path
        A training result, a model directory, ``runs:/<id>/model`` or a registered
        model (``titanic-model@champion``).
    data : DataFrame, str or Path, optional
        Labelled rows (the target included). Without it the plots use the model's
        out-of-fold predictions; the training data itself (same hash) keeps them and
        adds explanations, fairness and cohorts on its rows.
    targets : sequence of str or Target
        ``"accuracy>=0.8"``, ``"dp_difference<=0.1"``...: each gets pass or fail.
    endpoint : str, optional
        An endpoint whose monitoring runs (MLflow experiment ``monitor-<endpoint>``) are
        drawn over time.
    sensitive : sequence of str, optional
        Columns to compare groups by in the fairness section.
    rows : DataFrame, optional
        The training rows of a result (the Trainer passes them).
    tracking_uri : str, optional
        MLflow store of the model reference and the monitoring runs.
    title : str, optional
        The page's title.
    figure_format : {"svg", "png"}
        ``svg``: line plots as SVG (sharp at any zoom), dotted ones as PNG; ``png``: every
        plot as PNG, drawn once for the page and :meth:`Report.write_plots` (cheaper).
    explained_rows : int
        Rows explained at most (a seeded sample beyond): the explanations' cost.

    Raises
    ------
    ConfigError
        For a target that does not parse, or data without the target column.
    ModelError
        If the model cannot be loaded.
    """
    from titanicml.report.inputs import gather_inputs
    from titanicml.report.insights import cohorts_section, explanation_section, fairness_section
    from titanicml.report.monitoring import monitoring_section
    from titanicml.report.sections import (
        checks_section,
        leaderboard_section,
        performance_section,
        scorecard_section,
    )

    started = time.perf_counter()
    parsed = parse_targets(targets)  # a bad target fails before any work
    inputs = gather_inputs(model, data, rows=rows, tracking_uri=tracking_uri)
    fairness, fairness_figures = fairness_section(inputs, sensitive)
    figures = {k: v for k, v in inputs.metrics.items() if not k.endswith("_std")}
    figures.update(fairness_figures)
    spreads = {k.removesuffix("_std"): v for k, v in inputs.metrics.items() if k.endswith("_std")}
    verdicts = judge(parsed, figures, spreads)
    sections = [
        scorecard_section(inputs, verdicts, figures),
        checks_section(inputs.data_checks),
        leaderboard_section(inputs),
        performance_section(inputs),
        explanation_section(inputs, max_rows=explained_rows),
        fairness,
        cohorts_section(inputs),
    ]
    monitoring = monitoring_section(endpoint, tracking_uri)
    if monitoring is not None:
        sections.append(monitoring)
    heading = title or f"Model report: {inputs.name}"
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"Target {inputs.target!r}, {inputs.task}; made {made} by titanicml."
    from titanicml.report.style import REPORT_CSS

    body = [_toc(sections), *(s.html(figure_format) for s in sections)]
    page = html_page(heading, body, subtitle=subtitle, css=CSS + REPORT_CSS)
    plots = [plot for section in sections for plot in section.plots]
    return Report(page, sections, verdicts, plots, time.perf_counter() - started)


def _toc(sections: list[Section]) -> str:
    links = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    return f'<nav class="toc">{links}</nav>'


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
