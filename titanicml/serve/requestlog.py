"""The request log of an endpoint: one JSON line per answer, rotated and bounded.

Entries are handed to a background thread (``logging.handlers.QueueListener``)
as they are, and serialized there, so writing the log never delays a response.
Each line holds the time, the request id, the model name and version, the HTTP
status, the latency and the body size; a success adds the dialect, the input
rows, the predictions and probabilities (what monitoring reads to find drift),
an error adds its code and message, and the input rows when they could be read.

Every line is strict JSON (``json.loads`` of any reader takes it): a ``NaN`` input
is written ``null`` and an infinite one ``"Infinity"`` or ``"-Infinity"``; an entry
that cannot be written as JSON at all keeps its line, with ``inputs`` replaced by a
note. The files hold the callers' raw inputs, so they are readable by the owner
only (mode 0600), as the keys file is.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import queue
from pathlib import Path
from typing import IO, Any

__all__ = ["RequestLog"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
_PRIVATE = 0o600


def _dumps(entry: Any) -> str:
    return json.dumps(entry, default=str, separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    """Return ``value`` with every non-finite float spelled as strict JSON allows."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _line(entry: dict[str, Any]) -> str:
    """Return one strict-JSON line for ``entry``, whatever its inputs hold."""
    try:
        return _dumps(entry)
    except ValueError:  # NaN or an infinity
        try:
            return _dumps(_finite(entry))
        except (ValueError, TypeError, RecursionError):
            pass
    except (TypeError, RecursionError):
        pass
    rest = _finite({k: v for k, v in entry.items() if k != "inputs"})
    return _dumps({**rest, "inputs": "not written: the inputs are not JSON"})


class _JsonLines(logging.Formatter):
    """Format a record whose ``msg`` is an entry as one JSON line (once per record)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get("line")
        if line is None:
            # The rotating handler formats a record twice (size check, then write).
            line = _line(record.msg)  # type: ignore[arg-type]
            record.__dict__["line"] = line
        return line


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """A rotating file handler whose files are created readable by the owner only."""

    def _open(self) -> IO[str]:
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _PRIVATE)
        if hasattr(os, "fchmod"):  # a log made by an older version was world-readable
            os.fchmod(descriptor, _PRIVATE)
        return open(descriptor, "a", encoding=self.encoding, errors=self.errors)


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
        handler = _PrivateRotatingFile(
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
