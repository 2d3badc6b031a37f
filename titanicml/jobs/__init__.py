"""Job files (``titanicml job create -f job.yml``): read, run, and written for Azure ML."""

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
)

__all__ = [
    "BLOCK_KEYS",
    "JobFile",
    "apply_overrides",
    "automl_document",
    "command_document",
    "load_job_file",
    "parse_job",
    "write_azure_job",
]
