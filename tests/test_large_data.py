"""Large data within the budget: the search runs on a sample of rows, the refit on more.

Before issue 9 a million rows at a 30 s budget ran one trial for 40 s and returned a
model that scored like the majority class. The timings themselves are measured by
``benchmarks/large_data.py``; these tests check the mechanism on small data, with the
sampling threshold lowered so that it applies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from titanicml import Trainer
from titanicml.backends import sampling
from titanicml.backends.sampling import MIN_SAMPLE_ROWS, Refit, SearchSample, search_sample


def test_small_data_is_searched_whole():
    y = np.zeros(5_000, dtype=int)
    assert search_sample(y, n_columns=20, task="binary", search_seconds=20, seed=0) is None


def test_sample_size_follows_the_budget_and_keeps_class_shares():
    rng = np.random.default_rng(0)
    y = (rng.random(400_000) < 0.1).astype(int)  # 10 % positives
    sample = search_sample(y, n_columns=40, task="binary", search_seconds=20, seed=0)
    # 25,000 cells a second for 20 s, over 40 columns: 12,500 rows.
    assert len(sample.rows) == sampling.CELLS_PER_SEARCH_SECOND * 20 // 40 == 12_500
    assert sample.n_rows == 400_000
    assert np.all(np.diff(sample.rows) > 0)  # sorted, no repeats
    assert y[sample.rows].mean() == pytest.approx(y.mean(), abs=1e-3)


def test_a_sample_never_has_fewer_rows_than_the_floor():
    y = np.arange(1_000_000, dtype=float)
    sample = search_sample(y, n_columns=5_000, task="regression", search_seconds=1, seed=0)
    assert len(sample.rows) == MIN_SAMPLE_ROWS
    assert len(set(sample.rows.tolist())) == MIN_SAMPLE_ROWS


def _refit(n_rows: int, searched: int, featurize: float = 0.0) -> Refit:
    from sklearn.preprocessing import FunctionTransformer

    inputs = pd.DataFrame({"x": np.arange(n_rows, dtype=float)})
    y = (inputs["x"].to_numpy() % 2).astype(int)
    sample = SearchSample(np.arange(searched), n_rows)
    return Refit(FunctionTransformer(), inputs, y, sample, featurize, "binary")


def test_refit_cost_is_the_trials_scaled_to_every_row():
    # 5 folds: a trial fits 4 samples' worth of rows; 2 s for 1,000 rows -> 0.5 ms a row.
    refit = _refit(n_rows=10_000, searched=1_000, featurize=0.5)
    assert refit.seconds_per_row([2.0], refit_cost=1 / 4) == pytest.approx((0.5 + 2.0 / 4) / 1_000)
    # the folds drawn twice: 8 samples' worth; a trial on a 10 % split: 0.9 of one
    assert refit.seconds_per_row([2.0], 1 / 8) == pytest.approx((0.5 + 2.0 / 8) / 1_000)
    assert refit.seconds_per_row([2.0], 1 / 0.9) == pytest.approx((0.5 + 2.0 / 0.9) / 1_000)


def test_refit_uses_every_row_when_time_allows_and_none_when_it_does_not():
    import time

    from sklearn.linear_model import LogisticRegression

    board = pd.DataFrame({"estimator": ["lrl2"], "fit_time": [0.001], "config": ["{}"]})
    model = LogisticRegression().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    refit = _refit(n_rows=3_000, searched=1_000)
    refitted, rows = refit.run(model, board, seed=0, deadline=time.monotonic() + 60, n_jobs=1)
    assert rows == 3_000 and refitted is not model
    kept, rows = refit.run(model, board, seed=0, deadline=time.monotonic() - 1, n_jobs=1)
    assert kept is model and rows == 1_000


def _learnable(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(4)})
    frame["group"] = rng.choice(["a", "b", "c"], rows)
    logit = 1.5 * frame["x0"] - frame["x1"] + (frame["group"] == "a") * 1.0
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def test_a_sampled_search_trains_a_model_that_beats_the_baseline(monkeypatch):
    monkeypatch.setattr(sampling, "CELLS_PER_SEARCH_SECOND", 1_000)
    monkeypatch.setattr(sampling, "MIN_SAMPLE_ROWS", 2_000)
    frame = _learnable(30_000)
    result = Trainer(target="y", time_budget=12, track=False, ensemble=False).fit(frame)
    drawn = result.extras["search_sample"]
    assert drawn["of_rows"] == 30_000 and drawn["rows"] < 30_000
    assert drawn["rows"] <= drawn["fitted_rows"] <= 30_000
    # what the model saw, in the same words as the counts
    (fitted_on,) = result.extras["fitted_on"].values()
    if drawn["fitted_rows"] == 30_000:
        assert fitted_on == "all rows"
    elif drawn["fitted_rows"] > drawn["rows"]:
        assert fitted_on == f"a sample of {drawn['fitted_rows']:,} rows"
    else:
        assert fitted_on.endswith(f"the search's sample of {drawn['rows']:,} rows")
    assert result.leaderboard["n_trials"].sum() > 2
    assert result.extras["baseline"]["skilled"] is True
    assert result.predict(frame.head(100)).shape == (100,)


def test_what_a_model_fitted_on_a_searched_sample_saw_is_said_in_rows():
    import numpy as np

    from titanicml.backends.local import _fitted_on_sample
    from titanicml.backends.sampling import SearchSample

    sample = SearchSample(rows=np.arange(2_000), n_rows=30_000)
    seen = {"lgbm": "all rows", "xgboost": "90% split"}
    assert _fitted_on_sample(seen, 30_000, sample) == dict.fromkeys(seen, "all rows")
    assert _fitted_on_sample(seen, 8_000, sample) == dict.fromkeys(seen, "a sample of 8,000 rows")
    assert _fitted_on_sample(seen, 2_000, sample) == {
        "lgbm": "the search's sample of 2,000 rows",
        "xgboost": "90% split of the search's sample of 2,000 rows",
    }
