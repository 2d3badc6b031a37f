"""Azure ML entry script of a titanicml model; copied into the model directory as ``score.py``.

Azure ML's inference server (``azmlinfsrv``, package ``azureml-inference-server-http``)
imports this file, calls :func:`init` once per worker, then :func:`run` with the body
of every ``POST /score``, decoded as text. The script

- finds the model directory (the folder holding ``MLmodel`` and ``MANIFEST.json``)
  under ``AZUREML_MODEL_DIR`` (where Azure mounts the registered model, up to two
  levels down) or next to this file;
- imports titanicml: the installed one, else the copy in ``<model>/code`` (the
  model directory carries the whole package there), but only once the directory
  is verified (signature, trusted key, every file, ``__pycache__`` included) by
  that copy's ``titanicml/model/signing.py``, compiled from its source with the
  model's folders off ``sys.path``, so that nothing of an unverified model runs;
- loads the model with :func:`titanicml.model.layout.load_model_dir`, which verifies
  the directory (again) before it unpickles the fitted model through an allow-list,
  and never imports MLflow.

The process needs to trust the key that signed the model: a workspace
(``TITANICML_HOME``) that trusts it, or ``TITANICML_TRUSTED_KEYS=ed25519:...``
in the deployment's environment (see docs/security.md).

It answers like ``titanicml online-endpoint serve``: every request dialect of
:func:`titanicml.model.dialects.parse_request` (``{"data": [...]}``, Azure's
``{"input_data": {"columns", "index", "data"}}``, MLflow's ``dataframe_split`` ...,
and CSV sent as ``text/csv``), the same JSON answer, and a 4xx with an error body
for a bad request, never a 500.

The file is a module of titanicml only so that it is linted and tested with it; it
imports nothing from titanicml at module level, so it runs as a standalone script.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel

__all__ = ["init", "run"]

MODEL_MARKERS = ("MLmodel", "MANIFEST.json")
# How far below AZUREML_MODEL_DIR the model folder may sit (Azure mounts a
# registered model as <AZUREML_MODEL_DIR>/<folder name>, at times one level deeper).
SEARCH_DEPTH = 2

# A child of the inference server's logger, so these lines reach its log handlers.
_logger = logging.getLogger("azmlinfsrv.titanicml")
_state: dict[str, Any] = {}


def init() -> None:
    """Find, verify and load the model; warm it up on its input example."""
    root = find_model_dir()
    _ensure_titanicml(root)
    from titanicml.model.layout import load_model_dir

    model = load_model_dir(root)
    name, version = model_identity(root)
    example = (model.info or {}).get("input_example") or [{}]
    model.score_records([{k: v for k, v in example[0].items() if k in model.input_columns}])
    _state.update(model=model, root=root, name=name, version=version)
    _logger.info("titanicml model %s:%s loaded from %s", name, version, root)


def run(raw_data: str | bytes | dict | list, request_headers: dict[str, str] | None = None) -> Any:
    """Score one request body.

    Parameters
    ----------
    raw_data : str, bytes, dict or list
        The request body as the inference server passes it (text); an already
        decoded JSON value is accepted too.
    request_headers : dict, optional
        The request's headers (the server passes them because this parameter
        exists); a ``Content-Type`` of ``text/csv`` selects the CSV dialect.

    Returns
    -------
    dict or AMLResponse
        The predictions, class probabilities, model name and version, and warnings;
        for a bad request, an ``AMLResponse`` with a 4xx status and an error body
        (a plain error dict where the inference server is not installed).
    """
    if "model" not in _state:
        raise RuntimeError("score.init() has not been called, or it failed")
    from titanicml.exceptions import DataError, RequestError
    from titanicml.model.dialects import parse_request
    from titanicml.model.payload import error_payload, response_payload

    model: TabularModel = _state["model"]
    if isinstance(raw_data, str):
        body = raw_data.encode("utf-8")
    elif isinstance(raw_data, bytes | bytearray):
        body = bytes(raw_data)
    else:
        body = json.dumps(raw_data).encode("utf-8")
    try:
        _, records = parse_request(body, _content_type(request_headers))
        scored = model.score_records(records)
    except RequestError as exc:
        return _error_response(exc.status, error_payload("BadRequest", str(exc)))
    except DataError as exc:
        return _error_response(400, error_payload("BadRequest", str(exc)))
    payload = response_payload(model, scored, _state["name"], _state["version"])
    # Plain JSON types only: the server serializes the answer with json.dumps.
    return json.loads(json.dumps(payload, default=_plain))


def find_model_dir() -> Path:
    """Return the model directory: under ``AZUREML_MODEL_DIR``, else next to this file.

    Raises
    ------
    FileNotFoundError
        If neither place holds a folder with ``MLmodel`` and ``MANIFEST.json``.
    """
    places = []
    base = os.environ.get("AZUREML_MODEL_DIR")
    if base:
        places.append(Path(base))
    places.append(Path(__file__).resolve().parent)
    for place in places:
        found = _search(place, SEARCH_DEPTH)
        if found is not None:
            return found
    raise FileNotFoundError(
        "no titanicml model (a folder with MLmodel and MANIFEST.json) in "
        + " or ".join(str(p) for p in places)
        + f", nor up to {SEARCH_DEPTH} levels below; set AZUREML_MODEL_DIR to the model folder"
    )


def model_identity(root: Path) -> tuple[str, str]:
    """Return the name and version to report: env, Azure's mount, metadata or folder name.

    ``AZUREML_MODEL_NAME`` and ``AZUREML_MODEL_VERSION`` win; otherwise Azure mounts
    a registered model at ``.../<name>/<version>`` (``AZUREML_MODEL_DIR``); otherwise
    ``titanicml/metadata.json`` may name it; a bare directory is ``<folder>:local``.
    """
    name = os.environ.get("AZUREML_MODEL_NAME")
    version = os.environ.get("AZUREML_MODEL_VERSION")
    base = os.environ.get("AZUREML_MODEL_DIR")
    if base and Path(base).name.isdigit():
        name = name or Path(base).parent.name
        version = version or Path(base).name
    try:
        meta = json.loads((root / "titanicml" / "metadata.json").read_text())
    except (OSError, ValueError):
        meta = {}
    name = name or meta.get("model_name") or meta.get("name") or root.name
    version = version or meta.get("model_version") or meta.get("version") or "local"
    return str(name), str(version)


def _search(base: Path, depth: int) -> Path | None:
    """Breadth-first: the shallowest folder below ``base`` that holds a model."""
    queue = deque([(base, 0)])
    while queue:
        folder, level = queue.popleft()
        if all((folder / marker).is_file() for marker in MODEL_MARKERS):
            return folder
        if level < depth and folder.is_dir():
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            queue.extend((child, level + 1) for child in children)
    return None


def _ensure_titanicml(root: Path) -> None:
    """Make titanicml importable: installed, or the verified copy in ``<model>/code``."""
    if "titanicml" in sys.modules or _installed_titanicml(root):
        return
    _verify_before_import(root)
    code = str(root / "code")
    if code not in sys.path:
        sys.path.insert(0, code)
    _logger.info("titanicml imported from the model's code folder %s", code)


def _inside(entry: str, root: Path) -> bool:
    """Tell whether a ``sys.path`` entry lies in ``root`` ('' is the working directory)."""
    try:
        path = Path(entry or ".").resolve()
    except (OSError, RuntimeError):
        return False
    return path == root.resolve() or root.resolve() in path.parents


def _installed_titanicml(root: Path) -> bool:
    """Tell whether a titanicml package is importable from outside the model directory."""
    import importlib.util

    kept = list(sys.path)
    sys.path[:] = [p for p in kept if not _inside(p, root)]
    try:
        spec = importlib.util.find_spec("titanicml")
    finally:
        sys.path[:] = kept
    return spec is not None and bool(spec.origin) and not _inside(str(spec.origin), root)


def _verify_before_import(root: Path) -> None:
    """Verify the model with its own copy of the verifier, importing nothing from it.

    The verifier (``code/titanicml/model/signing.py``) is compiled from its source and
    run with the model's folders off ``sys.path``; it needs only the standard library
    and ``cryptography``.
    """
    import types

    source = root / "code" / "titanicml" / "model" / "signing.py"
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} is missing and titanicml is not installed: re-export the model"
        )
    kept = list(sys.path)
    sys.path[:] = [p for p in kept if not _inside(p, root)]
    try:
        module = types.ModuleType("titanicml_model_check")
        module.__file__ = str(source)
        code = compile(source.read_bytes(), str(source), "exec", dont_inherit=True)
        exec(code, module.__dict__)
        module.verify_model_dir(root)
    finally:
        sys.path[:] = kept


def _content_type(headers: dict[str, str] | None) -> str | None:
    """``text/csv`` when the request says so; otherwise the body is read as JSON.

    The inference server accepts any content type (``curl -d`` sends form
    encoding), so only CSV is told apart.
    """
    for key, value in (headers or {}).items():
        if key.lower() == "content-type" and "csv" in value.lower():
            return value
    return None


def _error_response(status: int, payload: dict[str, Any]) -> Any:
    """Wrap ``payload`` in an ``AMLResponse`` with ``status`` where the inference server runs."""
    try:
        from azureml.contrib.services.aml_response import AMLResponse
    except ImportError:
        try:
            from azureml_inference_server_http.api.aml_response import AMLResponse
        except ImportError:
            return payload
    return AMLResponse(json.dumps(payload), status, {"Content-Type": "application/json"})


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)
