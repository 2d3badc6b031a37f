"""``titanicml monitor run`` on a store the real capture writer made, against a real model.

A small model is trained, saved and registered in a SQLite MLflow store; answers are
recorded as the endpoint records them (``CaptureWriter.add``), undrifted, or with
Age + 10 years. The monitor reads the store, logs into the same MLflow store, writes
monitor.json and monitor.html, runs --on-alert commands and exits 0 or 1.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from titanicml.capture import CaptureWriter
from titanicml.capture.records import RowSchema

EXAMPLE = Path(__file__).parents[1] / "examples" / "monitor.yml"
# max_trials ends the search early; the budget left fits the out-of-fold predictions.
FAST = {"time_budget": 30, "max_trials": 4, "exclude": ["Boat", "Body"], "track": False}


@pytest.fixture(scope="module")
def registered(tmp_path_factory, titanic):
    """A registered titanic-model:1 (with out-of-fold predictions) and its store."""
    from titanicml import Trainer
    from titanicml.registry import load_model, register_model

    folder = tmp_path_factory.mktemp("monitor-run")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    # Trained from a file: the monitor reads it again for multivariate drift.
    titanic.to_csv(folder / "titanic.csv", index=False)
    result = Trainer(target="Survived", **FAST).fit(folder / "titanic.csv")
    assert result.oof is not None, "the model needs out-of-fold predictions (CBPE, drift)"
    register_model("titanic-model", path=result.save(folder / "model"), tracking_uri=store)
    return load_model("titanic-model:1", tracking_uri=store), store


def record(
    model, endpoint: str, frame, when: float, refused: int = 0, version: str = "1"
) -> list[str]:
    """Record one answered request per row of ``frame`` (and ``refused`` 400s); return ids."""
    schema = RowSchema.of_model(model)
    writer = CaptureWriter(endpoint, "blue", schema, "titanic-model:1")
    predicted = model.predict_frame(frame)
    probabilities = predicted[[f"probability_{c}" for c in model.labels]].to_numpy().tolist()
    inputs = frame[model.input_columns].astype(object).where(frame.notna(), None)
    ids = []
    for i, row in enumerate(inputs.to_dict(orient="records")):
        ids.append(f"{endpoint}-{i}")
        writer.add({
            "time": when, "request_id": ids[-1], "model": "titanic-model", "version": version,
            "status": 200, "latency_ms": 1.0, "inputs": [row],
            "predictions": [predicted["prediction"].iloc[i].item()],
            "probabilities": [probabilities[i]],
        })  # fmt: skip
    for i in range(refused):
        writer.add(
            {"time": when, "request_id": f"{endpoint}-bad-{i}", "model": "titanic-model",
             "version": "1", "status": 400, "latency_ms": 0.3,
             "error": {"code": "BadRequest", "message": "column 'Age' must be a number"}},
            b'{"Age": "old"}',
        )  # fmt: skip
    writer.close()
    return ids


def sample(frame, rows: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    return frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)


@pytest.fixture(scope="module")
def windows(registered, titanic):
    """Endpoints ``quiet`` (undrifted) and ``older`` (Age + 10), answered a minute ago."""
    model, _ = registered
    quiet = sample(titanic)
    now = time.time() - 60
    record(model, "quiet", quiet, now, refused=3)
    record(model, "older", quiet.assign(Age=quiet["Age"] + 10), now, refused=3)
    return quiet


def drift(document: dict) -> dict[str, bool]:
    return {
        r["feature"]: r["alert"]
        for r in document["signals"]
        if r["signal"] == "data_drift" and r["status"] != "skipped"
    }


def test_quiet_exits_0_and_drifted_exits_1_with_json_html_and_mlflow(
    registered, windows, cli, tmp_path
):
    from mlflow import MlflowClient

    _, store = registered
    out = cli("monitor", "run", "-e", "quiet", "--tracking-uri", store, "-o", tmp_path / "q")
    assert out.returncode == 0, out.stderr
    assert "no alert" in out.stdout and "normalized_wasserstein_distance" in out.stdout
    quiet = json.loads((tmp_path / "q" / "monitor.json").read_text())
    assert quiet["alert"] is False and not any(drift(quiet).values())
    assert {"Age", "Sex", "Pclass", "Fare"} <= set(drift(quiet))
    refusals = [r for r in quiet["signals"] if r["metric"] == "http_4xx_rate"]
    assert [(r["feature"], r["n_production"]) for r in refusals] == [("400 BadRequest", 603)]
    assert refusals[0]["value"] == pytest.approx(3 / 603) and not refusals[0]["alert"]
    predicted = {r["feature"]: r for r in quiet["signals"] if r["signal"] == "prediction_drift"}
    assert {"prediction", "probability_1"} <= set(predicted)  # against the OOF predictions
    assert predicted["prediction"]["metric"] == "jensen_shannon_distance"
    assert not any(r["alert"] for r in predicted.values())
    estimated = [r for r in quiet["signals"] if r["signal"] == "estimated_performance"]
    assert len(estimated) == 1 and 0.5 < estimated[0]["value"] < 1  # CBPE on the OOF rows
    assert estimated[0]["lower"] <= estimated[0]["value"] <= estimated[0]["upper"]

    (quiet_joint,) = [r for r in quiet["signals"] if r["signal"] == "multivariate_drift"]
    assert quiet_joint["status"] == "ok" and quiet_joint["metric"] == "domain_classifier_auroc"
    assert not quiet_joint["alert"]

    out = cli("monitor", "run", "-e", "older", "--tracking-uri", store, "-o", tmp_path / "o")
    assert out.returncode == 1, out.stderr
    older = json.loads((tmp_path / "o" / "monitor.json").read_text())
    (joint,) = [r for r in older["signals"] if r["signal"] == "multivariate_drift"]
    # Against rows of the training table (a profile has no joint distribution).
    assert joint["status"] == "ok" and joint["value"] > quiet_joint["value"], joint
    assert "ALERT: data_drift.Age.normalized_wasserstein_distance" in out.stdout
    older = json.loads((tmp_path / "o" / "monitor.json").read_text())
    flags = drift(older)
    assert flags.pop("Age") is True and not any(flags.values())
    age = next(r for r in older["signals"] if r["feature"] == "Age" and r["signal"] == "data_drift")
    assert age["lower"] > age["threshold"] == 0.1
    assert age["name"] == "data_drift.Age.normalized_wasserstein_distance"
    assert older["window"] == "1d" and older["model"] == "titanic-model:1"

    page = (tmp_path / "o" / "monitor.html").read_bytes()
    assert len(page) < 1_000_000
    text = page.decode()
    assert "<figcaption>Age: reference vs production</figcaption>" in text
    assert text.count("<svg") == 1  # only the drifted feature has a histogram
    assert "<script" not in text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("monitor-older")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["data_drift.Age.normalized_wasserstein_distance"] == pytest.approx(age["value"])
    assert metrics["data_drift.Age.normalized_wasserstein_distance_lower"] > 0.1
    assert 0.5 < metrics["estimated_performance.all.accuracy"] < 1
    assert metrics["data_drift.Sex.jensen_shannon_distance"] < 0.1
    assert metrics["alerts"] >= 1 and metrics["rows"] == 603
    assert run.data.params["window"] == "1d" and run.data.params["reference"] == "training"
    assert run.data.params["deployment"] == "(all)"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"monitor.json", "monitor.html"}
    assert client.get_experiment_by_name("monitor-quiet") is not None


def test_on_alert_runs_the_command_with_the_findings(registered, windows, cli, tmp_path):
    _, store = registered
    copy = tmp_path / "alert.txt"
    script = (
        "import os, pathlib, shutil; "
        f"pathlib.Path({str(copy)!r}).write_text(os.environ['TITANICML_ENDPOINT'] + '\\n' + "
        "os.environ['TITANICML_MONITOR_ALERTS'] + '\\n' + "
        "pathlib.Path(os.environ['TITANICML_MONITOR_JSON']).read_text())"
    )
    command = f'"{sys.executable}" -c "{script}"'
    out = cli("monitor", "run", "-e", "older", "--tracking-uri", store, "--no-mlflow",
              "--on-alert", command)  # fmt: skip
    assert out.returncode == 1, out.stderr
    endpoint, alerts, document = copy.read_text().split("\n", 2)
    assert endpoint == "older"
    assert "data_drift.Age.normalized_wasserstein_distance" in alerts.split(",")
    assert json.loads(document)["alert"] is True

    out = cli("monitor", "run", "-e", "older", "--tracking-uri", store, "--no-mlflow",
              "--on-alert", "exit 3")  # fmt: skip
    assert out.returncode == 1
    assert "--on-alert command exited with status 3" in out.stderr

    copy.unlink()
    out = cli("monitor", "run", "-e", "quiet", "--tracking-uri", store, "--no-mlflow",
              "--on-alert", command)  # fmt: skip
    assert out.returncode == 0 and not copy.exists()  # quiet: the command does not run


def test_labels_give_the_realized_performance(registered, titanic, tmp_path):
    from titanicml.monitor.labels import add_labels
    from titanicml.monitor.run import run_monitor

    model, store = registered
    rows = sample(titanic, seed=3)
    ids = record(model, "labelled", rows, time.time() - 30)
    half = len(ids) // 2
    truth = rows["Survived"].iloc[:half]
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,Survived\n" + "".join(
        f"{i},{v}\n" for i, v in zip(ids[:half], truth, strict=True)
    ))  # fmt: skip
    add_labels("labelled", labels, label_column="Survived")
    run = run_monitor("labelled", tracking_uri=store, log_run=False)
    assert run.run_id is None and run.json_path is None
    table = run.signals.table.set_index(["signal", "metric"])
    accuracy = table.loc[("model_performance", "accuracy")]
    expected = float((model.predict(rows.iloc[:half]) == truth.to_numpy()).mean())
    assert accuracy["value"] == pytest.approx(expected)
    assert accuracy["n_production"] == half
    assert table.loc[("estimated_performance", "accuracy"), "value"] > 0.5


def test_the_previous_window_and_a_table_as_reference(registered, titanic, tmp_path):
    from titanicml.monitor.run import run_monitor

    model, store = registered
    before = sample(titanic, seed=1)
    now = time.time()
    record(model, "moving", before, now - 1.5 * 86_400)
    record(model, "moving", sample(titanic, seed=2).assign(Age=lambda f: f["Age"] + 10), now - 60)
    run = run_monitor("moving", reference="previous", tracking_uri=store, log_run=False)
    assert run.reference == "previous" and run.alert
    table = run.signals.table
    alerted = table[table["alert"] & (table["signal"] == "data_drift")]
    assert set(alerted["feature"]) == {"Age"}
    (joint,) = table[table["signal"] == "multivariate_drift"].to_dict(orient="records")
    assert joint["metric"] == "domain_classifier_auroc" and joint["alert"]
    # A data asset as reference: the undrifted previous window does not alert on drift.
    from titanicml.data.assets import register_asset

    path = tmp_path / "titanic.csv"
    titanic.to_csv(path, index=False)
    register_asset("titanic-dataset", path)
    earlier = run_monitor(
        "moving", reference="titanic-dataset@latest", end=now - 86_400, tracking_uri=store,
        log_run=False,
    )  # fmt: skip
    assert earlier.reference == "titanic-dataset@latest"
    drifted = earlier.signals.table
    assert not drifted[drifted["signal"] == "data_drift"]["alert"].any()
    assert "Survived" not in set(drifted["feature"].dropna())  # the target is no feature


SCHEDULE = """
$schema: https://azuremlschemas.azureedge.net/latest/schedule.schema.json
name: quiet-monitor
trigger: {{type: recurrence, frequency: day, interval: 1}}
create_monitor:
  monitoring_target: {{ml_task: classification, endpoint_deployment_id: "azureml:quiet:blue"}}
  monitoring_signals:
    drift:
      type: {kind}
      features: [Age, Fare, Sex]
      metric_thresholds:
        numerical: {{normalized_wasserstein_distance: {threshold}}}
        categorical: {{jensen_shannon_distance: 0.1}}
"""


def test_yaml_signals_and_thresholds(registered, windows, cli, tmp_path):
    _, store = registered
    lenient, strict, unknown = (tmp_path / f"{n}.yml" for n in ("lenient", "strict", "unknown"))
    lenient.write_text(SCHEDULE.format(kind="data_drift", threshold=0.1))
    strict.write_text(SCHEDULE.format(kind="data_drift", threshold=0.001))
    unknown.write_text(SCHEDULE.format(kind="data_drfit", threshold=0.1))
    common = ("--tracking-uri", store, "--no-mlflow")
    out = cli("monitor", "run", "-f", lenient, *common, "-o", tmp_path / "l")
    assert out.returncode == 0, out.stderr  # the endpoint and deployment come from the file
    document = json.loads((tmp_path / "l" / "monitor.json").read_text())
    assert drift(document) == {"Age": False, "Fare": False, "Sex": False}
    assert {r["signal"] for r in document["signals"]} == {"data_drift"}
    assert document["deployment"] == "blue"
    out = cli("monitor", "run", "-f", strict, *common, "-o", tmp_path / "s")
    assert out.returncode == 1
    flags = drift(json.loads((tmp_path / "s" / "monitor.json").read_text()))
    assert flags["Age"] and not flags["Sex"]  # Age's interval is above 0.001; Sex keeps 0.1
    out = cli("monitor", "run", "-f", unknown, *common)
    assert out.returncode == 2 and "unknown type 'data_drfit'" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_yaml_prediction_drift_computes_the_metrics_it_names(registered, windows, tmp_path):
    from titanicml.monitor.run import run_monitor

    _, store = registered
    spec = tmp_path / "predictions.yml"
    spec.write_text(
        SCHEDULE.replace("      features: [Age, Fare, Sex]\n", "").format(
            kind="prediction_drift", threshold=0.1
        ).replace(
            "{normalized_wasserstein_distance: 0.1}",
            "{population_stability_index: 0.2, two_sample_kolmogorov_smirnov_test: 0.1}",
        ).replace("{jensen_shannon_distance: 0.1}", "{pearsons_chi_squared_test: 0.1}")
    )  # fmt: skip
    run = run_monitor(None, spec=spec, tracking_uri=store, log_run=False)
    table = run.signals.table
    assert set(table["signal"]) == {"prediction_drift"}
    figures = set(zip(table["feature"], table["metric"], strict=True))
    assert figures == {
        ("prediction", "pearsons_chi_squared_test"),
        *((p, m) for p in ("probability_0", "probability_1")
          for m in ("population_stability_index", "two_sample_kolmogorov_smirnov_test")),
    }  # fmt: skip
    psi = table[table["metric"] == "population_stability_index"]
    assert (psi["threshold"] == 0.2).all() and psi["value"].notna().all()


def test_monitor_create_builds_a_schedule_the_sdk_loads(cli, tmp_path, monkeypatch):
    from azure.ai.ml.entities import MonitorSchedule
    from azure.ai.ml.entities._load_functions import load_schedule

    file = EXAMPLE
    out = cli("monitor", "create", "-f", file, "--target", "azure", "--dry-run",
              "-e", "titanic-endpoint", "-d", "green", "--output-dir", tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    schedule = load_schedule(tmp_path / "monitor-schedule.yml")
    assert isinstance(schedule, MonitorSchedule) and schedule.name == "titanic-endpoint-monitor"
    monitor = schedule.create_monitor
    assert monitor.monitoring_target.endpoint_deployment_id == "azureml:titanic-endpoint:green"
    assert set(monitor.monitoring_signals) == {"feature-drift", "survival-drift", "input-quality"}
    drift_signal = monitor.monitoring_signals["feature-drift"]
    assert drift_signal.metric_thresholds.numerical.normalized_wasserstein_distance == 0.1

    performance = tmp_path / "performance.yml"
    performance.write_text(
        "create_monitor:\n  monitoring_signals:\n    perf:\n      type: model_performance\n"
        "      metric_thresholds: {classification: {accuracy: 0.75}}\n"
    )
    out = cli("monitor", "create", "-f", performance, "-e", "titanic-endpoint",
              "--target", "azure", "--dry-run")  # fmt: skip
    assert out.returncode == 2 and "not a valid Azure ML monitor schedule" in out.stderr
    assert "'production_data' and 'reference_data'" in out.stderr  # the SDK's own check

    printed = cli("monitor", "create", "-f", file, "--target", "azure", "--dry-run")
    assert printed.returncode == 0 and "create_monitor:" in printed.stdout

    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    out = cli("monitor", "create", "-f", file, "--target", "azure")
    assert out.returncode == 2 and "no Azure ML workspace" in out.stderr
    out = cli("monitor", "create", "-f", file)
    assert out.returncode == 2 and "not a scheduler" in out.stderr


def test_a_window_is_sampled_with_exact_counts(registered, windows):
    from titanicml.monitor.window import parse_window, read_window

    assert [parse_window(w) for w in ("30m", "12h", "1d", "2w", "P7D", "PT1H30M")] == [
        1800,
        43_200,
        86_400,
        1_209_600,
        604_800,
        5400,
    ]
    now = time.time()
    whole = read_window("quiet", now - 3600, now)
    assert (whole.rows, whole.answered, whole.requests) == (603, 600, 603)
    assert whole.refused == {(400, "BadRequest"): 3}
    assert whole.models == {("titanic-model", "1"): 600}
    part = read_window("quiet", now - 3600, now, max_rows=200, seed=1)
    assert len(part.frame) == 200 and part.sampled and part.answered == 600
    assert part.frame["request_id"].is_unique  # drawn without replacement
    assert set(part.frame["request_id"]) < set(whole.frame["request_id"])
    assert "Age" in part.frame.columns and "input_Age" not in part.frame.columns


def test_user_errors_exit_2_with_one_line(registered, windows, cli):
    _, store = registered
    cases = {
        ("-e", "nobody"): "no production data",
        ("-e", "quiet", "--window", "1x"): "window '1x' is not a duration",
        ("-e", "quiet", "--reference", "no-such-asset@latest"): "no-such-asset",
        ("-e", "quiet", "--window", "1s"): "answered no request",
        ("-e", "folder-served"): "name it with --model PATH",
    }
    model, _ = registered
    served = sample(windows, rows=500, seed=4)  # answered by a model folder: version "local"
    record(model, "folder-served", served, time.time() - 60, version="local")
    for args, message in cases.items():
        out = cli("monitor", "run", *args, "--tracking-uri", store, "--no-mlflow")
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    out = cli("monitor", "run", "-e", "folder-served", "--model", "titanic-model:1",
              "--tracking-uri", store, "--no-mlflow")  # fmt: skip
    assert out.returncode == 0, out.stderr


def test_without_its_training_table_a_holdout_model_compares_with_its_holdout(tmp_path, titanic):
    from titanicml import Trainer, load_model
    from titanicml.model.layout import read_holdout
    from titanicml.monitor.run import run_monitor

    # Trained from a DataFrame: the table cannot be read again, its holdout rows can.
    model_dir = Trainer(target="Survived", holdout=0.2, **FAST).fit(titanic).save(tmp_path / "m")
    model = load_model(model_dir)
    rows = sample(titanic, seed=3)
    record(model, "held", rows.assign(Age=rows["Age"] + 10), time.time() - 60)
    run = run_monitor("held", model=str(model_dir), log_run=False)
    table = run.signals.table
    (joint,) = table[table["signal"] == "multivariate_drift"].to_dict(orient="records")
    assert joint["status"] == "ok" and joint["n_reference"] == len(read_holdout(model_dir))
    assert not [n for n in run.notes if n.startswith("multivariate drift")]
