"""titanicml: local-first AutoML that switches to Azure ML by one argument.

Train, track, register, serve and monitor a tabular model::

    from titanicml import Trainer, datasets

    result = Trainer(target="Survived", time_budget=30).fit(datasets.load_titanic())
    result.leaderboard

Importing the package is cheap: scikit-learn, FLAML, MLflow and the Azure SDK
are imported only by the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from titanicml._version import __version__

if TYPE_CHECKING:
    from titanicml import datasets
    from titanicml.exceptions import TitanicMLError
    from titanicml.registry import load_model
    from titanicml.result import TrainingResult
    from titanicml.trainer import Trainer

__all__ = [
    "TitanicMLError",
    "Trainer",
    "TrainingResult",
    "__version__",
    "datasets",
    "load_model",
]

# public name -> module that defines it; imported on first attribute access
_LAZY = {
    "Trainer": "titanicml.trainer",
    "TrainingResult": "titanicml.result",
    "load_model": "titanicml.registry",
    "TitanicMLError": "titanicml.exceptions",
    "datasets": "titanicml.datasets",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'titanicml' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith(f".{name}") else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
