"""Train on a real Azure ML workspace: runs only with TITANICML_AZURE_LIVE=1 and credentials.

Needs a workspace (config.json or AZURE_SUBSCRIPTION_ID / AZURE_RESOURCE_GROUP /
AZUREML_WORKSPACE_NAME), a compute cluster (TITANICML_AZURE_COMPUTE, default
cpu-cluster), a login (az login or a service principal) and azureml-mlflow.
It takes about 20 minutes (Azure AutoML's shortest timeout is 15).
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("TITANICML_AZURE_LIVE") != "1",
    reason="live Azure test: set TITANICML_AZURE_LIVE=1 (and credentials) to run it",
)


@pytest.fixture(scope="module")
def backend():
    pytest.importorskip("azure.ai.ml")
    from titanicml.backends.azure import AzureBackend
    from titanicml.exceptions import BackendUnavailableError, ConfigError

    backend = AzureBackend(compute=os.environ.get("TITANICML_AZURE_COMPUTE", "cpu-cluster"))
    try:
        backend.client()
    except (ConfigError, BackendUnavailableError) as exc:
        pytest.skip(f"no usable Azure workspace or credential: {exc}")
    return backend


def test_automl_job_on_azure(backend, titanic, tmp_path):
    from titanicml import Trainer

    trainer = Trainer(
        target="Survived",
        time_budget=900,
        exclude=["Boat", "Body"],
        max_trials=4,
        backend=backend,
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    result = trainer.fit(titanic)
    assert result.backend == "azure"
    assert result.extras["azure"]["best_child_run_id"]
    assert 0.5 < result.metrics["accuracy"] <= 1.0
    saved = result.save(tmp_path / "model")
    assert (saved / "MLmodel").is_file()
    assert set(result.predict(titanic.head(5))) <= {0, 1}
