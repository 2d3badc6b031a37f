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
wrong key), 413 (body too large), 415 (unsupported content type). Every answer
of the score routes, success or error, is one line of the request log.

The OpenAPI document declares the ``bearer`` security scheme (when keys are on)
and shows request examples made of the served model's own input example.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from titanicml.exceptions import DataError, RequestError
from titanicml.model.dialects import DIALECTS, parse_request
from titanicml.model.payload import error_payload, response_payload
from titanicml.serve.auth import authorized

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel
    from titanicml.serve.auth import EndpointKeys
    from titanicml.serve.requestlog import RequestLog

__all__ = ["DEFAULT_MAX_BODY_BYTES", "EndpointConfig", "create_app"]

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
# Larger batches are scored in a worker thread, so the event loop keeps serving.
_INLINE_ROWS = 256


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
        Where every answer of the score routes is logged (successes and errors).
    max_body_bytes : int
        Larger bodies are refused with 413.
    """

    model: TabularModel
    model_name: str
    model_version: str
    keys: EndpointKeys | None
    request_log: RequestLog | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


_UNAUTHORIZED = (
    "missing or wrong key: send the header 'Authorization: Bearer <key>' "
    "with a key from 'titanicml online-endpoint get-credentials'"
)
# The key scheme the score routes declare in the OpenAPI document. It is not a
# route dependency: :func:`.auth.authorized` checks the header (in constant time),
# and the document gets the scheme from :func:`_declare_bearer`, so no request pays
# for FastAPI's dependency resolution.
_BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An endpoint key from 'titanicml online-endpoint get-credentials'.",
    auto_error=False,
)


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


def _declared_size(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def _read_body(request: Request, limit: int) -> tuple[bytes | None, int]:
    """Return the body and its size; the body is ``None`` when it is over ``limit``.

    A refused body is not read further: its size is then the declared
    ``content-length``, or the bytes that arrived before the refusal.
    """
    declared = _declared_size(request)
    if declared is not None and declared > limit:
        return None, declared
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None, size
        chunks.append(chunk)
    return b"".join(chunks), size


# What an example row holds for a column of each type, when the model has no input example.
_PLACEHOLDERS: dict[str, Any] = {
    "integer": 0,
    "number": 0.0,
    "string": "text",
    "datetime": "2024-05-01",
}


def _json_ready(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # a date or time
        return value.isoformat()
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if value is None or isinstance(value, bool | int | str) else str(value)


def _example_rows(model: TabularModel) -> list[dict[str, Any]]:
    """Rows to show a caller: the model's input example, or one placeholder row.

    Parameters
    ----------
    model : TabularModel
        The served model; ``model.info["input_example"]`` holds a few training rows.

    Returns
    -------
    list of dict
        ``{column: value}`` records over the model's input columns, JSON-ready.
    """
    inputs = model.input_columns
    stored = (model.info or {}).get("input_example") or []
    rows = [{c: _json_ready(row[c]) for c in inputs if c in row} for row in stored]
    rows = [row for row in rows if row]
    if rows:
        return rows
    return [{c.name: _PLACEHOLDERS.get(c.dtype) for c in model.plan.inputs}]


def _score_doc(rows: list[dict[str, Any]], secured: bool) -> dict[str, Any]:
    """Return the score routes' OpenAPI fields, with request examples made of ``rows``.

    Parameters
    ----------
    rows : list of dict
        Example records (see :func:`_example_rows`); every dialect's example shows them.
    secured : bool
        Whether the routes require the bearer key.
    """
    columns = list(dict.fromkeys(c for row in rows for c in row))
    split = [[row.get(c) for c in columns] for row in rows]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in values] for values in split])
    examples = {
        "hands-on": {"summary": "the hands-on's curl", "value": {"data": rows[:1]}},
        "azure input_data": {
            "summary": "Azure ML MLflow deployments",
            "value": {
                "input_data": {"columns": columns, "index": list(range(len(rows))), "data": split}
            },
        },
        "mlflow dataframe_split": {
            "value": {"dataframe_split": {"columns": columns, "data": split}}
        },
        "mlflow dataframe_records": {"value": {"dataframe_records": rows}},
    }
    doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "Exactly one of the keys: " + ", ".join(DIALECTS),
                        "properties": {key: {} for key in DIALECTS},
                    },
                    "examples": examples,
                },
                "text/csv": {"schema": {"type": "string"}, "example": text.getvalue()},
            },
        },
        "responses": {
            "200": {"description": "predictions, class probabilities, model name and version"},
            "400": {"description": "malformed body, unknown or wrong-typed column, empty batch"},
            **({"401": {"description": "missing or wrong key"}} if secured else {}),
            "413": {"description": "body over the size limit"},
            "415": {"description": "unsupported content type"},
        },
    }
    if secured:
        doc["security"] = [{_BEARER.scheme_name: []}]
    return doc


def _declare_bearer(app: FastAPI) -> None:
    """Add :data:`_BEARER` to the app's OpenAPI ``components.securitySchemes``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[_BEARER.scheme_name] = _BEARER.model.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(config: EndpointConfig) -> FastAPI:
    """Build the endpoint's ASGI app."""
    model = config.model
    state = {"ready": False}
    rows = _example_rows(model)
    log = config.request_log

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

    def record(entry: dict[str, Any], status: int, request_id: str, started: float) -> None:
        # A dict handed to the log's queue; it is serialized on the log's own thread.
        if log is not None:
            log.write(
                {
                    "time": time.time(),
                    "request_id": request_id,
                    "model": config.model_name,
                    "version": config.model_version,
                    "status": status,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    **entry,
                }
            )

    def refuse(
        status: int,
        code: str,
        message: str,
        request_id: str,
        started: float,
        entry: dict[str, Any],
    ) -> Response:
        response = _error(status, code, message, request_id)
        entry["error"] = {"code": code, "message": message}
        record(entry, status, request_id, started)
        return response

    async def score(request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        entry: dict[str, Any] = {}
        try:
            if config.keys is not None and not authorized(
                request.headers.get("authorization"), config.keys
            ):
                # An unauthorized body is not read: its declared size is logged.
                entry["body_bytes"] = _declared_size(request)
                return refuse(401, "Unauthorized", _UNAUTHORIZED, request_id, started, entry)
            body, size = await _read_body(request, config.max_body_bytes)
            entry["body_bytes"] = size
            if body is None:
                message = (
                    f"the body is over {config.max_body_bytes} bytes; split the batch "
                    "or use 'titanicml batch-endpoint invoke' for files"
                )
                return refuse(413, "PayloadTooLarge", message, request_id, started, entry)
            try:
                dialect, records = parse_request(body, request.headers.get("content-type"))
                entry["dialect"], entry["inputs"] = dialect, records
                if len(records) <= _INLINE_ROWS:
                    scored = model.score_records(records)
                else:
                    scored = await run_in_threadpool(model.score_records, records)
            except RequestError as exc:
                return refuse(exc.status, "BadRequest", str(exc), request_id, started, entry)
            except DataError as exc:
                return refuse(400, "BadRequest", str(exc), request_id, started, entry)
            result = response_payload(
                model, scored, config.model_name, config.model_version, request_id
            )
            entry["predictions"] = scored.labels
            entry["probabilities"] = result.get("probabilities")
            response = _json(result, headers={"x-request-id": request_id})
            record(entry, 200, request_id, started)
            return response
        except Exception as exc:
            # A fault, not a bad request: the server answers 500, and the log says so.
            entry["error"] = {"code": "InternalServerError", "message": repr(exc)}
            record(entry, 500, request_id, started)
            raise

    doc = _score_doc(rows, secured=config.keys is not None)
    for path, name in (("/score", "Score rows"), ("/invocations", "Score rows (MLflow route)")):
        app.add_api_route(path, score, methods=["POST"], summary=name, openapi_extra=doc)
    if config.keys is not None:
        _declare_bearer(app)
    return app
