"""The user's own command job (``command: python train.py ...``), read as Azure ML reads it.

A command job that does not run titanicml's trainer is run as written: its inputs
are resolved to local paths or literal values and substituted into
``${{inputs.NAME}}``, its outputs get folders (``${{outputs.NAME}}``). Paths in the
file (``code``, the inputs' local paths) are relative to the job file's folder, as
in Azure ML. Nothing here runs anything: :mod:`titanicml.jobs.local` does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titanicml.exceptions import ConfigError
from titanicml.jobs.files import COMMAND_KEYS, check_keys, common_fields, is_titanicml_command

__all__ = [
    "DATA_INPUT_TYPES",
    "OUTPUT_TYPES",
    "CommandJob",
    "JobInput",
    "is_user_command",
    "parse_command_job",
    "substitute",
]

#: Input types that name data, and the literal types.
DATA_INPUT_TYPES = ("uri_file", "uri_folder", "mltable")
LITERAL_TYPES = ("string", "integer", "number", "boolean")
OUTPUT_TYPES = ("uri_folder", "uri_file", "mlflow_model", "custom_model")
_INPUT_KEYS = ("type", "path", "mode", "description", "default", "value", "optional")
_OUTPUT_KEYS = ("type", "path", "mode", "description", "name", "version")
#: ``${{inputs.NAME}}`` / ``${{outputs.NAME}}`` and any other ``${{...}}`` expression.
BINDING = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_NAMED = re.compile(r"^(inputs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class JobInput:
    """One input of a command job.

    Attributes
    ----------
    name : str
        Its key under ``inputs``.
    type : str
        ``uri_file``, ``uri_folder``, ``mltable``, or ``literal``.
    value : str
        The data's path or reference as written, or the literal's text.
    mode : str, optional
        Azure's mount mode, as written (locally the data is read in place).
    """

    name: str
    type: str
    value: str
    mode: str | None = None

    @property
    def is_data(self) -> bool:
        """True for data inputs, false for literal values."""
        return self.type in DATA_INPUT_TYPES


@dataclass(frozen=True)
class CommandJob:
    """A command job that runs the user's own command.

    Attributes
    ----------
    command : str
        The command as written, with its ``${{...}}`` bindings.
    inputs : dict of str to JobInput
    outputs : dict of str to str
        Output name -> type.
    code : Path, optional
        The code folder (absolute), ``None`` when the file has no ``code``.
    experiment_name : str
        As in the file, else the name of the folder the job was created from (Azure's
        default).
    environment, compute : str, optional
        As written: used on Azure, reported as not used locally.
    environment_variables : dict of str to str
    name, display_name, description : str, optional
    tags : dict of str to str
    document : dict
        The YAML as read (after ``--set`` overrides).
    path : Path, optional
        The job file.
    """

    command: str
    inputs: dict[str, JobInput]
    outputs: dict[str, str]
    code: Path | None
    experiment_name: str
    environment: str | None = None
    compute: str | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The folder relative paths of the file are read from (the job file's folder)."""
        return self.path.parent.absolute() if self.path is not None else Path.cwd()


def is_user_command(document: Mapping[str, Any]) -> bool:
    """Tell whether a job document is a command job that does not run titanicml's trainer."""
    if document.get("type", "command") != "command":
        return False
    command = document.get("command")
    if not isinstance(command, str) or not command.strip():
        return False  # the training reader says what is missing
    try:
        words = shlex.split(command)
    except ValueError:
        return True
    return not is_titanicml_command(words)


def parse_command_job(document: dict[str, Any], path: str | Path | None = None) -> CommandJob:
    """Validate a command job document and read it into a :class:`CommandJob`.

    Raises
    ------
    ConfigError
        For an unknown key, a bad value, a missing code folder, or a ``${{...}}``
        binding that names no input or output; the message names the YAML key.
    """
    check_keys(document, COMMAND_KEYS, "")
    common = common_fields(document)
    file = Path(path).absolute() if path is not None else None
    base = file.parent if file is not None else Path.cwd()
    if document.get("titanicml") is not None:
        raise ConfigError(
            "titanicml: this block sets the options of titanicml's own training "
            "(command: titanicml train ...); this job runs your command as written: "
            "remove the block or pass the settings to your script"
        )
    command = document.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError("command: required, e.g. 'python train.py --input_data ${{inputs.data}}'")
    inputs = {name: _read_input(str(name), value) for name, value in _mapping(document, "inputs")}
    outputs = {
        name: _read_output(str(name), value) for name, value in _mapping(document, "outputs")
    }
    _check_bindings(command, inputs, outputs)
    return CommandJob(
        command=command.strip(),
        inputs=inputs,
        outputs=outputs,
        code=_code_folder(document.get("code"), base),
        experiment_name=common["experiment_name"] or Path.cwd().name or "Default",
        environment=_text(document, "environment"),
        compute=common["compute"],
        environment_variables={
            str(k): str(v) for k, v in _mapping(document, "environment_variables")
        },
        name=common["name"],
        display_name=common["display_name"],
        description=common["description"],
        tags={str(k): str(v) for k, v in _mapping(document, "tags")},
        document=document,
        path=file,
    )


def substitute(command: str, values: Mapping[str, str]) -> str:
    """Replace each ``${{inputs.NAME}}`` / ``${{outputs.NAME}}`` by its value, shell-quoted.

    ``values`` maps ``inputs.NAME`` and ``outputs.NAME`` to their text.
    """

    def replace(match: re.Match[str]) -> str:
        return shlex.quote(values[match[1]])

    return BINDING.sub(replace, command)


def _mapping(document: Mapping[str, Any], key: str) -> list[tuple[Any, Any]]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping of names, got {value!r}")
    return list(value.items())


def _text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):  # an inline environment: {image: ..., conda_file: ...}
        return str(value.get("image") or value.get("name") or "inline environment")
    raise ConfigError(f"{key}: must be a string, got {value!r}")


def _read_input(name: str, value: Any) -> JobInput:
    where = f"inputs.{name}"
    if isinstance(value, bool | int | float | str):
        return JobInput(name, "literal", str(value))
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a value or a mapping with type and path")
    check_keys(value, _INPUT_KEYS, where)
    kind = value.get("type", "uri_folder")
    if kind in LITERAL_TYPES:
        literal = value.get("value", value.get("default"))
        if literal is None:
            raise ConfigError(f"{where}: a {kind} input needs a value, e.g. {name}: 10")
        return JobInput(name, "literal", str(literal))
    if kind not in DATA_INPUT_TYPES:
        known = ", ".join((*DATA_INPUT_TYPES, *LITERAL_TYPES))
        raise ConfigError(f"{where}.type: titanicml runs inputs of type {known}; got {kind!r}")
    data = value.get("path")
    if not isinstance(data, str) or not data.strip():
        raise ConfigError(f"{where}.path: required, e.g. azureml:titanic-dataset@latest")
    mode = value.get("mode")
    return JobInput(name, kind, data.strip(), None if mode is None else str(mode))


def _read_output(name: str, value: Any) -> str:
    where = f"outputs.{name}"
    if value is None:
        return "uri_folder"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping, e.g. {{type: uri_folder}}")
    check_keys(value, _OUTPUT_KEYS, where)
    kind = value.get("type", "uri_folder")
    if kind not in OUTPUT_TYPES:
        raise ConfigError(f"{where}.type: must be one of {', '.join(OUTPUT_TYPES)}, got {kind!r}")
    return str(kind)


def _check_bindings(command: str, inputs: Mapping[str, JobInput], outputs: Mapping[str, str]):
    for match in BINDING.finditer(command):
        named = _NAMED.match(match[1])
        if named is None:
            raise ConfigError(
                f"command: {match[0]} is not an input or output; write ${{{{inputs.NAME}}}} "
                "or ${{outputs.NAME}}"
            )
        group, key = named[1], named[2]
        declared = inputs if group == "inputs" else outputs
        if key not in declared:
            example = "{type: uri_file, path: ./data.csv}" if group == "inputs" else "{}"
            raise ConfigError(
                f"command: {match[0]} names no {group[:-1]}; add {group}.{key} to the job "
                f"file, e.g. {group}: {{{key}: {example}}}"
            )


def _code_folder(code: Any, base: Path) -> Path | None:
    if code is None:
        return None
    if not isinstance(code, str) or not code.strip():
        raise ConfigError("code: must be the folder of your script, e.g. code: .")
    if "://" in code or code.startswith("azureml:"):
        raise ConfigError(
            f"code: {code} is not a folder on this machine; give the local folder of "
            "your script (relative to the job file), e.g. code: ."
        )
    folder = (base / code).resolve()
    if not folder.is_dir():
        raise ConfigError(
            f"code: no folder at {folder} (paths are relative to the job file's folder, "
            f"{base}); fix code: to the folder that holds your script"
        )
    return folder
