"""Where titanicml keeps its local state: the workspace folder.

The workspace holds data assets, endpoint keys and endpoint data. It is
``workspace=`` when a function takes one, else ``$TITANICML_HOME``, else
``./.titanicml``. (Runs and models live in the MLflow store: see
:mod:`titanicml.store`.)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_WORKSPACE", "HOME_ENV", "workspace_dir"]

HOME_ENV = "TITANICML_HOME"
DEFAULT_WORKSPACE = ".titanicml"


def workspace_dir(workspace: str | Path | None = None) -> Path:
    """Return the workspace folder: ``workspace``, ``$TITANICML_HOME`` or ``./.titanicml``."""
    chosen = workspace or os.environ.get(HOME_ENV) or DEFAULT_WORKSPACE
    return Path(chosen).expanduser().absolute()
