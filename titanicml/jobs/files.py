"""Job files: the hands-on's ``az ml job create -f job.yml``, read into a TrainSpec.

Two shapes of Azure ML job YAML are read, with plain Python (no Azure SDK):

- a **command job** (``type: command``): the training options come from the
  arguments of ``command`` (the flags of ``titanicml train``: ``--target``,
  ``--time-budget``, ``--estimators``, ``--no-ensemble``, ...) and from an optional
  ``titanicml:`` block (its keys are the options' names and win over the command);
  the data is the input that ``--data ${{inputs.NAME}}`` names, else
  ``inputs.input_data``;
- an **AutoML job** (``type: automl``): ``task``, ``primary_metric`` (Azure's
  spelling), ``target_column_name``, ``training_data``, ``n_cross_validations``,
  ``limits``, ``training``, ``featurization`` map onto the same options (see
  :mod:`titanicml.options`), and a ``titanicml:`` block sets those Azure has no
  spelling for.

A key titanicml does not know, or a value it cannot use, raises
:class:`~titanicml.exceptions.ConfigError` naming the YAML path of the key, e.g.
``limits.timeout_minute: unknown key (did you mean timeout_minutes?)``.
"""

from __future__ import annotations

import copy
import difflib
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from titanicml._utils.values import is_int, is_number
from titanicml.data.assets import is_reference
from titanicml.exceptions import ConfigError
from titanicml.options import (
    OPTIONS,
    automl_settings,
    options_from_automl,
    options_from_words,
    spec_from_options,
    spec_options,
)
from titanicml.spec import TrainSpec

__all__ = [
    "BLOCK_KEYS",
    "COMMAND_KEYS",
    "JobFile",
    "apply_overrides",
    "automl_document",
    "check_keys",
    "command_document",
    "common_fields",
    "is_titanicml_command",
    "load_job_file",
    "parse_job",
    "read_document",
]

DATA_TYPES = ("uri_file", "uri_folder", "mltable")
TITANICML_BLOCK = "titanicml"
#: Keys of the ``titanicml:`` block: the training options' names.
BLOCK_KEYS = tuple(o.name for o in OPTIONS)
INPUT_REFERENCE = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
# Another spelling of --target, as some training scripts name it.
COMMAND_ALIASES = {"--target-column": "target"}
# Flags of `titanicml train` that are not training options.
_TRAIN_FLAGS = ("--data", "--backend", "--experiment", "--tracking-uri", "--output")
_AUTOML_TASKS = ("classification", "regression")
_COMMON_KEYS = (
    "$schema",
    "type",
    "name",
    "display_name",
    "description",
    "experiment_name",
    "tags",
    "properties",
    "compute",
    "identity",
    "queue_settings",
    "resources",
    "outputs",
    TITANICML_BLOCK,
)
COMMAND_KEYS = (
    *_COMMON_KEYS,
    "code",
    "command",
    "inputs",
    "environment",
    "environment_variables",
    "distribution",
    "limits",
    "services",
)
_AUTOML_KEYS = (
    *_COMMON_KEYS,
    "task",
    "primary_metric",
    "target_column_name",
    "training_data",
    "n_cross_validations",
    "limits",
    "training",
    "featurization",
    "log_verbosity",
)
_LIMIT_KEYS = {
    "timeout_minutes": "positive",
    "trial_timeout_minutes": "positive",
    "max_trials": "positive",
    "max_concurrent_trials": "positive",
    "max_cores_per_trial": "cores",
    "max_nodes": "positive",
    "enable_early_termination": "bool",
    "exit_score": "number",
}
_TRAINING_KEYS = (
    "allowed_training_algorithms",
    "blocked_training_algorithms",
    "enable_stack_ensemble",
    "enable_vote_ensemble",
    "enable_model_explainability",
    "enable_onnx_compatible_models",
    "enable_dnn_training",
    "ensemble_model_download_timeout_minutes",
    "stack_ensemble_settings",
)
_FEATURIZATION_KEYS = (
    "mode",
    "blocked_transformers",
    "column_name_and_types",
    "transformer_params",
    "enable_dnn_featurization",
)
_DATA_KEYS = ("type", "path", "mode", "description")


@dataclass(frozen=True)
class JobFile:
    """A job file read into what titanicml runs.

    Attributes
    ----------
    kind : {"command", "automl"}
        The job's ``type``.
    spec : TrainSpec
        The training settings.
    data : str
        Data asset reference (``azureml:titanic-dataset@latest``) or path, resolved
        against the job file's folder.
    data_type : str
        ``uri_file``, ``uri_folder`` or ``mltable``.
    data_input : str
        The input's name (``input_data``; ``training_data`` for AutoML jobs).
    experiment_name : str
        MLflow / Azure experiment.
    compute : str, optional
        Azure compute target (``azureml:cpu-cluster``).
    display_name, description : str, optional
        As in the file.
    document : dict
        The YAML as read (after ``--set`` overrides).
    path : Path, optional
        The file read.
    """

    kind: str
    spec: TrainSpec
    data: str
    data_type: str
    data_input: str
    experiment_name: str
    compute: str | None = None
    display_name: str | None = None
    description: str | None = None
    document: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- reading --------------------------------------------------------------------------------


def load_job_file(path: str | Path, overrides: Sequence[str] = ()) -> JobFile:
    """Read and validate a job YAML file of titanicml's training (see :func:`read_document`).

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, or a key or value is wrong; the message
        starts with the YAML path of the key.
    """
    return parse_job(read_document(path, overrides), path=Path(path))


def read_document(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a job YAML file into a dict, with ``--set`` overrides applied.

    Parameters
    ----------
    path : str or Path
        The job file.
    overrides : sequence of str
        ``key.path=value`` settings (``--set``); the value is read as YAML
        (``limits.max_trials=20``).

    Raises
    ------
    ConfigError
        If the file is missing or not a YAML mapping.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"no job file at {file}; write one like examples/automl-titanic.yml")
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{file} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    return apply_overrides(document, overrides)


def apply_overrides(document: Any, overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``document`` with ``key.path=value`` settings applied."""
    import yaml

    if not isinstance(document, dict):
        raise ConfigError("a job file must be a YAML mapping (key: value lines)")
    result = copy.deepcopy(document)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. limits.max_trials=20")
        value = yaml.safe_load(text) if text else ""
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return result


def parse_job(document: Any, path: str | Path | None = None) -> JobFile:
    """Validate a job document (the YAML as a dict) and read it into a :class:`JobFile`.

    Raises
    ------
    ConfigError
        For an unknown key or a bad value, with its YAML path.
    """
    if not isinstance(document, dict):
        raise ConfigError("a job file must be a YAML mapping (key: value lines)")
    kind = document.get("type", "command")
    file = Path(path) if path is not None else None
    if kind == "command":
        return _parse_command(document, file)
    if kind == "automl":
        return _parse_automl(document, file)
    raise ConfigError(f"type: titanicml runs 'command' and 'automl' jobs, got {kind!r}")


def common_fields(document: dict[str, Any]) -> dict[str, Any]:
    """Return name, display_name, description, experiment_name, compute, checked as strings."""
    out: dict[str, Any] = {}
    for key in ("name", "display_name", "description", "experiment_name", "compute"):
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        out[key] = value
    if out["compute"] is not None and not out["compute"].strip():
        raise ConfigError("compute: must name a compute target, e.g. azureml:cpu-cluster")
    return out


def _job_file(
    kind: str,
    document: dict[str, Any],
    path: Path | None,
    settings: dict[str, Any],
    where: str,
    data: tuple[str, str, str],
) -> JobFile:
    common = common_fields(document)
    data_type, reference, data_input = data
    return JobFile(
        kind=kind,
        spec=_spec(settings, where),
        data=_resolve_path(reference, path),
        data_type=data_type,
        data_input=data_input,
        experiment_name=common["experiment_name"] or "titanicml",
        compute=common["compute"],
        display_name=common["display_name"],
        description=common["description"],
        document=document,
        path=path,
    )


def _parse_command(document: dict[str, Any], path: Path | None) -> JobFile:
    check_keys(document, COMMAND_KEYS, "")
    common_fields(document)
    command = document.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(
            "command: required, e.g. "
            "'python train.py --data ${{inputs.input_data}} --target Survived'"
        )
    inputs = document.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ConfigError("inputs: must be a mapping of input names")
    settings, data_input = _read_command(command)
    data_inputs = {
        name: _check_data(value, f"inputs.{name}")
        for name, value in inputs.items()
        if isinstance(value, dict)
    }
    if data_input is None:
        if "input_data" in data_inputs:
            data_input = "input_data"
        elif len(data_inputs) == 1:
            data_input = next(iter(data_inputs))
    if data_input is None or data_input not in data_inputs:
        named = f"inputs.{data_input}" if data_input else "inputs.input_data"
        raise ConfigError(
            f"{named}: missing; give the training data as an input, e.g. "
            "input_data: {type: uri_file, path: azureml:titanic-dataset@latest}"
        )
    settings.update(_read_block(document))
    where = "command" if TITANICML_BLOCK not in document else TITANICML_BLOCK
    data_type, reference = data_inputs[data_input]
    return _job_file("command", document, path, settings, where, (data_type, reference, data_input))


def _read_command(command: str) -> tuple[dict[str, Any], str | None]:
    """Read the training options out of a command line; return them and the data input."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"command: cannot be split into arguments: {exc}") from None
    is_titanicml = is_titanicml_command(words)
    try:
        settings, others = options_from_words(words, COMMAND_ALIASES)
    except ConfigError as exc:
        raise ConfigError(f"command: {exc}") from None
    data_input = None
    if "--data" in others:
        values = others["--data"]
        match = INPUT_REFERENCE.match(values[0]) if values else None
        if match is None:
            raise ConfigError(
                "command: --data must name a job input, e.g. --data ${{inputs.input_data}}"
            )
        data_input = match[1]
    if is_titanicml:
        unknown = [flag for flag in others if flag not in _TRAIN_FLAGS]
        if unknown:
            raise ConfigError(f"command: unknown option {unknown[0]} of titanicml train")
    return settings, data_input


def is_titanicml_command(words: Sequence[str]) -> bool:
    """Tell whether a command's words run titanicml itself (``titanicml train``, ``python -m``)."""
    head = list(words[:3])
    return any(w == "titanicml" or w.endswith("/titanicml") for w in head) or head == [
        "python", "-m", "titanicml",
    ]  # fmt: skip


def _read_block(document: dict[str, Any]) -> dict[str, Any]:
    block = document.get(TITANICML_BLOCK)
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"{TITANICML_BLOCK}: must be a mapping of training settings")
    check_keys(block, BLOCK_KEYS, TITANICML_BLOCK)
    by_name = {o.name: o for o in OPTIONS}
    for key, value in block.items():
        if not by_name[key].accepts(value):
            raise ConfigError(f"{TITANICML_BLOCK}.{key}: invalid value {value!r}")
    return dict(block)


def _parse_automl(document: dict[str, Any], path: Path | None) -> JobFile:
    check_keys(document, _AUTOML_KEYS, "")
    common_fields(document)
    task = document.get("task")
    if task not in _AUTOML_TASKS:
        raise ConfigError(
            f"task: titanicml runs 'classification' and 'regression' AutoML jobs, got {task!r}"
        )
    target = document.get("target_column_name")
    if not isinstance(target, str) or not target:
        raise ConfigError("target_column_name: required, the column to predict, e.g. Survived")
    cv = document.get("n_cross_validations")
    if cv is not None and cv != "auto" and (not is_int(cv) or cv < 2):
        raise ConfigError(f"n_cross_validations: must be an integer of at least 2, got {cv!r}")
    if "training_data" not in document:
        raise ConfigError(
            "training_data: required, e.g. {type: mltable, path: azureml:titanic-dataset@latest}"
        )
    data_type, data = _check_data(document["training_data"], "training_data")
    limits = _mapping(document, "limits")
    check_keys(limits, tuple(_LIMIT_KEYS), "limits")
    for key, kind in _LIMIT_KEYS.items():
        if key in limits:
            _check_limit(f"limits.{key}", limits[key], kind)
    if limits.get("max_trials", 2) < 2:
        raise ConfigError("limits.max_trials: titanicml needs at least 2 trials")
    training = _mapping(document, "training")
    check_keys(training, _TRAINING_KEYS, "training")
    for key in training:
        if key.startswith("enable_") and not isinstance(training[key], bool):
            raise ConfigError(f"training.{key}: must be true or false, got {training[key]!r}")
    featurization = _mapping(document, "featurization")
    check_keys(featurization, _FEATURIZATION_KEYS, "featurization")
    mode = featurization.get("mode", "auto")
    if mode not in ("auto", "off", "custom"):
        raise ConfigError(f"featurization.mode: must be auto, off or custom, got {mode!r}")

    def get(key_path: str) -> Any:
        node: Any = document
        for part in key_path.split("."):
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
        return MISSING if key_path == "n_cross_validations" and node == "auto" else node

    settings = options_from_automl(get, task)
    blocked = training.get("blocked_training_algorithms")
    if blocked is not None:
        settings["estimators"] = _without_blocked(settings.get("estimators"), blocked, task)
    block = _read_block(document)
    settings.update(block)
    where = TITANICML_BLOCK if block else ""
    return _job_file("automl", document, path, settings, where, (data_type, data, "training_data"))


def _without_blocked(chosen: list[str] | None, blocked: Any, task: str) -> list[str]:
    from titanicml.options import option
    from titanicml.spec import DEFAULT_ESTIMATORS

    try:
        families = set(option("estimators").from_automl(blocked, task))  # type: ignore[misc]
    except ConfigError as exc:
        message = str(exc).replace("allowed_training_algorithms", "blocked_training_algorithms")
        raise ConfigError(message) from None
    kept = [e for e in (chosen or DEFAULT_ESTIMATORS) if e not in families]
    if not kept:
        raise ConfigError("training.blocked_training_algorithms: blocks every algorithm")
    return kept


# -- writing --------------------------------------------------------------------------------


def command_document(
    spec: TrainSpec, data: str, experiment_name: str = "titanicml", compute: str | None = None
) -> dict[str, Any]:
    """Return a command job running ``titanicml train`` with every option of ``spec``."""
    from titanicml.options import spec_to_words

    words = ["titanicml", "train", "--data", "${{inputs.input_data}}", *spec_to_words(spec)]
    document: dict[str, Any] = {
        "type": "command",
        "command": " ".join(w if w.startswith("${{") else shlex.quote(w) for w in words),
        "inputs": {"input_data": {"type": "uri_file", "path": data}},
        "experiment_name": experiment_name,
    }
    if compute:
        document["compute"] = compute
    return document


def automl_document(
    spec: TrainSpec, data: str, experiment_name: str = "titanicml", compute: str | None = None
) -> dict[str, Any]:
    """Return an AutoML job of ``spec``: Azure's keys, and a ``titanicml:`` block for the rest.

    The block holds every option Azure AutoML cannot spell exactly (the seed, the
    leakage action, excluded columns, estimator families that share an Azure
    algorithm), so that reading the document back gives ``spec`` again.
    """
    kind = "regression" if spec.task == "regression" else "classification"
    document: dict[str, Any] = {
        "type": "automl",
        "task": kind,
        "training_data": {"type": "mltable", "path": data},
        "experiment_name": experiment_name,
    }
    if compute:
        document["compute"] = compute
    for key_path, value in automl_settings(spec, spec.task).items():
        node = document
        *parents, leaf = key_path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    reread = parse_job({**document, TITANICML_BLOCK: None}).spec
    wanted, got = spec_options(spec), spec_options(reread)
    block = {name: value for name, value in wanted.items() if got[name] != value}
    if block:
        document[TITANICML_BLOCK] = block
    return document


# -- validation helpers ------------------------------------------------------------------


def check_keys(mapping: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    """Raise ConfigError naming the YAML path of the first key not in ``known``."""
    for key in mapping:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"{path}: unknown key{_did_you_mean(str(key), known)}")


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _mapping(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {value!r}")
    return value


def _check_data(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping with type and path")
    check_keys(value, _DATA_KEYS, where)
    data_type = value.get("type", "uri_folder")
    if data_type not in DATA_TYPES:
        raise ConfigError(
            f"{where}.type: must be one of {', '.join(DATA_TYPES)}, got {data_type!r}"
        )
    data = value.get("path")
    if not isinstance(data, str) or not data:
        raise ConfigError(f"{where}.path: required, e.g. azureml:titanic-dataset@latest")
    return data_type, data


def _check_limit(where: str, value: Any, kind: str) -> None:
    if kind == "bool":
        ok = isinstance(value, bool)
        wanted = "true or false"
    elif kind == "number":
        ok = is_number(value)
        wanted = "a number"
    elif kind == "cores":
        ok = is_int(value) and (value >= 1 or value == -1)
        wanted = "a positive integer or -1"
    elif where.endswith("_minutes"):
        ok = is_number(value) and value > 0
        wanted = "a positive number of minutes"
    else:
        ok = is_int(value) and value > 0
        wanted = "a positive integer"
    if not ok:
        raise ConfigError(f"{where}: must be {wanted}, got {value!r}")


def _spec(settings: dict[str, Any], where: str) -> TrainSpec:
    if "target" not in settings:
        raise ConfigError(
            "command: no --target; give the column to predict in the command "
            "(--target Survived) or in a titanicml: block (target: Survived)"
        )
    try:
        return spec_from_options(settings)
    except ConfigError as exc:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{exc}") from None


def _resolve_path(data: str, path: Path | None) -> str:
    if is_reference(data) or "://" in data or path is None:
        return data
    return str((path.parent / data).resolve())
