"""Retrain, gate, roll out: ``titanicml retrain --endpoint NAME``.

==============  ==============================================================
module          holds
==============  ==============================================================
``data``        the champion's table + labelled production rows; the gate's rows
``gate``        McNemar and the paired bootstrap; the decision
``rollout``     a new deployment, canary, all traffic, the old one removed
``run``         :func:`retrain`, the whole sequence, and its MLflow run
==============  ==============================================================

Importing the package is cheap: its modules import pandas, MLflow and the deployments
inside the functions that need them.
"""

from __future__ import annotations

from titanicml.retrain.gate import GateDecision, gate_models
from titanicml.retrain.run import RetrainResult, retrain

__all__ = ["GateDecision", "RetrainResult", "gate_models", "retrain"]
