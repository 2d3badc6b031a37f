"""Endpoint and deployment files read without the azure extra, as with it.

A local endpoint needs only ``titanicml[serve]``: without azure-ai-ml the files are read
as YAML into the same settings (with a warning that Azure's schema was not checked).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from titanicml.deploy.local.specs import read_deployment_file, read_endpoint_file

HANDSON = Path(__file__).parents[1] / "examples" / "handson" / "src" / "endpoints"

FULL = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: green
endpoint_name: titanic-endpoint
model: azureml:titanic-model:2
instance_type: Standard_DS3_v2
instance_count: 2
request_settings:
  request_timeout_ms: 3000
  max_concurrent_requests_per_instance: 4
liveness_probe:
  initial_delay: 5
  period: 3
readiness_probe:
  failure_threshold: 7
"""


@pytest.fixture
def without_azure_sdk(monkeypatch):
    """Make ``import azure.ai.ml`` fail, as on a machine without the azure extra."""
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)


@pytest.mark.parametrize("name", ["deployment.yml", "full"])
def test_a_deployment_file_reads_the_same_with_and_without_the_sdk(
    name, tmp_path, monkeypatch, caplog
):
    path = HANDSON / name if name != "full" else tmp_path / "green.yml"
    if name == "full":
        path.write_text(FULL)
    with_sdk = read_deployment_file(path)
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)
    with caplog.at_level("WARNING", logger="titanicml"):
        plain = read_deployment_file(path)
    assert plain == with_sdk
    assert "not checked against Azure ML's schema" in caplog.text


def test_an_endpoint_file_reads_the_same_without_the_sdk(monkeypatch):
    with_sdk = read_endpoint_file(HANDSON / "endpoint.yml")
    monkeypatch.setitem(sys.modules, "azure.ai.ml", None)
    assert read_endpoint_file(HANDSON / "endpoint.yml") == with_sdk
    assert with_sdk.name == "titanic-endpoint" and with_sdk.auth_mode == "key"


def test_a_broken_file_is_a_clear_error_without_the_sdk(tmp_path, without_azure_sdk):
    from titanicml.exceptions import ConfigError

    path = tmp_path / "deployment.yml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not a readable YAML file"):
        read_deployment_file(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_deployment_file(path)
