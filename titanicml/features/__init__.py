"""Featurization, planned per column and fitted inside the exported model."""

from titanicml.features.plan import ColumnPlan, FeaturePlan, plan_features

__all__ = ["ColumnPlan", "FeaturePlan", "plan_features"]
