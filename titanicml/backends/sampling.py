"""Large data within the time budget: search on a sample of rows, refit on all when time allows.

A cross-validated trial costs about ``cv`` fits of the whole table. On a million rows
FLAML's cheapest first trial already takes several seconds, so a 30 s budget ran one
trial (which scored like the trivial baseline) and the last trial ran past the
deadline. Above :data:`CELLS_PER_SEARCH_SECOND` input cells per second of search, the
local backend fits the featurization, searches and selects the ensemble on a
stratified sample of rows instead, then refits the chosen model on every row if the
measured cost of the sample's featurization and trials says the refit ends before the
deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CELLS_PER_SEARCH_SECOND",
    "MIN_SAMPLE_ROWS",
    "REFIT_SAFETY",
    "Refit",
    "SearchSample",
    "search_sample",
]

#: Input cells (rows x columns) searched per second of search budget, at most.
CELLS_PER_SEARCH_SECOND = 25_000
#: A sample never has fewer rows than this (FLAML's own smallest sample size).
MIN_SAMPLE_ROWS = 10_000
#: A refit on all rows is started only if this many times its estimated cost fits.
REFIT_SAFETY = 2.0


@dataclass(frozen=True)
class SearchSample:
    """The rows a search runs on.

    Attributes
    ----------
    rows : ndarray of int
        Positions of the sampled rows, sorted.
    n_rows : int
        Rows of the whole training matrix.
    """

    rows: np.ndarray
    n_rows: int

    def summary(self) -> dict[str, Any]:
        """Return what was sampled (``result.extras["search_sample"]``)."""
        return {"rows": len(self.rows), "of_rows": self.n_rows}


def search_sample(
    y: np.ndarray, n_columns: int, task: str, search_seconds: float, seed: int
) -> SearchSample | None:
    """Return the sample of rows to search on, or None when every row fits the budget.

    The sample has ``CELLS_PER_SEARCH_SECOND * search_seconds / n_columns`` rows (at
    least :data:`MIN_SAMPLE_ROWS`), stratified by class for classification so that
    every class keeps its share.
    """
    cells = CELLS_PER_SEARCH_SECOND * max(0.0, search_seconds)
    size = max(MIN_SAMPLE_ROWS, int(cells / max(1, n_columns)))
    if size >= len(y):
        return None
    return SearchSample(_sample_rows(y, size, task, seed), len(y))


def _sample_rows(y: np.ndarray, size: int, task: str, seed: int) -> np.ndarray:
    """Return ``size`` sorted row positions, stratified by class for classification."""
    import numpy as np

    if task == "regression":
        rows = np.random.default_rng(seed).choice(len(y), size, replace=False)
    else:
        from sklearn.model_selection import train_test_split

        rows, _ = train_test_split(
            np.arange(len(y)), train_size=size, stratify=y, random_state=seed
        )
    return np.sort(rows)


@dataclass
class Refit:
    """Refit a model chosen on a sample on more rows, all of them if time allows.

    Attributes
    ----------
    featurizer : ColumnTransformer
        The featurization, fitted on the sample.
    inputs : DataFrame
        Every training row, as the featurization reads them.
    y : ndarray
        Every row's target.
    sample : SearchSample
        The rows searched on.
    featurize_seconds : float
        What fitting the featurization on the sample took.
    task : str
        The task, for stratified samples.
    """

    featurizer: Any
    inputs: pd.DataFrame
    y: np.ndarray
    sample: SearchSample
    featurize_seconds: float
    task: str

    def seconds_per_row(self, fit_times: list[float], refit_cost: float) -> float:
        """Estimate a refit's seconds per row from the sample's featurization and trials.

        ``refit_cost`` is the seconds of one fit on the whole sample per second of a
        trial (``SearchOutput.refit_cost``: a cross-validated trial fits ``cv - 1``
        samples' worth of rows per repeat of its folds). Costs are taken as linear in
        the rows; tree learners cost a bit more, which :data:`REFIT_SAFETY` covers.
        """
        fit_seconds = self.featurize_seconds + refit_cost * sum(fit_times)
        return fit_seconds / len(self.sample.rows)

    def run(
        self,
        estimator: Any,
        leaderboard: pd.DataFrame,
        seed: int,
        deadline: float,
        n_jobs: int,
        refit_cost: float = 1.0,
    ) -> tuple[Any, int]:
        """Refit ``estimator`` (the leaderboard's first row) on as many rows as time allows.

        Every row if the refit ends before ``deadline``, else the largest stratified
        sample that does; a refit on fewer than twice the searched rows is not worth
        its time, and the model fitted on the sample is kept. The refit runs on
        ``n_jobs`` threads (every member of an ensemble). ``refit_cost`` turns the
        leaderboard's trial times into the time of a fit on the sample
        (:meth:`seconds_per_row`). Returns the model to export and the number of rows
        it was fitted on.
        """
        import json

        from sklearn.base import clone

        from titanicml.backends.threads import set_threads

        top = leaderboard.iloc[0]
        if top["estimator"] == "ensemble":
            members = json.loads(top["config"])["members"]
            rows = leaderboard[leaderboard["estimator"].isin(members)]
            fit_times = rows["fit_time"].astype(float).tolist()
        else:
            fit_times = [float(top["fit_time"])]
        per_row = REFIT_SAFETY * self.seconds_per_row(fit_times, refit_cost)
        affordable = int(max(0.0, deadline - time.monotonic()) / per_row) if per_row else 0
        searched = len(self.sample.rows)
        if affordable < min(2 * searched, self.sample.n_rows):
            return estimator, searched
        inputs, y = self.inputs, self.y
        if affordable < self.sample.n_rows:
            chosen = _sample_rows(y, affordable, self.task, seed)
            inputs, y = inputs.iloc[chosen], y[chosen]
        refitted = set_threads(clone(estimator), n_jobs)
        return refitted.fit(self.featurizer.transform(inputs), y), len(y)
