"""Read tables from CSV and Parquet files, and fingerprint them.

CSV files may be comma-, semicolon-, tab- or pipe-separated (the delimiter is sniffed
from the first KB) and compressed (``.csv.gz``, ``.csv.bz2``, ``.csv.zip``, ``.csv.xz``;
``.tsv`` likewise). Their header row is read before pandas reads the file, so that
repeated column names are refused rather than renamed (``Age``, ``Age.1``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from titanicml._utils.compression import open_decompressed
from titanicml.exceptions import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SUPPORTED_SUFFIXES",
    "TABLE_SUFFIXES",
    "check_unique_columns",
    "csv_options",
    "frame_fingerprint",
    "is_csv",
    "is_table_file",
    "read_table",
]

CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
# Compressed CSV: the suffix after .csv or .tsv, and pandas' name of the compression.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}
# Every ending of a file read_table reads.
TABLE_SUFFIXES = (
    *CSV_SUFFIXES,
    *(f"{s}{c}" for s in CSV_SUFFIXES for c in COMPRESSIONS),
    *PARQUET_SUFFIXES,
)
# The last suffix (``Path.suffix``) of those files, for listings that look at it alone;
# :func:`is_table_file` tells a ``.csv.gz`` from another ``.gz``.
SUPPORTED_SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES, *COMPRESSIONS)
_LONGEST_FIRST = sorted(TABLE_SUFFIXES, key=len, reverse=True)
# Delimiters sniffed, in the order of preference of a tie.
DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 1024


def table_suffix(path: str | Path) -> str | None:
    """Return the ending of a table file (``".csv.gz"``, ``".parquet"``), or None."""
    name = Path(path).name.lower()
    return next((s for s in _LONGEST_FIRST if name.endswith(s)), None)


def is_table_file(path: str | Path) -> bool:
    """Whether :func:`read_table` reads this file (by its name)."""
    return table_suffix(path) is not None


def is_csv(path: str | Path) -> bool:
    """Whether the file is CSV text, compressed or not (by its name)."""
    suffix = table_suffix(path)
    return suffix is not None and suffix not in PARQUET_SUFFIXES


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (or a folder of them) into a DataFrame.

    Raises
    ------
    DataFormatError
        If the file is missing, of another format, unreadable, or empty, or if two
        columns have the same name.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFormatError(
            f"no such file: {path}; check the path or register it as a data asset"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_table_file(p))
        if not files:
            raise DataFormatError(f"folder {path} holds no .csv or .parquet file")
        return pd.concat([read_table(f) for f in files], ignore_index=True)
    suffix = table_suffix(path)
    if suffix is None:
        raise DataFormatError(
            f"unsupported file type {_shown_suffix(path)!r} for {path}; "
            f"give a .csv or .parquet file ({', '.join(TABLE_SUFFIXES)})"
        )
    kind = "parquet" if suffix in PARQUET_SUFFIXES else "csv"
    options = csv_options(path) if kind == "csv" else {}  # its errors say what they found
    try:
        frame = pd.read_csv(path, **options) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path} is empty; give a file with a header row and data") from None
    except UnicodeDecodeError:
        raise DataFormatError(_not_text(path)) from None
    except (pd.errors.ParserError, csv.Error, OSError, ValueError, EOFError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(f"cannot read {path} as {kind}: {first_line}") from None
    check_unique_columns(frame.columns, str(path))
    if frame.empty:
        raise DataFormatError(f"{path} has no data rows; give a file with at least a few rows")
    return frame


def csv_options(path: str | Path) -> dict[str, Any]:
    """Return the ``pandas.read_csv`` options of a CSV file: delimiter and compression.

    The delimiter is sniffed (:class:`csv.Sniffer`) from the first KB, the
    compression follows the suffix. The header row is read too, and refused if a
    name repeats (pandas would rename the copies ``Age.1``, ...).

    Raises
    ------
    DataFormatError
        If the file is empty, cannot be decompressed, or repeats a column name.
    """
    path = Path(path)
    suffix = table_suffix(path) or path.suffix.lower()
    compression = COMPRESSIONS.get(Path(suffix).suffix)
    default = "\t" if suffix.startswith(".tsv") else ","
    try:
        with _open_text(path, compression) as text:
            head = text.read(SNIFF_BYTES)
            if "\n" not in head:  # a header longer than the sample: read all of it
                head += text.readline()
    except UnicodeDecodeError:
        raise DataFormatError(_not_text(path)) from None
    except (OSError, EOFError, ValueError) as exc:
        raise DataFormatError(f"cannot read {path} as {suffix[1:]}: {exc}") from None
    if "\x00" in head:  # text tables hold no NUL byte; pickles and programs do
        raise DataFormatError(_not_text(path))
    if not head.strip():
        raise DataFormatError(f"{path} is empty; give a file with a header row and data")
    delimiter = sniff_delimiter(head, default)
    try:
        header = next(csv.reader(io.StringIO(head), delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataFormatError(f"cannot read {path} as {suffix[1:]}: {exc}") from None
    check_unique_columns(header, str(path))
    return {"sep": delimiter, "compression": compression}


def _not_text(path: Path) -> str:
    return (
        f"{path} is not a text table: it holds binary data (a pickle, a spreadsheet or a "
        "program?), not UTF-8 text; give a CSV file (save it as CSV UTF-8) or a .parquet file"
    )


def sniff_delimiter(sample: str, default: str = ",") -> str:
    """Return the delimiter of a CSV sample: comma, semicolon, tab or pipe.

    :class:`csv.Sniffer` decides; if it cannot, or its choice leaves the header a
    single field while another delimiter splits it, the delimiter that splits the
    header into the most fields wins. A header that none splits is one column.
    """
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line is cut
    header = lines[0] if lines else ""
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        found = None
    if found is not None and _fields(header, found) > 1:
        return found
    counts = {d: _fields(header, d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == default))
    return best if counts[best] > 1 else default


def check_unique_columns(names: Any, source: str) -> None:
    """Refuse repeated column names, naming them.

    Raises
    ------
    DataFormatError
        If a name appears more than once (empty names, which pandas numbers, excepted).
    """
    counts = Counter(str(n) for n in names if str(n) != "")
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        listed = ", ".join(f"{name!r} ({counts[name]} times)" for name in repeated)
        raise DataFormatError(
            f"{source} has repeated column names: {listed}; give each column its own name"
        )


def _shown_suffix(path: Path) -> str:
    """Return the suffix a message names: ``.xlsx``, ``.txt.gz``, ``(none)``."""
    suffixes = path.suffixes[-2:] if path.suffix.lower() in COMPRESSIONS else path.suffixes[-1:]
    return "".join(suffixes) or "(none)"


def _fields(line: str, delimiter: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter), []))


@contextmanager
def _open_text(path: Path, compression: str | None) -> Iterator[IO[str]]:
    """Open a (possibly compressed) text file for reading its first lines."""
    with (
        open_decompressed(path, compression) as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as text,
    ):
        yield text


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Hash a DataFrame's column names, dtypes and values (order-sensitive)."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
