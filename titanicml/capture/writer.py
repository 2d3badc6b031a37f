"""The background writer of the production data store: one thread per server process.

The endpoint hands each answer to :meth:`CaptureWriter.add` (a dict appended to a
bounded buffer: no disk, no conversion, no thread woken on the request path); the
writer's thread wakes once a second (:data:`FLUSH_SECONDS`), turns what arrived into
Arrow rows and writes one Parquet file per hour partition, and does so a last time
at :meth:`~CaptureWriter.close`. (Waking the thread per answer, as a queue does,
cost a fifth of the endpoint's throughput in thread switches.)
A process killed outright loses at most the answers of the last second; the files
already written are whole (:func:`.layout.write_parquet_whole`).

A full buffer (:data:`BUFFER_SIZE` answers: the disk far slower than the traffic)
makes :meth:`~CaptureWriter.add` wake the writer and wait, up to
:data:`PUT_TIMEOUT_SECONDS`, rather than drop an answer; past that the answer is
counted in :attr:`~CaptureWriter.dropped` and a warning says so.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.capture.layout import (
    CaptureSettings,
    endpoint_dir,
    hour_of,
    write_parquet_whole,
    write_schema,
    write_settings,
)
from titanicml.capture.records import RowSchema
from titanicml.capture.retention import remove_old_partitions

if TYPE_CHECKING:
    import pyarrow as pa

    from titanicml._utils.staging import Staging

__all__ = ["FLUSH_SECONDS", "CaptureWriter", "JobCapture"]

FLUSH_SECONDS = 1.0
BUFFER_SIZE = 50_000
PUT_TIMEOUT_SECONDS = 5.0
#: How often the writer turns the answers that arrived into Arrow columns.
_CONVERT_SECONDS = 0.5
_logger = logging.getLogger("titanicml")


class CaptureWriter:
    """Keep every answer of one deployment (or one batch job) in the production data store.

    Parameters
    ----------
    endpoint, deployment : str
        The partition the rows go to.
    schema : RowSchema
        The served model's columns (:meth:`RowSchema.of_model`).
    model : str
        ``name:version``, recorded with the settings.
    settings : CaptureSettings, optional
        Retention and sampling rate (default: keep everything, every request).
    workspace : str or Path, optional
        The workspace whose ``production/`` folder holds the store.
    flush_seconds : float
        Longest time an answer waits in memory before it is on disk.
    """

    def __init__(
        self,
        endpoint: str,
        deployment: str,
        schema: RowSchema,
        model: str,
        settings: CaptureSettings | None = None,
        workspace: str | Path | None = None,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.endpoint, self.deployment, self.schema = endpoint, deployment, schema
        self.settings = settings or CaptureSettings()
        self.folder = endpoint_dir(endpoint, workspace)
        self.partitions = self.folder / f"deployment={deployment}"
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.written = 0
        self._buffer: deque[tuple[dict[str, Any], bytes | None]] = deque()
        self._wake = threading.Event()
        self._drained = threading.Event()
        self._stopping = False
        self._rate = self.settings.sampling_rate
        self._staging: dict[str, Staging] = {}
        self._sequence = 0
        self._swept_hour = ""
        self.partitions.mkdir(parents=True, exist_ok=True)
        write_schema(self.folder, schema.arrow())
        write_settings(self.folder, deployment, self.settings, model)
        self._sweep(time.time())
        self._thread = threading.Thread(target=self._run, name="titanicml-capture", daemon=True)
        self._open = True
        self._thread.start()

    # the request path -------------------------------------------------------------

    def add(self, entry: dict[str, Any], body: bytes | None = None) -> None:
        """Queue one answer (the request log's entry and the raw body of a refused request)."""
        if self._rate < 1.0 and random.random() >= self._rate:
            return
        if len(self._buffer) >= BUFFER_SIZE and not self._make_room():
            self.dropped += 1
            _logger.warning(
                "production data of %s/%s: the writer is behind; %d answer(s) not kept",
                self.endpoint,
                self.deployment,
                self.dropped,
            )
            return
        self._buffer.append((entry, body))

    def _make_room(self) -> bool:
        """Wake the writer and wait for it to drain the buffer; whether it did in time."""
        deadline = time.monotonic() + PUT_TIMEOUT_SECONDS
        while len(self._buffer) >= BUFFER_SIZE and self._thread.is_alive():
            self._drained.clear()
            self._wake.set()
            if not self._drained.wait(max(deadline - time.monotonic(), 0.0)):
                break
        return len(self._buffer) < BUFFER_SIZE

    def write_now(self, table: pa.Table) -> None:
        """Write rows already built at once, from the caller's thread (a batch job's chunk)."""
        self._flush_safely([table])

    def close(self) -> None:
        """Write everything queued and stop the thread (a second call does nothing)."""
        if self._open:
            self._open = False
            self._stopping = True
            self._wake.set()
            self._thread.join()
            for staging in self._staging.values():
                staging.__exit__(None, None, None)
            self._staging.clear()

    # the writer's thread ----------------------------------------------------------

    def _run(self) -> None:
        buffer = self._buffer
        tables: list[Any] = []
        due = time.monotonic() + self.flush_seconds
        while True:
            stopping = self._stopping
            if not stopping:
                self._wake.wait(min(_CONVERT_SECONDS, max(due - time.monotonic(), 0.0)))
                self._wake.clear()
            # Appends go on at the right end while the left end is taken: none is missed.
            pending: list[Any] = [buffer.popleft() for _ in range(len(buffer))]
            self._drained.set()
            if pending:
                # Turned into Arrow columns at once: answers kept as Python objects for a
                # second would make every garbage collection of the server walk them.
                tables.append(self._convert_safely(pending))
            if stopping or time.monotonic() >= due:
                due = time.monotonic() + self.flush_seconds
                tables = [t for t in tables if t is not None]
                if tables:
                    self._flush_safely(tables)
                tables = []
            if stopping:
                return

    def _convert_safely(self, pending: list[Any]) -> pa.Table | None:
        try:
            return self.schema.answers_table(pending)
        except Exception as exc:  # a bug, not the traffic: say it, keep serving
            self.dropped += len(pending)
            _logger.warning(
                "production data of %s/%s: %d answer(s) not kept (%s)",
                self.endpoint,
                self.deployment,
                len(pending),
                exc,
            )
            return None

    def _flush_safely(self, tables: list[pa.Table]) -> None:
        try:
            self._flush(tables)
        except Exception as exc:  # a full disk must not stop the server: say it, go on
            rows = sum(t.num_rows for t in tables)
            self.dropped += rows
            _logger.warning(
                "production data of %s/%s: %d row(s) not written (%s)",
                self.endpoint,
                self.deployment,
                rows,
                exc,
            )

    def _flush(self, tables: list[pa.Table]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        self._sweep(time.time())
        hours = _hours(table)
        distinct = sorted(set(hours))
        for hour in distinct:
            part = table if len(distinct) == 1 else table.filter(pc.equal(pa.array(hours), hour))
            self._write(hour, part)
        self.written += table.num_rows

    def _write(self, hour: str, table: pa.Table) -> None:
        from titanicml._utils.staging import Staging

        folder = self.partitions / f"hour={hour}"
        staging = self._staging.get(hour)
        if staging is None:
            folder.mkdir(parents=True, exist_ok=True)
            for old in list(self._staging):  # an hour that ended gets no more rows
                self._staging.pop(old).__exit__(None, None, None)
            staging = self._staging[hour] = Staging(folder, prefix=".capture-")
        self._sequence += 1
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._sequence:06d}.parquet"
        write_parquet_whole(table, folder / name, staging)

    def _sweep(self, now: float) -> None:
        """Apply the retention, at start and then once an hour."""
        hour = hour_of(now)
        if self.settings.retention_days is not None and hour != self._swept_hour:
            self._swept_hour = hour
            remove_old_partitions(self.partitions, self.settings.retention_days, now)


def _hours(table: pa.Table) -> list[str]:
    seconds = table.column("time").cast("int64").to_numpy() / 1_000_000
    first, last = hour_of(float(seconds.min())), hour_of(float(seconds.max()))
    if first == last:
        return [first] * table.num_rows
    return [hour_of(float(s)) for s in seconds]


class JobCapture:
    """Keep a batch job's rows: each chunk's inputs and predictions, written as it is scored.

    Every row of the job has the job's id (``batch-<hex>``) as ``request_id`` and its
    0-based position in the job as ``row``; ``source`` is ``batch``.
    """

    def __init__(
        self,
        endpoint: str,
        model: Any,
        model_name: str,
        model_version: str,
        settings: CaptureSettings | None = None,
        workspace: str | Path | None = None,
        deployment: str = "default",
    ) -> None:
        self.schema = RowSchema.of_model(model)
        self.model = (model_name, model_version)
        self.job_id = f"batch-{uuid.uuid4().hex}"
        self.rows = 0
        self.writer = CaptureWriter(
            endpoint,
            deployment,
            self.schema,
            f"{model_name}:{model_version}",
            settings,
            workspace,
        )

    def add(self, frame: Any, predictions: Any) -> None:
        """Write one scored chunk: its input rows and its predictions."""
        table = self.schema.batch_table(
            frame, predictions, self.job_id, self.rows, self.model, time.time()
        )
        self.rows += table.num_rows
        self.writer.write_now(table)

    def close(self) -> None:
        """Stop the writer."""
        self.writer.close()
