"""A production window: its length, its rows (sampled in bounded memory), labels, refusals.

:func:`parse_window` reads ``1d``, ``12h``, ``30m``, ``2w`` (or Azure's ISO 8601
``P7D``, ``PT12H``) as seconds. :func:`read_window` streams ``[start, end)`` of an
endpoint's production data (:func:`titanicml.monitor.store.scan_window`, one record
batch at a time) and keeps:

- a uniform sample of at most ``max_rows`` answered rows (status 200): every row gets a
  random key and the ``max_rows`` smallest keys are kept batch after batch, so memory
  is the sample plus one batch whatever the window holds;
- exact counts: rows, requests, answered rows, refused requests by status and error
  code (the 4xx causes), the models that answered.

Labels (:mod:`titanicml.monitor.labels`) are joined to the sample by request id and
row; the latest label of a row wins.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.capture.records import INPUT_PREFIX, PROBABILITY_PREFIX
from titanicml.exceptions import ConfigError
from titanicml.monitor.store import labels_dataset, requests_dataset, scan_window

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DEFAULT_SAMPLE_ROWS", "Window", "parse_window", "read_window"]

#: Answered rows kept for the signals; a larger window is sampled uniformly.
DEFAULT_SAMPLE_ROWS = 200_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$",
    re.IGNORECASE,
)
_KEPT = (
    "request_id",
    "row",
    "time",
    "status",
    "mirror",
    "model_name",
    "model_version",
    "deployment",
)
_ERRORS = ("error_code", "error_message")
#: Columns counted but not kept in the sample.
_DROPPED = (*_ERRORS, "status", "mirror")


def parse_window(text: str | float) -> float:
    """Return a window length in seconds: ``1d``, ``12h``, ``30m``, ``2w``, ``P7D``, ``PT12H``.

    Raises
    ------
    ConfigError
        For anything else (the message shows the forms).
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        short, iso = _SHORT.match(value), _ISO.match(value)
        if short:
            seconds = float(short.group(1)) * _UNITS[short.group(2).lower()]
        elif iso and any(iso.groupdict().values()):
            seconds = sum(
                int(amount) * _UNITS[unit] for unit, amount in iso.groupdict().items() if amount
            )
        else:
            seconds = 0.0
    if not seconds > 0:
        raise ConfigError(
            f"window {text!r} is not a duration; write a number and a unit: 30m, 12h, 1d, 2w "
            "(or ISO 8601 as Azure writes it: P7D, PT12H)"
        )
    return seconds


@dataclass
class Window:
    """The rows of one production window and what was counted over all of them.

    Attributes
    ----------
    start, end : float
        Unix seconds, ``[start, end)``.
    frame : DataFrame
        The sampled answered rows: one column per model input (``input_`` prefix
        removed), ``prediction``, ``probability_<class>``, ``label`` (None when not
        labelled), ``request_id``, ``row``, ``time``, ``model_name``, ``model_version``.
    rows, answered, requests : int
        Rows of the window, answered rows (status 200), requests (row 0 of each).
    refused : Counter
        Refused requests by ``(status, error_code)``; ``examples`` holds one message each.
    models : Counter
        Answered rows by ``(model_name, model_version)``.
    latest_model : tuple of str, optional
        The model of the latest answered row.
    latest_deployment : str, optional
        The deployment that answered it.
    """

    start: float
    end: float
    frame: pd.DataFrame
    rows: int = 0
    answered: int = 0
    requests: int = 0
    refused: Counter = field(default_factory=Counter)
    examples: dict[tuple[int, str], str] = field(default_factory=dict)
    models: Counter = field(default_factory=Counter)
    latest_model: tuple[str, str] | None = None
    latest_deployment: str | None = None
    inputs: list[str] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        """Whether the frame is a sample of the answered rows."""
        return len(self.frame) < self.answered

    @property
    def labelled(self) -> int:
        """Sampled rows with a label."""
        return int(self.frame["label"].notna().sum()) if "label" in self.frame else 0


def read_window(
    endpoint: str,
    start: float,
    end: float,
    workspace: str | Path | None = None,
    deployment: str | None = None,
    max_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
) -> Window:
    """Read ``[start, end)`` of an endpoint's production data (bounded memory).

    Mirror copies are left out unless a ``deployment`` is named (then they are the
    rows it answered for mirrored traffic).

    Raises
    ------
    ConfigError
        If the endpoint has no production data.
    """
    import numpy as np
    import pyarrow as pa

    schema = requests_dataset(endpoint, workspace, deployment, start, end).schema
    names = schema.names
    data_columns = [
        n for n in names if n.startswith((INPUT_PREFIX, PROBABILITY_PREFIX)) or n == "prediction"
    ]
    columns = [*(c for c in _KEPT if c in names), *_ERRORS, *data_columns]
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    keys = np.empty(0)
    window = Window(start, end, None)  # type: ignore[arg-type]
    latest = -1.0
    bound = 1.0  # keys of the kept rows are below it
    batches = scan_window(
        endpoint, start, end, columns, workspace, deployment, include_mirror=deployment is not None
    )
    for batch in batches:
        table = pa.Table.from_batches([batch])
        ok = _count(window, table)
        if ok == 0:
            continue
        answered = table if ok == table.num_rows else table.filter(_ok(table))
        moment, model, deployed = _latest(answered)
        if moment >= latest:
            latest, window.latest_model, window.latest_deployment = moment, model, deployed
        answered = answered.drop_columns([c for c in _DROPPED if c in answered.column_names])
        draw = rng.random(answered.num_rows)
        if draw.size and draw.min() >= bound:
            continue
        if bound < 1.0:  # a row whose key is above the sample's largest is never kept
            chosen = draw < bound
            answered, draw = answered.filter(pa.array(chosen)), draw[chosen]
        kept = answered if kept is None else pa.concat_tables([kept, answered])
        keys = np.concatenate([keys, draw])
        if kept.num_rows > 2 * max_rows:  # trimmed now and then: fewer copies
            kept, keys = _smallest(kept, keys, max_rows)
            bound = float(keys.max())
    if kept is not None and kept.num_rows > max_rows:
        kept, keys = _smallest(kept, keys, max_rows)
    window.inputs = [n.removeprefix(INPUT_PREFIX) for n in names if n.startswith(INPUT_PREFIX)]
    window.frame = _to_frame(kept, schema, columns)
    _join_labels(window.frame, endpoint, workspace)
    return window


def _smallest(kept: pa.Table, keys: Any, count: int) -> tuple[pa.Table, Any]:
    """Keep the ``count`` rows of smallest key (a uniform sample), in their order."""
    import numpy as np
    import pyarrow as pa

    chosen = np.sort(np.argpartition(keys, count)[:count])
    return kept.take(pa.array(chosen)), keys[chosen]


def _ok(table: pa.Table) -> Any:
    import pyarrow.compute as pc

    return pc.fill_null(pc.equal(table.column("status"), 200), False)


def _count(window: Window, table: pa.Table) -> int:
    """Add one batch's rows, requests, refusals and models to the window's counts.

    One aggregation per batch: rows by status, error code and model, with how many
    are a request's first row and the first error message of each group. Returns the
    batch's answered rows.
    """
    import pyarrow.compute as pc

    keys = ["status", "error_code"]
    keys += [c for c in ("model_name", "model_version") if c in table.column_names]
    first_rows = pc.equal(table.column("row"), 0)
    grouped = table.select([*keys, "error_message"]).append_column("first_row", first_rows)
    counts = grouped.group_by(keys, use_threads=False).aggregate(
        [([], "count_all"), ("first_row", "sum"), ("error_message", "first")]
    )
    answered = 0
    for entry in counts.to_pylist():
        rows = int(entry["count_all"])
        window.rows += rows
        window.requests += int(entry["first_row_sum"] or 0)
        if entry["status"] == 200:
            answered += rows
            if "model_name" in entry:
                model = (str(entry["model_name"]), str(entry["model_version"]))
                window.models[model] += rows
            continue
        key = (int(entry["status"] or 0), entry["error_code"] or "unknown")
        window.refused[key] += rows
        window.examples.setdefault(key, entry["error_message_first"] or "")
    window.answered += answered
    return answered


def _latest(answered: pa.Table) -> tuple[float, tuple[str, str], str | None]:
    """Return the time, model and deployment of a table's latest row."""
    import pyarrow.compute as pc

    index = pc.index(answered.column("time"), pc.max(answered.column("time"))).as_py()
    moment = answered.column("time")[index].as_py()
    name = str(answered.column("model_name")[index].as_py())
    version = str(answered.column("model_version")[index].as_py())
    deployed = answered.column("deployment")[index].as_py()
    return moment.timestamp() if moment else time.time(), (name, version), deployed


def _to_frame(kept: pa.Table | None, schema: pa.Schema, columns: list[str]) -> pd.DataFrame:
    """Return the sampled rows as pandas, input columns under the model's own names."""
    import pyarrow as pa

    if kept is None:
        fields = [schema.field(c) for c in columns]
        kept = pa.Table.from_batches([], pa.schema(fields))
    kept = kept.drop_columns([c for c in _DROPPED if c in kept.column_names])
    renamed = [
        c.removeprefix(INPUT_PREFIX) if c.startswith(INPUT_PREFIX) else c for c in kept.column_names
    ]
    frame = kept.rename_columns(renamed).to_pandas()
    return frame.reset_index(drop=True)


def _join_labels(frame: pd.DataFrame, endpoint: str, workspace: str | Path | None) -> None:
    """Add ``label``: each row's latest label (by id and row, or by id for every row)."""
    import pandas as pd

    dataset = labels_dataset(endpoint, workspace)
    frame["label"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if dataset is None or frame.empty:
        return
    labels = dataset.to_table(columns=["request_id", "row", "label", "labelled_at"])
    labels = labels.sort_by([("labelled_at", "ascending")]).to_pylist()
    by_row: dict[tuple[str, int], Any] = {}
    by_request: dict[str, tuple[int, Any]] = {}
    for order, entry in enumerate(labels):
        if entry["row"] is None:
            by_request[entry["request_id"]] = (order, entry["label"])
        else:
            by_row[(entry["request_id"], entry["row"])] = (order, entry["label"])
    values = []
    for request_id, row in zip(frame["request_id"], frame["row"], strict=True):
        one = by_row.get((request_id, int(row)))
        every = by_request.get(request_id)
        best = max((c for c in (one, every) if c is not None), default=None)
        values.append(None if best is None else best[1])
    # object dtype: a float column would turn label 1 into "1.0", which no class is
    frame["label"] = pd.Series(values, index=frame.index, dtype=object)
