"""``titanicml report --target azure --dry-run``: Azure's Responsible AI pipeline, checked
by azure-ai-ml's own loader (the only fake is the Azure network: nothing is submitted)."""

from __future__ import annotations

import json

import pytest
import yaml
from test_oof import fixture_holdout_result  # noqa: F401 (fixture)

pytest.importorskip("azure.ai.ml")

from titanicml.exceptions import ConfigError
from titanicml.report.azure import (
    RAI_COMPONENTS_VERSION,
    load_pipeline_job,
    rai_pipeline_document,
)


@pytest.fixture
def registered(saved_model, store):
    from titanicml.registry.register import register_model

    register_model("titanic-model", path=saved_model, tracking_uri=store)
    return store


def _dry_run(cli, model, store, titanic, tmp_path):
    """Run ``report --target azure --dry-run`` on the Titanic CSV; return (result, folder)."""
    data = tmp_path / "titanic.csv"
    titanic.to_csv(data, index=False)
    out = tmp_path / "rai"
    done = cli("report", "--target", "azure", "--dry-run", "--model", model,
               "--data", data, "--output-dir", out, "--tracking-uri", store)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done, out


def test_dry_run_writes_the_pipeline_that_azure_ml_loads(cli, registered, titanic, tmp_path):
    done, out = _dry_run(cli, "titanic-model@latest", registered, titanic, tmp_path)
    assert "checked with azure-ai-ml's loader" in done.stdout
    job = load_pipeline_job(out / "rai_job.yml")  # the SDK's PipelineJob, as az ml reads it
    assert type(job).__name__ == "PipelineJob"
    assert list(job.jobs) == ["create_rai_job", "explain_01", "error_analysis_01", "gather_01"]
    registry = "azureml://registries/azureml/components"
    assert job.jobs["create_rai_job"].component == (
        f"{registry}/rai_tabular_insight_constructor/versions/{RAI_COMPONENTS_VERSION}"
    )
    assert job.jobs["gather_01"].component.startswith(f"{registry}/rai_tabular_insight_gather/")
    document = yaml.safe_load((out / "rai_job.yml").read_text())
    constructor = document["jobs"]["create_rai_job"]["inputs"]
    assert constructor["model_input"] == {"type": "mlflow_model", "path": "azureml:titanic-model:1"}
    assert constructor["task_type"] == "classification"
    assert document["inputs"]["target_column_name"] == "Survived"
    categorical = json.loads(constructor["categorical_column_names"])
    assert "Sex" in categorical and "Age" not in categorical
    gathered = document["jobs"]["gather_01"]["inputs"]
    assert gathered["insight_1"].endswith("explain_01.outputs.explanation}}")
    assert gathered["insight_2"].endswith("error_analysis_01.outputs.error_analysis}}")
    table = (out / "data" / "data.csv").read_text().splitlines()
    assert len(table) == len(titanic) + 1 and "Survived" in table[0]
    assert (out / "data" / "MLTable").is_file()
    # No holdout in this model: the test rows are the training rows, and it says so.
    assert document["inputs"]["test_data"]["path"] == document["inputs"]["train_data"]["path"]
    assert "# Warning: test_data is the training data" in (out / "rai_job.yml").read_text()
    assert "warning: test_data is the training data" in done.stdout


def test_a_holdout_model_is_tested_on_its_holdout(cli, holdout_result, store, titanic, tmp_path):
    from titanicml.registry.register import register_model

    saved = holdout_result.save(tmp_path / "model")
    register_model("titanic-holdout", path=saved, tracking_uri=store)
    _, out = _dry_run(cli, "titanic-holdout@latest", store, titanic, tmp_path)
    document = yaml.safe_load((out / "rai_job.yml").read_text())
    assert document["inputs"]["test_data"]["path"] == "./test_data"
    assert document["inputs"]["train_data"]["path"] == "./data"
    rows = (out / "test_data" / "data.csv").read_text().splitlines()
    assert len(rows) == len(holdout_result.holdout) + 1
    assert "Warning" not in (out / "rai_job.yml").read_text()


def test_a_data_asset_is_referenced_not_copied(cli, registered, tmp_path):
    out = tmp_path / "rai"
    done = cli("report", "--target", "azure", "--dry-run", "--model", "titanic-model:1",
               "--data", "azureml:titanic-dataset@latest", "--output-dir", out,
               "--tracking-uri", registered)  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load((out / "rai_job.yml").read_text())
    assert document["inputs"]["train_data"]["path"] == "azureml:titanic-dataset@latest"
    assert not (out / "data").exists()
    # The asset's column types are unknown here: the model's input plan says which are text.
    constructor = document["jobs"]["create_rai_job"]["inputs"]
    categorical = json.loads(constructor["categorical_column_names"])
    assert {"Sex", "Embarked"} <= set(categorical) and "Age" not in categorical


def test_without_data_a_model_trained_on_a_frame_asks_for_a_file(cli, registered, tmp_path):
    out = tmp_path / "rai"
    done = cli("report", "--target", "azure", "--dry-run", "--model", "titanic-model:1",
               "--output-dir", out, "--tracking-uri", registered)  # fmt: skip
    assert done.returncode == 2
    assert "pass --data FILE" in done.stderr and "no such file" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run"], "is not a registered model"),  # a model directory: Azure cannot name it
        ([], "add --dry-run"),
    ],
)
def test_what_azure_cannot_read_exits_2(cli, saved_model, tmp_path, args, message):
    out = tmp_path / "rai"
    done = cli("report", "--target", "azure", *args, "--model", saved_model, "--output-dir", out,
               "--data", "azureml:titanic-dataset@latest")  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists()


def test_the_loader_refuses_a_broken_pipeline(tmp_path):
    document = rai_pipeline_document(
        "azureml:titanic-model:1", target="Survived", task="binary", categorical=["Sex"]
    )
    document["jobs"]["gather_01"]["type"] = "not-a-job-type"
    path = tmp_path / "rai_job.yml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="Azure ML's loader refuses"):
        load_pipeline_job(path)
