"""The signed manifest of a model directory: written on save, checked before any load.

:mod:`titanicml.model.signing` does the hashing, signing and checking (it also
runs on its own, from a model's entry scripts); this module is titanicml's side
of it: the workspace's keys (:func:`titanicml.config.keys_dir`), and trusting
the key of someone else's models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from titanicml.config import keys_dir
from titanicml.exceptions import ConfigError
from titanicml.model.signing import (
    MANIFEST_NAME,
    TRUSTED_DIR,
    fingerprint,
    key_text,
    load_signing_key,
    manifest_key,
    parse_key,
    sign_model_dir,
    trusted_keys,
    verify_model_dir,
)

__all__ = [
    "MANIFEST_NAME",
    "TrustedKey",
    "list_trusted_keys",
    "signing_public_key",
    "trust_key",
    "verify_manifest",
    "write_manifest",
]


class TrustedKey(NamedTuple):
    """A public key trusted by the workspace: ``ed25519:...``, its short name, its file."""

    key: str
    fingerprint: str
    path: Path


def write_manifest(root: Path, workspace: str | Path | None = None) -> dict[str, str]:
    """Hash every file below ``root`` into a signed ``MANIFEST.json``; return the hashes.

    The workspace's signing key is made on the first save (``keys/signing.key``, 0600).
    """
    return sign_model_dir(Path(root), keys_dir(workspace))["sha256"]


def verify_manifest(
    root: Path,
    workspace: str | Path | None = None,
    expected_key: str | None = None,
    also_trusted: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check a model directory's signature, signer and files; return its manifest.

    Raises
    ------
    ModelError
        If the directory has no manifest.
    UntrustedModelError
        If the model is not signed, or by a key the workspace does not trust.
    ModelIntegrityError
        If the signature does not match, or a file was changed, removed or added.
    """
    return verify_model_dir(Path(root), keys_dir(workspace), expected_key, also_trusted)


def signing_public_key(workspace: str | Path | None = None) -> str:
    """Return the public key of the workspace's signing key (made if there is none)."""
    return key_text(load_signing_key(keys_dir(workspace), create=True).public_key())


def trust_key(source: str | Path, workspace: str | Path | None = None) -> TrustedKey:
    """Trust a public key, given as ``ed25519:<base64>`` or as a model directory it signed.

    The key is written to ``<workspace>/keys/trusted/<fingerprint>.pub``; models it
    signs then load in this workspace.

    Raises
    ------
    ConfigError
        If ``source`` is neither a model directory nor a public key.
    ModelIntegrityError
        If the directory's manifest signature does not match its content.
    UntrustedModelError
        If the directory's model is not signed.
    """
    text = str(source).strip()
    path = Path(text).expanduser()
    if path.is_dir() or path.name == MANIFEST_NAME:
        root = path if path.is_dir() else path.parent
        key = manifest_key(root)
        note = f"signed {root.absolute()}"
    else:
        try:
            parse_key(text)
        except ValueError:
            raise ConfigError(
                f"{text!r} is neither a model directory nor a public key: give a model "
                "folder, or the key as titanicml model trust-key prints it (ed25519:<base64>)"
            ) from None
        key, note = text, "given on the command line"
    keys_dir(workspace).mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = keys_dir(workspace) / TRUSTED_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{fingerprint(key)}.pub"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    target.write_text(f"{key} trusted {stamp}, {note}\n", encoding="utf-8")
    return TrustedKey(key, fingerprint(key), target)


def list_trusted_keys(workspace: str | Path | None = None) -> dict[str, str]:
    """Return every key trusted in the workspace, with where its trust comes from."""
    return trusted_keys(keys_dir(workspace))
