"""The model registry, mirroring Azure ML's ``az ml model``, on MLflow's model registry.

==================  ==========================================================
module              holds
==================  ==========================================================
``references``      ``name@champion``, ``name:3``, ``models:/name/3``: parsing
``versions``        reading: list, show, resolve a reference to its version
``register``        writing: register a version, set and delete aliases
``pickles``         a plain pickle registered: its source run, signature, signed wrap
``local``           reference -> local model directory; load and export models
==================  ==========================================================
"""

from __future__ import annotations

from titanicml.exceptions import ModelNotFoundError
from titanicml.registry.local import export_model, load_model, local_model_dir
from titanicml.registry.references import (
    ModelReference,
    is_model_reference,
    parse_model_reference,
)
from titanicml.registry.register import (
    REGISTRY_EXPERIMENT,
    delete_alias,
    register_model,
    set_alias,
)
from titanicml.registry.versions import (
    ModelSummary,
    RegisteredModel,
    get_model,
    list_models,
    list_versions,
    resolve_model_uri,
)

__all__ = [
    "REGISTRY_EXPERIMENT",
    "ModelNotFoundError",
    "ModelReference",
    "ModelSummary",
    "RegisteredModel",
    "delete_alias",
    "export_model",
    "get_model",
    "is_model_reference",
    "list_models",
    "list_versions",
    "load_model",
    "local_model_dir",
    "parse_model_reference",
    "register_model",
    "resolve_model_uri",
    "set_alias",
]
