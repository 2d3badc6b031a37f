"""The OpenAPI side of the endpoint: request examples made of the model, the bearer scheme."""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING, Any

from fastapi.security import HTTPBearer

from titanicml.explain.served import DEFAULT_TOP
from titanicml.model.dialects import DIALECTS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from titanicml.model.predictor import TabularModel

__all__ = ["BEARER", "declare_bearer", "example_records", "score_doc"]

# The key scheme the score routes declare in the OpenAPI document. It is not a
# route dependency: :func:`.auth.authorized` checks the header (in constant time),
# and the document gets the scheme from :func:`declare_bearer`, so no request pays
# for FastAPI's dependency resolution.
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An endpoint key from 'titanicml online-endpoint get-credentials'.",
    auto_error=False,
)

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


def example_records(model: TabularModel) -> list[dict[str, Any]]:
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


#: The body's ``explain`` option (:mod:`.explaining`).
EXPLAIN: dict[str, Any] = {
    "description": f"Explain each row: true (the {DEFAULT_TOP} largest contributions, in the "
    'model\'s input columns) or {"top": k}; false or absent: no explanation. See '
    "docs/explain.md for the output space (log-odds, probability or prediction).",
    "oneOf": [
        {"type": "boolean"},
        {
            "type": "object",
            "properties": {"top": {"type": "integer", "minimum": 1, "default": DEFAULT_TOP}},
            "additionalProperties": False,
        },
    ],
}
#: The same option in the URL, for any body (CSV too); not with ``explain`` in the body.
EXPLAIN_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "explain",
        "in": "query",
        "required": False,
        "description": "true: explain each row (as the body's explain option)",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "top",
        "in": "query",
        "required": False,
        "description": f"with explain=true: how many contributions per row (default {DEFAULT_TOP})",
        "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_TOP},
    },
]


def score_doc(rows: list[dict[str, Any]], secured: bool) -> dict[str, Any]:
    """Return the score routes' OpenAPI fields, with request examples made of ``rows``.

    Parameters
    ----------
    rows : list of dict
        Example records (see :func:`example_records`); every dialect's example shows them.
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
        "hands-on, explained": {
            "summary": "the hands-on's curl, with each row's 5 largest contributions",
            "value": {"data": rows[:1], "explain": {"top": 5}},
        },
    }
    doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "Exactly one of the keys: " + ", ".join(DIALECTS),
                        "properties": {**{key: {} for key in DIALECTS}, "explain": EXPLAIN},
                    },
                    "examples": examples,
                },
                "text/csv": {"schema": {"type": "string"}, "example": text.getvalue()},
            },
        },
        "parameters": EXPLAIN_PARAMETERS,
        "responses": {
            "200": {
                "description": "predictions, class probabilities, model name and version; "
                "with explain, each row's largest contributions (explanations)"
            },
            "400": {
                "description": "malformed body, unknown or wrong-typed column, empty batch, "
                "bad explain value"
            },
            **({"401": {"description": "missing or wrong key"}} if secured else {}),
            "408": {"description": "the body did not arrive within the body timeout"},
            "413": {"description": "body over the size limit"},
            "415": {"description": "unsupported content type"},
            "501": {"description": "explain asked of a model that cannot be explained (why)"},
            "503": {"description": "every connection is busy; retry after Retry-After seconds"},
        },
    }
    if secured:
        doc["security"] = [{BEARER.scheme_name: []}]
    return doc


def declare_bearer(app: FastAPI) -> None:
    """Add :data:`BEARER` to the app's OpenAPI ``components.securitySchemes``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER.scheme_name] = BEARER.model.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
