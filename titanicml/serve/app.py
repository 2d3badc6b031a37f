"""The online endpoint: an ASGI app (FastAPI on uvicorn) that scores rows with key auth.

=====================  ======================================================
route                  answer
=====================  ======================================================
``POST /score``        predictions for any dialect of :mod:`.dialects`; with
                       ``"explain": true`` (or ``?explain=true``) each row's largest
                       contributions too (:mod:`.explaining`)
``POST /invocations``  the same (MLflow's route name)
``GET /``, ``/health`` liveness
``GET /ready``         readiness: the model is loaded and warmed up
``GET /info``          model name, version, task, classes, input columns
``GET /openapi.json``  the OpenAPI document (``/docs`` renders it)
=====================  ======================================================

Bad requests get a JSON error naming the problem and a 4xx status: 400
(malformed body, unknown or wrong-typed column, empty batch, bad ``explain``), 401
(missing or wrong key), 408 (the body did not arrive in time), 413 (body too large),
415 (unsupported content type); 501 answers ``explain`` for a model that cannot be
explained. The key is checked before the body is read. Every
answer of the score routes, success or error, is one line of the request log, and
so is a client that left before its body arrived (status 499, nobody to answer). With a
:class:`~titanicml.capture.CaptureWriter` every such answer is also kept in the
production data store (one row per input row; the raw body of a refused request).

The request id is the client's ``x-request-id`` (or Azure's
``x-ms-client-request-id``), else one is made; every answer returns it under both names.

The OpenAPI document (:mod:`.openapi`) declares the ``bearer`` security scheme
(when keys are on) and shows request examples made of the served model's own
input example.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from titanicml.exceptions import DataError, RequestError
from titanicml.model.dialects import parse_request
from titanicml.model.payload import error_payload, response_payload
from titanicml.serve.auth import authorized
from titanicml.serve.explaining import (
    NOT_EXPLAINABLE,
    ExplainerCache,
    NotExplainable,
    explain_option,
)
from titanicml.serve.limits import BODY_DEADLINE
from titanicml.serve.openapi import declare_bearer, example_records, score_doc

if TYPE_CHECKING:
    from starlette.types import Receive

    from titanicml.capture import CaptureWriter
    from titanicml.model.predictor import TabularModel
    from titanicml.serve.auth import EndpointKeys, KeyFile
    from titanicml.serve.requestlog import RequestLog

__all__ = [
    "CLIENT_LEFT",
    "DEFAULT_MAX_BODY_BYTES",
    "REQUEST_ID_HEADERS",
    "EndpointConfig",
    "create_app",
    "request_id_of",
]

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
# The status logged for a client that closed the connection before its body arrived
# (nginx's "client closed request"); no answer is sent, there is nobody to send it to.
CLIENT_LEFT = 499
# Larger batches are scored in a worker thread, so the event loop keeps serving.
_INLINE_ROWS = 256
#: The headers a client's request id is read from (in this order) and returned in.
REQUEST_ID_HEADERS = ("x-request-id", "x-ms-client-request-id")


@dataclass
class EndpointConfig:
    """How an endpoint serves one model.

    Attributes
    ----------
    model : TabularModel
        The loaded model.
    model_name, model_version : str
        Reported with every response.
    keys : EndpointKeys, KeyFile or None
        The accepted keys (a :class:`~.auth.KeyFile` follows its file); ``None``
        switches authentication off.
    request_log : RequestLog or None
        Where every answer of the score routes is logged (successes and errors).
    max_body_bytes : int
        Larger bodies are refused with 413.
    capture : CaptureWriter or None
        Where every answer of the score routes is kept as production data.
    """

    model: TabularModel
    model_name: str
    model_version: str
    keys: EndpointKeys | KeyFile | None
    request_log: RequestLog | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    capture: CaptureWriter | None = None


_UNAUTHORIZED = (
    "missing or wrong key: send the header 'Authorization: Bearer <key>' "
    "with a key from 'titanicml online-endpoint get-credentials'"
)
# How reading a body ended.
_WHOLE, _TOO_LARGE, _LEFT, _LATE = "whole", "too large", "left", "late"


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(content, separators=(",", ":"), default=_plain).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def request_id_of(request: Request) -> str:
    """Return the client's ``x-request-id`` (or ``x-ms-client-request-id``), else a new id."""
    headers = request.headers
    return headers.get("x-request-id") or headers.get("x-ms-client-request-id") or uuid.uuid4().hex


def _id_headers(request_id: str) -> dict[str, str]:
    return dict.fromkeys(REQUEST_ID_HEADERS, request_id)


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    headers = _id_headers(request_id)
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="titanicml"'
    return _json(error_payload(code, message), status, headers)


def _declared_size(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None or not (declared.isascii() and declared.isdigit()):
        return None
    return int(declared)


async def _read_body(request: Request, limit: int) -> tuple[bytes | None, int, str]:
    """Read the body; return it (``None`` unless whole), its size, and how reading ended.

    A body over ``limit`` is not read further: its size is then the declared
    ``content-length``, or the bytes that arrived before the refusal. A body still
    arriving when the request came in (the protocol's :data:`.limits.BODY_DEADLINE`)
    must be whole by its deadline.
    """
    declared = _declared_size(request)
    if declared is not None and declared > limit:
        return None, declared, _TOO_LARGE
    chunks: list[bytes] = []
    pending = request.scope.get(BODY_DEADLINE)
    if pending is None:
        return await _receive(request.receive, chunks, limit)
    try:
        async with asyncio.timeout_at(pending[0]):
            return await _receive(request.receive, chunks, limit)
    except TimeoutError:
        return None, sum(map(len, chunks)), _LATE


async def _receive(
    receive: Receive, chunks: list[bytes], limit: int
) -> tuple[bytes | None, int, str]:
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None, size, _LEFT
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, size, _TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body", False):
            return (chunk if len(chunks) == 1 else b"".join(chunks)), size, _WHOLE


def create_app(config: EndpointConfig) -> FastAPI:
    """Build the endpoint's ASGI app."""
    model = config.model
    state = {"ready": False}
    rows = example_records(model)
    keys = config.keys
    log = config.request_log
    capture = config.capture
    explainers = ExplainerCache(model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Warm up: compile the row scorer and touch every code path once.
        model.score_records(rows[:1])
        # Move everything loaded so far (pandas, scikit-learn, the model) out of the
        # garbage collector's reach: full collections then stay short, and so does p99.
        gc.collect()
        gc.freeze()
        state["ready"] = True
        yield
        if log is not None:
            log.close()
        if capture is not None:
            capture.close()

    app = FastAPI(
        title="titanicml online endpoint",
        version=config.model_version,
        description=f"Scores rows with model {config.model_name}:{config.model_version}.",
        lifespan=lifespan,
    )

    @app.get("/", include_in_schema=False)
    @app.get("/health", summary="Liveness")
    async def health() -> Response:
        return _json({"status": "Healthy"})

    @app.get("/ready", summary="Readiness")
    async def ready() -> Response:
        if not state["ready"]:
            return _json({"status": "loading"}, 503)
        return _json(
            {"status": "Ready", "model": config.model_name, "version": config.model_version}
        )

    @app.get("/info", summary="Model information")
    async def info() -> Response:
        return _json(
            {
                "model": config.model_name,
                "version": config.model_version,
                "task": model.task,
                "classes": model.labels,
                "input_columns": [{"name": c.name, "dtype": c.dtype} for c in model.plan.inputs],
                "auth": "key" if config.keys else "none",
            }
        )

    def record(
        entry: dict[str, Any],
        status: int,
        request_id: str,
        started: float,
        body: bytes | None = None,
    ) -> None:
        # A dict handed to the log's and the capture's queues, serialized on their threads.
        if log is None and capture is None:
            return
        line = {
            "time": time.time(),
            "request_id": request_id,
            "model": config.model_name,
            "version": config.model_version,
            "status": status,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            **entry,
        }
        if log is not None:
            log.write(line)
        if capture is not None:
            capture.add(line, body)

    def refuse(
        status: int,
        code: str,
        message: str,
        request_id: str,
        started: float,
        entry: dict[str, Any],
        body: bytes | None = None,
    ) -> Response:
        response = _error(status, code, message, request_id)
        entry["error"] = {"code": code, "message": message}
        record(entry, status, request_id, started, body)
        return response

    async def explain(
        records: list[dict[str, Any]], top: int, predicted: list, inline: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # The first explain request builds the explainer (shap may load): off the loop.
        explainer = explainers.built() or await run_in_threadpool(explainers.get)
        if inline:
            return explainer.explain(records, top, predicted)
        return await run_in_threadpool(explainer.explain, records, top, predicted)

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        request_id = request_id_of(request)
        entry: dict[str, Any] = {}
        body: bytes | None = None
        try:
            if keys is not None and not authorized(
                request.headers.get("authorization"), keys.current()
            ):
                # An unauthorized body is not read: its declared size is logged.
                entry["body_bytes"] = _declared_size(request)
                return refuse(401, "Unauthorized", _UNAUTHORIZED, request_id, started, entry)
            body, size, ending = await _read_body(request, config.max_body_bytes)
            entry["body_bytes"] = size
            if body is None:
                return refuse(*_unread(ending, request, config), request_id, started, entry)
            try:
                dialect, records = parse_request(body, request.headers.get("content-type"))
                entry["dialect"], entry["inputs"] = dialect, records
                top = explain_option(body, dialect != "csv", request.scope["query_string"])
                inline = len(records) <= _INLINE_ROWS
                if inline:
                    scored = model.score_records(records)
                else:
                    scored = await run_in_threadpool(model.score_records, records)
                if top is not None:
                    entry["explain"] = top
                    explained = await explain(records, top, scored.labels, inline)
            except RequestError as exc:
                status = exc.status
                return refuse(status, "BadRequest", str(exc), request_id, started, entry, body)
            except DataError as exc:
                return refuse(400, "BadRequest", str(exc), request_id, started, entry, body)
            except NotExplainable as exc:
                return refuse(
                    NOT_EXPLAINABLE, "NotImplemented", str(exc), request_id, started, entry, body
                )
            result = response_payload(
                model, scored, config.model_name, config.model_version, request_id
            )
            if top is not None:
                result["explanations"], result["explanation"] = explained
            entry["predictions"] = scored.labels
            entry["probabilities"] = result.get("probabilities")
            response = _json(result, headers=_id_headers(request_id))
            record(entry, 200, request_id, started)
            return response
        except Exception as exc:
            # A fault, not a bad request: the server answers 500, and the log says so.
            entry["error"] = {"code": "InternalServerError", "message": repr(exc)}
            record(entry, 500, request_id, started, body)
            raise

    doc = score_doc(rows, secured=keys is not None)
    for path, name in (("/score", "Score rows"), ("/invocations", "Score rows (MLflow route)")):
        app.add_api_route(path, score, methods=["POST"], summary=name, openapi_extra=doc)
    if keys is not None:
        declare_bearer(app)
    return app


def _unread(ending: str, request: Request, config: EndpointConfig) -> tuple[int, str, str]:
    """Return the status, code and message of a body that was not read whole."""
    if ending == _TOO_LARGE:
        return (
            413,
            "PayloadTooLarge",
            f"the body is over {config.max_body_bytes} bytes; split the batch "
            "or use 'titanicml batch-endpoint invoke' for files",
        )
    if ending == _LATE:
        seconds = request.scope[BODY_DEADLINE][1]
        return (
            408,
            "RequestTimeout",
            f"the body did not arrive within {seconds:g} s of the headers; send it at once, "
            "or split the batch",
        )
    return (
        CLIENT_LEFT,
        "ClientDisconnect",
        "the client closed the connection before its body arrived; nothing was scored",
    )
