"""MLflow "models from code" entry point of a titanicml model.

MLflow copies this file into the model directory and runs it when the model is
loaded, so no Python object is pickled to describe the model's code.
"""

import mlflow.models

from titanicml.model.pyfunc import TitanicMLPyfunc

mlflow.models.set_model(TitanicMLPyfunc())
