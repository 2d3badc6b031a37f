"""The Azure backend against the SDK itself (YAML round trips) and a fake MLClient."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

pytest.importorskip("azure.ai.ml")

from azure.ai.ml import load_job

from titanicml.backends import get_backend
from titanicml.backends.azure import AzureBackend
from titanicml.backends.azure import jobs as azure_jobs
from titanicml.backends.azure.testing import (
    FakeMLClient,
    FakeRuns,
    default_children,
    save_automl_like_model,
)
from titanicml.backends.azure.workspace import resolve_workspace
from titanicml.backends.base import JobStatus
from titanicml.data.resolve import resolve_data
from titanicml.exceptions import BackendUnavailableError, ConfigError
from titanicml.spec import TrainSpec

SPEC = TrainSpec(target="Survived", time_budget=1800, exclude=("Boat", "Body"), max_trials=40)
NO_ENV = {"AZURE_SUBSCRIPTION_ID": "", "AZURE_RESOURCE_GROUP": "", "AZUREML_WORKSPACE_NAME": ""}


@pytest.fixture
def fake(titanic, tmp_path):
    model_dir = save_automl_like_model(titanic.drop(columns=["Boat", "Body"]), "Survived", tmp_path)
    children, best = default_children("binary")
    return FakeMLClient(FakeRuns(children, best, model_dir))


def _backend(fake, **kwargs):
    return AzureBackend(
        ml_client=fake, runs=fake.runs, poll_interval=0, sleep=lambda s: None, **kwargs
    )


def test_found_through_the_registry():
    backend = get_backend("azure", ml_client=object(), compute="gpu")
    assert isinstance(backend, AzureBackend) and backend.compute == "gpu"


def test_missing_sdk_says_what_to_install(monkeypatch):
    for name in [
        m for m in sys.modules if m.startswith(("titanicml.backends.azure", "azure.ai.ml"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)  # import fails
    with pytest.raises(BackendUnavailableError, match=r'pip install "titanicml\[azure\]"'):
        get_backend("azure")


def test_workspace_from_arguments_env_and_config_json(tmp_path, monkeypatch):
    nested = tmp_path / "project" / "src"
    nested.mkdir(parents=True)
    (tmp_path / "project" / ".azureml").mkdir()
    (tmp_path / "project" / ".azureml" / "config.json").write_text(
        json.dumps(
            {
                "subscription_id": "sub-file",
                "resource_group": "rg-file",
                "workspace_name": "ws-file",
            }
        )
    )
    monkeypatch.chdir(nested)
    found = resolve_workspace(environ=NO_ENV)
    assert (found.subscription_id, found.resource_group, found.workspace_name) == (
        "sub-file",
        "rg-file",
        "ws-file",
    )
    env = {"AZURE_SUBSCRIPTION_ID": "sub-env", "AZUREML_WORKSPACE_NAME": "ws-env"}
    mixed = resolve_workspace(workspace_name="ws-arg", environ=env)
    assert (mixed.subscription_id, mixed.resource_group, mixed.workspace_name) == (
        "sub-env",
        "rg-file",
        "ws-arg",
    )


def test_missing_workspace_is_a_clear_error_before_any_upload(titanic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in NO_ENV:
        monkeypatch.delenv(var, raising=False)
    backend = AzureBackend()
    frame, ref = resolve_data(titanic)
    with pytest.raises(ConfigError, match=r"AZURE_SUBSCRIPTION_ID.*config\.json"):
        backend.submit(SPEC, ref, frame)


def test_missing_credential_is_a_clear_error(titanic, tmp_path, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin:
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", NoLogin)
    backend = AzureBackend("sub", "rg", "ws")
    frame, ref = resolve_data(titanic)
    with pytest.raises(BackendUnavailableError, match="az login"):
        backend.submit(SPEC, ref, frame)
    assert backend.ml_client is None


def test_unsupported_metric_fails_before_upload(fake, titanic):
    frame, ref = resolve_data(titanic)
    with pytest.raises(ConfigError, match="cannot optimize 'log_loss'"):
        _backend(fake).submit(TrainSpec(target="Survived", metric="log_loss"), ref, frame)
    assert fake.calls == []


def test_automl_job_round_trips_through_the_sdk(tmp_path):
    job = azure_jobs.automl_job(SPEC, "binary", "azureml:titanic:1", "cpu-cluster", "exp")
    job.dump(tmp_path / "job.yml")
    loaded = load_job(tmp_path / "job.yml")
    loaded._to_rest_object()  # the SDK's own conversion checks every setting
    assert loaded.task_type.lower() == "classification"
    assert loaded.target_column_name == "Survived"
    assert loaded.primary_metric.lower() == "accuracy"
    # folds not chosen (cv=None): Azure's own choice by size; chosen: that many
    assert loaded.n_cross_validations == "auto"
    chosen = azure_jobs.automl_job(SPEC.with_folds(1_000), "binary", "azureml:t:1", "c", "e")
    assert chosen.n_cross_validations == 5
    assert loaded.limits.timeout_minutes == 30 and loaded.limits.max_trials == 40
    assert loaded.limits.trial_timeout_minutes == 8
    assert loaded.limits.enable_early_termination is True
    algorithms = [
        str(a.value if hasattr(a, "value") else a)
        for a in loaded.training.allowed_training_algorithms
    ]
    assert algorithms == [
        "LightGBM",
        "XGBoostClassifier",
        "RandomForest",
        "ExtremeRandomTrees",
        "LogisticRegression",
    ]
    assert loaded.training.enable_stack_ensemble and loaded.training.enable_vote_ensemble
    assert loaded.training.enable_model_explainability
    assert loaded.featurization.mode == "auto"
    assert loaded.training_data.path.removeprefix("azureml:") == "titanic:1"


def test_regression_job_maps_metric_and_algorithms(tmp_path):
    spec = TrainSpec(target="Fare", metric="rmse", time_budget=30, ensemble=False)
    job = azure_jobs.automl_job(spec, "regression", "azureml:t:1", "cpu", "exp")
    job.dump(tmp_path / "job.yml")
    loaded = load_job(tmp_path / "job.yml")
    assert loaded.task_type.lower() == "regression"
    assert yaml.safe_load((tmp_path / "job.yml").read_text())["primary_metric"] == (
        "normalized_root_mean_squared_error"
    )
    assert loaded.limits.timeout_minutes == 15  # Azure's minimum
    assert loaded.limits.max_trials == 1000
    assert not loaded.training.enable_stack_ensemble


def test_command_job_round_trips_and_validates(tmp_path):
    code = azure_jobs.stage_code(tmp_path / "code")
    assert (code / "pyproject.toml").is_file() and (code / "titanicml" / "cli").is_dir()
    job = azure_jobs.command_job(SPEC, "azureml:titanic:1", code, "cpu-cluster", "exp")
    job.dump(tmp_path / "job.yml")
    loaded = load_job(tmp_path / "job.yml")
    assert loaded._validate().passed
    assert loaded.inputs["input_data"].type == "mltable"
    assert "pip install" in loaded.command
    assert "titanicml train --data ${{inputs.input_data}} --target Survived" in loaded.command
    assert "--exclude Boat Body" in loaded.command
    assert "${{outputs.model}}" in loaded.command
    pip = loaded.environment.conda_file["dependencies"][-1]["pip"]
    assert any(p.startswith("flaml") for p in pip) and any(p.startswith("mlflow") for p in pip)


def test_orchestration_upload_submit_stream_result(fake, titanic):
    backend = _backend(fake, compute="cpu-cluster", experiment_name="titanic-azure")
    frame, ref = resolve_data(titanic)
    reports = []
    job = backend.submit(SPEC, ref, frame, on_progress=reports.append)
    assert fake.operations() == ["data.create_or_update", "jobs.create_or_update"]
    # the uploaded folder: MLTable + data.csv without the excluded columns
    ((asset_key, files),) = fake.uploaded.items()
    assert asset_key.startswith("titanicml-training-data:")
    mltable = yaml.safe_load(files["MLTable"])
    assert mltable["paths"] == [{"file": "./data.csv"}]
    assert mltable["transformations"][0]["read_delimited"]["header"] == "all_files_same_headers"
    header = files["data.csv"].decode().splitlines()[0].split(",")
    assert "Survived" in header and "Boat" not in header and "Body" not in header
    data = fake.calls[0][1][0]
    assert data.type == "mltable"
    submitted = fake.calls[1][1][0]
    assert submitted.training_data.path == f"azureml:{asset_key}"
    assert submitted.compute == "cpu-cluster" and submitted.experiment_name == "titanic-azure"

    assert backend.wait(job) is JobStatus.COMPLETED
    statuses = fake.operations().count("jobs.get")
    assert statuses == 6  # NotStarted ... Completed, one poll each
    assert [r.trials for r in reports][-1] == 4
    result = backend.result(job)
    assert fake.runs.downloads == [fake.best_child_run_id]
    assert result.extras["azure"]["job_name"] == job.id
    assert result.extras["azure"]["best_child_run_id"] == fake.best_child_run_id
    assert result.extras["azure"]["studio_url"].startswith("https://ml.azure.com/runs/")
    board = result.leaderboard
    assert board["estimator"].tolist() == ["VotingEnsemble", "lgbm", "rf"]
    assert board["n_trials"].tolist() == [1, 2, 1]
    assert board.loc[1, "cv_accuracy"] == 0.81 and board.loc[1, "cv_roc_auc"] == 0.86
    assert result.metrics["accuracy"] == 0.83 and result.metrics["f1"] == 0.82
    assert len(result.trials) == 4
    # the downloaded scikit-learn model predicts through titanicml's TabularModel
    rows = titanic.drop(columns=["Survived"]).head(50)
    inner = result.model.pipeline_[-1].model
    expected = inner.predict_proba(
        result.model.prepare(rows)[0].astype(
            {"Pclass": "int64", "SibSp": "int64", "Parch": "int64"}
        )
    )
    assert result.predict_proba(rows) == pytest.approx(expected)


def test_local_asset_keeps_its_name_and_version(fake, titanic, tmp_path):
    from titanicml.data.assets import register_asset

    path = tmp_path / "titanic.csv"
    titanic.drop(columns=["Boat", "Body"]).to_csv(path, index=False)
    asset = register_asset("titanic-dataset", path, workspace=tmp_path / "ws")
    frame, ref = resolve_data(asset.reference, workspace=tmp_path / "ws")
    _backend(fake).submit(TrainSpec(target="Survived"), ref, frame)
    assert list(fake.uploaded) == [f"titanic-dataset:{asset.version}"]


def test_wait_honours_the_timeout(fake, titanic):
    fake.script = ["Running"]
    slept = []
    backend = AzureBackend(ml_client=fake, runs=fake.runs, poll_interval=5, sleep=slept.append)
    frame, ref = resolve_data(titanic)
    job = backend.submit(SPEC, ref, frame)
    assert backend.wait(job, timeout=0) is JobStatus.RUNNING
    assert slept == []


def test_status_mapping():
    from titanicml.backends.azure import job_status

    assert job_status("NotStarted") is job_status("Preparing") is JobStatus.QUEUED
    assert job_status("Finalizing") is JobStatus.RUNNING
    assert job_status("Canceled") is JobStatus.CANCELED
    assert job_status("Failed") is JobStatus.FAILED
    assert job_status("Completed") is JobStatus.COMPLETED


def test_command_mode_returns_the_artifact_written_on_azure(titanic_result, tmp_path, titanic):
    out = tmp_path / "out"
    titanic_result.save(out / "model")
    fake = FakeMLClient(command_output=out)
    backend = _backend(fake, mode="command")
    frame, ref = resolve_data(titanic)
    job = backend.submit(SPEC, ref, frame)
    submitted = fake.calls[1][1][0]
    assert submitted.type == "command"
    assert backend.wait(job) is JobStatus.COMPLETED
    result = backend.result(job)
    assert result.backend == "azure"
    assert result.metrics["accuracy"] == pytest.approx(titanic_result.metrics["accuracy"])
    rows = titanic.head(5)
    assert result.predict_proba(rows) == pytest.approx(titanic_result.predict_proba(rows))


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="automl, command"):
        AzureBackend(mode="spark")


def test_mltable_file_loads_with_mltable(tmp_path, titanic):
    mltable = pytest.importorskip("mltable")
    from titanicml.backends.azure.data import write_mltable

    folder = write_mltable(titanic.head(20), tmp_path / "data")
    assert len(mltable.load(str(folder)).to_pandas_dataframe()) == 20
