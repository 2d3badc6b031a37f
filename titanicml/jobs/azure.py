"""The Azure ML side of job files: ``--dry-run`` files and ``--backend azure`` submission.

titanicml's own jobs (AutoML, ``titanicml train``) become the Azure backend's jobs;
the user's own command job is submitted as written, checked by azure-ai-ml's loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import BackendUnavailableError, ConfigError

if TYPE_CHECKING:
    from titanicml.jobs.command import CommandJob
    from titanicml.jobs.files import JobFile

__all__ = [
    "azure_client",
    "load_command_entity",
    "submit_command_job",
    "write_azure_job",
    "write_command_job",
]


def write_azure_job(
    job: JobFile, output_dir: str | Path, workspace: str | Path | None = None
) -> dict[str, Path]:
    """Write the Azure ML job YAML and the MLTable of its data into ``output_dir``.

    ``data/MLTable`` plus a copy of the data file(s) is the folder that
    ``--backend azure`` uploads as an MLTable data asset; ``job.yml`` points at it
    by relative path, so ``az ml job create -f <output_dir>/job.yml`` submits the
    same job. AutoML files become an ``automl`` job from the TrainSpec (limits,
    metric, algorithms in Azure's spelling); command files become a command job
    that runs ``titanicml train`` with the same settings, on the file's compute,
    in an environment built from titanicml's requirements (``conda.yml``), with
    titanicml itself as the code (``src/``).

    Returns
    -------
    dict of str to Path
        ``job``, ``mltable`` and, for command jobs, ``code``.
    """
    out = Path(output_dir)
    try:
        from titanicml.backends.azure import jobs as azure_jobs
    except ImportError as exc:
        raise BackendUnavailableError(
            "writing Azure ML job files needs the Azure SDK: "
            f'pip install "titanicml[azure]" ({exc})'
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    return _write_with_backend(job, out, workspace, azure_jobs)


def _write_with_backend(
    job: JobFile, out: Path, workspace: str | Path | None, azure_jobs: Any
) -> dict[str, Path]:
    """Write the job the Azure backend submits, with its own builders."""
    from titanicml._version import __version__
    from titanicml.backends.azure.data import training_table, write_mltable
    from titanicml.data.resolve import resolve_data
    from titanicml.trainer import check_before_training

    frame, _ = resolve_data(job.data, workspace)
    spec, target, _ = check_before_training(frame, job.spec)
    folder = write_mltable(training_table(frame, spec), out / "data")
    compute = (job.compute or "cpu-cluster").removeprefix("azureml:")
    written = {"mltable": folder / "MLTable"}
    if job.kind == "automl":
        entity = azure_jobs.automl_job(spec, target.task, "./data", compute, job.experiment_name)
    else:
        written["code"] = azure_jobs.stage_code(out / "src")
        entity = azure_jobs.command_job(spec, "./data", "./src", compute, job.experiment_name)
    if job.display_name:
        entity.display_name = job.display_name
    if job.description:
        entity.description = job.description
    written["job"] = out / "job.yml"
    entity.dump(written["job"])
    header = (
        f"# Written by titanicml {__version__} from {job.path or 'a job document'}.\n"
        "# Submit it as is: az ml job create -f job.yml\n"
    )
    # The SDK dumps a local path not yet uploaded as "azureml:./..."; az ml reads "./...".
    text = written["job"].read_text().replace("azureml:./", "./")
    written["job"].write_text(header + text)
    return written


# -- the user's own command job ----------------------------------------------------------


def azure_client(experiment_name: str) -> tuple[Any, Any]:
    """Return the Azure backend and its ``MLClient`` of the configured workspace.

    Raises
    ------
    BackendUnavailableError
        Without the azure extra, or without a working credential.
    ConfigError
        If no workspace is configured.
    """
    try:
        import titanicml.backends.azure as azure
    except ImportError as exc:
        raise BackendUnavailableError(
            f'submitting a job to Azure ML needs the Azure SDK: pip install "titanicml[azure]" '
            f"({exc})"
        ) from None
    backend = azure.AzureBackend(experiment_name=experiment_name)
    return backend, backend.client()


def load_command_entity(document: dict[str, Any], file: Path) -> Any:
    """Load a command job document with azure-ai-ml's own loader, as read from ``file``.

    Relative paths (``code``, local inputs) are the SDK's: relative to ``file``'s folder.

    Raises
    ------
    ConfigError
        If the SDK refuses the document; the message is the SDK's, on one line.
    """
    import io
    import logging
    import warnings

    import yaml
    from azure.ai.ml import load_job

    text = yaml.safe_dump(document, sort_keys=False)
    logger = logging.getLogger("azure.ai.ml")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_job(io.StringIO(text), relative_origin=str(file))
    except Exception as exc:  # marshmallow's ValidationError, the SDK's ValidationException
        raise ConfigError(f"Azure ML's loader refuses {file}: {_sdk_errors(exc)}") from None
    finally:
        logger.setLevel(level)


def write_command_job(job: CommandJob, output_dir: str | Path) -> dict[str, Path]:
    """Write the user's command job for ``az ml job create -f``: job.yml, code, local data.

    The code folder is copied to ``src/`` and inputs given as local paths to
    ``inputs/NAME/``, with ``job.yml`` pointing at them relatively; data asset
    references (``azureml:titanic-dataset@latest``) stay as written, for the Azure
    workspace to resolve. The job is checked with azure-ai-ml's loader first.
    """
    import dataclasses
    import shutil

    import yaml

    from titanicml.jobs.prepare import copy_code, resolve_inputs

    load_command_entity(job.document, _job_path(job))  # before writing anything
    out = Path(output_dir)
    document = dict(job.document)
    written: dict[str, Path] = {}
    local = {k: i for k, i in job.inputs.items() if i.is_data and not _is_remote(i.value)}
    resolved = {i.name: i for i in resolve_inputs(dataclasses.replace(job, inputs=local))}
    out.mkdir(parents=True, exist_ok=True)
    if job.code is not None:
        target = out / "src"
        if target.exists():
            shutil.rmtree(target)
        written["code"] = copy_code(job.code, target)
        document["code"] = "./src"
    inputs = dict(document.get("inputs") or {})
    for name, item in resolved.items():
        source = item.source or Path(item.value)
        folder = out / "inputs" / name
        if folder.exists():
            shutil.rmtree(folder)
        if source.is_dir():
            shutil.copytree(source, folder)
            path = f"./inputs/{name}"
        else:
            folder.mkdir(parents=True)
            shutil.copyfile(source, folder / source.name)
            path = f"./inputs/{name}/{source.name}"
        inputs[name] = {**inputs[name], "path": path}
    if inputs:
        document["inputs"] = inputs
    written["job"] = out / "job.yml"
    header = f"# Written by titanicml from {job.path}. Submit it: az ml job create -f job.yml\n"
    written["job"].write_text(header + yaml.safe_dump(document, sort_keys=False))
    return written


def submit_command_job(job: CommandJob) -> tuple[Any, Any]:
    """Submit the user's command job to Azure ML as written; return (backend, submitted job).

    The SDK uploads the code folder and the local inputs; ``environment`` and
    ``compute`` are the file's.
    """
    entity = load_command_entity(job.document, _job_path(job))
    backend, client = azure_client(job.experiment_name)
    return backend, client.jobs.create_or_update(entity)


def _is_remote(value: str) -> bool:
    from titanicml.data.assets import is_reference

    return is_reference(value) or "://" in value


def _sdk_errors(exc: Exception) -> str:
    """Return the SDK's validation errors (nested JSON) as ``key: message`` on one line."""
    import re

    text = str(exc).replace("\\n", " ").replace('\\"', '"')
    pairs = re.findall(r'"(\w+)":\s*\[\s*(?:\{\s*"_schema":\s*\[\s*)?"([^"]+)"', text)
    if pairs:
        return "; ".join(dict.fromkeys(f"{key}: {message}" for key, message in pairs))
    return " ".join(text.split())[:600]


def _job_path(job: CommandJob) -> Path:
    return job.path if job.path is not None else job.base_dir / "job.yml"
