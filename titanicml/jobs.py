"""Job files: the hands-on's ``az ml job create -f job.yml``, read into a TrainSpec.

Two shapes of Azure ML job YAML are read, with plain Python (no Azure SDK):

- a **command job** (``type: command``): the training settings come from the
  arguments of ``command`` (``--target``, ``--time-budget``, ``--metric``, ...) and
  from an optional ``titanicml:`` block (its keys are :class:`TrainSpec` fields and
  win over the command's arguments); the data is the input that ``--data
  ${{inputs.NAME}}`` names, else ``inputs.input_data``;
- an **AutoML job** (``type: automl``): ``task``, ``primary_metric`` (Azure's
  spelling), ``target_column_name``, ``training_data``, ``n_cross_validations``,
  ``limits``, ``training``, ``featurization`` map onto the same TrainSpec.

A key titanicml does not know, or a value it cannot use, raises
:class:`~titanicml.exceptions.ConfigError` naming the YAML path of the key, e.g.
``limits.timeout_minute: unknown key (did you mean timeout_minutes?)``.

:func:`write_azure_job` writes the Azure job YAML and the MLTable of the data that
``--backend azure`` submits (``titanicml job create --dry-run``).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titanicml.exceptions import BackendUnavailableError, ConfigError
from titanicml.spec import DEFAULT_ESTIMATORS, ESTIMATORS, TrainSpec

__all__ = [
    "AZURE_ALGORITHMS",
    "JobFile",
    "apply_overrides",
    "load_job_file",
    "parse_job",
    "write_azure_job",
]

SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/{}.schema.json"
DATA_TYPES = ("uri_file", "uri_folder", "mltable")
TITANICML_BLOCK = "titanicml"
INPUT_REFERENCE = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
TRAINING_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"

#: Azure AutoML's algorithm names -> titanicml's estimator families.
AZURE_ALGORITHMS: dict[str, str] = {
    "LightGBM": "lgbm",
    "XGBoostClassifier": "xgboost",
    "XGBoostRegressor": "xgboost",
    "RandomForest": "rf",
    "ExtremeRandomTrees": "extra_tree",
    "LogisticRegression": "lrl1",
    "KNN": "kneighbor",
    "LassoLars": "lassolars",
    "SGD": "sgd",
    "GradientBoosting": "histgb",
}
_AUTOML_TASKS = {"classification": "auto", "regression": "regression"}
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
_COMMAND_KEYS = (
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
#: Keys of the ``titanicml:`` block: TrainSpec fields.
BLOCK_KEYS = (
    "target",
    "task",
    "metric",
    "time_budget",
    "cv",
    "seed",
    "exclude",
    "estimators",
    "max_trials",
    "n_jobs",
    "ensemble",
    "on_leakage",
)
# Options of `titanicml train` / train.py read from a command job's command.
_COMMAND_OPTIONS: dict[str, str] = {
    "--target": "target",
    "--target-column": "target",
    "--task": "task",
    "--metric": "metric",
    "--time-budget": "time_budget",
    "--cv": "cv",
    "--seed": "seed",
    "--max-trials": "max_trials",
    "--on-leakage": "on_leakage",
    "--exclude": "exclude",
    "--estimators": "estimators",
    "--n-jobs": "n_jobs",
}
# Options of `titanicml train` that are not training settings.
_TITANICML_OTHER_OPTIONS = ("--data", "--backend", "--experiment", "--tracking-uri", "--output")


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
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths of the file are resolved against."""
        return self.path.parent if self.path is not None else Path.cwd()


# -- reading --------------------------------------------------------------------------------


def load_job_file(path: str | Path, overrides: Sequence[str] = ()) -> JobFile:
    """Read and validate a job YAML file.

    Parameters
    ----------
    path : str or Path
        The job file.
    overrides : sequence of str
        ``key.path=value`` settings applied before validation (``--set``); the
        value is read as YAML (``limits.max_trials=20``).

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, or a key or value is wrong; the message
        starts with the YAML path of the key.
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
    return parse_job(apply_overrides(document, overrides), path=file)


def apply_overrides(document: Any, overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``document`` with ``key.path=value`` settings applied."""
    import copy

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


def _parse_common(document: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    _check_keys(document, keys, "")
    out: dict[str, Any] = {}
    for key in ("name", "display_name", "description", "experiment_name", "compute"):
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        out[key] = value
    if out["compute"] is not None and not out["compute"].strip():
        raise ConfigError("compute: must name a compute target, e.g. azureml:cpu-cluster")
    return out


def _parse_command(document: dict[str, Any], path: Path | None) -> JobFile:
    common = _parse_common(document, _COMMAND_KEYS)
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
    data_inputs = {}
    for name, value in inputs.items():
        if isinstance(value, dict):
            data_inputs[name] = _check_data(value, f"inputs.{name}")
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
    block = _read_block(document)
    settings.update(block)
    spec = _spec(settings, "command" if TITANICML_BLOCK not in document else TITANICML_BLOCK)
    data_type, data = data_inputs[data_input]
    return JobFile(
        kind="command",
        spec=spec,
        data=_resolve_path(data, path),
        data_type=data_type,
        data_input=data_input,
        experiment_name=common["experiment_name"] or "titanicml",
        compute=common["compute"],
        display_name=common["display_name"],
        description=common["description"],
        document=document,
        path=path,
        settings=settings,
    )


def _read_command(command: str) -> tuple[dict[str, Any], str | None]:
    """Read the training options out of a command line; return them and the data input."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"command: cannot be split into arguments: {exc}") from None
    is_titanicml = any(w == "titanicml" or w.endswith("/titanicml") for w in words[:3]) or words[
        :3
    ] == ["python", "-m", "titanicml"]
    settings: dict[str, Any] = {}
    data_input = None
    i = 0
    while i < len(words):
        word = words[i]
        option, eq, inline = word.partition("=")
        if not option.startswith("--"):
            i += 1
            continue
        values: list[str] = [inline] if eq else []
        j = i + 1
        if not eq:
            while j < len(words) and not words[j].startswith("--"):
                values.append(words[j])
                j += 1
        i = j
        if option == "--data":
            match = INPUT_REFERENCE.match(values[0]) if values else None
            if match is None:
                raise ConfigError(
                    "command: --data must name a job input, e.g. --data ${{inputs.input_data}}"
                )
            data_input = match[1]
            continue
        key = _COMMAND_OPTIONS.get(option)
        if key is None:
            if is_titanicml and option not in _TITANICML_OTHER_OPTIONS:
                raise ConfigError(f"command: unknown option {option} of titanicml train")
            continue  # an option of the user's own script
        if not values:
            raise ConfigError(f"command: {option} needs a value")
        if key in ("exclude", "estimators"):
            settings[key] = [v for value in values for v in value.split(",") if v]
        else:
            settings[key] = _command_value(key, values[0], option)
    return settings, data_input


def _command_value(key: str, text: str, option: str) -> Any:
    if key == "time_budget":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(
                f"command: {option} must be a number of seconds, got {text!r}"
            ) from None
    if key in ("cv", "seed", "max_trials", "n_jobs"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"command: {option} must be an integer, got {text!r}") from None
    return text


def _read_block(document: dict[str, Any]) -> dict[str, Any]:
    block = document.get(TITANICML_BLOCK)
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise ConfigError(f"{TITANICML_BLOCK}: must be a mapping of training settings")
    _check_keys(block, BLOCK_KEYS, TITANICML_BLOCK)
    checks: dict[str, Callable[[Any], bool]] = {
        "target": lambda v: isinstance(v, str) and bool(v),
        "task": lambda v: isinstance(v, str),
        "metric": lambda v: isinstance(v, str),
        "time_budget": _is_positive_number,
        "cv": _is_int,
        "seed": _is_int,
        "max_trials": lambda v: v is None or _is_int(v),
        "n_jobs": _is_int,
        "ensemble": lambda v: isinstance(v, bool),
        "on_leakage": lambda v: isinstance(v, str),
        "exclude": _is_str_list,
        "estimators": _is_str_list,
    }
    for key, value in block.items():
        if not checks[key](value):
            raise ConfigError(f"{TITANICML_BLOCK}.{key}: invalid value {value!r}")
    return dict(block)


def _parse_automl(document: dict[str, Any], path: Path | None) -> JobFile:
    from titanicml.metrics import METRICS

    common = _parse_common(document, _AUTOML_KEYS)
    task = document.get("task")
    if task not in _AUTOML_TASKS:
        raise ConfigError(
            f"task: titanicml runs 'classification' and 'regression' AutoML jobs, got {task!r}"
        )
    settings: dict[str, Any] = {"task": _AUTOML_TASKS[task]}
    target = document.get("target_column_name")
    if not isinstance(target, str) or not target:
        raise ConfigError("target_column_name: required, the column to predict, e.g. Survived")
    settings["target"] = target
    metric = document.get("primary_metric")
    if metric is not None:
        by_azure = {m.azure_name.lower(): m for m in METRICS.values()}
        wanted = "regression" if task == "regression" else "binary"
        found = by_azure.get(str(metric).lower())
        if found is None or wanted not in found.tasks:
            choices = [m.azure_name for m in METRICS.values() if wanted in m.tasks]
            raise ConfigError(
                f"primary_metric: {metric!r} is not a {task} metric titanicml supports; "
                f"choose one of: {', '.join(choices)}"
            )
        settings["metric"] = found.name
    cv = document.get("n_cross_validations")
    if cv is not None and cv != "auto":
        if not _is_int(cv) or cv < 2:
            raise ConfigError(f"n_cross_validations: must be an integer of at least 2, got {cv!r}")
        settings["cv"] = cv
    if "training_data" not in document:
        raise ConfigError(
            "training_data: required, e.g. {type: mltable, path: azureml:titanic-dataset@latest}"
        )
    data_type, data = _check_data(document["training_data"], "training_data")
    limits = _mapping(document, "limits")
    _check_keys(limits, tuple(_LIMIT_KEYS), "limits")
    for key, kind in _LIMIT_KEYS.items():
        if key in limits:
            _check_limit(f"limits.{key}", limits[key], kind)
    if "timeout_minutes" in limits:
        settings["time_budget"] = float(limits["timeout_minutes"]) * 60
    if "max_trials" in limits:
        if limits["max_trials"] < 2:
            raise ConfigError("limits.max_trials: titanicml needs at least 2 trials")
        settings["max_trials"] = limits["max_trials"]
    training = _mapping(document, "training")
    _check_keys(training, _TRAINING_KEYS, "training")
    for key in training:
        if key.startswith("enable_") and not isinstance(training[key], bool):
            raise ConfigError(f"training.{key}: must be true or false, got {training[key]!r}")
    estimators = _algorithms(training, "allowed_training_algorithms")
    blocked = set(_algorithms(training, "blocked_training_algorithms") or ())
    chosen = list(estimators or DEFAULT_ESTIMATORS)
    if blocked:
        chosen = [e for e in chosen if e not in blocked]
        if not chosen:
            raise ConfigError("training.blocked_training_algorithms: blocks every algorithm")
    settings["estimators"] = chosen
    settings["ensemble"] = bool(
        training.get("enable_stack_ensemble", True) or training.get("enable_vote_ensemble", True)
    )
    featurization = _mapping(document, "featurization")
    _check_keys(featurization, _FEATURIZATION_KEYS, "featurization")
    mode = featurization.get("mode", "auto")
    if mode not in ("auto", "off", "custom"):
        raise ConfigError(f"featurization.mode: must be auto, off or custom, got {mode!r}")
    block = _read_block(document)
    settings.update(block)
    spec = _spec(settings, TITANICML_BLOCK if block else "")
    return JobFile(
        kind="automl",
        spec=spec,
        data=_resolve_path(data, path),
        data_type=data_type,
        data_input="training_data",
        experiment_name=common["experiment_name"] or "titanicml",
        compute=common["compute"],
        display_name=common["display_name"],
        description=common["description"],
        document=document,
        path=path,
        settings=settings,
    )


def _algorithms(training: dict[str, Any], key: str) -> list[str] | None:
    names = training.get(key)
    if names is None:
        return None
    if not _is_str_list(names) or not names:
        raise ConfigError(f"training.{key}: must be a list of algorithm names, got {names!r}")
    by_lower = {k.lower(): v for k, v in AZURE_ALGORITHMS.items()}
    out: list[str] = []
    for i, name in enumerate(names):
        family = by_lower.get(name.lower()) or (name if name in ESTIMATORS else None)
        if family is None:
            hint = _did_you_mean(name, list(AZURE_ALGORITHMS))
            raise ConfigError(
                f"training.{key}[{i}]: unknown algorithm {name!r}{hint}; titanicml runs: "
                + ", ".join(AZURE_ALGORITHMS)
            )
        if family not in out:
            out.append(family)
    return out


# -- validation helpers ------------------------------------------------------------------


def _check_keys(mapping: Mapping[str, Any], known: Sequence[str], where: str) -> None:
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
    _check_keys(value, _DATA_KEYS, where)
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
        ok = _is_number(value)
        wanted = "a number"
    elif kind == "cores":
        ok = _is_int(value) and (value >= 1 or value == -1)
        wanted = "a positive integer or -1"
    elif where.endswith("_minutes"):
        ok = _is_positive_number(value)
        wanted = "a positive number of minutes"
    else:
        ok = _is_int(value) and value > 0
        wanted = "a positive integer"
    if not ok:
        raise ConfigError(f"{where}: must be {wanted}, got {value!r}")


def _spec(settings: dict[str, Any], where: str) -> TrainSpec:
    values = dict(settings)
    if "target" not in values:
        raise ConfigError(
            "command: no --target; give the column to predict in the command "
            "(--target Survived) or in a titanicml: block (target: Survived)"
        )
    for key in ("exclude", "estimators"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        return TrainSpec(**values)
    except ConfigError as exc:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{exc}") from None


def _resolve_path(data: str, path: Path | None) -> str:
    from titanicml.data.assets import is_reference

    if is_reference(data) or "://" in data or path is None:
        return data
    return str((path.parent / data).resolve())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive_number(value: Any) -> bool:
    return _is_number(value) and value > 0


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# -- Azure job YAML (dry run) --------------------------------------------------------------


def write_azure_job(
    job: JobFile, output_dir: str | Path, workspace: str | Path | None = None
) -> dict[str, Path]:
    """Write the Azure ML job YAML and the MLTable of its data into ``output_dir``.

    ``data/MLTable`` plus a copy of the data file(s) is the folder that
    ``--backend azure`` uploads as an MLTable data asset; ``job.yml`` points at it
    by relative path, so ``az ml job create -f <output_dir>/job.yml`` submits the
    same job. AutoML files become an ``automl`` job from the TrainSpec (limits,
    metric, algorithms in Azure's spelling); command files become a command job
    that runs ``titanicml train`` with the same settings, on the file's compute,
    in an environment built from titanicml's requirements (``conda.yml``), with
    titanicml itself as the code (``src/``).

    Returns
    -------
    dict of str to Path
        ``job``, ``mltable`` and, for command jobs, ``code``.
    """
    out = Path(output_dir)
    try:
        from titanicml.backends.azure import jobs as azure_jobs
    except ImportError as exc:
        raise BackendUnavailableError(
            "writing Azure ML job files needs the Azure SDK: "
            f'pip install "titanicml[azure]" ({exc})'
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    return _write_with_backend(job, out, workspace, azure_jobs)


def _write_with_backend(
    job: JobFile, out: Path, workspace: str | Path | None, azure_jobs: Any
) -> dict[str, Path]:
    """Write the job the Azure backend submits, with its own builders."""
    from titanicml._version import __version__
    from titanicml.backends.azure.data import training_table, write_mltable
    from titanicml.data.io import resolve_data
    from titanicml.trainer import check_before_training

    frame, _ = resolve_data(job.data, workspace)
    spec, target, _ = check_before_training(frame, job.spec)
    folder = write_mltable(training_table(frame, spec), out / "data")
    compute = (job.compute or "cpu-cluster").removeprefix("azureml:")
    written = {"mltable": folder / "MLTable"}
    if job.kind == "automl":
        entity = azure_jobs.automl_job(spec, target.task, "./data", compute, job.experiment_name)
    else:
        written["code"] = azure_jobs.stage_code(out / "src")
        entity = azure_jobs.command_job(spec, "./data", "./src", compute, job.experiment_name)
    if job.display_name:
        entity.display_name = job.display_name
    if job.description:
        entity.description = job.description
    written["job"] = out / "job.yml"
    entity.dump(written["job"])
    header = (
        f"# Written by titanicml {__version__} from {job.path or 'a job document'}.\n"
        "# Submit it as is: az ml job create -f job.yml\n"
    )
    # The SDK dumps a local path not yet uploaded as "azureml:./..."; az ml reads "./...".
    text = written["job"].read_text().replace("azureml:./", "./")
    written["job"].write_text(header + text)
    return written
