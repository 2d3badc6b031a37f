"""Explanations served by the endpoint: ``"explain": true`` / ``?explain=true``.

Every served explanation is checked against ``explain_model`` (the Python API) on the
same rows, against the estimator's own output (additivity, to 1e-6), on the compiled
fast path and on the pandas pipeline path, in-process and on a real server.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from lightgbm import LGBMClassifier, LGBMRegressor
from servers import free_port, running_server
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from test_explain import build, synthetic
from xgboost import XGBClassifier

from titanicml.explain import explain_model
from titanicml.explain.served import DEFAULT_TOP
from titanicml.model.payload import response_payload
from titanicml.serve.app import EndpointConfig, create_app

EXACT = 1e-6
ROWS = [
    {"Pclass": 3, "Sex": "male", "Age": 22.0, "SibSp": 1, "Fare": 7.25, "Embarked": "S"},
    {"Pclass": 1, "Sex": "female", "Age": 38.0, "Fare": 71.3, "Name": "Cumings, Mrs. John"},
    {"Pclass": 2, "Sex": "male"},
]
COLUMNS = sorted({c for row in ROWS for c in row})
SPLIT = {"columns": COLUMNS, "data": [[row.get(c) for c in COLUMNS] for row in ROWS]}


@pytest.fixture(scope="module")
def titanic_xy(titanic):
    return titanic.drop(columns=["Survived"]), titanic["Survived"].to_numpy()


@pytest.fixture(scope="module")
def lgbm(titanic_xy):
    frame, y = titanic_xy
    return build(frame, y, LGBMClassifier(n_estimators=60, verbose=-1, n_jobs=1), "binary")


def app_of(model, **config):
    return create_app(
        EndpointConfig(model=model, model_name="m", model_version="1", keys=None, **config)
    )


@pytest.fixture(scope="module")
def client(lgbm):
    with TestClient(app_of(lgbm)) as test_client:
        yield test_client


def raw_margin(model, rows) -> np.ndarray:
    """The estimator's own raw output through its scikit-learn API (not titanicml's code)."""
    frame, _ = model.prepare(rows)
    matrix = model.pipeline_[:-1].transform(frame)
    estimator = model.pipeline_[-1]
    if isinstance(estimator, LGBMRegressor):
        return estimator.predict(matrix)[:, None]
    if isinstance(estimator, LGBMClassifier):
        margin = estimator.predict(matrix, raw_score=True)
    elif isinstance(estimator, XGBClassifier):
        margin = estimator.predict(matrix, output_margin=True)
    else:
        margin = estimator.decision_function(matrix)
    return margin.reshape(len(matrix), -1)


def check_against_the_python_api(model, rows, answer, top):
    """Served rows are explain_model's, top-k by size, adding up to the model's output."""
    explanation = explain_model(model, rows)
    served = answer["explanations"]
    assert len(served) == len(rows)
    predicted = answer["predictions"]
    margins = raw_margin(model, rows) if explanation.output != "probability" else None
    for number, row in enumerate(served):
        one = explanation
        if explanation.multiclass:
            assert row["class"] == predicted[number]
            one = explanation.for_class(row["class"])
        else:
            assert "class" not in row
        full = one.contributions.iloc[number]
        assert row["base_value"] == pytest.approx(one.base_value, abs=1e-12)
        # Top k: the largest |values| of the full explanation, largest first.
        expected = full.abs().sort_values(ascending=False, kind="stable").index[:top]
        assert list(row["contributions"]) == list(expected)
        for column, value in row["contributions"].items():
            assert value == pytest.approx(full[column], abs=1e-12)
        rest = full.drop(index=list(row["contributions"])).sum()
        assert row["others"] == pytest.approx(rest, abs=1e-9)
        # Additivity over ALL columns, against the estimator's own output.
        total = row["base_value"] + sum(row["contributions"].values()) + row["others"]
        own = one.output_values.iloc[number]
        if margins is not None:
            k = 0 if not explanation.multiclass else explanation.labels.index(row["class"])
            own = margins[number, k]
        assert total == pytest.approx(own, abs=EXACT)
        assert row["output_value"] == pytest.approx(own, abs=EXACT)
    assert answer["explanation"]["output"] == explanation.output
    assert answer["explanation"]["top"] == min(top, len(explanation.contributions.columns))


@pytest.mark.parametrize(
    "body, query, content_type, top",
    [
        ({"data": ROWS, "explain": True}, "", None, DEFAULT_TOP),
        ({"data": ROWS, "explain": {"top": 3}}, "", None, 3),
        ({"data": ROWS, "explain": {}}, "", None, DEFAULT_TOP),
        ({"input_data": {**SPLIT, "index": [0, 1, 2]}, "explain": {"top": 2}}, "", None, 2),
        ({"dataframe_split": SPLIT}, "?explain=true&top=4", None, 4),
        ({"dataframe_records": ROWS, "explain": {"top": 1}}, "", None, 1),
        ({"instances": ROWS}, "?explain=1", None, DEFAULT_TOP),
        ({"inputs": ROWS, "explain": {"top": 50}}, "", None, 50),
        (None, "?explain=true&top=5", "text/csv", 5),
    ],
    ids=["data", "top", "empty-object", "input_data", "split-url", "records", "instances-url",
         "top-over-columns", "csv-url"],
)  # fmt: skip
@pytest.mark.parametrize("route", ["/score", "/invocations"])
def test_every_dialect_explains_like_the_python_api(
    client, lgbm, body, query, content_type, top, route
):
    if content_type == "text/csv":
        frame = pd.DataFrame(ROWS)
        content = frame.to_csv(index=False).encode()
        rows = [{k: v for k, v in r.items() if v == v} for r in frame.to_dict("records")]
    else:
        content, rows = json.dumps(body).encode(), ROWS
    headers = {"content-type": content_type or "application/json"}
    response = client.post(route + query, content=content, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    check_against_the_python_api(lgbm, rows, answer, top)
    about = answer["explanation"]
    assert about["output"] == "margin" and about["class"] == 1 and about["exact"] is True
    assert "log-odds" in about["description"] and about["method"] == "LightGBM pred_contrib"
    assert answer["predictions"] == lgbm.predict(rows).tolist()


def test_the_fast_path_and_the_pipeline_path_explain_alike(client, lgbm, titanic_xy):
    frame, _ = titanic_xy
    records = json.loads(frame.head(300).to_json(orient="records"))
    # 300 rows: the pandas pipeline; 100 at a time: the compiled row scorer.
    whole = client.post("/score", json={"data": records, "explain": {"top": 5}}).json()
    parts = []
    for start in range(0, 300, 100):
        chunk = {"data": records[start : start + 100], "explain": {"top": 5}}
        parts += client.post("/score", json=chunk).json()["explanations"]
    assert len(parts) == len(whole["explanations"]) == 300
    for fast, slow in zip(parts, whole["explanations"], strict=True):
        assert list(fast["contributions"]) == list(slow["contributions"])
        np.testing.assert_allclose(
            list(fast["contributions"].values()), list(slow["contributions"].values()),
            rtol=0, atol=1e-12,
        )  # fmt: skip
        assert fast["base_value"] == slow["base_value"]
        assert fast["output_value"] == pytest.approx(slow["output_value"], abs=1e-12)
    check_against_the_python_api(lgbm, records[:60], {**whole, "explanations": parts[:60]}, 5)


def test_the_answer_without_explain_is_unchanged_byte_for_byte(client, lgbm):
    expected = response_payload(lgbm, lgbm.score_records(ROWS), "m", "1", "r1")
    expected_bytes = json.dumps(expected, separators=(",", ":")).encode()
    for body, query in (
        ({"data": ROWS}, ""),
        ({"data": ROWS, "explain": False}, ""),
        ({"data": ROWS, "explain": None}, ""),
        ({"data": ROWS}, "?explain=false"),
        ({"data": [{**ROWS[0], "Name": "explain"}]}, ""),  # the word in a value
    ):
        response = client.post("/score" + query, json=body, headers={"x-request-id": "r1"})
        assert response.status_code == 200, response.text
        if body["data"] is ROWS:
            assert response.content == expected_bytes, (body, query)
        assert "explanations" not in response.json()


@pytest.mark.parametrize(
    "content, query, message",
    [
        ({"data": ROWS, "explain": "yes"}, "", "must be true, false or an object"),
        ({"data": ROWS, "explain": 1}, "", "must be true, false or an object"),
        ({"data": ROWS, "explain": {"top": 0}}, "", "at least 1"),
        ({"data": ROWS, "explain": {"top": 2.5}}, "", "got 2.5"),
        ({"data": ROWS, "explain": {"top": True}}, "", "whole number"),
        ({"data": ROWS, "explain": {"top": "5"}}, "", "whole number"),
        ({"data": ROWS, "explain": {"rows": 5}}, "", 'takes only "top"'),
        ({"data": ROWS}, "?explain=maybe", "explain= must be true or false"),
        ({"data": ROWS}, "?explain=true&top=-1", "top= must be a whole number"),
        ({"data": ROWS}, "?explain=true&top=many", "got 'many'"),
        ({"data": ROWS}, "?top=5", "add explain=true"),
        ({"data": ROWS, "explain": True}, "?explain=true", "in one place"),
    ],
)
def test_bad_explain_values_get_a_400_naming_the_problem(client, content, query, message):
    response = client.post("/score" + query, json=content)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "BadRequest"


def test_a_bad_body_is_refused_before_the_explain_option(client):
    response = client.post("/score", json={"data": [{"Agee": 1}], "explain": True})
    assert response.status_code == 400
    assert "unknown column(s) 'Agee'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "make, tolerance",
    [
        (lambda: XGBClassifier(n_estimators=30, random_state=0, n_jobs=1), 1e-5),
        (lambda: LogisticRegression(max_iter=300), EXACT),
    ],
    ids=["xgboost", "linear"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_other_estimators_explain_on_the_fast_path_like_the_python_api(make, tolerance, titanic_xy):
    frame, y = titanic_xy
    model = build(frame, y, make(), "binary")
    with TestClient(app_of(model)) as test_client:
        answer = test_client.post("/score", json={"data": ROWS, "explain": True}).json()
    explanation = explain_model(model, ROWS)
    margins = raw_margin(model, ROWS)[:, 0]
    for number, row in enumerate(answer["explanations"]):
        full = explanation.contributions.iloc[number]
        for column, value in row["contributions"].items():
            assert value == pytest.approx(full[column], abs=1e-9)
        total = row["base_value"] + sum(row["contributions"].values()) + row["others"]
        assert total == pytest.approx(margins[number], abs=tolerance)


@pytest.mark.parametrize("dates", [True, False], ids=["pipeline-path", "fast-path"])
def test_a_multiclass_model_explains_each_rows_predicted_class(dates):
    frame, y = synthetic(300)
    if not dates:
        frame = frame.drop(columns=["when"])
    model = build(frame, y, LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1), "multiclass")
    rows = json.loads(frame.head(8).to_json(orient="records", date_format="iso"))
    with TestClient(app_of(model)) as test_client:
        answer = test_client.post("/score", json={"data": rows, "explain": {"top": 3}}).json()
    assert "class" not in answer["explanation"]
    check_against_the_python_api(model, rows, answer, 3)


def test_a_regressor_explains_its_prediction():
    frame, y = synthetic(300)
    frame = frame.drop(columns=["when"])
    regressor = LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1)
    model = build(frame, y * 10.0, regressor, "regression")
    rows = json.loads(frame.head(5).to_json(orient="records"))
    with TestClient(app_of(model)) as test_client:
        answer = test_client.post("/score?explain=true&top=2", json={"data": rows}).json()
    assert answer["explanation"]["output"] == "prediction"
    check_against_the_python_api(model, rows, answer, 2)
    for row, prediction in zip(answer["explanations"], answer["predictions"], strict=True):
        assert row["output_value"] == pytest.approx(prediction, abs=EXACT)


def test_a_model_that_cannot_explain_answers_501_saying_why(titanic_xy, monkeypatch, tmp_path):
    frame, y = titanic_xy
    knn = build(frame, y, KNeighborsClassifier(), "binary")
    with TestClient(app_of(knn)) as test_client:
        response = test_client.post("/score", json={"data": ROWS, "explain": True})
        assert response.status_code == 501
        error = response.json()["error"]
        assert error["code"] == "NotImplemented"
        assert "cannot explain a KNeighborsClassifier" in error["message"]
        assert "without explain are scored as usual" in error["message"]
        assert test_client.post("/score", json={"data": ROWS}).status_code == 200
    forest = build(frame, y, RandomForestClassifier(n_estimators=5, max_depth=4), "binary")
    monkeypatch.setitem(sys.modules, "shap", None)  # as if the explain extra were missing
    with TestClient(app_of(forest)) as test_client:
        response = test_client.post("/score?explain=true", json={"data": ROWS})
        assert response.status_code == 501
        assert 'pip install "titanicml[explain]"' in response.json()["error"]["message"]
        assert test_client.post("/score", json={"data": ROWS}).status_code == 200


def test_the_openapi_document_describes_explain(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/score"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "explain" in schema["properties"]
    assert {p["name"] for p in operation["parameters"]} >= {"explain", "top"}
    assert "501" in operation["responses"]
    example = operation["requestBody"]["content"]["application/json"]["examples"]
    explained = example["hands-on, explained"]["value"]
    response = client.post("/score", json=explained)
    assert response.status_code == 200 and "explanations" in response.json()


@pytest.fixture(scope="module")
def saved_lgbm(lgbm, titanic_xy, tmp_path_factory):
    from titanicml.model.artifact import save_model
    from titanicml.model.predictor import example_rows

    frame, _ = titanic_xy
    lgbm.info = {"input_example": example_rows(frame[lgbm.input_columns])}
    target = tmp_path_factory.mktemp("served-explain") / "model"
    return save_model(lgbm, target, metadata={"target": "Survived"})


def test_a_real_server_explains_logs_and_captures_the_request(
    saved_lgbm, session_workspace, tmp_path
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    request_log = tmp_path / "requests.jsonl"
    command = [
        sys.executable, "-m", "titanicml", "online-endpoint", "serve", "--model", str(saved_lgbm),
        "--port", str(port), "--auth", "none", "--name", "explain-serve",
        "--request-log", str(request_log),
    ]  # fmt: skip
    env = {**os.environ, "TITANICML_HOME": str(session_workspace)}
    import httpx

    with running_server(command, f"{url}/ready", tmp_path / "server.log", env):
        body = {"dataframe_split": SPLIT, "explain": {"top": 4}}
        answer = httpx.post(f"{url}/score", json=body, headers={"x-request-id": "ex1"}).json()
        plain = httpx.post(f"{url}/score", json={"dataframe_split": SPLIT}).json()
    from titanicml import load_model

    loaded = load_model(saved_lgbm)
    check_against_the_python_api(loaded, ROWS, answer, 4)
    assert answer["predictions"] == plain["predictions"]
    assert answer["probabilities"] == plain["probabilities"]
    assert "explanations" not in plain
    lines = [json.loads(line) for line in request_log.read_text().splitlines()]
    (logged,) = [line for line in lines if line["request_id"] == "ex1"]
    assert logged["status"] == 200 and logged["explain"] == 4
    assert logged["predictions"] == answer["predictions"]
    from titanicml.monitor.store import requests_dataset

    deadline = time.monotonic() + 15
    kept: list = []
    while len(kept) < len(ROWS) and time.monotonic() < deadline:
        try:
            table = requests_dataset("explain-serve", session_workspace).to_table()
            kept = [r for r in table.to_pylist() if r["request_id"] == "ex1"]
        except Exception:
            kept = []
        time.sleep(0.2)
    assert [r["prediction"] for r in sorted(kept, key=lambda r: r["row"])] == answer["predictions"]
