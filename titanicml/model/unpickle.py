"""Unpickling a fitted model with an allow-list of what its pickle may name.

``pickle`` imports and calls whatever a file names. The fitted model
(``artifacts/model.joblib``) is read with :class:`AllowListUnpickler`, joblib's
own ``NumpyUnpickler`` (it reads the arrays that joblib writes beside the pickle
stream) with a ``find_class`` that resolves only

- classes defined in scikit-learn, NumPy, SciPy, pandas, LightGBM, XGBoost, CatBoost
  and titanicml's model and featurization modules, except those packages' I/O,
  testing, plotting and distributed parts (``numpy.memmap``, ``pandas.io``,
  CatBoost's ``Pool``, ...);
- the functions those packages pickle their objects with (NumPy's
  ``_reconstruct``, pandas' ``_unpickle_block``, Cython's ``__pyx_unpickle_*``...);
- plain builtins (``int``, ``slice``, ``bytearray``...), ``collections`` and
  ``datetime`` types, joblib's ``NumpyArrayWrapper``.

Anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) raises
:class:`~titanicml.exceptions.UnsafePickleError` before it is called. This narrows
what a pickle can do; it is no sandbox (a class of these packages may still be
built with hostile arguments), which is why the model's signature is checked first.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import pickle
from pathlib import Path
from typing import Any

from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

from titanicml.exceptions import ModelError, ModelIntegrityError, UnsafePickleError

__all__ = ["ALLOWED_PACKAGES", "AllowListUnpickler", "load_pickled_model"]

#: Packages whose classes a fitted model may hold.
ALLOWED_PACKAGES = frozenset(
    {"sklearn", "numpy", "scipy", "pandas", "lightgbm", "xgboost", "catboost"}
)
#: titanicml's modules whose classes a fitted model may hold.
TITANICML_MODULES = (
    "titanicml.model",
    "titanicml.features",
    "titanicml.backends.ensembling",
    "titanicml.backends.learners",
    "titanicml.backends.azure.convert",
    "titanicml._utils.sklearn_compat",
    "titanicml.spec",
    "titanicml.findings",
)
# Parts of the allowed packages that read or write files, run processes or servers,
# or hand out raw memory: refused wherever they appear in a module path.
_REFUSED_PARTS = frozenset(
    {
        "io", "testing", "_testing", "_testutils", "f2py", "distutils", "ctypeslib",
        "_ccallback", "stride_tricks", "_stride_tricks_impl", "_datasource", "npyio",
        "_npyio_impl", "format", "_format_impl", "dask", "spark", "tracker", "collective",
        "federated", "datasets", "computation", "plotting", "clipboard", "clipboards",
        "compat", "config", "libpath", "widget", "dev_utils", "plot_helpers", "eval",
    }
)  # fmt: skip
# ... and classes that read a file named by their arguments (CatBoost's Pool).
_REFUSED_CLASSES = frozenset({"numpy.memmap", "numpy.lib.npyio.NpzFile", "catboost.core.Pool"})
_BUILTIN_TYPES = frozenset(
    {"bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
     "object", "range", "set", "slice", "str", "tuple"}
)  # fmt: skip
_STDLIB_TYPES = frozenset(
    {
        "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "collections.deque", "datetime.date", "datetime.datetime", "datetime.time",
        "datetime.timedelta", "datetime.timezone", "decimal.Decimal",
        "joblib.numpy_pickle.NumpyArrayWrapper",
    }
)  # fmt: skip
# Functions and constants the allowed packages pickle their objects with.
_RECONSTRUCTORS = frozenset(
    {
        "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar",
        "numpy._core.numeric._frombuffer", "numpy.core.numeric._frombuffer",
        "numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor", "numpy.ma.core._mareconstruct",
        "pandas.NA", "pandas._libs.missing.NA", "pandas._libs.internals._unpickle_block",
        "pandas._libs.tslibs.nattype._nat_unpickle",
        "pandas._libs.tslibs.nattype.__nat_unpickle",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas.core.indexes.base._new_Index", "pandas.core.internals.blocks.new_block",
        "pandas.core.internals.blocks.new_block_2d",
        # pandas' Arrow-backed strings
        "pyarrow.lib._restore_array", "pyarrow.lib.py_buffer", "pyarrow.lib.type_for_alias",
        "copyreg._reconstructor", "_codecs.encode",
    }
)  # fmt: skip
_NATIVE_ORDER = "ensure_native_byte_order" in inspect.signature(NumpyUnpickler).parameters


def _allowed_module(module: str) -> bool:
    parts = module.split(".")
    if _REFUSED_PARTS.intersection(parts[1:]):
        return False
    if parts[0] == "titanicml":
        return any(module == m or module.startswith(f"{m}.") for m in TITANICML_MODULES)
    return parts[0] in ALLOWED_PACKAGES


class AllowListUnpickler(NumpyUnpickler):
    """joblib's unpickler, resolving only the globals a fitted titanicml model holds."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` if the allow-list has it; else raise ``UnsafePickleError``."""
        qualified = f"{module}.{name}"
        if qualified in _RECONSTRUCTORS or qualified in _STDLIB_TYPES:
            return super().find_class(module, name)
        if module == "builtins" and name in _BUILTIN_TYPES:
            return super().find_class(module, name)
        steps = name.split(".")
        if _allowed_module(module) and not any(
            s in _REFUSED_PARTS or (s.startswith("__") and not s.startswith("__pyx_unpickle_"))
            for s in steps
        ):
            found = super().find_class(module, name)
            owner = getattr(found, "__module__", None) or ""
            if not _allowed_module(owner):
                pass
            elif isinstance(found, type):
                if f"{owner}.{found.__qualname__}" not in _REFUSED_CLASSES:
                    return found
            elif steps[-1].startswith("__pyx_unpickle_"):
                return found  # Cython's reconstructor of an extension type
        error = UnsafePickleError(
            f"{self.filename} refers to {qualified}, which titanicml does not unpickle (a "
            "fitted model holds only scikit-learn, NumPy, SciPy, pandas, LightGBM, XGBoost, "
            "CatBoost and titanicml objects); nothing was run: do not load this file, or, if it is "
            "your own model, load it with the titanicml that saved it"
        )
        error.refused = qualified  # type: ignore[attr-defined]  # what was refused
        raise error

    def load_build(self) -> None:
        """Set a new object's state; turn joblib's array wrappers into arrays."""
        super(NumpyUnpickler, self).load_build()  # pickle's own, not joblib's
        wrapper = self.stack[-1]
        if isinstance(wrapper, NumpyArrayWrapper):
            self.stack.pop()
            if wrapper.dtype.hasobject:
                # The objects of the array are a nested pickle: same allow-list.
                array = _unpickler(self.filename, self.file_handle).load()
            else:
                array = wrapper.read(self, True) if _NATIVE_ORDER else wrapper.read(self)
            self.stack.append(array)

    dispatch[pickle.BUILD[0]] = load_build


def _unpickler(filename: str, handle: Any) -> AllowListUnpickler:
    if _NATIVE_ORDER:
        return AllowListUnpickler(filename, handle, True)
    return AllowListUnpickler(filename, handle)  # type: ignore[call-arg]


def load_pickled_model(path: Path, expected_sha256: str | None = None) -> Any:
    """Unpickle a joblib file through the allow-list, from bytes checked against the manifest.

    The file is read once: the bytes hashed are the bytes unpickled.

    Raises
    ------
    ModelIntegrityError
        If the bytes do not have ``expected_sha256``.
    UnsafePickleError
        If the pickle names anything outside the allow-list, or is not joblib's format.
    """
    data = Path(path).read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ModelIntegrityError(
            f"{path} changed after the model's manifest was checked; it may have been "
            "tampered with: re-export the model from its run or registry"
        )
    if not data.startswith(b"\x80"):
        raise UnsafePickleError(
            f"{path} is not an uncompressed joblib pickle, the only form titanicml saves; "
            "re-export the model from its run or registry"
        )
    try:
        return _unpickler(str(path), io.BytesIO(data)).load()
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"cannot unpickle {path} ({type(exc).__name__}: {exc}); re-export the model "
            "from its run or registry"
        ) from None
