"""The production data store on real servers: every answer kept, a SIGKILL loses at most ~1 s.

Servers run on 127.0.0.1 (``online-endpoint serve`` in a subprocess; a local endpoint
with a mirror deployment); the store is read back with pyarrow.dataset.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from servers import free_port, running_server

from titanicml.capture.layout import endpoint_dir
from titanicml.monitor.store import requests_dataset

ROW = {"Pclass": 3, "Sex": "male", "Age": 22.0, "SibSp": 1, "Parch": 0, "Fare": 7.25}
ROWS = [ROW, {"Pclass": 1, "Sex": "female", "Age": 38.0}, {"Pclass": 2, "Sex": "male"}]


def store_rows(endpoint: str, home: Path, columns: list[str] | None = None) -> list[dict]:
    try:
        dataset = requests_dataset(endpoint, home)
    except Exception:
        return []
    return dataset.to_table(columns=columns).to_pylist()


def wait_for_rows(endpoint: str, home: Path, count: int, seconds: float = 15) -> list[dict]:
    """Poll the store until it holds ``count`` rows (the writer flushes once a second)."""
    deadline = time.monotonic() + seconds
    rows = store_rows(endpoint, home)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = store_rows(endpoint, home)
    return rows


def serve_command(model: Path, port: int, name: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "titanicml", "online-endpoint", "serve", "--model", str(model),
        "--port", str(port), "--auth", "none", "--name", name, *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def served(saved_model, session_workspace, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("served") / "server.log"
    env = {**os.environ, "TITANICML_HOME": str(session_workspace)}
    command = serve_command(saved_model, port, "capture-serve")
    with running_server(command, f"http://127.0.0.1:{port}/ready", log, env) as process:
        yield {
            "url": f"http://127.0.0.1:{port}/score",
            "home": session_workspace,
            "process": process,
        }


def test_every_answer_of_concurrent_clients_is_kept_with_its_request_id(served):
    url, home = served["url"], served["home"]
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(timeout=30) as session:
            for number in range(25):
                headers = {"x-request-id": f"w{worker}-{number}"} if number % 2 else {}
                if number % 5 == 0:
                    headers = {"x-ms-client-request-id": f"ms-{worker}-{number}"}
                body = {"dataframe_records": ROWS} if number % 7 == 0 else {"data": [ROW]}
                answer = session.post(url, json=body, headers=headers)
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    json_type = {"content-type": "application/json"}
    refused = httpx.post(
        url,
        content=b'{"data": [{"Pclass": 3, "Nope": 1}]}',
        headers={**json_type, "x-request-id": "bad-1"},
    )
    broken = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    for thread in threads:
        thread.join()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers[:3]]
    assert refused.status_code == 400 and broken.status_code == 400
    expected_rows = sum(len(a.json()["predictions"]) for a in answers) + 2
    rows = wait_for_rows("capture-serve", home, expected_rows)
    assert len(rows) == expected_rows

    by_id: dict[str, list[dict]] = {}
    for row in rows:
        by_id.setdefault(row["request_id"], []).append(row)
    for answer in [*answers, refused, broken]:
        returned = answer.headers["x-request-id"]
        assert answer.headers["x-ms-client-request-id"] == returned
        assert returned in by_id
    ids = {a.headers["x-request-id"] for a in answers}
    assert {"w0-1", "w7-23", "ms-3-10"} <= ids  # the client's ids kept, both spellings
    made = [i for i in ids if not i.startswith(("w", "ms-"))]
    assert len(made) == len(set(made)) > 0  # the others made, one per request
    many = next(v for v in by_id.values() if len(v) == 3)
    assert sorted(r["row"] for r in many) == [0, 1, 2]
    first = next(r for r in many if r["row"] == 1)
    assert first["input_Sex"] == "female" and first["input_Age"] == 38.0
    assert first["status"] == 200 and first["probability_1"] is not None
    assert first["deployment"] == "default" and first["source"] == "online"
    bad = by_id["bad-1"][0]
    assert bad["status"] == 400 and "Nope" in bad["error_message"]
    assert json.loads(bad["raw_request"]) == {"data": [{"Pclass": 3, "Nope": 1}]}
    assert bad["input_Pclass"] is None


def test_a_sigkill_loses_at_most_the_last_second(saved_model, session_workspace, tmp_path):
    port, name = free_port(), "capture-killed"
    env = {**os.environ, "TITANICML_HOME": str(session_workspace)}
    url = f"http://127.0.0.1:{port}/score"
    with running_server(
        serve_command(saved_model, port, name), f"http://127.0.0.1:{port}/ready",
        tmp_path / "server.log", env,
    ) as process:  # fmt: skip
        answered: list[tuple[str, float]] = []
        with httpx.Client(timeout=30) as session:
            started = time.monotonic()
            while time.monotonic() - started < 3.0:
                answer = session.post(url, json={"data": [ROW]})
                assert answer.status_code == 200
                answered.append((answer.headers["x-request-id"], time.monotonic()))
        os.kill(process.pid, signal.SIGKILL)
        killed = time.monotonic()
        process.wait(timeout=10)
    kept = {row["request_id"] for row in store_rows(name, session_workspace, ["request_id"])}
    lost = [(i, t) for i, t in answered if i not in kept]
    assert kept <= {i for i, _ in answered}
    # Everything answered more than a flush interval (plus slack) before the kill is on disk.
    assert all(killed - t < 1.5 for _, t in lost), f"lost {len(lost)} of {len(answered)}"
    assert len(kept) > len(answered) / 2
    visible = list(endpoint_dir(name, session_workspace).glob("deployment=*/hour=*/part-*.parquet"))
    assert visible
    for path in visible:
        pq.read_table(path)  # every visible file is whole


def test_the_store_prunes_hours_with_plain_pyarrow(served):
    answer = httpx.post(served["url"], json={"data": [ROW]}, headers={"x-request-id": "prune"})
    assert answer.status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = [
            r for r in store_rows("capture-serve", served["home"]) if r["request_id"] == "prune"
        ]
        if rows:
            break
        time.sleep(0.2)
    assert rows
    root = served["home"] / "production" / "requests"
    dataset = ds.dataset(root, partitioning="hive")
    hour = rows[0]["hour"]
    kept = dataset.to_table(
        filter=(ds.field("endpoint") == "capture-serve") & (ds.field("hour") == hour),
        columns=["request_id"],
    )
    assert kept.num_rows >= 1
    assert dataset.to_table(filter=ds.field("hour") == "1999-01-01T00").num_rows == 0


ENDPOINT_YML = "name: capture-mirror\nauth_mode: key\n"
DEPLOYMENT_YML = """name: {name}
endpoint_name: capture-mirror
model:
  path: {model}
instance_type: Standard_DS3_v2
instance_count: 1
"""


def test_mirrored_traffic_is_kept_and_marked(saved_model, session_workspace, tmp_path, cli):
    from test_endpoints import clean_up, recorded_pids

    seen: set[tuple[int, str]] = set()
    (tmp_path / "endpoint.yml").write_text(ENDPOINT_YML)
    for name in ("blue", "green"):
        text = DEPLOYMENT_YML.format(name=name, model=saved_model)
        (tmp_path / f"{name}.yml").write_text(text)
    try:
        created = cli("online-endpoint", "create", "-f", tmp_path / "endpoint.yml")
        assert created.returncode == 0, created.stderr
        url = json.loads(created.stdout)["scoring_uri"]
        blue = cli("online-deployment", "create", "-f", tmp_path / "blue.yml", "--all-traffic")
        assert blue.returncode == 0, blue.stderr
        green = cli("online-deployment", "create", "-f", tmp_path / "green.yml",
                    "--sampling-rate", "1", "--retention-days", "30")  # fmt: skip
        assert green.returncode == 0, green.stderr
        seen |= recorded_pids(session_workspace, "capture-mirror")
        update = cli("online-endpoint", "update", "--name", "capture-mirror",
                     "--mirror-traffic", "green=50")  # fmt: skip
        assert update.returncode == 0, update.stderr
        key = json.loads(cli("online-endpoint", "get-credentials", "--name",
                             "capture-mirror").stdout)["primaryKey"]  # fmt: skip
        auth = {"Authorization": f"Bearer {key}"}
        ids = []
        for number in range(40):
            headers = {**auth, "x-ms-client-request-id": f"m-{number}"} if number < 5 else auth
            answer = httpx.post(url, json={"data": [ROW]}, headers=headers, timeout=30)
            assert (
                answer.status_code == 200 and answer.headers["azureml-model-deployment"] == "blue"
            )
            ids.append(answer.headers["x-request-id"])
        assert ids[:5] == [f"m-{n}" for n in range(5)]
        # green's own request log counts the copies it answered; the store must hold each.
        green_log = (session_workspace / "endpoints" / "capture-mirror" / "deployments"
                     / "green" / "requests-0.jsonl")  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            copies = len(green_log.read_text().splitlines()) if green_log.exists() else 0
            rows = store_rows("capture-mirror", session_workspace)
            if copies and len(rows) == 40 + copies:
                break
            time.sleep(0.2)
        assert 0 < copies < 40 and len(rows) == 40 + copies
        live = {r["request_id"] for r in rows if r["deployment"] == "blue" and not r["mirror"]}
        mirrored = {r["request_id"] for r in rows if r["deployment"] == "green" and r["mirror"]}
        assert live == set(ids) and len(mirrored) == copies and mirrored <= live
        assert all(r["mirror"] for r in rows if r["deployment"] == "green")
        status = cli("monitor", "status", "--endpoint", "capture-mirror", "--json")
        deployments = json.loads(status.stdout)["deployments"]
        assert deployments["green"]["retention_days"] == 30
        assert deployments["blue"]["retention_days"] is None
    finally:
        clean_up(session_workspace, "capture-mirror", seen)
    assert store_rows("capture-mirror", session_workspace)  # deleting the endpoint keeps its data


def test_a_batch_job_keeps_every_row(saved_model, titanic, session_workspace, tmp_path, cli):
    data = titanic.drop(columns=["Survived"]).head(300)
    data.to_csv(tmp_path / "in.csv", index=False)
    out = cli(
        "batch-endpoint", "invoke", "--model", saved_model, "--input", tmp_path / "in.csv",
        "--output", tmp_path / "out.csv", "--name", "capture-batch", "--chunk-size", "128",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = store_rows("capture-batch", session_workspace)
    assert len(rows) == 300
    assert {r["source"] for r in rows} == {"batch"} and len({r["request_id"] for r in rows}) == 1
    assert sorted(r["row"] for r in rows) == list(range(300))
    import pandas as pd

    written = pd.read_csv(tmp_path / "out.csv")
    stored = sorted(rows, key=lambda r: r["row"])
    assert [r["prediction"] for r in stored] == written["prediction"].tolist()
    assert [r["input_Age"] for r in stored[:5]] == [
        None if pd.isna(v) else v for v in data["Age"].head(5)
    ]
