"""score.py and the Azure ML YAML files of an exported model."""

import importlib.util
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from titanicml.exceptions import ConfigError
from titanicml.model.azure_files import write_azure_files

HANDS_ON = {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}
INPUT_DATA = {
    "input_data": {
        "columns": ["Age", "Pclass", "Sex"],
        "index": [0, 1],
        "data": [[22, 3, "male"], [30, 1, "female"]],
    }
}
AZURE_FILES = [
    "azure/online-endpoint.yml",
    "azure/online-deployment.yml",
    "azure/conda.yml",
    "azure/batch-endpoint.yml",
    "azure/batch-deployment.yml",
]
_counter = itertools.count()


def _yaml(saved_model: Path, name: str) -> dict:
    return yaml.safe_load((saved_model / "azure" / name).read_text())


def _import_score(path: Path):
    """Import a score.py as the inference server does (a fresh module each time)."""
    spec = importlib.util.spec_from_file_location(f"score_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _error_of(answer) -> tuple[int, dict]:
    """Status and body of a 4xx answer: a plain dict, or an AMLResponse in the server's env."""
    if isinstance(answer, dict):
        return 400, answer
    return answer.status_code, json.loads(answer.get_data())


def test_saved_model_has_score_py_and_the_azure_files(saved_model):
    source = Path(__file__).parents[1] / "titanicml" / "model" / "score_template.py"
    assert (saved_model / "score.py").read_bytes() == source.read_bytes()
    manifest = json.loads((saved_model / "MANIFEST.json").read_text())["sha256"]
    for name in ["score.py", *AZURE_FILES]:
        assert (saved_model / name).is_file(), name
        assert name in manifest, f"{name} is not covered by the manifest"


def test_online_endpoint_and_deployment(saved_model):
    endpoint = _yaml(saved_model, "online-endpoint.yml")
    assert endpoint["$schema"].endswith("/managedOnlineEndpoint.schema.json")
    assert endpoint["name"] == "titanic-endpoint"
    assert endpoint["auth_mode"] == "key"
    deployment = _yaml(saved_model, "online-deployment.yml")
    assert deployment["$schema"].endswith("/managedOnlineDeployment.schema.json")
    assert deployment["name"] == "blue"
    assert deployment["endpoint_name"] == "titanic-endpoint"
    assert deployment["model"] == {"path": "..", "type": "custom_model"}
    assert deployment["code_configuration"] == {"code": "..", "scoring_script": "score.py"}
    folder = saved_model / "azure"
    # Paths are relative to the YAML file: the model directory itself, and its score.py.
    assert (folder / deployment["model"]["path"]).resolve() == saved_model.resolve()
    code = folder / deployment["code_configuration"]["code"]
    assert (code / deployment["code_configuration"]["scoring_script"]).is_file()
    environment = deployment["environment"]
    assert environment["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert (folder / environment["conda_file"]).is_file()
    assert deployment["instance_type"] == "Standard_DS3_v2"
    assert deployment["instance_count"] == 1


def test_conda_file_lists_the_model_pins_and_the_inference_server(saved_model):
    conda = _yaml(saved_model, "conda.yml")
    dependencies = conda["dependencies"]
    assert any(isinstance(d, str) and d.startswith("python=3.") for d in dependencies)
    assert "pip" in dependencies
    pip = next(d["pip"] for d in dependencies if isinstance(d, dict))
    pins = (saved_model / "requirements.txt").read_text().split()
    assert pip[: len(pins)] == pins
    assert "azureml-inference-server-http" in pip


def test_batch_endpoint_and_deployment(saved_model):
    endpoint = _yaml(saved_model, "batch-endpoint.yml")
    assert endpoint["$schema"].endswith("/batchEndpoint.schema.json")
    assert endpoint["name"] == "titanic-batch"
    deployment = _yaml(saved_model, "batch-deployment.yml")
    assert deployment["$schema"].endswith("/modelBatchDeployment.schema.json")
    assert deployment["endpoint_name"] == "titanic-batch"
    assert deployment["type"] == "model"
    assert deployment["model"] == {"path": "..", "type": "mlflow_model"}
    assert deployment["compute"] == "azureml:cpu-cluster"
    assert deployment["resources"] == {"instance_count": 1}
    assert deployment["settings"] == {
        "mini_batch_size": 10,
        "output_action": "append_row",
        "output_file_name": "predictions.csv",
        "retry_settings": {"max_retries": 3, "timeout": 300},
        "logging_level": "info",
        "environment_variables": {"TITANICML_TRUSTED_KEYS": _signing_key(saved_model)},
    }


def _signing_key(model_dir):
    return json.loads((model_dir / "MANIFEST.json").read_text())["public_key"]


def test_both_deployments_trust_the_key_the_model_is_signed_with(saved_model):
    """Azure has no titanicml workspace: the deployments name the model's key to trust."""
    key = _signing_key(saved_model)
    assert key.startswith("ed25519:")
    online = _yaml(saved_model, "online-deployment.yml")
    assert online["environment_variables"] == {"TITANICML_TRUSTED_KEYS": key}
    batch = _yaml(saved_model, "batch-deployment.yml")
    assert batch["settings"]["environment_variables"] == {"TITANICML_TRUSTED_KEYS": key}


def test_azure_ml_sdk_loads_every_yaml_file(saved_model):
    ml = pytest.importorskip("azure.ai.ml")
    from azure.ai.ml.entities._load_functions import load_model_batch_deployment

    folder = saved_model / "azure"
    endpoint = ml.load_online_endpoint(folder / "online-endpoint.yml")
    assert (endpoint.name, endpoint.auth_mode) == ("titanic-endpoint", "key")
    deployment = ml.load_online_deployment(folder / "online-deployment.yml")
    assert deployment.endpoint_name == "titanic-endpoint"
    assert Path(deployment.model.path).resolve() == saved_model.resolve()
    assert deployment.environment.conda_file["dependencies"][0].startswith("python=")
    assert ml.load_batch_endpoint(folder / "batch-endpoint.yml").name == "titanic-batch"
    # `az ml batch-deployment create` reads a `type: model` file with this loader.
    batch = load_model_batch_deployment(folder / "batch-deployment.yml")
    assert batch.type == "model" and batch.settings.mini_batch_size == 10
    assert Path(batch.model.path).resolve() == saved_model.resolve()


def test_write_azure_files_names_and_validation(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pins\nnumpy==2.0.0\n\npandas==2.2.0\n")
    written = write_azure_files(tmp_path, online_endpoint="my-endpoint", batch_endpoint="my-batch")
    assert set(written) == {
        "score",
        "online_endpoint",
        "online_deployment",
        "conda",
        "batch_endpoint",
        "batch_deployment",
    }
    assert yaml.safe_load(written["online_deployment"].read_text())["endpoint_name"] == (
        "my-endpoint"
    )
    assert yaml.safe_load(written["batch_deployment"].read_text())["endpoint_name"] == "my-batch"
    conda = yaml.safe_load(written["conda"].read_text())
    assert conda["dependencies"][-1]["pip"] == [
        "numpy==2.0.0",
        "pandas==2.2.0",
        "azureml-inference-server-http",
    ]
    for bad in ["1-starts-with-a-digit", "ab", "ends-with-", "under_score", "x" * 33]:
        with pytest.raises(ConfigError, match="invalid online endpoint name"):
            write_azure_files(tmp_path, online_endpoint=bad)


@pytest.fixture
def score(saved_model, monkeypatch):
    """score.py of the saved model, imported and initialised as Azure ML does."""
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(saved_model))
    for name in ("AZUREML_MODEL_NAME", "AZUREML_MODEL_VERSION"):
        monkeypatch.delenv(name, raising=False)
    module = _import_score(saved_model / "score.py")
    module.init()
    return module


def test_score_py_answers_the_hands_on_and_azure_bodies(score, titanic_result):
    expected = titanic_result.model.score_records(HANDS_ON["data"])
    answer = score.run(json.dumps(HANDS_ON))
    assert answer["predictions"] == expected.labels
    np.testing.assert_allclose(answer["probabilities"], expected.probabilities)
    assert answer["classes"] == [0, 1]
    assert answer["model"] == {"name": "titanic-model", "version": "local"}
    json.dumps(answer)  # plain JSON types: the server serializes it as is

    split = INPUT_DATA["input_data"]
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    expected = titanic_result.model.score_records(records)
    answer = score.run(json.dumps(INPUT_DATA).encode())
    assert answer["predictions"] == expected.labels
    np.testing.assert_allclose(answer["probabilities"], expected.probabilities)


def test_score_py_reads_csv_when_the_request_says_so(score):
    body = "Age,Pclass,Sex\n22,3,male\n30,1,female\n"
    answer = score.run(body, request_headers={"Content-Type": "text/csv; charset=utf-8"})
    assert len(answer["predictions"]) == 2
    json_answer = score.run(json.dumps({"dataframe_records": [{"Age": 22, "Sex": "male"}]}))
    assert len(json_answer["predictions"]) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "malformed JSON"),
        ("", "empty"),
        ('{"rows": []}', "exactly one of the keys"),
        ('{"data": [{"Deck": "C"}]}', "unknown column"),
        ('{"data": [{"Age": "old"}]}', "must be a number"),
        ('{"input_data": {"columns": ["Age"], "data": [[1, 2]]}}', "1 columns"),
    ],
)
def test_score_py_answers_a_bad_body_with_an_error_not_an_exception(score, body, message):
    status, error = _error_of(score.run(body))
    assert status == 400
    assert error["error"]["code"] == "BadRequest"
    assert message in error["error"]["message"]


def test_score_py_finds_the_model_below_azure_mount_and_reports_its_name(
    saved_model, tmp_path, monkeypatch
):
    # Azure mounts a registered model as <AZUREML_MODEL_DIR>/<folder>, the dir named .../name/N.
    mount = tmp_path / "azureml-models" / "titanic" / "3"
    shutil.copytree(saved_model, mount / "titanic-model", ignore=shutil.ignore_patterns("__py*"))
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(mount))
    monkeypatch.delenv("AZUREML_MODEL_NAME", raising=False)
    monkeypatch.delenv("AZUREML_MODEL_VERSION", raising=False)
    module = _import_score(saved_model / "score.py")
    module.init()
    assert module.find_model_dir() == mount / "titanic-model"
    assert module.run(json.dumps(HANDS_ON))["model"] == {"name": "titanic", "version": "3"}
    monkeypatch.setenv("AZUREML_MODEL_NAME", "titanic-prod")
    monkeypatch.setenv("AZUREML_MODEL_VERSION", "7")
    assert module.model_identity(mount / "titanic-model") == ("titanic-prod", "7")


def test_score_py_without_azure_env_uses_the_folder_it_is_in(saved_model, monkeypatch):
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    module = _import_score(saved_model / "score.py")
    assert module.find_model_dir() == saved_model.resolve()


def test_score_py_refuses_a_tampered_model(saved_model, tmp_path, monkeypatch):
    from titanicml.exceptions import ModelIntegrityError

    copy = tmp_path / "model"
    shutil.copytree(saved_model, copy, ignore=shutil.ignore_patterns("__py*"))
    with (copy / "azure" / "conda.yml").open("a") as handle:
        handle.write("  - evil-package\n")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = _import_score(copy / "score.py")
    with pytest.raises(ModelIntegrityError, match=r"azure/conda\.yml"):
        module.init()


def test_score_py_run_before_init_is_an_error(saved_model):
    module = _import_score(saved_model / "score.py")
    with pytest.raises(RuntimeError, match="init"):
        module.run(json.dumps(HANDS_ON))
