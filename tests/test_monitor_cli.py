"""``titanicml monitor labels`` and ``monitor status`` on a store the real writer made.

Also the store's retention (whole old partitions only) and the bounded-memory read
of a time window.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest

from titanicml.capture import CaptureSettings, CaptureWriter
from titanicml.capture.layout import endpoint_dir, hour_of
from titanicml.capture.records import RowSchema
from titanicml.monitor.store import requests_dataset

SCHEMA = RowSchema(inputs=(("Age", "number"), ("Sex", "string")), labels=(0, 1))


def answer(request_id: str, when: float, rows: int = 1) -> dict:
    inputs = [{"Age": 20.0 + i, "Sex": "male"} for i in range(rows)]
    return {
        "time": when, "request_id": request_id, "model": "titanic-model", "version": "1",
        "status": 200, "latency_ms": 0.5, "inputs": inputs, "predictions": [0] * rows,
        "probabilities": [[0.8, 0.2]] * rows,
    }  # fmt: skip


def record(home, endpoint: str, answers: list[dict], **settings) -> None:
    writer = CaptureWriter(
        endpoint, "blue", SCHEMA, "titanic-model:1", CaptureSettings(**settings), home
    )
    for entry in answers:
        writer.add(entry)
    writer.close()


@pytest.fixture
def recorded(tmp_path):
    now = time.time()
    answers = [answer(f"r{i}", now) for i in range(9)] + [answer("r9", now, rows=3)]
    record(tmp_path, "labelled", answers)
    return tmp_path


def test_labels_join_by_id_and_unknown_ids_are_reported(recorded, cli, tmp_path):
    labels = pd.DataFrame(
        {"request_id": ["r0", "r1", "r2", "r3", "r4", "ghost-1", "ghost-2"], "Survived": [1] * 7}
    )
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = cli("monitor", "labels", "--endpoint", "labelled", "--file", tmp_path / "labels.csv",
              "--id-column", "request_id", "--label-column", "Survived",
              "--workspace", recorded)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "added 7 label(s): 5 joined to recorded requests, 2 unknown" in out.stdout
    assert "ghost-1" in out.stderr and "2 label(s) name no recorded request" in out.stderr

    rows = pd.DataFrame({"id": ["r9", "r9"], "row": [1, 7], "truth": [0, 1]})
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = cli(
        "monitor", "labels", "-e", "labelled", "-f", tmp_path / "rows.csv", "--id-column", "id",
        "--label-column", "truth", "--row-column", "row", "--workspace", recorded,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "1 joined to recorded requests, 1 unknown" in out.stdout

    status = json.loads(
        cli("monitor", "status", "--endpoint", "labelled", "--json", "--workspace", recorded).stdout
    )
    assert status["rows"] == 12 and status["labels"] == 9
    assert status["labelled_rows"] == 6
    assert status["labelled_share"] == pytest.approx(6 / 12)
    text = cli("monitor", "status", "--endpoint", "labelled", "--workspace", recorded).stdout
    assert "12 rows" in text and "labelled rows: 6 (50.0%)" in text
    assert "deployment blue: 12 rows, 1 partition(s), kept until removed, sampling rate 1" in text


def test_bad_label_files_exit_2_and_name_the_problem(recorded, cli, tmp_path):
    pd.DataFrame({"request_id": ["r0"], "label": [1]}).to_csv(tmp_path / "l.csv", index=False)
    out = cli("monitor", "labels", "-e", "labelled", "-f", tmp_path / "l.csv",
              "--label-column", "Survived", "--workspace", recorded)  # fmt: skip
    assert out.returncode == 2 and "'Survived'" in out.stderr and "--label-column" in out.stderr
    assert "Traceback" not in out.stderr
    (tmp_path / "empty.csv").write_text("")
    out = cli("monitor", "labels", "-e", "labelled", "-f", tmp_path / "empty.csv",
              "--label-column", "label", "--workspace", recorded)  # fmt: skip
    assert out.returncode == 2 and "empty" in out.stderr
    (tmp_path / "header.csv").write_text("request_id,label\n")
    out = cli("monitor", "labels", "-e", "labelled", "-f", tmp_path / "header.csv",
              "--label-column", "label", "--workspace", recorded)  # fmt: skip
    assert out.returncode == 2 and "no data rows" in out.stderr
    out = cli("monitor", "status", "-e", "nobody", "--workspace", recorded)
    assert out.returncode == 2 and "no production data" in out.stderr
    assert not list((recorded / "production").glob("labels/*/part-*"))  # nothing half-added


def test_retention_removes_old_partitions_only(tmp_path, cli):
    now = time.time()
    old, recent = now - 3 * 86_400, now - 3600
    record(tmp_path, "kept", [answer("old", old), answer("recent", recent), answer("now", now)])
    folder = endpoint_dir("kept", tmp_path) / "deployment=blue"
    assert {p.name for p in folder.glob("hour=*")} == {
        f"hour={hour_of(t)}" for t in (old, recent, now)
    }
    record(tmp_path, "kept", [answer("later", now)], retention_days=1)
    assert {p.name for p in folder.glob("hour=*")} == {f"hour={hour_of(t)}" for t in (recent, now)}
    ids = requests_dataset("kept", tmp_path).to_table(columns=["request_id"]).column(0)
    assert sorted(ids.to_pylist()) == ["later", "now", "recent"]
    text = cli("monitor", "status", "-e", "kept", "--workspace", tmp_path).stdout
    assert "retention 1 days" in text and "2 hour partition(s)" in text


def test_a_window_is_read_in_bounded_batches_from_its_hours_only(tmp_path):
    writer = CaptureWriter("big", "blue", SCHEMA, "titanic-model:1", workspace=tmp_path)
    start = (time.time() // 3600 - 5) * 3600
    rows = 10_000
    frame = pd.DataFrame({"Age": [float(i % 80) for i in range(rows)], "Sex": ["female"] * rows})
    predictions = pd.DataFrame(
        {"prediction": [1] * rows, "probability_0": [0.3] * rows, "probability_1": [0.7] * rows}
    )
    for hour in range(3):
        for part in range(4):
            when = start + hour * 3600 + part * 60
            table = SCHEMA.batch_table(frame, predictions, f"job-{hour}", part * rows,
                                       ("titanic-model", "1"), when)  # fmt: skip
            writer.write_now(table)
    writer.close()
    window = (start + 3600, start + 3 * 3600)
    dataset = requests_dataset("big", tmp_path, start=window[0], end=window[1] - 1)
    assert len(dataset.files) == 8  # the first hour's files are not opened
    whole = dataset.to_table().nbytes
    # Arrow's allocation counter is process-wide: measure in a process of its own, where
    # no other test's buffers or threads count.
    scan = f"""
import json, pyarrow as pa
from titanicml.monitor.store import scan_window
peak, seen, batches, largest = 0, 0, 0, 0
base = pa.total_allocated_bytes()
for batch in scan_window("big", {window[0]!r}, {window[1]!r}, workspace={str(tmp_path)!r},
                         batch_rows=4096):
    seen += batch.num_rows
    batches += 1
    largest = max(largest, batch.num_rows)
    peak = max(peak, pa.total_allocated_bytes() - base)
print(json.dumps([peak, seen, batches, largest]))
"""
    done = subprocess.run([sys.executable, "-c", scan], capture_output=True, text=True, check=True)
    peak, seen, batches, largest = json.loads(done.stdout)
    assert largest <= 4096
    assert seen == 2 * 4 * rows and batches >= seen / 4096
    assert peak < whole / 2, (peak, whole)
