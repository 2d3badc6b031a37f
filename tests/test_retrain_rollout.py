"""A canary that fails sends the traffic back: real router and instance processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest
from conftest import FAST_BUDGET
from test_endpoints import clean_up, must, recorded_pids

from titanicml.exceptions import EndpointError

ENDPOINT = "canary-endpoint"
MODEL = "canary-model"
COLUMNS = ["Survived", "Pclass", "Sex", "Age", "Fare"]


@pytest.fixture
def endpoint(titanic, tmp_path, session_workspace, request):
    """blue serves canary-model:1 with all the traffic; version 2 is the same model."""
    from titanicml import Trainer
    from titanicml.registry import register_model

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = Trainer(
        target="Survived", time_budget=FAST_BUDGET, estimators=["lgbm"], ensemble=False,
        max_trials=2, track=False,
    ).fit(titanic[COLUMNS])  # fmt: skip
    result.save(tmp_path / "model")
    for _ in range(2):
        register_model(MODEL, path=tmp_path / "model", tracking_uri=store)
    (tmp_path / "endpoint.yml").write_text(f"name: {ENDPOINT}\nauth_mode: key\n")
    (tmp_path / "deployment.yml").write_text(
        f"name: blue\nendpoint_name: {ENDPOINT}\nmodel: azureml:{MODEL}:1\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 1\n"
    )
    seen: set = set()
    request.addfinalizer(lambda: clean_up(session_workspace, ENDPOINT, seen))
    must("online-endpoint", "create", "-f", str(tmp_path / "endpoint.yml"))
    must(
        "online-deployment", "create", "-f", str(tmp_path / "deployment.yml"), "--all-traffic",
        "--tracking-uri", store,
    )  # fmt: skip
    seen |= recorded_pids(session_workspace, ENDPOINT)
    return {"store": store, "home": session_workspace, "seen": seen}


def kill_the_canary(home, stop: threading.Event, killed: list[int]) -> None:
    """Once green takes traffic, kill its instance (as a crash would)."""
    folder = home / "endpoints" / ENDPOINT
    while not stop.is_set():
        traffic = json.loads((folder / "endpoint.json").read_text()).get("traffic", {})
        record = folder / "deployments" / "green.json"
        if traffic.get("green") and record.is_file():
            pid = json.loads(record.read_text())["instances"][0]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def test_a_crashed_canary_sends_the_traffic_back_and_is_removed(endpoint, cli):
    from titanicml.retrain.rollout import roll_out

    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_the_canary, args=(endpoint["home"], stop, killed))
    killer.start()
    steps: list[str] = []
    try:
        with pytest.raises(
            EndpointError, match=r"canary deployment green \(canary-model:2\) failed"
        ) as error:
            roll_out(
                ENDPOINT, MODEL, 2, canary=10, canary_seconds=20,
                tracking_uri=endpoint["store"], on_step=steps.append,
            )  # fmt: skip
    finally:
        stop.set()
        killer.join(10)
        endpoint["seen"] |= {(pid, "") for pid in killed}
    assert killed, "the canary never took traffic"
    assert "the traffic is back on blue and green was removed" in str(error.value)
    assert any(s.startswith("canary: green takes 10 %") for s in steps)
    shown = json.loads(cli("online-endpoint", "show", "--name", ENDPOINT).stdout)
    assert shown["traffic"] == {"blue": 100}
    listed = json.loads(cli("online-deployment", "list", "-e", ENDPOINT).stdout)
    assert [d["name"] for d in listed] == ["blue"]
    keys = json.loads(cli("online-endpoint", "get-credentials", "--name", ENDPOINT).stdout)
    answer = httpx.post(
        shown["scoring_uri"],
        json={"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]},
        headers={"Authorization": f"Bearer {keys['primaryKey']}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"
