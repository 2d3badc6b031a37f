"""``titanicml monitor status``: what an endpoint's production data holds.

Rows are counted from the Parquet footers and the time span is read from the
``time`` column's statistics, so the status of a large store costs one footer
read per file, not a scan; the labelled share scans the ids only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from titanicml.capture.layout import endpoint_dir, labels_dir, read_settings
from titanicml.monitor.labels import count_labelled
from titanicml.monitor.store import partition_folders, requests_dataset

__all__ = ["format_status", "store_status"]


def store_status(endpoint: str, workspace: str | Path | None = None) -> dict[str, Any]:
    """Describe an endpoint's production data.

    Returns
    -------
    dict
        ``endpoint``, ``folder``, ``rows``, ``first``/``last`` (ISO times, UTC),
        ``partitions`` (hour folders), ``files``, ``bytes`` (on disk, labels
        included), ``labels``, ``labelled_rows``, ``labelled_share``, and per
        deployment its ``rows``, ``partitions``, ``retention_days`` and
        ``sampling_rate``.

    Raises
    ------
    ConfigError
        If the endpoint has no production data.
    """
    import pyarrow.parquet as pq

    dataset = requests_dataset(endpoint, workspace)
    settings = read_settings(endpoint_dir(endpoint, workspace))
    deployments: dict[str, dict[str, Any]] = {
        name: {
            "rows": 0,
            "partitions": 0,
            "retention_days": chosen.get("retention_days"),
            "sampling_rate": chosen.get("sampling_rate", 1.0),
            "model": chosen.get("model"),
        }
        for name, chosen in settings.items()
    }
    for hour in partition_folders(endpoint, workspace):
        name = hour.parent.name.removeprefix("deployment=")
        deployments.setdefault(name, {"rows": 0, "partitions": 0})["partitions"] += 1
    rows, size, low, high = 0, 0, None, None
    for path in dataset.files:
        metadata = pq.ParquetFile(path).metadata
        rows += metadata.num_rows
        size += Path(path).stat().st_size
        deployment = Path(path).parent.parent.name.removeprefix("deployment=")
        deployments.setdefault(deployment, {"rows": 0, "partitions": 0})["rows"] += (
            metadata.num_rows
        )
        low, high = _span(metadata, low, high)
    label_files = list(labels_dir(endpoint, workspace).glob("part-*.parquet"))
    labels = sum(pq.ParquetFile(p).metadata.num_rows for p in label_files)
    labelled = count_labelled(endpoint, workspace) if labels else 0
    return {
        "endpoint": endpoint,
        "folder": str(endpoint_dir(endpoint, workspace)),
        "rows": rows,
        "first": _iso(low),
        "last": _iso(high),
        "partitions": sum(d["partitions"] for d in deployments.values()),
        "files": len(dataset.files),
        "bytes": size + sum(p.stat().st_size for p in label_files),
        "labels": labels,
        "labelled_rows": labelled,
        "labelled_share": labelled / rows if rows else 0.0,
        "deployments": deployments,
    }


def _span(metadata: Any, low: Any, high: Any) -> tuple[Any, Any]:
    """Widen ``[low, high]`` by the ``time`` statistics of one file's row groups."""
    index = metadata.schema.to_arrow_schema().get_field_index("time")
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            continue
        low = stats.min if low is None or stats.min < low else low
        high = stats.max if high is None or stats.max > high else high
    return low, high


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def format_status(status: dict[str, Any]) -> str:
    """Return the status as the lines ``monitor status`` prints."""
    lines = [
        f"endpoint {status['endpoint']}: {status['rows']:,} rows, "
        f"{status['first'] or '-'} to {status['last'] or '-'}",
        f"  {status['partitions']} hour partition(s), {status['files']} file(s), "
        f"{_size(status['bytes'])} on disk ({status['folder']})",
        f"  labels: {status['labels']:,}; labelled rows: {status['labelled_rows']:,} "
        f"({status['labelled_share']:.1%})",
    ]
    for name, deployment in sorted(status["deployments"].items()):
        days = deployment.get("retention_days")
        keep = "kept until removed" if days is None else f"retention {days:g} days"
        rate = deployment.get("sampling_rate")
        sampling = "sampling rate ?" if rate is None else f"sampling rate {rate:g}"
        lines.append(
            f"  deployment {name}: {deployment['rows']:,} rows, "
            f"{deployment['partitions']} partition(s), {keep}, {sampling}"
        )
    return "\n".join(lines)
