"""The MLflow ``python_function`` flavor of a titanicml model.

``mlflow.pyfunc.load_model``, ``mlflow models serve`` and Azure ML's no-code
MLflow deployments load the model through this class. The entry script
(:mod:`titanicml.model.mlflow_entry`) has verified the model directory before
this module was imported; :meth:`TitanicMLPyfunc.load_context` verifies it again
with the titanicml it runs, unpickles the fitted model through the allow-list, and
the model answers with a table of ``prediction`` and one ``probability_<class>``
column per class.
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
        """Verify the model directory (signature, signer, files) and load the fitted model."""
        from titanicml.model.layout import load_model_dir

        # <model>/artifacts/model.joblib
        self.model = load_model_dir(Path(context.artifacts[MODEL_ARTIFACT]).parents[1])

    # Unannotated on purpose: MLflow would try to read a schema from the hints.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Score rows; returns ``prediction`` and ``probability_<class>`` columns."""
        return self.model.predict_frame(model_input)
