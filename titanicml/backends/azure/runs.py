"""The MLflow side of an Azure ML workspace: AutoML's trials and the best model's files.

Azure ML is an MLflow tracking server (``workspace.mlflow_tracking_uri``); the
AutoML job is the parent run, each trial a child run. :class:`MlflowRuns` reads
them with MLflow's client; tests give the backend a fake with the same methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from titanicml.backends.azure.convert import ChildRun

__all__ = ["BEST_CHILD_KEY", "MODEL_ARTIFACT_PATH", "AzureRuns", "MlflowRuns"]

#: Tag (and property) of an AutoML parent run naming its best child run.
BEST_CHILD_KEY = "automl_best_child_run_id"
#: Where AutoML puts a trial's MLflow model among the run's artifacts.
MODEL_ARTIFACT_PATH = "outputs/mlflow-model"
# Tags of an AutoML child run that name its algorithm, first found first used.
_ALGORITHM_TAGS = ("run_algorithm", "algorithm", "mlflow.runName")


class AzureRuns(Protocol):
    """What the backend reads from the workspace's MLflow store."""

    def parent_tags(self, run_id: str) -> dict[str, str]:
        """Tags of the AutoML parent run."""
        ...

    def child_runs(self, run_id: str) -> list[ChildRun]:
        """Return the trials of the AutoML parent run."""
        ...

    def download_model(self, run_id: str, destination: Path) -> Path:
        """Download a trial's MLflow model folder; return the folder holding ``MLmodel``."""
        ...


class MlflowRuns:
    """:class:`AzureRuns` over MLflow's client and the workspace's tracking URI.

    Parameters
    ----------
    tracking_uri : str
        ``azureml://...``, from ``ml_client.workspaces.get(name).mlflow_tracking_uri``
        (needs the ``azureml-mlflow`` plug-in).
    """

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def parent_tags(self, run_id: str) -> dict[str, str]:
        """Tags of the AutoML parent run."""
        return dict(self._client().get_run(run_id).data.tags)

    def child_runs(self, run_id: str) -> list[ChildRun]:
        """Return the trials of the AutoML parent run, with Azure's metric names."""
        client = self._client()
        parent = client.get_run(run_id)
        runs = client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )
        children = []
        for index, run in enumerate(runs):
            tags = run.data.tags
            algorithm = next((tags[t] for t in _ALGORITHM_TAGS if tags.get(t)), "unknown")
            end = run.info.end_time or run.info.start_time
            children.append(
                ChildRun(
                    run_id=run.info.run_id,
                    algorithm=algorithm,
                    metrics=dict(run.data.metrics),
                    iteration=int(tags.get("iteration", index)),
                    duration=(end - run.info.start_time) / 1000 if run.info.start_time else 0.0,
                    params=dict(run.data.params),
                    status="Completed" if run.info.status == "FINISHED" else run.info.status,
                )
            )
        return children

    def download_model(self, run_id: str, destination: Path) -> Path:
        """Download ``outputs/mlflow-model`` of a run into ``destination``."""
        import mlflow.artifacts

        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=MODEL_ARTIFACT_PATH,
                dst_path=str(destination),
                tracking_uri=self.tracking_uri,
            )
        )
