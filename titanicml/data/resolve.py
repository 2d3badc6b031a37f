"""What a user passes as data (a DataFrame, a file, an asset reference), made a table.

:func:`resolve_data` is the one entry point the Trainer, job files and the Azure
backend use; :class:`DataRef` is the provenance logged with every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.data.assets import is_reference, load_asset
from titanicml.data.io import frame_fingerprint, read_table
from titanicml.exceptions import ColumnError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataRef", "resolve_data"]


@dataclass(frozen=True)
class DataRef:
    """Where training data came from, and a hash of its content.

    Attributes
    ----------
    source : str
        A file path, an asset reference, or ``"<DataFrame>"``.
    sha256 : str
        Hash of the table's content (column names, dtypes and values).
    n_rows, n_columns : int
        Shape of the table.
    asset : str, optional
        ``name@version`` when the data came from a registered data asset.
    """

    source: str
    sha256: str
    n_rows: int
    n_columns: int
    asset: str | None = None

    def to_params(self) -> dict[str, Any]:
        """Return the reference as MLflow parameters."""
        params = {
            "data_source": self.source,
            "data_sha256": self.sha256,
            "data_rows": self.n_rows,
            "data_columns": self.n_columns,
        }
        if self.asset:
            params["data_asset"] = self.asset
        return params


def resolve_data(data: Any, workspace: str | Path | None = None) -> tuple[pd.DataFrame, DataRef]:
    """Turn what a user passed as data into a DataFrame and a :class:`DataRef`.

    Parameters
    ----------
    data : DataFrame, str or Path
        A DataFrame, the path of a CSV or Parquet file (or a folder of them), or a
        registered data asset's reference (``name@latest``, ``name@3``, ``name:3``,
        ``azureml:name...``) when no file of that name exists.
    workspace : str or Path, optional
        Workspace of data assets (default ``$TITANICML_HOME`` or ``./.titanicml``).
    """
    import pandas as pd

    asset = None
    if isinstance(data, pd.DataFrame):
        frame, source, digest = data, "<DataFrame>", None
    elif isinstance(data, str) and not Path(data).exists() and is_reference(data):
        frame, loaded = load_asset(data, workspace)
        source, digest, asset = data, loaded.sha256, loaded.reference
    elif isinstance(data, str | Path):
        frame, source, digest = read_table(data), str(data), None
    else:
        raise DataError(
            f"cannot train on a {type(data).__name__}; "
            "give a pandas DataFrame, a CSV/Parquet path or a data asset reference"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError("the data is empty; give a table with a target column and some rows")
    frame = frame.rename(columns=str)
    if frame.columns.has_duplicates:
        counts = frame.columns.value_counts()
        repeated = counts[counts > 1].items()
        listed = ", ".join(f"{name!r} ({count} times)" for name, count in repeated)
        raise ColumnError(
            f"the data has repeated column names: {listed}; give each column its own name "
            "(frame.columns = [...]) before training"
        )
    ref = DataRef(
        source,
        digest or frame_fingerprint(frame),
        int(frame.shape[0]),
        int(frame.shape[1]),
        asset=asset,
    )
    return frame, ref
