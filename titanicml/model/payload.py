"""The JSON answer of every scoring path (the endpoint, ``score.py``), built one way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanicml.model.predictor import Scored, TabularModel

__all__ = ["error_payload", "response_payload"]


def response_payload(
    model: TabularModel, scored: Scored, name: str, version: str, request_id: str | None = None
) -> dict[str, Any]:
    """Return predictions, class probabilities, the model's name and version, and warnings."""
    payload: dict[str, Any] = {"predictions": scored.labels}
    if scored.probabilities is not None:
        payload["probabilities"] = scored.probabilities.tolist()
        payload["classes"] = model.labels
    payload["model"] = {"name": name, "version": version}
    payload["warnings"] = scored.warnings
    if request_id is not None:
        payload["request_id"] = request_id
    return payload


def error_payload(code: str, message: str) -> dict[str, Any]:
    """Return the body of a 4xx answer."""
    return {"error": {"code": code, "message": message}}
