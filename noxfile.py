"""Sessions: tests (the default CI run), slow, lint, demo."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (everything but the `slow` marker)."""
    session.install("-e", ".[dev,serve]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Run the tests marked slow (longer AutoML budgets)."""
    session.install("-e", ".[dev,serve]")
    session.run("pytest", "-m", "slow", *session.posargs)


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
