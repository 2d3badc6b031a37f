"""The manifest of a model directory: the sha256 of every file, checked on load."""

from __future__ import annotations

import json
from pathlib import Path

from titanicml._utils.hashing import file_sha256
from titanicml.exceptions import ModelError, ModelIntegrityError

__all__ = ["MANIFEST_NAME", "verify_manifest", "write_manifest"]

MANIFEST_NAME = "MANIFEST.json"
# Written by Python itself when the model's code is imported; never part of the model.
_IGNORED_DIRS = frozenset({"__pycache__"})
# Written by MLflow at the model's root when it downloads a ``models:/`` URI.
_IGNORED_ROOT_FILES = frozenset({"registered_model_meta"})


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name != MANIFEST_NAME
        and p.relative_to(root).as_posix() not in _IGNORED_ROOT_FILES
        and not _IGNORED_DIRS.intersection(p.relative_to(root).parts)
    )


def write_manifest(root: Path) -> dict[str, str]:
    """Hash every file below ``root`` into ``root/MANIFEST.json``; return the hashes."""
    hashes = {p.relative_to(root).as_posix(): file_sha256(p) for p in _files(root)}
    (root / MANIFEST_NAME).write_text(json.dumps({"sha256": hashes}, indent=1, sort_keys=True))
    return hashes


def verify_manifest(root: Path) -> None:
    """Check every file below ``root`` against its manifest.

    Raises
    ------
    ModelError
        If the directory has no manifest.
    ModelIntegrityError
        If a file was changed, removed or added since the model was saved.
    """
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise ModelError(
            f"{root} has no {MANIFEST_NAME}; it was not saved by titanicml (re-export the model)"
        )
    expected: dict[str, str] = json.loads(manifest.read_text())["sha256"]
    actual = {p.relative_to(root).as_posix(): p for p in _files(root)}
    missing = sorted(set(expected) - set(actual))
    added = sorted(set(actual) - set(expected))
    changed = sorted(
        name
        for name in expected.keys() & actual.keys()
        if file_sha256(actual[name]) != expected[name]
    )
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("missing", missing), ("added", added))
        if names
    ]
    if problems:
        raise ModelIntegrityError(
            f"model at {root} does not match its manifest ({'; '.join(problems)}); "
            "it may have been tampered with: re-export it from its run or registry"
        )
