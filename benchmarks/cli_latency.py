"""How long a beginner waits for the registry commands, against MLflow doing the same.

Builds a SQLite store with one registered titanicml model (a 5 s training), then times
each command in fresh processes, as a user types it:

- ``titanicml model show titanic-model``, ``model list``, ``model show unknown-name``
  (an error), ``model show titanic-model@champion``;
- ``titanicml model register --run RUN_ID`` (writes: goes through MLflow);

against the named baseline, measured in the same run: the same read done by MLflow
itself, ``MlflowClient(store).get_registered_model(name)`` in a fresh ``python -c``.
Target: the read commands under 1.5 s on this machine. Each figure is the median of
``--repeat`` runs.

Run: python benchmarks/cli_latency.py [--repeat 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _report import write_section

NAME = "titanic-model"
TARGET_SECONDS = 1.5


def timed(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    """Median wall seconds of ``command`` in fresh processes."""
    seconds = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
        seconds.append(time.monotonic() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    titanicml = [sys.executable, "-m", "titanicml"]
    with tempfile.TemporaryDirectory(prefix="titanicml-cli-") as tmp:
        folder = Path(tmp)
        store = f"sqlite:///{folder / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TITANICML_HOME": str(folder / "ws")}
        subprocess.run(
            [*titanicml, "quickstart", "--time-budget", "5"],
            cwd=folder, env=env, capture_output=True, check=True,
        )  # fmt: skip
        import sqlite3

        with sqlite3.connect(folder / "mlflow.db") as connection:
            (run_id,) = connection.execute(
                "select run_uuid from runs where status = 'FINISHED' and run_uuid in "
                "(select run_uuid from params where key = 'best_estimator')"
            ).fetchone()
        register = [*titanicml, "model", "register", "--name", NAME, "--run", run_id]
        subprocess.run(register, cwd=folder, env=env, capture_output=True, check=True)
        subprocess.run(
            [*titanicml, "model", "alias", "set", NAME, "champion", "--version", "1"],
            cwd=folder, env=env, capture_output=True, check=True,
        )  # fmt: skip
        baseline_code = (
            "from mlflow import MlflowClient; "
            f"MlflowClient({store!r}, {store!r}).get_registered_model({NAME!r})"
        )
        cases = {
            "MLflow: get_registered_model (baseline)": [sys.executable, "-c", baseline_code],
            "model show titanic-model": [*titanicml, "model", "show", NAME],
            "model show titanic-model@champion": [*titanicml, "model", "show", f"{NAME}@champion"],
            "model list": [*titanicml, "model", "list"],
            "model show unknown-name (error)": [*titanicml, "model", "show", "unknown-name"],
            "model register --run (writes, through MLflow)": register,
        }
        results = {label: timed(cmd, folder, env, args.repeat) for label, cmd in cases.items()}
    baseline = results["MLflow: get_registered_model (baseline)"]
    lines = [
        "## Registry commands: how long a beginner waits",
        "",
        f"`python benchmarks/cli_latency.py`, {date.today().isoformat()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"median of {args.repeat} fresh processes each. Baseline in the same run: the same "
        "read through MLflow (`MlflowClient(store).get_registered_model`). Target: reads "
        f"under {TARGET_SECONDS} s.",
        "",
        "| command | seconds | / MLflow baseline |",
        "|---|---|---|",
    ]
    for label, seconds in results.items():
        lines.append(f"| `{label}` | {seconds:.2f} | {seconds / baseline:.2f} |")
        print(f"{label:<50} {seconds:6.2f} s  ({seconds / baseline:.2f} x baseline)")
    text = "\n".join(lines)
    if not args.no_write:
        write_section("cli-latency", text)


if __name__ == "__main__":
    main()
