"""The model report: one self-contained HTML page, and its plots for MLflow.

==================  ==========================================================
module              holds
==================  ==========================================================
``build``           ``build_report`` and ``Report`` (the page, verdicts, plots)
``targets``         ``accuracy>=0.8``: parsing and pass / fail
``inputs``          what a report reads: a result or a saved model, predictions
``curves``          ROC, precision-recall, confusion, calibration, lift
``sections``        scorecard, data checks, leaderboard, performance
``insights``        explanations, fairness, error cohorts
``monitoring``      an endpoint's monitoring signals over time (MLflow)
``tracking``        the report every training logs to its MLflow run
``azure``           the Azure ML pipeline job of the Responsible AI dashboard
==================  ==========================================================

See ``docs/responsible-ai.md``.
"""

from __future__ import annotations

from titanicml.report.build import Report, build_report
from titanicml.report.targets import Target, parse_target

__all__ = ["Report", "Target", "build_report", "parse_target"]
