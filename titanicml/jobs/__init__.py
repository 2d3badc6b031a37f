"""Job files (``titanicml job create -f job.yml``): read, run here, or written for Azure ML.

titanicml's own jobs (AutoML, ``titanicml train``) are read into training settings
(:mod:`~titanicml.jobs.files`); any other command job is the user's own command,
run as Azure ML runs it (:mod:`~titanicml.jobs.command`, :mod:`~titanicml.jobs.local`),
with its record in the workspace (:mod:`~titanicml.jobs.records`).
"""

from __future__ import annotations

from titanicml.jobs.azure import write_azure_job
from titanicml.jobs.files import (
    BLOCK_KEYS,
    JobFile,
    apply_overrides,
    automl_document,
    command_document,
    load_job_file,
    parse_job,
    read_document,
)

__all__ = [
    "BLOCK_KEYS",
    "JobFile",
    "apply_overrides",
    "automl_document",
    "command_document",
    "load_job_file",
    "parse_job",
    "read_document",
    "write_azure_job",
]
