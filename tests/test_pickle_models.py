"""A plain pickle (the hands-on's outputs/model.pkl) registers, serves and stays trusted.

The pickle is made as the hands-on's ``train.py`` makes it (the same pipeline on the
same file, dumped with joblib); registration goes to a real MLflow SQLite store, and
the served version answers the hands-on's request on a real server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import joblib
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from servers import free_port, running_server

from titanicml import load_model
from titanicml.exceptions import ModelError, ModelIntegrityError, UnsafePickleError
from titanicml.registry import get_model, local_model_dir, register_model, resolve_model_uri

REPO = Path(__file__).resolve().parents[1]
HANDSON_DATA = REPO / "examples" / "handson" / "data" / "titanic.csv"
FEATURES = ["Age", "Pclass", "Sex"]
HANDSON_ROW = {"Age": 22, "Pclass": 3, "Sex": "male"}
KEY = "pickle-test-key-0123456789"
NAME = "titanic-model"


def handson_pipeline(features: pd.DataFrame, target: pd.Series):
    """The hands-on's train.py pipeline, fitted as it fits it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    x_train, _, y_train, _ = train_test_split(features, target, test_size=0.2, random_state=42)
    preprocess = ColumnTransformer(
        [
            ("age", SimpleImputer(strategy="median"), ["Age"]),
            ("pclass", "passthrough", ["Pclass"]),
            ("sex", OneHotEncoder(handle_unknown="ignore"), ["Sex"]),
        ]
    )
    model = Pipeline(
        [
            ("preprocess", preprocess),
            ("classifier", RandomForestClassifier(n_estimators=20, max_depth=5, random_state=42)),
        ]
    )
    return model.fit(x_train, y_train), x_train


@pytest.fixture(scope="module")
def handson(tmp_path_factory):
    """``outputs/model.pkl`` as the hands-on writes it: (its folder, the pickle, X, train X)."""
    data = pd.read_csv(HANDSON_DATA)
    features = data[FEATURES]
    pipeline, x_train = handson_pipeline(features, data["Survived"])
    folder = tmp_path_factory.mktemp("handson")
    (folder / "outputs").mkdir()
    path = folder / "outputs" / "model.pkl"
    joblib.dump(pipeline, path)
    return folder, path, features, x_train


@pytest.fixture(scope="module")
def registered(handson, tmp_path_factory):
    """The hands-on pickle registered once in a store of its own: (store, pickle's sha256)."""
    _, path, _, _ = handson
    store = f"sqlite:///{tmp_path_factory.mktemp('pickle-registry') / 'mlflow.db'}"
    register_model(NAME, path=path, tracking_uri=store)
    return store, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> str:
    """One store for the tests that each register their own version (named by number)."""
    return f"sqlite:///{tmp_path_factory.mktemp('pickle-versions') / 'mlflow.db'}"


def _post(url: str, body: dict, key: str | None = KEY) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# -- register ---------------------------------------------------------------------------


def test_cli_register_tells_once_which_file_was_trusted(handson, cli, tmp_path):
    shutil.copytree(handson[0] / "outputs", tmp_path / "outputs")
    path = tmp_path / "outputs" / "model.pkl"
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    out = cli("model", "register", "--name", NAME, "--path", "./outputs/model.pkl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Registered model titanic-model version 1" in out.stdout
    assert out.stdout.count("loading a pickle runs code") == 1
    assert f"Trusted {path} (sha256 {sha256})" in out.stdout
    assert "Age (number), Pclass (number), Sex (string) (from feature_names_in_)" in out.stdout
    assert "changed since" not in out.stdout
    assert "Downloading artifacts" not in out.stderr and "input example" not in out.stderr
    shown = cli("model", "show", f"{NAME}@latest", "--json", cwd=tmp_path)
    version = json.loads(shown.stdout)
    assert version["tags"]["titanicml.source_sha256"] == sha256
    assert version["tags"]["titanicml.source_file"] == str(path)
    assert version["tags"]["titanicml.model_type"] == "custom_model"
    assert version["metadata"]["estimator"] == "Pipeline(ColumnTransformer, RandomForestClassifier)"
    text = cli("model", "show", NAME, cwd=tmp_path)
    assert f"pickle        {path} (sha256 {sha256})" in text.stdout
    assert "Downloading artifacts" not in text.stderr, "no progress bar of MLflow's copies"
    # az ml's spelling: --type custom_model is a pickle (or a folder holding one).
    wrong = cli("model", "register", "--name", NAME, "--path", "./outputs/model.pkl", "--type",
                "mlflow_model", cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2 and "--type custom_model" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    # The file changes (retrained, or by someone else): registering it again says so.
    data = pd.read_csv(HANDSON_DATA)
    retrained, _ = handson_pipeline(data[FEATURES].head(400), data["Survived"].head(400))
    joblib.dump(retrained, path)
    again = cli("model", "register", "--name", NAME, "--path", "outputs", "--type",
                "custom_model", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "version 2" in again.stdout, again.stderr
    assert f"changed since {NAME}:1 was registered from it (sha256 {sha256} then)" in again.stdout


def test_pyfunc_of_the_registered_version_predicts_as_the_pickle(handson, registered, monkeypatch):
    import mlflow.pyfunc

    _, path, features, _ = handson
    store, _ = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # MLflow resolves models:/ there
    uri, version = resolve_model_uri(f"{NAME}@latest", store)
    served = mlflow.pyfunc.load_model(uri).predict(features)
    original = joblib.load(path)
    np.testing.assert_array_equal(served["prediction"].to_numpy(), original.predict(features))
    np.testing.assert_allclose(
        served[["probability_0", "probability_1"]].to_numpy(), original.predict_proba(features)
    )
    model = load_model(f"{NAME}:{version}", tracking_uri=store)
    np.testing.assert_array_equal(model.predict(features), original.predict(features))
    # The signature from feature_names_in_: text categories say Sex is text; a median
    # imputer and a passthrough say a number of a dtype the estimator does not tell:
    # "any", so that MLflow passes the int64 Pclass and the float64 Age above as they are.
    from mlflow.models import Model

    root = local_model_dir(f"{NAME}:{version}", store)
    inputs = {s["name"]: s["type"] for s in Model.load(root).signature.inputs.to_dict()}
    assert inputs == {"Age": "any", "Pclass": "any", "Sex": "string"}


def test_registered_pickle_serves_the_handson_request_in_every_dialect(
    handson, registered, tmp_path
):
    _, path, _, _ = handson
    store, _ = registered
    original = joblib.load(path)
    port = free_port()
    command = [sys.executable, "-m", "titanicml", "online-endpoint", "serve", "--model",
               f"{NAME}@latest", "--port", str(port), "--key", KEY, "--tracking-uri", store,
               "--request-log", str(tmp_path / "requests.jsonl")]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_server(command, f"{url}/ready", tmp_path / "server.log"):
        status, answer = _post(f"{url}/score", {"data": [HANDSON_ROW]})
        assert status == 200, answer
        expected = pd.DataFrame([HANDSON_ROW])
        assert answer["predictions"] == original.predict(expected).tolist()
        np.testing.assert_allclose(answer["probabilities"], original.predict_proba(expected))
        assert answer["classes"] == [0, 1] and answer["model"]["name"] == NAME
        values = [HANDSON_ROW[c] for c in FEATURES]
        bodies = [
            {"input_data": {"columns": FEATURES, "index": [0], "data": [values]}},
            {"dataframe_split": {"columns": FEATURES, "data": [values]}},
            {"dataframe_records": [HANDSON_ROW]},
            {"instances": [HANDSON_ROW]},
            {"inputs": {c: [HANDSON_ROW[c]] for c in FEATURES}},
        ]
        for body in bodies:
            status, other = _post(f"{url}/invocations", body)
            assert status == 200, (body, other)
            assert other["predictions"] == answer["predictions"]
            assert other["probabilities"] == answer["probabilities"]
        status, refused = _post(f"{url}/score", {"data": [{**HANDSON_ROW, "Boat": "5"}]})
        assert status == 400 and "unknown column(s) 'Boat'" in refused["error"]["message"]
        status, refused = _post(f"{url}/score", {"data": [{**HANDSON_ROW, "Age": "old"}]})
        assert status == 400 and "'Age' must be a number" in refused["error"]["message"]
        status, _ = _post(f"{url}/score", {"data": [HANDSON_ROW]}, key=None)
        assert status == 401


def test_signature_from_the_sample_input_when_the_estimator_records_no_columns(
    handson, shared_store, tmp_path
):
    _, _, features, x_train = handson
    data = pd.read_csv(HANDSON_DATA)
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    bare = Pipeline(
        [
            ("preprocess", ColumnTransformer(
                [("age", SimpleImputer(strategy="median"), [0]), ("pclass", "passthrough", [1]),
                 ("sex", OneHotEncoder(handle_unknown="ignore"), [2])])),
            ("classifier", RandomForestClassifier(n_estimators=10, random_state=0)),
        ]
    ).fit(x_train.to_numpy(dtype=object), data.loc[x_train.index, "Survived"])  # fmt: skip
    # Fitted on an array, by column positions: no feature_names_in_.
    assert not hasattr(bare, "feature_names_in_")
    path = tmp_path / "bare.pkl"
    joblib.dump(bare, path)
    with pytest.raises(ModelError, match="--sample-input FILE"):
        register_model(NAME, path=path, tracking_uri=shared_store)
    sample = tmp_path / "rows.csv"
    features.head(20).to_csv(sample, index=False)
    model = register_model(NAME, path=path, tracking_uri=shared_store, sample_input=sample)
    assert model.tags["titanicml.signature_from"] == f"--sample-input {sample}"
    loaded = load_model(model.reference, tracking_uri=shared_store)
    types = {c.name: (c.dtype, c.source_dtype) for c in loaded.plan.inputs}
    assert types == {"Age": ("number", "float64"), "Pclass": ("integer", "int64"),
                     "Sex": ("string", "str")}  # fmt: skip
    assert loaded.info["input_example"][0].keys() == set(FEATURES)
    row = features.head(3)
    np.testing.assert_array_equal(loaded.predict(row), bare.predict(row.to_numpy(dtype=object)))


def test_signature_from_a_json_sample(handson, shared_store, tmp_path):
    from mlflow.models import Model

    _, path, _, _ = handson
    sample = tmp_path / "request.json"
    sample.write_text(json.dumps({"data": [{"Age": 22.5, "Pclass": 3, "Sex": "male",
                                            "Survived": 0}]}))  # fmt: skip
    model = register_model(NAME, path=path, tracking_uri=shared_store, sample_input=sample)
    root = local_model_dir(model.reference, shared_store)
    inputs = {s["name"]: s["type"] for s in Model.load(root).signature.inputs.to_dict()}
    assert inputs == {"Age": "double", "Pclass": "long", "Sex": "string"}, "target left out"


def test_signature_from_the_job_run_that_holds_the_file(handson, shared_store):
    import mlflow
    import mlflow.data

    _, path, _, x_train = handson
    client = MlflowClient(shared_store)
    job = client.create_run(client.create_experiment("titanic-demo"))
    # What a command job leaves in its run: mlflow.autolog's dataset input, and the
    # script's ./outputs as the run's outputs/ artifacts.
    mlflow.set_tracking_uri(shared_store)
    try:
        with mlflow.start_run(run_id=job.info.run_id):
            mlflow.log_input(mlflow.data.from_pandas(x_train), context="train")
            mlflow.log_artifact(str(path), "outputs")
    finally:
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    model = register_model(NAME, path=path, tracking_uri=shared_store)
    assert model.tags["titanicml.source_run"] == job.info.run_id
    assert model.tags["titanicml.signature_from"] == f"the input data of run {job.info.run_id}"
    loaded = load_model(model.reference, tracking_uri=shared_store)
    assert {c.name: c.source_dtype for c in loaded.plan.inputs} == {
        "Age": "float64", "Pclass": "int64", "Sex": "str"}  # fmt: skip


# -- trust ------------------------------------------------------------------------------


def test_a_file_changed_after_registration_is_refused(handson, shared_store, tmp_path, monkeypatch):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    _, path, _, _ = handson
    model = register_model(NAME, path=path, tracking_uri=shared_store)
    artifacts = Path(
        urlparse(MlflowClient(shared_store).get_run(model.run_id).info.artifact_uri).path
    )
    # Someone who can write the shared_store swaps the wrapped pickle for one that runs code.
    marker = tmp_path / "ran"
    payload = Payload(f"open({str(marker)!r}, 'w').write('x')")
    (artifacts / "model" / "artifacts" / "model.joblib").write_bytes(pickle.dumps(payload))
    with pytest.raises(ModelIntegrityError, match=r"changed: artifacts/model\.joblib"):
        load_model(model.reference, tracking_uri=shared_store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_store)
    # MLflow runs the model's entry file, whose check refuses it (MLflow re-raises it).
    with pytest.raises(MlflowException, match=r"does not match its manifest \(changed"):
        mlflow.pyfunc.load_model(f"models:/{NAME}/{model.version}")
    assert not marker.exists()


class Payload:
    """Unpickled, it runs ``exec(code)``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path, store, cli):
    marker = tmp_path / "ran"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload(f"open({str(marker)!r}, 'w').write('x')")))
    out = cli("model", "register", "--name", NAME, "--path", path, "--tracking-uri", store)
    assert out.returncode == 2
    assert "refers to builtins.exec" in out.stderr and "nothing of it was run" in out.stderr
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        register_model(NAME, path=path, tracking_uri=store)
    assert not marker.exists()


# -- mistakes ---------------------------------------------------------------------------


def _truncated(path: Path, handson) -> None:
    data = handson[1].read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p, h: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p, h: joblib.dump({"weights": [1, 2]}, p), "holds a dict, not a scikit-learn"),
        (_truncated, "is a damaged pickle"),
        (lambda p, h: p.write_text("Age,Sex\n22,male\n"), "is not a pickle"),
        (lambda p, h: joblib.dump(h[3], p, compress=3), "compressed joblib file"),
    ],
    ids=["empty", "not-an-estimator", "truncated", "text", "compressed"],
)
def test_bad_pickles_are_one_line_errors(write, message, handson, tmp_path, store, cli):
    path = tmp_path / "model.pkl"
    write(path, handson)
    out = cli("model", "register", "--name", NAME, "--path", path, "--tracking-uri", store)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_a_pickle_given_as_a_model_path_says_how_to_register_it(handson, cli, tmp_path):
    from titanicml.serve.server import load_for_serving

    _, path, _, _ = handson
    hint = f"titanicml model register --name NAME --path {path}"
    for call in (lambda: load_model(path), lambda: load_model(str(path)),
                 lambda: load_for_serving(str(path))):  # fmt: skip
        with pytest.raises(ModelError, match="is a pickle file") as info:
            call()
        assert hint in str(info.value) and "no model directory" not in str(info.value)
    out = cli("model", "verify", "--model", path)
    assert out.returncode == 2 and "is a pickle file" in out.stderr and hint in out.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelError, match="is a file, not a model directory"):
        load_model(text)


def test_get_model_reads_a_registered_pickles_facts(registered):
    store, sha256 = registered
    model = get_model(f"{NAME}@latest", store)
    assert model.metadata["source_sha256"] == sha256
    assert model.metadata["model_type"] == "custom_model" and model.metadata["task"] == "binary"
