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


def test_openapi_declares_the_bearer_scheme_the_score_routes_require(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    for path in ("/score", "/invocations"):
        operation = spec["paths"][path]["post"]
        assert operation["security"] == [{"bearer": []}]
        assert all(name in schemes for need in operation["security"] for name in need)
        assert "401" in operation["responses"]
    assert "security" not in spec["paths"]["/health"]["get"]


@pytest.fixture(scope="module")
def shop_model():
    """A tiny model whose columns are not the Titanic's."""
    import pandas as pd

    from titanicml import Trainer

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "temperature": rng.normal(20, 5, 120).round(1),
            "weekday": rng.choice(["mon", "sat", "sun"], 120),
            "visitors": rng.integers(0, 50, 120),
        }
    )
    noise = rng.normal(0, 4, 120)
    frame["busy"] = ((frame["temperature"] + noise > 20) | (frame["weekday"] != "mon")).astype(int)
    # Two trials: the request handling is tested, not the fit, which may not beat chance.
    trainer = Trainer(
        target="busy", time_budget=5, track=False, max_trials=2, estimators=["lgbm"],
        on_no_skill="warn",
    )  # fmt: skip
    return trainer.fit(frame).model


def _shop_app(model, keys=None, request_log=None, max_body_bytes=64 * 1024):
    config = EndpointConfig(
        model=model,
        model_name="shop-model",
        model_version="1",
        keys=keys,
        request_log=request_log,
        max_body_bytes=max_body_bytes,
    )
    return create_app(config)


def _request_examples(spec):
    content = spec["paths"]["/score"]["post"]["requestBody"]["content"]
    bodies = {name: e["value"] for name, e in content["application/json"]["examples"].items()}
    return bodies, content["text/csv"]["example"]


def _example_columns(body):
    value = next(iter(body.values()))  # the dialect's key comes first (then explain)
    value = value if isinstance(value, dict) else {"columns": [c for r in value for c in r]}
    return set(value["columns"])


def test_openapi_examples_are_made_of_the_served_models_columns(shop_model):
    columns = set(shop_model.input_columns)
    assert columns == {"temperature", "weekday", "visitors"}
    with TestClient(_shop_app(shop_model)) as test_client:
        spec = test_client.get("/openapi.json").json()
        bodies, csv = _request_examples(spec)
        assert set(bodies) == {
            "hands-on",
            "azure input_data",
            "mlflow dataframe_split",
            "mlflow dataframe_records",
            "hands-on, explained",
        }
        assert {next(iter(body)) for body in bodies.values()} == {
            "data",
            "input_data",
            "dataframe_split",
            "dataframe_records",
        }
        for name, body in bodies.items():
            assert _example_columns(body) == columns, name
            # Every example is a body the endpoint accepts, without an imputation warning.
            response = test_client.post("/score", json=body)
            assert response.status_code == 200, (name, response.text)
            assert response.json()["warnings"] == []
        assert set(csv.splitlines()[0].split(",")) == columns
        response = test_client.post("/score", content=csv, headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
    assert not any(titanic in json.dumps(bodies) + csv for titanic in ("Age", "Pclass", "Sex"))
    example = shop_model.info["input_example"]
    assert bodies["mlflow dataframe_records"]["dataframe_records"] == example


def test_openapi_examples_without_a_stored_input_example_use_the_input_columns(shop_model):
    import copy

    model = copy.copy(shop_model)
    model.info = {**shop_model.info, "input_example": None}
    with TestClient(_shop_app(model)) as test_client:
        bodies, csv = _request_examples(test_client.get("/openapi.json").json())
        (row,) = bodies["hands-on"]["data"]
        assert list(row) == shop_model.input_columns
        assert test_client.post("/score", json=bodies["hands-on"]).status_code == 200
        assert csv.splitlines()[0] == ",".join(shop_model.input_columns)


def test_openapi_claims_no_security_when_auth_is_off(shop_model):
    with TestClient(_shop_app(shop_model, keys=None)) as test_client:
        spec = test_client.get("/openapi.json").json()
        assert "securitySchemes" not in spec.get("components", {})
        for path in ("/score", "/invocations"):
            operation = spec["paths"][path]["post"]
            assert "security" not in operation and "401" not in operation["responses"]
        assert test_client.post("/score", json=HANDS_ON_SHOP).status_code == 200


HANDS_ON_SHOP = {"data": [{"temperature": 24.5, "weekday": "sat", "visitors": 12}]}


def test_every_answer_of_the_score_routes_is_logged(titanic_result, tmp_path):
    path = tmp_path / "requests.jsonl"
    app = create_app(
        EndpointConfig(
            model=titanic_result.model,
            model_name="titanic-model",
            model_version="3",
            keys=EndpointKeys(PRIMARY, SECONDARY),
            request_log=RequestLog(path),
            max_body_bytes=1024,
        )
    )
    sent = [
        ("good", json.dumps(HANDS_ON), AUTH, 200, None),
        ("malformed", "{not json", AUTH, 400, "BadRequest"),
        ("unknown-column", '{"data": [{"Agee": 22}]}', AUTH, 400, "BadRequest"),
        ("wrong-type", '{"data": [{"Age": "old"}]}', AUTH, 400, "BadRequest"),
        ("no-key", json.dumps(HANDS_ON), {}, 401, "Unauthorized"),
        ("too-large", json.dumps({"data": [{"Age": 1}] * 200}), AUTH, 413, "PayloadTooLarge"),
        (
            "wrong-type-of-body",
            "<xml/>",
            {**AUTH, "content-type": "application/xml"},
            415,
            "BadRequest",
        ),
    ]
    answers = {}
    # Leaving the client runs the app's shutdown, which closes (flushes) the log.
    with TestClient(app) as test_client:
        for request_id, content, headers, status, _ in sent:
            response = test_client.post(
                "/invocations" if request_id == "wrong-type" else "/score",
                content=content,
                headers={"x-request-id": request_id, **headers},
            )
            assert response.status_code == status, (request_id, response.text)
            answers[request_id] = response.json()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["request_id"] for e in entries] == [s[0] for s in sent], "one line per answer"
    for (request_id, content, _, status, code), entry in zip(sent, entries, strict=True):
        assert entry["status"] == status, request_id
        assert entry["model"] == "titanic-model" and entry["version"] == "3"
        assert entry["latency_ms"] > 0 and entry["time"] > 0
        assert entry["body_bytes"] == len(content.encode())
        if code is None:
            assert "error" not in entry
        else:
            assert entry["error"] == answers[request_id]["error"]
            assert entry["error"]["code"] == code
    good, malformed, unknown, wrong_type, no_key, too_large, media = entries
    assert good["inputs"] == HANDS_ON["data"] and good["dialect"] == "data"
    assert good["predictions"] == answers["good"]["predictions"]
    assert good["probabilities"] == answers["good"]["probabilities"]
    assert (
        unknown["inputs"] == [{"Agee": 22}]
        and "unknown column(s) 'Agee'" in (unknown["error"]["message"])
    )
    assert wrong_type["inputs"] == [{"Age": "old"}]
    assert "must be a number" in wrong_type["error"]["message"]
    for entry in (malformed, no_key, too_large, media):
        assert "inputs" not in entry and "predictions" not in entry


def test_a_server_fault_is_logged_as_a_500(shop_model, tmp_path):
    import copy

    def broken(records):
        raise RuntimeError("scorer broke")

    model = copy.copy(shop_model)
    path = tmp_path / "requests.jsonl"
    app = _shop_app(model, request_log=RequestLog(path))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        model.score_records = broken  # after the warm-up
        response = test_client.post("/score", json=HANDS_ON_SHOP, headers={"x-request-id": "r1"})
        assert response.status_code == 500
    (entry,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert entry["request_id"] == "r1" and entry["status"] == 500
    assert entry["error"]["code"] == "InternalServerError"
    assert "scorer broke" in entry["error"]["message"]
    assert entry["inputs"] == HANDS_ON_SHOP["data"]


def test_closing_the_request_log_twice_is_harmless(tmp_path):
    log = RequestLog(tmp_path / "r.jsonl")
    log.write({"request_id": 1})
    log.close()
    log.close()
    assert json.loads((tmp_path / "r.jsonl").read_text()) == {"request_id": 1}


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


def test_fast_path_of_a_model_saved_before_the_scaler(titanic):
    # Models trained before numeric columns were standardized have a bare imputer there.
    from lightgbm import LGBMClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    from titanicml.features import plan_features
    from titanicml.model.predictor import TabularModel, prepare_rows

    rows = titanic.drop(columns=["Survived", "Boat", "Body"])
    y = titanic["Survived"].to_numpy()
    plan = plan_features(rows)
    inputs, _ = prepare_rows(plan, rows)
    featurizer = plan.build()
    steps = dict((name, (step, cols)) for name, step, cols in featurizer.transformers)
    _, numeric = steps["numeric"]
    featurizer.transformers = [
        (name, SimpleImputer(strategy="median", add_indicator=True), cols)
        if name == "numeric"
        else (name, step, cols)
        for name, step, cols in featurizer.transformers
    ]
    matrix = featurizer.fit_transform(inputs, y)
    estimator = LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(matrix, y)
    pipeline = Pipeline([("features", featurizer), ("estimator", estimator)])
    model = TabularModel.from_fitted(pipeline, plan, "binary", [0, 1])
    assert isinstance(featurizer.named_transformers_["numeric"], SimpleImputer) and numeric
    scorer = model._row_scorer()
    records = json.loads(rows.to_json(orient="records"))
    frame, _ = model.prepare(rows)
    assert np.array_equal(scorer.features(records), featurizer.transform(frame))


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
