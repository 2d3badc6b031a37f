"""The one table of training options, and their spellings everywhere.

Every training option is described once, in :data:`OPTIONS`: its name (the
:class:`~titanicml.spec.TrainSpec` field, the :class:`~titanicml.trainer.Trainer`
parameter and the key of a job file's ``titanicml:`` block), its type, help, the
command-line flag, and its spelling in an Azure ML AutoML job when Azure has one.
The ``train`` and ``quickstart`` flags, the job-file reader, the AutoML job writer
and the command of an Azure command job are all generated from it.

======================  ===================  =========================================
option                  flag                 Azure AutoML job
======================  ===================  =========================================
``target``              ``--target``         ``target_column_name``
``task``                ``--task``           ``task`` (classification / regression)
``metric``              ``--metric``         ``primary_metric`` (``AUC_weighted``, ...)
``time_budget``         ``--time-budget``    ``limits.timeout_minutes`` (in minutes)
``cv``                  ``--cv``             ``n_cross_validations``
``seed``                ``--seed``           (none)
``exclude``             ``--exclude``        (none: the columns leave the uploaded table)
``estimators``          ``--estimators``     ``training.allowed_training_algorithms``
``max_trials``          ``--max-trials``     ``limits.max_trials``
``n_jobs``              ``--n-jobs``         ``limits.max_cores_per_trial``
``ensemble``            ``--[no-]ensemble``  ``training.enable_{stack,vote}_ensemble``
``on_leakage``          ``--on-leakage``     (none)
``on_no_skill``         ``--on-no-skill``    (none)
``holdout``             ``--holdout``        (none: titanicml sets the rows apart before
                                             any backend sees the data, so an Azure job
                                             gets the training rows only; Azure's own
                                             ``test_data_size`` is a random split scored
                                             in Azure and not shipped with the model,
                                             and is not set)
``cv_repeats``          ``--cv-repeats``     (none: Azure AutoML draws its folds once;
                                             the Azure backend refuses more than 1)
======================  ===================  =========================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from titanicml._utils.values import is_int, is_number
from titanicml.exceptions import ConfigError
from titanicml.spec import ESTIMATORS, LEAKAGE_ACTIONS, NO_SKILL_ACTIONS, TASKS, TrainSpec

__all__ = [
    "AZURE_ALGORITHMS",
    "OPTIONS",
    "Option",
    "automl_settings",
    "azure_task_kind",
    "option",
    "options_from_automl",
    "options_from_words",
    "spec_from_options",
    "spec_options",
    "spec_to_words",
]


#: titanicml estimator family -> Azure AutoML algorithm, per Azure task kind.
AZURE_ALGORITHMS: dict[str, dict[str, str]] = {
    "classification": {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostClassifier",
        "xgb_limitdepth": "XGBoostClassifier",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        "lrl1": "LogisticRegression",
        "lrl2": "LogisticRegression",
        "histgb": "GradientBoosting",
        "kneighbor": "KNN",
        "sgd": "SGD",
    },
    "regression": {
        "lgbm": "LightGBM",
        "xgboost": "XGBoostRegressor",
        "xgb_limitdepth": "XGBoostRegressor",
        "rf": "RandomForest",
        "extra_tree": "ExtremeRandomTrees",
        "lassolars": "LassoLars",
        "histgb": "GradientBoosting",
        "kneighbor": "KNN",
        "sgd": "SGD",
    },
}


def azure_task_kind(task: str) -> str:
    """Return Azure's task kind, ``classification`` or ``regression``, of a titanicml task."""
    return "regression" if task == "regression" else "classification"


@dataclass(frozen=True)
class Option:
    """One training option: how it is spelled everywhere it can be given.

    Attributes
    ----------
    name : str
        The :class:`TrainSpec` field, Trainer parameter and job-file key.
    kind : {"str", "int", "float", "bool", "list"}
        Its type; lists are of strings.
    help : str
        One line for ``--help``.
    flag : str
        The command-line flag (booleans also get ``--no-<name>``).
    choices : tuple of str, optional
        The allowed values (of each item, for lists).
    metavar : str, optional
        Placeholder in ``--help``.
    optional : bool
        Whether ``None`` is a valid value (``max_trials``).
    automl : tuple of str
        Its key paths in an Azure ML AutoML job (``("limits.timeout_minutes",)``);
        empty when Azure AutoML has no such setting.
    to_automl, from_automl : callable, optional
        Convert the value to and from Azure's spelling, given the Azure task kind;
        with several paths, ``from_automl`` gets the list of the values present.
    """

    name: str
    kind: str
    help: str
    flag: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    optional: bool = False
    automl: tuple[str, ...] = ()
    to_automl: Callable[[Any, str], Any] | None = None
    from_automl: Callable[[Any, str], Any] | None = None

    @property
    def default(self) -> Any:
        """The value a spec has when the option is not given (``TrainSpec``'s default)."""
        found = next(f for f in fields(TrainSpec) if f.name == self.name)
        return self.plain(found.default) if found.default is not MISSING else None

    @property
    def negative_flag(self) -> str | None:
        """``--no-ensemble`` for a boolean option, else ``None``."""
        return f"--no-{self.flag.removeprefix('--')}" if self.kind == "bool" else None

    def parse(self, text: str) -> Any:
        """Read one command-line word as this option's value (one item, for lists).

        Raises
        ------
        ConfigError
            If the word is not of the option's type.
        """
        if self.optional and text.lower() in ("none", ""):
            return None
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
        except ValueError:
            wanted = "an integer" if self.kind == "int" else "a number"
            raise ConfigError(f"{self.flag} must be {wanted}, got {text!r}") from None
        if self.kind == "bool":
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ConfigError(f"{self.flag} must be true or false, got {text!r}")
        return text

    def accepts(self, value: Any) -> bool:
        """Tell whether a value read from YAML has this option's type."""
        if value is None:
            return self.optional
        if self.kind == "str":
            return isinstance(value, str) and bool(value)
        if self.kind == "int":
            return is_int(value)
        if self.kind == "float":
            return is_number(value)
        if self.kind == "bool":
            return isinstance(value, bool)
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)

    def normalize(self, value: Any) -> Any:
        """Return the value as :class:`TrainSpec` holds it (tuples for lists)."""
        if self.kind == "list" and value is not None:
            return (value,) if isinstance(value, str) else tuple(value)
        return value

    def plain(self, value: Any) -> Any:
        """Return the value as plain data (lists for tuples)."""
        return list(value) if self.kind == "list" and value is not None else value

    def to_args(self, value: Any) -> list[str]:
        """Return the command-line words that give ``value`` (empty for ``None``)."""
        if value is None:
            return []
        if self.kind == "bool":
            return [self.flag] if value else [str(self.negative_flag)]
        if self.kind == "list":
            return [self.flag, *value] if value else []
        if self.kind == "float":
            return [self.flag, f"{value:g}"]
        return [self.flag, str(value)]


def _task_to_azure(task: str, kind: str) -> str:
    return azure_task_kind(task)


def _task_from_azure(value: Any, kind: str) -> str:
    tasks = {"classification": "auto", "regression": "regression"}
    if value not in tasks:
        raise ConfigError(
            f"task: titanicml runs 'classification' and 'regression' AutoML jobs, got {value!r}"
        )
    return tasks[value]


def _metric_to_azure(metric: str, kind: str) -> str | None:
    from titanicml.metrics import METRICS

    return None if metric == "auto" else METRICS[metric].azure_name


def _metric_from_azure(value: Any, kind: str) -> str:
    from titanicml.metrics import METRICS

    wanted = "regression" if kind == "regression" else "binary"
    by_azure = {m.azure_name.lower(): m for m in METRICS.values()}
    found = by_azure.get(str(value).lower())
    if found is None or wanted not in found.tasks:
        choices = [m.azure_name for m in METRICS.values() if wanted in m.tasks]
        raise ConfigError(
            f"primary_metric: {value!r} is not a {kind} metric titanicml supports; "
            f"choose one of: {', '.join(choices)}"
        )
    return found.name


def _minutes(seconds: float, kind: str) -> float:
    return seconds / 60


def _seconds(minutes: Any, kind: str) -> float:
    if not is_number(minutes) or minutes <= 0:
        raise ConfigError(
            f"limits.timeout_minutes: must be a positive number of minutes, got {minutes!r}"
        )
    return float(minutes) * 60


def _algorithms_to_azure(families: tuple[str, ...], kind: str) -> list[str]:
    table = AZURE_ALGORITHMS[kind]
    found: list[str] = []
    for family in families:
        algorithm = table.get(family)
        if algorithm is not None and algorithm not in found:
            found.append(algorithm)
    return found


def _algorithms_from_azure(names: Any, kind: str) -> list[str]:
    import difflib

    key = "training.allowed_training_algorithms"
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key}: must be a list of algorithm names, got {names!r}")
    by_lower = {a.lower(): f for f, a in reversed(AZURE_ALGORITHMS[kind].items())}
    out: list[str] = []
    for i, name in enumerate(names):
        family = by_lower.get(name.lower()) or (name if name in ESTIMATORS else None)
        if family is None:
            choices = sorted(set(AZURE_ALGORITHMS[kind].values()))
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{key}[{i}]: unknown algorithm {name!r}{hint}; titanicml runs: "
                + ", ".join(choices)
            )
        if family not in out:
            out.append(family)
    return out


def _same(value: Any, kind: str) -> Any:
    return value


def _any_enabled(values: list[Any], kind: str) -> bool:
    return any(values)


#: Every training option, in the order ``--help`` lists them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "target", "str", "column to predict", "--target", metavar="COLUMN",
        automl=("target_column_name",), to_automl=_same, from_automl=_same,
    ),
    Option(
        "task", "str", "binary, multiclass, regression, or auto (inferred from the target)",
        "--task", choices=TASKS, automl=("task",),
        to_automl=_task_to_azure, from_automl=_task_from_azure,
    ),
    Option(
        "metric", "str", "metric to optimize: accuracy, roc_auc, f1, log_loss, r2, rmse, mae "
        "or auto", "--metric", automl=("primary_metric",),
        to_automl=_metric_to_azure, from_automl=_metric_from_azure,
    ),
    Option(
        "time_budget", "float", "seconds for the whole training", "--time-budget",
        metavar="SECONDS", automl=("limits.timeout_minutes",),
        to_automl=_minutes, from_automl=_seconds,
    ),
    Option(
        "cv", "int", "cross-validation folds (default: 5, or 3 above 10,000 rows)", "--cv",
        metavar="FOLDS", optional=True,
        automl=("n_cross_validations",), to_automl=_same, from_automl=_same,
    ),
    Option("seed", "int", "random seed of the search and the folds", "--seed"),
    Option("exclude", "list", "columns never used as features", "--exclude", metavar="COLUMN"),
    Option(
        "estimators", "list", "estimator families to search", "--estimators",
        choices=tuple(ESTIMATORS), metavar="FAMILY",
        automl=("training.allowed_training_algorithms",),
        to_automl=_algorithms_to_azure, from_automl=_algorithms_from_azure,
    ),
    Option(
        "max_trials", "int", "stop after this many trials (splits them evenly over the "
        "families: the reproducible mode)", "--max-trials", metavar="N", optional=True,
        automl=("limits.max_trials",), to_automl=_same, from_automl=_same,
    ),
    Option(
        "n_jobs", "int", "threads per fit (-1: the idle cores)", "--n-jobs", metavar="N",
        automl=("limits.max_cores_per_trial",), to_automl=_same, from_automl=_same,
    ),
    Option(
        "ensemble", "bool", "try a weighted ensemble of the best families", "--ensemble",
        automl=("training.enable_stack_ensemble", "training.enable_vote_ensemble"),
        to_automl=_same, from_automl=_any_enabled,
    ),
    Option(
        "on_leakage", "str", "what to do with a column that leaks the target", "--on-leakage",
        choices=LEAKAGE_ACTIONS,
    ),
    Option(
        "on_no_skill", "str", "what to do when the best model does not beat the trivial "
        "baseline (majority class or mean): fail the training, or warn",
        "--on-no-skill", choices=NO_SKILL_ACTIONS,
    ),
    Option(
        "holdout", "float", "share of the rows set apart before the search (stratified, "
        "seeded): scored after it and shipped in the model, the frozen rows a retrained "
        "model is gated on (default 0: none)", "--holdout", metavar="SHARE",
    ),
    Option(
        "cv_repeats", "int", "times the folds are drawn, shuffled anew each time (the local "
        "backend; default: 2 up to 5,000 rows, else 1)", "--cv-repeats", metavar="N",
        optional=True,
    ),
)  # fmt: skip


def option(name: str) -> Option:
    """Return the option of that name.

    Raises
    ------
    ConfigError
        If there is none.
    """
    for found in OPTIONS:
        if found.name == name:
            return found
    raise ConfigError(f"unknown training option {name!r}")


# --- a spec as option values, command-line words and AutoML settings -------------------


def spec_options(spec: TrainSpec) -> dict[str, Any]:
    """Return every option's value in ``spec``, as plain data (lists, not tuples)."""
    return {o.name: o.plain(getattr(spec, o.name)) for o in OPTIONS}


def spec_from_options(values: Mapping[str, Any]) -> TrainSpec:
    """Build a spec from option values (missing ones take their default).

    Raises
    ------
    ConfigError
        For an unknown option or an invalid value.
    """
    known = {o.name: o for o in OPTIONS}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
    return TrainSpec(**{name: known[name].normalize(value) for name, value in values.items()})


def spec_to_words(spec: TrainSpec) -> list[str]:
    """Return the command-line words of every option of ``spec`` (for ``titanicml train``)."""
    return [word for o in OPTIONS for word in o.to_args(getattr(spec, o.name))]


def options_from_words(
    words: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Read the training options out of command-line words.

    Parameters
    ----------
    words : sequence of str
        A command, split (``shlex.split``).
    aliases : mapping, optional
        Other flags accepted for an option (``{"--target-column": "target"}``).

    Returns
    -------
    options : dict
        Option values found, by option name.
    others : dict
        Every other ``--flag``, with the words that followed it.

    Raises
    ------
    ConfigError
        If a value is missing or not of the option's type.
    """
    by_flag: dict[str, tuple[Option, Any]] = {}
    for found in OPTIONS:
        by_flag[found.flag] = (found, None)
        if found.negative_flag:
            by_flag[found.negative_flag] = (found, False)
    for flag, name in (aliases or {}).items():
        by_flag[flag] = (option(name), None)
    options: dict[str, Any] = {}
    others: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        flag, eq, inline = words[i].partition("=")
        if not flag.startswith("--"):
            i += 1
            continue
        values = [inline] if eq else []
        i += 1
        while not eq and i < len(words) and not words[i].startswith("--"):
            values.append(words[i])
            i += 1
        if flag not in by_flag:
            others[flag] = values
            continue
        found, fixed = by_flag[flag]
        if found.kind == "bool" and not values:
            options[found.name] = True if fixed is None else fixed
        elif not values:
            raise ConfigError(f"{flag} needs a value")
        elif found.kind == "list":
            options[found.name] = [v for value in values for v in value.split(",") if v]
        else:
            options[found.name] = found.parse(values[0])
    return options, others


def automl_settings(spec: TrainSpec, task: str) -> dict[str, Any]:
    """Return a spec's options in an Azure AutoML job's spelling, by key path.

    ``task`` is the resolved task (``binary``, ``multiclass``, ``regression``) or
    ``auto``; options Azure has no setting for are left out.
    """
    kind = azure_task_kind(task)
    settings: dict[str, Any] = {}
    for found in OPTIONS:
        value = getattr(spec, found.name)
        if not found.automl or found.to_automl is None or value is None:
            continue
        converted = found.to_automl(value, kind)
        if converted is not None:
            settings.update(dict.fromkeys(found.automl, converted))
    return settings


def options_from_automl(get: Callable[[str], Any], kind: str) -> dict[str, Any]:
    """Read the options an Azure AutoML job sets.

    Parameters
    ----------
    get : callable
        Returns the value at a key path of the job (``"limits.max_trials"``), or
        :data:`dataclasses.MISSING` when the job does not set it.
    kind : {"classification", "regression"}
        The job's task kind.

    Raises
    ------
    ConfigError
        For a value Azure's spelling does not allow; the message names its key path.
    """
    options: dict[str, Any] = {}
    for found in OPTIONS:
        if not found.automl or found.from_automl is None:
            continue
        present = [value for value in map(get, found.automl) if value is not MISSING]
        if not present:
            continue
        value = found.from_automl(present[0] if len(found.automl) == 1 else present, kind)
        options[found.name] = value
    return options
