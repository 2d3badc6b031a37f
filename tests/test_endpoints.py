"""Local endpoints and deployments as Azure ML manages them: real processes, real HTTP, keys.

The endpoint and its deployments are made from the hands-on's own files
(examples/handson/src/endpoints/), with the CLI; requests go through the router on
127.0.0.1 with the endpoint's key. Every process started is stopped by the fixtures'
finalizers, whatever happens.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import FAST_BUDGET

from titanicml._utils.processes import is_running

HANDS_ON_FILES = Path(__file__).parents[1] / "examples" / "handson" / "src" / "endpoints"
HANDS_ON = {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}
ENDPOINT = "titanic-endpoint"
COLUMNS = ["Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process (for module fixtures, which cannot use ``cli``)."""
    from titanicml.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def must(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, f"titanicml {' '.join(args)} exited {code}: {err}"
    return out


def recorded_pids(home: Path, endpoint: str) -> set[tuple[int, str]]:
    """Every process the endpoint's records name (router and instances)."""
    folder = home / "endpoints" / endpoint
    pids = set()
    record = folder / "endpoint.json"
    if record.is_file():
        stored = json.loads(record.read_text())
        pids.add((stored["router_pid"], stored["router_start"]))
    for path in folder.glob("deployments/*.json"):
        for instance in json.loads(path.read_text())["instances"]:
            pids.add((instance["pid"], instance["start"]))
    return pids


def clean_up(home: Path, endpoint: str, seen: set[tuple[int, str]]) -> None:
    """Delete the endpoint; kill whatever it left (a failed test must leave nothing running)."""
    seen |= recorded_pids(home, endpoint)
    with contextlib.suppress(Exception):
        run("online-endpoint", "delete", "--name", endpoint, "--workspace", str(home))
    for pid, start in seen:
        if pid > 0 and is_running(pid, start):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.fixture(scope="module")
def registered(titanic, tmp_path_factory):
    """A small titanicml model, registered as titanic-model version 1 in a store of its own."""
    from titanicml import Trainer
    from titanicml.registry import register_model

    folder = tmp_path_factory.mktemp("registered")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    result = Trainer(
        target="Survived",
        time_budget=FAST_BUDGET,
        estimators=["lgbm"],
        track=False,
        ensemble=False,
    ).fit(titanic[COLUMNS])
    result.save(folder / "model")
    register_model("titanic-model", path=folder / "model", tracking_uri=store)
    return {"store": store, "result": result}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The hands-on's endpoint.yml and deployment.yml, as they are."""
    folder = tmp_path_factory.mktemp("endpoints")
    for name in ("endpoint.yml", "deployment.yml"):
        shutil.copy(HANDS_ON_FILES / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def endpoint(registered, files, session_workspace, request):
    """titanic-endpoint with blue (all traffic) and green (none), each one instance."""
    home = session_workspace
    seen: set[tuple[int, str]] = set()
    request.addfinalizer(lambda: clean_up(home, ENDPOINT, seen))
    store = registered["store"]
    shown = json.loads(must("online-endpoint", "create", "-f", files / "endpoint.yml"))
    must(
        "online-deployment", "create", "-f", files / "deployment.yml",
        "--all-traffic", "--overwrite", "--tracking-uri", store,
    )  # fmt: skip
    must(
        "online-deployment", "create", "-f", files / "deployment.yml", "--name", "green",
        "--tracking-uri", store,
    )  # fmt: skip
    seen |= recorded_pids(home, ENDPOINT)
    keys = json.loads(must("online-endpoint", "get-credentials", "--name", ENDPOINT))
    client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {keys['primaryKey']}"})
    request.addfinalizer(client.close)
    return {
        "url": shown["scoring_uri"],
        "home": home,
        "client": client,
        "key": keys["primaryKey"],
        "files": files,
        "store": store,
        "expected": registered["result"].predict(HANDS_ON["data"]).tolist(),
        "seen": seen,
    }


def served_by(endpoint, count: int, headers: dict | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(count):
        answer = endpoint["client"].post(endpoint["url"], json=HANDS_ON, headers=headers)
        assert answer.status_code == 200, answer.text
        name = answer.headers["azureml-model-deployment"]
        counts[name] = counts.get(name, 0) + 1
    return counts


def within_binomial(hits: int, trials: int, share: float) -> bool:
    """Whether ``hits`` is within 4.5 standard deviations of ``trials * share``."""
    return abs(hits - trials * share) <= 4.5 * math.sqrt(trials * share * (1 - share))


def test_the_hands_on_curl_through_the_endpoint(endpoint, cli):
    shown = json.loads(cli("online-endpoint", "show", "--name", ENDPOINT).stdout)
    assert shown["provisioning_state"] == "Succeeded"
    assert shown["traffic"] == {"blue": 100} and shown["scoring_uri"] == endpoint["url"]
    answer = endpoint["client"].post(endpoint["url"], json=HANDS_ON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == endpoint["expected"]
    assert answer.json()["model"] == {"name": "titanic-model", "version": "1"}
    assert answer.headers["azureml-model-deployment"] == "blue"


def test_a_request_without_the_key_gets_401(endpoint):
    answer = httpx.post(endpoint["url"], json=HANDS_ON)
    assert answer.status_code == 401
    assert "get-credentials" in answer.json()["error"]["message"]
    wrong = httpx.post(endpoint["url"], json=HANDS_ON, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_invoke_calls_the_endpoint_by_name(endpoint, cli, tmp_path):
    (tmp_path / "sample.json").write_text(json.dumps(HANDS_ON))
    out = cli(
        "online-endpoint", "invoke", "--name", ENDPOINT, "--request-file", tmp_path / "sample.json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["predictions"] == endpoint["expected"]
    assert "answered by deployment blue" in out.stderr
    pinned = cli(
        "online-endpoint", "invoke", "--name", ENDPOINT, "--request-file",
        tmp_path / "sample.json", "--deployment-name", "green",
    )  # fmt: skip
    assert pinned.returncode == 0 and "answered by deployment green" in pinned.stderr


def test_list_and_show_describe_endpoint_and_deployments(endpoint, cli):
    listed = json.loads(cli("online-endpoint", "list").stdout)
    assert ENDPOINT in [e["name"] for e in listed]
    deployments = json.loads(cli("online-deployment", "list", "--endpoint-name", ENDPOINT).stdout)
    assert [d["name"] for d in deployments] == ["blue", "green"]
    blue = json.loads(cli("online-deployment", "show", "--name", "blue", "-e", ENDPOINT).stdout)
    assert blue["model"] == "azureml:titanic-model@latest"
    assert blue["model_version"] == "titanic-model:1"
    assert blue["provisioning_state"] == "Succeeded"
    assert [i["state"] for i in blue["instances"]] == ["Running"]
    assert blue["request_settings"]["request_timeout_ms"] == 5000  # Azure's default


def test_the_header_pins_a_deployment(endpoint):
    assert served_by(endpoint, 20, {"azureml-model-deployment": "green"}) == {"green": 20}
    unknown = endpoint["client"].post(
        endpoint["url"], json=HANDS_ON, headers={"azureml-model-deployment": "purple"}
    )
    assert unknown.status_code == 404 and "online-deployment list" in unknown.text


def test_traffic_is_split_by_the_weights(endpoint, cli):
    out = cli("online-endpoint", "update", "--name", ENDPOINT, "--traffic", "blue=70 green=30")
    assert out.returncode == 0, out.stderr
    try:
        assert json.loads(out.stdout)["traffic"] == {"blue": 70, "green": 30}
        trials = 300
        counts = served_by(endpoint, trials)
        assert set(counts) == {"blue", "green"}
        assert within_binomial(counts["green"], trials, 0.3), counts
    finally:
        cli("online-endpoint", "update", "--name", ENDPOINT, "--traffic", "blue=100")
    assert served_by(endpoint, 20) == {"blue": 20}


def _log_entries(cli) -> list[dict]:
    out = cli("online-endpoint", "get-logs", "--name", ENDPOINT, "--lines", "100000")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_mirror_traffic_copies_requests_and_logs_both(endpoint, cli):
    out = cli("online-endpoint", "update", "--name", ENDPOINT, "--mirror-traffic", "green=50")
    assert out.returncode == 0, out.stderr
    trials = 200
    try:
        ids = []
        for _ in range(trials):
            answer = endpoint["client"].post(endpoint["url"], json=HANDS_ON)
            assert answer.headers["azureml-model-deployment"] == "blue"  # live answers only
            ids.append(answer.json()["request_id"])
    finally:
        cli("online-endpoint", "update", "--name", ENDPOINT, "--mirror-traffic", "")
    sent = set(ids)
    deadline = time.monotonic() + 10
    while True:  # the logs are written by a background thread of each instance
        entries = [e for e in _log_entries(cli) if e.get("request_id") in sent]
        live = [e for e in entries if e["deployment"] == "blue" and not e.get("mirror")]
        if len(live) == trials or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    copies = [e for e in entries if e.get("mirror")]
    assert len(live) == trials
    assert {e["deployment"] for e in copies} == {"green"}
    assert within_binomial(len(copies), trials, 0.5), len(copies)
    assert all(e["status"] == 200 and e["inputs"] == HANDS_ON["data"] for e in copies)


def test_get_logs_shows_a_deployments_console(endpoint, cli):
    out = cli("online-deployment", "get-logs", "--name", "blue", "--endpoint-name", ENDPOINT)
    assert out.returncode == 0, out.stderr
    assert "serving titanic-model:1" in out.stdout


def test_a_crashed_deployment_is_reported_and_restarted(endpoint, cli):
    show = ("online-deployment", "show", "--name", "green", "--endpoint-name", ENDPOINT)
    before = json.loads(cli(*show).stdout)["instances"][0]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(before["pid"]):
        assert time.monotonic() < deadline
        with contextlib.suppress(ChildProcessError):
            os.waitpid(before["pid"], os.WNOHANG)
        time.sleep(0.05)
    crashed = json.loads(cli(*show).stdout)
    assert crashed["provisioning_state"] == "Failed"
    assert crashed["instances"][0]["state"] == "Crashed"
    assert "online-deployment update --name green" in crashed["error"]
    answer = endpoint["client"].post(
        endpoint["url"], json=HANDS_ON, headers={"azureml-model-deployment": "green"}
    )
    assert answer.status_code == 502 and "does not answer" in answer.text
    out = cli("online-deployment", "update", "--name", "green", "--endpoint-name", ENDPOINT)
    assert out.returncode == 0, out.stderr
    restarted = json.loads(cli(*show).stdout)
    endpoint["seen"].update((i["pid"], "") for i in restarted["instances"])
    assert restarted["provisioning_state"] == "Succeeded"
    assert restarted["instances"][0]["pid"] != before["pid"]
    assert served_by(endpoint, 5, {"azureml-model-deployment": "green"}) == {"green": 5}


class Load:
    """Clients sending requests through the endpoint until stopped; every answer kept."""

    def __init__(self, endpoint, clients: int = 6) -> None:
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self.served: dict[str, int] = {}
        self.threads = [threading.Thread(target=self.work) for _ in range(clients)]

    def work(self) -> None:
        headers = {"Authorization": f"Bearer {self.endpoint['key']}"}
        with httpx.Client(timeout=30, headers=headers) as client:
            while not self.stop.is_set():
                try:
                    answer = client.post(self.endpoint["url"], json=HANDS_ON)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.statuses.append(answer.status_code)
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                name = answer.headers.get("azureml-model-deployment", "?")
                self.served[name] = self.served.get(name, 0) + 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.3)  # requests keep coming after the last change
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_no_request_fails_while_traffic_changes_and_a_deployment_is_replaced(endpoint, cli):
    show = ("online-deployment", "show", "--name", "blue", "--endpoint-name", ENDPOINT)
    old = json.loads(cli(*show).stdout)["instances"][0]["pid"]
    with Load(endpoint) as load:
        for traffic in ("blue=50 green=50", "blue=10 green=90", "blue=100"):
            out = cli("online-endpoint", "update", "--name", ENDPOINT, "--traffic", traffic)
            assert out.returncode == 0, out.stderr
            time.sleep(0.2)
        out = cli(
            "online-deployment", "create", "-f", endpoint["files"] / "deployment.yml",
            "--overwrite", "--all-traffic", "--tracking-uri", endpoint["store"],
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    new = json.loads(cli(*show).stdout)["instances"][0]["pid"]
    endpoint["seen"].add((new, ""))
    assert load.failures == [] and set(load.statuses) == {200}
    assert len(load.statuses) > 100 and set(load.served) == {"blue", "green"}
    assert new != old and not is_running(old)


@pytest.fixture
def second(registered, files, session_workspace, request):
    name = "second-endpoint"
    seen: set[tuple[int, str]] = set()
    request.addfinalizer(lambda: clean_up(session_workspace, name, seen))
    return {"name": name, "home": session_workspace, "seen": seen}


def test_delete_leaves_no_process_behind(second, files, registered, cli, tmp_path):
    name, home = second["name"], second["home"]
    deployment = tmp_path / "deployment.yml"
    text = (files / "deployment.yml").read_text().replace("instance_count: 1", "instance_count: 2")
    deployment.write_text(text)
    assert (
        cli("online-endpoint", "create", "-f", files / "endpoint.yml", "--name", name).returncode
        == 0
    )
    out = cli(
        "online-deployment", "create", "-f", deployment, "--endpoint-name", name,
        "--all-traffic", "--tracking-uri", registered["store"],
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pids = recorded_pids(home, name)
    second["seen"].update(pids)
    assert len(pids) == 3  # the router and instance_count instances
    assert all(is_running(pid, start) for pid, start in pids)
    out = cli("online-endpoint", "delete", "--name", name)
    assert out.returncode == 0, out.stderr
    assert not any(is_running(pid, start) for pid, start in pids)
    assert not (home / "endpoints" / name).exists()
    gone = cli("online-endpoint", "show", "--name", name)
    assert gone.returncode == 2 and "online-endpoint create" in gone.stderr


# Bad input: exit 2, one line that names the fix -------------------------------------


def _fails(out, *needles: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_an_unknown_endpoint_says_how_to_create_it(cli, files):
    _fails(
        cli("online-endpoint", "show", "--name", "no-such-endpoint"), "online-endpoint create -f"
    )
    _fails(
        cli(
            "online-deployment", "create", "-f", files / "deployment.yml", "-e", "no-such-endpoint"
        ),
        "no local endpoint 'no-such-endpoint'",
    )


def test_traffic_must_add_up_and_name_known_deployments(endpoint, cli):
    update = ("online-endpoint", "update", "--name", ENDPOINT)
    _fails(cli(*update, "--traffic", "blue=90 green=20"), "add up to 100", "adds up to 110")
    _fails(cli(*update, "--traffic", "blue=90 purple=10"), "purple", "online-deployment create")
    _fails(cli(*update, "--traffic", "blue:100"), "DEPLOYMENT=PERCENT")
    _fails(cli(*update, "--mirror-traffic", "blue=10"), "cannot also take mirror traffic")
    _fails(cli("online-deployment", "delete", "--name", "blue", "-e", ENDPOINT), "move it first")
    _fails(
        cli("online-deployment", "create", "-f", endpoint["files"] / "deployment.yml"),
        "--overwrite",
    )
    assert json.loads(cli("online-endpoint", "show").stdout)["traffic"] == {"blue": 100}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("instance_count: 1", "instance_count: many"), "Not a valid integer"),
        (("name: blue", "name: blue\n  bad indent: [1"), "not a valid Azure ML online deployment"),
        (
            ("model: azureml:titanic-model@latest", "model: azureml:no-such-model@latest"),
            "no-such-model",
        ),
    ],
    ids=["wrong type", "broken YAML", "unknown model"],
)
def test_a_bad_deployment_file_is_one_line(endpoint, cli, tmp_path, change, needle):
    text = (endpoint["files"] / "deployment.yml").read_text()
    assert change[0] in text
    (tmp_path / "deployment.yml").write_text(text.replace(*change))
    out = cli(
        "online-deployment", "create", "-f", tmp_path / "deployment.yml", "--name", "purple",
        "--tracking-uri", endpoint["store"],
    )  # fmt: skip
    _fails(out, needle)


def test_an_endpoint_file_with_token_auth_is_refused(cli, files, tmp_path):
    text = (files / "endpoint.yml").read_text().replace("auth_mode: key", "auth_mode: aml_token")
    (tmp_path / "endpoint.yml").write_text(text)
    _fails(cli("online-endpoint", "create", "-f", tmp_path / "endpoint.yml"), "auth_mode: key")
    _fails(cli("online-endpoint", "create", "-f", tmp_path / "missing.yml"), "-f")


def test_every_verb_and_option_has_help():
    import argparse

    from titanicml.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for group in ("online-endpoint", "online-deployment"):
        verbs_action = next(
            a for a in commands.choices[group]._actions if isinstance(a, argparse._SubParsersAction)
        )
        helped = {choice.dest for choice in verbs_action._choices_actions if choice.help}
        assert helped == set(verbs_action.choices), group
        for verb, sub in verbs_action.choices.items():
            for action in sub._actions:
                if action.option_strings and action.dest != "help":
                    assert action.help, f"{group} {verb} {action.option_strings[0]} has no help"


# The same files on Azure ML ----------------------------------------------------------


def test_the_same_files_validate_for_azure(cli, files):
    out = cli(
        "online-endpoint", "create", "-f", files / "endpoint.yml", "--target", "azure", "--dry-run"
    )
    assert out.returncode == 0, out.stderr
    assert "valid Azure ML online endpoint titanic-endpoint" in out.stdout
    out = cli(
        "online-deployment", "create", "-f", files / "deployment.yml", "--all-traffic",
        "--target", "azure", "--dry-run",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "valid Azure ML online deployment blue" in out.stdout


def test_a_deployment_file_goes_to_azure_with_all_traffic(files):
    from titanicml.deploy.azure import create_online_deployment_from_file

    calls = []

    class Poller:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    class Endpoints:
        def get(self, name):
            calls.append(("get", name))
            return type("Endpoint", (), {"name": name, "traffic": {}})()

        def begin_create_or_update(self, entity):
            calls.append(("endpoint", entity.name, dict(entity.traffic)))
            return Poller(entity)

    class Deployments:
        def begin_create_or_update(self, entity):
            calls.append(("deployment", entity.name, entity.endpoint_name, entity.model))
            return Poller(entity)

    client = type(
        "Client", (), {"online_endpoints": Endpoints(), "online_deployments": Deployments()}
    )
    create_online_deployment_from_file(files / "deployment.yml", all_traffic=True, client=client)
    assert calls == [
        ("deployment", "blue", "titanic-endpoint", "titanic-model@latest"),
        ("get", "titanic-endpoint"),
        ("endpoint", "titanic-endpoint", {"blue": 100}),
    ]


def test_an_instance_names_its_deployment_and_bounds_concurrent_requests():
    """max_concurrent_requests_per_instance: past it a 429, as Azure ML answers."""
    import asyncio

    from titanicml.deploy.local.instance import DeploymentMiddleware

    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = DeploymentMiddleware(slow_app, "green", max_concurrent=1)

    async def call() -> list[dict]:
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "path": "/score", "headers": []}
        await app(scope, None, send)
        return sent

    async def main():
        first = asyncio.create_task(call())
        await asyncio.sleep(0.01)
        second = await call()  # the first still holds the one slot
        release.set()
        return await first, second

    first, second = asyncio.run(main())
    assert first[0]["status"] == 200
    assert (b"azureml-model-deployment", b"green") in first[0]["headers"]
    assert second[0]["status"] == 429
    assert b"max_concurrent_requests_per_instance" in second[1]["body"]
