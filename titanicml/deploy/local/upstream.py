"""The router's side towards the deployments: kept connections to each instance.

A :class:`Pool` holds the idle keep-alive connections to one instance (on its Unix
socket where there is one, else its TCP port); :class:`Upstream` carries one request
at a time on one of them and hands the answer's bytes, as they come, to a
:class:`Sink` (a client's connection, or nothing for a mirror copy); a
:class:`Backend` is a deployment's pools, taken in turn.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import httptools

__all__ = ["Backend", "Pool", "Sink", "Upstream"]


class Sink:
    """Where an answer goes: the client's connection, or nowhere (mirror copies)."""

    reused = False

    def relay(self, data: bytes) -> None:
        """Pass on bytes of the answer."""

    def done(self) -> None:
        """Take note that the answer is whole."""

    def failed(self, started: bool) -> None:
        """Take note that the connection ended before the answer was whole."""


class Upstream(asyncio.Protocol):
    """One kept connection to an instance; carries one request at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: Sink | None = None
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, sink: Sink) -> None:
        """Send a request whose answer goes to ``sink``."""
        self.sink, self.received = sink, False
        self.transport.write(data)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        """Relay the answer's bytes, and parse them to see where it ends."""
        sink = self.sink
        if sink is None:  # nothing was asked: an instance closing an idle connection says so
            self.transport.close()  # type: ignore[union-attr]
            return
        self.received = True
        sink.relay(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        """Keep the connection for the next request (unless it closes), and say so."""
        sink, self.sink = self.sink, None
        if self.parser.should_keep_alive() and not self.transport.is_closing():  # type: ignore[union-attr]
            self.pool.idle.append(self)
        else:
            self.transport.close()  # type: ignore[union-attr]
        if sink is not None:
            sink.done()

    def connection_lost(self, exc: Exception | None) -> None:
        """Tell the sink, whose request may be sent again."""
        self.pool.forget(self)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.failed(started=self.received)


class Pool:
    """Kept connections to one instance (on its Unix socket, when it has one)."""

    def __init__(self, port: int, unix: str) -> None:
        self.port, self.unix = port, unix
        self.idle: list[Upstream] = []
        self.closed = False

    def forward(self, data: bytes, sink: Sink, fresh: bool = False) -> None:
        """Send a request; ``sink`` gets the answer's bytes and how it ended."""
        while self.idle and not fresh:
            connection = self.idle.pop()
            if not connection.transport.is_closing():  # type: ignore[union-attr]
                sink.reused = True
                connection.send(data, sink)
                return
        sink.reused = False
        asyncio.get_running_loop().create_task(self._connect(data, sink))

    async def _connect(self, data: bytes, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.unix:
                # uvloop takes no abstract name: connect the socket, then hand it over.
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, "\0" + self.unix)
                except OSError:
                    sock.close()
                    raise
                _, connection = await loop.create_unix_connection(lambda: Upstream(self), sock=sock)
            else:
                _, connection = await loop.create_connection(
                    lambda: Upstream(self), "127.0.0.1", self.port
                )
        except OSError:
            sink.failed(started=False)
            return
        connection.send(data, sink)

    def forget(self, connection: Upstream) -> None:
        """Drop a connection that closed."""
        if connection in self.idle:
            self.idle.remove(connection)

    def close(self) -> None:
        """Close the idle connections; busy ones close when their answer is in."""
        self.closed = True
        for connection in self.idle:
            connection.transport.close()  # type: ignore[union-attr]
        self.idle.clear()


@dataclass
class Backend:
    """A deployment as the router sees it: its instances' pools, taken in turn."""

    name: str
    pools: list[Pool]
    timeout: float
    turn: int = 0

    def pool(self) -> Pool | None:
        """Return the pool of the instance whose turn it is."""
        if not self.pools:
            return None
        self.turn = (self.turn + 1) % len(self.pools)
        return self.pools[self.turn]
