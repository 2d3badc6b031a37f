"""The rows of the production data store: one per input row of an answer or a batch job.

=================  =========================================================
column             meaning
=================  =========================================================
``request_id``     the client's ``x-request-id`` / ``x-ms-client-request-id``,
                   or one made by the server; a batch job's id
``row``            0-based row of the request (of the job, for batch)
``time``           when the answer was given (UTC)
``source``         ``online`` or ``batch``
``mirror``         a copy of mirrored traffic (its answer was discarded)
``model_name``,    the model that answered
``model_version``
``status``         HTTP status (200 for batch rows)
``latency_ms``     the request's time in the server (every row of it)
``error_code``,    for an error answer: its code and message (the 4xx cause)
``error_message``
``raw_request``    the body of a request that was refused (when it was read)
``input_<col>``    one column per input column of the model, typed as trained
``prediction``     the predicted label or value
``probability_*``  one per class
=================  =========================================================

The partition columns (``endpoint``, ``deployment``, ``hour``) are in the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["INPUT_PREFIX", "PROBABILITY_PREFIX", "RowSchema"]

INPUT_PREFIX = "input_"
PROBABILITY_PREFIX = "probability_"
_RAW_LIMIT = 1024 * 1024


def _arrow_type(dtype: str) -> pa.DataType:
    import pyarrow as pa

    return {"integer": pa.int64(), "number": pa.float64()}.get(dtype, pa.string())


def _label_type(labels: list | None) -> pa.DataType:
    import pyarrow as pa

    if labels is None:
        return pa.float64()
    if all(isinstance(v, bool) for v in labels):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return pa.int64()
    return pa.string()


@dataclass(frozen=True)
class RowSchema:
    """The columns of one model's rows: its inputs, prediction and class probabilities."""

    inputs: tuple[tuple[str, str], ...]
    labels: tuple | None

    @classmethod
    def of_model(cls, model: Any) -> RowSchema:
        """Return the schema of a model's answers (a ``TabularModel``)."""
        inputs = tuple((c.name, c.dtype) for c in model.plan.inputs)
        labels = model.labels
        return cls(inputs, None if labels is None else tuple(labels))

    def arrow(self) -> pa.Schema:
        """Return the Parquet files' schema."""
        import pyarrow as pa

        fields = [
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("source", pa.string()),
            ("mirror", pa.bool_()),
            ("model_name", pa.string()),
            ("model_version", pa.string()),
            ("status", pa.int16()),
            ("latency_ms", pa.float64()),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("raw_request", pa.string()),
        ]
        fields += [(INPUT_PREFIX + name, _arrow_type(dtype)) for name, dtype in self.inputs]
        fields.append(("prediction", _label_type(self.labels and list(self.labels))))
        fields += [(f"{PROBABILITY_PREFIX}{label}", pa.float64()) for label in self.labels or ()]
        return pa.schema(fields)

    def answers_table(self, entries: list[tuple[dict[str, Any], bytes | None]]) -> pa.Table:
        """Return the rows of answers: ``(entry, raw body)`` pairs the endpoint queued."""
        import pyarrow as pa

        # One (entry, body, row number, input record) per row, then each column in one
        # comprehension: the writer's thread holds the GIL as briefly as it can.
        rows = []
        for entry, body in entries:
            inputs = entry.get("inputs") if entry.get("status") == 200 else None
            if isinstance(inputs, list) and inputs:
                rows.extend((entry, None, n, r) for n, r in enumerate(inputs))
            else:
                rows.append((entry, None if body is None else body[:_RAW_LIMIT], 0, None))
        errors = [e.get("error") or {} for e, _, _, _ in rows]
        columns: dict[str, list[Any]] = {
            "request_id": [e.get("request_id") for e, _, _, _ in rows],
            "row": [n for _, _, n, _ in rows],
            "time": [int(e["time"] * 1_000_000) for e, _, _, _ in rows],
            "source": ["online"] * len(rows),
            "mirror": [bool(e.get("mirror")) for e, _, _, _ in rows],
            "model_name": [e.get("model") for e, _, _, _ in rows],
            "model_version": [e.get("version") for e, _, _, _ in rows],
            "status": [e.get("status") for e, _, _, _ in rows],
            "latency_ms": [e.get("latency_ms") for e, _, _, _ in rows],
            "error_code": [x.get("code") for x in errors],
            "error_message": [x.get("message") for x in errors],
            "raw_request": [
                None if b is None else b.decode("utf-8", "replace") for _, b, _, _ in rows
            ],
        }
        for name, _ in self.inputs:
            columns[INPUT_PREFIX + name] = [
                r.get(name) if isinstance(r, dict) else None for _, _, _, r in rows
            ]
        columns["prediction"] = [_at(e.get("predictions"), n) for e, _, n, _ in rows]
        shares = [_at(e.get("probabilities"), n) for e, _, n, _ in rows]
        for index, label in enumerate(self.labels or ()):
            columns[f"{PROBABILITY_PREFIX}{label}"] = [
                None if s is None else s[index] for s in shares
            ]
        schema = self.arrow()
        arrays = [_array(columns[f.name], f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)

    def batch_table(
        self,
        frame: pd.DataFrame,
        predictions: pd.DataFrame,
        job_id: str,
        first_row: int,
        model: tuple[str, str],
        seconds: float,
    ) -> pa.Table:
        """Return the rows of one chunk of a batch job (inputs and their predictions)."""
        import numpy as np
        import pyarrow as pa

        schema = self.arrow()
        count = len(frame)
        constant = {
            "request_id": job_id,
            "time": int(seconds * 1_000_000),
            "source": "batch",
            "mirror": False,
            "model_name": model[0],
            "model_version": model[1],
            "status": 200,
        }
        arrays = []
        for field in schema:
            name = field.name
            if name == "row":
                array = pa.array(np.arange(first_row, first_row + count, dtype=np.int32))
            elif name in constant:
                array = pa.array([constant[name]] * count, field.type)
            elif name.startswith(INPUT_PREFIX) and name[len(INPUT_PREFIX) :] in frame.columns:
                array = _from_pandas(frame[name[len(INPUT_PREFIX) :]], field.type)
            elif name in predictions.columns:
                array = _from_pandas(predictions[name], field.type)
            else:
                array = pa.nulls(count, field.type)
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=schema)


def _at(values: list | None, index: int) -> Any:
    return values[index] if values is not None and index < len(values) else None


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """Build a column; a value that does not fit its type becomes null, not an error."""
    import pyarrow as pa

    try:
        return pa.array(values, kind, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([_fit(v, kind) for v in values], kind, from_pandas=True)


def _fit(value: Any, kind: pa.DataType) -> Any:
    import pyarrow as pa

    try:
        return pa.scalar(value, kind).as_py()
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        if pa.types.is_string(kind) and value is not None:
            return str(value)
        return None


def _from_pandas(series: pd.Series, kind: pa.DataType) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.Array.from_pandas(series, type=kind)
    except (pa.ArrowException, TypeError, ValueError):
        return _array(series.astype(object).where(series.notna(), None).tolist(), kind)
