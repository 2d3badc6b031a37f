import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import run_cli
from mlflow import MlflowClient


def test_help_lists_the_verbs():
    out = run_cli("--help")
    assert out.returncode == 0
    assert "quickstart" in out.stdout and "train" in out.stdout


def test_quickstart_prints_leaderboard_score_run_and_ui_command(tmp_path):
    out = run_cli("quickstart", "--time-budget", "5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Leaderboard" in out.stdout
    assert "5-fold CV accuracy" in out.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in out.stdout
    assert (tmp_path / "mlflow.db").exists()
    run_id = out.stdout.split("MLflow run: ")[1].split()[0]
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["dropped"] == "Boat,Body"
    assert "Data checks" in out.stdout and "target_leakage" in out.stdout
    assert "Traceback" not in out.stderr
    # Piped output still shows the search's progress, one line per better score.
    progress = [line for line in out.stderr.splitlines() if line.startswith("AutoML search: ")]
    assert progress and "trials, best score" in progress[0]
    # It ends with what to do next, filled in with the run.
    assert f"titanicml model register --name titanic-model --run {run_id}" in out.stdout
    assert "titanicml online-endpoint serve --model titanic-model@latest" in out.stdout
    # The data checks come before the search, the model's skill after it.
    assert out.stdout.index("Data checks") < out.stdout.index("model_skill")
    assert out.stdout.index("model_skill") < out.stdout.index("Leaderboard")


def test_train_on_a_csv_saves_the_model(tmp_path, titanic, cli):
    titanic.to_csv(tmp_path / "titanic.csv", index=False)
    out = cli(
        "train",
        "--data",
        "titanic.csv",
        "--target",
        "Survived",
        "--time-budget",
        "4",
        "--exclude",
        "Boat",
        "Body",
        "--metric",
        "roc_auc",
        "--output",
        "model",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "CV roc_auc" in out.stdout
    assert (tmp_path / "model" / "MLmodel").exists()
    # The metric asked for is the one optimized: the leaderboard is ranked by it.
    meta = json.loads((tmp_path / "model" / "titanicml" / "metadata.json").read_text())
    assert meta["metric"] == "roc_auc"
    board = pd.read_csv(tmp_path / "model" / "titanicml" / "leaderboard.csv")
    scores = board["cv_roc_auc"].to_numpy()
    assert (scores[:-1] >= scores[1:]).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "missing.csv", "--target", "y"], "no such file"),
        (["train", "--data", "data.csv", "--target", "nope"], "target column 'nope' is not"),
        (["train", "--data", "empty.csv", "--target", "y"], "is empty"),
        (["train", "--data", "one_class.csv", "--target", "y"], "single class"),
        (["train", "--data", "data.txt", "--target", "y"], "unsupported file type"),
        (["train", "--data", "data.csv", "--target", "y", "--backend", "spark"], "unknown backend"),
        (["train", "--data", "data.csv", "--target", "y", "--metric", "r2"], "does not apply"),
        (["quickstart", "--time-budget", "0"], "must be a positive number"),
        (["quickstart", "--time-budget", "soon"], "must be a number, got 'soon'"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(args, message, tmp_path, cli):
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n")
    (tmp_path / "data.txt").write_text("x,y\n1,0\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "one_class.csv").write_text("x,y\n1,1\n2,1\n3,1\n")
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_ctrl_c_marks_the_run_killed_and_saves_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "titanicml",
            "quickstart",
            "--time-budget",
            "120",
            "--output",
            "model",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "mlflow.db"
    deadline = time.monotonic() + 60
    # Wait until the run exists and is running, then interrupt it.
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    rows = connection.execute("select status from runs").fetchall()
            except sqlite3.OperationalError:
                rows = []
            if ("RUNNING",) in rows:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the training run never started")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    with sqlite3.connect(db) as connection:
        statuses = {s for (s,) in connection.execute("select status from runs")}
    assert statuses == {"KILLED"}
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_quickstart_at_20_seconds_keeps_the_budget_and_scores_in_range(tmp_path):
    started = time.monotonic()
    out = run_cli("quickstart", "--time-budget", "20", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert elapsed <= 20 * 1.1 + 5 + 3, f"{elapsed:.1f} s (3 s allowed for the interpreter start)"
    accuracy = float(out.stdout.split("5-fold CV accuracy")[1].split()[0])
    assert 0.78 <= accuracy <= 0.90


def test_library_warnings_show_even_after_a_logging_config_disabled_them(tmp_path, capsys, cli):
    """import-linter (run in-process by test_architecture) calls dictConfig, which disables
    every existing logger: titanicml's warnings (runs left RUNNING, ...) must still show."""
    import logging
    from logging import config as logging_config

    loggers = [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    states = {logger.name: logger.disabled for logger in loggers}
    try:
        logging.getLogger("titanicml")
        logging_config.dictConfig({"version": 1})  # disable_existing_loggers defaults to True
        assert logging.getLogger("titanicml").disabled
        out = cli("model", "list", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
        assert out.returncode == 0, out.stderr
        logging.getLogger("titanicml").warning("a run was left RUNNING")
        assert "titanicml: warning: a run was left RUNNING" in capsys.readouterr().err
    finally:  # leave the other tests of this process the loggers as they were
        for logger in loggers:
            logger.disabled = states[logger.name]
