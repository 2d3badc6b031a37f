"""CSV rows whose number of fields is not the header's: counted fast, then found by line.

pandas reads a row with too few fields as if the missing ones were empty, and stops
at a row with too many; neither says which line. :func:`count_bad_rows` tokenizes
the whole file with pyarrow (C++, one column converted: a fraction of pandas' own
parsing time) to count such rows; only a file that has some is read again, record by
record, with :func:`read_records` (the :mod:`csv` module), which gives each row's
physical line and text. Blank and whitespace-only lines are not rows, as for pandas.

Each function takes the file's delimiter (``sep``) and its compression, in pandas'
spelling (``None``, ``"gzip"``, ``"bz2"``, ``"zip"``, ``"xz"``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanicml._utils.compression import open_decompressed

__all__ = [
    "BadRowsError",
    "BadRowsFile",
    "CsvRecord",
    "count_bad_rows",
    "describe",
    "find_bad_rows",
    "good_frames",
    "good_record_chunks",
    "read_records",
]

#: pyarrow reads this many bytes at a time; a row must fit in one block.
_BLOCK_SIZE = 4 << 20
_QUOTE = '"'
_NEWLINES = ("\n", "\r")
#: Lines named per file in the summary's sentence about skipped rows.
_SHOWN_LINES = 5


class BadRowsError(ValueError):
    """A CSV file has rows whose number of fields is not the header's (the message says which)."""


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record (a row, or the header) as written in the file.

    Attributes
    ----------
    line : int
        1-based line of the file where it starts (a quoted value may span lines).
    fields : int
        Number of fields.
    text : str
        The record's text, line endings included.
    """

    line: int
    fields: int
    text: str

    @property
    def last_line(self) -> int:
        """1-based line where the record ends."""
        return self.line + self.text.rstrip("\r\n").count("\n")


def count_bad_rows(path: Path, sep: str = ",", compression: str | None = None) -> int | None:
    """Return how many rows have another number of fields than the header.

    Returns ``None`` when pyarrow cannot tokenize the file (e.g. an empty file, a row
    longer than its 4 MB block).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad = 0

    def on_invalid(row: pacsv.InvalidRow) -> str:
        nonlocal bad
        if row.text.strip(" \t\r\n"):  # a whitespace-only line is blank to pandas
            bad += 1
        return "skip"

    try:
        source: Any = str(path) if compression is None else open_decompressed(path, compression)
        reader = pacsv.open_csv(
            source,
            # The header is read as a row (names f0, f1, ...): its field count is the
            # expected one, and its names need not be valid or unique.
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True, use_threads=False, block_size=_BLOCK_SIZE
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            # One column, as bytes: nothing to convert or to validate as UTF-8.
            convert_options=pacsv.ConvertOptions(
                include_columns=["f0"], column_types={"f0": pa.binary()}
            ),
        )
        with reader:
            for _ in reader:
                pass
    except (pa.ArrowException, OSError, EOFError, ValueError):
        return None
    finally:
        if not isinstance(source, str):
            source.close()
    return bad


def read_records(
    path: Path, sep: str = ",", compression: str | None = None
) -> Generator[CsvRecord, None, None]:
    """Yield every record of a CSV file, the header first; blank lines are skipped.

    Raises
    ------
    csv.Error
        A value longer than :func:`csv.field_size_limit` (an unclosed quote that
        runs on for over 131,072 characters).
    UnicodeDecodeError
        The file is not UTF-8.
    """
    consumed: list[str] = []
    raw = open_decompressed(path, compression)
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:

        def lines() -> Iterator[str]:
            for line in handle:
                consumed.append(line)
                yield line

        reader = csv.reader(lines(), delimiter=sep, quotechar=_QUOTE, doublequote=True)
        start = 1
        for fields in reader:
            text = "".join(consumed)
            consumed.clear()
            line, start = start, reader.line_num + 1
            if text.strip(" \t\r\n"):
                yield CsvRecord(line, len(fields), text)


def describe(record: CsvRecord) -> str:
    """Say what is wrong with a bad row: its number of fields, or an unclosed quote."""
    if record.text.count(_QUOTE) % 2:
        runs_on = record.last_line
        tail = f" (its value runs on to line {runs_on})" if runs_on > record.line else ""
        return f"line {record.line} has an unclosed quote{tail}"
    fields = "field" if record.fields == 1 else "fields"
    return f"line {record.line} has {record.fields} {fields}"


def find_bad_rows(
    path: Path, limit: int, sep: str = ",", compression: str | None = None
) -> tuple[CsvRecord | None, list[CsvRecord]]:
    """Return the header and the first ``limit`` rows whose field count differs from it.

    The header is ``None`` for a file without records.
    """
    found: list[CsvRecord] = []
    records = read_records(path, sep, compression)
    header = next(records, None)
    if header is None:
        return None, found
    for record in records:
        if record.fields != header.fields:
            found.append(record)
            if len(found) >= limit:
                break
    records.close()
    return header, found


def good_record_chunks(
    path: Path,
    chunk_size: int,
    on_bad: Callable[[Path, CsvRecord, int, int], None],
    sep: str = ",",
    compression: str | None = None,
) -> Generator[tuple[str, list[str], list[int]], None, None]:
    """Yield ``(header text, texts, row numbers)`` of up to ``chunk_size`` good rows each.

    Row numbers are 0-based and count the bad rows too (the header is not a row).
    Each bad row goes to ``on_bad(path, record, row number, expected fields)``
    instead. At least one chunk is yielded (empty for a file with a header only).
    """
    records = read_records(path, sep, compression)
    header = next(records, None)
    if header is None:
        return
    header_text = _terminated(header.text)
    texts: list[str] = []
    numbers: list[int] = []
    yielded = False
    for row, record in enumerate(records):
        if record.fields != header.fields:
            on_bad(path, record, row, header.fields)
            continue
        texts.append(_terminated(record.text))
        numbers.append(row)
        if len(texts) == chunk_size:
            chunk = (header_text, texts, numbers)
            texts, numbers = [], []
            yield chunk
            del chunk
            yielded = True
    if texts or not yielded:
        yield header_text, texts, numbers


def good_frames(
    path: Path,
    chunk_size: int,
    strings: set[str],
    on_bad: Callable[[Path, CsvRecord, int, int], None],
    sep: str = ",",
    compression: str | None = None,
) -> Generator[tuple[int, Any], None, None]:
    """Yield ``(first row number, DataFrame)`` of the good rows, indexed by row number.

    The good records of a chunk are parsed together by pandas after the header, as
    a chunked ``read_csv`` would parse them; ``strings`` are read as text.

    Raises
    ------
    pandas.errors.ParserError, ValueError, csv.Error, UnicodeDecodeError
        A chunk pandas cannot parse, or a file the csv module cannot read.
    """
    import numpy as np
    import pandas as pd

    chunks = good_record_chunks(path, chunk_size, on_bad, sep, compression)
    with closing(chunks):
        for header, texts, numbers in chunks:
            buffer = io.StringIO(header + "".join(texts))
            del texts
            frame = pd.read_csv(buffer, sep=sep, dtype=dict.fromkeys(strings, object))
            del buffer
            frame.index = pd.Index(np.asarray(numbers, dtype=np.int64))
            yield (numbers[0] if numbers else 0), frame
            del frame  # before the next chunk is read


class BadRowsFile:
    """Rows with the wrong number of fields: refused, or skipped into a CSV side file.

    The side file (``file, line, <row column>, fields, expected, text``: one skipped
    row each, its text as written) is created at ``built`` on the first skipped row;
    the caller publishes it to ``target``.

    Parameters
    ----------
    mode : str
        ``"error"`` or ``"skip"``.
    built, target : Path
        Where the side file is written, and where it is published.
    row_column : str
        Header of the row-number column (the output's).
    """

    def __init__(self, mode: str, built: Path, target: Path, row_column: str = "row") -> None:
        self.mode = mode
        self.built = built
        self.target = target
        self.count = 0
        self._row_column = row_column
        self._handle: Any = None
        self._writer: Any = None
        self._per_file: dict[Path, list[int]] = {}  # path -> [count, first lines...]

    def add(self, path: Path, record: CsvRecord, row: int, expected: int) -> None:
        """Write one skipped row to the side file."""
        if self._writer is None:
            self._handle = open(self.built, "x", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["file", "line", self._row_column, "fields", "expected", "text"])
        text = record.text.rstrip("\r\n")
        self._writer.writerow([path.name, record.line, row, record.fields, expected, text])
        self.count += 1
        seen = self._per_file.setdefault(path, [0])
        seen[0] += 1
        if len(seen) <= _SHOWN_LINES:
            seen.append(record.line)

    def check(self, path: Path, sep: str = ",", compression: str | None = None) -> bool:
        """Tell whether ``path`` has rows to skip; in ``error`` mode raise, naming them.

        A good file costs one pyarrow pass (:func:`count_bad_rows`); the search by
        line runs only for a file that has bad rows. A file pyarrow cannot tokenize
        is left to pandas, unchecked.

        Raises
        ------
        BadRowsError
            In ``error`` mode, for a file with bad rows: the first few, by line.
        csv.Error, UnicodeDecodeError, OSError
            A file the csv module cannot read.
        """
        count = count_bad_rows(path, sep, compression)
        if not count:  # 0, or None: pyarrow cannot tokenize it (a row over 4 MB), pandas decides
            return False
        skip = self.mode == "skip"
        header, found = find_bad_rows(path, 1 if skip else _SHOWN_LINES, sep, compression)
        if header is None or not found:
            return False  # pyarrow and the csv module disagree: pandas decides
        if skip:
            return True
        total = max(count, len(found))
        rows = "row has" if total == 1 else "rows have"
        more = f"; and {total - len(found):,} more" if total > len(found) else ""
        raise BadRowsError(
            f"{path}: {total:,} {rows} another number of fields than the header's "
            f"{header.fields}: {'; '.join(map(describe, found))}{more}; fix the file, or "
            f"skip such rows (--on-bad-rows skip, on_bad_rows='skip'), which writes them "
            f"to {self.target}"
        )

    def warning(self, path: Path) -> str | None:
        """Return the summary's sentence about the rows of ``path`` skipped, if any."""
        seen = self._per_file.get(path)
        if not seen:
            return None
        count, lines = seen[0], seen[1:]
        shown = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
        rows = "row" if count == 1 else "rows"
        return (
            f"{path.name}: skipped {count:,} {rows} with another number of fields than "
            f"the header's (line {shown}); they are in {self.target}"
        )

    def close(self) -> None:
        """Close the side file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _terminated(text: str) -> str:
    return text if text.endswith(_NEWLINES) else text + "\n"
