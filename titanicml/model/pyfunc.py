"""The MLflow ``python_function`` flavor of a titanicml model.

``mlflow.pyfunc.load_model``, ``mlflow models serve`` and Azure ML's no-code
MLflow deployments load the model through this class. It checks the model's
manifest, then answers with a table of ``prediction`` and one
``probability_<class>`` column per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc

from titanicml.model.layout import MODEL_ARTIFACT

__all__ = ["TitanicMLPyfunc"]


class TitanicMLPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper around a :class:`~titanicml.model.predictor.TabularModel`."""

    # The model's saved signature describes its input; MLflow's type-hint validation
    # (and its advice to add hints) does not apply.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        """Verify the model directory and load the fitted model."""
        from titanicml.model.layout import load_model_file
        from titanicml.model.manifest import verify_manifest

        model_file = Path(context.artifacts[MODEL_ARTIFACT])
        verify_manifest(model_file.parents[1])
        self.model = load_model_file(model_file)

    # Unannotated on purpose: MLflow would try to read a schema from the hints.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Score rows; returns ``prediction`` and ``probability_<class>`` columns."""
        return self.model.predict_frame(model_input)
