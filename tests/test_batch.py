import csv
import gc
import io
import math
import weakref

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from titanicml.batch import BatchProgress, BatchSummary, score_file
from titanicml.exceptions import ColumnError, ConfigError, DataFormatError

N_ROWS = 1309  # rows of the embedded Titanic data
PREDICTIONS = ["prediction", "probability_0", "probability_1"]


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _assert_same_predictions(out: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    for column in PREDICTIONS[1:]:
        # CSV text keeps float32 probabilities to their shortest round-trip digits.
        np.testing.assert_allclose(out[column], expected[column], rtol=1e-6, atol=1e-7)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def expected(titanic_result, titanic) -> pd.DataFrame:
    return titanic_result.model.predict_frame(titanic)


@pytest.mark.parametrize("source", [".csv", ".parquet"])
@pytest.mark.parametrize("target", [".csv", ".parquet"])
def test_predictions_match_predict_frame_and_rows_are_keyed(
    source, target, titanic_result, titanic, expected, tmp_path
):
    data = _write(titanic, tmp_path / f"in{source}")
    # 500 does not divide 1309: three chunks, the last one short.
    summary = score_file(titanic_result.model, data, tmp_path / f"out{target}", chunk_size=500)
    assert (summary.rows, summary.files) == (N_ROWS, 1)
    assert summary.output == tmp_path / f"out{target}"
    assert summary.seconds > 0 and summary.warnings == ()
    out = _read(summary.output)
    assert list(out.columns) == ["row", *PREDICTIONS]
    assert out["row"].tolist() == list(range(N_ROWS))
    _assert_same_predictions(out, expected)
    assert _leftovers(tmp_path) == []


def test_parquet_output_has_one_row_group_per_chunk(titanic_result, titanic, tmp_path):
    data = _write(titanic, tmp_path / "in.parquet")
    out = score_file(titanic_result.model, data, tmp_path / "out.parquet", chunk_size=300).output
    sizes = [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(5)]
    assert sizes == [300, 300, 300, 300, 109]


def test_model_reference_and_training_result_are_accepted(
    saved_model, titanic_result, titanic, expected, tmp_path
):
    data = _write(titanic, tmp_path / "in.parquet")
    by_path = score_file(str(saved_model), data, tmp_path / "a.parquet")
    by_result = score_file(titanic_result, data, tmp_path / "b.parquet")
    _assert_same_predictions(_read(by_path.output), expected)
    pd.testing.assert_frame_equal(_read(by_path.output), _read(by_result.output))


def test_folder_input_is_scored_file_by_file(titanic_result, titanic, expected, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _write(titanic.iloc[:500], folder / "a.csv")
    _write(titanic.iloc[500:1000], folder / "b.parquet")
    _write(titanic.iloc[1000:], folder / "c.csv")
    (folder / "notes.txt").write_text("not data")
    _write(titanic.iloc[:10], folder / ".hidden.csv")
    (folder / "sub").mkdir()
    _write(titanic.iloc[:10], folder / "sub" / "d.csv")

    seen = []
    summary = score_file(
        titanic_result.model,
        folder,
        tmp_path / "out.parquet",
        chunk_size=300,
        on_progress=seen.append,
    )
    assert (summary.rows, summary.files) == (N_ROWS, 3)
    out = _read(summary.output)
    assert list(out.columns) == ["row", "file", *PREDICTIONS]
    assert out["file"].value_counts().to_dict() == {"a.csv": 500, "b.parquet": 500, "c.csv": 309}
    assert out["row"].tolist() == [*range(500), *range(500), *range(309)]
    _assert_same_predictions(out, expected)
    assert [p.file.name for p in seen][:2] == ["a.csv", "a.csv"]
    assert [p.rows for p in seen] == [300, 500, 800, 1000, 1300, 1309]
    assert {(p.file_number, p.files) for p in seen} == {(1, 3), (2, 3), (3, 3)}


def test_progress_reports_rows_and_known_totals(titanic_result, titanic, tmp_path):
    parquet = _write(titanic, tmp_path / "in.parquet")
    csv = _write(titanic, tmp_path / "in.csv")
    seen: list[BatchProgress] = []
    score_file(titanic_result.model, parquet, tmp_path / "a.csv", 400, on_progress=seen.append)
    assert [p.rows for p in seen] == [400, 800, 1200, 1309]
    assert {p.total_rows for p in seen} == {N_ROWS}
    assert all(p.elapsed >= 0 and p.rows_per_second >= 0 for p in seen)
    seen.clear()
    score_file(titanic_result.model, csv, tmp_path / "b.csv", 400, on_progress=seen.append)
    assert {p.total_rows for p in seen} == {None}
    assert seen[-1].rows == N_ROWS


@pytest.mark.parametrize("source", [".csv", ".parquet"])
@pytest.mark.parametrize("target", [".csv", ".parquet"])
def test_id_column_is_copied_beside_the_row_keys(
    source, target, titanic_result, titanic, expected, tmp_path
):
    ids = [f"P{i:05d}" for i in range(N_ROWS)]
    data = _write(titanic.assign(PassengerId=ids), tmp_path / f"in{source}")
    out = _read(
        score_file(
            titanic_result.model,
            data,
            tmp_path / f"out{target}",
            chunk_size=500,
            id_column="PassengerId",
        ).output
    )
    assert list(out.columns) == ["row", "PassengerId", *PREDICTIONS]
    assert out["PassengerId"].tolist() == ids
    _assert_same_predictions(out, expected)


def test_csv_ids_are_copied_as_written(titanic_result, titanic, tmp_path):
    # Read as text: leading zeros survive, and a chunk of missing ids is not a float column.
    ids = [f"{i:04d}" for i in range(N_ROWS)]
    ids[600:700] = [""] * 100
    data = _write(titanic.assign(key=ids), tmp_path / "in.csv")
    out = score_file(
        titanic_result.model, data, tmp_path / "out.parquet", chunk_size=100, id_column="key"
    ).output
    got = pd.read_parquet(out)["key"]
    assert got.iloc[0] == "0000" and got.iloc[1308] == "1308"
    assert got.iloc[600:700].isna().all()


def test_text_columns_keep_their_text_in_every_chunk(titanic_result, titanic, expected, tmp_path):
    # Sorted by Ticket, the first chunks hold only number-like tickets (and a few
    # missing ones): read per chunk with type inference, "24160" would become 24160.0.
    order = titanic["Ticket"].str.isdigit().sort_values(ascending=False, kind="stable").index
    frame = titanic.loc[order].reset_index(drop=True)
    frame.loc[3, "Ticket"] = np.nan
    data = _write(frame, tmp_path / "in.csv")
    out = _read(score_file(titanic_result.model, data, tmp_path / "o.csv", chunk_size=50).output)
    _assert_same_predictions(out, titanic_result.model.predict_frame(frame))


@pytest.mark.parametrize("interruption", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failure_mid_way_leaves_no_output_and_no_temporary_file(
    interruption, titanic_result, titanic, tmp_path, monkeypatch
):
    model = titanic_result.model
    original = model.predict_frame
    calls = []

    def failing(rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise interruption
        return original(rows)

    monkeypatch.setattr(model, "predict_frame", failing)
    data = _write(titanic, tmp_path / "in.csv")
    for target in ("out.csv", "out.parquet"):
        calls.clear()
        with pytest.raises(type(interruption)):
            score_file(model, data, tmp_path / target, chunk_size=300)
        assert calls == [300, 300, 300]
        assert not (tmp_path / target).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_failed_overwrite_keeps_the_previous_output(titanic_result, titanic, tmp_path, monkeypatch):
    data = _write(titanic, tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    model = titanic_result.model
    original, calls = model.predict_frame, []

    def failing(rows):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(rows)

    monkeypatch.setattr(model, "predict_frame", failing)
    with pytest.raises(RuntimeError):
        score_file(model, data, target, chunk_size=500, overwrite=True)
    assert target.read_text() == "previous\n"
    assert _leftovers(tmp_path) == []


def test_existing_output_is_refused_unless_overwrite(titanic_result, titanic, tmp_path):
    data = _write(titanic, tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    with pytest.raises(ConfigError, match="already exists"):
        score_file(titanic_result.model, data, target)
    assert target.read_text() == "previous\n"
    score_file(titanic_result.model, data, target, overwrite=True)
    assert len(pd.read_csv(target)) == N_ROWS


def test_at_most_one_chunk_is_alive_and_the_reader_is_chunked(
    titanic_result, titanic, tmp_path, monkeypatch
):
    """Flat memory, shown structurally: chunked reads, and no chunk outlives its turn."""
    import pyarrow.parquet

    model = titanic_result.model
    original = model.predict_frame
    sizes, previous = [], []

    def spy(rows):
        gc.collect()
        assert all(ref() is None for ref in previous), "an earlier chunk is still alive"
        previous.append(weakref.ref(rows))
        sizes.append(len(rows))
        return original(rows)

    monkeypatch.setattr(model, "predict_frame", spy)
    read_csv_calls, batch_sizes = [], []
    real_read_csv, real_iter_batches = pd.read_csv, pyarrow.parquet.ParquetFile.iter_batches

    def read_csv(*args, **kwargs):
        read_csv_calls.append(kwargs)
        return real_read_csv(*args, **kwargs)

    def iter_batches(self, *args, **kwargs):
        batch_sizes.append(kwargs.get("batch_size"))
        return real_iter_batches(self, *args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", read_csv)
    monkeypatch.setattr(pyarrow.parquet.ParquetFile, "iter_batches", iter_batches)

    for source in (".csv", ".parquet"):
        sizes.clear()
        previous.clear()
        data = _write(titanic, tmp_path / f"in{source}")
        score_file(model, data, tmp_path / f"out{source}", chunk_size=200)
        assert max(sizes) == 200 and sum(sizes) == N_ROWS
        assert len(sizes) == math.ceil(N_ROWS / 200)
    assert [c["chunksize"] for c in read_csv_calls] == [200]
    assert batch_sizes == [200]


def test_absent_model_columns_are_imputed_with_a_warning(titanic_result, titanic, tmp_path):
    data = _write(titanic.drop(columns=["Age", "Cabin"]), tmp_path / "in.csv")
    summary = score_file(titanic_result.model, data, tmp_path / "out.csv")
    assert summary.rows == N_ROWS
    assert len(summary.warnings) == 1
    assert "'Age'" in summary.warnings[0] and "'Cabin'" in summary.warnings[0]


def _bad_value_at_row_700(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"Age": object})
    frame.loc[700, "Age"] = "old"
    return frame


@pytest.mark.parametrize("source", [".csv", ".parquet"])
def test_a_chunk_that_does_not_fit_names_the_column_and_rows(
    source, titanic_result, titanic, tmp_path
):
    frame = _bad_value_at_row_700(titanic)
    if source == ".parquet":
        frame["Age"] = frame["Age"].astype(str)
    data = _write(frame, tmp_path / f"in{source}")
    with pytest.raises(ColumnError) as error:
        score_file(titanic_result.model, data, tmp_path / "out.parquet", chunk_size=500)
    message = str(error.value)
    assert "'Age'" in message and "'old'" in message
    assert f"in{source}, rows 500-999" in message
    assert not (tmp_path / "out.parquet").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "setup, kwargs, error, message",
    [
        (None, {"input_path": "missing.csv"}, DataFormatError, "no such file or folder"),
        ("notes.txt", {"input_path": "notes.txt"}, DataFormatError, "unsupported input file"),
        ("empty.csv", {"input_path": "empty.csv"}, DataFormatError, "is empty"),
        ("header.csv", {"input_path": "header.csv"}, DataFormatError, "no data rows"),
        ("ragged.csv", {"input_path": "ragged.csv"}, DataFormatError, "line 3 has 3 fields"),
        ("bad.parquet", {"input_path": "bad.parquet"}, DataFormatError, "cannot read"),
        ("empty_dir", {"input_path": "empty_dir"}, DataFormatError, "holds no .csv"),
        ("unrelated.csv", {"input_path": "unrelated.csv"}, ColumnError, "none of the model"),
        ("data.csv", {"output_path": "out.json"}, DataFormatError, "unsupported output"),
        ("data.csv", {"output_path": "data.csv"}, ConfigError, "would be read as input"),
        ("data.csv", {"id_column": "nope"}, ColumnError, "no id column 'nope'"),
        ("data.csv", {"id_column": "row"}, ConfigError, "clashes"),
        ("data.csv", {"chunk_size": 0}, ConfigError, "chunk_size"),
    ],
)
def test_bad_inputs_raise_clear_errors(
    setup, kwargs, error, message, titanic_result, titanic, tmp_path
):
    files = {
        "notes.txt": "a,b\n1,2\n",
        "empty.csv": "",
        "header.csv": ",".join(titanic.columns) + "\n",
        "ragged.csv": "Age,Sex\n1,male\n2,female,extra\n",
        "bad.parquet": "not parquet",
        "unrelated.csv": "x,y\n1,2\n",
    }
    if setup == "empty_dir":
        (tmp_path / setup).mkdir()
    elif setup == "data.csv":
        _write(titanic.head(20), tmp_path / setup)
    elif setup is not None:
        (tmp_path / setup).write_text(files[setup])
    arguments = {"input_path": "data.csv", "output_path": "out.csv", **kwargs}
    arguments = {k: tmp_path / v if k.endswith("_path") else v for k, v in arguments.items()}
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message):
        score_file(titanic_result.model, **arguments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_output_inside_the_input_folder_is_refused(titanic_result, titanic, tmp_path):
    _write(titanic, tmp_path / "a.csv")
    with pytest.raises(ConfigError, match="would be read as input"):
        score_file(titanic_result.model, tmp_path, tmp_path / "out.csv")


def test_cli_invoke_scores_and_prints_a_summary(saved_model, titanic, expected, tmp_path, cli):
    _write(titanic.assign(PassengerId=range(N_ROWS)), tmp_path / "in.parquet")
    out = cli(
        "batch-endpoint",
        "invoke",
        "--model",
        str(saved_model),
        "--input",
        "in.parquet",
        "--output",
        "scored/out.csv",
        "--chunk-size",
        "500",
        "--id-column",
        "PassengerId",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Scored 1,309 rows from 1 file in ")
    assert len(out.stdout.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    scored = pd.read_csv(tmp_path / "scored" / "out.csv")
    assert list(scored.columns) == ["row", "PassengerId", *PREDICTIONS]
    _assert_same_predictions(scored, expected)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "missing.csv", "--output", "out.csv"], "no such file or folder"),
        (["--input", "in.csv", "--output", "old.csv"], "already exists"),
        (["--input", "in.csv", "--output", "out.csv", "--chunk-size", "0"], "positive number"),
        (["--input", "in.csv", "--output", "out.txt"], "unsupported output"),
    ],
)
def test_cli_errors_print_one_line_and_exit_2(args, message, saved_model, titanic, tmp_path, cli):
    _write(titanic.head(50), tmp_path / "in.csv")
    (tmp_path / "old.csv").write_text("previous\n")
    out = cli("batch-endpoint", "invoke", "--model", str(saved_model), *args, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""
    assert (tmp_path / "old.csv").read_text() == "previous\n"


def test_cli_ctrl_c_exits_130_and_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    import titanicml.batch
    from titanicml.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(titanicml.batch, "score_file", interrupted)
    argv = ["batch-endpoint", "invoke", "--model", "m", "--input", "in.csv", "--output", "o.csv"]
    assert main(argv) == 130
    assert "interrupted; nothing was written to o.csv" in capsys.readouterr().err


# --- rows with another number of fields than the header --------------------------------

BAD_ROWS = {5: "truncated", 9: "garbage", 12: "extra"}  # data row -> how it is broken


def _records(frame: pd.DataFrame) -> list[list[str]]:
    return list(csv.reader(io.StringIO(frame.to_csv(index=False))))


def _write_records(records: list[list[str]], path):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(records)
    return path


def _with_bad_rows(titanic: pd.DataFrame, path, rows: int = 40):
    """The first rows as CSV, broken at BAD_ROWS; row 2's value spans two lines.

    Data row r > 2 starts on line r + 3 (the header is line 1): 5 -> 8, 9 -> 12, 12 -> 15.
    """
    frame = titanic.head(rows).copy()
    frame.loc[2, "HomeDest"] = "Belfast,\nNI"  # quoted, over two lines
    records = _records(frame)
    for row, how in BAD_ROWS.items():
        fields = records[row + 1]
        records[row + 1] = {
            "truncated": fields[:5],
            "garbage": ["garbage"],
            "extra": [*fields, "surplus"],
        }[how]
    _write_records(records, path)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_rows_with_another_field_count_are_refused_by_line(
    suffix, titanic_result, titanic, tmp_path
):
    data = tmp_path / "in.csv"
    _with_bad_rows(titanic, data)
    if suffix == ".csv.gz":
        import gzip

        (tmp_path / "in.csv.gz").write_bytes(gzip.compress(data.read_bytes()))
        data.unlink()
        data = tmp_path / "in.csv.gz"
    with pytest.raises(DataFormatError) as error:
        score_file(titanic_result.model, data, tmp_path / "out.csv", chunk_size=10)
    message = str(error.value)
    assert "3 rows have another number of fields than the header's 14" in message
    assert "line 8 has 5 fields; line 12 has 1 field; line 15 has 15 fields" in message
    assert "--on-bad-rows skip" in message and "out.csv.bad-rows.csv" in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [data.name]


def test_an_unclosed_quote_is_named_by_its_line(titanic_result, titanic, tmp_path):
    lines = titanic.head(30).to_csv(index=False).splitlines(keepends=True)
    # Row 7 (line 9) opens a quote that its line never closes: the value runs on into
    # line 10, up to that line's first quote.
    lines[8] = '1,1,"Quote, Mr. Unclosed,male,39,0,0,1234,10.5,,S,,,\n'
    assert '"' in lines[9]
    data = tmp_path / "in.csv"
    data.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataFormatError) as error:
        score_file(titanic_result.model, data, tmp_path / "out.csv")
    message = str(error.value)
    assert "1 row has another number of fields than the header's 14" in message
    assert "line 9 has an unclosed quote (its value runs on to line 10)" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_skipped_rows_are_written_aside_counted_and_leave_gaps_in_row(
    titanic_result, titanic, tmp_path, monkeypatch
):
    data = tmp_path / "in.csv"
    frame = _with_bad_rows(titanic, data)
    good = frame.drop(index=list(BAD_ROWS))
    expected = titanic_result.model.predict_frame(
        pd.read_csv(io.StringIO(good.to_csv(index=False)))
    )
    model = titanic_result.model
    original, previous, sizes = model.predict_frame, [], []

    def spy(rows):
        gc.collect()
        assert all(ref() is None for ref in previous), "an earlier chunk is still alive"
        previous.append(weakref.ref(rows))
        sizes.append(len(rows))
        return original(rows)

    monkeypatch.setattr(model, "predict_frame", spy)
    # Chunks of 4 good rows: the bad ones fall inside chunks and between them.
    summary = score_file(model, data, tmp_path / "out.csv", chunk_size=4, on_bad_rows="skip")
    assert isinstance(summary, BatchSummary)
    assert (summary.rows, summary.skipped_rows) == (37, 3)
    assert summary.bad_rows_output == tmp_path / "out.csv.bad-rows.csv"
    assert sizes == [4] * 9 + [1]
    out = pd.read_csv(summary.output)
    assert out["row"].tolist() == [r for r in range(40) if r not in BAD_ROWS]
    _assert_same_predictions(out, expected)
    bad = pd.read_csv(summary.bad_rows_output, keep_default_na=False)
    assert list(bad.columns) == ["file", "line", "row", "fields", "expected", "text"]
    assert bad["line"].tolist() == [8, 12, 15]
    assert bad["row"].tolist() == [5, 9, 12]
    assert bad["fields"].tolist() == [5, 1, 15]
    assert set(bad["expected"]) == {14} and set(bad["file"]) == {"in.csv"}
    assert bad["text"].iloc[1] == "garbage" and bad["text"].iloc[2].endswith(",surplus")
    assert summary.warnings == (
        "in.csv: skipped 3 rows with another number of fields than the header's "
        f"(line 8, 12, 15); they are in {summary.bad_rows_output}",
    )
    assert _leftovers(tmp_path) == []


def test_a_new_output_replaces_or_removes_the_old_bad_rows_file(titanic_result, titanic, tmp_path):
    data = tmp_path / "in.csv"
    _with_bad_rows(titanic, data)
    target, side = tmp_path / "out.parquet", tmp_path / "out.parquet.bad-rows.csv"
    score_file(titanic_result.model, data, target, on_bad_rows="skip")
    assert len(pd.read_csv(side)) == 3
    target.unlink()  # the bad rows of an output that is gone are not overwritten silently
    with pytest.raises(ConfigError, match=r"out\.parquet\.bad-rows\.csv already exists"):
        score_file(titanic_result.model, data, target, on_bad_rows="skip")
    assert len(pd.read_csv(side)) == 3
    _write(titanic.head(40), data)  # fixed
    summary = score_file(titanic_result.model, data, target, overwrite=True, on_bad_rows="skip")
    assert (summary.rows, summary.skipped_rows, summary.bad_rows_output) == (40, 0, None)
    assert not side.exists(), "the old output's bad rows no longer describe the new output"
    with pytest.raises(ConfigError, match="on_bad_rows must be one of error, skip"):
        score_file(titanic_result.model, data, target, overwrite=True, on_bad_rows="drop")


def test_cli_on_bad_rows_refuses_by_default_and_skips_on_request(
    saved_model, titanic, tmp_path, cli
):
    _with_bad_rows(titanic, tmp_path / "in.csv")
    args = ["batch-endpoint", "invoke", "--model", str(saved_model), "--input", "in.csv"]
    refused = cli(*args, "--output", "out.csv", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "line 8 has 5 fields" in refused.stderr and refused.stdout == ""
    skipped = cli(*args, "--output", "out.csv", "--on-bad-rows", "skip", cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.startswith("Scored 37 rows from 1 file in ")
    assert "skipped 3 bad rows" in skipped.stdout and len(skipped.stdout.splitlines()) == 1
    assert "titanicml: warning: in.csv: skipped 3 rows" in skipped.stderr
    assert len(pd.read_csv(tmp_path / "out.csv.bad-rows.csv")) == 3
