"""The Azure ML pipeline job that builds the Responsible AI dashboard of a registered model.

Azure's dashboard is made by components of the ``azureml`` registry: the insights
constructor, then the explanation and error analysis tools, then the gather step.
:func:`write_rai_job` writes that pipeline for ``az ml job create -f``, with the
training rows as an MLTable folder beside it (or a data asset reference), and checks
it with azure-ai-ml's own loader before saying it is written. The test data is the
model's holdout (rows set apart before its search) when it has one; without one the
training rows are the test data too, and the job file and :attr:`RaiJob.warnings` say
so. The categorical columns come from the model's input plan (not the rows' types),
so a data asset's ``Sex`` and ``Embarked`` are categorical too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RAI_COMPONENTS",
    "RAI_COMPONENTS_VERSION",
    "RaiJob",
    "azure_model_reference",
    "load_pipeline_job",
    "rai_categorical_columns",
    "rai_pipeline_document",
    "write_rai_job",
]

#: The registry components' version (the four are released together).
RAI_COMPONENTS_VERSION = "0.22.0"
RAI_COMPONENTS = {
    "constructor": "rai_tabular_insight_constructor",
    "explanation": "rai_tabular_explanation",
    "error_analysis": "rai_tabular_erroranalysis",
    "gather": "rai_tabular_insight_gather",
}
JOB_FILE = "rai_job.yml"
#: Said in the job file and :attr:`RaiJob.warnings` when there is no holdout to test on.
SAME_ROWS_WARNING = (
    "test_data is the training data (the model has no holdout): the dashboard's error "
    "analysis and metrics are then in-sample (optimistic); train with holdout=0.2 for "
    "honest test rows"
)
_REGISTRY = "azureml://registries/azureml/components"
_PIPELINE_SCHEMA = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"


@dataclass(frozen=True)
class RaiJob:
    """A written pipeline job: its file, the data folders (if local), the loaded entity.

    ``warnings`` says what the user should know (test data that is the training data).
    """

    job: Path
    data: Path | None
    entity: Any
    test_data: Path | None = None
    warnings: tuple[str, ...] = ()


def rai_categorical_columns(model: Any) -> list[str]:
    """Return the model's input columns the dashboard must treat as categorical.

    Every input its plan does not use as a number (categories, target-encoded and
    text columns, dates), whatever type a data asset stores them as.
    """
    return [c.name for c in model.plan.inputs if c.kind != "numeric"]


def azure_model_reference(model: str, tracking_uri: str | None = None) -> str:
    """Return the Azure ML model the pipeline reads: ``azureml:<name>:<version>``.

    ``azureml:`` references are kept; a local registry reference (``titanic-model@champion``)
    names the same name and version, registered on Azure ML by ``titanicml model
    register`` with the azure target or ``az ml model create``.

    Raises
    ------
    ConfigError
        For a model directory or run URI, which Azure cannot name.
    """
    from titanicml.registry.references import is_model_reference, parse_model_reference
    from titanicml.registry.versions import find_version

    text = str(model).strip()
    if text.startswith("azureml:"):
        reference = parse_model_reference(text)
        if reference.version is None:
            raise ConfigError(
                f"{text} names no version: the pipeline needs azureml:<name>:<version>"
            )
        return f"azureml:{reference.name}:{reference.version}"
    if "://" in text or text.startswith(("runs:", "models:/")) or Path(text).exists():
        raise ConfigError(
            f"{text} is not a registered model: the Azure pipeline reads a model registered "
            "on Azure ML; pass --model azureml:<name>:<version> or a registered name@alias"
        )
    if not is_model_reference(text):
        raise ConfigError(f"{text!r} is not a model reference (name, name@alias or name:N)")
    found = find_version(text, tracking_uri)
    return f"azureml:{found.name}:{found.version}"


def rai_pipeline_document(
    model: str,
    *,
    target: str,
    task: str,
    categorical: list[str],
    data: str = "./data",
    test_data: str | None = None,
    compute: str = "cpu-cluster",
    experiment_name: str = "titanicml-responsible-ai",
    version: str = RAI_COMPONENTS_VERSION,
) -> dict[str, Any]:
    """Return the pipeline job as a YAML-ready document.

    Parameters
    ----------
    model : str
        ``azureml:<name>:<version>`` of the registered MLflow model.
    target, task : str
        The target column and titanicml's task (``binary``, ``multiclass``, ``regression``).
    categorical : list of str
        The text and category columns (the dashboard treats them as categorical).
    data : str
        The MLTable folder (``./data``) or data asset (``azureml:titanic-dataset@latest``)
        of the rows to analyse; it holds the target.
    test_data : str, optional
        The same for the test rows (the model's holdout); default ``data`` itself.
    """
    component = {k: f"{_REGISTRY}/{name}/versions/{version}" for k, name in RAI_COMPONENTS.items()}
    dashboard = "${{parent.jobs.create_rai_job.outputs.rai_insights_dashboard}}"
    name = model.removeprefix("azureml:")
    return {
        "$schema": _PIPELINE_SCHEMA,
        "type": "pipeline",
        "display_name": f"Responsible AI dashboard of {name}",
        "experiment_name": experiment_name,
        "inputs": {
            "target_column_name": target,
            "train_data": {"type": "mltable", "path": data, "mode": "download"},
            "test_data": {"type": "mltable", "path": test_data or data, "mode": "download"},
        },
        "settings": {
            "default_compute": f"azureml:{compute.removeprefix('azureml:')}",
            "default_datastore": "azureml:workspaceblobstore",
        },
        "jobs": {
            "create_rai_job": {
                "type": "command",
                "component": component["constructor"],
                "inputs": {
                    "title": f"Responsible AI: {name}",
                    "task_type": "regression" if task == "regression" else "classification",
                    "model_input": {"type": "mlflow_model", "path": model},
                    "model_info": name,
                    "train_dataset": "${{parent.inputs.train_data}}",
                    "test_dataset": "${{parent.inputs.test_data}}",
                    "target_column_name": "${{parent.inputs.target_column_name}}",
                    "categorical_column_names": json.dumps(categorical),
                    # The model's own requirements (titanicml's pins), not the component's.
                    "use_model_dependency": True,
                },
            },
            "explain_01": {
                "type": "command",
                "component": component["explanation"],
                "inputs": {
                    "comment": f"Explanations of {name}",
                    "rai_insights_dashboard": dashboard,
                },
            },
            "error_analysis_01": {
                "type": "command",
                "component": component["error_analysis"],
                "inputs": {
                    "rai_insights_dashboard": dashboard,
                    "max_depth": 3,
                    "min_child_samples": 20,
                },
            },
            "gather_01": {
                "type": "command",
                "component": component["gather"],
                "inputs": {
                    "constructor": dashboard,
                    "insight_1": "${{parent.jobs.explain_01.outputs.explanation}}",
                    "insight_2": "${{parent.jobs.error_analysis_01.outputs.error_analysis}}",
                },
            },
        },
    }


def load_pipeline_job(path: Path) -> Any:
    """Load a pipeline job file with azure-ai-ml's own loader.

    Raises
    ------
    BackendUnavailableError
        Without the azure extra.
    ConfigError
        If the SDK refuses the file; the message is the SDK's.
    """
    import logging
    import warnings

    try:
        from azure.ai.ml import load_job
    except ImportError as exc:
        raise BackendUnavailableError(
            "checking Azure ML job files needs the Azure SDK: "
            f'pip install "titanicml[azure]" ({exc})'
        ) from None
    logger = logging.getLogger("azure.ai.ml")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_job(path)
    except Exception as exc:  # marshmallow's ValidationError, the SDK's ValidationException
        message = " ".join(str(exc).split())
        raise ConfigError(f"Azure ML's loader refuses {path}: {message}") from None
    finally:
        logger.setLevel(level)


def write_rai_job(
    model: str,
    output_dir: str | Path,
    *,
    data: pd.DataFrame | str,
    target: str,
    task: str,
    input_columns: list[str],
    categorical: list[str] | None = None,
    test_data: pd.DataFrame | str | None = None,
    compute: str = "cpu-cluster",
    tracking_uri: str | None = None,
) -> RaiJob:
    """Write ``rai_job.yml`` (and ``data/``, ``test_data/`` for local rows); load it back.

    ``data`` and ``test_data`` are frames of labelled rows (written as MLTable folders)
    or Azure data asset references (``azureml:titanic-dataset@latest``), used as is.
    ``categorical``: :func:`rai_categorical_columns` of the model (default: the
    frame's non-numeric columns; none for a data asset). Without ``test_data`` the
    training rows are the test rows, and the file and :attr:`RaiJob.warnings` say so.
    """
    import yaml

    from titanicml._version import __version__

    reference = azure_model_reference(model, tracking_uri)
    out = Path(output_dir)
    folders: list[Path] = []

    def place(rows: pd.DataFrame | str, name: str) -> tuple[str, list[str]]:
        if isinstance(rows, str):
            if not rows.startswith("azureml:"):
                raise ConfigError(f"{rows!r} is not an Azure data asset (azureml:name@version)")
            return rows, []
        if target not in rows.columns:
            raise ConfigError(f"the {name} has no column {target!r}, the model's target")
        from titanicml.backends.azure.data import write_mltable

        columns = [c for c in input_columns if c in rows.columns]
        table = rows[[*columns, target]]
        folders.append(write_mltable(table, out / name))
        return f"./{name}", [c for c in columns if not _is_numeric(table[c])]

    try:
        path, typed = place(data, "data")
        test_path = None if test_data is None else place(test_data, "test_data")[0]
        warnings = () if test_path is not None else (SAME_ROWS_WARNING,)
        document = rai_pipeline_document(
            reference,
            target=target,
            task=task,
            categorical=typed if categorical is None else list(categorical),
            data=path,
            test_data=test_path,
            compute=compute,
        )
        header = (
            f"# Written by titanicml {__version__}: the Responsible AI dashboard of {reference}.\n"
            "# Submit it: az ml job create -f rai_job.yml (the model must be registered on "
            "Azure ML).\n" + "".join(f"# Warning: {w}.\n" for w in warnings)
        )
        job = out / JOB_FILE
        out.mkdir(parents=True, exist_ok=True)
        job.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        entity = load_pipeline_job(job)
    except BaseException:
        import shutil

        (out / JOB_FILE).unlink(missing_ok=True)  # nothing refused is left behind
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    data_folder = folders[0] if folders and path == "./data" else None
    test_folder = out / "test_data" if test_path == "./test_data" else None
    return RaiJob(job, data_folder, entity, test_folder, warnings)


def _is_numeric(column: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))
