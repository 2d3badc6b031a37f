"""Deploying titanicml models to managed endpoints (Azure ML: :mod:`titanicml.deploy.azure`)."""

from __future__ import annotations

__all__: list[str] = []
