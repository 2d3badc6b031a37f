"""AzureBackend: the Trainer's search as an Azure ML job."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from titanicml.backends.base import Job, JobStatus, Progress, ProgressCallback
from titanicml.exceptions import ConfigError, TrainingError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.backends.azure.runs import AzureRuns
    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = ["MODES", "STATUSES", "AzureBackend", "job_status"]

MODES = ("automl", "command")
#: Azure ML job status -> titanicml's :class:`JobStatus`.
STATUSES: dict[str, JobStatus] = {
    "NotStarted": JobStatus.QUEUED,
    "Starting": JobStatus.QUEUED,
    "Provisioning": JobStatus.QUEUED,
    "Preparing": JobStatus.QUEUED,
    "Queued": JobStatus.QUEUED,
    "Running": JobStatus.RUNNING,
    "Finalizing": JobStatus.RUNNING,
    "CancelRequested": JobStatus.RUNNING,
    "Paused": JobStatus.RUNNING,
    "Completed": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "NotResponding": JobStatus.FAILED,
    "Canceled": JobStatus.CANCELED,
}


def job_status(azure_status: str | None) -> JobStatus:
    """Map an Azure ML job status to a :class:`JobStatus` (unknown ones count as running)."""
    return STATUSES.get(str(azure_status), JobStatus.RUNNING)


class AzureBackend:
    """Run the search on Azure ML: an AutoML job, or titanicml's own search as a command job.

    Parameters
    ----------
    subscription_id, resource_group, workspace_name : str, optional
        The workspace; missing names come from ``AZURE_SUBSCRIPTION_ID``,
        ``AZURE_RESOURCE_GROUP``, ``AZUREML_WORKSPACE_NAME``, then ``config.json``.
    compute : str
        Compute cluster that runs the job.
    mode : {"automl", "command"}
        ``"automl"``: Azure AutoML classification/regression. ``"command"``: a command
        job running ``titanicml train`` (the hands-on's ``train-titanic.yml``).
    ml_client : MLClient, optional
        A ready client (tests pass :class:`titanicml.backends.azure.testing.FakeMLClient`).
    credential : TokenCredential, optional
        Default: ``DefaultAzureCredential``.
    experiment_name : str
        Azure ML experiment of the jobs.
    max_concurrent_trials : int
        AutoML trials run at once (at most the cluster's nodes).
    poll_interval : float
        Seconds between status checks in :meth:`wait`.
    runs : AzureRuns, optional
        Reader of the workspace's MLflow runs; default: MLflow on the workspace's
        tracking URI.
    config_path : str or Path, optional
        A workspace ``config.json`` to use instead of searching for one.
    sleep : callable
        Waits between status checks (tests pass a no-op).
    """

    name: ClassVar[str] = "azure"

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        compute: str = "cpu-cluster",
        mode: str = "automl",
        ml_client: Any = None,
        credential: Any = None,
        *,
        experiment_name: str = "titanicml",
        max_concurrent_trials: int = 4,
        poll_interval: float = 30.0,
        runs: AzureRuns | None = None,
        config_path: str | Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown Azure mode {mode!r}; choose one of: {', '.join(MODES)}")
        if not isinstance(compute, str) or not compute:
            raise ConfigError("compute must name an Azure ML compute cluster, e.g. 'cpu-cluster'")
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace_name = workspace_name
        self.compute = compute
        self.mode = mode
        self.ml_client = ml_client
        self.credential = credential
        self.experiment_name = experiment_name
        self.max_concurrent_trials = max_concurrent_trials
        self.poll_interval = poll_interval
        self.runs = runs
        self.config_path = config_path
        self._sleep = sleep

    # -- workspace -------------------------------------------------------------------

    def client(self) -> Any:
        """Return the ``MLClient`` (made once, from the workspace and credential).

        Raises
        ------
        ConfigError
            If no workspace is configured.
        BackendUnavailableError
            If no credential works.
        """
        if self.ml_client is None:
            from titanicml.backends.azure.workspace import make_client, resolve_workspace

            workspace = resolve_workspace(
                self.subscription_id, self.resource_group, self.workspace_name, self.config_path
            )
            self.ml_client = make_client(workspace, self.credential)
        return self.ml_client

    def _workspace_facts(self, client: Any) -> dict[str, str]:
        return {
            "subscription_id": str(getattr(client, "subscription_id", "")),
            "resource_group": str(getattr(client, "resource_group_name", "")),
            "workspace": str(getattr(client, "workspace_name", "")),
        }

    def _runs(self, client: Any) -> AzureRuns:
        if self.runs is None:
            from titanicml.backends.azure.runs import MlflowRuns

            workspace = client.workspaces.get(client.workspace_name)
            self.runs = MlflowRuns(workspace.mlflow_tracking_uri)
        return self.runs

    # -- the Backend protocol --------------------------------------------------------

    def submit(
        self,
        spec: TrainSpec,
        data: DataRef,
        frame: pd.DataFrame | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> Job:
        """Check the settings and the workspace, upload the table, submit the job.

        Nothing is uploaded unless the spec maps to Azure, the workspace is known
        and a credential works.
        """
        from titanicml.backends.azure import data as azure_data
        from titanicml.backends.azure import jobs
        from titanicml.data.target import prepare_target

        frame = self._frame(data, frame)
        task = prepare_target(frame, spec.target, spec.task).task
        if self.mode == "automl":
            jobs.primary_metric(spec, task)
            jobs.azure_algorithms(spec, task)
        client = self.client()
        table = azure_data.training_table(frame, spec)
        asset_name, asset_version = azure_data.asset_identity(data, table, frame.shape[1])
        tags = {"titanicml.target": spec.target, "titanicml.data_sha256": data.sha256}
        with tempfile.TemporaryDirectory(prefix="titanicml-azure-") as tmp:
            folder = azure_data.write_mltable(table, Path(tmp) / "data")
            asset = azure_data.register_mltable(client, folder, asset_name, asset_version)
            data_uri = (
                f"azureml:{getattr(asset, 'name', None) or asset_name}:"
                f"{getattr(asset, 'version', None) or asset_version}"
            )
            if self.mode == "automl":
                entity = jobs.automl_job(
                    spec,
                    task,
                    data_uri,
                    self.compute,
                    self.experiment_name,
                    self.max_concurrent_trials,
                    tags,
                )
                budget = jobs.limits(spec, self.max_concurrent_trials)["timeout_minutes"] * 60.0
            else:
                code = jobs.stage_code(Path(tmp) / "code")
                entity = jobs.command_job(
                    spec, data_uri, code, self.compute, self.experiment_name, tags
                )
                budget = float(spec.time_budget)
            submitted = client.jobs.create_or_update(entity)
        job = Job(
            spec=spec,
            data=data,
            backend=self.name,
            frame=frame,
            on_progress=on_progress,
            id=str(submitted.name),
            status=job_status(getattr(submitted, "status", None)),
            deadline=deadline,
        )
        job.state.update(
            task=task,
            mode=self.mode,
            budget=budget,
            azure={
                "job_name": str(submitted.name),
                "studio_url": getattr(submitted, "studio_url", None),
                "experiment_name": self.experiment_name,
                "compute": self.compute,
                "mode": self.mode,
                "data_asset": data_uri,
                **self._workspace_facts(client),
            },
        )
        return job

    def wait(self, job: Job, timeout: float | None = None) -> JobStatus:
        """Poll the job's status until it ends or ``timeout`` seconds pass.

        Ctrl-C cancels the Azure job (it would otherwise run on, and cost, without
        anyone waiting for it) before propagating.
        """
        client = self.client()
        started = time.monotonic()
        try:
            while True:
                remote = client.jobs.get(job.id)
                job.status = job_status(getattr(remote, "status", None))
                if job.status is JobStatus.FAILED:
                    job.state["error"] = _error_text(remote)
                self._report(job, client)
                if job.status.is_terminal:
                    return job.status
                waited = time.monotonic() - started
                if timeout is not None and waited >= timeout:
                    return job.status
                pause = self.poll_interval
                if timeout is not None:
                    pause = min(pause, timeout - waited)
                self._sleep(max(0.0, pause))
        except KeyboardInterrupt:
            self.cancel(job)
            job.status = JobStatus.CANCELED
            raise

    def _report(self, job: Job, client: Any) -> None:
        if job.on_progress is None:
            return
        trials = 0
        if job.state.get("mode") == "automl":
            children = client.jobs.list(parent_job_name=job.id)
            trials = sum(1 for c in children if getattr(c, "status", None) == "Completed")
        job.on_progress(
            Progress(
                trials=trials,
                best_score=None,
                elapsed=time.time() - job.submitted_at,
                budget=float(job.state.get("budget", job.spec.time_budget)),
                estimator="",
            )
        )

    def result(self, job: Job) -> TrainingResult:
        """Download the best model and return the same result as the local backend."""
        if job.status is not JobStatus.COMPLETED:
            message = f"job {job.id} is {job.status.value}, not Completed; no result"
            if job.state.get("error"):
                message += f" ({job.state['error']})"
            raise TrainingError(message)
        if "result" not in job.state:
            client = self.client()
            if job.state.get("mode", self.mode) == "automl":
                job.state["result"] = self._automl_result(job, client)
            else:
                job.state["result"] = self._command_result(job, client)
        return job.state["result"]

    def cancel(self, job: Job) -> None:
        """Ask Azure ML to cancel the job; :meth:`wait` then returns ``CANCELED``."""
        if job.status.is_terminal:
            return
        self.client().jobs.begin_cancel(job.id)
        job.state["cancel_requested"] = True

    # -- results ---------------------------------------------------------------------

    def _automl_result(self, job: Job, client: Any) -> TrainingResult:
        from titanicml.backends.azure.convert import build_result
        from titanicml.backends.azure.runs import BEST_CHILD_KEY

        runs = self._runs(client)
        remote = client.jobs.get(job.id)
        best = (
            (getattr(remote, "tags", None) or {}).get(BEST_CHILD_KEY)
            or (getattr(remote, "properties", None) or {}).get(BEST_CHILD_KEY)
            or runs.parent_tags(job.id).get(BEST_CHILD_KEY)
        )
        if not best:
            raise TrainingError(
                f"Azure job {job.id} completed without naming its best trial "
                f"({BEST_CHILD_KEY}); see {job.state['azure'].get('studio_url')}"
            )
        children = runs.child_runs(job.id)
        extras = {**job.state["azure"], "best_child_run_id": best}
        with tempfile.TemporaryDirectory(prefix="titanicml-azure-model-") as tmp:
            model_dir = runs.download_model(best, Path(tmp))
            return build_result(
                model_dir,
                job.frame,
                job.spec,
                job.data,
                children,
                best,
                extras,
                elapsed=time.time() - job.submitted_at,
            )

    def _command_result(self, job: Job, client: Any) -> TrainingResult:
        import pandas as pd

        from titanicml.model.layout import META_DIR, METADATA_FILE, load_model_dir
        from titanicml.model.signing import manifest_key
        from titanicml.result import TrainingResult

        with tempfile.TemporaryDirectory(prefix="titanicml-azure-model-") as tmp:
            client.jobs.download(job.id, download_path=tmp, output_name="model")
            found = sorted(Path(tmp).rglob("MLmodel"))
            if not found:
                raise TrainingError(f"Azure job {job.id} wrote no model to its 'model' output")
            root = found[0].parent
            # The model was signed on the job's compute, with a key made there: this
            # process submitted the job, so it trusts that key for this load.
            model = load_model_dir(root, also_trusted=(manifest_key(root),))
            meta = json.loads((root / METADATA_FILE).read_text())
            leaderboard = pd.read_csv(root / META_DIR / "leaderboard.csv")
            features = pd.read_csv(root / META_DIR / "features.csv")
        return TrainingResult(
            model=model,
            leaderboard=leaderboard,
            metrics={k: float(v) for k, v in meta["metrics"].items()},
            task=meta["task"],
            metric=meta["metric"],
            spec=job.spec,
            data=job.data,
            features=features,
            trials=leaderboard.copy(),
            backend=self.name,
            elapsed=time.time() - job.submitted_at,
            extras={"azure": dict(job.state["azure"])},
        )

    @staticmethod
    def _frame(data: DataRef, frame: pd.DataFrame | None) -> pd.DataFrame:
        if frame is not None:
            return frame
        if data.source == "<DataFrame>":
            raise TrainingError("the azure backend needs the training table (frame=...)")
        from titanicml.data.resolve import resolve_data

        return resolve_data(data.asset or data.source)[0]

    def __repr__(self) -> str:
        return (
            f"AzureBackend(workspace_name={self.workspace_name!r}, compute={self.compute!r}, "
            f"mode={self.mode!r})"
        )


def _error_text(remote: Any) -> str:
    error = getattr(remote, "error", None) or (getattr(remote, "properties", None) or {}).get(
        "error"
    )
    return str(error) if error else "no error message from Azure ML"
