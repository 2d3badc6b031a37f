"""Terminal output: the progress bar of a search and result tables (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from titanicml.backends.base import Progress

__all__ = ["SearchProgress", "leaderboard_table", "print_frame"]


class SearchProgress:
    """A rich progress bar fed by :class:`~titanicml.backends.Progress` reports.

    Use as a context manager and pass the instance as ``on_progress``.
    """

    def __init__(self, metric: str, budget: float, console: Console | None = None) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.metric = metric
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]AutoML search"),
            BarColumn(),
            TextColumn("{task.fields[trials]} trials"),
            TextColumn("best {task.fields[metric]} [cyan]{task.fields[best]}"),
            TextColumn("{task.fields[left]} left"),
            console=console,
            transient=True,
        )
        self._task = self._bar.add_task(
            "search", total=budget, trials=0, metric=metric, best="-", left=f"{budget:.0f}s"
        )

    def __enter__(self) -> SearchProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def __call__(self, report: Progress) -> None:
        best = "-" if report.best_score is None else f"{report.best_score:.4f}"
        self._bar.update(
            self._task,
            total=report.budget,
            completed=min(report.elapsed, report.budget),
            trials=report.trials,
            best=best,
            left=f"{report.remaining:.0f}s",
        )


def leaderboard_table(leaderboard: pd.DataFrame, metric: str) -> Any:
    """Render a leaderboard as a rich table (rank, model, CV score ± std, trials, fit time)."""
    from rich.table import Table

    table = Table(title="Leaderboard", title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("model", "left"),
        (f"CV {metric}", "right"),
        ("± std", "right"),
        ("trials", "right"),
        ("fit time (s)", "right"),
    ):
        table.add_column(name, justify=justify)
    for rank, row in enumerate(leaderboard.to_dict("records"), start=1):
        table.add_row(
            str(rank),
            str(row["family"]),
            f"{row[f'cv_{metric}']:.4f}",
            f"{row[f'cv_{metric}_std']:.4f}",
            str(row["n_trials"]),
            f"{row['fit_time']:.2f}",
        )
    return table


def print_frame(console: Console, frame: pd.DataFrame, title: str) -> None:
    """Print a small DataFrame as a rich table."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*("" if v is None or v != v else str(v) for v in row))
    console.print(table)
