"""MLflow "models from code" entry point of a titanicml model.

MLflow copies this file to the root of the model directory and runs it (``exec``)
when the model is loaded, so no Python object is pickled to describe the
model's code. By then MLflow has put the model's ``code/`` folder first on
``sys.path``, and importing titanicml would run the model's copy of it. So this
file first verifies the directory it sits in (the manifest's signature, that its
key is trusted, every file, ``__pycache__`` included) and only then imports
titanicml:

- with the verifier of the titanicml already imported, or else installed here
  (``titanicml/model/signing.py``, compiled from its source, without importing the
  package); where titanicml is not installed, with the model's own copy of that file;
- while it checks, the model's folders are off ``sys.path``, and a refused model's
  stay off it, so nothing of it can be imported later in the process.

When ``mlflow.pyfunc.save_model`` runs this file from the package (no ``MLmodel``
beside it), there is no model to check.
"""

import sys
import types
from pathlib import Path


def _inside(entry: str, root: Path) -> bool:
    """Tell whether a ``sys.path`` entry lies in ``root`` ('' is the working directory)."""
    try:
        path = Path(entry or ".").resolve()
    except (OSError, RuntimeError):
        return False
    return path == root or root in path.parents


def _verifier(root: Path) -> types.ModuleType:
    """Return a ``signing`` module that does not come from the model being checked."""
    import importlib.util

    if "titanicml" in sys.modules:  # imported already: installed, or a verified model's copy
        try:
            from titanicml.model import signing

            return signing
        except ImportError:
            pass
    source = root / "code" / "titanicml" / "model" / "signing.py"
    spec = importlib.util.find_spec("titanicml")  # the model's folders are off sys.path here
    if spec is not None and spec.origin and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "model" / "signing.py").is_file():
                source = Path(location) / "model" / "signing.py"
                break
    # Compiled from the source: an import would run a .pyc from __pycache__ instead.
    module = types.ModuleType("titanicml_model_check")
    module.__file__ = str(source)
    exec(compile(source.read_bytes(), str(source), "exec", dont_inherit=True), module.__dict__)
    return module


def _check_model_dir(root: Path) -> None:
    """Verify the model directory before anything is imported from it."""
    kept = list(sys.path)
    sys.path[:] = [p for p in kept if not _inside(p, root)]
    try:
        _verifier(root).verify_model_dir(root)
    except BaseException:
        kept = [p for p in kept if not _inside(p, root)]
        raise
    finally:
        sys.path[:] = kept


_ROOT = Path(__file__).resolve().parent
if (_ROOT / "MLmodel").is_file() or (_ROOT / "MANIFEST.json").is_file():
    _check_model_dir(_ROOT)

import mlflow.models  # noqa: E402

from titanicml.model.pyfunc import TitanicMLPyfunc  # noqa: E402

mlflow.models.set_model(TitanicMLPyfunc())
