"""The request log of an endpoint: one JSON line per answer, rotated and bounded.

Entries are handed to a background thread (``logging.handlers.QueueListener``)
as they are, and serialized there, so writing the log never delays a response.
Each line holds the time, the request id, the model name and version, the HTTP
status, the latency and the body size; a success adds the dialect, the input
rows, the predictions and probabilities (what monitoring reads to find drift),
an error adds its code and message, and the input rows when they could be read.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
from pathlib import Path
from typing import Any

__all__ = ["RequestLog"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5


class _JsonLines(logging.Formatter):
    """Format a record whose ``msg`` is an entry as one JSON line (once per record)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get("line")
        if line is None:
            # The rotating handler formats a record twice (size check, then write).
            line = json.dumps(record.msg, default=str, separators=(",", ":"))
            record.__dict__["line"] = line
        return line


class RequestLog:
    """A rotating JSON-lines log written by a background thread.

    Parameters
    ----------
    path : str or Path
        The current log file; rotated copies get ``.1``, ``.2``, ... suffixes.
    max_bytes : int
        Size at which the file rotates.
    backups : int
        Rotated files kept; the total stays under ``max_bytes * (backups + 1)``.
    """

    def __init__(
        self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(_JsonLines())
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._handler = handler
        self._open = True
        self._listener.start()

    def write(self, entry: dict[str, Any]) -> None:
        """Queue one entry (never blocks on the disk); do not change it afterwards."""
        self._queue.put(logging.makeLogRecord({"msg": entry, "levelno": logging.INFO}))

    def close(self) -> None:
        """Write what is queued and close the file (a second call does nothing)."""
        if self._open:
            self._open = False
            self._listener.stop()
            self._handler.close()
