"""The hands-on as files: ``examples/handson/run.sh`` and ``examples/handson.ipynb`` run.

Both make a real endpoint (router and deployment processes on 127.0.0.1): each test
deletes it in its own workspace afterwards, whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUN_SH = EXAMPLES / "handson" / "run.sh"
NOTEBOOK = EXAMPLES / "handson.ipynb"
ENDPOINT = "titanic-endpoint"


def _environment(tmp_path: Path) -> dict[str, str]:
    """A workspace and an MLflow store of this test; this Python's scripts first on PATH."""
    env = dict(os.environ)
    env["TITANICML_HOME"] = str(tmp_path / "workspace")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    env["TMPDIR"] = str(tmp_path)
    return env


def _titanicml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "titanicml", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _delete_endpoint(env: dict[str, str]) -> None:
    """Stop the endpoint's processes, if the example left any (it should not)."""
    if _titanicml(env, "online-endpoint", "show", "--name", ENDPOINT).returncode == 0:
        _titanicml(env, "online-endpoint", "delete", "--name", ENDPOINT, "--yes")


def _stop(script: subprocess.Popen) -> None:
    """Stop run.sh and the command it runs (its process group); its trap then cleans up."""
    if script.poll() is not None:
        return
    os.killpg(script.pid, signal.SIGTERM)
    try:
        script.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(script.pid, signal.SIGKILL)
        script.wait(timeout=30)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _assert_stopped(pids: set[int], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while {pid for pid in pids if _running(pid)} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not {pid for pid in pids if _running(pid)}, f"processes left running: {pids}"


def _assert_hands_on_answer(answer: dict) -> None:
    # The hands-on's passenger (a 22-year-old man in third class) did not survive by the
    # random forest of train.py (random_state=42): about 0.87 for class 0.
    assert answer["predictions"] == [0]
    assert answer["classes"] == [0, 1]
    (probabilities,) = answer["probabilities"]
    assert probabilities[0] > 0.5
    assert sum(probabilities) == pytest.approx(1.0)
    assert answer["model"] == {"name": "titanic-model", "version": "1"}


def test_run_sh_and_the_notebook_run_the_hands_on(tmp_path, monkeypatch):
    """run.sh runs in the background while the notebook executes: the pair takes about
    as long as the notebook alone (both spend most of their time starting processes)."""
    script_env = _environment(tmp_path / "script")
    notebook_env = _environment(tmp_path / "notebook")
    (tmp_path / "script").mkdir()
    (tmp_path / "notebook").mkdir()
    work = tmp_path / "script" / "handson"
    stdout, stderr = tmp_path / "script" / "stdout.txt", tmp_path / "script" / "stderr.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        script = subprocess.Popen(
            ["bash", str(RUN_SH), str(work)],
            env=script_env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        notebook = _execute_notebook(notebook_env, monkeypatch)
        script.wait(timeout=300)
    finally:
        _stop(script)
        _delete_endpoint(script_env)
        _delete_endpoint(notebook_env)
    _check_script(script.returncode, stdout.read_text(), stderr.read_text(), work, script_env)
    _check_notebook(notebook, notebook_env)


def _check_script(returncode: int, stdout: str, stderr: str, work: Path, env: dict) -> None:
    output = stdout + stderr
    assert returncode == 0, output
    for command in (
        "titanicml data create --name titanic-dataset --path ./data/titanic.csv --type uri_file",
        "titanicml job create -f src/jobs/train-titanic.yml --stream",
        "titanicml model register --name titanic-model --path ./outputs/model.pkl",
        "titanicml online-endpoint create -f src/endpoints/endpoint.yml",
        "titanicml online-deployment create -f src/endpoints/deployment.yml --all-traffic "
        "--overwrite",
    ):
        assert f"== {command}\n" in stdout, output
    assert (work / "outputs" / "model.pkl").is_file()

    # The curl answer is the line after the curl banner.
    lines = stdout.splitlines()
    curl_at = next(i for i, line in enumerate(lines) if line.startswith("== curl -X POST"))
    _assert_hands_on_answer(json.loads(lines[curl_at + 1]))

    # The trap deleted the endpoint: no record, no process of its router or instance.
    assert "endpoint titanic-endpoint deleted" in output, output
    listed = _titanicml(env, "online-endpoint", "list")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    pids = {int(line.split(":")[1].strip(" ,")) for line in lines if '"pid":' in line}
    assert len(pids) >= 2, output  # the router's and the deployment's instance
    _assert_stopped(pids)


def _execute_notebook(
    env: dict[str, str], monkeypatch, path: Path = NOTEBOOK, cwd: Path = EXAMPLES
):
    import nbformat
    from nbclient import NotebookClient

    for key in ("TITANICML_HOME", "MLFLOW_TRACKING_URI", "PATH", "TMPDIR"):
        monkeypatch.setenv(key, env[key])  # the kernel starts with this environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if one fails
    return notebook


def _check_notebook(notebook, env: dict[str, str]) -> None:
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for output in outputs)
    assert "titanicml: error" not in printed, printed
    assert "Traceback" not in printed, printed

    def cell_with(text: str):
        return next(cell for cell in code_cells if text in cell.source)

    for source in ("board = result.leaderboard", "ConfusionMatrixDisplay.from_predictions"):
        images = [o for o in cell_with(source).outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"no figure from the cell with {source!r}"

    answer_outputs = cell_with("urllib.request.urlopen").outputs
    result = next(o for o in answer_outputs if o.output_type == "execute_result")
    assert "'predictions': [0]" in result["data"]["text/plain"]

    cleanup = "".join(o.get("text", "") for o in cell_with("online-endpoint delete").outputs)
    assert "endpoint titanic-endpoint deleted" in cleanup
    assert cleanup.rstrip().endswith("[]")
    listed = _titanicml(env, "online-endpoint", "list")
    assert json.loads(listed.stdout) == []


def test_run_sh_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "something").write_text("mine")
    done = subprocess.run(
        ["bash", str(RUN_SH), str(tmp_path)],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not empty" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


MONITOR_NOTEBOOK = EXAMPLES / "monitor.ipynb"


def test_the_monitor_notebook_walks_the_loop(tmp_path, monkeypatch):
    """examples/monitor.ipynb: drifted traffic, an alert, a promoted challenger, cleanup."""
    env = _environment(tmp_path)
    try:
        notebook = _execute_notebook(env, monkeypatch, MONITOR_NOTEBOOK)
    finally:
        # The notebook makes its own workspace in a new temporary folder (under TMPDIR):
        # stop its endpoint there too if a cell failed before its clean-up.
        for workspace in [*tmp_path.glob("titanicml-loop-*/workspace"), None]:
            _delete_endpoint(
                env if workspace is None else {**env, "TITANICML_HOME": str(workspace)}
            )
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for output in outputs)
    assert "titanicml: error" not in printed and "Traceback" not in printed, printed
    assert "alert: True" in printed
    assert "promoted titanic-model:2 on titanic-endpoint (deployment green)" in printed
    assert "deployment: green model: {'name': 'titanic-model', 'version': '2'}" in printed

    # The clean-up lists the endpoint and its deployments (their pids), deletes it, lists
    # again (empty), then removes the folder and puts the caller's settings back.
    cleanup_cell = next(cell for cell in code_cells if "online-endpoint delete" in cell.source)
    cleanup = "".join(output.get("text", "") for output in cleanup_cell.outputs)
    before, deleted, after = cleanup.partition("endpoint titanic-endpoint deleted")
    assert deleted, cleanup
    assert '"name": "titanic-endpoint"' in before and '"name": "green"' in before, cleanup
    pids = {int(line.split(":")[1].strip(" ,")) for line in before.splitlines() if '"pid":' in line}
    assert len(pids) >= 2, cleanup  # the router's and the deployment's instance
    _assert_stopped(pids)
    listed_after, removed, _ = after.split("\n", 1)[1].partition("removed ")
    assert json.loads(listed_after) == [], cleanup
    assert removed and not list(tmp_path.glob("titanicml-loop-*")), cleanup


RAI_NOTEBOOK = EXAMPLES / "responsible-ai.ipynb"


def test_the_responsible_ai_notebook_explains_checks_and_reports(tmp_path, monkeypatch):
    """examples/responsible-ai.ipynb: explanations, fairness, cohorts, the report inline.

    It runs in a folder of its own (it writes titanic-report.html where it runs).
    """

    notebook = _execute_notebook(_environment(tmp_path), monkeypatch, RAI_NOTEBOOK, tmp_path)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    printed = "".join(output.get("text", "") for output in outputs)
    assert "Traceback" not in printed, printed

    def cell_with(text: str):
        return next(cell for cell in code_cells if text in cell.source)

    shown = cell_with("beeswarm_plot(explanation").outputs
    assert [o for o in shown if "image/png" in o.get("data", {})], "no SHAP summary figure"
    disparities = cell_with("assess_fairness(").outputs[0]["data"]["text/plain"]
    assert "demographic_parity_difference" in disparities
    cohorts = cell_with("error_cohorts(").outputs[0]["data"]["text/plain"]
    assert "coverage" in cohorts and " = " in cohorts  # rules in the user's columns
    report_cell = cell_with("build_report(").outputs
    assert "accuracy >= 0.8: " in "".join(o.get("text", "") for o in report_cell)
    inline = next(o for o in report_cell if o.output_type == "execute_result")["data"]
    assert "<iframe" in inline["text/html"] and "Scorecard" in inline["text/html"]
    page = (tmp_path / "titanic-report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page

    # The command-line cell runs on the model and the CSV file the notebook saved.
    command = "".join(o.get("text", "") for o in cell_with("!titanicml report").outputs)
    command = re.sub(r"\x1b\[[0-9;]*m", "", command)  # its colours, in a terminal
    assert "accuracy >= 0.8: " in command and "dp_difference <= 0.1: " in command, command
    assert "wrote report.html" in command, command
    assert (tmp_path / "saved-model" / "MLmodel").is_file()
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Scorecard" in page


@pytest.mark.parametrize("path", [NOTEBOOK, MONITOR_NOTEBOOK, RAI_NOTEBOOK], ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    for cell in code_cells:
        assert cell.outputs == [], f"cell {cell.id} has outputs: strip them before committing"
        assert cell.execution_count is None, f"cell {cell.id} has an execution count"
        assert "execution" not in cell.metadata, f"cell {cell.id} has execution timings"
