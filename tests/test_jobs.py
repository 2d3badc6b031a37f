import json
import warnings
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from titanicml.exceptions import ConfigError
from titanicml.jobs import load_job_file, parse_job

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


@pytest.fixture
def home(tmp_path, monkeypatch, titanic):
    from titanicml.data.assets import register_asset

    csv = tmp_path / "titanic.csv"
    titanic.to_csv(csv, index=False)
    home = tmp_path / "home"
    register_asset("titanic-dataset", csv, workspace=home)
    monkeypatch.setenv("TITANICML_HOME", str(home))
    return home


def _automl() -> dict:
    return yaml.safe_load((EXAMPLES / "automl-titanic.yml").read_text())


def test_examples_parse():
    command = load_job_file(EXAMPLES / "train-titanic.yml")
    assert command.kind == "command"
    assert command.spec.target == "Survived"
    assert command.spec.metric == "accuracy"
    assert command.spec.exclude == ("Boat", "Body")
    assert command.data == "azureml:titanic-dataset@latest"
    assert command.compute == "azureml:cpu-cluster"
    automl = load_job_file(EXAMPLES / "automl-titanic.yml")
    assert automl.kind == "automl"
    assert automl.spec.time_budget == 15 * 60
    assert automl.spec.max_trials == 20
    assert automl.spec.estimators == ("lgbm", "xgboost", "rf", "extra_tree", "lrl1")
    assert automl.experiment_name == "titanic-automl"


def test_primary_metric_maps_back_from_azure_spelling():
    document = _automl()
    document["primary_metric"] = "AUC_weighted"
    assert parse_job(document).spec.metric == "roc_auc"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("limits", "timeout_minute", 5),
            "limits.timeout_minute: unknown key (did you mean timeout_minutes?)",
        ),
        (
            ("limits", "max_trials", "ten"),
            "limits.max_trials: must be a positive integer, got 'ten'",
        ),
        ((None, "primary_metric", "norm_macro_recall"), "primary_metric: 'norm_macro_recall'"),
        ((None, "taks", "classification"), "taks: unknown key (did you mean task?)"),
        (
            ("training", "allowed_training_algorithms", ["LightGBN"]),
            "training.allowed_training_algorithms[0]: unknown algorithm 'LightGBN' "
            "(did you mean LightGBM?)",
        ),
        (("training_data", "type", "csv"), "training_data.type: must be one of"),
        ((None, "n_cross_validations", 1), "n_cross_validations: must be an integer of at least 2"),
        (
            ("titanicml", "time_budgt", 3),
            "titanicml.time_budgt: unknown key (did you mean time_budget?)",
        ),
    ],
)
def test_bad_keys_and_values_name_their_yaml_path(change, message):
    document = _automl()
    section, key, value = change
    (document.setdefault(section, {}) if section else document)[key] = value
    with pytest.raises(ConfigError) as info:
        parse_job(document)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_command_job_settings_from_command_and_block():
    document = yaml.safe_load((EXAMPLES / "train-titanic.yml").read_text())
    document["titanicml"] = {"time_budget": 5, "seed": 3}
    job = parse_job(document)
    assert (job.spec.time_budget, job.spec.seed, job.spec.metric) == (5, 3, "accuracy")
    document["command"] = "python train.py --data ${{inputs.input_data}} --my-flag 1"
    with pytest.raises(ConfigError, match="no --target"):
        parse_job(document)
    document["command"] = "titanicml train --data ${{inputs.input_data}} --target Survived --bogus"
    with pytest.raises(ConfigError, match="command: unknown option --bogus"):
        parse_job(document)


def test_only_commands_running_titanicml_train_are_read_as_training_settings():
    from titanicml.jobs.command import is_user_command

    assert not is_user_command(yaml.safe_load((EXAMPLES / "train-titanic.yml").read_text()))
    assert not is_user_command(_automl())
    handson = EXAMPLES / "handson" / "src" / "jobs" / "train-titanic.yml"
    assert is_user_command(yaml.safe_load(handson.read_text()))
    # A script of the user's own is run as written, even with flags titanicml knows.
    assert is_user_command({"command": "python train.py --target Survived --time-budget 60"})
    assert not is_user_command({"command": "titanicml train --data x --target Survived"})


def test_cli_bad_file_is_one_line_exit_2(tmp_path, cli):
    bad = tmp_path / "job.yml"
    document = _automl()
    document["limits"]["max_trials"] = "ten"
    bad.write_text(yaml.safe_dump(document))
    done = cli("job", "create", "-f", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "titanicml: error: limits.max_trials: must be a positive integer, got 'ten'"
    )


@pytest.mark.parametrize("name", ["automl-titanic.yml", "train-titanic.yml"])
def test_local_runs_of_example_jobs(name, home, tmp_path, cli):
    done = cli(
        "job", "create", "-f", str(EXAMPLES / name), "--set", "titanicml.time_budget=4",
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--output", str(tmp_path / "m"),
        env={"TITANICML_HOME": str(home)}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Best model:" in done.stdout
    assert (tmp_path / "m" / "MLmodel").is_file()
    # titanicml's own training runs in this process, and is a local job whose run is its run.
    (record,) = [json.loads(p.read_text()) for p in (home / "jobs").glob("*/job.json")]
    assert (record["kind"], record["status"]) == ("training", "Completed")
    assert f"Job {record['name']}: Completed" in done.stdout
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(record["run_id"])
    assert run.data.params["target"] == "Survived"
    downloaded = cli("job", "download", record["name"], "--download-path", tmp_path / "dl")
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "dl" / "artifacts" / "model" / "MLmodel").is_file()


def test_set_overrides_reach_the_run(home, tmp_path):
    from titanicml.cli import main

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rc = main([
        "job", "create", "-f", str(EXAMPLES / "automl-titanic.yml"),
        "--set", "limits.timeout_minutes=0.07", "--set", "primary_metric=AUC_weighted",
        "--tracking-uri", store,
    ])  # fmt: skip
    assert rc == 0
    # The --set overrides reached the run: AUC optimized, a budget of 0.07 minutes.
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("titanic-automl")
    (run,) = client.search_runs([experiment.experiment_id], "params.metric = 'roc_auc'")
    assert float(run.data.params["time_budget"]) == pytest.approx(4.2)
    assert run.data.params["metric_resolved"] == "roc_auc"


@pytest.mark.parametrize("name", ["automl-titanic.yml", "train-titanic.yml"])
def test_dry_run_writes_jobs_the_sdk_loads(name, home, tmp_path, cli):
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    out = tmp_path / "out"
    done = cli(
        "job", "create", "-f", str(EXAMPLES / name), "--dry-run", "--output-dir", str(out),
        env={"TITANICML_HOME": str(home)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = load_job(out / "job.yml")
    assert job.compute == "cpu-cluster"
    mltable = yaml.safe_load((out / "data" / "MLTable").read_text())
    assert mltable["paths"][0]["file"].startswith("./")
    data_file = out / "data" / mltable["paths"][0]["file"][2:]
    assert data_file.is_file()
    header = data_file.read_text().splitlines()[0].split(",")
    assert "Survived" in header and "Boat" not in header
    if name.startswith("automl"):
        assert job.type == "automl"
        assert job.task_type.lower() == "classification"
        assert job.primary_metric.lower() == "accuracy"
        assert job.target_column_name == "Survived"
        assert job.limits.max_trials == 20
    else:
        assert job.type == "command"
        assert "titanicml train" in job.command
        assert "--target Survived" in job.command
        assert (out / "src" / "titanicml" / "trainer.py").is_file()


def test_workflows_are_valid_yaml():
    tests = yaml.safe_load((WORKFLOWS / "tests.yml").read_text())
    mlops = yaml.safe_load((WORKFLOWS / "mlops.yml").read_text())
    # PyYAML reads the key `on` as True.
    assert "push" in tests[True] and "pull_request" in tests[True]
    assert "workflow_dispatch" in mlops[True]
    steps = [
        s.get("run", "") + s.get("uses", "") for job in mlops["jobs"].values() for s in job["steps"]
    ]
    text = "\n".join(steps)
    assert "azure/login@v2" in text
    assert "titanicml job create -f examples/automl-titanic.yml --backend azure --stream" in text
    assert "online-endpoint create --target azure" in text


def test_job_file_runs_on_the_azure_backend_against_the_fake_client(
    home, tmp_path, titanic, monkeypatch
):
    pytest.importorskip("azure.ai.ml")
    from mlflow import MlflowClient

    import titanicml.backends.azure as azure
    from titanicml.backends.azure.testing import (
        COMPLETED_SCRIPT,
        FakeMLClient,
        FakeRuns,
        default_children,
        save_automl_like_model,
    )
    from titanicml.cli import main

    model_dir = save_automl_like_model(titanic.drop(columns=["Boat", "Body"]), "Survived", tmp_path)
    fake = FakeMLClient(FakeRuns(*default_children("binary"), model_dir), script=COMPLETED_SCRIPT)
    made = []
    real = azure.AzureBackend

    def backend(**options):
        made.append(options)
        return real(
            ml_client=fake, runs=fake.runs, poll_interval=0, sleep=lambda s: None, **options
        )

    monkeypatch.setattr(azure, "AzureBackend", backend)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    status = main(["job", "create", "-f", str(EXAMPLES / "automl-titanic.yml"),
                   "--backend", "azure", "--tracking-uri", store])  # fmt: skip
    assert status == 0
    assert made == [
        {"mode": "automl", "experiment_name": "titanic-automl", "compute": "cpu-cluster"}
    ]
    (run,) = MlflowClient(store).search_runs(
        [MlflowClient(store).get_experiment_by_name("titanic-automl").experiment_id],
        "tags.`titanicml.backend` = 'azure'",
    )
    assert run.data.tags["titanicml.azure.job_name"]
    assert run.info.status == "FINISHED"
