import json
import multiprocessing
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from titanicml import Trainer
from titanicml.store import resolve_tracking_uri, ui_command


def _runs(client, experiment_name):
    experiment = client.get_experiment_by_name(experiment_name)
    return client.search_runs([experiment.experiment_id])


def test_parent_run_holds_params_metrics_and_artifacts(titanic_result, session_store):
    client = MlflowClient(session_store)
    run = client.get_run(titanic_result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["target"] == "Survived"
    assert params["data_sha256"] == titanic_result.data.sha256
    assert params["exclude"] == "Boat,Body"
    assert params["best_estimator"] == titanic_result.best_estimator
    assert run.data.metrics["cv_accuracy"] == pytest.approx(titanic_result.metrics["accuracy"])
    assert "cv_accuracy_std" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"leaderboard.csv", "features.csv", "trials.csv", "model"} <= artifacts


def test_one_child_run_per_family(titanic_result, session_store):
    client = MlflowClient(session_store)
    children = [
        r
        for r in _runs(client, "tests")
        if r.data.tags.get("mlflow.parentRunId") == titanic_result.run_id
    ]
    families = sorted(r.data.tags["titanicml.estimator"] for r in children)
    board = titanic_result.leaderboard
    assert families == sorted(board.loc[board["estimator"] != "baseline", "estimator"])
    # The trivial baseline is no child run; its score is the parent's.
    baseline = board.loc[board["estimator"] == "baseline", "cv_accuracy"].item()
    parent = client.get_run(titanic_result.run_id).data.metrics
    assert parent["baseline_cv_accuracy"] == pytest.approx(baseline)
    for child in children:
        assert child.info.status == "FINISHED"
        assert "cv_accuracy" in child.data.metrics and child.data.metrics["n_trials"] >= 1


def test_logged_model_loads_with_pyfunc_and_predicts_the_same(titanic_result, titanic):
    mlflow.set_tracking_uri(titanic_result.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{titanic_result.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    features = titanic.drop(columns=["Survived"])
    out = model.predict(features)
    assert list(out["prediction"]) == list(titanic_result.predict(features))


def test_default_store_is_sqlite_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = resolve_tracking_uri()
    assert uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui_command(uri) == f"mlflow ui --backend-store-uri {uri}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert resolve_tracking_uri() == "sqlite:///elsewhere.db"
    assert resolve_tracking_uri("file:///x") == "file:///x"


def test_interrupted_training_is_killed_and_leaves_no_model(titanic, store):
    def interrupt(report):
        if report.trials == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(
            target="Survived", time_budget=30, tracking_uri=store, experiment_name="ctrl-c"
        ).fit(titanic, on_progress=interrupt)
    client = MlflowClient(store)
    (run,) = _runs(client, "ctrl-c")
    assert run.info.status == "KILLED"
    assert client.list_artifacts(run.info.run_id) == []


def test_a_ctrl_c_while_the_parameters_are_written_waits_for_the_write(monkeypatch, titanic, store):
    """A store query cut by Ctrl-C makes SQLAlchemy print a traceback: it is held."""
    import os
    import signal

    log_batch = MlflowClient.log_batch

    def signalled_log_batch(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, in the middle of the write
        return log_batch(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", signalled_log_batch)
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            target="Survived", time_budget=5, tracking_uri=store, experiment_name="ctrl-c-write"
        ).fit(titanic)
    monkeypatch.undo()
    (run,) = _runs(MlflowClient(store), "ctrl-c-write")
    assert run.info.status == "KILLED"
    assert run.data.params["target"] == "Survived"  # the write finished before it stopped


@pytest.mark.parametrize("moment", ["heartbeat", "params"])
def test_ctrl_c_just_after_the_run_is_created_still_kills_it(monkeypatch, titanic, store, moment):
    """A Ctrl-C that lands while the run's heartbeat starts or its parameters are logged."""
    from titanicml import tracking

    class InterruptedHeartbeat(tracking._Heartbeat):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            raise KeyboardInterrupt

    def interrupted_log_batch(self, *args, **kwargs):
        raise KeyboardInterrupt

    if moment == "heartbeat":
        monkeypatch.setattr(tracking, "_Heartbeat", InterruptedHeartbeat)
    else:
        monkeypatch.setattr(MlflowClient, "log_batch", interrupted_log_batch)
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            target="Survived", time_budget=5, tracking_uri=store, experiment_name="ctrl-c-early"
        ).fit(titanic)
    monkeypatch.undo()
    (run,) = _runs(MlflowClient(store), "ctrl-c-early")
    assert run.info.status == "KILLED"


def test_failed_training_is_marked_failed(titanic, store):
    def explode(report):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        Trainer(target="Survived", time_budget=10, tracking_uri=store, experiment_name="fail").fit(
            titanic, on_progress=explode
        )
    (run,) = _runs(MlflowClient(store), "fail")
    assert run.info.status == "FAILED"
    assert "disk full" in run.data.tags["titanicml.error"]


def _train_in_process(store: str, seed: int, out: str) -> None:
    from titanicml import Trainer
    from titanicml.datasets import load_titanic

    result = Trainer(
        target="Survived",
        time_budget=4,
        seed=seed,
        tracking_uri=store,
        experiment_name="concurrent",
    ).fit(load_titanic())
    Path(out).write_text(json.dumps({"run_id": result.run_id}))


def test_two_trainings_at_once_on_a_new_store_both_land(tmp_path):
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    context = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    workers = [
        context.Process(target=_train_in_process, args=(store, i, str(outs[i]))) for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]
    run_ids = {json.loads(o.read_text())["run_id"] for o in outs}
    client = MlflowClient(store)
    parents = [r for r in _runs(client, "concurrent") if "mlflow.parentRunId" not in r.data.tags]
    assert {r.info.run_id for r in parents} == run_ids
    assert all(r.info.status == "FINISHED" for r in parents)
    for run_id in run_ids:
        assert "model" in {a.path for a in client.list_artifacts(run_id)}
