"""MLflow "models from code" entry point of a titanicml model.

MLflow copies this file into the model directory and runs it when the model is
loaded, so no Python object is pickled to describe the model's code.
"""

import warnings

import mlflow.models

from titanicml.model.pyfunc import TitanicMLPyfunc

with warnings.catch_warnings():
    # MLflow's advice on type hints does not apply: the model has a saved signature.
    warnings.filterwarnings("ignore", message=".*Add type hints", category=UserWarning)
    mlflow.models.set_model(TitanicMLPyfunc())
