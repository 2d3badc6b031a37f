"""Signed manifests: who made a model directory, and that none of its files changed.

A model's ``MANIFEST.json`` lists the sha256 of every file and is signed (Ed25519)
with the key of the workspace that saved it, ``<workspace>/keys/signing.key``
(made, mode 0600, on the first save). :func:`verify_model_dir` accepts a model
only when

1. the manifest's signature matches its content and the public key it names;
2. that key is trusted here: the workspace's own signing key, a key in
   ``<workspace>/keys/trusted/`` (``titanicml model trust-key``), or one listed in
   ``$TITANICML_TRUSTED_KEYS`` (for processes without a workspace);
3. every file matches its hash and no other file is present, ``__pycache__``
   included: a ``.pyc`` file is accepted only when its code is exactly what
   this Python compiles from the signed source beside it.

This module runs two ways: imported as ``titanicml.model.signing``, and executed
from its file by a model's entry scripts (``mlflow_entry.py``, ``score.py``)
*before* anything is imported from the model's ``code/`` folder. So it imports
only the standard library and ``cryptography``; run from its file, it raises its
own copies of titanicml's error classes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import marshal
import os
import re
import secrets
import stat
import sys
import types
from pathlib import Path
from typing import Any

if __name__ == "titanicml.model.signing":
    from titanicml.exceptions import ModelError, ModelIntegrityError, UntrustedModelError
else:  # executed from its file by an entry script: titanicml may not be imported yet

    class ModelError(ValueError):  # type: ignore[no-redef]
        """A saved model cannot be loaded or used."""

    class ModelIntegrityError(ModelError):  # type: ignore[no-redef]
        """A file of a saved model does not match the model's manifest."""

    class UntrustedModelError(ModelError):  # type: ignore[no-redef]
        """A saved model is unsigned, or signed by a key this workspace does not trust."""


__all__ = [
    "KEY_PREFIX",
    "MANIFEST_NAME",
    "TRUSTED_DIR",
    "default_keys_dir",
    "fingerprint",
    "key_text",
    "load_signing_key",
    "manifest_key",
    "parse_key",
    "read_manifest",
    "sign_model_dir",
    "trusted_keys",
    "verify_model_dir",
]

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 2
KEY_PREFIX = "ed25519:"
SIGNING_KEY_FILE = "signing.key"
TRUSTED_DIR = "trusted"
# What the signature covers: this prefix, then the manifest without its signature.
_DOMAIN = b"titanicml model manifest v2\n"
# Written by MLflow at the model's root when it downloads a ``models:/`` URI (data only).
_IGNORED_ROOT_FILES = frozenset({"registered_model_meta"})
# titanicml.config's names, repeated: this module cannot import it when run from its file.
_HOME_ENV = "TITANICML_HOME"
_DEFAULT_WORKSPACE = ".titanicml"
_KEYS_DIR = "keys"
_TRUSTED_KEYS_ENV = "TITANICML_TRUSTED_KEYS"
_PYC = re.compile(
    rf"(?P<stem>[^/]+)\.{re.escape(sys.implementation.cache_tag or '-')}"
    r"(?:\.opt-(?P<opt>[12]))?\.pyc"
)
# Python writes <name>.pyc as <name>.pyc.<digits>, then renames it.
_PYC_DRAFT = re.compile(_PYC.pattern + r"\.\d+")


def default_keys_dir() -> Path:
    """Return ``<workspace>/keys`` as :func:`titanicml.config.keys_dir` does."""
    home = os.environ.get(_HOME_ENV) or _DEFAULT_WORKSPACE
    return Path(home).expanduser().absolute() / _KEYS_DIR


# -- keys ---------------------------------------------------------------------------


def parse_key(text: str) -> Any:
    """Return the Ed25519 public key written ``ed25519:<base64>``.

    Raises
    ------
    ValueError
        If ``text`` is not such a key.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(text, str) or not text.startswith(KEY_PREFIX):
        raise ValueError(f"{text!r} is not a public key ({KEY_PREFIX}<base64>)")
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not an Ed25519 public key ({KEY_PREFIX}<base64>)") from None


def key_text(public: Any) -> str:
    """Write a public key as ``ed25519:<base64 of its 32 bytes>``."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def fingerprint(text: str) -> str:
    """Return a short name for a public key: 16 hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_signing_key(keys: Path | None = None, create: bool = False) -> Any:
    """Return the workspace's Ed25519 signing key, making it (mode 0600) if asked.

    Raises
    ------
    ModelError
        If there is no key and ``create`` is false, or the file is not a key.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = (keys or default_keys_dir()) / SIGNING_KEY_FILE
    if not path.exists():
        if not create:
            raise ModelError(f"no signing key at {path}; saving a model creates one")
        _create_signing_key(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"cannot read the signing key {path} ({exc}); restore it from a backup, or "
            "delete it to make a new one (models it signed then need titanicml model trust-key)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ModelError(f"{path} is not an Ed25519 key; delete it to make a new one")
    return key


def _create_signing_key(path: Path) -> None:
    """Write a new key, readable by its owner only; a concurrent creator's key wins."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)  # atomic, and refuses to replace a key made meanwhile
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)


def trusted_keys(keys: Path | None = None) -> dict[str, str]:
    """Return every trusted public key with where its trust comes from.

    The workspace's own signing key, the keys of ``<keys>/trusted/*.pub`` (first
    word of the file) and those of ``$TITANICML_TRUSTED_KEYS``.

    Raises
    ------
    ModelError
        If ``$TITANICML_TRUSTED_KEYS`` holds something that is not a public key.
    """
    keys = keys or default_keys_dir()
    found: dict[str, str] = {}
    for word in re.split(r"[\s,]+", os.environ.get(_TRUSTED_KEYS_ENV, "").strip()):
        if word:
            try:
                parse_key(word)
            except ValueError as exc:
                raise ModelError(f"${_TRUSTED_KEYS_ENV}: {exc}; fix or unset it") from None
            found[word] = f"${_TRUSTED_KEYS_ENV}"
    folder = keys / TRUSTED_DIR
    if folder.is_dir():
        for file in sorted(folder.glob("*.pub")):
            words = file.read_text(encoding="utf-8", errors="replace").split()
            if words and _is_key(words[0]):
                found[words[0]] = str(file)
    if (keys / SIGNING_KEY_FILE).exists():
        found[key_text(load_signing_key(keys).public_key())] = "this workspace's signing key"
    return found


def _is_key(text: str) -> bool:
    try:
        parse_key(text)
    except ValueError:
        return False
    return True


# -- the manifest -----------------------------------------------------------------------


def sign_model_dir(root: Path, keys: Path | None = None) -> dict[str, Any]:
    """Hash every file below ``root`` into a signed ``root/MANIFEST.json``; return it."""
    private = load_signing_key(keys, create=True)
    body = {
        "format": MANIFEST_FORMAT,
        "algorithm": "ed25519",
        "public_key": key_text(private.public_key()),
        "sha256": {name: _sha256(path) for name, path in sorted(_listing(root).items())},
    }
    signature = private.sign(_DOMAIN + _canonical(body))
    manifest = {**body, "signature": base64.b64encode(signature).decode("ascii")}
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    """Return the parsed ``MANIFEST.json`` of a model directory.

    Raises
    ------
    ModelError
        If the directory has none; :class:`ModelIntegrityError` if it is unreadable.
    """
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(
            f"{root} has no {MANIFEST_NAME}; it was not saved by titanicml (re-export the model)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(
            f"{path} is unreadable ({exc}); re-export the model from its run or registry"
        ) from None
    hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(hashes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()
    ):
        raise ModelIntegrityError(
            f"{path} lists no file hashes; re-export the model from its run or registry"
        )
    return manifest


def manifest_key(root: Path, manifest: dict[str, Any] | None = None) -> str:
    """Return the public key that signed a model's manifest, checking the signature.

    Raises
    ------
    UntrustedModelError
        If the manifest is not signed (saved before titanicml signed its models).
    ModelIntegrityError
        If the signature does not match the manifest.
    """
    manifest = read_manifest(root) if manifest is None else manifest
    if "signature" not in manifest:
        raise UntrustedModelError(
            f"model at {root} is not signed: its {MANIFEST_NAME} is a plain checksum list, "
            "written by a titanicml older than model signing, that anyone could have "
            "rewritten; it is refused: re-export it with this titanicml (train it again, "
            "e.g. titanicml train --output DIR, or TrainingResult.save)"
        )
    from cryptography.exceptions import InvalidSignature

    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        if body.get("format") != MANIFEST_FORMAT or body.get("algorithm") != "ed25519":
            raise ValueError("unknown manifest format")
        public = parse_key(body.get("public_key"))  # type: ignore[arg-type]
        signature = base64.b64decode(manifest["signature"], validate=True)
        public.verify(signature, _DOMAIN + _canonical(body))
    except (InvalidSignature, ValueError, TypeError):
        raise ModelIntegrityError(
            f"the signature of {Path(root) / MANIFEST_NAME} does not match its content: "
            "the manifest was changed after the model was saved (it may have been tampered "
            "with); re-export the model from its run or registry"
        ) from None
    return str(body["public_key"])


def verify_model_dir(
    root: Path,
    keys: Path | None = None,
    expected_key: str | None = None,
    also_trusted: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check a model directory's signature, its signer and every file; return the manifest.

    Nothing of the directory is imported or unpickled here.

    Parameters
    ----------
    root : Path
        The model directory.
    keys : Path, optional
        The workspace's key folder (default ``$TITANICML_HOME/keys`` or ``./.titanicml/keys``).
    expected_key : str, optional
        The key the model must be signed with (a registered version's); any trusted
        key when not given.
    also_trusted : tuple of str
        Keys trusted for this one check (the Azure backend trusts the key of its own
        job's output).

    Raises
    ------
    ModelError
        If there is no manifest; :class:`UntrustedModelError` if the model is unsigned
        or its key is not trusted; :class:`ModelIntegrityError` if the signature or a
        file does not match.
    """
    root = Path(root)
    manifest = read_manifest(root)
    key = manifest_key(root, manifest)
    if expected_key is not None and key != expected_key:
        raise ModelIntegrityError(
            f"model at {root} is signed by {key} (fingerprint {fingerprint(key)}), but it "
            f"was registered signed by {expected_key} (fingerprint {fingerprint(expected_key)}):"
            " its files were replaced after registration; register the model again"
        )
    trusted = trusted_keys(keys)
    if key not in trusted and key not in also_trusted:
        where = keys or default_keys_dir()
        raise UntrustedModelError(
            f"model at {root} is signed by key {key} (fingerprint {fingerprint(key)}), which "
            f"is not trusted here ({where} trusts its own signing key, the keys in "
            f"{where / TRUSTED_DIR} and ${_TRUSTED_KEYS_ENV}); if you trust whoever made "
            f"it, run: titanicml model trust-key {root}"
        )
    _check_files(root, manifest["sha256"])
    return manifest


def _check_files(root: Path, expected: dict[str, str]) -> None:
    actual = _listing(root)
    missing = sorted(set(expected) - set(actual))
    changed = sorted(
        n for n in expected.keys() & actual.keys() if _sha256(actual[n]) != expected[n]
    )
    unsafe = set(missing) | set(changed)
    added = sorted(
        name
        for name in set(actual) - set(expected)
        if not _is_compiled_source(root, name, expected, unsafe)
    )
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("missing", missing), ("added", added))
        if names
    ]
    if problems:
        hint = (
            " (a file in __pycache__ is accepted only when it is what Python compiles from "
            "the signed source beside it)"
            if any("__pycache__" in name for name in added)
            else ""
        )
        raise ModelIntegrityError(
            f"model at {root} does not match its manifest ({'; '.join(problems)}){hint}; "
            "it may have been tampered with: re-export it from its run or registry"
        )


def _listing(root: Path) -> dict[str, Path]:
    """Every file below ``root`` but the manifest, by POSIX path; links are refused."""
    found: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        for name in [*dirs, *names]:
            path = here / name
            relative = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise ModelIntegrityError(
                    f"model at {root} holds a symbolic link, {relative}; a titanicml model has "
                    "none: re-export it from its run or registry"
                )
            if name in names and not stat.S_ISREG(mode):
                raise ModelIntegrityError(
                    f"model at {root} holds {relative}, which is not a regular file; "
                    "re-export the model from its run or registry"
                )
            if name in names and relative not in (MANIFEST_NAME, *_IGNORED_ROOT_FILES):
                found[relative] = path
    return found


def _is_compiled_source(root: Path, name: str, expected: dict[str, str], unsafe: set[str]) -> bool:
    """Tell whether ``name`` is bytecode Python made from a listed, unchanged source."""
    parts = name.split("/")
    if len(parts) >= 2 and parts[-2] == "__pycache__" and _PYC_DRAFT.fullmatch(parts[-1]):
        return True  # being written by a process importing the model's code; never imported
    match = _PYC.fullmatch(parts[-1])
    if len(parts) < 2 or parts[-2] != "__pycache__" or match is None:
        return False
    source = "/".join([*parts[:-2], f"{match['stem']}.py"])
    if source not in expected or source in unsafe:
        return False
    data = (root / name).read_bytes()
    flags = int.from_bytes(data[4:8], "little") if len(data) >= 16 else -1
    # 0: checked by timestamp; 3: checked by source hash. Python runs an unchecked
    # hash-based file (1) without looking at its source: never accepted.
    if data[:4] != importlib.util.MAGIC_NUMBER or flags not in (0, 3):
        return False
    try:
        code = marshal.loads(data[16:])
        compiled = compile(
            (root / source).read_bytes(),
            str(root / source),
            "exec",
            dont_inherit=True,
            optimize=int(match["opt"] or 0),
        )
    except (ValueError, EOFError, TypeError, SyntaxError):
        return False
    return _code_key(code) == _code_key(compiled)


def _code_key(code: Any) -> tuple:
    """Everything of a code object that its execution depends on (not its file name)."""
    if type(code) is not types.CodeType:
        return ("not code", type(code).__name__)
    fields = (
        "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
        "co_stacksize", "co_flags", "co_code", "co_names", "co_varnames", "co_freevars",
        "co_cellvars", "co_name", "co_qualname", "co_firstlineno", "co_linetable",
        "co_exceptiontable",
    )  # fmt: skip
    return (
        *(getattr(code, f, None) for f in fields),
        tuple(_constant_key(c) for c in code.co_consts),
    )


def _constant_key(value: Any) -> Any:
    if type(value) is types.CodeType:
        return ("code", _code_key(value))
    if type(value) is tuple:
        return ("tuple", tuple(_constant_key(v) for v in value))
    if type(value) is frozenset:
        return ("frozenset", frozenset(_constant_key(v) for v in value))
    return (type(value).__name__, repr(value))


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
