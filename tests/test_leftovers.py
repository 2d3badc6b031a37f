"""Nothing half-done is left behind by a process killed outright (SIGKILL).

Real processes are killed here: staging folders of ``data create``, of a batch output
and of a model replacement, and the MLflow run of ``titanicml quickstart``. The next
command must clean what belongs to no live process, and only that.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from titanicml._utils.staging import Staging, staged_path

LINUX = sys.platform.startswith("linux")


def _child(script: str, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a Python child running ``script``; return it and the first line it prints.

    The script prints one line when it is where the test wants it, then blocks on
    stdin: it holds its state until the test kills it or closes stdin.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = process.stdout.readline().strip()
    if not line:
        process.kill()
        _, stderr = process.communicate(timeout=30)
        pytest.fail(f"the child process stopped before it was ready:\n{stderr}")
    return process, line


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)  # reaped: not even a zombie is left
    assert process.returncode == -signal.SIGKILL


def _finish(process: subprocess.Popen) -> None:
    """Let a blocked child go on (stdin closed) and end normally."""
    process.stdin.close()
    process.wait(timeout=30)
    assert process.returncode == 0, process.stderr.read()


HOLD_STAGING = """
    import sys
    from pathlib import Path
    from titanicml._utils.staging import Staging

    with Staging(Path(sys.argv[1]), prefix=sys.argv[2]) as staging:
        (staging.path / "part").write_bytes(b"x" * 1000)
        print(staging.path, flush=True)
        sys.stdin.read()
"""


# --- staging folders ---------------------------------------------------------------------


def test_a_killed_data_create_leaves_staging_that_the_next_create_removes(tmp_path, cli):
    workspace = tmp_path / "ws"
    big = tmp_path / "big.csv"
    big.write_text("x,y\n" + "1,2\n" * 500_000)
    # `data create` itself, stopped mid-copy (after 1 MB) at the copy's seam, then killed.
    killed, ready = _child(
        """
        import sys
        import titanicml.data.assets as assets

        def copy_then_block(source, target):
            with open(source, "rb") as src, open(target, "wb") as dst:
                dst.write(src.read(1 << 20))
            print("copying", flush=True)
            sys.stdin.read()

        assets._copy_file = copy_then_block
        from titanicml.cli import main
        main(["data", "create", "--name", "big", "--path", sys.argv[1]])
        """,
        str(big),
        env={"TITANICML_HOME": str(workspace)},
    )
    assert ready == "copying"
    staging_root = workspace / "data" / ".staging"
    (leftover,) = staging_root.iterdir()
    _kill(killed)
    assert leftover.is_dir() and (leftover / "version" / "big.csv").stat().st_size == 1 << 20

    live, live_path = _child(HOLD_STAGING, str(staging_root), "version-")
    try:
        small = tmp_path / "small.csv"
        small.write_text("x,y\n1,2\n3,4\n")
        out = cli("data", "create", "--name", "small", "--path", small, cwd=tmp_path,
                  env={"TITANICML_HOME": str(workspace)})  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert not leftover.exists(), "the killed process's staging folder is still there"
        assert Path(live_path).is_dir(), "a live process's staging folder was removed"
        assert (workspace / "data" / "small" / "1" / "asset.json").is_file()
        assert not (workspace / "data" / "big").exists()
    finally:
        _finish(live)
    assert list(staging_root.iterdir()) == []


def test_a_killed_batch_output_leaves_staging_that_the_next_batch_removes(
    titanic_result, titanic, tmp_path
):
    from titanicml.batch import score_file

    killed, leftover = _child(
        """
        import sys
        from pathlib import Path
        from titanicml._utils.staging import staged_path

        with staged_path(Path(sys.argv[1])) as building:
            building.write_bytes(b"row,prediction\\n0,1\\n")  # half an output
            print(building.parent, flush=True)
            sys.stdin.read()
        """,
        str(tmp_path / "old.csv"),
    )
    _kill(killed)
    assert Path(leftover).is_dir() and Path(leftover).name.startswith(".old.csv.")
    live, live_path = _child(HOLD_STAGING, str(tmp_path), ".other.csv.")
    try:
        data = tmp_path / "in.csv"
        titanic.head(50).to_csv(data, index=False)
        summary = score_file(titanic_result.model, data, tmp_path / "out.csv")
        assert summary.rows == 50
        assert not Path(leftover).exists(), "the killed batch's staging folder is still there"
        assert Path(live_path).is_dir(), "a live process's staging folder was removed"
        assert not (tmp_path / "old.csv").exists()
    finally:
        _finish(live)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_replacement_killed_between_its_renames_gets_the_old_target_back(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "MLmodel").write_text("old")
    # Killed right after the old model was moved aside, before the new one took its place.
    killed, ready = _child(
        """
        import os, sys
        from pathlib import Path
        from titanicml._utils.staging import staged_path

        real_rename = os.rename

        def rename(source, destination):
            real_rename(source, destination)
            if ".replaced-" in str(destination):
                print("aside", flush=True)
                sys.stdin.read()

        os.rename = rename
        with staged_path(Path(sys.argv[1]), overwrite=True) as building:
            building.mkdir()
            (building / "MLmodel").write_text("new")
        """,
        str(target),
    )
    assert ready == "aside"
    _kill(killed)
    assert not target.exists()  # the crash window: the old model is in the staging folder

    with staged_path(tmp_path / "other") as building:  # the next write in that folder
        building.write_text("other")
    assert (target / "MLmodel").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "other"]


def test_only_folders_of_dead_owners_on_this_host_are_removed(tmp_path):
    from titanicml._utils.processes import current_process, is_running
    from titanicml._utils.staging import remove_stale_staging

    me = current_process()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    assert not is_running(dead_pid, me.start)

    def folder(pid: int, start: str, host: str) -> Path:
        path = tmp_path / f".x.tml{pid}-{start}-{host}-abcd1234"
        path.mkdir()
        return path

    gone = folder(dead_pid, "1", me.host_key)
    mine = folder(me.pid, me.start, me.host_key)
    elsewhere = folder(dead_pid, "1", "0badf00d" if me.host_key != "0badf00d" else "0badf00e")
    unrelated = tmp_path / ".x.notstaging"
    unrelated.mkdir()
    recycled = folder(me.pid, str(int(me.start) + 1), me.host_key) if LINUX else None

    removed = remove_stale_staging(tmp_path)
    assert gone in removed and not gone.exists()
    assert mine.exists() and elsewhere.exists() and unrelated.exists()
    if LINUX:  # same pid, another start time: a recycled pid, not this process
        assert recycled in removed and not recycled.exists()


@pytest.mark.skipif(not LINUX, reason="start times are read from /proc")
def test_process_identity_tells_a_recycled_pid_from_its_owner():
    from titanicml._utils.processes import current_process, is_running, start_time

    me = current_process()
    assert me.start == start_time(os.getpid()) != ""
    assert is_running(me.pid, me.start)
    assert not is_running(me.pid, str(int(me.start) + 1))
    assert is_running(me.pid)  # without a start time: any process with that pid


def test_a_staging_folder_records_its_owner(tmp_path):
    from titanicml._utils.processes import current_process

    me = current_process()
    with Staging(tmp_path) as staging:
        assert f"tml{me.pid}-{me.start}-{me.host_key}-" in staging.path.name
    assert list(tmp_path.iterdir()) == []


# --- MLflow runs -------------------------------------------------------------------------


def _wait_for_running_run(db: Path, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended before its run was seen: {process.stderr.read()}")
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    rows = connection.execute(
                        "select run_uuid from runs where status = 'RUNNING'"
                    ).fetchall()
            except sqlite3.OperationalError:  # the schema is being created
                rows = []
            if rows:
                return rows[0][0]
        time.sleep(0.1)
    process.kill()
    pytest.fail("the training run never started")


def test_a_killed_training_run_is_marked_failed_when_the_store_is_next_opened(tmp_path, cli):
    from titanicml._utils.processes import current_process

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    training = subprocess.Popen(
        [sys.executable, "-m", "titanicml", "quickstart", "--time-budget", "120"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / "mlflow.db"
    killed_run = _wait_for_running_run(db, training)
    _kill(training)

    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    assert client.get_run(killed_run).info.status == "RUNNING"  # what SIGKILL leaves
    tags = client.get_run(killed_run).data.tags
    assert tags["titanicml.pid"] == str(training.pid)
    assert tags["titanicml.host"] == current_process().host
    assert datetime.fromisoformat(tags["titanicml.heartbeat"])
    if LINUX:
        assert tags["titanicml.process_start"].isdigit()
        assert tags["titanicml.pid_namespace"] == current_process().namespace != ""
    experiment = client.get_run(killed_run).info.experiment_id
    from titanicml.store import owner_tags

    live_run = client.create_run(experiment, tags=owner_tags()).info.run_id  # this process
    elsewhere = {
        **owner_tags(),
        "titanicml.host": "another-host",
        "titanicml.pid": tags["titanicml.pid"],
    }
    remote_run = client.create_run(experiment, tags=elsewhere).info.run_id
    # Same host name, another pid namespace (a container): its pids are not ours to check.
    container = {**owner_tags(), "titanicml.pid": tags["titanicml.pid"],
                 "titanicml.pid_namespace": "pid:[1]"}  # fmt: skip
    container_run = client.create_run(experiment, tags=container).info.run_id

    first = cli("model", "list", cwd=tmp_path)  # any command that opens the store
    assert first.returncode == 0, first.stderr
    warnings = [line for line in first.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("titanicml: warning: MLflow run(s) ")
    assert killed_run in warnings[0] and live_run not in warnings[0]
    assert "marked FAILED" in warnings[0]

    run = client.get_run(killed_run)
    assert run.info.status == "FAILED"
    reason = run.data.tags["titanicml.error"]
    assert f"pid {training.pid}" in reason and "killed" in reason
    assert run.info.end_time is not None
    assert client.get_run(live_run).info.status == "RUNNING"
    assert client.get_run(remote_run).info.status == "RUNNING"
    assert client.get_run(container_run).info.status == "RUNNING"

    again = cli("model", "list", cwd=tmp_path)
    assert again.returncode == 0 and "warning" not in again.stderr


def test_a_training_run_renews_its_heartbeat_until_it_ends(titanic, store, monkeypatch):
    import titanicml.tracking
    from titanicml import Trainer
    from titanicml.data.resolve import resolve_data
    from titanicml.tracking import TrainingRun

    monkeypatch.setattr(titanicml.tracking, "HEARTBEAT_SECONDS", 0.05)
    spec = Trainer(target="Survived").spec()
    _, data = resolve_data(titanic)
    client = MlflowClient(store)
    with TrainingRun("heartbeat", spec, data, store) as run:
        first = client.get_run(run.run_id).data.tags["titanicml.heartbeat"]
        deadline = time.monotonic() + 30
        while client.get_run(run.run_id).data.tags["titanicml.heartbeat"] == first:
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            time.sleep(0.05)
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert not [t for t in threading.enumerate() if t.name == "titanicml-heartbeat"]
    stale = pd.Timestamp(client.get_run(run.run_id).data.tags["titanicml.heartbeat"])
    assert stale.tzinfo is not None
