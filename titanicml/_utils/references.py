"""The grammar of references to versioned assets, shared by data assets and models.

Azure ML and MLflow spell a version of a named asset in several ways; titanicml
accepts all of them wherever it takes data or a model::

    NAME                  NAME@latest           NAME@3 / NAME@v3 / NAME:3
    NAME@LABEL            azureml:NAME...       (each of the above, prefixed)
    models:/NAME/3        models:/NAME/latest   models:/NAME@LABEL

:func:`split_reference` cuts a text into its parts; what a label may be (only
``latest`` and numbers for data, aliases too for models) is the caller's rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["NAME", "NAME_PATTERN", "ReferenceParts", "looks_like_reference", "split_reference"]

#: Azure ML's rule for asset names: letters, digits, "_", "." and "-", at most 255.
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"
NAME_PATTERN = re.compile(rf"^{NAME}$")
# NAME | NAME@label | NAME:version, optionally prefixed with "azureml:"
_SHORT = re.compile(
    rf"^(?P<scheme>azureml:)?(?P<name>{NAME})(?:@(?P<label>[^@:/]*)|:(?P<version>[^@:/]*))?$"
)
# models:/NAME/version | models:/NAME@label
_MODELS_URI = re.compile(
    rf"^models:/(?P<name>{NAME})(?:@(?P<label>[^@:/]*)|/(?P<version>[^@:/]*))$"
)
# What is taken for a reference rather than a path: NAME@label, NAME:N, azureml:..., models:/...
_REFERENCE_LIKE = re.compile(rf"^(?:azureml:.*|models:/.*|{NAME}(?:@[A-Za-z0-9_-]+|:\d+))$")


@dataclass(frozen=True)
class ReferenceParts:
    """A reference cut into its parts, before any rule about labels.

    Attributes
    ----------
    scheme : {"", "azureml", "models"}
        The prefix it was written with.
    name : str
        The asset name.
    label : str, optional
        What followed ``@`` (``latest``, ``3``, ``v3``, an alias), possibly empty.
    version : str, optional
        What followed ``:`` (or ``/`` in ``models:/``), possibly empty or not a number.
    """

    scheme: str
    name: str
    label: str | None = None
    version: str | None = None


def split_reference(text: str) -> ReferenceParts | None:
    """Cut a reference into its parts; ``None`` if it is none of the spellings."""
    stripped = text.strip()
    if stripped.startswith("models:"):
        match = _MODELS_URI.match(stripped)
        scheme = "models"
    else:
        match = _SHORT.match(stripped)
        scheme = "azureml" if match is not None and match["scheme"] else ""
    if match is None:
        return None
    return ReferenceParts(scheme, match["name"], match["label"], match["version"])


def looks_like_reference(text: str) -> bool:
    """Tell whether a text is spelled like a reference rather than a path.

    True for ``NAME@label``, ``NAME:N`` and anything starting with ``azureml:`` or
    ``models:/``; a bare ``NAME`` is not (it could be a file that does not exist).
    """
    return bool(_REFERENCE_LIKE.match(text.strip()))
