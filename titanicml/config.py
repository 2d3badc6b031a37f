"""Where titanicml keeps its local state: the workspace folder.

The workspace holds data assets, endpoint keys, endpoint data and the model
signing keys (``keys/``: this workspace's own signing key and the keys it
trusts). It is ``workspace=`` when a function takes one, else
``$TITANICML_HOME``, else ``./.titanicml``. (Runs and models live in the MLflow
store: see :mod:`titanicml.store`.)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_WORKSPACE",
    "HOME_ENV",
    "KEYS_DIR",
    "TRUSTED_KEYS_ENV",
    "keys_dir",
    "workspace_dir",
]

HOME_ENV = "TITANICML_HOME"
DEFAULT_WORKSPACE = ".titanicml"
#: Folder of the workspace that holds ``signing.key`` and ``trusted/``.
KEYS_DIR = "keys"
#: Public keys trusted besides the workspace's (space or comma separated), for
#: processes that have no workspace: a deployment, a container.
TRUSTED_KEYS_ENV = "TITANICML_TRUSTED_KEYS"


def workspace_dir(workspace: str | Path | None = None) -> Path:
    """Return the workspace folder: ``workspace``, ``$TITANICML_HOME`` or ``./.titanicml``."""
    chosen = workspace or os.environ.get(HOME_ENV) or DEFAULT_WORKSPACE
    return Path(chosen).expanduser().absolute()


def keys_dir(workspace: str | Path | None = None) -> Path:
    """Return the workspace's key folder: its signing key and the keys it trusts."""
    return workspace_dir(workspace) / KEYS_DIR
