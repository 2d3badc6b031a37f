"""Explanations of a model's predictions in the user's own columns.

==================  ==========================================================
module              holds
==================  ==========================================================
``explanation``     ``explain_model`` and ``Explanation`` (contributions by column)
``paths``           the contributions of each estimator kind, in a stated space
``columns``         which input column each featurized column comes from
``plots``           importance bars, beeswarm and dependence plots (matplotlib)
``served``          ``RowExplainer``: request rows explained for the endpoint, fast
==================  ==========================================================

See ``docs/explain.md`` for what is exact and in which output space.
"""

from __future__ import annotations

from titanicml.explain.explanation import Explanation, explain_model
from titanicml.explain.plots import (
    beeswarm_plot,
    dependence_plot,
    dependence_plots,
    importance_plot,
)

__all__ = [
    "Explanation",
    "beeswarm_plot",
    "dependence_plot",
    "dependence_plots",
    "explain_model",
    "importance_plot",
]
