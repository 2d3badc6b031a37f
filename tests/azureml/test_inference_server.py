"""An exported model served by Azure ML's inference server (azmlinfsrv), as Azure runs it.

Run by ``nox -s azureml``: its environment is the model's pinned
``requirements.txt`` plus ``azureml-inference-server-http`` (the pip list of the
model's ``azure/conda.yml``), without titanicml, so ``score.py`` must import the
copy of titanicml inside the model. ``TITANICML_AZUREML_MODEL`` names the model
directory the session exported. Anywhere else the module is skipped.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from servers import free_port

pytest.importorskip("azureml_inference_server_http")
if importlib.util.find_spec("titanicml") is not None:
    pytest.skip(
        "titanicml is importable here; this test runs where it is not, as on Azure: nox -s azureml",
        allow_module_level=True,
    )
if not os.environ.get("TITANICML_AZUREML_MODEL"):
    pytest.skip("TITANICML_AZUREML_MODEL is not set: run nox -s azureml", allow_module_level=True)

HANDS_ON = {"data": [{"Age": 22, "Pclass": 3, "Sex": "male"}]}
INPUT_DATA = {
    "input_data": {
        "columns": ["Age", "Pclass", "Sex"],
        "index": [0, 1, 2],
        "data": [[22, 3, "male"], [30, 1, "female"], [4, 2, "female"]],
    }
}
STARTUP_SECONDS = 180
# azmlinfsrv's own entry point, bound to the loopback interface: the console
# script always binds 0.0.0.0 (its DEFAULT_HOST), which a test has no need for.
LAUNCHER = """
import sys
from azureml_inference_server_http import amlserver
amlserver.DEFAULT_HOST = "127.0.0.1"
sys.argv[0] = "azmlinfsrv"
sys.exit(amlserver.run())
"""


@pytest.fixture(scope="module")
def model_dir() -> Path:
    root = Path(os.environ["TITANICML_AZUREML_MODEL"]).resolve()
    assert (root / "MLmodel").is_file() and (root / "score.py").is_file(), root
    return root


def _deployment_environment(model_dir: Path) -> dict[str, str]:
    """What Azure sets from the deployment YAML: the key the model is signed with."""
    deployment = yaml.safe_load((model_dir / "azure" / "online-deployment.yml").read_text())
    return deployment["environment_variables"]


@pytest.fixture(scope="module")
def bundled_model(model_dir):
    """The model loaded with its own copy of titanicml, the code the server runs."""
    code = str(model_dir / "code")
    sys.path.insert(0, code)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _deployment_environment(model_dir).items():
            patch.setenv(name, value)
        try:
            import titanicml
            from titanicml.registry import load_model

            assert Path(titanicml.__file__).is_relative_to(model_dir / "code")
            yield load_model(model_dir)
        finally:
            sys.path.remove(code)


@pytest.fixture(scope="module")
def mount(model_dir, tmp_path_factory) -> Path:
    """AZUREML_MODEL_DIR as Azure lays it out: .../azureml-models/<name>/<version>/<folder>."""
    root = tmp_path_factory.mktemp("azureml-app") / "azureml-models" / "titanic" / "3"
    shutil.copytree(model_dir, root / model_dir.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(model_dir, mount, tmp_path_factory):
    """Start azmlinfsrv on score.py (the code folder's copy) and the mounted model."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("azmlinfsrv")
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("AZUREML_MODEL_NAME", None)
    env.pop("AZUREML_MODEL_VERSION", None)
    env.update(_deployment_environment(model_dir))
    command = [
        sys.executable,
        "-c",
        LAUNCHER,
        "--entry_script",
        str(model_dir / "score.py"),
        "--model_dir",
        str(mount),
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"azmlinfsrv exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                status, _ = _get(base + "/")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"azmlinfsrv did not answer in {STARTUP_SECONDS}s:\n{log_path.read_text()}"
                )
            time.sleep(0.25)
        yield base, log_path
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Stop gunicorn's master and workers (their own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _check(answer: dict, records: list[dict], model) -> None:
    expected = model.score_records(records)
    assert answer["predictions"] == expected.labels
    assert len(answer["probabilities"]) == len(records)
    for got, want in zip(answer["probabilities"], expected.probabilities.tolist(), strict=True):
        assert got == pytest.approx(want, abs=1e-12)
    assert answer["classes"] == model.labels


def test_liveness_and_score_py_loaded_the_bundled_titanicml(server):
    base, log_path = server
    assert _get(base + "/") == (200, b"Healthy")
    log = log_path.read_text()
    assert "titanicml imported from the model's code folder" in log, log


def test_hands_on_body(server, bundled_model):
    status, answer = _post(server[0] + "/score", json.dumps(HANDS_ON).encode())
    assert status == 200, answer
    _check(answer, HANDS_ON["data"], bundled_model)
    # The registered model's name and version, from Azure's mount layout.
    assert answer["model"] == {"name": "titanic", "version": "3"}


def test_azure_input_data_body(server, bundled_model):
    status, answer = _post(server[0] + "/score", json.dumps(INPUT_DATA).encode())
    assert status == 200, answer
    split = INPUT_DATA["input_data"]
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    _check(answer, records, bundled_model)


def test_csv_body(server, bundled_model):
    body = b"Age,Pclass,Sex\n22,3,male\n30,1,female\n"
    status, answer = _post(server[0] + "/score", body, content_type="text/csv")
    assert status == 200, answer
    records = [{"Age": "22", "Pclass": "3", "Sex": "male"}, {"Age": "30", "Pclass": "1"}]
    records[1]["Sex"] = "female"
    _check(answer, records, bundled_model)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"rows": []}', "exactly one of the keys"),
        (b'{"data": [{"Deck": "C"}]}', "unknown column"),
    ],
)
def test_bad_body_is_a_4xx_with_an_error_body(server, body, message):
    status, answer = _post(server[0] + "/score", body)
    assert 400 <= status < 500, (status, answer)
    assert answer["error"]["code"] == "BadRequest"
    assert message in answer["error"]["message"]
