"""The training table as an Azure ML MLTable data asset.

titanicml writes the data folder itself: ``data.csv`` and an ``MLTable`` file
that reads it (PyYAML, no ``mltable`` package needed), then registers the folder
with ``ml_client.data.create_or_update``, which uploads it to the workspace's
default datastore.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.data.resolve import DataRef
    from titanicml.spec import TrainSpec

__all__ = [
    "DATA_FILE",
    "MLTABLE_FILE",
    "asset_identity",
    "mltable_document",
    "register_mltable",
    "training_table",
    "write_mltable",
]

DATA_FILE = "data.csv"
MLTABLE_FILE = "MLTable"
DEFAULT_ASSET_NAME = "titanicml-training-data"


def mltable_document(data_file: str = DATA_FILE) -> dict[str, Any]:
    """Return the MLTable definition that reads ``data_file`` (CSV with a header row)."""
    return {
        "paths": [{"file": f"./{data_file}"}],
        "transformations": [
            {
                "read_delimited": {
                    "delimiter": ",",
                    "header": "all_files_same_headers",
                    "encoding": "utf8",
                }
            }
        ],
    }


def training_table(frame: pd.DataFrame, spec: TrainSpec) -> pd.DataFrame:
    """Return the columns Azure ML trains on: all but the excluded and dropped ones.

    Azure AutoML has no setting that drops a column, so the columns the user
    excluded and those the data checks dropped are left out of the uploaded table.
    """
    removed = set(spec.exclude) | set(spec.dropped)
    return frame[[c for c in frame.columns if c not in removed]]


def write_mltable(frame: pd.DataFrame, folder: str | Path) -> Path:
    """Write ``frame`` as ``data.csv`` plus an ``MLTable`` file into ``folder``; return it."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / DATA_FILE, index=False)
    (folder / MLTABLE_FILE).write_text(yaml.safe_dump(mltable_document(), sort_keys=False))
    return folder


def asset_identity(data: DataRef, table: pd.DataFrame, full_width: int) -> tuple[str, str]:
    """Return the name and version under which the table is registered on Azure ML.

    A local data asset ``name@version`` keeps its name and version when the table is
    uploaded whole; when columns or rows (a ``holdout``) were left out the version gets
    the hash of the uploaded table (``3-1a2b3c4d``), since an Azure version never
    changes content.
    Other data is registered as ``titanicml-training-data`` versioned by content hash.
    """
    from titanicml.data.assets import parse_reference
    from titanicml.data.io import frame_fingerprint

    digest = frame_fingerprint(table)[:12]
    if data.asset:
        name, version = parse_reference(data.asset)
        if version is not None:
            same = table.shape[1] == full_width and table.shape[0] == data.n_rows
            return name, str(version) if same else f"{version}-{digest[:8]}"
        return name, digest
    return DEFAULT_ASSET_NAME, digest


def register_mltable(ml_client: Any, folder: Path, name: str, version: str) -> Any:
    """Upload ``folder`` and register it as an ``mltable`` data asset; return the asset."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    asset = Data(
        name=name,
        version=version,
        type=AssetTypes.MLTABLE,
        path=str(folder),
        description="Training table uploaded by titanicml",
        tags={"titanicml": "training-data"},
    )
    return ml_client.data.create_or_update(asset)
