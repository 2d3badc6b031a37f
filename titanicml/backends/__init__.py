"""Training backends, found by name.

Built-in backends are listed in :data:`BUILTIN_BACKENDS` with the module that
defines them and the command that installs their dependencies. Third-party
packages add theirs through the ``titanicml.backends`` entry-point group::

    [project.entry-points."titanicml.backends"]
    mycloud = "mypackage.backend:MyCloudBackend"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from titanicml.backends.base import Backend, Job, JobStatus, Progress
from titanicml.exceptions import BackendNotFoundError, BackendUnavailableError

__all__ = [
    "BUILTIN_BACKENDS",
    "Backend",
    "BackendEntry",
    "Job",
    "JobStatus",
    "Progress",
    "available_backends",
    "get_backend",
]

ENTRY_POINT_GROUP = "titanicml.backends"


class BackendEntry(NamedTuple):
    """Where a backend lives and how to install what it needs."""

    target: str  # "module:Class"
    install_hint: str | None = None


BUILTIN_BACKENDS: dict[str, BackendEntry] = {
    "local": BackendEntry("titanicml.backends.local:LocalBackend"),
    "azure": BackendEntry(
        "titanicml.backends.azure:AzureBackend", 'pip install "titanicml[azure]"'
    ),
}


def available_backends() -> dict[str, BackendEntry]:
    """Return every backend name known: the built-in ones and the entry points."""
    found = dict(BUILTIN_BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, BackendEntry(ep.value))
    return found


def get_backend(name: str | Backend, **options: Any) -> Backend:
    """Return a backend instance by name.

    Parameters
    ----------
    name : str or Backend
        A registered name such as ``"local"``, or a backend instance (returned as is).
    **options
        Passed to the backend's constructor.

    Raises
    ------
    BackendNotFoundError
        If no backend is registered under ``name``.
    BackendUnavailableError
        If the backend's optional dependencies are missing (the message says what to install).
    """
    if not isinstance(name, str):
        if isinstance(name, Backend):
            return name
        raise BackendNotFoundError(f"backend must be a name or a Backend instance, got {name!r}")
    backends = available_backends()
    entry = backends.get(name)
    if entry is None:
        raise BackendNotFoundError(
            f"unknown backend {name!r}; choose one of: {', '.join(sorted(backends))}"
        )
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = entry.install_hint or f'pip install "titanicml[{name}]"'
        raise BackendUnavailableError(
            f"the {name!r} backend needs packages that are not installed ({exc.name or exc}); "
            f"run: {hint}"
        ) from exc
    return getattr(module, class_name)(**options)
