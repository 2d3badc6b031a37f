"""How much an endpoint process allows its clients: connections, and time to send a request.

The defaults keep a slow or idle client from holding the endpoint: see
:mod:`titanicml.serve.protocol` for how each limit is enforced, and
``docs/serving.md`` for the ``online-endpoint serve`` options that set them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from titanicml.exceptions import ConfigError

__all__ = ["BODY_DEADLINE", "ServerLimits", "connection_cap"]

# The scope key through which the protocol tells the app that a request's body is
# still arriving, and by when: ``(loop.time() deadline, timeout in seconds)``.
BODY_DEADLINE = "titanicml.body_deadline"
# File descriptors kept free of connections: log files, the event loop, imports.
_SPARE_DESCRIPTORS = 32


@dataclass(frozen=True)
class ServerLimits:
    """What one endpoint process allows its clients.

    Attributes
    ----------
    max_connections : int
        Open connections per process (lowered to the open-file limit, see
        :func:`connection_cap`).
    header_timeout : float
        Seconds a request's line and headers may take to arrive.
    body_timeout : float
        Seconds a request's body may take to arrive, counted from its headers.
    keep_alive_timeout : float
        Seconds an idle keep-alive connection stays open.
    """

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self) -> None:
        count = self.max_connections
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(
                f"max_connections must be a whole number of at least 1, got {count!r}; "
                "pass e.g. --max-connections 1000"
            )
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            value = getattr(self, name)
            valid = isinstance(value, int | float) and not isinstance(value, bool)
            if not valid or not 0 < value < math.inf:
                raise ConfigError(
                    f"{name} must be a positive number of seconds, got {value!r}; "
                    f"pass e.g. --{name.replace('_', '-')} 10"
                )

    def within_file_limit(self) -> ServerLimits:
        """Return these limits with ``max_connections`` lowered to fit the open-file limit."""
        return replace(self, max_connections=connection_cap(self.max_connections))


def connection_cap(requested: int, open_files: int | None = None) -> int:
    """Return how many connections fit under the process's open-file limit (``ulimit -n``).

    Each connection holds a file descriptor; past the limit the process can accept no
    one, not even ``/health``. The cap leaves the descriptors open now, plus a few
    spare, to the rest of the process.

    Parameters
    ----------
    requested : int
        The connections asked for.
    open_files : int, optional
        Descriptors the process holds (default: counted in ``/proc/self/fd``).
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return requested
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    if open_files is None:
        folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
        try:
            open_files = len(os.listdir(folder))
        except OSError:
            open_files = 64
    return max(1, min(requested, soft - open_files - _SPARE_DESCRIPTORS))
