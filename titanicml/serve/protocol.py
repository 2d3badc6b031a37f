"""The endpoint's HTTP protocol: uvicorn's httptools one, guarded against slow and idle clients.

uvicorn bounds neither the number of connections a process holds nor the time a
client may take to send its headers, so a few hundred idle connections use up the
process's file descriptors and lock every other client out. This protocol adds:

===========================  ===================================================
guard                        behaviour
===========================  ===================================================
connection cap               at ``max_connections`` open connections, a new one
                             closes the longest-idle connection that is not being
                             served (idle keep-alive, never sent a request, or
                             still sending headers); when every connection is
                             being served, the newcomer gets a 503 with
                             ``Retry-After`` and is closed, never reset unanswered
header timeout               a request's line and headers must arrive within
                             ``header_timeout`` seconds of its first byte (of the
                             connection, for the first request): else a 408
header size                  over :data:`MAX_HEADER_BYTES`: a 431
body timeout                 the body must arrive within ``body_timeout`` seconds
                             of the headers; the score routes answer 408 (see
                             :data:`.limits.BODY_DEADLINE`)
early answer                 an answer sent before the body arrived (401, 413,
                             408) ends the connection: the server stops reading,
                             and drains for at most :data:`LINGER_SECONDS` so that
                             a client still sending can read it
keep-alive timeout           uvicorn's ``timeout_keep_alive``
===========================  ===================================================

A request that is fast and whole in one read (the common case) pays for none of
this beyond a few attribute checks: timers are only armed for requests that arrive
in pieces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from titanicml.model.payload import error_payload
from titanicml.serve.limits import BODY_DEADLINE, ServerLimits

__all__ = ["LINGER_SECONDS", "MAX_HEADER_BYTES", "GuardedProtocol", "guarded_protocol"]

MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1
_WARN_EVERY_SECONDS = 10.0


class _Tally:
    """Counts refused and evicted connections; warns at most once per interval."""

    def __init__(self) -> None:
        self.refused = 0
        self.evicted = 0
        self.warned_at = -math.inf

    def count(self, loop: asyncio.AbstractEventLoop, limit: int, refused: bool) -> None:
        if refused:
            self.refused += 1
        else:
            self.evicted += 1
        now = loop.time()
        if now - self.warned_at >= _WARN_EVERY_SECONDS:
            logging.getLogger("uvicorn.error").warning(
                "titanicml: at the limit of %d connections: %d refused with 503, %d idle "
                "connection(s) closed to make room (--max-connections raises the limit)",
                limit,
                self.refused,
                self.evicted,
            )
            self.warned_at, self.refused, self.evicted = now, 0, 0


def _answer(status: int, reason: str, code: str, message: str, retry: bool = False) -> bytes:
    """Return a whole HTTP/1.1 response that ends the connection, with a JSON error body."""
    body = json.dumps(error_payload(code, message), separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry:
        lines.append(f"retry-after: {RETRY_AFTER_SECONDS}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _CycleTransport:
    """The transport as uvicorn's request cycle sees it: closing lingers over an unread body."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedProtocol) -> None:
        self.write = transport.write
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.end_connection()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with titanicml's connection guards (see the module)."""

    limits: ServerLimits = ServerLimits()
    tally: _Tally = _Tally()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_since: float | None = None
        self.answered = False
        self.in_headers = False
        self.in_body = False
        self.lingering = False
        self.header_bytes = 0
        self.header_timer: asyncio.TimerHandle | None = None
        self.linger_timer: asyncio.TimerHandle | None = None
        self.cycle_transport: _CycleTransport | None = None

    # Connections -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection, making room at the cap, or answer 503 and close it."""
        limit = self.limits.max_connections
        if len(self.connections) >= limit and not self._evict_idlest():
            self.transport, self.lingering = transport, True
            transport.write(self._busy())
            transport.close()
            self.tally.count(self.loop, limit, refused=True)
            return
        super().connection_made(transport)
        self.cycle_transport = _CycleTransport(transport, self)
        self.idle_since = self.loop.time()
        self.header_timer = self.loop.call_later(self.limits.header_timeout, self._header_late)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the connection's timers."""
        for timer in (self.header_timer, self.linger_timer):
            if timer is not None:
                timer.cancel()
        self.header_timer = self.linger_timer = None
        self.idle_since = None
        if self.cycle_transport is None:  # refused at once: uvicorn never saw it
            return
        super().connection_lost(exc)

    def _busy(self) -> bytes:
        return _answer(
            503,
            "Service Unavailable",
            "ServiceUnavailable",
            f"the endpoint serves at most {self.limits.max_connections} connections at once "
            f"and all are busy; retry after {RETRY_AFTER_SECONDS} s",
            retry=True,
        )

    def _evict_idlest(self) -> bool:
        """Close the connection idle the longest (not being served); whether there was one."""
        idlest: GuardedProtocol | None = None
        since = math.inf
        for connection in self.connections:
            idle = getattr(connection, "idle_since", None)
            if idle is not None and idle < since:
                idlest, since = connection, idle
        if idlest is None:
            return False
        idlest.evict()
        self.tally.count(self.loop, self.limits.max_connections, refused=False)
        return True

    def evict(self) -> None:
        """Make room for a new connection: close this idle one (503 if it awaits an answer)."""
        self.connections.discard(self)
        self.idle_since = None
        if self.transport.is_closing():
            return
        if self.in_headers or not self.answered:
            self.transport.write(self._busy())
        self.transport.close()

    # Reading ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed the parser; time and size the headers of a request that arrives in pieces."""
        if self.lingering:
            return
        super().data_received(data)
        if self.in_headers and not self.transport.is_closing():
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES:
                self._end_with(
                    431,
                    "Request Header Fields Too Large",
                    "RequestHeaderFieldsTooLarge",
                    f"the request line and headers are over {MAX_HEADER_BYTES} bytes; "
                    "send shorter headers",
                    linger=True,
                )
            elif self.header_timer is None:
                self.header_timer = self.loop.call_later(
                    self.limits.header_timeout, self._header_late
                )
        elif self.in_body and self.cycle is not None:
            # The body is still on its way: the app bounds its wait by this deadline.
            scope: dict[str, Any] = self.cycle.scope  # type: ignore[assignment]
            if BODY_DEADLINE not in scope:
                timeout = self.limits.body_timeout
                scope[BODY_DEADLINE] = (self.loop.time() + timeout, timeout)

    def on_message_begin(self) -> None:
        """Start reading a request's headers."""
        super().on_message_begin()
        self.in_headers, self.header_bytes = True, 0

    def on_headers_complete(self) -> None:
        """Serve the request whose headers are in (its body may follow)."""
        self.in_headers, self.in_body, self.idle_since = False, True, None
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = self.cycle_transport  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        """Note that the whole body is in."""
        self.in_body = False
        super().on_message_complete()

    def _header_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if not self.in_headers:  # connected, sent nothing
            self.transport.close()
            return
        seconds = f"{self.limits.header_timeout:g}"
        self._end_with(
            408,
            "Request Timeout",
            "RequestTimeout",
            f"the request line and headers did not arrive within {seconds} s; "
            "send the whole request at once",
        )

    def _end_with(
        self, status: int, reason: str, code: str, message: str, linger: bool = False
    ) -> None:
        self.idle_since = None
        self.transport.write(_answer(status, reason, code, message))
        if linger:  # the client is still sending: let it read the answer
            self._linger()
        else:
            self.transport.close()

    # Answering -------------------------------------------------------------------

    def on_response_complete(self) -> None:
        """Wait for the next request, or end the connection of an answer given early."""
        self.answered = True
        if self.lingering:
            self.server_state.total_requests += 1
            return
        answered_early = self.in_body and self.cycle is not None and self.cycle.response_complete
        if answered_early and not self.transport.is_closing():
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # no pipelined request started
            self.idle_since = self.loop.time()

    def end_connection(self) -> None:
        """Close after an answer; with the body unread, drain it briefly before closing."""
        if self.in_body and not self.lingering and not self.transport.is_closing():
            self._linger()
        elif not self.lingering:
            self.transport.close()

    def _linger(self) -> None:
        # Stop parsing, say we are done (FIN), and drop what still comes: a client that
        # reads only once it has sent everything gets its answer instead of a reset.
        self.lingering = True
        self.idle_since = self.loop.time()
        self.flow.resume_reading()
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        self.linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)


def guarded_protocol(limits: ServerLimits) -> type[GuardedProtocol]:
    """Return a :class:`GuardedProtocol` class bound to ``limits`` (uvicorn's ``http=``)."""
    return type(
        "GuardedProtocol",
        (GuardedProtocol,),
        {"limits": limits, "tally": _Tally(), "__module__": __name__},
    )
