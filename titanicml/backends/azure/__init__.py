"""The Azure ML backend: ``Trainer(..., backend="azure")``.

Importing this package imports azure-ai-ml, so that the backend registry can
tell a user without it to run ``pip install "titanicml[azure]"``.
"""

from __future__ import annotations

import azure.ai.ml  # noqa: F401  (fails without the extra: the registry says what to install)

from titanicml.backends.azure.backend import MODES, AzureBackend, job_status

__all__ = ["MODES", "AzureBackend", "job_status"]
