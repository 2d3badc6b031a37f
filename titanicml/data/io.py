"""Read tables from CSV and Parquet files, and fingerprint them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from titanicml.exceptions import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUPPORTED_SUFFIXES", "frame_fingerprint", "read_table"]

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


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
