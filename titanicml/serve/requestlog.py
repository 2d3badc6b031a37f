"""The request log of an endpoint: one JSON line per scored request, rotated and bounded.

Records are handed to a background thread (``logging.handlers.QueueListener``),
so writing the log never delays a response. Each line holds the time, the
request id, the model name and version, the dialect, the input rows, the
predictions, the latency and the HTTP status: what monitoring reads to find
drift.
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
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, handler)
        self._handler = handler
        self._listener.start()

    def write(self, entry: dict[str, Any]) -> None:
        """Queue one entry (never blocks on the disk)."""
        line = json.dumps(entry, default=str, separators=(",", ":"))
        self._queue.put(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        """Write what is queued and close the file."""
        self._listener.stop()
        self._handler.close()
