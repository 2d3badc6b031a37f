"""References to registered model versions: ``name@champion``, ``models:/name/3``, ...

::

    titanic-model                      the latest version
    titanic-model@latest               the latest version
    titanic-model:3, titanic-model@3   version 3
    titanic-model@champion             the version the alias points at
    models:/titanic-model/3            MLflow's spellings
    models:/titanic-model@champion
    azureml:titanic-model:3            Azure ML's spellings
    azureml:titanic-model@latest

The grammar is shared with data assets (:mod:`titanicml._utils.references`); this
module adds the model registry's rules: aliases, and MLflow's ``models:/`` URIs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from titanicml._utils.references import NAME_PATTERN, split_reference
from titanicml.exceptions import ConfigError, ModelError

__all__ = [
    "ALIAS_HINT",
    "ALIAS_PATTERN",
    "NAME_PATTERN",
    "REGISTER_HINT",
    "ModelReference",
    "check_alias",
    "check_name",
    "is_model_reference",
    "parse_model_reference",
]

ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
VERSION_LIKE = re.compile(r"^[vV]?\d+$")
SPELLINGS = (
    "write NAME, NAME@latest, NAME:VERSION, NAME@ALIAS, models:/NAME/VERSION, "
    "models:/NAME@ALIAS or azureml:NAME:VERSION"
)
REGISTER_HINT = "titanicml model register --name {name} --run RUN_ID (or --path DIR or FILE.pkl)"
ALIAS_HINT = "titanicml model alias set {name} ALIAS --version N"


@dataclass(frozen=True)
class ModelReference:
    """A parsed reference to one version of a registered model.

    Attributes
    ----------
    name : str
        Registered model name.
    version : int, optional
        The version asked for; ``None`` with ``alias`` ``None`` means the latest.
    alias : str, optional
        The alias asked for.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@latest"


def parse_model_reference(text: str) -> ModelReference:
    """Parse a reference to a registered model version.

    Parameters
    ----------
    text : str
        ``name``, ``name@latest``, ``name:3``, ``name@3``, ``name@alias``,
        ``models:/name/3``, ``models:/name/latest``, ``models:/name@alias``,
        ``azureml:name:3``, ``azureml:name@latest``, ``azureml:name@alias``.

    Raises
    ------
    ModelError
        If the text is none of these spellings.
    """
    parts = split_reference(text)
    if parts is None:
        raise ModelError(f"{text!r} is not a registered model reference; {SPELLINGS}")
    name, label, version = parts.name, parts.label, parts.version
    uri = parts.scheme == "models"
    if version is not None:
        if version.isdigit() and int(version) > 0:
            return ModelReference(name, version=int(version))
        if version.lower() == "latest" and uri:
            return ModelReference(name)
        if version and version[0].isalpha() and uri:
            raise ModelError(
                f"{text!r}: model stages ({version}) are not supported; "
                f"use an alias, models:/{name}@ALIAS, or a version, models:/{name}/N"
            )
        raise ModelError(
            f"{text!r}: the version must be a number from 1; "
            f"use {name}@latest for the latest version"
        )
    if label is None or label.lower() == "latest":
        return ModelReference(name)
    if VERSION_LIKE.match(label):
        number = int(label.lstrip("vV"))
        if number > 0:
            return ModelReference(name, version=number)
    if ALIAS_PATTERN.match(label):
        return ModelReference(name, alias=label)
    raise ModelError(
        f"{text!r}: {label!r} is neither a version nor an alias (aliases start with a "
        f"letter, then letters, digits, '_' or '-'); {SPELLINGS}"
    )


def is_model_reference(text: str) -> bool:
    """Tell whether a string is spelled like a registered model reference."""
    try:
        parse_model_reference(text)
    except ModelError:
        return False
    return True


def check_name(name: str) -> None:
    """Raise :class:`~titanicml.exceptions.ConfigError` for an invalid model name."""
    if not NAME_PATTERN.match(name or ""):
        raise ConfigError(
            f"invalid model name {name!r}: use letters, digits, '_', '.' and '-', starting "
            "with a letter or digit, at most 255 characters"
        )


def check_alias(alias: str) -> None:
    """Raise :class:`~titanicml.exceptions.ConfigError` for an invalid or reserved alias."""
    if (alias or "").lower() == "latest":
        raise ConfigError(
            "'latest' cannot be an alias: it is reserved for the latest version "
            "(NAME@latest); choose a name such as champion or staging"
        )
    if not ALIAS_PATTERN.match(alias or ""):
        raise ConfigError(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '_' or "
            "'-' (at most 255 characters)"
        )
    if VERSION_LIKE.match(alias):
        raise ConfigError(
            f"invalid alias {alias!r}: it reads as a version number; choose a name "
            "such as champion or staging"
        )
