"""Read training data from a DataFrame, a CSV file or a Parquet file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import DataError, DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUPPORTED_SUFFIXES", "DataRef", "frame_fingerprint", "read_table", "resolve_data"]

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


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


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises
    ------
    DataFormatError
        If the file is missing, of another format, unreadable, or empty.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFormatError(
            f"no such file: {path}; check the path or register it as a data asset"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise DataFormatError(f"folder {path} holds no .csv or .parquet file")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataFormatError(
            f"unsupported file type {suffix or '(none)'!r} for {path}; give a .csv or .parquet file"
        )
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path} is empty; give a file with a header row and data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(f"cannot read {path} as {suffix[1:]}: {first_line}") from None
    if frame.empty:
        raise DataFormatError(f"{path} has no data rows; give a file with at least a few rows")
    return frame


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Hash a DataFrame's column names, dtypes and values (order-sensitive)."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


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

    from titanicml.data.assets import is_reference, load_asset

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
    ref = DataRef(
        source,
        digest or frame_fingerprint(frame),
        int(frame.shape[0]),
        int(frame.shape[1]),
        asset=asset,
    )
    return frame, ref
