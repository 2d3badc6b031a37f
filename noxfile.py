"""Sessions: tests (the default CI run), slow, lint, demo, azureml, mltable."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (everything but the `slow` marker), on every core (pytest-xdist)."""
    session.install("-e", ".[dev,serve,azure,explain]")
    session.run("pytest", "-m", "not slow", "-n", "auto", *session.posargs)


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Run the tests marked slow (longer AutoML budgets)."""
    session.install("-e", ".[dev,serve,azure]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session(python=PYTHON)
def mltable(session: nox.Session) -> None:
    """Load the MLTable files titanicml writes with Azure's own `mltable` package.

    mltable pins cloudpickle below 3, so it gets its own environment (resolved in one
    install: pip then picks a joblib that agrees with it).
    """
    session.install("-e", ".[dev,azure]", "mltable")
    session.run("pytest", "tests/backends/test_azure.py", "-k", "mltable", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check style and lint with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "titanicml", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "titanicml", "tests", "benchmarks", "examples")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install titanicml as a user would and run the quickstart in a scratch folder."""
    session.install(".")
    tmp = session.create_tmp()
    session.chdir(tmp)
    session.run("titanicml", "quickstart", "--time-budget", "20")
    session.run("python", "-c", "import titanicml; print(titanicml.__version__)")


# Trains a small model on the embedded data and saves it: argv[1] the model
# directory, argv[2] the MLflow store.
_BUILD_MODEL = """
import sys
from titanicml import Trainer, datasets
trainer = Trainer(target="Survived", time_budget=15, exclude=["Boat", "Body"],
                  experiment_name="azureml-session", tracking_uri=sys.argv[2])
print(trainer.fit(datasets.load_titanic()).save(sys.argv[1], overwrite=True))
"""


@nox.session(python=PYTHON)
def azureml(session: nox.Session) -> None:
    """Serve an exported model with Azure ML's inference server (azmlinfsrv), as Azure does.

    On Azure the deployment's environment is the model's ``azure/conda.yml``: its
    pinned ``requirements.txt`` plus ``azureml-inference-server-http``, and no
    titanicml; ``score.py`` imports the copy of titanicml inside the model. This
    session builds the same situation in two environments:

    1. a builder venv (``.nox/azureml/tmp/builder``) gets titanicml (``pip install .``)
       and trains and exports a small model with it;
    2. this session's venv gets only the model's ``requirements.txt``,
       ``azureml-inference-server-http`` and pytest, which also checks that the
       model's pins and the server's resolve together. They do, in one pip call
       only: the server pins opentelemetry and pydantic exactly, MLflow's
       dependencies want newer ones, and pip settles on a server release that
       fits (installing the pins after the server breaks it);
    3. ``tests/azureml`` starts ``azmlinfsrv`` on the model and scores through it.

    Training in a separate venv keeps titanicml, FLAML and their dependencies out
    of the serving environment, so a model that silently needs one of them fails
    here as it would on Azure.
    """
    tmp = Path(session.create_tmp()).resolve()
    builder = tmp / "builder"
    python = builder / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(builder))
    session.run(str(python), "-m", "pip", "install", "--quiet", ".", external=True, silent=True)
    model = tmp / "titanic-model"
    session.run(
        str(python), "-c", _BUILD_MODEL, str(model), f"sqlite:///{tmp / 'mlflow.db'}",
        external=True,
    )  # fmt: skip
    session.install(
        "-r", str(model / "requirements.txt"), "azureml-inference-server-http", "pytest"
    )
    session.run(
        "pytest", "tests/azureml", *session.posargs, env={"TITANICML_AZUREML_MODEL": str(model)}
    )
