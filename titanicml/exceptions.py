"""Every error titanicml raises on purpose.

Each class also derives from the built-in exception a Python user would
catch for the same mistake, so ``except ValueError`` keeps working::

    TitanicMLError
    ├── ConfigError(ValueError)            a parameter is out of range or unknown
    │   └── BackendNotFoundError(LookupError)  no backend of that name is registered
    ├── BackendUnavailableError(ImportError)   the backend's optional extra is not installed
    ├── DataError(ValueError)              the data cannot be used as given
    │   ├── DataFormatError                unreadable, unsupported or empty file
    │   ├── ColumnError(KeyError)          a named column is missing or unexpected
    │   └── TargetError                    the target does not fit the task
    ├── TrainingError(RuntimeError)        the search produced no usable model
    └── ModelError(ValueError)             a saved model cannot be loaded or used
        └── ModelIntegrityError            a file of a saved model was changed

Messages say what was wrong and what to do about it; the CLI prints them as
one line and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ColumnError",
    "ConfigError",
    "DataError",
    "DataFormatError",
    "ModelError",
    "ModelIntegrityError",
    "TargetError",
    "TitanicMLError",
    "TrainingError",
]


class TitanicMLError(Exception):
    """Root of every error titanicml raises on purpose."""


class ConfigError(TitanicMLError, ValueError):
    """A parameter is out of range, unknown or inconsistent with another."""


class BackendNotFoundError(ConfigError, LookupError):
    """No backend is registered under the requested name."""


class BackendUnavailableError(TitanicMLError, ImportError):
    """A backend exists but its optional dependencies are not installed."""


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


class TrainingError(TitanicMLError, RuntimeError):
    """The search finished without a usable model."""


class ModelError(TitanicMLError, ValueError):
    """A saved model cannot be loaded or used."""


class ModelIntegrityError(ModelError):
    """A file of a saved model does not match the model's manifest."""
