"""Endpoint keys: a primary and a secondary key, as Azure ML's key-auth endpoints have.

Keys live in ``<workspace>/endpoints/<name>/keys.json`` (mode 0600), made on
first use. ``TITANICML_ENDPOINT_KEY`` or ``--key`` sets the primary key
instead. Requests send ``Authorization: Bearer <key>``; the comparison takes
constant time.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from titanicml.exceptions import ConfigError

__all__ = ["ENV_KEY", "EndpointKeys", "authorized", "load_keys", "regenerate_key"]

ENV_KEY = "TITANICML_ENDPOINT_KEY"
_NAME_RULE = "3-32 characters: letters, digits and '-', starting with a letter"


@dataclass(frozen=True)
class EndpointKeys:
    """The two keys of an endpoint."""

    primary: str
    secondary: str

    def to_dict(self) -> dict[str, str]:
        """Azure's spelling: ``primaryKey`` and ``secondaryKey``."""
        return {"primaryKey": self.primary, "secondaryKey": self.secondary}


def _keys_file(name: str, workspace: str | Path | None) -> Path:
    from titanicml.config import workspace_dir

    if not (3 <= len(name) <= 32 and name[0].isalpha() and name.replace("-", "").isalnum()):
        raise ConfigError(f"invalid endpoint name {name!r}; use {_NAME_RULE}")
    return workspace_dir(workspace) / "endpoints" / name / "keys.json"


def load_keys(
    name: str, workspace: str | Path | None = None, key: str | None = None
) -> EndpointKeys:
    """Return the endpoint's keys, creating them on first use.

    Parameters
    ----------
    name : str
        Endpoint name.
    workspace : str or Path, optional
        Workspace folder (default ``TITANICML_HOME`` or ``./.titanicml``).
    key : str, optional
        A primary key to use instead of the stored one (``--key``); defaults to
        ``TITANICML_ENDPOINT_KEY`` when that is set.
    """
    path = _keys_file(name, workspace)
    if path.exists():
        stored = json.loads(path.read_text())
        keys = EndpointKeys(stored["primaryKey"], stored["secondaryKey"])
    else:
        keys = EndpointKeys(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        _write(path, keys)
    override = key or os.environ.get(ENV_KEY)
    if override:
        if len(override) < 16:
            raise ConfigError("an endpoint key must be at least 16 characters long")
        keys = EndpointKeys(override, keys.secondary)
    return keys


def regenerate_key(name: str, which: str, workspace: str | Path | None = None) -> EndpointKeys:
    """Replace the primary or the secondary key with a new random one."""
    if which not in ("primary", "secondary"):
        raise ConfigError(f"key type must be 'primary' or 'secondary', got {which!r}")
    keys = load_keys(name, workspace)
    fresh = secrets.token_urlsafe(32)
    keys = (
        EndpointKeys(fresh, keys.secondary)
        if which == "primary"
        else (EndpointKeys(keys.primary, fresh))
    )
    _write(_keys_file(name, workspace), keys)
    return keys


def _write(path: Path, keys: EndpointKeys) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys.to_dict(), handle)
    os.replace(temporary, path)


def authorized(header: str | None, keys: EndpointKeys) -> bool:
    """Whether an ``Authorization`` header carries one of the keys (constant-time compare)."""
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    token_bytes = token.strip().encode()
    primary = hmac.compare_digest(token_bytes, keys.primary.encode())
    secondary = hmac.compare_digest(token_bytes, keys.secondary.encode())
    return primary or secondary
