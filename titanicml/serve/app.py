"""The online endpoint: an ASGI app (FastAPI on uvicorn) that scores rows with key auth.

=====================  ======================================================
route                  answer
=====================  ======================================================
``POST /score``        predictions for any dialect of :mod:`.dialects`
``POST /invocations``  the same (MLflow's route name)
``GET /``, ``/health`` liveness
``GET /ready``         readiness: the model is loaded and warmed up
``GET /info``          model name, version, task, classes, input columns
``GET /openapi.json``  the OpenAPI document (``/docs`` renders it)
=====================  ======================================================

Bad requests get a JSON error naming the problem and a 4xx status: 400
(malformed body, unknown or wrong-typed column, empty batch), 401 (missing or
wrong key), 413 (body too large), 415 (unsupported content type).
"""

from __future__ import annotations

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

from titanicml.exceptions import DataError
from titanicml.serve.auth import authorized
from titanicml.serve.dialects import DIALECTS, RequestError, parse_request
from titanicml.serve.payload import error_payload, response_payload

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.serve.auth import EndpointKeys
    from titanicml.serve.requestlog import RequestLog

__all__ = ["DEFAULT_MAX_BODY_BYTES", "EndpointConfig", "create_app"]

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
# Larger batches are scored in a worker thread, so the event loop keeps serving.
_INLINE_ROWS = 256


class _BodyTooLarge(Exception):
    pass


@dataclass
class EndpointConfig:
    """How an endpoint serves one model.

    Attributes
    ----------
    model : TabularModel
        The loaded model.
    model_name, model_version : str
        Reported with every response.
    keys : EndpointKeys or None
        ``None`` switches authentication off.
    request_log : RequestLog or None
        Where scored requests are logged.
    max_body_bytes : int
        Larger bodies are refused with 413.
    """

    model: TabularModel
    model_name: str
    model_version: str
    keys: EndpointKeys | None
    request_log: RequestLog | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(content, separators=(",", ":"), default=_plain).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="titanicml"'
    return _json(error_payload(code, message), status, headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


_REQUEST_EXAMPLES = {
    "hands-on": {"value": {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}},
    "azure input_data": {
        "value": {
            "input_data": {
                "columns": ["Age", "Pclass", "Sex"],
                "index": [0],
                "data": [[22, 3, "male"]],
            }
        }
    },
    "mlflow dataframe_split": {
        "value": {
            "dataframe_split": {"columns": ["Age", "Pclass", "Sex"], "data": [[22, 3, "male"]]}
        }
    },
    "mlflow dataframe_records": {"value": {"dataframe_records": [{"Age": 22, "Sex": "male"}]}},
}
_SCORE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "Exactly one of the keys: " + ", ".join(DIALECTS),
                    "properties": {key: {} for key in DIALECTS},
                },
                "examples": _REQUEST_EXAMPLES,
            },
            "text/csv": {"schema": {"type": "string"}, "example": "Age,Pclass,Sex\n22,3,male\n"},
        },
    },
    "responses": {
        "200": {"description": "predictions, class probabilities, model name and version"},
        "400": {"description": "malformed body, unknown or wrong-typed column, empty batch"},
        "401": {"description": "missing or wrong key"},
        "413": {"description": "body over the size limit"},
        "415": {"description": "unsupported content type"},
    },
    "security": [{"bearer": []}],
}


def create_app(config: EndpointConfig) -> FastAPI:
    """Build the endpoint's ASGI app."""
    model = config.model
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Warm up: compile the row scorer and touch every code path once.
        example = model.info.get("input_example") or [{}]
        model.score_records([{k: v for k, v in example[0].items() if k in model.input_columns}])
        # Move everything loaded so far (pandas, scikit-learn, the model) out of the
        # garbage collector's reach: full collections then stay short, and so does p99.
        gc.collect()
        gc.freeze()
        state["ready"] = True
        yield
        if config.request_log is not None:
            config.request_log.close()

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
                "classes": model.classes,
                "input_columns": [{"name": c.name, "dtype": c.dtype} for c in model.plan.inputs],
                "auth": "key" if config.keys else "none",
            }
        )

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        if config.keys is not None and not authorized(
            request.headers.get("authorization"), config.keys
        ):
            return _error(
                401,
                "Unauthorized",
                "missing or wrong key: send the header 'Authorization: Bearer <key>' "
                "with a key from 'titanicml online-endpoint get-credentials'",
                request_id,
            )
        try:
            body = await _read_body(request, config.max_body_bytes)
        except _BodyTooLarge:
            return _error(
                413,
                "PayloadTooLarge",
                f"the body is over {config.max_body_bytes} bytes; split the batch "
                "or use 'titanicml batch-endpoint invoke' for files",
                request_id,
            )
        try:
            dialect, records = parse_request(body, request.headers.get("content-type"))
            if len(records) <= _INLINE_ROWS:
                scored = model.score_records(records)
            else:
                scored = await run_in_threadpool(model.score_records, records)
        except RequestError as exc:
            return _error(exc.status, "BadRequest", str(exc), request_id)
        except DataError as exc:
            return _error(400, "BadRequest", str(exc), request_id)
        result = response_payload(
            model, scored, config.model_name, config.model_version, request_id
        )
        latency = (time.perf_counter() - started) * 1000
        if config.request_log is not None:
            config.request_log.write(
                {
                    "time": time.time(),
                    "request_id": request_id,
                    "model": config.model_name,
                    "version": config.model_version,
                    "dialect": dialect,
                    "inputs": records,
                    "predictions": scored.labels,
                    "probabilities": result.get("probabilities"),
                    "latency_ms": round(latency, 3),
                    "status": 200,
                }
            )
        return _json(result, headers={"x-request-id": request_id})

    for path, name in (("/score", "Score rows"), ("/invocations", "Score rows (MLflow route)")):
        app.add_api_route(path, score, methods=["POST"], summary=name, openapi_extra=_SCORE_DOC)
    return app
