"""Every request body titanicml's endpoints accept, turned into a list of records.

============================  =================================================
dialect                       body
============================  =================================================
``data``                      ``{"data": [{"Age": 22, ...}]}`` (the hands-on's curl)
``input_data``                ``{"input_data": {"columns": [...], "index": [...],
                              "data": [[...]]}}`` (Azure ML's MLflow deployments)
``dataframe_split``           ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``
``dataframe_records``         ``{"dataframe_records": [{...}]}``
``instances``                 ``{"instances": [{...}]}``
``inputs``                    ``{"inputs": {"Age": [22, 30]}}`` or ``[{...}]``
``csv``                       ``text/csv`` with a header row
============================  =================================================

Only the standard library is used, so parsing costs microseconds. Hostile bodies
get a :class:`~titanicml.exceptions.RequestError` (a 400), never another error:
JSON nested too deeply to parse, integers over Python's digit limit, and cells that
are not a number, a string, a boolean or null (a list or an object) are refused.
``NaN``, ``Infinity`` and numbers beyond a float's range are read as Python floats;
the model refuses the infinite ones and imputes ``NaN`` as a missing value.
"""

from __future__ import annotations

import csv
import io
import json
import reprlib
import sys
from collections.abc import Callable
from typing import Any

from titanicml.exceptions import RequestError

__all__ = ["DIALECTS", "parse_request", "shown"]

Records = list[dict[str, Any]]
# The types of the values a cell may hold, as json.loads makes them.
_SCALARS = frozenset({str, int, float, bool, type(None)})
# A short repr for messages, whatever the caller sent (long strings, huge keys).
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60


def shown(value: Any) -> str:
    """Return a short ``repr`` of a value sent by a caller, for an error message."""
    return _SHORT.repr(value)


def _check_cells(records: Records, where: str) -> None:
    """Refuse a cell that is a list or an object: a column holds one value per row."""
    for row in records:
        for value in row.values():
            if type(value) not in _SCALARS:
                _refuse_cell(records, where)


def _refuse_cell(records: Records, where: str) -> None:
    for number, row in enumerate(records):
        for column, value in row.items():
            if type(value) not in _SCALARS:
                kind = "a list" if isinstance(value, list) else "an object"
                raise RequestError(
                    f"row {number} of {where}, column {shown(column)}, holds {kind}; a cell "
                    "must be a number, a string, true, false or null"
                )


def _records(value: Any, where: str) -> Records:
    if not isinstance(value, list):
        raise RequestError(f"{where} must be a list of rows, got {type(value).__name__}")
    if not all(isinstance(row, dict) for row in value):
        raise RequestError(f"every row of {where} must be an object of column: value")
    return value


def _split(value: Any, where: str) -> Records:
    if not isinstance(value, dict) or "columns" not in value or "data" not in value:
        raise RequestError(f'{where} must be an object with "columns" and "data"')
    columns, data = value["columns"], value["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise RequestError(f"{where}.columns must be a list of column names")
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise RequestError(f"{where}.data must be a list of rows (lists of values)")
    for number, row in enumerate(data):
        if len(row) != len(columns):
            raise RequestError(
                f"{where}.data row {number} has {len(row)} values for {len(columns)} columns"
            )
    return [dict(zip(columns, row, strict=True)) for row in data]


def _inputs(value: Any, where: str) -> Records:
    if isinstance(value, dict):
        columns = list(value)
        lists = [value[c] if isinstance(value[c], list) else [value[c]] for c in columns]
        if len({len(v) for v in lists}) > 1:
            raise RequestError(f"the columns of {where} have different lengths")
        return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]
    return _records(value, where)


DIALECTS: dict[str, Callable[[Any, str], Records]] = {
    "data": lambda value, where: (
        _split(value, where) if isinstance(value, dict) else _records(value, where)
    ),
    "input_data": _split,
    "dataframe_split": _split,
    "dataframe_records": _records,
    "instances": _records,
    "inputs": _inputs,
}


def parse_request(body: bytes, content_type: str | None = None) -> tuple[str, Records]:
    """Read a request body into records.

    Parameters
    ----------
    body : bytes
        The raw body.
    content_type : str, optional
        ``text/csv`` for CSV; anything else is read as JSON.

    Returns
    -------
    dialect : str
        Which dialect the body used.
    records : list of dict
        One ``{column: value}`` per row.

    Raises
    ------
    RequestError
        With ``status`` 400 for malformed bodies and 415 for unsupported media types.
    """
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return "csv", _parse_csv(body)
    if media not in ("application/json", "text/json", "", "*/*") and not media.endswith("+json"):
        raise RequestError(
            f"unsupported content type {media!r}; send application/json or text/csv", status=415
        )
    if not body.strip():
        raise RequestError(
            "the request body is empty; send a JSON object such as "
            '{"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}'
        )
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise RequestError(
            "the JSON body is nested too deeply to read; send rows of column: value"
        ) from None
    except ValueError:  # an integer over the int-string conversion limit
        raise RequestError(
            f"the JSON body holds an integer of more than {sys.get_int_max_str_digits()} "
            "digits; send numbers a float can hold (up to about 1.8e308)"
        ) from None
    if not isinstance(payload, dict):
        raise RequestError(
            f"the body must be a JSON object with one of the keys {', '.join(DIALECTS)}; "
            f"got a {type(payload).__name__}"
        )
    keys = [k for k in DIALECTS if k in payload]
    if len(keys) != 1:
        found = ", ".join(map(shown, list(payload)[:10])) or "none"
        raise RequestError(
            f"the body must have exactly one of the keys {', '.join(DIALECTS)} (found: {found})"
        )
    records = DIALECTS[keys[0]](payload[keys[0]], keys[0])
    if not records:
        raise RequestError(f"{keys[0]} holds no rows; send at least one row")
    _check_cells(records, keys[0])
    return keys[0], records


def _parse_csv(body: bytes) -> Records:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError("the CSV body is not UTF-8 text") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise RequestError(
            f"malformed CSV: {exc}; send one header row, then one row per line"
        ) from None
    if len(rows) < 2:
        raise RequestError("the CSV body needs a header row and at least one data row")
    header = rows[0]
    for number, row in enumerate(rows[1:], start=1):
        if len(row) != len(header):
            raise RequestError(f"CSV row {number} has {len(row)} fields for {len(header)} columns")
    # An empty CSV field is a missing value.
    return [
        {c: (v if v != "" else None) for c, v in zip(header, row, strict=True)} for row in rows[1:]
    ]
