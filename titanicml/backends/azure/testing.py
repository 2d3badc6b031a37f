"""A fake ``MLClient`` at the SDK boundary, for tests without a cloud.

Like httpx's ``MockTransport``: it implements just the calls the Azure backend
makes (``data.create_or_update``, ``jobs.create_or_update / get / list /
begin_cancel / download``, ``workspaces.get``), records each of them in
:attr:`FakeMLClient.calls`, and plays a scripted sequence of job statuses.
:class:`FakeRuns` stands in for the workspace's MLflow store: AutoML's child
runs with Azure's metric names, and an MLflow model folder in the shape Azure
AutoML writes (``outputs/mlflow-model/MLmodel``, ``model.pkl``, ``conda.yaml``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from titanicml.backends.azure.convert import ChildRun

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FakeMLClient", "FakeRuns", "default_children", "save_automl_like_model"]

COMPLETED_SCRIPT = ("NotStarted", "Queued", "Preparing", "Running", "Finalizing", "Completed")


@dataclass
class _Operations:
    client: FakeMLClient

    def _record(self, operation: str, *args: Any, **kwargs: Any) -> None:
        self.client.calls.append((operation, args, kwargs))


class _DataOperations(_Operations):
    def create_or_update(self, data: Any) -> Any:
        self._record("data.create_or_update", data)
        folder = Path(data.path)
        self.client.uploaded[f"{data.name}:{data.version}"] = {
            p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()
        }
        return SimpleNamespace(name=data.name, version=data.version, type=data.type)


@dataclass
class _FakeJob:
    name: str
    entity: Any
    script: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def status(self) -> str:
        return self.script[0]

    @property
    def studio_url(self) -> str:
        return f"https://ml.azure.com/runs/{self.name}?wsid=/fake"


class _JobOperations(_Operations):
    def create_or_update(self, job: Any, **kwargs: Any) -> Any:
        self._record("jobs.create_or_update", job, **kwargs)
        name = f"fake-job-{len(self.client.jobs_by_name) + 1}"
        fake = _FakeJob(name, job, list(self.client.script))
        if self.client.best_child_run_id:
            fake.properties["automl_best_child_run_id"] = self.client.best_child_run_id
        if fake.script[-1] == "Failed":
            fake.error = "UserError: the fake job failed"
        self.client.jobs_by_name[name] = fake
        return fake

    def get(self, name: str) -> Any:
        self._record("jobs.get", name)
        fake = self.client.jobs_by_name[name]
        current = SimpleNamespace(
            name=name,
            status=fake.status,
            tags=dict(fake.tags),
            properties=dict(fake.properties),
            error=fake.error if fake.status == "Failed" else None,
            studio_url=fake.studio_url,
        )
        if len(fake.script) > 1:
            fake.script.pop(0)
        return current

    def list(self, *, parent_job_name: str | None = None, **kwargs: Any) -> list[Any]:
        self._record("jobs.list", parent_job_name=parent_job_name)
        fake = self.client.jobs_by_name[parent_job_name]
        done = fake.status in ("Finalizing", "Completed")
        return [
            SimpleNamespace(name=c.run_id, status="Completed" if done else "Running")
            for c in self.client.runs.children
        ]

    def begin_cancel(self, name: str, **kwargs: Any) -> Any:
        self._record("jobs.begin_cancel", name)
        self.client.jobs_by_name[name].script = ["Canceled"]
        return SimpleNamespace(result=lambda timeout=None: None, done=lambda: True)

    def download(
        self, name: str, *, download_path: str = ".", output_name: str | None = None, **kwargs: Any
    ) -> None:
        self._record("jobs.download", name, download_path=download_path, output_name=output_name)
        if self.client.command_output is None:
            raise AssertionError("FakeMLClient: no command_output folder to download")
        target = Path(download_path) / "named-outputs" / (output_name or "default")
        shutil.copytree(self.client.command_output, target)


class _WorkspaceOperations(_Operations):
    def get(self, name: str | None = None) -> Any:
        self._record("workspaces.get", name)
        return SimpleNamespace(name=name, mlflow_tracking_uri="azureml://fake/mlflow")


class FakeMLClient:
    """Just the ``MLClient`` calls the Azure backend makes, recorded and scripted.

    Parameters
    ----------
    runs : FakeRuns, optional
        The fake MLflow side; its best child is also put in the job's properties.
    script : sequence of str
        Azure statuses that successive ``jobs.get`` calls return; the last one stays.
    command_output : path, optional
        Folder that ``jobs.download`` copies as a command job's ``model`` output.
    """

    def __init__(
        self,
        runs: FakeRuns | None = None,
        script: tuple[str, ...] | list[str] = COMPLETED_SCRIPT,
        command_output: str | Path | None = None,
        subscription_id: str = "00000000-0000-0000-0000-000000000000",
        resource_group_name: str = "rg-titanic",
        workspace_name: str = "ws-titanic",
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group_name = resource_group_name
        self.workspace_name = workspace_name
        self.runs = runs or FakeRuns([], "")
        self.script = list(script)
        self.command_output = command_output
        self.calls: list[tuple[str, tuple, dict]] = []
        self.uploaded: dict[str, dict[str, bytes]] = {}
        self.jobs_by_name: dict[str, _FakeJob] = {}
        self.data = _DataOperations(self)
        self.jobs = _JobOperations(self)
        self.workspaces = _WorkspaceOperations(self)

    @property
    def best_child_run_id(self) -> str:
        """The best child run the fake AutoML job names."""
        return self.runs.best_run_id

    def operations(self) -> list[str]:
        """Names of the calls made, in order."""
        return [name for name, _, _ in self.calls]


class FakeRuns:
    """The workspace's MLflow store as the Azure backend reads it.

    Parameters
    ----------
    children : list of ChildRun
        AutoML's trials, with Azure's metric names.
    best_run_id : str
        The trial AutoML chose.
    model_dir : path, optional
        An ``outputs/mlflow-model`` folder (see :func:`save_automl_like_model`).
    """

    def __init__(
        self, children: list[ChildRun], best_run_id: str, model_dir: str | Path | None = None
    ) -> None:
        self.children = children
        self.best_run_id = best_run_id
        self.model_dir = Path(model_dir) if model_dir else None
        self.downloads: list[str] = []

    def parent_tags(self, run_id: str) -> dict[str, str]:
        """Return the parent run's tags."""
        return {"automl_best_child_run_id": self.best_run_id}

    def child_runs(self, run_id: str) -> list[ChildRun]:
        """Return the scripted trials."""
        return list(self.children)

    def download_model(self, run_id: str, destination: Path) -> Path:
        """Copy the model folder, as MLflow's download would."""
        self.downloads.append(run_id)
        if self.model_dir is None:
            raise AssertionError("FakeRuns: no model_dir to download")
        target = Path(destination) / "mlflow-model"
        shutil.copytree(self.model_dir, target)
        return target


def default_children(task: str) -> tuple[list[ChildRun], str]:
    """Return three AutoML-like trials of a task and the id of the best one."""
    if task == "regression":
        rows = [
            ("LightGBM", {"r2_score": 0.71, "normalized_root_mean_squared_error": 0.09}),
            ("RandomForest", {"r2_score": 0.65, "normalized_root_mean_squared_error": 0.11}),
            ("VotingEnsemble", {"r2_score": 0.74, "normalized_root_mean_squared_error": 0.08}),
        ]
    else:
        rows = [
            ("LightGBM", {"accuracy": 0.81, "AUC_weighted": 0.86, "f1_score_weighted": 0.80}),
            ("RandomForest", {"accuracy": 0.79, "AUC_weighted": 0.84, "f1_score_weighted": 0.78}),
            ("LightGBM", {"accuracy": 0.78, "AUC_weighted": 0.83, "f1_score_weighted": 0.77}),
            ("VotingEnsemble", {"accuracy": 0.83, "AUC_weighted": 0.88, "f1_score_weighted": 0.82}),
        ]
    children = [
        ChildRun(f"fake-job-1_{i}", algorithm, dict(metrics), iteration=i, duration=10.0 + i)
        for i, (algorithm, metrics) in enumerate(rows)
    ]
    return children, children[-1].run_id


def save_automl_like_model(
    frame: pd.DataFrame, target: str, folder: str | Path, task: str = "binary"
) -> Path:
    """Fit a scikit-learn pipeline on raw columns and save it as AutoML does.

    The folder gets ``outputs/mlflow-model`` with ``MLmodel`` (``sklearn`` and
    ``python_function`` flavors and a signature), ``model.pkl`` and ``conda.yaml``,
    like the best child run of an Azure AutoML job. Returns the model folder.
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from titanicml.store import quiet_mlflow

    rows = frame[frame[target].notna()]
    X, y = rows.drop(columns=[target]), rows[target]
    numeric = [c for c in X.columns if X[c].dtype.kind in "biuf"]
    text = [c for c in X.columns if c not in numeric and X[c].nunique() <= 20]
    X = X[numeric + text]
    featurizer = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric),
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                text,
            ),
        ]
    )
    estimator = (
        RandomForestRegressor(n_estimators=10, random_state=0)
        if task == "regression"
        else LogisticRegression(max_iter=500)
    )
    model = Pipeline([("datatransformer", featurizer), ("model", estimator)]).fit(X, y)
    path = Path(folder) / "outputs" / "mlflow-model"
    with quiet_mlflow():
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
            signature=infer_signature(X.head(20), model.predict(X.head(20))),
        )
    return path
