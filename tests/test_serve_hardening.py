"""The endpoint stays up for everyone: idle and slow clients, hostile JSON, clients that leave.

In-process tests (TestClient) cover what the app decides; the connection guards live
in the HTTP protocol, so they are tested on a real ``titanicml online-endpoint serve``
on 127.0.0.1, with small limits (a low ``ulimit -n``, timeouts of 2 s).
"""

import collections
import json
import os
import socket
import stat
import sys
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import free_port, running_server

from titanicml.exceptions import ConfigError
from titanicml.serve.app import EndpointConfig, create_app
from titanicml.serve.auth import EndpointKeys, authorized, load_keys, read_keys
from titanicml.serve.limits import ServerLimits, connection_cap
from titanicml.serve.requestlog import RequestLog

KEY = "hardening-key-" + "h" * 24
AUTH = {"Authorization": f"Bearer {KEY}"}
ROW = '{"Age": 22, "Pclass": 3, "Sex": "male"}'
TIMEOUT = 2  # the subprocess servers' header, body and keep-alive timeouts (s)


def _strict(line: str) -> dict:
    """Parse a line as strict JSON (no NaN, Infinity)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def _batch(cell: str, rows: int, column: str = "Age") -> str:
    """A ``data`` body of ``rows`` rows, the last one holding ``cell`` (raw JSON text)."""
    return '{"data": [' + ", ".join([ROW] * (rows - 1) + [f'{{"{column}": {cell}}}']) + "]}"


@pytest.fixture(scope="module")
def app_log(tmp_path_factory):
    return tmp_path_factory.mktemp("hardening") / "requests.jsonl"


@pytest.fixture(scope="module")
def client(titanic_result, app_log):
    config = EndpointConfig(
        model=titanic_result.model,
        model_name="titanic-model",
        model_version="1",
        keys=EndpointKeys(KEY),
        request_log=RequestLog(app_log),
    )
    with TestClient(create_app(config)) as test_client:
        yield test_client


# Hostile JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (_batch("[" * 900 + "]" * 900, 1), "holds a list"),
        (_batch('{"a": ' * 400 + "1" + "}" * 400, 1, "Sex"), "holds an object"),
        (_batch("1e400", 1), "must be a finite number"),
        (_batch("1e400", 300), "must be a finite number"),
        (_batch("-Infinity", 1, "Fare"), "must be a finite number"),
        (_batch("Infinity", 300, "Fare"), "must be a finite number"),
        (_batch("1" * 400, 1), "must be a finite number"),
        (_batch("1" * 400, 300), "must be a finite number"),
        (_batch("1" * 5_000, 1), "more than 4300 digits"),
        (_batch("1" * 5_000, 300), "more than 4300 digits"),
        (_batch('"1e400"', 1), "must be a finite number"),
        (_batch('"nan"', 1), "must be a number, got 'nan'"),
        (_batch('"nan"', 300), "must be a number, got 'nan'"),
    ],
    ids=[
        "nested-100000",
        "list-cell-900-deep",
        "object-cell-in-a-text-column",
        "1e400-one-row",
        "1e400-in-300-rows",
        "-Infinity-one-row",
        "Infinity-in-300-rows",
        "int-400-digits-one-row",
        "int-400-digits-in-300-rows",
        "int-5000-digits-one-row",
        "int-5000-digits-in-300-rows",
        "text-1e400",
        "text-nan-one-row",
        "text-nan-in-300-rows",
    ],
)
def test_hostile_json_gets_a_400_that_names_the_problem(client, body, message):
    response = client.post("/score", content=body, headers=AUTH)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


def test_a_csv_field_over_the_csv_limit_gets_a_400(client):
    body = "Age,Name\n22," + "x" * 200_000 + "\n"
    response = client.post("/score", content=body, headers={**AUTH, "content-type": "text/csv"})
    assert response.status_code == 400, response.text
    assert "malformed CSV" in response.json()["error"]["message"]


@pytest.mark.parametrize("cell", ["NaN", "null", "Infinity", "1e400", "1" * 400, '"inf"'])
def test_the_fast_path_and_the_pandas_path_treat_a_cell_alike(client, cell):
    """One row goes through the row scorer, 300 rows through pandas: same status, same row."""
    one = client.post("/score", content=_batch(cell, 1), headers=AUTH)
    many = client.post("/score", content=_batch(cell, 300), headers=AUTH)
    assert one.status_code == many.status_code, (one.text, many.text[-300:])
    if one.status_code == 200:
        assert one.json()["predictions"] == many.json()["predictions"][-1:]
        assert one.json()["probabilities"][0] == pytest.approx(many.json()["probabilities"][-1])
    else:
        assert one.json()["error"]["message"] == many.json()["error"]["message"]


def test_nan_is_imputed_like_a_missing_value(client):
    nan = client.post("/score", content=_batch("NaN", 1), headers=AUTH).json()
    null = client.post("/score", content=_batch("null", 1), headers=AUTH).json()
    assert nan["probabilities"] == null["probabilities"]


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True)
    .map(repr)
    .map(lambda text: {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(text, text)),
    st.sampled_from(["1e400", "-1e400", "1e-400", "null", "true", '"nan"', '"inf"', '"12"']),
    st.integers(1, 6_000).map(lambda digits: "9" * digits),
    st.integers(1, 6_000).map(lambda digits: "-" + "1" * digits),
    st.integers(1, 120_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3_000).map(lambda depth: '{"a": ' * depth + "0" + "}" * depth),
)
bodies = st.builds(
    _batch,
    cells,
    st.sampled_from([1, 2, 300]),
    st.sampled_from(["Age", "Fare", "Pclass", "Sex", "Name", "Embarked"]),
)


def test_hostile_cells_never_get_a_5xx_and_every_log_line_is_strict_json(titanic_result, tmp_path):
    log = tmp_path / "requests.jsonl"
    config = EndpointConfig(
        model=titanic_result.model,
        model_name="titanic-model",
        model_version="1",
        keys=EndpointKeys(KEY),
        request_log=RequestLog(log),
    )
    statuses = []
    with TestClient(create_app(config)) as test_client:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(body=bodies)
        def check(body):
            response = test_client.post("/score", content=body, headers=AUTH)
            statuses.append(response.status_code)
            assert response.status_code in (200, 400), (body[:200], response.text[:300])
            if response.status_code == 400:
                assert response.json()["error"]["message"]

        check()
    assert {200, 400} <= set(statuses), "the shapes cover scored and refused bodies"
    lines = log.read_text().splitlines()
    assert len(lines) == len(statuses), "one log line per request"
    assert [_strict(line)["status"] for line in lines] == statuses


def test_the_request_log_writes_non_finite_numbers_as_strict_json(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl")
    log.write({"request_id": "nan", "inputs": [{"Age": float("nan"), "Fare": 1.5}]})
    log.write({"request_id": "inf", "inputs": [{"Age": float("inf"), "Fare": -float("inf")}]})
    log.write({"request_id": "deep", "inputs": [{"Age": _nested(5_000)}]})
    log.close()
    nan, inf, deep = map(_strict, (tmp_path / "r.jsonl").read_text().splitlines())
    assert nan["inputs"] == [{"Age": None, "Fare": 1.5}]
    assert inf["inputs"] == [{"Age": "Infinity", "Fare": "-Infinity"}]
    assert deep["request_id"] == "deep" and "not written" in deep["inputs"]


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_the_request_log_is_readable_by_its_owner_only(tmp_path):
    old = tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)  # made by an older version
    for path in (tmp_path / "new.jsonl", old):
        log = RequestLog(path, max_bytes=200, backups=2)
        for number in range(20):
            log.write({"request_id": number, "inputs": [{"Age": number}]})
        log.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 6, files  # two logs, each with two rotated copies
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}


# Keys ------------------------------------------------------------------------------


def test_a_key_option_is_the_endpoints_one_key(tmp_path, monkeypatch, cli):
    monkeypatch.delenv("TITANICML_ENDPOINT_KEY", raising=False)
    generated = read_keys("titanic-endpoint", tmp_path)
    serving = load_keys("titanic-endpoint", tmp_path, KEY)
    assert serving == EndpointKeys(KEY)
    assert authorized(f"Bearer {KEY}", serving)
    for old in (generated.primary, generated.secondary):
        assert not authorized(f"Bearer {old}", serving), "a generated key still works"
    env = {"TITANICML_HOME": str(tmp_path)}
    printed = json.loads(cli("online-endpoint", "get-credentials", env=env).stdout)
    assert printed == {"primaryKey": KEY, "secondaryKey": None}
    assert all(authorized(f"Bearer {k}", serving) for k in printed.values() if k)
    out = cli("online-endpoint", "get-credentials", "--query", "secondaryKey", env=env)
    assert out.returncode == 2 and "no secondary key" in out.stderr
    assert "regenerate-keys" in out.stderr and "Traceback" not in out.stderr
    path = tmp_path / "endpoints" / "titanic-endpoint" / "keys.json"
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o600"


def test_get_credentials_ignores_the_key_variable_of_its_shell(tmp_path, monkeypatch, cli):
    """Only ``serve`` sets the key: a shell's variable must not change a running endpoint's."""
    monkeypatch.delenv("TITANICML_ENDPOINT_KEY", raising=False)
    stored = read_keys("titanic-endpoint", tmp_path)
    env = {"TITANICML_HOME": str(tmp_path), "TITANICML_ENDPOINT_KEY": KEY}
    printed = json.loads(cli("online-endpoint", "get-credentials", env=env).stdout)
    assert printed == stored.to_dict()
    assert read_keys("titanic-endpoint", tmp_path) == stored


# Limits ----------------------------------------------------------------------------


def test_limits_are_checked_with_a_message_naming_the_option():
    with pytest.raises(ConfigError, match=r"header_timeout must be a positive number.*--header"):
        ServerLimits(header_timeout=0)
    with pytest.raises(ConfigError, match="max_connections must be a whole number"):
        ServerLimits(max_connections=0)


def test_the_connection_cap_leaves_room_under_the_open_file_limit(monkeypatch):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 4096))
    assert connection_cap(1100, open_files=20) == 1024 - 20 - 32
    assert connection_cap(100, open_files=20) == 100
    limits = ServerLimits(max_connections=5000).within_file_limit()
    assert limits.max_connections < 1024


def test_serve_refuses_a_bad_limit_before_loading_the_model(tmp_path, cli):
    out = cli(
        "online-endpoint", "serve", "--model", str(tmp_path / "none"), "--body-timeout", "-1",
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "body_timeout must be a positive number" in out.stderr


# A real server ---------------------------------------------------------------------


def _server_env(home, saved_model) -> dict[str, str]:
    """The environment of a server in workspace ``home`` that trusts the saved model's key."""
    env = {**os.environ, "TITANICML_HOME": str(home), "TITANICML_ENDPOINT_KEY": KEY}
    signer = json.loads((saved_model / "MANIFEST.json").read_text()).get("public_key")
    if signer:  # a signed model: its key is trusted by the workspace that saved it
        env["TITANICML_TRUSTED_KEYS"] = signer
    return env


def _serve_command(saved_model, port, *options, open_files=None):
    serve = [
        sys.executable, "-m", "titanicml", "online-endpoint", "serve",
        "--model", str(saved_model), "--port", str(port), *options,
    ]  # fmt: skip
    if open_files is None:
        return serve
    # Start the server under a low open-file limit (as `ulimit -n` would).
    code = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({open_files}, {open_files})); "
        "os.execv(sys.executable, sys.argv[1:])"
    )
    return [sys.executable, "-c", code, *serve]


@pytest.fixture(scope="module")
def guarded(saved_model, tmp_path_factory):
    """A server at ``ulimit -n 128`` with timeouts of 2 s."""
    home = tmp_path_factory.mktemp("guarded")
    port = free_port()
    timeouts = [
        "--header-timeout", str(TIMEOUT), "--body-timeout", str(TIMEOUT),
        "--keep-alive-timeout", str(TIMEOUT),
    ]  # fmt: skip
    env = _server_env(home, saved_model)
    log = home / "server.log"
    command = _serve_command(saved_model, port, *timeouts, open_files=128)
    with running_server(command, f"http://127.0.0.1:{port}/ready", log, env):
        cap = int(log.read_text().split("at most ")[1].split()[0])
        yield {
            "port": port,
            "cap": cap,
            "log": log,
            "requests": home / "endpoints" / "titanic-endpoint" / "requests.jsonl",
        }


def _connect(port: int, data: bytes = b"", timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the timeout).

    A server that closes with unread request bytes resets the connection after its
    answer: the answer is what came before.
    """
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        if not chunks:
            raise
    return b"".join(chunks)


def _response(sock: socket.socket) -> bytes:
    """One whole response (headers and a content-length body) of a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    length = int(_headers(data)["content-length"])
    while len(data.split(b"\r\n\r\n", 1)[1]) < length:
        data += sock.recv(65536)
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def _headers(answer: bytes) -> dict[str, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def _body(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def _score_head(length: int, request_id: str, key: str | None = KEY, extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST /score HTTP/1.1\r\nHost: t\r\n{auth}x-request-id: {request_id}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def _logged(path, request_id: str, within: float = 10) -> dict:
    """The request log's line of ``request_id`` (the log is written by a background thread)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                entry = _strict(line)
                if entry["request_id"] == request_id:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"no line for {request_id} in {path} within {within} s")


def _get(port: int, path: str = "/health") -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.read()


def test_idle_connections_over_the_file_limit_do_not_lock_others_out(guarded):
    """150 idle connections at `ulimit -n 128` (1,100 at 1024 in the issue)."""
    port = guarded["port"]
    assert guarded["cap"] < 150
    silent = [_connect(port) for _ in range(100)]
    slow = [_connect(port, b"POST /score HTTP/1.1\r\nHost: t\r\n") for _ in range(50)]
    try:
        _still_served(port, silent)
    finally:
        for sock in silent + slow:
            sock.close()


def _still_served(port: int, silent: list[socket.socket]) -> None:
    status, body = _get(port)
    assert status == 200 and json.loads(body) == {"status": "Healthy"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/score",
        data=_batch("30", 1).encode(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # The server made room by closing the longest-idle connections, with an answer.
    for sock in silent[:20]:
        answer = _answer(sock)
        assert _status(answer) == 503, answer
        assert _headers(answer)["retry-after"] == "1"
        assert "retry after" in _body(answer)["error"]["message"]


def test_slow_headers_get_a_408_and_a_silent_connection_is_closed(guarded):
    port = guarded["port"]
    started = time.monotonic()
    slow = _connect(port, b"POST /score HTTP/1.1\r\nHost: t\r\n")
    silent = _connect(port)
    answer = _answer(slow)
    assert _status(answer) == 408, answer
    assert "headers did not arrive within 2 s" in _body(answer)["error"]["message"]
    assert _answer(silent) == b""  # closed, nothing to answer
    assert TIMEOUT * 0.9 <= time.monotonic() - started < TIMEOUT + 6
    slow.close()
    silent.close()


def test_a_slow_body_gets_a_408_and_is_logged(guarded):
    sock = _connect(guarded["port"], _score_head(100, "slow-body") + b'{"data": [')
    answer = _answer(sock)
    sock.close()
    assert _status(answer) == 408, answer
    assert "body did not arrive within 2 s" in _body(answer)["error"]["message"]
    entry = _logged(guarded["requests"], "slow-body")
    assert entry["status"] == 408 and entry["error"]["code"] == "RequestTimeout"
    assert entry["body_bytes"] == len(b'{"data": [')


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(guarded):
    sock = _connect(guarded["port"], b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    first = _response(sock)
    answered = time.monotonic()
    assert _status(first) == 200 and _body(first) == {"status": "Healthy"}
    assert sock.recv(65536) == b""
    assert TIMEOUT * 0.9 <= time.monotonic() - answered < TIMEOUT + 6
    sock.close()


def test_a_client_that_leaves_mid_body_is_logged_499_without_a_traceback(guarded):
    sock = _connect(guarded["port"], _score_head(1000, "left-early") + b'{"data": [{"Age"')
    sock.close()
    entry = _logged(guarded["requests"], "left-early")
    assert entry["status"] == 499 and entry["error"]["code"] == "ClientDisconnect"
    assert entry["body_bytes"] == len(b'{"data": [{"Age"')
    log = guarded["log"].read_text()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log


def test_a_big_body_without_a_key_gets_its_401_before_the_body_is_read(guarded):
    port = guarded["port"]
    # A client that waits for the answer after the headers: the 401 comes unread body.
    sock = _connect(port, _score_head(100 << 20, "no-key-raw", key=None) + b"{" * 1024)
    answer = _answer(sock)
    sock.close()
    assert _status(answer) == 401 and "get-credentials" in _body(answer)["error"]["message"]
    entry = _logged(guarded["requests"], "no-key-raw")
    assert entry["status"] == 401 and entry["body_bytes"] == 100 << 20
    # A client that sends everything before reading (urllib, "Connection: close"): it
    # reads the 401 rather than a reset connection.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/score",
        data=b" " * (100 << 20),
        headers={"x-request-id": "no-key-urllib", "Content-Type": "application/json"},
    )
    started = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401, refused.value
    assert "get-credentials" in json.loads(refused.value.read())["error"]["message"]
    assert time.monotonic() - started < 10
    assert _logged(guarded["requests"], "no-key-urllib")["status"] == 401


def test_a_body_over_the_limit_with_a_key_gets_413_not_a_reset(guarded):
    request = urllib.request.Request(
        f"http://127.0.0.1:{guarded['port']}/score",
        data=b" " * (20 << 20),
        headers={**AUTH, "x-request-id": "too-big", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert _logged(guarded["requests"], "too-big")["status"] == 413


def test_headers_over_the_size_limit_get_a_431(guarded):
    sock = _connect(guarded["port"], b"GET /health HTTP/1.1\r\nX-Big: " + b"x" * 200_000)
    answer = _answer(sock)
    sock.close()
    assert _status(answer) == 431, answer[:200]


@pytest.fixture(scope="module")
def busy(saved_model, tmp_path_factory):
    """A server of 3 connections, with time for slow bodies."""
    home = tmp_path_factory.mktemp("busy")
    port = free_port()
    env = _server_env(home, saved_model)
    command = _serve_command(saved_model, port, "--max-connections", "3", "--body-timeout", "60")
    with running_server(command, f"http://127.0.0.1:{port}/ready", home / "server.log", env):
        yield port


def _probe(port: int) -> bytes:
    sock = _connect(port, b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    try:
        return _answer(sock)
    finally:
        sock.close()


def test_at_the_cap_of_busy_connections_a_newcomer_gets_503_with_retry_after(busy):
    waiting = []
    try:
        # Three requests in the app, waiting for their bodies ("100 Continue" says so).
        for number in range(3):
            head = _score_head(50, f"busy-{number}", extra="Expect: 100-continue\r\n")
            waiting.append(_connect(busy, head))
            assert waiting[-1].recv(100).startswith(b"HTTP/1.1 100 Continue")
        # A connection the readiness probe left may still be closing: it goes first.
        answers = [_probe(busy)]
        while _status(answers[-1]) != 503 and len(answers) < 10:
            answers.append(_probe(busy))
        answer = answers[-1]
        assert _status(answer) == 503, answers
        assert _headers(answer)["retry-after"] == "1"
        assert "at most 3 connections" in _body(answer)["error"]["message"]
        # The busy ones are still served.
        waiting[0].sendall(_batch("30", 1).encode().ljust(50))
        assert _status(_response(waiting[0])) == 200
    finally:
        for sock in waiting:
            sock.close()
    # Once they have left, newcomers are served again.
    deadline = time.monotonic() + 10
    while _status(_probe(busy)) != 200:
        assert time.monotonic() < deadline, "still refused after the busy clients left"
        time.sleep(0.05)


def test_a_thousand_requests_from_eight_clients_still_all_succeed_under_the_guards(guarded):
    """The guards do not get in the way of ordinary keep-alive traffic."""
    import concurrent.futures

    import httpx

    def worker(_: int) -> collections.Counter:
        seen: collections.Counter = collections.Counter()
        url = f"http://127.0.0.1:{guarded['port']}"
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for _ in range(125):
                seen[http.post("/score", content=_batch("30", 1)).status_code] += 1
        return seen

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(worker, range(8)), collections.Counter())
    assert total == {200: 1000}
