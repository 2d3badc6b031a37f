"""The exported directory under MLflow's own programs: `mlflow models serve` and `predict`."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import free_port, running_server

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


# `mlflow models serve` runs `uvicorn` from PATH: the venv's bin must be on it.
def _env() -> dict[str, str]:
    """This process's environment (read when called: the session's workspace is set by then)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def post_json(url: str, body: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def sample_rows(titanic) -> pd.DataFrame:
    # MLflow enforces the signature's types: long columns get ints, double columns floats.
    rows = titanic.drop(columns=["Survived", "Boat", "Body"]).head(60)
    return rows


@pytest.fixture(scope="module")
def mlflow_server(saved_model, tmp_path_factory):
    port = free_port()
    env = {**_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path_factory.mktemp('s')}/m.db"}
    command = [
        MLFLOW, "models", "serve", "-m", str(saved_model), "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_server(command, f"{url}/ping", tmp_path_factory.mktemp("log") / "s.log", env):
        yield url


def test_mlflow_models_serve_answers_like_titanicml(mlflow_server, titanic_result, titanic):
    rows = sample_rows(titanic)
    split = json.loads(rows.to_json(orient="split", index=False))
    answer = post_json(f"{mlflow_server}/invocations", {"dataframe_split": split})
    served = pd.DataFrame(answer["predictions"])
    assert served["prediction"].tolist() == titanic_result.predict(rows).tolist()
    np.testing.assert_allclose(
        served[["probability_0", "probability_1"]].to_numpy(), titanic_result.predict_proba(rows)
    )


def test_mlflow_serve_takes_a_partial_record_thanks_to_optional_columns(
    mlflow_server, titanic_result
):
    row = {"Age": 22.0, "Pclass": 3, "Sex": "male"}
    answer = post_json(f"{mlflow_server}/invocations", {"dataframe_records": [row]})
    assert answer["predictions"][0]["prediction"] == titanic_result.predict(row)[0]


def test_mlflow_models_predict_scores_a_csv(saved_model, titanic_result, titanic, tmp_path):
    rows = sample_rows(titanic)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.json"
    subprocess.run(
        [
            MLFLOW,
            "models",
            "predict",
            "-m",
            str(saved_model),
            "-i",
            str(tmp_path / "rows.csv"),
            "-t",
            "csv",
            "-o",
            str(out),
            "--env-manager",
            "local",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    predicted = pd.DataFrame(json.loads(out.read_text())["predictions"])
    assert predicted["prediction"].tolist() == titanic_result.predict(rows).tolist()


def test_model_loads_where_titanicml_is_not_installed(
    saved_model, titanic_result, titanic, tmp_path
):
    """A fresh interpreter without titanicml on its path loads the bundled code copy."""
    rows = sample_rows(titanic).head(5)
    rows.to_json(tmp_path / "rows.json", orient="records")
    script = (
        "import sys, json, pandas as pd\n"
        f"sys.path = [p for p in sys.path if p not in ('', {str(Path(__file__).parents[1])!r})]\n"
        "import importlib.util\n"
        "found = importlib.util.find_spec('titanicml')\n"
        "if found is not None and 'site-packages' in found.origin: sys.exit(77)\n"
        "import mlflow.pyfunc\n"
        f"m = mlflow.pyfunc.load_model({str(saved_model)!r})\n"
        "import titanicml\n"
        f"rows = pd.read_json({str(tmp_path / 'rows.json')!r}, dtype=False)\n"
        "print(json.dumps({'origin': titanicml.__file__, "
        "'pred': m.predict(rows)['prediction'].tolist()}))\n"
    )
    isolated = tmp_path / "isolated"
    isolated.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=isolated
    )
    if out.returncode == 77:
        pytest.skip("titanicml is in site-packages here; the check needs an editable install")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["pred"] == titanic_result.predict(rows).tolist()
    assert shutil.os.path.commonpath([answer["origin"], str(saved_model)]) == str(saved_model)
