"""The table a model was trained on, found again from the model's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["training_table"]


def training_table(
    metadata: dict[str, Any], workspace: str | Path | None = None
) -> tuple[pd.DataFrame, str, str]:
    """Return the table a model trained on, its reference (asset or file) and sha256.

    ``metadata`` is the model's ``metadata.json``: its ``data`` names the asset (else the
    file) and the sha256 recorded when the model trained.

    Raises
    ------
    DataError
        If the table cannot be found, or changed since the model trained on it.
    """
    from titanicml.data.assets import load_asset
    from titanicml.data.io import frame_fingerprint, read_table

    facts = metadata.get("data") or {}
    recorded = facts.get("data_sha256")
    asset, source = facts.get("data_asset"), facts.get("data_source")
    if asset:
        frame, loaded = load_asset(asset, workspace)
        reference, digest = loaded.reference, loaded.sha256
    elif source and source != "<DataFrame>" and Path(source).exists():
        frame = read_table(source)
        reference, digest = source, frame_fingerprint(frame.rename(columns=str))
    else:
        raise DataError(
            f"the model was trained on {source or 'data it did not record'}, which "
            "titanicml cannot read again; register its training table (titanicml data create "
            "--name NAME --path FILE) and pass NAME@VERSION (retrain --data, monitor run "
            "--reference)"
        )
    if recorded and digest != recorded:
        raise DataError(
            f"the model's training data {reference} changed since the model trained (sha256 "
            f"{digest[:12]}, recorded {recorded[:12]}); pass the table it trained on "
            "(retrain --data, monitor run --reference)"
        )
    return frame.rename(columns=str), reference, digest
