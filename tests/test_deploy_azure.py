import warnings

import pytest

from titanicml.exceptions import ConfigError

pytest.importorskip("azure.ai.ml")


class _Poller:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _Operations:
    def __init__(self, kind, calls):
        self.kind, self.calls = kind, calls

    def begin_create_or_update(self, entity):
        snapshot = dict(getattr(entity, "traffic", None) or {})
        defaults = dict(getattr(entity, "defaults", None) or {})
        self.calls.append((self.kind, entity.name, snapshot, defaults, entity))
        return _Poller(entity)

    def get(self, name):
        return type("Endpoint", (), {"scoring_uri": f"https://{name}.example/score"})()


class FakeMLClient:
    """Records the calls titanicml makes at the SDK boundary."""

    def __init__(self):
        self.calls = []
        for kind in (
            "online_endpoints",
            "online_deployments",
            "batch_endpoints",
            "batch_deployments",
        ):
            setattr(self, kind, _Operations(kind, self.calls))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_online_orchestration(saved_model, tmp_path):
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint

    from titanicml.deploy.azure import create_online_endpoint

    client = FakeMLClient()
    result = create_online_endpoint(
        str(saved_model), "titanic-endpoint", client=client, output_dir=tmp_path / "o"
    )
    kinds = [c[0] for c in client.calls]
    assert kinds == ["online_endpoints", "online_deployments", "online_endpoints"]
    first, deployment, last = client.calls
    assert isinstance(first[4], ManagedOnlineEndpoint) and first[4].auth_mode == "key"
    assert isinstance(deployment[4], ManagedOnlineDeployment)
    assert deployment[4].endpoint_name == "titanic-endpoint"
    assert first[2] == {} and last[2] == {"blue": 100}
    assert result.created and result.scoring_uri == "https://titanic-endpoint.example/score"


def test_batch_orchestration(saved_model, tmp_path):
    from azure.ai.ml.entities import BatchEndpoint, ModelBatchDeployment

    from titanicml.deploy.azure import create_batch_endpoint

    client = FakeMLClient()
    create_batch_endpoint(
        str(saved_model), "titanic-batch", client=client, output_dir=tmp_path / "b"
    )
    kinds = [c[0] for c in client.calls]
    assert kinds == ["batch_endpoints", "batch_deployments", "batch_endpoints"]
    assert isinstance(client.calls[0][4], BatchEndpoint)
    assert isinstance(client.calls[1][4], ModelBatchDeployment)
    assert client.calls[2][3] == {"deployment_name": "blue"}


def test_missing_workspace_fails_before_anything(saved_model, tmp_path, monkeypatch):
    from titanicml.deploy.azure import create_online_endpoint

    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no Azure ML workspace"):
        create_online_endpoint(str(saved_model), output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_workspace_from_env_and_config(tmp_path, monkeypatch):
    from titanicml.backends.azure.workspace import resolve_workspace

    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(
        '{"subscription_id": "s", "resource_group": "g", "workspace_name": "w"}'
    )
    found = resolve_workspace()
    assert (found.subscription_id, found.resource_group, found.workspace_name) == ("s", "g", "w")
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", "other")
    assert resolve_workspace().workspace_name == "other"


def test_cli_online_dry_run_loads_with_sdk(saved_model, tmp_path, cli):
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    out = tmp_path / "online"
    done = cli(
        "online-endpoint", "create", "--target", "azure", "--name", "titanic-endpoint",
        "--model", str(saved_model), "--dry-run", "--output-dir", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    endpoint = load_online_endpoint(out / "online-endpoint.yml")
    deployment = load_online_deployment(out / "online-deployment.yml")
    assert endpoint.name == "titanic-endpoint" and endpoint.auth_mode == "key"
    assert deployment.endpoint_name == "titanic-endpoint"
    assert deployment.code_configuration.scoring_script == "score.py"
    assert (out / "model" / "MLmodel").is_file()


def test_cli_batch_dry_run_loads_with_sdk(saved_model, tmp_path, cli):
    from azure.ai.ml import load_batch_endpoint
    from azure.ai.ml.entities._load_functions import load_model_batch_deployment

    out = tmp_path / "batch"
    done = cli(
        "batch-endpoint", "create", "--target", "azure", "--name", "titanic-batch",
        "--model", str(saved_model), "--compute", "cluster2", "--dry-run", "--output-dir", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert load_batch_endpoint(out / "batch-endpoint.yml").name == "titanic-batch"
    deployment = load_model_batch_deployment(out / "batch-deployment.yml")
    assert deployment.endpoint_name == "titanic-batch"
    assert deployment.compute.removeprefix("azureml:") == "cluster2"


def test_cli_without_workspace_is_one_line(saved_model, tmp_path, cli):
    env = {"AZURE_SUBSCRIPTION_ID": "", "AZURE_RESOURCE_GROUP": "", "AZUREML_WORKSPACE_NAME": ""}
    done = cli(
        "online-endpoint", "create", "--target", "azure", "--model", str(saved_model),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no Azure ML workspace" in done.stderr
