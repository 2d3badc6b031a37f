"""Trials on large tables are scored on a validation split; the rest of the fit uses the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "target": y})


def _fit(data: pd.DataFrame, monkeypatch, **options):
    """Fit with a spy on the model refitted after the search: the rows it is given."""
    import titanicml.backends.local as local
    from titanicml import Trainer

    refits: list[int] = []
    original = local.fit_config

    def spy(found, family, config, x, y, *args, **kwargs):
        refits.append(len(y))
        return original(found, family, config, x, y, *args, **kwargs)

    monkeypatch.setattr(local, "fit_config", spy)
    reports = []
    trainer = Trainer(target="target", seed=0, **{"track": False, **options})
    return trainer.fit(data, on_progress=reports.append), reports, refits


def test_a_large_table_scores_trials_on_a_split_and_refits_on_every_row(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)  # 10,000 rows in real use
    result, reports, refits = _fit(
        _table(500), monkeypatch, time_budget=30, max_trials=6, estimators=["lgbm"],
        ensemble=False,
    )  # fmt: skip
    assert result.extras["search"]["validation"] == "10% split"
    # every trial on the split is counted and reported, as a cross-validated one is
    assert len(result.trials) == 6 and [r.trials for r in reports] == list(range(1, 7))
    # the split is one validation set: no spread over folds
    assert (result.trials["cv_accuracy_std"] == 0).all()
    # FLAML's model saw 90 % of the rows: the backend refits the best one on all 500
    assert refits == [500]
    assert result.model.predict(_table(20, seed=1).drop(columns="target")).shape == (20,)
    # the out-of-fold output is still on the 5 folds, for every row
    assert result.extras["oof"]["available"] and len(result.oof) == 500
    # the leaderboard says what each row was scored on: the baseline on the folds
    board = result.leaderboard.set_index("estimator")
    assert board.loc["lgbm", "validation"] == "10% split"
    assert board.loc["baseline", "validation"] == "5-fold cv"
    # the console shows "split" as the spread of a row scored on one validation set
    lines = _rendered(result.leaderboard).splitlines()
    (lgbm,) = [line for line in lines if "LightGBM" in line]
    (baseline,) = [line for line in lines if "Baseline" in line]
    assert "split" in lgbm and "split" not in baseline


def _rendered(leaderboard: pd.DataFrame) -> str:
    import io

    from rich.console import Console

    from titanicml.cli.console import leaderboard_table

    out = io.StringIO()
    Console(file=out, width=200).print(leaderboard_table(leaderboard, "accuracy"))
    return out.getvalue()


def test_the_ensembles_candidates_are_rescored_on_the_folds(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    result, _, _ = _fit(
        _table(500), monkeypatch, time_budget=30, max_trials=6, estimators=["lgbm", "lrl1"],
    )  # fmt: skip
    rescored = set(result.extras["ensemble"]["candidates"])
    assert rescored, result.extras["ensemble"]
    board = result.leaderboard.set_index("estimator")
    for family in rescored:
        assert board.loc[family, "validation"] == "5-fold cv"
        assert board.loc[family, "cv_accuracy_std"] > 0


def test_families_rescored_on_the_folds_rank_above_those_scored_on_the_split(monkeypatch):
    import titanicml.backends.ensembling as ensembling
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    monkeypatch.setattr(ensembling, "MAX_MEMBERS", 1)  # only the search's best is rescored
    result, _, _ = _fit(
        _table(500), monkeypatch, time_budget=30, max_trials=9,
        estimators=["lgbm", "lrl1", "extra_tree"],
    )  # fmt: skip
    (rescored,) = result.extras["ensemble"]["candidates"]
    families = result.leaderboard[result.leaderboard["estimator"] != "baseline"]
    assert families["estimator"].iloc[0] == rescored and bool(families["selected"].iloc[0])
    assert families["validation"].tolist() == ["5-fold cv", "10% split", "10% split"]


def test_the_mlflow_run_and_the_cli_summary_say_what_the_best_row_was_scored_on(
    monkeypatch, cli, tmp_path
):
    from mlflow import MlflowClient

    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    path = tmp_path / "large.csv"
    _table(500).to_csv(path, index=False)
    out = cli(
        "train", "--data", path, "--target", "target", "--time-budget", "30",
        "--max-trials", "4", "--estimators", "lgbm", "--no-ensemble", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = next(line for line in out.stdout.splitlines() if line.startswith("Best model"))
    assert "accuracy on a 10% split of the rows" in summary and "±" not in summary
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert parent.data.tags["titanicml.validation"] == "10% split"


def test_a_small_table_cross_validates_every_trial(monkeypatch):
    result, reports, refits = _fit(
        _table(300), monkeypatch, time_budget=30, max_trials=4, estimators=["lgbm"],
        ensemble=False,
    )  # fmt: skip
    assert result.extras["search"]["validation"] == "5-fold cv"
    assert len(reports) == len(result.trials) == 4
    assert (result.trials["cv_accuracy_std"] > 0).any()
    assert refits == []  # FLAML's refit on every row is kept


def test_the_cost_of_the_folds_is_scaled_from_a_holdout_trial():
    from titanicml.backends.ensembling import ensemble_cost
    from titanicml.backends.flaml_search import FlamlSearch
    from titanicml.spec import TrainSpec

    search = FlamlSearch(TrainSpec(target="y", cv=3), "binary", None, None, budget=10)
    assert search.cv_cost == 1.0
    search.split = True
    # 3 folds fit 2 tables' worth of rows; a trial on the split fits 0.9 of one
    assert search.cv_cost == pytest.approx(2 / 0.9)
    trials = pd.DataFrame({"trial": [0, 1], "estimator": ["lgbm", "rf"], "loss": [0.2, 0.3]})
    trials["fit_time"] = [0.9, 1.8]
    # 1.5 * (2 / 0.9) * (0.9 + 1.8) = 9.0
    assert ensemble_cost(trials, search.cv_cost) == pytest.approx(9.0)
