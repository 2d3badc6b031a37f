"""Fairness of a model's predictions by group of sensitive columns, with uncertainty.

==================  ==========================================================
module              holds
==================  ==========================================================
``assess``          ``assess_fairness`` and ``FairnessReport`` (findings, tables)
``groups``          proposing sensitive columns by name; groups and numeric bins
``measures``        fairlearn's MetricFrame by group, disparities, bootstrap CIs
``mitigation``      fairlearn's ThresholdOptimizer as an opt-in second candidate
==================  ==========================================================

fairlearn is in the ``explain`` extra (``pip install "titanicml[explain]"``). See
``docs/explain.md`` ("Fairness").
"""

from __future__ import annotations

from titanicml.fairness.assess import FairnessReport, GroupAnalysis, assess_fairness
from titanicml.fairness.groups import propose_sensitive

__all__ = ["FairnessReport", "GroupAnalysis", "assess_fairness", "propose_sensitive"]
