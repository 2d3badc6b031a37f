"""The files of a titanicml model directory, and loading its fitted model.

::

    MLmodel, python_model.pkl, requirements.txt, ...   MLflow's own files
    artifacts/model.joblib                             the fitted TabularModel
    code/titanicml/                                    the package, for MLflow to import
    titanicml/metadata.json                            task, target, metrics, spec, data
    titanicml/{leaderboard,features,data_checks}.csv   what the search found
    titanicml/profile.json                             training profile (drift reference)
    score.py, azure/*.yml                              Azure ML deployment files
    MANIFEST.json                                      sha256 of every file
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ModelError

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel

__all__ = [
    "METADATA_FILE",
    "META_DIR",
    "MODEL_ARTIFACT",
    "MODEL_FILE",
    "PROFILE_FILE",
    "load_model_dir",
    "load_model_file",
    "read_metadata",
]

MODEL_FILE = "model.joblib"
#: Key of the fitted model in the pyfunc flavor's ``artifacts``.
MODEL_ARTIFACT = "model"
META_DIR = "titanicml"
METADATA_FILE = f"{META_DIR}/metadata.json"
PROFILE_FILE = f"{META_DIR}/profile.json"


def load_model_file(path: Path) -> TabularModel:
    """Unpickle the fitted model object of a (verified) model directory."""
    import joblib

    return joblib.load(path)


def load_model_dir(root: Path) -> TabularModel:
    """Verify a model directory against its manifest, then load its fitted model.

    Raises
    ------
    ModelError
        If ``root`` holds no MLflow model or no manifest;
        :class:`~titanicml.exceptions.ModelIntegrityError` if a file was changed.
    """
    from titanicml.model.manifest import verify_manifest

    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {root}: it has no MLmodel file")
    verify_manifest(root)
    return load_model_file(root / "artifacts" / MODEL_FILE)


def read_metadata(root: Path) -> dict[str, Any] | None:
    """Return ``titanicml/metadata.json`` of a model directory, ``None`` if unreadable."""
    try:
        return json.loads((root / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
