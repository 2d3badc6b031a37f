"""The user's own command job (issue 10, section 1): the hands-on's files, run as Azure runs them.

Real subprocesses, a real MLflow SQLite store, the hands-on's own files copied to a
temporary folder; the only fake is Azure's MLClient (titanicml.backends.azure.testing).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

HANDSON = Path(__file__).resolve().parent.parent / "examples" / "handson"
JOB_FILE = "src/jobs/train-titanic.yml"


def _wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _record(workspace: Path, name: str) -> dict:
    return json.loads((workspace / "jobs" / name / "job.json").read_text())


@pytest.fixture
def handson(tmp_path, monkeypatch, session_store):
    """A copy of the hands-on's files, with its own workspace; the hands-on's folder is the cwd.

    The MLflow store is the session's (a new SQLite store costs seconds of migrations).
    """
    folder = tmp_path / "handson"
    shutil.copytree(HANDSON, folder)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("TITANICML_HOME", str(folder / ".titanicml"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_store)
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch, session_store):
    """A folder with a job's code (``src/``) and its own workspace; the cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TITANICML_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_store)
    (tmp_path / "src").mkdir()
    return tmp_path


def _job(folder: Path, command: str, **keys) -> Path:
    file = folder / "src" / "job.yml"
    file.write_text(yaml.safe_dump({"command": command, "code": ".", **keys}, sort_keys=False))
    return file


def _only_job(workspace: Path) -> str:
    (name,) = [p.name for p in (workspace / "jobs").iterdir() if not p.name.startswith(".")]
    return name


# -- the hands-on -----------------------------------------------------------------------------


def test_handson_commands_run_the_users_script_as_azure_would(handson, cli, titanic, tmp_path):
    """``data create`` then ``job create --stream``, from the hands-on's folder, as written."""
    import joblib
    from mlflow import MlflowClient

    workspace = handson / ".titanicml"
    created = cli(
        "data", "create", "--name", "titanic-dataset", "--path", "./data/titanic.csv",
        "--type", "uri_file",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    done = cli("job", "create", "-f", JOB_FILE, "--stream")
    assert done.returncode == 0, done.stderr
    assert "Accuracy:" in done.stdout  # streamed from the script
    assert "environment (azureml://registries/azureml/environments/sklearn-1.4" in done.stderr
    assert "compute (azureml:cpu-cluster) not used locally" in done.stderr
    name = _only_job(workspace)
    record = _record(workspace, name)
    assert record["status"] == "Completed" and record["exit_code"] == 0
    assert record["duration"] > 0
    stored = workspace / "data" / "titanic-dataset" / "1" / "titanic.csv"
    assert record["resolved_command"] == f"python train.py --input_data {stored}"

    # The script's autolog and log_metric (after autolog's fit) both land in the job's run.
    client = MlflowClient()
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "titanic-demo"
    printed = float(done.stdout.split("Accuracy: ")[1].split()[0])
    assert run.data.metrics["test_accuracy"] == pytest.approx(printed, abs=5e-4)
    assert "training_accuracy_score" in run.data.metrics
    assert run.data.tags["titanicml.job"] == name
    # No stray run: a run the script had opened itself would name its train.py as source.
    scripts = [
        r.info.run_id
        for r in client.search_runs([run.info.experiment_id])
        if str(workspace / "jobs" / name) in r.data.tags.get("mlflow.source.name", "")
    ]
    assert scripts == []
    assert not any("resumeRun" in key for key in client.get_experiment(run.info.experiment_id).tags)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "outputs")}
    assert artifacts == {"outputs/model.pkl"}
    logs = client.download_artifacts(run.info.run_id, "user_logs/std_log.txt", str(tmp_path))
    assert "Model saved to outputs/model.pkl" in Path(logs).read_text()

    # ./outputs/model.pkl is where the hands-on's next command (model register) looks.
    model = joblib.load(handson / "outputs" / "model.pkl")
    assert set(model.predict(titanic[["Age", "Pclass", "Sex"]].head(5))) <= {0, 1}
    assert f"Outputs copied to {handson / 'outputs'}" in done.stdout

    # job list / show / download / stream, as az ml job has them.
    listed = cli("job", "list")
    assert name in listed.stdout and "Completed" in listed.stdout
    shown = json.loads(cli("job", "show", name, "--json").stdout)
    assert shown["inputs"] == {"input_data": "azureml:titanic-dataset@latest -> titanic-dataset@1"}
    text = cli("job", "show", "--name", name).stdout
    assert "status: Completed" in text and "exit code: 0" in text
    downloaded = cli("job", "download", name, "--download-path", tmp_path / "dl")
    assert downloaded.returncode == 0, downloaded.stderr
    pickle = tmp_path / "dl" / "artifacts" / "outputs" / "model.pkl"
    assert pickle.read_bytes() == (handson / "outputs" / "model.pkl").read_bytes()
    log = tmp_path / "dl" / "artifacts" / "user_logs" / "std_log.txt"
    assert "Accuracy:" in log.read_text()
    streamed = cli("job", "stream", name)
    assert streamed.returncode == 0 and "Accuracy:" in streamed.stdout
    missing = cli("job", "show", "nope")
    assert missing.returncode == 2 and f"latest: {name}" in missing.stderr


# -- inputs, outputs, environment ---------------------------------------------------------------


SHOW_ARGS = """
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
Path(args[-1], "result.txt").write_text("written")
Path("outputs").mkdir(exist_ok=True)
Path("outputs", "seen.json").write_text(json.dumps({
    "args": args,
    "python": sys.executable,
    "cwd": os.getcwd(),
    "env": {k: os.environ.get(k) for k in
            ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI", "GREETING")},
    "listing": {a: sorted(os.listdir(a)) for a in args if os.path.isdir(a)},
}))
"""


def test_inputs_of_each_kind_are_resolved_and_substituted(project, cli, titanic):
    from titanicml.data.assets import register_asset

    (project / "src" / "show.py").write_text(SHOW_ARGS)
    data = project / "data"
    (data / "folder").mkdir(parents=True)
    titanic.head(20).to_csv(data / "folder" / "part.csv", index=False)
    titanic.head(30).to_csv(data / "small.csv", index=False)
    (data / "table").mkdir()
    (data / "table" / "MLTable").write_text("paths: [{file: ./t.csv}]\n")
    register_asset("small", data / "small.csv")
    command = (
        "python show.py ${{inputs.file}} ${{inputs.folder}} ${{inputs.table}} ${{inputs.asset}} "
        "${{inputs.made}} ${{inputs.n}} ${{inputs.words}} ${{inputs.flag}} ${{outputs.model}}"
    )
    job = _job(
        project, command,
        inputs={
            "file": {"type": "uri_file", "path": "../data/small.csv"},
            "folder": {"type": "uri_folder", "path": "../data/folder"},
            "table": {"type": "mltable", "path": "../data/table"},
            "made": {"type": "mltable", "path": "../data/small.csv"},
            "asset": {"type": "uri_file", "path": "azureml:small@latest"},
            "n": 5,
            "words": "two words",
            "flag": {"type": "boolean", "default": True},
        },
        outputs={"model": {"type": "uri_folder"}},
        environment_variables={"GREETING": "hello"},
        experiment_name="inputs",
    )  # fmt: skip
    done = cli("job", "create", "-f", job, "--stream", "--name", "kinds", "--set", "inputs.n=7")
    assert done.returncode == 0, done.stderr
    seen = json.loads((project / "outputs" / "seen.json").read_text())
    file, folder, table, asset, made, n, words, flag, output = seen["args"]
    assert file == str(data / "small.csv")
    assert seen["listing"][folder] == ["part.csv"]
    assert table == str(data / "table")  # an MLTable folder is read in place
    # A CSV given as an mltable input gets a folder with an MLTable file that reads it.
    assert seen["listing"][made] == ["MLTable", "small.csv"]
    mltable = yaml.safe_load(Path(made, "MLTable").read_text())
    assert mltable["paths"] == [{"file": "./small.csv"}]
    assert "read_delimited" in mltable["transformations"][0]
    assert Path(asset).read_bytes() == (data / "small.csv").read_bytes()
    assert Path(asset).is_relative_to(project / "ws" / "data" / "small")
    assert (n, words, flag) == ("7", "two words", "True")
    assert Path(output, "result.txt").read_text() == "written"
    assert os.path.realpath(seen["python"]) == os.path.realpath(sys.executable)
    assert seen["cwd"] == str(project / "ws" / "jobs" / "kinds" / "code")
    record = _record(project / "ws", "kinds")
    assert seen["env"] == {
        "MLFLOW_RUN_ID": record["run_id"],
        "MLFLOW_EXPERIMENT_NAME": "inputs",
        "MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"],
        "GREETING": "hello",
    }
    downloaded = cli("job", "download", "kinds", "--all", "--download-path", project / "dl")
    assert downloaded.returncode == 0, downloaded.stderr
    assert (project / "dl" / "named-outputs" / "model" / "result.txt").read_text() == "written"


def test_snapshot_leaves_out_ignored_files_and_old_outputs(project, cli):
    src = project / "src"
    (src / ".amlignore").write_text("*.bin\nscratch/\n")
    (src / "big.bin").write_bytes(b"0" * 10)
    (src / "scratch").mkdir()
    (src / "outputs").mkdir()
    (src / "outputs" / "old.pkl").write_text("old")
    (src / "keep.txt").write_text("kept")
    command = "python -c \"import os; print(sorted(os.listdir('.')))\""
    done = cli("job", "create", "-f", _job(project, command), "--stream", "--name", "snap")
    assert done.returncode == 0, done.stderr
    assert "['.amlignore', 'job.yml', 'keep.txt']" in done.stdout


# -- failures, Ctrl-C, cancel -------------------------------------------------------------------


def test_failing_script_gives_a_failed_job_with_its_exit_code_and_tail(project, cli):
    from mlflow import MlflowClient

    script = (
        "import sys, pathlib; pathlib.Path('outputs').mkdir(); "
        "pathlib.Path('outputs/half.pkl').write_text('x'); "
        "[print('line', i) for i in range(30)]; print('boom', file=sys.stderr); sys.exit(3)"
    )
    (project / "src" / "fail.py").write_text(script)
    done = cli("job", "create", "-f", _job(project, "python fail.py"), "--stream", "--name", "bad")
    assert done.returncode == 1
    assert "titanicml: error: job bad failed: the command exited with code 3" in done.stderr
    assert "line 29" in done.stderr and "boom" in done.stderr and "line 5\n" not in done.stderr
    record = _record(project / "ws", "bad")
    assert (record["status"], record["exit_code"]) == ("Failed", 3)
    assert record["tail"][-1] == "boom"
    assert not (project / "outputs").exists()  # a failed job's outputs stay with the job
    run = MlflowClient().get_run(record["run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["titanicml.error"] == "the command exited with code 3"


SLOW = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "print('pids', child.pid, flush=True); time.sleep(120)"
)


def _pids_from(line: str) -> list[int]:
    return [int(w) for w in line.split()[1:]]


def test_ctrl_c_cancels_the_job_and_its_whole_process_tree(project):
    from mlflow import MlflowClient

    (project / "src" / "slow.py").write_text(SLOW)
    job = _job(project, "python slow.py")
    env = {k: v for k, v in os.environ.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "titanicml", "job", "create", "-f", str(job), "--stream",
         "--name", "slow"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = _wait_for(lambda: _next_line(process, "pids"), 60, "the script's first line")
        grandchild = _pids_from(line)[0]
        script = _record(project / "ws", "slow")["process"]["pid"]
        assert _alive(grandchild) and _alive(script)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        process.kill()
    assert "job slow canceled" in process.stderr.read()
    _wait_for(lambda: not _alive(grandchild) and not _alive(script), 10, "the processes to end")
    record = _record(project / "ws", "slow")
    assert record["status"] == "Canceled"
    assert MlflowClient().get_run(record["run_id"]).info.status == "KILLED"


def _next_line(process: subprocess.Popen, start: str) -> str | None:
    line = process.stdout.readline()
    return line if line.startswith(start) else None


def test_background_job_streams_and_cancels_leaving_nothing_running(project, cli):
    (project / "src" / "slow.py").write_text(SLOW)
    job = _job(project, "python slow.py")
    done = cli("job", "create", "-f", job, "--name", "bg")
    assert done.returncode == 0, done.stderr
    assert "titanicml job stream bg" in done.stdout
    log = project / "ws" / "jobs" / "bg" / "user_logs" / "std_log.txt"
    _wait_for(lambda: log.is_file() and "pids" in log.read_text(), 60, "the script to start")
    record = _record(project / "ws", "bg")
    runner, script = record["owner"]["pid"], record["process"]["pid"]
    grandchild = _pids_from(log.read_text().split("\n")[0])[0]
    assert cli("job", "list").stdout.count("Running") == 1
    cancelled = cli("job", "cancel", "bg")
    assert cancelled.returncode == 0 and "Canceled" in cancelled.stdout
    _wait_for(lambda: not any(map(_alive, (runner, script, grandchild))), 15, "every process")
    streamed = cli("job", "stream", "bg")
    assert streamed.returncode == 1 and "pids" in streamed.stdout
    assert "job bg canceled" in streamed.stderr


def test_job_whose_runner_was_killed_shows_failed_and_its_command_is_stopped(project, cli):
    (project / "src" / "slow.py").write_text(SLOW)
    assert (
        cli("job", "create", "-f", _job(project, "python slow.py"), "--name", "k").returncode == 0
    )
    log = project / "ws" / "jobs" / "k" / "user_logs" / "std_log.txt"
    _wait_for(lambda: log.is_file() and "pids" in log.read_text(), 60, "the script to start")
    record = _record(project / "ws", "k")
    os.kill(record["owner"]["pid"], signal.SIGKILL)
    script = record["process"]["pid"]
    _wait_for(lambda: not _alive(record["owner"]["pid"]), 10, "the runner to die")
    grandchild = _pids_from(log.read_text().split("\n")[0])[0]
    shown = cli("job", "show", "k")
    assert "status: Failed" in shown.stdout and "killed or crashed" in shown.stdout
    _wait_for(lambda: not _alive(script) and not _alive(grandchild), 10, "the processes to stop")


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message", "fix"),
    [
        (
            {"command": "python x.py --data ${{inputs.other}}"},
            "command: ${{inputs.other}} names no input",
            "add inputs.other to the job file",
        ),
        (
            {"inputs": {"data": {"type": "uri_file", "path": "azureml:nope@latest"}}},
            "no data asset named 'nope'",
            "Register it with titanicml data create --name nope",
        ),
        ({"code": "../missing"}, "code: no folder at", "fix code: to the folder"),
        (
            {"inputs": {"data": {"type": "uri_file", "path": "./gone.csv"}}},
            "inputs.data.path: no file or folder at",
            "fix the path",
        ),
        (
            {"inputs": {"data": {"type": "uri_folder", "path": "./job.yml"}}},
            "inputs.data.path: ",
            "is a file; declare type: uri_file",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_creates_no_job(project, cli, keys, message, fix):
    document = {"command": "python x.py ${{inputs.data}}", "inputs": {"data": "x"}, **keys}
    done = cli("job", "create", "-f", _job(project, **document), "--stream")
    assert done.returncode == 2
    assert done.stderr.startswith("titanicml: error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr and fix in done.stderr
    jobs = project / "ws" / "jobs"
    assert not jobs.exists() or [p.name for p in jobs.iterdir() if p.name != ".staging"] == []


# -- Azure ----------------------------------------------------------------------------------------


def test_dry_run_writes_the_users_job_for_azure_and_the_sdk_loads_it(handson, tmp_path, cli):
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    out = tmp_path / "azure"
    done = cli("job", "create", "-f", JOB_FILE, "--dry-run", "--output-dir", out)
    assert done.returncode == 0, done.stderr
    assert "path: azureml:titanic-dataset@latest" in (out / "job.yml").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = load_job(out / "job.yml")
    assert job.command == "python train.py --input_data ${{inputs.input_data}}"
    assert job.inputs["input_data"].path.removeprefix("azureml:") == "titanic-dataset@latest"
    assert (job.compute, job.experiment_name) == ("cpu-cluster", "titanic-demo")
    assert (out / "src" / "train.py").read_bytes() == (HANDSON / "src/jobs/train.py").read_bytes()
    # A local input path travels with the job, relative to it.
    local = cli(
        "job", "create", "-f", JOB_FILE, "--dry-run", "--output-dir", tmp_path / "local",
        "--set", "inputs.input_data.path=../../data/titanic.csv",
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = load_job(tmp_path / "local" / "job.yml").inputs["input_data"].path
    copied = tmp_path / "local" / "inputs" / "input_data" / "titanic.csv"
    assert (tmp_path / "local" / path).resolve() == copied
    assert copied.read_bytes() == (handson / "data" / "titanic.csv").read_bytes()
    (tmp_path / "src").mkdir()
    refused = cli("job", "create", "-f", _job(tmp_path, "python x.py"), "--dry-run",
                  "--output-dir", tmp_path / "no")  # fmt: skip
    assert refused.returncode == 2
    assert "environment: Missing data for required field" in refused.stderr
    assert not (tmp_path / "no").exists()


def test_backend_azure_submits_the_users_command_job(handson, cli, monkeypatch):
    pytest.importorskip("azure.ai.ml")
    import titanicml.backends.azure as azure
    from titanicml.backends.azure.testing import COMPLETED_SCRIPT, FakeMLClient

    fake = FakeMLClient(script=COMPLETED_SCRIPT)
    real = azure.AzureBackend
    monkeypatch.setattr(
        azure, "AzureBackend",
        lambda **options: real(ml_client=fake, poll_interval=0, sleep=lambda s: None, **options),
    )  # fmt: skip
    done = cli(
        "job", "create", "-f", JOB_FILE, "--backend", "azure", "--stream",
        "--set", "experiment_name=titanic-azure",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ((_, (entity,), _),) = [c for c in fake.calls if c[0] == "jobs.create_or_update"]
    assert entity.command == "python train.py --input_data ${{inputs.input_data}}"
    # The SDK uploads the code relative to the job file's folder, as az ml does.
    assert Path(entity._base_path, entity.code).resolve() == handson / "src" / "jobs"
    assert entity.environment.endswith("environments/sklearn-1.4/versions/1")
    assert (entity.compute, entity.experiment_name) == ("cpu-cluster", "titanic-azure")
    assert "Job fake-job-1: Completed" in done.stdout
    assert fake.operations().count("jobs.get") == len(COMPLETED_SCRIPT)
