"""``titanicml job create --dry-run``: the Azure ML job of ``--backend azure``, as files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import BackendUnavailableError

if TYPE_CHECKING:
    from titanicml.jobs.files import JobFile

__all__ = ["write_azure_job"]


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
