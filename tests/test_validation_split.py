"""Trials on large tables are scored on a validation split; the rest of the fit uses the folds."""

from __future__ import annotations

import json
import time

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
    import titanicml.backends.learners as learners
    import titanicml.backends.local as local
    from titanicml import Trainer

    refits: list[int] = []
    original = learners.fit_config

    def spy(found, family, config, x, y, *args, **kwargs):
        refits.append(len(y))
        return original(found, family, config, x, y, *args, **kwargs)

    monkeypatch.setattr(local, "fit_config", spy)  # after a cross-validated search
    monkeypatch.setattr(learners, "fit_config", spy)  # after a split search (final_fit)
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
    # (then on each of the 5 folds of 400 for the out-of-fold output, drawn twice: a
    # table of 500 rows repeats its folds, though the search scored one split)
    assert result.spec.cv_repeats == 2
    assert refits == [500] + [400] * 10 and result.extras["fitted_on"] == {"lgbm": "all rows"}
    assert result.model.predict(_table(20, seed=1).drop(columns="target")).shape == (20,)
    # the out-of-fold output is still on the 5 folds, for every row
    assert result.extras["oof"]["available"] and len(result.oof) == 500
    # the leaderboard says what each row was scored on: the baseline on the folds
    board = result.leaderboard.set_index("estimator")
    assert board.loc["lgbm", "validation"] == "10% split"
    assert board.loc["baseline", "validation"] == "5-fold cv x2"
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


def test_the_ensemble_of_a_large_table_is_chosen_on_the_split(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    result, _, _ = _fit(
        _table(500), monkeypatch, time_budget=30, max_trials=6, estimators=["lgbm", "lrl1"],
    )  # fmt: skip
    summary = result.extras["ensemble"]
    # both families' best outputs on the split were kept, and nothing was cross-validated
    assert summary["candidates"] == ["lgbm", "lrl1"] or summary["candidates"] == ["lrl1", "lgbm"]
    families = result.leaderboard[result.leaderboard["estimator"] != "baseline"]
    assert (families["validation"] == "10% split").all()
    assert (families["cv_accuracy_std"] == 0).all()
    # ranked by the split's score (the ensemble, if chosen, above the families it mixes)
    ranked = families[families["estimator"] != "ensemble"]["cv_accuracy"].tolist()
    assert ranked == sorted(ranked, reverse=True)
    assert summary["selected"] == ("ensemble" in set(families["estimator"]))


def _split_task(rows: int = 200, held: int = 40, seed: int = 0):
    """A regression, its split's truth and two outputs on it whose errors cancel out."""
    from sklearn.datasets import make_regression

    matrix, y = make_regression(n_samples=rows, n_features=4, noise=1.0, random_state=seed)
    truth = y[:held]
    error = np.where(np.arange(held) % 2 == 0, 1.0, -1.0) * 5
    return matrix, y, truth, truth + error, truth - error


def _split_search(matrix, y, held, outputs: dict, fit_times: dict):
    """A split search's output: real FLAML learners, each family's best output on the split
    and its model, fitted on the rows after the split's ``held`` first ones."""
    from flaml.automl.model import ExtraTreesEstimator, LGBMEstimator, RandomForestEstimator

    from titanicml.backends.learners import SearchOutput, SplitOutputs, fit_config
    from titanicml.metrics import METRICS

    r2 = METRICS["r2"]
    learners = {
        "lgbm": LGBMEstimator,
        "rf": RandomForestEstimator,
        "extra_tree": ExtraTreesEstimator,
    }
    found = SearchOutput("lgbm", {"n_estimators": 4}, learners, pd.DataFrame(), refit_cost=1 / 0.9)
    truth, split, rows = y[:held], SplitOutputs(), []
    config = {"n_estimators": 4}
    for name, output in outputs.items():
        score = float(1 - ((truth - output) ** 2).sum() / ((truth - truth.mean()) ** 2).sum())
        model = fit_config(found, name, config, matrix[held:], y[held:], "regression", 1)
        split.record(name, r2.to_loss(score), truth, output, model.estimator)
        rows.append({"estimator": name, "cv_r2": score, "cv_r2_std": 0.0,
                     "fit_time": fit_times[name], "config": json.dumps(config)})  # fmt: skip
    found.split = split
    board = pd.DataFrame(rows).sort_values("cv_r2", ascending=False, ignore_index=True)
    return found, board, r2


def _refit_spy(monkeypatch) -> list[tuple[str, int]]:
    """Record the family and the rows of every refit of a configuration."""
    import titanicml.backends.learners as learners

    refits: list[tuple[str, int]] = []
    original = learners.fit_config

    def spy(found, family, config, x, y, *args, **kwargs):
        refits.append((family, len(y)))
        return original(found, family, config, x, y, *args, **kwargs)

    monkeypatch.setattr(learners, "fit_config", spy)
    return refits


def test_split_outputs_keep_each_familys_best_output_and_model_on_the_splits_rows():
    from titanicml.backends.learners import SplitOutputs

    split = SplitOutputs()
    truth = np.array([1.0, 2.0, 3.0])
    split.record("lgbm", float("nan"), truth, np.array([0.0, 0.0, 0.0]), "failed")
    split.record("lgbm", 0.3, truth, np.array([1.0, 1.0, 1.0]), "first")
    split.record("lgbm", 0.2, truth, np.array([2.0, 2.0, 2.0]), "best")
    split.record("lgbm", 0.25, truth, np.array([3.0, 3.0, 3.0]), "worse")
    split.record("lgbm", 0.1, np.array([9.0, 9.0, 9.0]), np.zeros(3), "other rows")
    assert split.output("lgbm", 0.2).tolist() == [2.0, 2.0, 2.0]
    assert split.model("lgbm", 0.2) == "best"
    # the leaderboard's best trial of lgbm must be the kept one, or nothing is mixed
    assert split.output("lgbm", 0.3) is None and split.output("rf", 0.2) is None
    assert split.model("lgbm", 0.3) is None and split.model("rf", 0.2) is None
    assert split.fitted_on == "90% split"


def test_the_split_ensemble_mixes_the_outputs_and_refits_the_members_on_every_row(monkeypatch):
    from titanicml.backends.ensembling import select_on_split
    from titanicml.model.ensemble import WeightedEnsemble

    matrix, y, truth, over, under = _split_task()
    found, board, r2 = _split_search(matrix, y, len(truth), {"lgbm": over, "rf": under},
                                     {"lgbm": 1, "rf": 1})  # fmt: skip
    refits = _refit_spy(monkeypatch)
    outcome = select_on_split(
        found, matrix, y, "regression", r2, board,
        deadline=time.monotonic() + 60, n_jobs=1, validation="10% split",
    )  # fmt: skip
    # their errors cancel: half and half, a perfect score on the split
    assert outcome.weights == {"lgbm": 0.5, "rf": 0.5}
    assert isinstance(outcome.estimator, WeightedEnsemble)
    # time enough: both members are fitted again on every row, not the split's models
    assert sorted(refits) == [("lgbm", len(y)), ("rf", len(y))]
    assert outcome.fitted_on == {"lgbm": "all rows", "rf": "all rows"}
    assert all(
        member is not found.split.models[name]
        for name, member in zip(outcome.estimator.names, outcome.estimator.estimators, strict=True)
    )
    row = outcome.row
    assert row["validation"] == "10% split" and row["cv_r2"] == pytest.approx(1.0)
    assert row["cv_r2_std"] == 0 and row["n_trials"] == 2
    assert outcome.oof == {} and outcome.blend is None  # the split is not the folds
    assert outcome.summary()["fitted_on"] == outcome.fitted_on


def test_a_member_whose_refit_would_end_late_ships_as_its_trial_fitted_it(monkeypatch):
    from titanicml.backends.ensembling import select_on_split

    matrix, y, truth, over, under = _split_task()
    outputs = {"lgbm": over, "rf": under, "extra_tree": under + 0.5}
    times = {"lgbm": 1.0, "rf": 100.0, "extra_tree": 0.1}
    found, board, r2 = _split_search(matrix, y, len(truth), outputs, times)
    refits = _refit_spy(monkeypatch)
    outcome = select_on_split(
        found, matrix, y, "regression", r2, board,
        deadline=time.monotonic() + 5, n_jobs=1, validation="10% split",
    )  # fmt: skip
    # the mix that won on the split is kept: rf's refit on every row (100 s of a trial on
    # 90 % of them, 111.1 s) would end after the deadline, so its trial's model ships
    assert outcome.weights == {"lgbm": 0.5, "rf": 0.5}
    assert outcome.estimator.names == ["lgbm", "rf"]
    assert outcome.estimator.estimators[1] is found.split.models["rf"]
    assert outcome.fitted_on == {"lgbm": "all rows", "rf": "90% split"}
    assert refits == [("lgbm", len(y))]
    # the mix predicts what its members' outputs mixed: rf's is its split model's own
    expected = 0.5 * outcome.estimator.estimators[0].predict(matrix[:5]) + 0.5 * (
        found.split.models["rf"].predict(matrix[:5])
    )
    assert outcome.estimator.predict(matrix[:5]) == pytest.approx(expected)


def test_the_final_fit_refits_on_every_row_only_when_that_ends_before_the_deadline(monkeypatch):
    from titanicml.backends.learners import final_fit

    matrix, y, truth, over, _ = _split_task()
    found, board, r2 = _split_search(matrix, y, len(truth), {"lgbm": over}, {"lgbm": 9.0})
    row = board.iloc[0].to_dict()
    refits = _refit_spy(monkeypatch)
    # 9 s of a trial on 90 % of the rows: 10 s on all of them, 12.5 s with the safety
    model, fitted_on = final_fit(found, row, r2, matrix, y, "regression", 1,
                                 deadline=time.monotonic() + 12)  # fmt: skip
    assert model is found.split.models["lgbm"] and fitted_on == "90% split" and refits == []
    model, fitted_on = final_fit(found, row, r2, matrix, y, "regression", 1,
                                 deadline=time.monotonic() + 13)  # fmt: skip
    assert fitted_on == "all rows" and refits == [("lgbm", len(y))]
    assert model is not found.split.models["lgbm"]
    # after a cross-validated search there is no split model: the refit always runs
    found.split = None
    _, fitted_on = final_fit(found, row, r2, matrix, y, "regression", 1,
                             deadline=time.monotonic())  # fmt: skip
    assert fitted_on == "all rows" and len(refits) == 2


def _stopped_early(family: str, matrix, y, rounds: int):
    """A FLAML learner of ``family`` asked for 400 trees whose fit a callback stopped after
    ``rounds`` (as FLAML's time limit stops a trial), fitted on ``matrix, y``."""
    from flaml.automl.model import LGBMEstimator, XGBoostSklearnEstimator

    if family == "lgbm":
        import lightgbm

        def stop(env):
            if env.iteration + 1 >= rounds:
                raise lightgbm.callback.EarlyStopException(env.iteration, [])

        learner = LGBMEstimator(task="regression", n_jobs=1, n_estimators=400)
        learner._fit(matrix, y, callbacks=[stop])
    else:
        import xgboost

        class Stop(xgboost.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                return epoch + 1 >= rounds

        learner = XGBoostSklearnEstimator(task="regression", n_jobs=1, n_estimators=400)
        learner.params["callbacks"] = [Stop()]
        learner._fit(matrix, y)
        learner._model.set_params(callbacks=None)
    return learner


@pytest.mark.parametrize("family", ["lgbm", "xgboost"])
def test_a_trial_stopped_at_its_time_limit_is_refitted_with_the_trees_that_fit_in_time(
    monkeypatch, family
):
    """Its configuration asks for 400 trees, its model holds 7: a refit of 400 costs many
    times the trial's measured time, so it grows them only when that ends in time."""
    from sklearn.base import clone

    from titanicml.backends.learners import (
        SearchOutput,
        SplitOutputs,
        final_fit,
        fit_config,
        fitted_rounds,
    )
    from titanicml.metrics import METRICS
    from titanicml.model.log_target import LogTargetRegressor

    matrix, y, truth, over, _ = _split_task()
    model = _stopped_early(family, matrix[40:], y[40:], rounds=7).estimator
    assert model.get_params()["n_estimators"] == 400 and fitted_rounds(model) == 7
    r2 = METRICS["r2"]
    split = SplitOutputs()
    split.record(family, r2.to_loss(0.5), truth, over, model)
    kept = split.models[family]
    # the kept model says what it holds: a clone (the refit on more rows) grows 7 trees
    assert kept.get_params()["n_estimators"] == 7
    assert kept.predict(matrix[:3]) == pytest.approx(model.predict(matrix[:3]))
    assert clone(kept).get_params()["n_estimators"] == 7
    from flaml.automl.model import LGBMEstimator, XGBoostSklearnEstimator

    learners = {"lgbm": LGBMEstimator, "xgboost": XGBoostSklearnEstimator}
    found = SearchOutput(family, {}, learners, pd.DataFrame(), split=split, refit_cost=1 / 0.9)
    row = {"estimator": family, "cv_r2": 0.5, "fit_time": 0.1,
           "config": json.dumps({"n_estimators": 400})}  # fmt: skip
    # 0.1 s of a trial for 7 trees: 0.14 s for them on every row (/ 0.9, x 1.25), 7.9 s
    # for the 400 asked; with 3 s left only the 7 the split scored fit in time
    refitted, fitted_on = final_fit(found, row, r2, matrix, y, "regression", 1,
                                    deadline=time.monotonic() + 3)  # fmt: skip
    assert fitted_on == "all rows" and fitted_rounds(refitted) == 7
    # with 60 s left the refit grows every tree the configuration asks for
    refitted, fitted_on = final_fit(found, row, r2, matrix, y, "regression", 1,
                                    deadline=time.monotonic() + 60)  # fmt: skip
    assert fitted_on == "all rows" and fitted_rounds(refitted) == 400
    # a configuration fitted in full keeps its trees; other families hold no rounds
    assert fitted_rounds(fit_config(found, family, {"n_estimators": 9}, matrix, y,
                                    "regression", 1).estimator) == 9  # fmt: skip
    assert fitted_rounds(LogTargetRegressor.from_fitted(model)) == 7
    from sklearn.ensemble import RandomForestRegressor

    assert fitted_rounds(RandomForestRegressor(n_estimators=3).fit(matrix, y)) is None


@pytest.mark.parametrize("family", ["lgbm", "xgboost"])
def test_the_out_of_fold_output_of_a_stopped_trial_fits_the_trees_its_time_paid_for(
    monkeypatch, family
):
    """The same trial: its measured 0.1 s paid for 7 of the 400 trees asked. Fitting 400 on
    each of 3 folds costs 57 times what it measured, so the folds grow 7 unless that fits."""
    from flaml.automl.model import LGBMEstimator, XGBoostSklearnEstimator

    import titanicml.backends.learners as learners_module
    from titanicml.backends.learners import SearchOutput, SplitOutputs, fitted_rounds
    from titanicml.backends.oof import selected_out_of_fold
    from titanicml.metrics import METRICS
    from titanicml.spec import TrainSpec

    matrix, y, truth, over, _ = _split_task()
    model = _stopped_early(family, matrix[40:], y[40:], rounds=7).estimator
    r2 = METRICS["r2"]
    split = SplitOutputs()
    split.record(family, r2.to_loss(0.5), truth, over, model)
    assert split.rounds == {family: 7}
    split.models.clear()  # as the backend does once the shipped models are chosen: kept
    learners = {"lgbm": LGBMEstimator, "xgboost": XGBoostSklearnEstimator}
    found = SearchOutput(family, {}, learners, pd.DataFrame(), cv_cost=3 / 0.9, split=split)
    board = pd.DataFrame([{"estimator": family, "cv_r2": 0.5, "fit_time": 0.1,
                           "config": json.dumps({"n_estimators": 400})}])  # fmt: skip
    trees = []
    original = learners_module.fit_config

    def spy(*args, **kwargs):
        learner = original(*args, **kwargs)
        trees.append(fitted_rounds(learner.estimator))
        return learner

    monkeypatch.setattr(learners_module, "fit_config", spy)  # the folds' fits read it
    spec = TrainSpec(target="y", cv=3)

    def oof(seconds_left: float):
        trees.clear()
        return selected_out_of_fold(found, board, None, matrix, y, "regression", None, spec,
                                    time.monotonic() + seconds_left, 1)  # fmt: skip

    # 0.1 s x 3 / 0.9 = 0.33 s for the 7 trees on the folds, 19 s for the 400 asked
    table, facts = oof(3)
    assert facts["available"] and len(table) == len(y) and trees == [7, 7, 7]
    table, facts = oof(60)
    assert facts["available"] and trees == [400, 400, 400]
    # with no time even for the 7 trees, none is fitted and the facts say why
    table, facts = oof(0.1)
    assert table is None and "its CV needs 0.3 s" in facts["reason"] and trees == []


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
    assert parent.data.tags["titanicml.fitted_on"] == "lgbm: all rows"


def test_a_small_table_cross_validates_every_trial(monkeypatch):
    result, reports, refits = _fit(
        _table(300), monkeypatch, time_budget=30, max_trials=4, estimators=["lgbm"],
        ensemble=False,
    )  # fmt: skip
    assert result.extras["search"]["validation"] == "5-fold cv x2"  # 300 rows: twice
    assert len(reports) == len(result.trials) == 4
    assert (result.trials["cv_accuracy_std"] > 0).any()
    # FLAML's refit on every row is kept: the only fits are the out-of-fold output's,
    # on the 5 folds of 240 rows of each repeat
    assert refits == [240] * 10 and result.extras["fitted_on"] == {"lgbm": "all rows"}


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
    # mixed on the split, only the refits on all rows are left: (0.9 + 1.8) / 0.9 = 3.0
    assert search.refit_cost == pytest.approx(1 / 0.9)
    assert ensemble_cost(trials, search.cv_cost, search.refit_cost) == pytest.approx(3.0)
    # only the refits that fit in the share count, best family first: lgbm's 1.0 s fits
    # in 1.5 s, rf's 2.0 s more does not (its trial's model will ship)
    assert ensemble_cost(trials, 1.0, search.refit_cost, limit=1.5) == pytest.approx(1.0)
    # the best family's 2.0 s does not fit in 1.5 s; the next one's 1.0 s does
    trials["fit_time"] = [1.8, 0.9]
    assert ensemble_cost(trials, 1.0, search.refit_cost, limit=1.5) == pytest.approx(1.0)
    assert ensemble_cost(trials, 1.0, search.refit_cost, limit=0.5) == 0.0


def test_repeated_folds_cost_one_pass_per_repeat():
    from titanicml.backends.flaml_search import FlamlSearch
    from titanicml.spec import TrainSpec

    search = FlamlSearch(TrainSpec(target="y", cv=3, cv_repeats=2), "binary", None, None, 10)
    # a cross-validated trial makes every pass itself: 2 repeats of 2 tables' worth of rows
    assert (search.repeats, search.cv_cost, search.validation) == (2, 1.0, "3-fold cv x2")
    assert search.refit_cost == pytest.approx(1 / 4)
    search.split = True
    # the split is not repeated, but the out-of-fold output's folds are: 2 * 2 / 0.9
    assert (search.repeats, search.validation) == (1, "10% split")
    assert search.cv_cost == pytest.approx(4 / 0.9)
    assert search.refit_cost == pytest.approx(1 / 0.9)


def test_lightgbm_starts_a_large_table_from_many_small_steps_as_its_cost_allows():
    from titanicml.backends.flaml_search import STRONG_START_TREES, strong_start

    # 0.15 x 15 s / (9,241 x 75 cells x 3e-9 s) = 1,082 trees: capped at 1,000
    assert strong_start((9_241, 75), 15.0)["n_estimators"] == STRONG_START_TREES == 1000
    # 0.15 x 15 / (36,000 x 26 x 3e-9) = 801.3
    start = strong_start((36_000, 26), 15.0)
    assert start["n_estimators"] == 801 and start["learning_rate"] == 0.05
    # four classes: four trees a round, 0.15 x 15 / (36,000 x 26 x 4 x 3e-9) = 200.3
    assert strong_start((36_000, 26), 15.0, n_classes=4)["n_estimators"] == 200
    assert strong_start((36_000, 26), 15.0, n_classes=2)["n_estimators"] == 801
    # a million rows x 300 columns: 2 trees would fit; FLAML's own low-cost start is kept
    assert strong_start((1_000_000, 300), 15.0) is None
    # never as many trees as the rows a trial fits on (90 % of them)
    assert strong_start((500, 3), 15.0)["n_estimators"] == 449


@pytest.mark.parametrize("rows, first_trees", [(500, None), (300, 4)])
def test_the_first_lightgbm_trial_of_a_large_table_is_the_strong_start(
    monkeypatch, rows, first_trees
):
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    result, _, _ = _fit(
        _table(rows), monkeypatch, time_budget=30, max_trials=3, estimators=["lgbm"],
        ensemble=False,
    )  # fmt: skip
    first = json.loads(result.trials["config"].iloc[0])
    if first_trees is None:  # on the split: the strong start, as many trees as it allows
        assert first["learning_rate"] == pytest.approx(0.05) and first["num_leaves"] == 31
        # fewer trees than the 450 rows a trial fits on (FLAML's bound for LightGBM)
        assert first["n_estimators"] == 449
    else:  # cross-validated: FLAML's own low-cost start
        assert first["n_estimators"] == first_trees


def test_xgboost_starts_a_large_table_from_its_own_defaults_with_as_many_trees(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    result, _, _ = _fit(
        _table(500), monkeypatch, time_budget=30, max_trials=4, estimators=["lgbm", "xgboost"],
        ensemble=False,
    )  # fmt: skip
    firsts = result.trials.sort_values("trial").groupby("estimator").head(1)
    starts = {row.estimator: json.loads(row.config) for row in firsts.itertuples()}
    assert starts["xgboost"]["learning_rate"] == pytest.approx(0.1)
    assert starts["xgboost"]["max_leaves"] == 63
    assert starts["xgboost"]["n_estimators"] == starts["lgbm"]["n_estimators"] == 449


def test_lightgbm_on_the_log_scale_starts_there_too(monkeypatch):
    import titanicml.backends.flaml_search as flaml_search
    from titanicml import Trainer

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    price = np.exp(x[:, 0] + rng.normal(scale=0.3, size=500))  # skewed and positive
    data = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "target": price})
    result = Trainer(
        target="target", seed=0, track=False, time_budget=30, max_trials=4,
        estimators=["lgbm"], ensemble=False,
    ).fit(data)  # fmt: skip
    firsts = result.trials.sort_values("trial").groupby("estimator").head(1)
    starts = {row.estimator: json.loads(row.config) for row in firsts.itertuples()}
    assert set(starts) == {"lgbm", "lgbm_log1p"}
    for config in starts.values():
        assert config["learning_rate"] == pytest.approx(0.05) and config["n_estimators"] == 449


def _keeping_search(monkeypatch):
    """Patch the local backend's search to keep its split rows and models for the test."""
    import titanicml.backends.local as local
    from titanicml.backends.flaml_search import FlamlSearch

    kept = {}

    class KeepingSearch(FlamlSearch):
        def _score_split(self, X_val, y_val, estimator, *args, **kwargs):
            kept["x"] = np.asarray(X_val)
            return super()._score_split(X_val, y_val, estimator, *args, **kwargs)

        def run(self, matrix, y, verbose):
            found = super().run(matrix, y, verbose)
            kept["models"] = dict(self.split_outputs.models)
            kept["outputs"] = {name: out for name, (_, out) in self.split_outputs.best.items()}
            return found

    monkeypatch.setattr(local, "FlamlSearch", KeepingSearch)
    return kept


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_kept_model_makes_the_output_its_trial_was_scored_on(monkeypatch, task):
    import titanicml.backends.flaml_search as flaml_search
    from titanicml import Trainer

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    kept = _keeping_search(monkeypatch)
    data = _table(500)
    if task == "regression":  # skewed and positive: lgbm_log1p is searched too
        data["target"] = np.exp(data["a"] + 0.3 * data["b"])
    Trainer(
        target="target", seed=0, track=False, time_budget=30, max_trials=6,
        estimators=["lgbm", "rf"], ensemble=False,
    ).fit(data)  # fmt: skip
    expected = {"lgbm", "rf", "lgbm_log1p"} if task == "regression" else {"lgbm", "rf"}
    assert set(kept["models"]) == expected
    for name, model in kept["models"].items():
        made = model.predict(kept["x"]) if task == "regression" else model.predict_proba(kept["x"])
        np.testing.assert_allclose(made, kept["outputs"][name], rtol=1e-9, err_msg=name)


def test_when_no_refit_ends_in_time_the_trials_own_model_ships(monkeypatch, tmp_path):
    import titanicml.backends.flaml_search as flaml_search
    import titanicml.backends.learners as learners
    from titanicml import Trainer, load_model

    monkeypatch.setattr(flaml_search, "SPLIT_ABOVE_ROWS", 400)
    monkeypatch.setattr(learners, "FINAL_FIT_SAFETY", 1e9)  # every refit "ends too late"
    kept = _keeping_search(monkeypatch)
    result = Trainer(
        target="target", seed=0, track=False, time_budget=30, max_trials=4,
        estimators=["lgbm"], ensemble=False,
    ).fit(_table(500))  # fmt: skip
    assert result.extras["fitted_on"] == {"lgbm": "90% split"}
    assert result.model.pipeline.named_steps["estimator"] is kept["models"]["lgbm"]
    # the model saved and loaded answers as the trial's model does
    rows = _table(50, seed=1).drop(columns="target")
    features = result.model.pipeline.named_steps["features"].transform(rows)
    expected = kept["models"]["lgbm"].predict_proba(features)[:, 1]
    loaded = load_model(result.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(rows)[:, 1], expected, rtol=1e-9)
