"""Terminal output: the progress bar of a search and result tables (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from titanicml.backends.base import Progress

__all__ = ["PLAIN_EVERY", "SearchProgress", "data_checks_table", "leaderboard_table"]

#: Seconds between two progress lines when the output is not a terminal.
PLAIN_EVERY = 10.0


class SearchProgress:
    """A rich progress bar fed by :class:`~titanicml.backends.Progress` reports.

    Use as a context manager and pass the instance as ``on_progress``.
    """

    def __init__(self, metric: str, budget: float, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.metric = metric
        self._console = console or Console(stderr=True)
        # Piped output (CI, a notebook) gets a line per better score, at most one every
        # PLAIN_EVERY seconds otherwise, instead of a bar nobody sees.
        self._plain = not self._console.is_terminal
        self._last_line = float("-inf")
        self._last_best: float | None = None
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]AutoML search"),
            BarColumn(),
            TextColumn("{task.fields[trials]} trials"),
            TextColumn("best {task.fields[metric]} [cyan]{task.fields[best]}"),
            TextColumn("{task.fields[left]} left"),
            console=self._console,
            transient=True,
            disable=self._plain,
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
        """Show one progress report."""
        best = "-" if report.best_score is None else f"{report.best_score:.4f}"
        if self._plain:
            improved = report.best_score is not None and report.best_score != self._last_best
            if improved or report.elapsed - self._last_line >= PLAIN_EVERY:
                self._console.print(
                    f"AutoML search: {report.trials} trials, best {self.metric} {best} "
                    f"({report.estimator or '-'}), {report.remaining:.0f} s left",
                    highlight=False,
                )
                self._last_line, self._last_best = report.elapsed, report.best_score
            return
        self._bar.update(
            self._task,
            total=report.budget,
            completed=min(report.elapsed, report.budget),
            trials=report.trials,
            best=best,
            left=f"{report.remaining:.0f}s",
        )


def leaderboard_table(leaderboard: pd.DataFrame, metric: str) -> Any:
    """Render a leaderboard as a rich table (rank, model, CV score ± std, trials, fit time).

    A family scored only on the search's validation split (large tables) shows "split"
    for its spread: one validation set has none.
    """
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
            _spread(row, metric),
            str(row["n_trials"]),
            f"{row['fit_time']:.2f}",
        )
    return table


def _spread(row: dict[str, Any], metric: str) -> str:
    from titanicml.metrics import scored_on_split

    if scored_on_split(row.get("validation", "")):
        return "split"
    return f"{row[f'cv_{metric}_std']:.4f}"


_STATUS_STYLE = {"fixed": "yellow", "alerted": "bold red", "passed": "green"}


def data_checks_table(checks: pd.DataFrame) -> Any:
    """Render the data-check report: what was fixed or alerted, and how many checks passed."""
    from rich.table import Table

    passed = checks[checks["status"] == "passed"]
    table = Table(
        title="Data checks",
        title_justify="left",
        caption=f"{len(passed)} more checks passed: {', '.join(passed['check'])}",
        caption_justify="left",
    )
    for name in ("status", "check", "column", "message"):
        table.add_column(name, overflow="fold")
    for row in checks[checks["status"] != "passed"].itertuples(index=False):
        style = _STATUS_STYLE.get(row.status, "")
        column = "" if row.column is None or row.column != row.column else str(row.column)
        table.add_row(f"[{style}]{row.status}[/]", row.check, column, row.message)
    return table
