"""Every error titanicml raises, in one tree.

Each class also derives from the built-in exception a Python user would
catch for the same mistake, so ``except ValueError`` keeps working::

    TitanicMLError
    ├── ConfigError(ValueError)            a parameter is out of range or unknown
    │   └── BackendNotFoundError(LookupError)  no backend of that name is registered
    ├── BackendUnavailableError(ImportError)   the backend's optional extra is not installed
    ├── ExtraNotInstalledError(ImportError)    a feature's optional extra is not installed
    ├── DataError(ValueError)              the data cannot be used as given
    │   ├── DataFormatError                unreadable, unsupported or empty file
    │   ├── ColumnError(KeyError)          a named column is missing or unexpected
    │   ├── TargetError                    the target does not fit the task
    │   ├── AssetNotFoundError(LookupError)    no such data asset or version
    │   └── RequestError                   an HTTP request body that cannot be scored
    ├── TrainingError(RuntimeError)        the search produced no usable model
    │   ├── SearchCancelled                the job was cancelled (internal signal)
    │   └── NoSkillError                   the best model does not beat the trivial baseline
    ├── ModelError(ValueError)             a saved model cannot be loaded or used
    │   ├── ModelIntegrityError            a file of a saved model was changed
    │   ├── UntrustedModelError            unsigned, or signed by a key nobody trusted
    │   ├── UnsafePickleError              the pickle names a global outside the allow-list
    │   ├── ModelNotFoundError(LookupError)    no such registered model, version or alias
    │   └── UnsupportedFeaturizer          the fast path cannot compile a featurizer
    └── EndpointError(ConnectionError)     an endpoint could not be reached

Messages say what was wrong and what to do about it; the CLI prints them as
one line and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "AssetNotFoundError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ColumnError",
    "ConfigError",
    "DataError",
    "DataFormatError",
    "EndpointError",
    "ExtraNotInstalledError",
    "ModelError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "NoSkillError",
    "RequestError",
    "SearchCancelled",
    "TargetError",
    "TitanicMLError",
    "TrainingError",
    "UnsafePickleError",
    "UnsupportedFeaturizer",
    "UntrustedModelError",
]


class TitanicMLError(Exception):
    """Root of every error titanicml raises on purpose."""


class ConfigError(TitanicMLError, ValueError):
    """A parameter is out of range, unknown or inconsistent with another."""


class BackendNotFoundError(ConfigError, LookupError):
    """No backend is registered under the requested name."""


class BackendUnavailableError(TitanicMLError, ImportError):
    """A backend exists but its optional dependencies are not installed."""


class ExtraNotInstalledError(TitanicMLError, ImportError):
    """A feature needs packages of an optional extra that are not installed."""


class DataError(TitanicMLError, ValueError):
    """The data cannot be used as given."""


class DataFormatError(DataError):
    """A file is unreadable, of an unsupported format, or empty."""


class ColumnError(DataError, KeyError):
    """A named column is missing from the data, or a column is not expected."""

    def __str__(self) -> str:
        # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class TargetError(DataError):
    """The target column does not fit the task (one class, wrong type, ...)."""


class AssetNotFoundError(DataError, LookupError):
    """No data asset of that name, or no such version of it, is in the workspace."""


class RequestError(DataError):
    """A request body that cannot be read; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TrainingError(TitanicMLError, RuntimeError):
    """The search finished without a usable model."""


class NoSkillError(TrainingError):
    """The best model does not beat the trivial baseline: the search found nothing to learn.

    ``result`` is the training's result (leaderboard with its baseline row, data checks),
    for a look at what was tried; it is not saved or logged as a model.
    """

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class SearchCancelled(TrainingError):
    """Raised inside a trial to stop a search whose job was cancelled."""


class ModelError(TitanicMLError, ValueError):
    """A saved model cannot be loaded or used."""


class ModelIntegrityError(ModelError):
    """A file of a saved model does not match the model's manifest."""


class UntrustedModelError(ModelError):
    """A saved model is unsigned, or signed by a key this workspace does not trust."""


class UnsafePickleError(ModelError):
    """A model's pickle refers to a class or function that titanicml does not unpickle."""


class ModelNotFoundError(ModelError, LookupError):
    """No registered model of that name, or no such version or alias of it."""


class UnsupportedFeaturizer(ModelError):
    """The featurizer has a step the serving fast path cannot compile (it falls back)."""


class EndpointError(TitanicMLError, ConnectionError):
    """An endpoint could not be reached, or refused a request."""
