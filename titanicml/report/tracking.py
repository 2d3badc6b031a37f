"""The report every tracked training logs to its MLflow run: ``report/report.html`` + PNGs.

The plots are the artifacts MLflow's ``evaluate`` logs (ROC, precision-recall,
confusion matrix, calibration, lift) plus the importance and the SHAP summary, each
as ``report/<name>.png``. A report that fails is a warning, never a failed training.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from titanicml.result import TrainingResult

__all__ = ["REPORT_ARTIFACT_PATH", "REPORT_FILE", "log_training_report"]

#: Folder of the run's artifacts that holds the report and its plots.
REPORT_ARTIFACT_PATH = "report"
REPORT_FILE = "report.html"
#: Rows the training's report explains (the page made by hand explains 400).
TRAINING_EXPLAINED_ROWS = 200
_logger = logging.getLogger("titanicml")


def log_training_report(
    result: TrainingResult, rows: pd.DataFrame | None, client: MlflowClient
) -> float | None:
    """Build the result's report and log it to its run; return the seconds it took.

    Returns ``None`` (after a warning naming the cause) if anything failed: the
    training it reports on stands. Without matplotlib (the ``explain`` extra) no report
    is made, quietly.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # the explain extra is not installed
        _logger.debug("no report logged: it needs matplotlib (titanicml[explain])")
        return None
    started = time.perf_counter()
    try:
        from titanicml.report.build import build_report

        # PNG only (each plot drawn once for the page and the files); 200 rows explained.
        report = build_report(
            result, rows=rows, tracking_uri=result.tracking_uri, figure_format="png",
            explained_rows=TRAINING_EXPLAINED_ROWS,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="titanicml-report-") as tmp:
            folder = Path(tmp, REPORT_ARTIFACT_PATH)
            report.write_plots(folder)
            report.write(folder / REPORT_FILE)
            client.log_artifacts(str(result.run_id), str(folder), REPORT_ARTIFACT_PATH)
    except Exception as exc:  # the report is a by-product: never fail the training for it
        _logger.warning(
            "the training's report was not logged (%s: %s); make it with titanicml report "
            "--model runs:/%s/model --output report.html",
            type(exc).__name__,
            exc,
            result.run_id,
        )
        return None
    return time.perf_counter() - started
