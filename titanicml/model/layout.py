"""The files of a titanicml model directory, and loading its fitted model.

::

    MLmodel, python_model.pkl, requirements.txt, ...   MLflow's own files
    artifacts/model.joblib                             the fitted TabularModel
    code/titanicml/                                    the package, for MLflow to import
    titanicml/metadata.json                            task, target, metrics, spec, data
    titanicml/{leaderboard,features,data_checks}.csv   what the search found
    titanicml/profile.json                             training profile (drift reference)
    titanicml/oof.parquet                              out-of-fold predictions on the training rows
    titanicml/holdout.parquet                          the rows set apart before the search
    score.py, azure/*.yml                              Azure ML deployment files
    MANIFEST.json                                      sha256 of every file, signed

Loading verifies the manifest's signature, its signer and every file
(:mod:`titanicml.model.signing`) before anything is unpickled, then unpickles the
verified bytes of ``model.joblib`` through an allow-list
(:mod:`titanicml.model.unpickle`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ModelError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.model.predictor import TabularModel

__all__ = [
    "HOLDOUT_FILE",
    "METADATA_FILE",
    "META_DIR",
    "MODEL_ARTIFACT",
    "MODEL_FILE",
    "OOF_FILE",
    "PROFILE_FILE",
    "load_model_dir",
    "load_model_file",
    "read_holdout",
    "read_metadata",
    "read_oof",
]

MODEL_FILE = "model.joblib"
#: Key of the fitted model in the pyfunc flavor's ``artifacts``.
MODEL_ARTIFACT = "model"
META_DIR = "titanicml"
METADATA_FILE = f"{META_DIR}/metadata.json"
PROFILE_FILE = f"{META_DIR}/profile.json"
#: Out-of-fold predictions of the selected model on its training rows (absent: none made).
OOF_FILE = f"{META_DIR}/oof.parquet"
#: The rows set apart before the search (``holdout``), every column, target included.
HOLDOUT_FILE = f"{META_DIR}/holdout.parquet"


def load_model_file(path: Path, expected_sha256: str | None = None) -> TabularModel:
    """Unpickle the fitted model of a verified model directory, through the allow-list.

    ``expected_sha256`` is the file's hash in the verified manifest: the bytes
    unpickled are the bytes checked.
    """
    from titanicml.model.unpickle import load_pickled_model

    return load_pickled_model(path, expected_sha256)


def load_model_dir(
    root: Path,
    workspace: str | Path | None = None,
    expected_key: str | None = None,
    also_trusted: tuple[str, ...] = (),
) -> TabularModel:
    """Verify a model directory (signature, signer, every file), then load its fitted model.

    Parameters
    ----------
    root : Path
        The model directory.
    workspace : str or Path, optional
        Workspace whose keys are trusted (see :func:`titanicml.config.workspace_dir`).
    expected_key : str, optional
        The public key the model must be signed with (a registered version's).
    also_trusted : tuple of str
        Public keys trusted for this load only (a job's output that this process
        submitted).

    Raises
    ------
    ModelError
        If ``root`` holds no MLflow model or no manifest;
        :class:`~titanicml.exceptions.UntrustedModelError` if it is unsigned or signed
        by a key the workspace does not trust;
        :class:`~titanicml.exceptions.ModelIntegrityError` if a file was changed;
        :class:`~titanicml.exceptions.UnsafePickleError` if the pickle names anything
        outside the allow-list.
    """
    from titanicml.model.manifest import verify_manifest

    root = Path(root)
    if not (root / "MLmodel").is_file():
        raise ModelError(f"no MLflow model at {root}: it has no MLmodel file")
    manifest = verify_manifest(root, workspace, expected_key, also_trusted)
    name = f"artifacts/{MODEL_FILE}"
    if name not in manifest["sha256"]:
        raise ModelError(f"model at {root} has no {name}; re-export it from its run or registry")
    return load_model_file(root / name, manifest["sha256"][name])


def read_metadata(root: Path) -> dict[str, Any] | None:
    """Return ``titanicml/metadata.json`` of a model directory, ``None`` if unreadable."""
    try:
        return json.loads((root / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_oof(root: Path) -> pd.DataFrame | None:
    """Return the out-of-fold predictions saved with a model, ``None`` if it has none.

    Columns ``label``, ``prediction`` and, for classifiers, ``probability_<class>`` per
    class; one row per training row the model was fitted on, in their order (rows
    without a target dropped). ``metadata.json``'s ``oof`` says how they were made, or
    why there are none. Read a directory already verified (:func:`load_model_dir`).
    """
    import pandas as pd

    path = Path(root) / OOF_FILE
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def read_holdout(root: Path) -> pd.DataFrame | None:
    """Return the rows set apart before the model's search, ``None`` if there were none.

    Every column of the training table, target included (``metadata.json``'s
    ``holdout`` gives the share, the row count and the model's scores on them). Read a
    directory already verified (:func:`load_model_dir`).
    """
    import pandas as pd

    path = Path(root) / HOLDOUT_FILE
    if not path.is_file():
        return None
    return pd.read_parquet(path)
