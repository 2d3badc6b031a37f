"""The data of a retrain: the champion's table, production rows, the next asset version.

The rows kept out of training for the gate are chosen here too.

The champion's table is found from its own metadata
(:func:`titanicml.data.lineage.training_table`). Production
rows are the endpoint's answered rows (status 200, no mirror copies) with a label
joined, one per request id and row; those whose values (inputs and label) are already
rows of the champion's table are not new, and of new rows with the same values (the
same passenger sent in two requests) only the latest is kept. Of the new rows the most
recent share (by answer time) is kept out of the challenger's training for the gate;
the rest join the champion's table as the asset's next version, its lineage in the
description. So no gate row has the values of a row the challenger trains on.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_RECENT_ROWS",
    "RECENT_SHARE",
    "RetrainData",
    "labelled_rows",
    "retrain_data",
    "split_new_rows",
]

#: Share of the new labelled production rows (the most recent) kept out for the gate.
RECENT_SHARE = 0.2
#: ... and at least this many of them (all of them when there are fewer).
MIN_RECENT_ROWS = 20
#: Upper bound of the labelled rows read from the production data store.
_MAX_ROWS = 10_000_000


@dataclass
class RetrainData:
    """The tables of one retrain.

    Attributes
    ----------
    parent : DataFrame
        The champion's training table (its holdout rows included, as it was given).
    training : DataFrame
        ``parent`` plus the new labelled production rows not kept for the gate: the
        next version of the training data asset.
    recent : DataFrame
        The most recent new labelled production rows, kept out of training for the gate.
    lineage : dict
        Parent asset or file and its sha256, endpoint, time span and row counts.
    """

    parent: pd.DataFrame
    training: pd.DataFrame
    recent: pd.DataFrame
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def new_rows(self) -> int:
        """New labelled production rows (trained on, or kept for the gate)."""
        return int(self.lineage.get("production_rows_new", 0))

    def description(self) -> str:
        """One paragraph for the asset version's description."""
        facts = self.lineage
        return (
            f"retrain of {facts['parent']} (sha256 {facts['parent_sha256'][:12]}) + "
            f"{facts['production_rows_trained']} labelled production row(s) of endpoint "
            f"{facts['endpoint']} answered {facts['window_start']} to {facts['window_end']}; "
            f"{facts['production_rows_labelled']} labelled, {facts['production_rows_known']} "
            f"already in the parent, {facts['production_rows_repeated']} repeating another "
            f"production row, {facts['production_rows_recent']} most recent kept out for the "
            f"gate; {facts['rows']} rows"
        )


def labelled_rows(
    endpoint: str, columns: list[str], target: str, workspace: str | Path | None = None
) -> pd.DataFrame:
    """Return the endpoint's labelled answered rows, oldest first.

    Columns: ``columns`` (those it recorded), ``target`` (the label), ``request_id``,
    ``row`` and ``time``.
    """
    import pandas as pd

    from titanicml.monitor.window import read_window

    window = read_window(endpoint, 0.0, time.time() + 3600, workspace, max_rows=_MAX_ROWS)
    frame = window.frame
    if "label" not in frame.columns:
        return pd.DataFrame(columns=[*columns, target, "request_id", "row", "time"])
    frame = frame[frame["label"].notna()]
    frame = frame.sort_values("time", kind="stable")
    frame = frame.drop_duplicates(["request_id", "row"], keep="last")
    present = [c for c in columns if c in frame.columns and c != target]
    out = frame[present].copy()
    out[target] = frame["label"]
    for key in ("request_id", "row", "time"):
        out[key] = frame[key]
    return out.reset_index(drop=True)


def _like(rows: pd.DataFrame, parent: pd.DataFrame) -> pd.DataFrame:
    """Give the production rows the parent's dtypes where they convert (labels from CSV...)."""
    rows = rows.copy()
    for column in rows.columns:
        if column in parent.columns and rows[column].dtype != parent[column].dtype:
            with contextlib.suppress(TypeError, ValueError):
                rows[column] = rows[column].astype(parent[column].dtype)
    return rows


def split_new_rows(
    production: pd.DataFrame,
    parent: pd.DataFrame,
    recent_share: float = RECENT_SHARE,
    min_recent: int = MIN_RECENT_ROWS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split labelled production rows (oldest first) into rows to train on and gate rows.

    Rows are compared by their values in the columns they share with ``parent`` (inputs
    and label; numbers as numbers): a row equal to a row of ``parent`` is not new, and of
    new rows equal to each other the latest is kept. The most recent ``recent_share`` of
    the new rows (at least ``min_recent``, all of them when there are fewer) are the gate's.

    Returns
    -------
    trained, recent : DataFrame
        New rows to train on (the shared columns), and the gate's (every column).
    counts : dict
        ``known`` (already in ``parent``), ``repeated`` (equal to a later new row),
        ``new``.
    """
    from titanicml.data.holdout import row_keys

    compared = [c for c in production.columns if c in parent.columns]
    keys = row_keys(production, compared)
    known = keys.isin(set(row_keys(parent, compared))).to_numpy()
    repeated = keys.duplicated(keep="last").to_numpy() & ~known
    new = production.loc[~known & ~repeated].reset_index(drop=True)
    n_recent = min(len(new), max(math.ceil(recent_share * len(new)), min_recent))
    recent = new.iloc[len(new) - n_recent :].reset_index(drop=True)
    trained = new.iloc[: len(new) - n_recent][compared].reset_index(drop=True)
    counts = {"known": int(known.sum()), "repeated": int(repeated.sum()), "new": len(new)}
    return trained, recent, counts


def retrain_data(
    endpoint: str,
    parent: pd.DataFrame,
    parent_reference: str,
    parent_sha256: str,
    target: str,
    workspace: str | Path | None = None,
    recent_share: float = RECENT_SHARE,
    min_recent: int = MIN_RECENT_ROWS,
) -> RetrainData:
    """Build the next training table and the gate's production rows.

    The production rows keep the parent's columns they have (the others are missing);
    ``recent`` keeps ``request_id``, ``row`` and ``time`` besides.
    """
    import pandas as pd

    production = labelled_rows(endpoint, list(parent.columns), target, workspace)
    production = _like(production, parent)
    trained, recent, counts = split_new_rows(production, parent, recent_share, min_recent)
    training = pd.concat([parent, trained], ignore_index=True)
    times = production["time"] if len(production) else pd.Series([], dtype="datetime64[us, UTC]")
    lineage = {
        "parent": parent_reference,
        "parent_sha256": parent_sha256,
        "parent_rows": len(parent),
        "endpoint": endpoint,
        "window_start": str(times.min()) if len(times) else None,
        "window_end": str(times.max()) if len(times) else None,
        "production_rows_labelled": len(production),
        "production_rows_known": counts["known"],
        "production_rows_repeated": counts["repeated"],
        "production_rows_new": counts["new"],
        "production_rows_trained": len(trained),
        "production_rows_recent": len(recent),
        "rows": len(training),
    }
    return RetrainData(parent, training, recent, lineage)
