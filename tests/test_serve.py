import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from titanicml.serve.app import EndpointConfig, create_app
from titanicml.serve.auth import EndpointKeys, authorized, load_keys, regenerate_key
from titanicml.serve.requestlog import RequestLog

PRIMARY, SECONDARY = "p" * 40, "s" * 40
AUTH = {"Authorization": f"Bearer {PRIMARY}"}
HANDS_ON = {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("log") / "requests.jsonl"


@pytest.fixture(scope="module")
def client(titanic_result, log_path):
    config = EndpointConfig(
        model=titanic_result.model,
        model_name="titanic-model",
        model_version="3",
        keys=EndpointKeys(PRIMARY, SECONDARY),
        request_log=RequestLog(log_path),
        max_body_bytes=64 * 1024,
    )
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_hands_on_request_gets_a_prediction_with_imputation_warnings(client, titanic_result):
    response = client.post("/score", json=HANDS_ON, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == titanic_result.predict(HANDS_ON["data"]).tolist()
    np.testing.assert_allclose(
        body["probabilities"], titanic_result.predict_proba(HANDS_ON["data"])
    )
    assert body["classes"] == [0, 1]
    assert body["model"] == {"name": "titanic-model", "version": "3"}
    assert any("'Fare' was absent" in w for w in body["warnings"])
    assert not any("'Age'" in w for w in body["warnings"])
    assert response.headers["x-request-id"] == body["request_id"]


ROWS = [{"Age": 22.0, "Pclass": 3, "Sex": "male"}, {"Age": 38.0, "Pclass": 1, "Sex": "female"}]
COLUMNS = ["Age", "Pclass", "Sex"]
SPLIT = {"columns": COLUMNS, "data": [[r[c] for c in COLUMNS] for r in ROWS]}


@pytest.mark.parametrize(
    "body",
    [
        {"data": ROWS},
        {"input_data": {**SPLIT, "index": [0, 1]}},
        {"dataframe_split": SPLIT},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"inputs": {c: [r[c] for r in ROWS] for c in COLUMNS}},
        {"inputs": ROWS},
    ],
    ids=lambda body: next(iter(body)),
)
@pytest.mark.parametrize("route", ["/score", "/invocations"])
def test_every_dialect_gives_the_same_answer(client, titanic_result, body, route):
    response = client.post(route, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == titanic_result.predict(ROWS).tolist()


def test_csv_body(client, titanic_result):
    csv = "Age,Pclass,Sex\n22,3,male\n38,1,female\n"
    response = client.post("/score", content=csv, headers={**AUTH, "content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == titanic_result.predict(ROWS).tolist()


def test_secondary_key_works_and_wrong_or_missing_keys_get_401(client):
    secondary = {"Authorization": f"Bearer {SECONDARY}"}
    assert client.post("/score", json=HANDS_ON, headers=secondary).status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": PRIMARY}):
        response = client.post("/score", json=HANDS_ON, headers=headers)
        assert response.status_code == 401
        assert "get-credentials" in response.json()["error"]["message"]
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "content, headers, status, message",
    [
        (b"{not json", {}, 400, "malformed JSON"),
        (b"", {}, 400, "body is empty"),
        (b"[1, 2]", {}, 400, "must be a JSON object"),
        (b'{"rows": []}', {}, 400, "exactly one of the keys"),
        (b'{"data": []}', {}, 400, "holds no rows"),
        (b'{"data": [{"Agee": 22}]}', {}, 400, "unknown column(s) 'Agee'"),
        (b'{"data": [{"Age": "old"}]}', {}, 400, "column 'Age' must be a number"),
        (b'{"data": [1, 2]}', {}, 400, "every row of data must be an object"),
        (b'{"dataframe_split": {"columns": ["Age"], "data": [[1, 2]]}}', {}, 400, "has 2 values"),
        (b"Age\n", {"content-type": "text/csv"}, 400, "header row and at least one data row"),
        (b"<xml/>", {"content-type": "application/xml"}, 415, "unsupported content type"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_problem(client, content, headers, status, message):
    response = client.post("/score", content=content, headers={**AUTH, **headers})
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_body_over_the_limit_gets_413(client):
    rows = [{"Age": 30, "Sex": "male"}] * 5000
    response = client.post("/score", content=json.dumps({"data": rows}), headers=AUTH)
    assert response.status_code == 413
    assert "batch-endpoint" in response.json()["error"]["message"]


def test_large_batch_is_scored_like_the_pipeline(client, titanic_result, titanic):
    rows = titanic[["Age", "Pclass", "Sex", "Fare", "Embarked"]].head(400)
    records = json.loads(rows.to_json(orient="records"))
    response = client.post("/score", json={"dataframe_records": records}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == titanic_result.predict(rows).tolist()


def test_health_ready_info_and_openapi(client):
    assert client.get("/").json()["status"] == "Healthy"
    assert client.get("/health").status_code == 200
    assert client.get("/ready").json()["status"] == "Ready"
    info = client.get("/info").json()
    assert info["version"] == "3" and "Age" in [c["name"] for c in info["input_columns"]]
    spec = client.get("/openapi.json").json()
    assert {"/score", "/invocations", "/ready"} <= set(spec["paths"])
    examples = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert "hands-on" in examples["examples"]


def test_request_log_records_each_scored_request(client, log_path):
    response = client.post("/score", json=HANDS_ON, headers={**AUTH, "x-request-id": "abc-123"})
    assert response.status_code == 200
    # The log is written by a background thread; closing it flushes the queue.
    entries = _read_log_when_flushed(log_path, "abc-123")
    entry = entries["abc-123"]
    assert entry["inputs"] == HANDS_ON["data"]
    assert entry["predictions"] == response.json()["predictions"]
    assert entry["model"] == "titanic-model" and entry["version"] == "3"
    assert entry["latency_ms"] > 0


def _read_log_when_flushed(path, request_id, attempts=200):
    import time

    for _ in range(attempts):
        if path.exists():
            entries = {e["request_id"]: e for e in map(json.loads, path.read_text().splitlines())}
            if request_id in entries:
                return entries
        time.sleep(0.01)
    raise AssertionError(f"request {request_id} never reached the log")


def test_request_log_rotates_and_stays_bounded(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl", max_bytes=2000, backups=2)
    for number in range(500):
        log.write({"request_id": number, "inputs": [{"Age": number}]})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * 2000 + 200
    last = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])
    assert last["request_id"] == 499


def test_keys_are_made_once_kept_private_and_regenerated(tmp_path, monkeypatch):
    monkeypatch.delenv("TITANICML_ENDPOINT_KEY", raising=False)
    first = load_keys("titanic-endpoint", tmp_path)
    assert load_keys("titanic-endpoint", tmp_path) == first
    path = tmp_path / "endpoints" / "titanic-endpoint" / "keys.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    fresh = regenerate_key("titanic-endpoint", "secondary", tmp_path)
    assert fresh.primary == first.primary and fresh.secondary != first.secondary
    monkeypatch.setenv("TITANICML_ENDPOINT_KEY", "x" * 20)
    assert load_keys("titanic-endpoint", tmp_path).primary == "x" * 20
    assert authorized("Bearer " + "x" * 20, load_keys("titanic-endpoint", tmp_path))
    assert not authorized("Basic " + "x" * 20, load_keys("titanic-endpoint", tmp_path))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
column_names = st.sampled_from(["Age", "Pclass", "Sex", "Fare", "Name", "Embarked", "Boat", "x"])
rows = st.lists(st.dictionaries(column_names, json_values, max_size=4), max_size=4)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"data": rows | json_values}),
    st.fixed_dictionaries(
        {"input_data": st.fixed_dictionaries({"columns": json_values, "data": json_values})}
    ),
    st.dictionaries(
        st.sampled_from(["data", "inputs", "instances", "dataframe_split", "x"]),
        json_values | rows,
        max_size=2,
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_random_json_bodies_never_get_a_5xx(client, body):
    response = client.post("/score", content=json.dumps(body), headers=AUTH)
    assert response.status_code < 500, (body, response.text)
    assert response.status_code in (200, 400), (body, response.text)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=64))
def test_random_bytes_never_get_a_5xx(client, content):
    response = client.post("/score", content=content, headers=AUTH)
    assert 400 <= response.status_code < 500


def test_fast_path_equals_the_pipeline_on_every_training_row(titanic_result, titanic):
    model = titanic_result.model
    rows = titanic.drop(columns=["Survived"])
    records = json.loads(rows.to_json(orient="records"))
    scorer = model._row_scorer()
    assert scorer is not None, "the Titanic featurizer must compile"
    frame, _ = model.prepare(rows)
    expected = model.pipeline_.named_steps["features"].transform(frame)
    assert np.array_equal(scorer.features(records), expected)
    assert np.array_equal(scorer.output(expected), model.pipeline_.predict_proba(frame))
    got = np.vstack(
        [
            model.score_records(records[i : i + 100]).probabilities
            for i in range(0, len(records), 100)
        ]
    )
    assert np.array_equal(got, model.pipeline_.predict_proba(frame))
