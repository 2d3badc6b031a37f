"""Azure ML job entities built from a :class:`~titanicml.spec.TrainSpec`.

The settings come from the one table of training options
(:data:`titanicml.options.OPTIONS`): their Azure AutoML spelling for AutoML jobs,
their ``titanicml train`` flags for command jobs. Nothing here talks to Azure: the
functions return the SDK's job objects, which ``ml_client.jobs.create_or_update``
submits.
"""

from __future__ import annotations

import math
import shlex
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError
from titanicml.options import AZURE_ALGORITHMS, automl_settings, azure_task_kind, spec_to_words

if TYPE_CHECKING:
    from titanicml.metrics import Metric
    from titanicml.spec import TrainSpec

__all__ = [
    "AZURE_METRICS",
    "FAMILIES",
    "PRIMARY_METRICS",
    "automl_job",
    "azure_algorithms",
    "command_job",
    "conda_environment",
    "limits",
    "primary_metric",
    "stage_code",
]

#: Azure AutoML algorithm -> titanicml family, for leaderboards (first family wins).
FAMILIES: dict[str, str] = {}
for _table in AZURE_ALGORITHMS.values():
    for _family, _algorithm in _table.items():
        FAMILIES.setdefault(_algorithm, _family)

#: Azure's metric name (as logged on AutoML child runs) -> titanicml's name.
AZURE_METRICS: dict[str, str] = {}
#: The metrics Azure AutoML accepts as ``primary_metric``, per task kind.
PRIMARY_METRICS = {
    "classification": frozenset({"accuracy", "AUC_weighted"}),
    "regression": frozenset(
        {"r2_score", "normalized_root_mean_squared_error", "normalized_mean_absolute_error"}
    ),
}
# Azure AutoML's shortest experiment timeout, and the share of it one trial may use.
MIN_TIMEOUT_MINUTES = 15
TRIAL_TIMEOUT_FRACTION = 0.25
DEFAULT_MAX_TRIALS = 1000
# The image of the hands-on's environment; conda adds titanicml's requirements.
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
PYTHON_VERSION = "3.11"


def _azure_metrics() -> dict[str, str]:
    from titanicml.metrics import METRICS

    return {m.azure_name: m.name for m in METRICS.values()}


def primary_metric(spec: TrainSpec, task: str) -> tuple[Metric, str]:
    """Return titanicml's metric and Azure's ``primary_metric`` for a resolved task.

    Raises
    ------
    ConfigError
        If Azure AutoML cannot optimize the metric (``f1``, ``log_loss``, ``rmse``
        is unnormalized on Azure but accepted as its normalized form).
    """
    from titanicml.metrics import metric_for_task

    metric = metric_for_task(spec.metric, task)
    allowed = PRIMARY_METRICS[azure_task_kind(task)]
    if metric.azure_name not in allowed:
        names = sorted(n for n in _azure_metrics().items() if n[0] in allowed)
        raise ConfigError(
            f"Azure AutoML cannot optimize {metric.name!r} ({metric.azure_name}); "
            f"choose one of: {', '.join(name for _, name in names)}"
        )
    return metric, metric.azure_name


def azure_algorithms(spec: TrainSpec, task: str) -> list[str]:
    """Return the AutoML algorithms allowed for the spec's estimator families, in order."""
    table = AZURE_ALGORITHMS[azure_task_kind(task)]
    found = automl_settings(spec, task)["training.allowed_training_algorithms"]
    if not found:
        raise ConfigError(
            f"none of the estimators {list(spec.estimators)} runs on Azure AutoML for a "
            f"{task} task; choose from: {', '.join(table)}"
        )
    return found


def limits(spec: TrainSpec, max_concurrent_trials: int) -> dict[str, Any]:
    """Return the AutoML limits of a spec (the arguments of ``job.set_limits``).

    The time budget becomes the experiment timeout in whole minutes (at least
    Azure's minimum of 15); a trial may use a quarter of it. ``n_jobs`` becomes
    ``max_cores_per_trial``.
    """
    settings = automl_settings(spec, spec.task)
    timeout = max(MIN_TIMEOUT_MINUTES, math.ceil(settings["limits.timeout_minutes"]))
    return {
        "timeout_minutes": timeout,
        "trial_timeout_minutes": max(1, math.ceil(timeout * TRIAL_TIMEOUT_FRACTION)),
        "max_trials": settings.get("limits.max_trials", DEFAULT_MAX_TRIALS),
        "max_cores_per_trial": settings["limits.max_cores_per_trial"],
        "max_concurrent_trials": max_concurrent_trials,
        "enable_early_termination": True,
    }


def automl_job(
    spec: TrainSpec,
    task: str,
    data_uri: str,
    compute: str,
    experiment_name: str,
    max_concurrent_trials: int = 4,
    tags: dict[str, str] | None = None,
) -> Any:
    """Return the AutoML classification or regression job of a spec.

    Parameters
    ----------
    task : {"binary", "multiclass", "regression"}
        The resolved task.
    data_uri : str
        The registered MLTable asset, ``azureml:name:version``.
    """
    from azure.ai.ml import Input, automl
    from azure.ai.ml.constants import AssetTypes

    _, azure_metric = primary_metric(spec, task)
    algorithms = azure_algorithms(spec, task)
    settings = automl_settings(spec, task)
    factory = automl.regression if task == "regression" else automl.classification
    job = factory(
        training_data=Input(type=AssetTypes.MLTABLE, path=data_uri),
        target_column_name=settings["target_column_name"],
        primary_metric=azure_metric,
        n_cross_validations=settings.get("n_cross_validations", "auto"),
        enable_model_explainability=True,
        compute=compute,
        experiment_name=experiment_name,
        tags={"titanicml": "automl", **(tags or {})},
    )
    job.set_limits(**limits(spec, max_concurrent_trials))
    job.set_training(
        allowed_training_algorithms=algorithms,
        enable_stack_ensemble=settings["training.enable_stack_ensemble"],
        enable_vote_ensemble=settings["training.enable_vote_ensemble"],
        enable_model_explainability=True,
    )
    job.set_featurization(mode="auto")
    return job


def train_command(spec: TrainSpec) -> str:
    """Return the shell command of a command job: install titanicml, run ``titanicml train``.

    Every training option of ``spec`` is on the command line (from
    :func:`titanicml.options.spec_to_words`), so none is lost on the way to Azure.
    """
    args = ["titanicml", "train", "--data", "${{inputs.input_data}}", *spec_to_words(spec)]
    args += ["--output", "${{outputs.model}}/model"]
    quoted = " ".join(a if a.startswith("${{") else shlex.quote(a) for a in args)
    return f"pip install --no-deps --no-build-isolation . && {quoted}"


def runtime_requirements() -> list[str]:
    """Return titanicml's runtime requirements (no extras), as pip specifiers."""
    try:
        required = importlib_metadata.requires("titanicml") or []
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        required = []
    return sorted(r.split(";")[0].strip() for r in required if "extra ==" not in r)


def conda_environment() -> dict[str, Any]:
    """Return the conda file of the command job's environment (titanicml's requirements)."""
    return {
        "name": "titanicml",
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={PYTHON_VERSION}",
            "pip",
            {"pip": ["hatchling>=1.25", *runtime_requirements()]},
        ],
    }


def stage_code(folder: str | Path) -> Path:
    """Copy the titanicml package with a minimal ``pyproject.toml`` into ``folder``.

    The folder is the command job's ``code``: Azure ML uploads it and the job
    installs it with pip (titanicml is not on PyPI).
    """
    import shutil

    from titanicml._version import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).resolve().parents[2]  # the titanicml package
    shutil.copytree(
        source,
        folder / "titanicml",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    dependencies = "".join(f'    "{r}",\n' for r in runtime_requirements())
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling>=1.25"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "titanicml"\nversion = "{__version__}"\n'
        f'requires-python = ">=3.11"\ndependencies = [\n{dependencies}]\n\n'
        '[project.scripts]\ntitanicml = "titanicml.cli:main"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["titanicml"]\n'
    )
    return folder


def command_job(
    spec: TrainSpec,
    data_uri: str,
    code: str | Path,
    compute: str,
    experiment_name: str,
    tags: dict[str, str] | None = None,
) -> Any:
    """Return the command job (a ``CommandJob``) running titanicml's search on a cluster.

    The shape of the hands-on's ``train-titanic.yml``: an ``input_data`` input, a
    ``model`` output, the uploaded code and an environment built from a conda file.
    """
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Environment

    environment = Environment(
        image=BASE_IMAGE,
        conda_file=conda_environment(),
        description="titanicml's runtime requirements",
    )
    return command(
        code=str(code),
        command=train_command(spec),
        inputs={"input_data": Input(type=AssetTypes.MLTABLE, path=data_uri)},
        outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
        environment=environment,
        compute=compute,
        experiment_name=experiment_name,
        display_name=f"titanicml-train-{spec.target}".lower(),
        tags={"titanicml": "command", **(tags or {})},
    )._to_job()


AZURE_METRICS.update(_azure_metrics())
