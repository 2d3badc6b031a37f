"""The endpoint's router: one lean HTTP/1.1 reverse proxy in front of the deployments.

Each request goes to one deployment, drawn by the traffic weights, or to the
deployment its ``azureml-model-deployment`` header names; a deployment's instances
take turns. Mirror traffic sends a copy of a share of the requests to another
deployment, whose answer is discarded. The router does not read keys: every
deployment checks the endpoint's key itself (:mod:`titanicml.serve.auth`), and names
itself in its answers (``azureml-model-deployment``), so the router parses request
heads (httptools) and relays answers as they come.

The router keeps keep-alive connections to every instance. A request sent on a
kept connection that the instance closed meanwhile (its server stopping) is sent
again on a new connection, once, before a byte of the answer came: scoring is
idempotent, and this is what makes a rolling replacement drop no request. A
deployment that answers nothing gets a 502, one over its ``request_timeout_ms`` a
408, a request for a deployment that takes no traffic a 503 (or 404 if pinned to
one that does not exist). ``GET /-/router`` answers the generation loaded; ``HEAD`` is
refused (405: its answer has no body to relay).

The routes come from the endpoint's records (:mod:`.state`): loaded at start, on
``SIGHUP`` and whenever ``endpoint.json`` changes (checked every quarter second).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import sys
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools

from titanicml.deploy.local.state import Paths, read_deployments, read_endpoint
from titanicml.deploy.local.upstream import Backend, Pool, Sink
from titanicml.model.payload import error_payload

__all__ = ["DEPLOYMENT_HEADER", "MIRROR_HEADER", "Router", "Routes", "run_router"]

DEPLOYMENT_HEADER = "azureml-model-deployment"
MIRROR_HEADER = "x-titanicml-mirror"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_CONNECTIONS = 1000
#: Seconds a request's head and body may take to arrive; an idle connection may stay.
REQUEST_ARRIVAL_SECONDS = 30.0
KEEP_ALIVE_SECONDS = 5.0
MAX_MIRRORS_IN_FLIGHT = 64
_SWEEP_SECONDS = 0.25
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
    }
)
_PIN = DEPLOYMENT_HEADER.encode()
_EXPECT = b"expect"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REQUEST_ID = b"x-request-id"
_REQUEST_IDS = frozenset({_REQUEST_ID, b"x-ms-client-request-id"})
_MIRROR_LINE = MIRROR_HEADER.encode() + b": 1\r\n\r\n"
_NO_HEAD = b"HTTP/1.1 405 Method Not Allowed\r\nallow: GET, POST\r\ncontent-length: 0\r\n\r\n"
_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _answer(status: int, code: str, message: str, close: bool = False) -> bytes:
    body = json.dumps(error_payload(code, message), separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        + ("connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + body


def _json_answer(content: dict[str, Any]) -> bytes:
    body = json.dumps(content).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
    return (head + "\r\n\r\n").encode() + body


class Routes:
    """Where requests go: live weights, mirror shares, deployments by name."""

    def __init__(
        self,
        backends: dict[str, Backend],
        traffic: dict[str, int],
        mirror: dict[str, int],
        generation: int,
    ) -> None:
        self.backends = backends
        self.generation = generation
        self.live = [(backends[n], w) for n, w in traffic.items() if w > 0 and n in backends]
        self.total = sum(w for _, w in self.live)
        self.mirror = [(backends[n], w) for n, w in mirror.items() if w > 0 and n in backends]

    def choose(self, draw: float) -> Backend | None:
        """Return the deployment for a draw in [0, 1), by the traffic weights."""
        point = draw * self.total
        for backend, weight in self.live:
            if point < weight:
                return backend
            point -= weight
        return self.live[-1][0] if self.live else None


# Downstream: the clients' connections ------------------------------------------


class _Mirror(Sink):
    def __init__(self, router: Router) -> None:
        self.router = router
        router.mirrors += 1

    def done(self) -> None:
        self.router.mirrors -= 1

    def failed(self, started: bool) -> None:
        self.router.mirrors -= 1


class _Request:
    """A request to forward (``data``), or the router's own answer to it (``error``)."""

    __slots__ = ("backend", "data", "deadline", "error", "keep_alive", "retried")

    def __init__(
        self, data: bytes, backend: Backend | None, error: bytes | None, keep_alive: bool
    ) -> None:
        self.data, self.backend, self.error, self.keep_alive = data, backend, error, keep_alive
        self.retried = False
        self.deadline = 0.0


class _Client(asyncio.Protocol, Sink):
    """A client's connection: parses requests, forwards each, relays its answer."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.loop = router.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[_Request] = deque()
        self.current: _Request | None = None
        self.in_message = False
        self.paused = False
        self.since = router.now
        self.url = b""
        self.headers: list[bytes] = []
        self.body: list[bytes] = []
        self.size = 0
        self.pin: bytes | None = None
        self.request_id: bytes | None = None
        self.expect = False

    # connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if len(self.router.clients) >= MAX_CONNECTIONS:
            transport.write(  # type: ignore[attr-defined]
                _answer(503, "ServiceUnavailable", "too many connections; retry", close=True)
            )
            transport.close()
            return
        self.router.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.router.clients.discard(self)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self.since = self.router.now
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "BadRequest", "the endpoint does not upgrade connections")
        except httptools.HttpParserError as exc:
            self._refuse(400, "BadRequest", f"malformed HTTP request ({exc})")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.transport.write(_answer(status, code, message, close=True))  # type: ignore[union-attr]
        self.transport.close()  # type: ignore[union-attr]

    # parsing -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.url, self.headers, self.body, self.size = b"", [], [], 0
        self.pin = self.request_id = None
        self.expect = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            return
        if lower == _PIN:
            self.pin = value
        elif lower == _EXPECT:
            self.expect = value.lower() == b"100-continue"
            return
        elif lower in _REQUEST_IDS:  # the client's id: the mirror copy keeps it too
            self.request_id = value
        self.headers.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        if self.expect:  # curl waits for this before sending a large body
            self.transport.write(_CONTINUE)  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY_BYTES:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        request = self._route()
        if self.current is None:
            self._start(request)
        else:
            self.pending.append(request)
            if not self.paused:
                self.paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]

    def _route(self) -> _Request:
        keep = self.parser.should_keep_alive()
        method = self.parser.get_method()
        if self.size > MAX_BODY_BYTES:
            message = f"the body is over {MAX_BODY_BYTES} bytes; split the batch"
            return _Request(b"", None, _answer(413, "PayloadTooLarge", message, True), False)
        if method == b"HEAD":  # an answer without a body: not relayed, refused at once
            return _Request(b"", None, _NO_HEAD, keep)
        if self.url.startswith(b"/-/router"):
            return _Request(b"", None, _json_answer(self.router.describe()), keep)
        routes = self.router.routes
        if self.pin is not None:
            backend = routes.backends.get(self.pin.decode("latin-1").strip())
            if backend is None:
                message = (
                    f"no deployment {self.pin.decode('latin-1')!r} in endpoint "
                    f"{self.router.name}; see titanicml online-deployment list "
                    f"--endpoint-name {self.router.name}"
                )
                return _Request(b"", None, _answer(404, "DeploymentNotFound", message), keep)
        else:
            backend = routes.choose(random.random())
            if backend is None:
                message = (
                    f"endpoint {self.router.name} sends no traffic to any deployment; run "
                    f"titanicml online-endpoint update --name {self.router.name} "
                    '--traffic "DEPLOYMENT=100"'
                )
                return _Request(b"", None, _answer(503, "NoTraffic", message), keep)
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        mirrors = (
            [m for m, share in routes.mirror if m is not backend and random.random() * 100 < share]
            if routes.mirror
            else None
        )
        if mirrors and self.request_id is None:
            self.request_id = uuid.uuid4().hex.encode()
            self.headers.append(b"x-request-id: " + self.request_id + b"\r\n")
        head = [method, b" ", self.url, b" HTTP/1.1\r\n", *self.headers]
        head.append(b"content-length: %d\r\n" % len(body))
        data = b"".join([*head, b"\r\n", body])
        if mirrors and self.router.mirrors < MAX_MIRRORS_IN_FLIGHT:
            copy = b"".join([*head, _MIRROR_LINE, body])
            for mirror in mirrors:
                pool = mirror.pool()
                if pool is not None:
                    pool.forward(copy, _Mirror(self.router))
        return _Request(data, backend, None, keep)

    # answering -------------------------------------------------------------------

    def _start(self, request: _Request) -> None:
        self.current = request
        if request.error is not None:
            self.relay(request.error)
            self.done()
            return
        backend = request.backend
        pool = backend.pool()  # type: ignore[union-attr]
        # The clock lags by up to a sweep: the deadline comes within a sweep after the timeout.
        request.deadline = self.router.now + _SWEEP_SECONDS + backend.timeout  # type: ignore[union-attr]
        if pool is None:
            self.failed(started=False)
            return
        pool.forward(request.data, self)

    def relay(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def done(self) -> None:
        request, self.current = self.current, None
        if request is None or self.transport is None or self.transport.is_closing():
            return
        if not request.keep_alive:
            self.transport.close()
            return
        self.since = self.router.now
        if self.pending:
            self._start(self.pending.popleft())
        elif self.paused:
            self.paused = False
            self.transport.resume_reading()

    def failed(self, started: bool) -> None:
        request = self.current
        if request is None:
            return
        if started:  # part of an answer went out: the client must see it end
            self.current = None
            if self.transport is not None:
                self.transport.close()
            return
        if self.reused and not request.retried:
            # The instance closed a kept connection (its server stopping): send the request
            # anew, to the deployment of that name as the routes now have it.
            request.retried = True
            name = request.backend.name  # type: ignore[union-attr]
            backend = self.router.routes.backends.get(name, request.backend)
            pool = backend.pool()  # type: ignore[union-attr]
            if pool is not None:
                pool.forward(request.data, self, fresh=True)
                return
        name = request.backend.name if request.backend else "?"
        message = (
            f"deployment {name} of endpoint {self.router.name} does not answer; see "
            f"titanicml online-deployment show --name {name} --endpoint-name {self.router.name}"
        )
        self.relay(_answer(502, "BadGateway", message))
        self.done()

    def sweep(self, now: float) -> None:
        """Close a connection whose request is late, idle too long, or answered too late."""
        request = self.current
        if request is not None:
            if request.deadline and now > request.deadline:
                self.current = None
                name = request.backend.name if request.backend else "?"
                seconds = request.backend.timeout if request.backend else 0
                self.relay(
                    _answer(
                        408,
                        "RequestTimeout",
                        f"deployment {name} did not answer within its request_timeout_ms "
                        f"({seconds * 1000:.0f} ms); raise request_settings.request_timeout_ms "
                        "or send smaller batches",
                        close=True,
                    )
                )
                self.transport.close()  # type: ignore[union-attr]
            return
        limit = REQUEST_ARRIVAL_SECONDS if self.in_message else KEEP_ALIVE_SECONDS
        if now - self.since > limit and self.transport is not None:
            self.transport.close()


# The router ------------------------------------------------------------------------


class Router:
    """The routes of one endpoint and the connections they serve."""

    def __init__(self, paths: Paths, loop: asyncio.AbstractEventLoop) -> None:
        self.paths = paths
        self.name = paths.name
        self.loop = loop
        self.clients: set[_Client] = set()
        self.mirrors = 0
        self.pools: dict[tuple[int, str], Pool] = {}
        self.routes = Routes({}, {}, {}, -1)
        self.stamp: tuple[int, int] | None = None
        #: The loop's clock as of the last sweep: coarse, and free to read per request.
        self.now = loop.time()

    def describe(self) -> dict[str, Any]:
        """Return what ``GET /-/router`` answers."""
        routes = self.routes
        return {
            "endpoint": self.name,
            "generation": routes.generation,
            "traffic": {b.name: w for b, w in routes.live},
            "mirror_traffic": {b.name: w for b, w in routes.mirror},
            "deployments": {
                name: [p.port for p in backend.pools] for name, backend in routes.backends.items()
            },
        }

    def reload(self) -> None:
        """Load the endpoint's records, if they changed."""
        try:
            status = self.paths.record.stat()
        except OSError:
            return
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp == self.stamp:
            return
        try:
            record = read_endpoint(self.paths)
            deployments = read_deployments(self.paths)
        except Exception as exc:  # a record being replaced: try again at the next sweep
            print(f"router: cannot read the records yet ({exc})", file=sys.stderr, flush=True)
            return
        if record is None:
            return
        self.stamp = stamp
        pools: dict[tuple[int, str], Pool] = {}
        backends = {}
        for deployment in deployments:
            members = []
            for instance in deployment.instances:
                key = (instance.port, instance.unix)
                pools[key] = self.pools.get(key) or Pool(*key)
                members.append(pools[key])
            backends[deployment.name] = Backend(
                deployment.name, members, deployment.request_timeout_ms / 1000
            )
        for key, pool in self.pools.items():
            if key not in pools:
                pool.close()
        self.pools = pools
        self.routes = Routes(backends, record.traffic, record.mirror_traffic, record.generation)
        print(
            f"router: generation {record.generation}: traffic {record.traffic}, "
            f"mirror {record.mirror_traffic}",
            file=sys.stderr,
            flush=True,
        )

    def sweep(self) -> None:
        """Reload changed records; time out late requests and idle connections."""
        self.reload()
        now = self.now = self.loop.time()
        for client in list(self.clients):
            client.sweep(now)
        self.loop.call_later(_SWEEP_SECONDS, self.sweep)


async def _serve(paths: Paths, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    router = Router(paths, loop)
    router.reload()
    server = await loop.create_server(lambda: _Client(router), sock=sock, backlog=2048)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _forced_reload(router))
    loop.call_later(_SWEEP_SECONDS, router.sweep)
    print(f"router: endpoint {paths.name} listening on {sock.getsockname()}", file=sys.stderr)
    await stop.wait()
    server.close()
    deadline = loop.time() + 10
    while any(c.current is not None for c in router.clients) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for client in list(router.clients):
        client.transport.close()  # type: ignore[union-attr]
    print("router: stopped", file=sys.stderr, flush=True)


def _forced_reload(router: Router) -> Callable[[], None]:
    def reload() -> None:
        router.stamp = None
        router.reload()

    return reload


def run_router(paths: Paths, descriptor: int) -> None:
    """Serve the endpoint on the listening socket ``descriptor`` until SIGTERM."""
    sock = socket.socket(fileno=descriptor)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with titanicml[serve]
        asyncio.run(_serve(paths, sock))
        return
    uvloop.run(_serve(paths, sock))
