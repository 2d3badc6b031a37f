"""The whole loop on the real server: serve, traffic and labels, monitor, retrain, roll out.

One endpoint (real router and instance processes on 127.0.0.1) serves a champion
trained with a holdout, monitored with ``examples/monitor.yml`` (the whole endpoint, no
deployment pinned). Undrifted traffic (rows of the training table, their true labels):
``retrain --if-alert --dry-run`` finds the monitor quiet, retrains nothing and logs no
monitoring run. Then drifted traffic (older third-class men from Queenstown, who in this new
population survive): the monitor alerts on the shifted features, ``retrain --if-alert`` trains a
challenger, the gate promotes it, and the rollout (canary, then all traffic) drops no
request of a client that keeps sending meanwhile; the endpoint then answers with the new
version, and the same monitor file still monitors it (blue, gone, was not pinned).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from test_endpoints import clean_up, must, recorded_pids

ENDPOINT = "loop-endpoint"
MODEL = "loop-model"
COLUMNS = ["Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
ROWS_PER_REQUEST = 25
EXAMPLE_MONITOR = Path(__file__).parents[1] / "examples" / "monitor.yml"


@pytest.fixture(scope="module")
def served(titanic, tmp_path_factory, session_workspace, request):
    """The champion (holdout 0.2), registered and deployed as blue with all the traffic."""
    from titanicml import Trainer
    from titanicml.data.assets import register_asset
    from titanicml.registry import register_model, set_alias

    folder = tmp_path_factory.mktemp("loop")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    titanic[COLUMNS].to_csv(folder / "titanic.csv", index=False)
    asset = register_asset("loop-titanic", folder / "titanic.csv")
    result = Trainer(
        target="Survived", time_budget=4, estimators=["lgbm"], ensemble=False, max_trials=4,
        holdout=0.2, tracking_uri=store, report=False,  # the report is not under test here
    ).fit(asset.reference)  # fmt: skip
    registered = register_model(MODEL, run_id=result.run_id, tracking_uri=store)
    set_alias(MODEL, "champion", registered.version, store)
    (folder / "endpoint.yml").write_text(f"name: {ENDPOINT}\nauth_mode: key\n")
    (folder / "deployment.yml").write_text(
        f"name: blue\nendpoint_name: {ENDPOINT}\nmodel: azureml:{MODEL}@champion\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 1\n"
    )
    seen: set = set()
    request.addfinalizer(lambda: clean_up(session_workspace, ENDPOINT, seen))
    shown = json.loads(must("online-endpoint", "create", "-f", str(folder / "endpoint.yml")))
    must(
        "online-deployment", "create", "-f", str(folder / "deployment.yml"), "--all-traffic",
        "--tracking-uri", store,
    )  # fmt: skip
    seen |= recorded_pids(session_workspace, ENDPOINT)
    keys = json.loads(must("online-endpoint", "get-credentials", "--name", ENDPOINT))
    client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {keys['primaryKey']}"})
    request.addfinalizer(client.close)
    # The example's monitor file, for this endpoint.
    monitor_file = folder / "monitor.yml"
    monitor_file.write_text(EXAMPLE_MONITOR.read_text().replace("titanic-endpoint", ENDPOINT))
    return {"url": shown["scoring_uri"], "client": client, "store": store, "folder": folder,
            "seen": seen, "home": session_workspace, "result": result,
            "monitor_file": monitor_file}  # fmt: skip


def send(served, rows: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Send the rows (without their label) in requests; return the labels file's rows."""
    labels = []
    for start in range(0, len(rows), ROWS_PER_REQUEST):
        chunk = rows.iloc[start : start + ROWS_PER_REQUEST]
        request_id = f"{prefix}-{start}"
        body = {"data": json.loads(chunk.drop(columns=["Survived"]).to_json(orient="records"))}
        answer = served["client"].post(
            served["url"], json=body, headers={"x-request-id": request_id}
        )
        assert answer.status_code == 200, answer.text
        labels += [
            {"request_id": request_id, "row": i, "Survived": int(label)}
            for i, label in enumerate(chunk["Survived"])
        ]
    return pd.DataFrame(labels)


def label(served, labels: pd.DataFrame, name: str, cli) -> None:
    path = served["folder"] / name
    labels.to_csv(path, index=False)
    out = cli("monitor", "labels", "--endpoint", ENDPOINT, "--file", path, "--id-column",
              "request_id", "--label-column", "Survived", "--row-column", "row")  # fmt: skip
    assert out.returncode == 0, out.stderr


def wait_recorded(served, rows: int) -> None:
    """Poll the production data store (written within a second) until it holds the rows."""
    import time

    from titanicml.monitor.store import scan_window

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = sum(b.num_rows for b in scan_window(ENDPOINT, columns=["row"]))
        if found >= rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"the store holds {found} rows, expected {rows}")


def drifted(n: int, seed: int) -> pd.DataFrame:
    """Third-class men of 45 to 75 from Queenstown (the champion says they die); they survive.

    They differ from the training passengers (few of whom boarded at Queenstown past 45),
    so a challenger can learn them and stay as good as the champion on the old population.
    """
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "Survived": np.ones(n, dtype=int),
            "Pclass": 3,
            "Sex": "male",
            "Age": rng.uniform(45, 75, n).round(),
            "SibSp": 0,
            "Parch": 0,
            "Fare": rng.uniform(6, 9, n).round(2),
            "Embarked": "Q",
        }
    )


class Client(threading.Thread):
    """Keeps sending one request until stopped; keeps every status and serving deployment."""

    def __init__(self, served) -> None:
        super().__init__()
        self.served, self.stop = served, threading.Event()
        self.statuses: list[int] = []
        self.deployments: set[str] = set()

    def run(self) -> None:
        body = {"data": [{"Age": 60, "Pclass": 3, "Sex": "male"}]}
        while not self.stop.is_set():
            try:
                answer = self.served["client"].post(self.served["url"], json=body)
            except httpx.HTTPError:
                self.statuses.append(-1)
                continue
            self.statuses.append(answer.status_code)
            self.deployments.add(answer.headers.get("azureml-model-deployment", "?"))


def monitoring_runs(served) -> int:
    """Runs of the endpoint's monitoring experiment (0 when it does not exist)."""
    import mlflow

    client = mlflow.tracking.MlflowClient(served["store"])
    experiment = client.get_experiment_by_name(f"monitor-{ENDPOINT}")
    return 0 if experiment is None else len(client.search_runs([experiment.experiment_id]))


def expected_counts(sent: pd.DataFrame, table: pd.DataFrame) -> dict[str, int]:
    """Labelled rows already in the table, repeated among the others, and new (pandas)."""
    seen = table.drop_duplicates()
    known = sent.merge(seen, how="left", on=COLUMNS, indicator=True)["_merge"].eq("both")
    others = sent[~known.to_numpy()]
    new = len(others.drop_duplicates())
    return {"known": int(known.sum()), "repeated": len(others) - new, "new": new}


def test_the_loop_retrains_only_on_drift_and_rolls_out_without_a_failed_request(
    served, titanic, cli
):
    from titanicml.data.assets import get_asset, list_versions
    from titanicml.data.holdout import without_rows
    from titanicml.retrain.data import MIN_RECENT_ROWS, RECENT_SHARE

    store, monitor_file, holdout = served["store"], served["monitor_file"], served["result"].holdout
    # Undrifted traffic: rows the champion trained on (not its holdout, whose values may
    # lie outside the training range), with their true labels.
    trained_on = without_rows(titanic[COLUMNS], holdout)
    quiet = trained_on.dropna(subset=["Age"]).sample(200, random_state=1)
    label(served, send(served, quiet, "quiet"), "quiet.csv", cli)
    wait_recorded(served, len(quiet))
    # The monitor (as monitor run -f) is quiet: nothing is retrained, and a dry run logs
    # no monitoring run.
    out = cli("retrain", "--if-alert", "--dry-run", "-f", monitor_file, "--tracking-uri", store)
    assert out.returncode == 0, out.stderr
    assert "did not alert; nothing retrained" in out.stdout
    assert monitoring_runs(served) == 0
    # Without --if-alert: every labelled row is one the champion trained on, nothing is new.
    out = cli("retrain", "--endpoint", ENDPOINT, "--tracking-uri", store)
    assert out.returncode == 0, out.stderr
    assert "no labelled production row the champion loop-model:1 has not seen" in out.stdout

    # Drifted traffic and its labels.
    drift = drifted(250, seed=2)
    label(served, send(served, drift, "drift"), "drift.csv", cli)
    wait_recorded(served, len(quiet) + len(drift))
    monitor = cli("monitor", "run", "-f", monitor_file, "--tracking-uri", store,
                  "--output", served["folder"] / "monitor")  # fmt: skip
    assert monitor.returncode == 1, monitor.stdout + monitor.stderr
    report = json.loads((served["folder"] / "monitor" / "monitor.json").read_text())
    alerted = {
        r["feature"] for r in report["signals"] if r["alert"] and r["signal"] == "data_drift"
    }
    assert {"Age", "Pclass", "Sex"} <= alerted
    assert monitoring_runs(served) == 1

    # What the retrain will find: each passenger once, none the champion already had.
    counts = expected_counts(pd.concat([quiet, drift], ignore_index=True), titanic[COLUMNS])
    n_recent = min(counts["new"], max(math.ceil(RECENT_SHARE * counts["new"]), MIN_RECENT_ROWS))
    n_trained = counts["new"] - n_recent
    n_gate = len(holdout) + n_recent
    # A gate smaller than asked for is refused before anything is trained.
    out = cli("retrain", "--endpoint", ENDPOINT, "--min-gate-rows", "1000",
              "--tracking-uri", store)  # fmt: skip
    assert out.returncode == 2
    assert (
        f"the gate would have {n_gate} row(s) ({len(holdout)} of the champion's holdout, "
        f"{n_recent} recent"
    ) in out.stderr
    assert "it needs at least 1000" in out.stderr
    # A dry run asking for more than the challenger can give: exit 1, nothing written.
    out = cli("retrain", "--endpoint", ENDPOINT, "--dry-run", "--min-improvement", "0.9",
              "--tracking-uri", store)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "decision: keep: " in out.stdout and "below --min-improvement 0.9" in out.stdout
    assert "rule: promote when, on all gate rows, the one-sided paired test" in out.stdout
    assert "dry run: the gate would keep the champion; nothing was written" in out.stdout
    assert cli("model", "show", f"{MODEL}:2", "--tracking-uri", store).returncode == 2
    assert [a.version for a in list_versions("loop-titanic")] == [1]

    client = Client(served)
    client.start()
    try:
        out = cli("retrain", "--if-alert", "-f", monitor_file, "--canary-seconds", "1.5",
                  "--no-report", "--tracking-uri", store, "--json")  # fmt: skip
    finally:
        client.stop.set()
        client.join(30)
    served["seen"] |= recorded_pids(served["home"], ENDPOINT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    decision = result["decision"]
    assert result["status"] == "promoted" and result["challenger"] == f"{MODEL}:2"
    assert decision["promote"] and decision["test"].startswith("mcnemar")
    assert decision["p_value"] < 0.05 and decision["lower"] > 0
    assert decision["challenger"] > decision["champion"]
    assert any(t.startswith("data_drift.Age.") for t in result["triggers"])
    assert result["monitor_run_id"] and monitoring_runs(served) == 2
    # The gate: the champion's holdout rows and the newest drifted rows, each judged too.
    assert decision["n_rows"] == n_gate
    sources = {s["source"]: s for s in decision["sources"]}
    assert sources["holdout"]["n_rows"] == len(holdout)
    assert sources["recent"]["n_rows"] == n_recent
    assert sources["holdout"]["not_worse"] and sources["recent"]["not_worse"]
    lineage = result["lineage"]
    assert lineage["production_rows_known"] == counts["known"] >= len(quiet)
    assert lineage["production_rows_repeated"] == counts["repeated"]
    assert lineage["production_rows_trained"] == n_trained
    assert "canary: green takes 10 %" in out.stderr
    # The decision is an MLflow run of the endpoint's retrain experiment.
    import mlflow

    run = mlflow.tracking.MlflowClient(store).get_run(result["run_id"])
    assert run.data.tags["titanicml.retrain.decision"] == "promote"
    assert run.data.metrics["p_value"] == pytest.approx(decision["p_value"])
    assert run.data.metrics["c"] - run.data.metrics["b"] == round(
        decision["difference"] * decision["n_rows"]
    )
    assert run.data.params["challenger"] == f"{MODEL}:2"
    assert run.data.metrics["recent_n_rows"] == n_recent
    assert run.data.tags["titanicml.retrain.rollout"] == "done"
    # No request failed during the rollout, and both deployments answered some.
    assert len(client.statuses) > 20 and set(client.statuses) == {200}
    assert client.deployments == {"blue", "green"}

    answer = served["client"].post(
        served["url"], json={"data": [{"Age": 60, "Pclass": 3, "Sex": "male"}]}
    )
    assert answer.headers["azureml-model-deployment"] == "green"
    assert answer.json()["model"] == {"name": MODEL, "version": "2"}
    shown = json.loads(cli("online-endpoint", "show", "--name", ENDPOINT).stdout)
    assert shown["traffic"] == {"green": 100}
    deployments = json.loads(cli("online-deployment", "list", "-e", ENDPOINT).stdout)
    assert [d["name"] for d in deployments] == ["green"]
    model = json.loads(cli("model", "show", f"{MODEL}@champion", "--json",
                           "--tracking-uri", store).stdout)  # fmt: skip
    assert model["version"] == 2 and "challenger" not in model["aliases"]
    asset = get_asset("loop-titanic@2")
    assert asset.n_rows == len(titanic) + n_trained
    assert "retrain of loop-titanic@1" in asset.description
    assert f"{n_trained} labelled production row(s) of endpoint {ENDPOINT}" in asset.description
    # The monitor file names the endpoint, not blue (deleted): the next run still works.
    monitor = cli("monitor", "run", "-f", monitor_file, "--tracking-uri", store, "--no-mlflow")
    assert monitor.returncode in (0, 1), monitor.stderr
    assert f"{ENDPOINT}:" in monitor.stdout and "answered no request" not in monitor.stderr
