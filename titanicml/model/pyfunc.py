"""The MLflow ``python_function`` flavor of a titanicml model.

``mlflow.pyfunc.load_model``, ``mlflow models serve`` and Azure ML's no-code
MLflow deployments load the model through this class. It checks the model's
manifest, then answers with a table of ``prediction`` and one
``probability_<class>`` column per class.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc

__all__ = ["MODEL_ARTIFACT", "TitanicMLPyfunc"]

MODEL_ARTIFACT = "model"


# MLflow advises type hints on ``predict`` when the class is created; titanicml's
# schema is the signature saved with the model, so the advice does not apply.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*Add type hints", category=UserWarning)

    class TitanicMLPyfunc(mlflow.pyfunc.PythonModel):
        """Pyfunc wrapper around a :class:`~titanicml.model.predictor.TabularModel`."""

        def load_context(self, context: Any) -> None:
            """Verify the model directory and load the fitted model."""
            from titanicml.model.artifact import load_model_file
            from titanicml.model.manifest import verify_manifest

            model_file = Path(context.artifacts[MODEL_ARTIFACT])
            verify_manifest(model_file.parents[1])
            self.model = load_model_file(model_file)

        # No type hints here: MLflow would read them as a schema and warn.
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            """Score rows; returns ``prediction`` and ``probability_<class>`` columns."""
            return self.model.predict_frame(model_input)
