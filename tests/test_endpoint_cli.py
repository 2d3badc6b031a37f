"""The online endpoint as a user runs it: the CLI starts uvicorn on 127.0.0.1, curl-like calls."""

import concurrent.futures
import json
import os
import sys
import time
import urllib.request

import httpx
import pytest
from servers import free_port, running_server

from titanicml.serve.auth import read_keys

KEY = "test-key-" + "k" * 30
HANDS_ON = {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}


@pytest.fixture(scope="module")
def endpoint(saved_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # Keys made before: starting with a key (TITANICML_ENDPOINT_KEY) replaces them.
    generated = read_keys("titanic-endpoint", home)
    port = free_port()
    env = {**os.environ, "TITANICML_HOME": str(home), "TITANICML_ENDPOINT_KEY": KEY}
    signer = json.loads((saved_model / "MANIFEST.json").read_text()).get("public_key")
    if signer:  # a signed model: trust the key of the workspace that saved it
        env["TITANICML_TRUSTED_KEYS"] = signer
    command = [
        sys.executable, "-m", "titanicml", "online-endpoint", "serve", "--model", str(saved_model),
        "--port", str(port), "--name", "titanic-endpoint",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_server(command, f"{url}/ready", home / "server.log", env):
        yield {"url": url, "home": home, "generated": generated}


def test_the_hands_on_curl(endpoint, titanic_result):
    request = urllib.request.Request(
        f"{endpoint['url']}/score",
        data=json.dumps(HANDS_ON).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    assert body["predictions"] == titanic_result.predict(HANDS_ON["data"]).tolist()
    assert body["model"]["name"] == "titanic-model"


def _status(url: str, key: str) -> int:
    response = httpx.post(f"{url}/score", json=HANDS_ON, headers={"Authorization": f"Bearer {key}"})
    return response.status_code


def test_get_credentials_prints_the_keys_that_work_and_invoke_uses_them(
    endpoint, titanic_result, tmp_path, cli
):
    env = {"TITANICML_HOME": str(endpoint["home"])}
    keys = json.loads(cli("online-endpoint", "get-credentials", env=env).stdout)
    # The server was started with one key: that is the endpoint's key set.
    assert keys == {"primaryKey": KEY, "secondaryKey": None}
    assert _status(endpoint["url"], keys["primaryKey"]) == 200
    primary = cli("online-endpoint", "get-credentials", "--query", "primaryKey", env=env)
    assert primary.stdout.strip() == KEY
    (tmp_path / "sample.json").write_text(json.dumps(HANDS_ON))
    out = cli(
        "online-endpoint",
        "invoke",
        "--request-file",
        str(tmp_path / "sample.json"),
        "--url",
        f"{endpoint['url']}/score",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert (
        json.loads(out.stdout)["predictions"] == titanic_result.predict(HANDS_ON["data"]).tolist()
    )


def test_keys_made_before_the_key_option_no_longer_work(endpoint):
    generated = endpoint["generated"]
    for old in (generated.primary, generated.secondary):
        assert _status(endpoint["url"], old) == 401
    assert _status(endpoint["url"], KEY) == 200


def test_a_key_regenerated_while_serving_takes_effect(endpoint, cli):
    env = {"TITANICML_HOME": str(endpoint["home"])}
    out = cli(
        "online-endpoint", "regenerate-keys", "--key-type", "secondary", env=env
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    keys = json.loads(cli("online-endpoint", "get-credentials", env=env).stdout)
    assert keys["primaryKey"] == KEY and keys["secondaryKey"]
    # The endpoint looks at its keys file once a second.
    deadline = time.monotonic() + 10
    while _status(endpoint["url"], keys["secondaryKey"]) != 200:
        assert time.monotonic() < deadline, "the regenerated key was not taken"
        time.sleep(0.1)
    assert _status(endpoint["url"], KEY) == 200


def test_invoke_reports_a_4xx_as_one_line_and_exit_2(endpoint, tmp_path, cli):
    (tmp_path / "bad.json").write_text('{"data": [{"Agee": 1}]}')
    out = cli(
        "online-endpoint",
        "invoke",
        "--request-file",
        str(tmp_path / "bad.json"),
        "--url",
        f"{endpoint['url']}/score",
        "--key",
        KEY,
    )
    assert out.returncode == 2
    assert "unknown column(s) 'Agee'" in out.stderr and "Traceback" not in out.stderr


def test_invoke_without_a_server_is_a_clear_error(tmp_path, cli):
    (tmp_path / "s.json").write_text(json.dumps(HANDS_ON))
    out = cli(
        "online-endpoint",
        "invoke",
        "--request-file",
        str(tmp_path / "s.json"),
        "--url",
        f"http://127.0.0.1:{free_port()}/score",
        "--key",
        KEY,
    )
    assert out.returncode == 2
    assert "no endpoint answers" in out.stderr and "Traceback" not in out.stderr


def test_serve_with_a_missing_model_exits_2(tmp_path, cli):
    out = cli(
        "online-endpoint",
        "serve",
        "--model",
        "no-such-model@champion",
        "--tracking-uri",
        f"sqlite:///{tmp_path}/m.db",
        env={"TITANICML_HOME": str(tmp_path)},
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no MLflow store" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(saved_model, cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cli("online-endpoint", "serve", "--model", saved_model, "--port", str(port))
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line
    assert "Serving" not in out.stderr and "Errno" not in out.stderr


def test_ten_thousand_requests_without_an_error(endpoint, titanic, titanic_result):
    rows = json.loads(titanic.drop(columns=["Survived"]).head(50).to_json(orient="records"))
    expected = titanic_result.predict(titanic.head(50)).tolist()
    headers = {"Authorization": f"Bearer {KEY}"}

    def worker(offset: int) -> list[tuple[int, int, int]]:
        results = []
        with httpx.Client(base_url=endpoint["url"], headers=headers, timeout=30) as client:
            for number in range(offset, 10_000, 8):
                index = number % len(rows)
                response = client.post("/score", json={"data": [rows[index]]})
                results.append((response.status_code, index, response.json()["predictions"][0]))
        return results

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [r for chunk in pool.map(worker, range(8)) for r in chunk]
    assert len(results) == 10_000
    assert {status for status, _, _ in results} == {200}
    assert all(prediction == expected[index] for _, index, prediction in results)


def test_serve_without_the_serve_extra_says_what_to_install(cli, monkeypatch):
    """`pip install .` alone lacks httptools: one line naming the extra, before any model."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "httptools" else real(name, *a),
    )
    out = cli("online-endpoint", "serve", "--model", "no-such-model@champion")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "titanicml: error: the online endpoint needs httptools, which is not installed; "
        'run: pip install "titanicml[serve]"'
    )


def test_the_endpoint_trusts_the_keys_of_its_own_workspace(saved_model, tmp_path):
    """`serve --workspace W` loads only models W trusts, whatever TITANICML_HOME says."""
    from titanicml.exceptions import UntrustedModelError
    from titanicml.serve.server import endpoint_config

    with pytest.raises(UntrustedModelError, match="trust-key"):
        endpoint_config(str(saved_model), auth="none", workspace=tmp_path / "stranger")
    config = endpoint_config(str(saved_model), auth="none", request_log=tmp_path / "r.jsonl")
    try:
        assert config.model.labels == [0, 1]  # signed by the session's own workspace
    finally:
        config.request_log.close()
