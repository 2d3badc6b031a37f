"""The holdout: rows set apart before a search, and rows told apart by their content.

:func:`split_holdout` sets a share of a table's rows apart (stratified by the target
for classifiers, seeded), or sets given rows apart (a champion's frozen holdout, for
its challenger). :func:`row_keys` gives each row a key of its values, so that the same
passenger read from a CSV file, a Parquet file or the production data store has the
same key (``22`` and ``22.0`` alike, missing values alike).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from titanicml.exceptions import ColumnError, ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["row_keys", "split_holdout", "without_rows"]

_MISSING = "\x00<missing>"


def row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Return a 64-bit key per row of ``frame`` from its values in ``columns``.

    Numbers are compared as floats, everything else as text; missing values are equal
    to each other. Columns absent from ``frame`` count as missing.
    """
    import pandas as pd

    normalized = {}
    for column in columns:
        values = frame[column] if column in frame.columns else pd.Series(pd.NA, frame.index)
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        if pd.api.types.is_numeric_dtype(values):
            text = pd.to_numeric(values, errors="coerce").astype("float64").map(repr)
        else:
            text = values.astype("string")
        normalized[column] = text.where(values.notna(), _MISSING).astype(str)
    table = pd.DataFrame(normalized, index=frame.index)
    return pd.util.hash_pandas_object(table, index=False)


def without_rows(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` without the rows whose values equal a row of ``rows``.

    The comparison is on the columns of ``rows`` (all of them must be in ``frame``).

    Raises
    ------
    ColumnError
        If ``rows`` has a column ``frame`` does not have.
    """
    missing = [c for c in rows.columns if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"the rows to set apart have column(s) {', '.join(map(repr, missing))} that the "
            "data does not have; give rows of the same table"
        )
    columns = list(rows.columns)
    taken = row_keys(frame, columns).isin(set(row_keys(rows, columns)))
    return frame.loc[~taken.to_numpy()]


def split_holdout(
    frame: pd.DataFrame,
    target: str,
    task: str,
    share: float,
    seed: int,
    rows: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, bool]:
    """Set rows of ``frame`` apart before training.

    Parameters
    ----------
    frame : DataFrame
        The whole table (rows without a target stay with the training rows, which
        drop them later, as without a holdout).
    target, task : str
        The target column and the resolved task (``binary``, ``multiclass``,
        ``regression``): classifiers' holdouts are stratified by the target.
    share : float
        Share of the rows with a target to set apart (``0``: none).
    seed : int
        Seed of the draw.
    rows : DataFrame, optional
        Rows to set apart instead of a draw (a champion's frozen holdout): every row
        of ``frame`` equal to one of them leaves the training rows.

    Returns
    -------
    training : DataFrame
        The rows left for the search.
    holdout : DataFrame or None
        The rows set apart, every column of ``frame``.
    stratified : bool
        Whether the draw was stratified.

    Raises
    ------
    ConfigError
        If the share would set apart no row, or leave none to train on.
    """
    if rows is not None:
        holdout = rows.reset_index(drop=True)
        return without_rows(frame, rows), holdout, False
    if share <= 0:
        return frame, None, False
    import numpy as np
    from sklearn.model_selection import train_test_split

    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    n_holdout = math.ceil(share * len(labelled))
    if n_holdout < 1 or n_holdout >= len(labelled):
        raise ConfigError(
            f"holdout={share:g} of {len(labelled)} row(s) with a target sets apart "
            f"{n_holdout}: it must leave rows on both sides; choose another share"
        )
    y = frame[target].iloc[labelled]
    stratify = None
    if task != "regression":
        counts = y.value_counts()
        # Stratifying needs two rows of each class, and a holdout of one per class.
        if counts.min() >= 2 and len(counts) <= n_holdout <= len(labelled) - len(counts):
            stratify = y.to_numpy()
    _, held = train_test_split(labelled, test_size=n_holdout, random_state=seed, stratify=stratify)
    keep = np.ones(len(frame), dtype=bool)
    keep[held] = False
    holdout = frame.iloc[np.sort(held)].reset_index(drop=True)
    return frame.iloc[keep], holdout, stratify is not None
