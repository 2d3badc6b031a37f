from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Keep test budgets small: a few seconds per search.
FAST_BUDGET = 4.0


@pytest.fixture(scope="session", autouse=True)
def session_workspace(tmp_path_factory) -> Iterator[Path]:
    """One titanicml workspace for the whole run, set before any other fixture runs.

    No test writes ./.titanicml, and the models of the session fixtures are signed by
    this workspace's key, so they stay trusted. Tests of another workspace set
    ``TITANICML_HOME`` themselves (their change is undone after them).
    """
    workspace = tmp_path_factory.mktemp("workspace")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TITANICML_HOME", str(workspace))
        yield workspace


@pytest.fixture(autouse=True)
def _isolated_mlflow_store(tmp_path_factory, monkeypatch):
    """Point MLflow's default store at a temporary one, so no test writes ./mlflow.db.

    Tests of the default store unset ``MLFLOW_TRACKING_URI`` themselves, in a temporary
    working directory.
    """
    store = tmp_path_factory.mktemp("default-store") / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")


@pytest.fixture(scope="session")
def titanic():
    from titanicml.datasets import load_titanic

    return load_titanic()


@pytest.fixture
def store(tmp_path) -> str:
    """A fresh MLflow SQLite store in a temporary folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def session_store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def titanic_result(titanic, session_store):
    """One tracked training on the Titanic data, shared by the tests that only read it."""
    from titanicml import Trainer

    # max_trials makes the search visit the same families however loaded the machine is.
    trainer = Trainer(
        target="Survived",
        time_budget=30,
        max_trials=10,
        exclude=["Boat", "Body"],
        experiment_name="tests",
        tracking_uri=session_store,
    )
    return trainer.fit(titanic)


@pytest.fixture(scope="session")
def regression_result():
    """One untracked regression on the diabetes data shipped with scikit-learn: (result, data)."""
    from sklearn.datasets import load_diabetes

    from titanicml import Trainer

    data = load_diabetes(as_frame=True).frame
    return Trainer(target="target", time_budget=FAST_BUDGET, track=False).fit(data), data


@pytest.fixture(scope="session")
def saved_model(titanic_result, tmp_path_factory) -> Path:
    return titanic_result.save(tmp_path_factory.mktemp("models") / "titanic-model")


@dataclass
class CliResult:
    """What a CLI run printed and returned, like a finished process."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the CLI in this process (``cli.main(argv)``): same exit code and output, no start-up.

    ``cwd`` and ``env`` are set for the call (and the rest of the test), as a process
    would get them; with a ``cwd``, ``MLFLOW_TRACKING_URI`` is unset as in
    :func:`run_cli`, so the default store is ``<cwd>/mlflow.db``.
    """
    from titanicml.cli import main

    def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
            monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors, --help and --version
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, **kwargs):
    """Run the titanicml CLI in a subprocess and return the CompletedProcess.

    For what only a real process shows: the installed entry point, Ctrl-C, start-up.
    """
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "titanicml", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        **kwargs,
    )
