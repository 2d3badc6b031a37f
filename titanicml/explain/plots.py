"""Figures of an explanation: importance bars, a beeswarm, dependence plots (matplotlib).

Each function returns a :class:`matplotlib.figure.Figure` made without pyplot (no
window, no global state): save it with ``figure.savefig(path)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from titanicml.exceptions import ExtraNotInstalledError, ModelError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from titanicml.explain.explanation import Explanation

__all__ = [
    "beeswarm_plot",
    "dependence_plot",
    "dependence_plots",
    "importance_plot",
    "new_figure",
]

_COLORMAP = "coolwarm"


def importance_plot(explanation: Explanation, top: int = 10) -> Figure:
    """Bars of the mean absolute contribution of the ``top`` columns."""
    importance = explanation.importance().head(top)[::-1]
    figure = new_figure(6, 0.35 * len(importance) + 1.2)
    axes = figure.subplots()
    axes.barh(importance.index.astype(str), importance.to_numpy(), color="#1f77b4")
    axes.set_xlabel(f"mean |contribution| ({explanation.output})")
    axes.set_title("Importance")
    figure.tight_layout()
    return figure


def beeswarm_plot(explanation: Explanation, top: int = 10) -> Figure:
    """One row of dots per column (the ``top`` ones): each row's contribution, colored by value.

    Numeric columns are colored by the rank of their value (blue low, red high);
    others are grey.
    """
    import numpy as np

    one = _one_output(explanation)
    columns = list(one.importance().head(top).index)
    contributions = one.contributions
    figure = new_figure(7, 0.45 * len(columns) + 1.4)
    axes = figure.subplots()
    rng = np.random.default_rng(0)
    scatter = None
    for position, column in enumerate(reversed(columns)):
        x = contributions[column].to_numpy()
        y = position + rng.uniform(-0.3, 0.3, len(x)) * _density(x)
        colors = _value_colors(one.data[column])
        if colors is None:
            axes.scatter(x, y, s=8, color="#999999", alpha=0.7, linewidths=0)
        else:
            scatter = axes.scatter(
                x, y, s=8, c=colors, cmap=_COLORMAP, vmin=0, vmax=1, alpha=0.8, linewidths=0
            )
    axes.axvline(0, color="#444444", linewidth=0.8)
    axes.set_yticks(range(len(columns)), [str(c) for c in reversed(columns)])
    axes.set_xlabel(f"contribution ({one.output})")
    axes.set_title("Contributions by column")
    if scatter is not None:
        bar = figure.colorbar(scatter, ax=axes, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("value")
    figure.tight_layout()
    return figure


def dependence_plot(explanation: Explanation, column: str) -> Figure:
    """Plot a column's contribution against its value: dots for numbers, boxes for text."""
    one = _one_output(explanation)
    if column not in one.contributions.columns:
        raise ModelError(
            f"column {column!r} is not explained; the columns are "
            f"{', '.join(map(str, one.contributions.columns))}"
        )
    values, contributions = one.data[column], one.contributions[column]
    figure = new_figure(6, 4)
    axes = figure.subplots()
    label = f"contribution ({one.output})"
    if _is_numeric(values):
        axes.scatter(values, contributions, s=10, alpha=0.6, linewidths=0)
        missing = values.isna()
        if missing.any():
            axes.scatter(
                [values.min()] * int(missing.sum()), contributions[missing],
                s=10, color="#d62728", marker="x", label="missing (drawn at the minimum)",
            )  # fmt: skip
            axes.legend(loc="best")
        axes.axhline(0, color="#444444", linewidth=0.8)
        axes.set_xlabel(str(column))
        axes.set_ylabel(label)
    else:
        text = values.astype(object).where(values.notna(), "(missing)").astype(str)
        groups = contributions.groupby(text.to_numpy()).apply(list)
        order = groups.map(len).sort_values(ascending=False).index[:15]
        axes.boxplot([groups[g] for g in order], orientation="horizontal")
        axes.set_yticks(range(1, len(order) + 1), [g[:30] for g in order])
        axes.axvline(0, color="#444444", linewidth=0.8)
        axes.set_xlabel(label)
        axes.set_ylabel(str(column))
    axes.set_title(f"Dependence on {column}")
    figure.tight_layout()
    return figure


def dependence_plots(explanation: Explanation, top: int = 3) -> dict[str, Figure]:
    """Dependence plots of the ``top`` most important columns, by column name."""
    columns = _one_output(explanation).importance().head(top).index
    return {str(c): dependence_plot(explanation, c) for c in columns}


def new_figure(width: float, height: float) -> Figure:
    """Return a matplotlib figure (inches) made without pyplot: no window, no global state.

    Raises
    ------
    ExtraNotInstalledError
        When matplotlib (the ``explain`` extra) is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f'plots need matplotlib, an optional extra: pip install "titanicml[explain]" ({exc})'
        ) from None
    return Figure(figsize=(width, height), dpi=100)


def _one_output(explanation: Explanation) -> Explanation:
    if explanation.multiclass:
        raise ModelError(
            "a plot shows one class; pick it with explanation.for_class(label) (classes: "
            f"{', '.join(map(repr, explanation.labels))})"
        )
    return explanation


def _is_numeric(values: pd.Series) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
    )


def _value_colors(values: pd.Series) -> pd.Series | None:
    """Rank of each value in [0, 1] for numeric columns (missing: 0.5), else ``None``."""
    if not _is_numeric(values):
        return None
    ranks = values.rank(pct=True)
    return ranks.fillna(0.5).to_numpy()


def _density(x: object) -> float:
    """Return a jitter scale: full height for many rows, less for a few."""
    import numpy as np

    return float(min(1.0, np.log1p(np.size(x)) / 5))
