"""Endpoint keys: a primary and a secondary key, as Azure ML's key-auth endpoints have.

An endpoint has one key set, kept in ``<workspace>/endpoints/<name>/keys.json``
(mode 0600) and made on first use: what the running endpoint accepts is what
``get-credentials`` prints. ``--key`` or ``TITANICML_ENDPOINT_KEY`` replaces the
set with that one key (no secondary) when the endpoint starts; ``regenerate-keys``
replaces one key, and a running endpoint takes the change within a second.
Requests send ``Authorization: Bearer <key>``; the comparison takes constant time.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from titanicml.exceptions import ConfigError

__all__ = [
    "ENV_KEY",
    "EndpointKeys",
    "KeyFile",
    "authorized",
    "keys_file",
    "load_keys",
    "read_keys",
    "regenerate_key",
]

ENV_KEY = "TITANICML_ENDPOINT_KEY"
_NAME_RULE = "3-32 characters: letters, digits and '-', starting with a letter"
# How often a running endpoint looks for a changed keys file.
_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class EndpointKeys:
    """The keys of an endpoint; ``secondary`` is ``None`` when one key was set (``--key``)."""

    primary: str
    secondary: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Azure's spelling: ``primaryKey`` and ``secondaryKey``."""
        return {"primaryKey": self.primary, "secondaryKey": self.secondary}

    def current(self) -> EndpointKeys:
        """Return the keys in force (these: a fixed set)."""
        return self


class KeyFile:
    """An endpoint's key set as its keys file holds it, re-read when the file changes.

    Parameters
    ----------
    path : Path
        The keys file.
    keys : EndpointKeys
        The keys the file holds now.
    """

    def __init__(self, path: Path, keys: EndpointKeys) -> None:
        self.path = path
        self._keys = keys
        self._stamp = _stamp(path)
        self._next_check = time.monotonic() + _RECHECK_SECONDS

    def current(self) -> EndpointKeys:
        """Return the keys in force, looking at the file at most once a second."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + _RECHECK_SECONDS
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                try:
                    self._keys = _read(self.path)
                    self._stamp = stamp
                except (OSError, ValueError, KeyError, TypeError):
                    pass  # unreadable or removed: keep serving the last good keys
        return self._keys


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def keys_file(name: str, workspace: str | Path | None = None) -> Path:
    """Return where the keys of endpoint ``name`` are kept (the name is checked)."""
    from titanicml.config import workspace_dir

    if not (3 <= len(name) <= 32 and name[0].isalpha() and name.replace("-", "").isalnum()):
        raise ConfigError(f"invalid endpoint name {name!r}; use {_NAME_RULE}")
    return workspace_dir(workspace) / "endpoints" / name / "keys.json"


def _read(path: Path) -> EndpointKeys:
    stored = json.loads(path.read_text())
    return EndpointKeys(str(stored["primaryKey"]), stored.get("secondaryKey") or None)


def read_keys(name: str, workspace: str | Path | None = None) -> EndpointKeys:
    """Return the endpoint's key set, making one on first use (``get-credentials``)."""
    path = keys_file(name, workspace)
    if path.exists():
        return _read(path)
    keys = EndpointKeys(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
    _write(path, keys)
    return keys


def load_keys(
    name: str, workspace: str | Path | None = None, key: str | None = None
) -> EndpointKeys:
    """Return the key set an endpoint starts with, making it on first use.

    Parameters
    ----------
    name : str
        Endpoint name.
    workspace : str or Path, optional
        Workspace folder (default ``TITANICML_HOME`` or ``./.titanicml``).
    key : str, optional
        The endpoint's one key (``--key``); defaults to ``TITANICML_ENDPOINT_KEY`` when
        that is set. It replaces the stored set, so that ``get-credentials`` prints it
        and no other key is accepted.
    """
    override = key or os.environ.get(ENV_KEY)
    if not override:
        return read_keys(name, workspace)
    if len(override) < 16 or override != override.strip() or " " in override:
        raise ConfigError(
            "an endpoint key must be at least 16 characters long, without spaces; "
            "pass a longer --key or leave it out to use generated keys"
        )
    keys = EndpointKeys(override)
    path = keys_file(name, workspace)
    if not path.exists() or _read(path) != keys:
        _write(path, keys)
    return keys


def regenerate_key(name: str, which: str, workspace: str | Path | None = None) -> EndpointKeys:
    """Replace the primary or the secondary key with a new random one."""
    if which not in ("primary", "secondary"):
        raise ConfigError(f"key type must be 'primary' or 'secondary', got {which!r}")
    keys = read_keys(name, workspace)
    fresh = secrets.token_urlsafe(32)
    keys = (
        EndpointKeys(fresh, keys.secondary)
        if which == "primary"
        else EndpointKeys(keys.primary, fresh)
    )
    _write(keys_file(name, workspace), keys)
    return keys


def _write(path: Path, keys: EndpointKeys) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if hasattr(os, "fchmod"):  # a leftover temporary file would keep its old mode
        os.fchmod(descriptor, 0o600)
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
    if keys.secondary is None:
        return primary
    secondary = hmac.compare_digest(token_bytes, keys.secondary.encode())
    return primary or secondary
