"""Ground truth for recorded requests: ``titanicml monitor labels``.

Labels arrive after the answers. Each call appends one Parquet file to the
endpoint's labels dataset (``production/labels/endpoint=<E>/``, written whole):
``request_id``, ``row`` (null: every row of the request), ``label`` and
``labelled_at``. Nothing is dropped: a label whose request id (or id and row) names
no recorded request is kept too, and counted and reported, so that a typo in an id
column shows at once and a label that arrives before its request still joins later.
The join is made when reading (:func:`labelled_keys`); the latest label of a row wins.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.capture.layout import labels_dir, write_parquet_whole
from titanicml.exceptions import ColumnError, DataFormatError
from titanicml.monitor.store import labels_dataset, scan_window

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["LabelsResult", "add_labels", "count_labelled", "labelled_keys"]

_EXAMPLES = 5


@dataclass(frozen=True)
class LabelsResult:
    """What one ``monitor labels`` call added.

    Attributes
    ----------
    rows : int
        Labels read and kept.
    matched : int
        Labels whose request (and row) is recorded.
    unknown : int
        Labels whose request id (or id and row) names no recorded request.
    examples : tuple of str
        A few of the unknown ids.
    path : Path
        The Parquet file written.
    """

    rows: int
    matched: int
    unknown: int
    examples: tuple[str, ...]
    path: Path

    def summary(self) -> str:
        """Return the line the CLI prints."""
        return (
            f"added {self.rows:,} label(s): {self.matched:,} joined to recorded requests, "
            f"{self.unknown:,} unknown ({self.path})"
        )

    def unknown_sentence(self) -> str:
        """Return the warning about unknown ids."""
        shown = ", ".join(self.examples)
        return (
            f"{self.unknown:,} label(s) name no recorded request (e.g. {shown}); they are "
            "kept and join if such a request is recorded later: check the id column"
        )


def add_labels(
    endpoint: str,
    file: str | Path,
    id_column: str = "request_id",
    label_column: str = "Survived",
    row_column: str | None = None,
    workspace: str | Path | None = None,
) -> LabelsResult:
    """Append the labels of ``file`` to the endpoint's labels dataset.

    Raises
    ------
    DataFormatError
        A missing, unreadable or empty file, or an empty request id.
    ColumnError
        A missing id, label or row column, or a row column that is not whole numbers.
    ConfigError
        If the endpoint has no production data.
    """
    import pyarrow as pa

    frame = _read(Path(file), id_column, label_column, row_column)
    ids = frame[id_column]
    rows = _rows(frame, row_column, Path(file))
    table = pa.table(
        {
            "request_id": pa.array(ids.tolist(), pa.string()),
            "row": pa.array(rows, pa.int32()),
            "label": _label_array(frame[label_column]),
            "labelled_at": pa.array(
                [int(time.time() * 1_000_000)] * len(frame), pa.timestamp("us", tz="UTC")
            ),
        }
    )
    found = _known(endpoint, workspace, table)
    identifiers = table.column("request_id").to_pylist()
    unknown = [i for i, hit in zip(identifiers, found, strict=True) if not hit]
    path = _write(endpoint, workspace, table)
    return LabelsResult(
        len(frame), len(frame) - len(unknown), len(unknown), tuple(unknown[:_EXAMPLES]), path
    )


def _read(path: Path, id_column: str, label_column: str, row_column: str | None) -> pd.DataFrame:
    import pandas as pd

    from titanicml.data.io import csv_options, is_csv, read_table

    if path.is_file() and path.stat().st_size == 0:
        raise DataFormatError(f"{path} is empty; give a file with a header row and labels")
    frame = read_table(path)
    wanted = [c for c in (id_column, label_column, row_column) if c is not None]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"{path} has no column(s) {', '.join(map(repr, missing))}; it has "
            f"{', '.join(map(str, frame.columns))}: name them with --id-column, "
            "--label-column, --row-column"
        )
    if is_csv(path):  # ids as written: "007" stays "007", a long hex id stays text
        options = {**csv_options(path), "usecols": [id_column], "dtype": str}
        frame[id_column] = pd.read_csv(path, **options)[id_column]
    empty = frame[id_column].isna() | (frame[id_column].astype(str).str.strip() == "")
    if empty.any():
        raise DataFormatError(
            f"{path}: {int(empty.sum())} row(s) have no {id_column} (first: data row "
            f"{int(empty.to_numpy().nonzero()[0][0]) + 1}); every label needs its request id"
        )
    frame[id_column] = frame[id_column].astype(str)
    return frame


def _rows(frame: pd.DataFrame, row_column: str | None, path: Path) -> list[int | None]:
    import pandas as pd

    if row_column is None:
        return [None] * len(frame)
    numbers = pd.to_numeric(frame[row_column], errors="coerce")
    bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
    if bad.any():
        raise ColumnError(
            f"{path}: column {row_column!r} must hold row numbers (0, 1, ...); "
            f"{int(bad.sum())} row(s) do not"
        )
    return numbers.astype("int64").tolist()


def _label_array(series: pd.Series) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.Array.from_pandas(series)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(series.astype(str).tolist(), pa.string())


def _key(ids: pa.Array, rows: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(ids, pc.cast(rows, pa.string()), "\x1f")


def _known(endpoint: str, workspace: str | Path | None, labels: pa.Table) -> list[bool]:
    """Return, per label, whether its request (and row) is recorded; memory: the labels."""
    import pyarrow.compute as pc

    ids = labels.column("request_id").combine_chunks()
    rows = labels.column("row").combine_chunks()
    keys = _key(ids, rows)
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    for batch in scan_window(endpoint, columns=["request_id", "row"], workspace=workspace):
        request_ids, numbers = batch.column("request_id"), batch.column("row")
        hits = pc.is_in(request_ids, value_set=ids)
        if not pc.any(hits).as_py():
            continue
        seen_ids.update(pc.filter(request_ids, hits).to_pylist())
        batch_keys = pc.filter(_key(request_ids, numbers), hits)
        seen_keys.update(pc.filter(batch_keys, pc.is_in(batch_keys, value_set=keys)).to_pylist())
    found = []
    for identifier, key in zip(ids.to_pylist(), keys.to_pylist(), strict=True):
        found.append(key in seen_keys if key is not None else identifier in seen_ids)
    return found


def _write(endpoint: str, workspace: str | Path | None, table: pa.Table) -> Path:
    from titanicml._utils.staging import Staging

    folder = labels_dir(endpoint, workspace)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{int(time.time() * 1000)}-{os.getpid()}.parquet"
    with Staging(folder, prefix=".labels-") as staging:
        return write_parquet_whole(table, folder / name, staging)


def labelled_keys(endpoint: str, workspace: str | Path | None = None) -> tuple[Any, Any]:
    """Return the labelled request ids (every row) and ``id<US>row`` keys, as Arrow arrays."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dataset = labels_dataset(endpoint, workspace)
    if dataset is None:
        return pa.array([], pa.string()), pa.array([], pa.string())
    table = dataset.to_table(columns=["request_id", "row"])
    every = pc.is_null(table.column("row"))
    whole = pc.unique(pc.filter(table.column("request_id"), every).combine_chunks())
    keys = _key(table.column("request_id").combine_chunks(), table.column("row").combine_chunks())
    return whole, pc.unique(pc.drop_null(keys))


def count_labelled(endpoint: str, workspace: str | Path | None = None) -> int:
    """Return how many recorded request rows have a label."""
    import pyarrow.compute as pc

    whole, keys = labelled_keys(endpoint, workspace)
    if len(whole) == 0 and len(keys) == 0:
        return 0
    count = 0
    for batch in scan_window(endpoint, columns=["request_id", "row"], workspace=workspace):
        request_ids = batch.column("request_id")
        hits = pc.or_(
            pc.is_in(request_ids, value_set=whole),
            pc.is_in(_key(request_ids, batch.column("row")), value_set=keys),
        )
        count += pc.sum(pc.fill_null(hits, False)).as_py() or 0
    return count
