"""Batch scoring: a CSV/Parquet file or folder in, one predictions file out.

The local counterpart of Azure ML's ``az ml batch-endpoint invoke``: the input is
read in chunks, each chunk is scored with :meth:`TabularModel.predict_frame` and
appended to the output, so memory stays flat however large the input grows. The
output is written in a hidden staging folder beside it and renamed into place at the
end (:mod:`titanicml._utils.staging`): it is complete or absent.

CSV rows are parsed strictly: a row with more or fewer fields than the header (a
truncated line, garbage, an unclosed quote) stops the job naming its line, or with
``on_bad_rows="skip"`` is left out and written to ``<output>.bad-rows.csv``.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml._utils.csvrows import BadRowsError, BadRowsFile, good_frames
from titanicml._utils.staging import Staging
from titanicml.data.io import csv_options, is_csv, is_table_file
from titanicml.exceptions import ColumnError, ConfigError, DataError, DataFormatError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.capture.writer import JobCapture
    from titanicml.model.predictor import TabularModel

    Chunk = tuple[int, pd.DataFrame]  # (row number of the first row in its file, rows)

__all__ = [
    "BAD_ROWS_SUFFIX",
    "ON_BAD_ROWS",
    "OUTPUT_SUFFIXES",
    "BatchProgress",
    "BatchSummary",
    "bad_rows_path",
    "score_file",
]

OUTPUT_SUFFIXES = (".csv", ".parquet")
ROW_COLUMN = "row"
FILE_COLUMN = "file"
#: What to do with a CSV row whose number of fields is not the header's.
ON_BAD_ROWS = ("error", "skip")
#: Skipped rows go to ``<output><BAD_ROWS_SUFFIX>``.
BAD_ROWS_SUFFIX = ".bad-rows.csv"


@dataclass(frozen=True)
class BatchSummary:
    """What a batch scoring did.

    Attributes
    ----------
    rows : int
        Rows scored (and written).
    files : int
        Input files read.
    seconds : float
        Wall time of reading, scoring and writing (loading the model excluded).
    output : Path
        The predictions file.
    warnings : tuple of str
        One sentence per input file that lacks some of the model's columns
        (they were imputed), and per file whose bad rows were skipped.
    skipped_rows : int
        Bad CSV rows left out (``on_bad_rows="skip"``).
    bad_rows_output : Path, optional
        The file of the skipped rows (``<output>.bad-rows.csv``), when there are some.
    """

    rows: int
    files: int
    seconds: float
    output: Path
    warnings: tuple[str, ...] = ()
    skipped_rows: int = 0
    bad_rows_output: Path | None = None

    @property
    def rows_per_second(self) -> float:
        """Throughput of the whole call."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class BatchProgress:
    """A progress report, sent to ``on_progress`` after each chunk is written.

    Attributes
    ----------
    rows : int
        Rows scored so far, over all files.
    total_rows : int, optional
        Rows of the whole input when known without reading it (Parquet only).
    file : Path
        The file being read.
    file_number, files : int
        1-based number of that file, and the number of input files.
    elapsed : float
        Seconds since scoring started (after the model was loaded).
    """

    rows: int
    total_rows: int | None
    file: Path
    file_number: int
    files: int
    elapsed: float

    @property
    def rows_per_second(self) -> float:
        """Throughput so far."""
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0


def score_file(
    model: Any,
    input_path: str | Path,
    output_path: str | Path,
    chunk_size: int = 100_000,
    id_column: str | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    overwrite: bool = False,
    on_bad_rows: str = "error",
    capture: Callable[[TabularModel], JobCapture] | None = None,
) -> BatchSummary:
    """Score a CSV or Parquet file (or a folder of them) into one predictions file.

    Parameters
    ----------
    model : TabularModel, TrainingResult, str or Path
        A model, or anything :func:`titanicml.load_model` accepts (a model
        directory, ``runs:/<run_id>/model``, ...).
    input_path : str or Path
        A ``.csv``/``.parquet`` file, or a folder whose top-level ``.csv``/``.parquet``
        files are scored in name order.
    output_path : str or Path
        The predictions file; its suffix (``.csv`` or ``.parquet``) sets the format.
    chunk_size : int
        Rows read and scored at a time; memory grows with it, not with the input.
    id_column : str, optional
        An input column copied into the output beside the row keys.
    on_progress : callable, optional
        Called with a :class:`BatchProgress` after each chunk.
    overwrite : bool
        Replace an existing output file (and its ``.bad-rows.csv``).
    on_bad_rows : {"error", "skip"}
        A CSV row with more or fewer fields than the header: ``"error"`` stops before
        anything is scored, naming the lines; ``"skip"`` leaves it out, writes it to
        ``<output>.bad-rows.csv`` and counts it in the summary.
    capture : callable, optional
        Called with the loaded model, returns the :class:`~titanicml.capture.writer.JobCapture`
        that keeps every scored row in the production data store (closed at the end).

    Returns
    -------
    BatchSummary
        Rows, files, seconds, the output path and the skipped rows.

    Raises
    ------
    DataFormatError
        Missing, unsupported, unreadable or empty input; unsupported output suffix;
        CSV rows with the wrong number of fields (with ``on_bad_rows="error"``).
    ColumnError
        A chunk whose values do not fit the model (the message names the column,
        the file and the rows), or an absent ``id_column``.
    ConfigError
        A bad ``chunk_size``, an existing output without ``overwrite``, or an
        output that would be read as input.

    Notes
    -----
    Output columns: ``row`` (0-based row number in its file), ``file`` (folder input
    only), the ``id_column`` when given, then ``prediction`` and one
    ``probability_<class>`` per class; skipped rows leave gaps in ``row``. The output
    (and the bad-rows file) is complete or absent: it is written in a hidden staging
    folder beside it and renamed into place, and the staging folder is deleted on any
    error or interruption (or, after a kill, by the next staging in that folder).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive number of rows, got {chunk_size!r}")
    if on_bad_rows not in ON_BAD_ROWS:
        raise ConfigError(
            f"on_bad_rows must be one of {', '.join(ON_BAD_ROWS)}, got {on_bad_rows!r}"
        )
    source = Path(input_path)
    files = _input_files(source)
    target = Path(output_path).absolute()
    _check_output(target, source, overwrite, on_bad_rows)
    scorer = _resolve_model(model)
    _check_id_column(scorer, id_column)
    job = capture(scorer) if capture is not None else None
    started = time.monotonic()

    folder = source.is_dir()
    wanted, string_columns = _wanted_columns(scorer, id_column)
    total_rows = _parquet_rows(files)
    rows, warnings = 0, []
    side = bad_rows_path(target)
    kept = closing(job) if job is not None else nullcontext()
    with Staging(target.parent, prefix=f".{target.name}.") as staging, kept:
        temporary = staging.path / target.name
        bad_rows = BadRowsFile(on_bad_rows, staging.path / side.name, side, ROW_COLUMN)
        with _open_writer(temporary, target.suffix.lower()) as writer, closing(bad_rows):
            for number, path in enumerate(files, start=1):
                chunks = _read_chunks(path, chunk_size, wanted, string_columns, bad_rows)
                with closing(chunks):
                    for index, (start, frame) in enumerate(chunks):
                        if index == 0:
                            warning = _check_columns(scorer, path, frame, id_column)
                            if warning:
                                warnings.append(warning)
                        if frame.shape[0] == 0:
                            continue
                        out = _score_chunk(scorer, frame, path, start, folder, id_column)
                        first, last = out[ROW_COLUMN].iloc[0], out[ROW_COLUMN].iloc[-1]
                        writer.write(out, f"{path.name}, rows {first}-{last}")
                        if job is not None:
                            job.add(frame, out)
                        rows += len(out)
                        del frame, out  # at most one chunk alive while the next is read
                        if on_progress is not None:
                            elapsed = time.monotonic() - started
                            report = BatchProgress(
                                rows, total_rows, path, number, len(files), elapsed
                            )
                            on_progress(report)
                warning = bad_rows.warning(path)
                if warning:
                    warnings.append(warning)
        if rows == 0:
            where = f"folder {source}" if folder else str(source)
            if bad_rows.count:
                raise DataFormatError(
                    f"{where} has no good data rows: all {bad_rows.count:,} have the wrong "
                    "number of fields; fix the file"
                )
            raise DataFormatError(f"{where} has no data rows; give a file with at least one row")
        _publish(staging, temporary, target, bad_rows, overwrite)
    return BatchSummary(
        rows,
        len(files),
        time.monotonic() - started,
        target,
        tuple(warnings),
        bad_rows.count,
        side if bad_rows.count else None,
    )


def bad_rows_path(output: Path) -> Path:
    """Return where the rows skipped while scoring into ``output`` are written."""
    return output.with_name(output.name + BAD_ROWS_SUFFIX)


def _publish(
    staging: Staging, built: Path, target: Path, bad_rows: BadRowsFile, overwrite: bool
) -> None:
    """Publish the bad-rows file, then the output; with ``overwrite`` drop an old bad-rows file."""
    if bad_rows.count:
        staging.publish(bad_rows.built, bad_rows.target, overwrite=True)
    staging.publish(built, target, overwrite=True)
    if overwrite and not bad_rows.count:
        # An earlier run's: it does not describe the new output.
        bad_rows.target.unlink(missing_ok=True)


def _input_files(source: Path) -> list[Path]:
    if not source.exists():
        raise DataFormatError(f"no such file or folder: {source}; check the input path")
    if source.is_dir():
        files = sorted(
            p
            for p in source.iterdir()
            if p.is_file() and not p.name.startswith(".") and is_table_file(p)
        )
        if not files:
            raise DataFormatError(f"folder {source} holds no .csv or .parquet file")
        return files
    if not is_table_file(source):
        raise DataFormatError(
            f"unsupported input file type {source.suffix or '(none)'!r} for {source}; "
            "give a .csv or .parquet file, or a folder of them"
        )
    if source.stat().st_size == 0:
        raise DataFormatError(f"{source} is empty; give a file with a header row and data")
    return [source]


def _check_output(target: Path, source: Path, overwrite: bool, on_bad_rows: str) -> None:
    if target.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataFormatError(
            f"unsupported output file type {target.suffix or '(none)'!r} for {target}; "
            "name it .csv or .parquet"
        )
    if target.is_dir():
        raise ConfigError(f"{target} is a folder; give the path of the predictions file")
    source = source.resolve()
    if target.resolve() == source or (source.is_dir() and target.parent.resolve() == source):
        raise ConfigError(f"output {target} would be read as input; write it outside {source}")
    if target.exists() and not overwrite:
        raise ConfigError(
            f"{target} already exists; choose another path, or replace it "
            "(--overwrite, overwrite=True)"
        )
    side = bad_rows_path(target)
    if on_bad_rows == "skip" and side.exists() and not overwrite:
        raise ConfigError(
            f"{side} already exists (the bad rows of an earlier output); choose another "
            "output path, or replace both (--overwrite, overwrite=True)"
        )


def _resolve_model(model: Any) -> TabularModel:
    if isinstance(model, str | os.PathLike):
        from titanicml.registry import load_model

        return load_model(model)
    if hasattr(model, "predict_frame"):
        return model
    inner = getattr(model, "model", None)  # a TrainingResult
    if hasattr(inner, "predict_frame"):
        return inner
    raise ConfigError(
        f"cannot score with a {type(model).__name__}; give a TabularModel, a TrainingResult, "
        "a model directory or an MLflow model URI"
    )


def _output_columns(scorer: TabularModel) -> list[str]:
    from titanicml.model.predictor import PROBABILITY_PREFIX

    classes = getattr(scorer, "classes", None) or []
    return ["prediction", *(f"{PROBABILITY_PREFIX}{label}" for label in classes)]


def _check_id_column(scorer: TabularModel, id_column: str | None) -> None:
    if id_column is None:
        return
    taken = [ROW_COLUMN, FILE_COLUMN, *_output_columns(scorer)]
    if id_column in taken:
        raise ConfigError(
            f"id column {id_column!r} clashes with an output column ({', '.join(taken)}); "
            "rename it in the input"
        )


def _wanted_columns(
    scorer: TabularModel, id_column: str | None
) -> tuple[set[str] | None, set[str]]:
    """Parquet columns to read (None: all), and the CSV columns to read as text."""
    plan = getattr(scorer, "plan", None)
    if plan is None:
        return None, set()
    inputs = list(plan.inputs)
    wanted = {c.name for c in inputs}
    # Text columns are read as text in every chunk: a chunk whose tickets all look
    # like numbers must not turn "0123" into 123.0.
    strings = {c.name for c in inputs if c.dtype == "string"}
    if id_column is not None:
        wanted.add(id_column)
        strings.add(id_column)
    return wanted, strings


def _parquet_rows(files: list[Path]) -> int | None:
    if any(is_csv(p) for p in files):
        return None
    import pyarrow.parquet as pq

    total = 0
    try:
        for path in files:
            with pq.ParquetFile(path) as parquet:
                total += parquet.metadata.num_rows
    except Exception:  # unreadable: reported with its name when it is read
        return None
    return total


def _read_chunks(
    path: Path,
    chunk_size: int,
    wanted: set[str] | None,
    strings: set[str],
    bad_rows: BadRowsFile | None = None,
) -> Generator[Chunk, None, None]:
    """Yield ``(first row number, frame)`` per chunk; a header-only file yields one empty frame."""
    if is_csv(path):
        return _csv_chunks(path, chunk_size, strings, bad_rows)
    return _parquet_chunks(path, chunk_size, wanted)


def _csv_chunks(
    path: Path, chunk_size: int, strings: set[str], bad_rows: BadRowsFile | None = None
) -> Generator[Chunk, None, None]:
    import warnings

    import pandas as pd

    # The delimiter and compression read_table finds; repeated column names refused.
    options = csv_options(path)
    sep, compression = options.get("sep", ","), options.get("compression")
    start = 0
    try:
        # Strict rows: a good file costs one fast pyarrow pass; a file with rows of
        # another field count than the header is refused by line, or read skipping them.
        if bad_rows is not None and bad_rows.check(path, sep, compression):
            yield from good_frames(path, chunk_size, strings, bad_rows.add, sep, compression)
            return
        # Every column is read (no ``usecols``): with it, pandas silently drops the
        # extra fields of a ragged line instead of reporting it.
        reader = pd.read_csv(
            path, chunksize=chunk_size, engine="c", dtype=dict.fromkeys(strings, object), **options
        )
        with reader:
            while True:
                with warnings.catch_warnings():
                    # Mixed types within a column are fine: the model coerces what it reads.
                    warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                    frame = next(reader, None)
                if frame is None:
                    return
                yield start, frame
                start += frame.shape[0]
                del frame  # before the next chunk is read
    except BadRowsError as exc:
        raise DataFormatError(str(exc)) from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path} is empty; give a file with a header row and data") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise DataFormatError(
            f"cannot read {path} as csv after row {start}: {_first_line(exc)}"
        ) from None
    except csv.Error as exc:
        raise DataFormatError(f"cannot read {path} as csv: {_first_line(exc)}") from None


def _parquet_chunks(
    path: Path, chunk_size: int, wanted: set[str] | None
) -> Generator[Chunk, None, None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = 0
    try:
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            # Columnar: only the model's columns (and the id column) are read.
            columns = names if wanted is None else [n for n in names if n in wanted]
            if parquet.metadata.num_rows == 0:
                yield 0, parquet.schema_arrow.empty_table().select(columns).to_pandas()
                return
            for batch in parquet.iter_batches(batch_size=chunk_size, columns=columns):
                frame = batch.to_pandas()
                del batch
                yield start, frame
                start += frame.shape[0]
                del frame  # before the next batch is read
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(
            f"cannot read {path} as parquet after row {start}: {_first_line(exc)}"
        ) from None


def _check_columns(
    scorer: TabularModel, path: Path, frame: pd.DataFrame, id_column: str | None
) -> str | None:
    """Refuse a file without the id column or any model column; warn about absent ones."""
    present = set(map(str, frame.columns))
    if id_column is not None and id_column not in present:
        raise ColumnError(f"{path} has no id column {id_column!r}; check the column name")
    inputs = list(getattr(scorer, "input_columns", None) or [])
    missing = [c for c in inputs if c not in present]
    if inputs and len(missing) == len(inputs):
        raise ColumnError(
            f"{path} has none of the model's columns ({', '.join(inputs)}); "
            "is it the right file for this model?"
        )
    if missing:
        return (
            f"{path.name} lacks column(s) {', '.join(map(repr, missing))}; "
            "the model imputed them in every row"
        )
    return None


def _score_chunk(
    scorer: TabularModel,
    frame: pd.DataFrame,
    path: Path,
    start: int,
    folder: bool,
    id_column: str | None,
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(frame.index, pd.RangeIndex):
        numbers = np.arange(start, start + frame.shape[0], dtype=np.int64)
    else:  # rows were skipped: the frame's index holds the row numbers
        numbers = frame.index.to_numpy(dtype=np.int64)
        frame = frame.reset_index(drop=True)
    try:
        predictions = scorer.predict_frame(frame)
    except DataError as exc:
        first, last = numbers[0], numbers[-1]
        raise type(exc)(f"{path.name}, rows {first}-{last} (0-based): {exc}") from None
    columns: dict[str, Any] = {ROW_COLUMN: numbers}
    if folder:
        columns[FILE_COLUMN] = path.name
    if id_column is not None:
        columns[id_column] = frame[id_column].to_numpy()
    for name in predictions.columns:
        columns[str(name)] = predictions[name].to_numpy()
    return pd.DataFrame(columns)


class _CsvWriter:
    """Appends chunks as CSV text (pyarrow's writer: about 8x pandas' ``to_csv``)."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "xb")  # noqa: SIM115
        self._header = True

    def write(self, frame: pd.DataFrame, where: str) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        table = pa.Table.from_pandas(frame, preserve_index=False)
        pacsv.write_csv(table, self._handle, pacsv.WriteOptions(include_header=self._header))
        self._header = False

    def close(self) -> None:
        self._handle.close()


class _ParquetWriter:
    """Appends chunks as Parquet row groups, one per chunk, with the first chunk's schema."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "xb")  # noqa: SIM115
        self._writer: Any = None

    def write(self, frame: pd.DataFrame, where: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._handle, table.schema)
        elif not table.schema.equals(self._writer.schema, check_metadata=False):
            try:
                table = table.cast(self._writer.schema)
            except (pa.ArrowException, ValueError):
                raise DataFormatError(
                    f"{where}: column types ({_types(table.schema)}) differ from the first "
                    f"chunk's ({_types(self._writer.schema)}); give the input files the same "
                    "column types, or write a .csv output"
                ) from None
        self._writer.write_table(table, row_group_size=max(len(frame), 1))

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._handle.close()


@contextmanager
def _open_writer(path: Path, suffix: str) -> Iterator[_CsvWriter | _ParquetWriter]:
    writer = _CsvWriter(path) if suffix == ".csv" else _ParquetWriter(path)
    try:
        yield writer
    finally:
        writer.close()


def _types(schema: Any) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
