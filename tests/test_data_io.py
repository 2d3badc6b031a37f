import numpy as np
import pandas as pd
import pytest

from titanicml import Trainer
from titanicml.data.io import frame_fingerprint, read_table
from titanicml.data.resolve import resolve_data
from titanicml.data.target import infer_task, prepare_target
from titanicml.exceptions import ColumnError, DataFormatError, TargetError


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataFormatError, match="is empty"):
        read_table(path)


def test_header_only_file_is_refused(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,Survived\n")
    with pytest.raises(DataFormatError, match="no data rows"):
        read_table(path)


def test_unsupported_suffix_is_refused(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataFormatError, match=r"unsupported file type '\.xlsx'"):
        read_table(path)


def test_corrupt_parquet_is_refused(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(DataFormatError, match="cannot read"):
        read_table(path)


def test_folder_of_files_is_concatenated(tmp_path, titanic):
    titanic.iloc[:500].to_csv(tmp_path / "a.csv", index=False)
    titanic.iloc[500:].to_parquet(tmp_path / "b.parquet")
    assert len(read_table(tmp_path)) == len(titanic)


def test_fingerprint_follows_content_not_identity(titanic):
    assert frame_fingerprint(titanic) == frame_fingerprint(titanic.copy())
    changed = titanic.copy()
    changed.loc[0, "Age"] = 99.0
    assert frame_fingerprint(changed) != frame_fingerprint(titanic)
    _, ref = resolve_data(titanic)
    assert ref.n_rows == 1309 and len(ref.sha256) == 64


def test_missing_target_suggests_the_close_name(titanic):
    with pytest.raises(ColumnError, match="did you mean 'Survived'"):
        prepare_target(titanic, "survived", "auto")


def test_one_class_target_is_refused(titanic):
    with pytest.raises(TargetError, match="single class"):
        prepare_target(titanic.assign(Survived=1), "Survived", "auto")


def test_text_target_cannot_be_regression():
    frame = pd.DataFrame({"x": range(10), "y": list("ab" * 5)})
    with pytest.raises(TargetError, match="cannot be a regression target"):
        prepare_target(frame, "y", "regression")


def test_binary_task_with_three_classes_is_refused():
    frame = pd.DataFrame({"x": range(9), "y": list("abc" * 3)})
    with pytest.raises(TargetError, match="has 3 classes"):
        prepare_target(frame, "y", "binary")


def test_class_with_a_single_row_is_refused():
    frame = pd.DataFrame({"x": range(11), "y": ["a"] * 5 + ["b"] * 5 + ["c"]})
    with pytest.raises(TargetError, match="single row"):
        prepare_target(frame, "y", "auto")


def test_rows_without_target_are_dropped_not_guessed():
    frame = pd.DataFrame({"x": range(6), "y": [0, 1, None, 0, 1, 1]})
    prepared = prepare_target(frame, "y", "auto")
    assert prepared.n_dropped == 1 and prepared.task == "binary"
    assert prepared.classes == [0.0, 1.0]


@pytest.mark.parametrize(
    "values, task",
    [
        ([0, 1, 1, 0], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([1, 2, 3, 4, 5, 1], "multiclass"),
        ([0.5, 1.25, 3.0, 4.1], "regression"),
        (list(range(100)), "regression"),
    ],
)
def test_task_inference(values, task):
    assert infer_task(pd.Series(values)) == task


def test_trainer_reports_missing_target_before_any_run(titanic, store, tmp_path):
    with pytest.raises(ColumnError, match="target column 'Survival' is not in the data"):
        Trainer(target="Survival", tracking_uri=store).fit(titanic)
    assert not (tmp_path / "mlflow.db").exists()


# --- Delimiters, compression, repeated names (issue 9) ------------------------------

SMALL = pd.DataFrame(
    {
        "Name": ["Braund, Mr. Owen", "Cumings; Mrs. John", "Heikkinen, Miss. Laina"] * 4,
        "Age": [22.5, 38.0, 26.0] * 4,
        "Pclass": [3, 1, 3] * 4,
        "Survived": [0, 1, 1] * 4,
    }
)


def _write(frame: pd.DataFrame, path, sep: str = ",", decimal: str = ".") -> None:
    frame.to_csv(path, index=False, sep=sep, decimal=decimal)  # compression from the suffix


@pytest.mark.parametrize(
    "name, sep",
    [
        ("semicolon.csv", ";"),
        ("tab.csv", "\t"),
        ("pipe.csv", "|"),
        ("data.tsv", "\t"),
        ("data.csv.gz", ","),
        ("semicolon.csv.gz", ";"),
        ("data.csv.bz2", ","),
        ("data.csv.zip", ";"),
        ("data.csv.xz", "\t"),
        ("data.tsv.gz", "\t"),
    ],
)
def test_delimiter_and_compression_are_found(tmp_path, name, sep):
    path = tmp_path / name
    _write(SMALL, path, sep=sep)
    pd.testing.assert_frame_equal(read_table(path), SMALL)


def test_semicolon_file_with_decimal_commas_is_split_on_semicolons(tmp_path):
    path = tmp_path / "european.csv"
    _write(SMALL, path, sep=";", decimal=",")
    frame = read_table(path)
    assert list(frame.columns) == list(SMALL.columns)
    assert frame["Age"].tolist()[:2] == ["22,5", "38,0"]  # decimal commas stay text


def test_titanic_csv_with_commas_inside_quoted_names_is_still_comma_separated(titanic):
    from titanicml.datasets import titanic_path

    assert list(read_table(titanic_path()).columns) == list(titanic.columns)


def test_a_one_column_file_is_one_column(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("Survived\n0\n1\n1\n")
    assert read_table(path)["Survived"].tolist() == [0, 1, 1]


def test_a_header_longer_than_the_sniffed_sample_is_read_whole(tmp_path):
    wide = pd.DataFrame({f"column_with_a_long_name_{i:03d}": [i, i + 1] for i in range(60)})
    path = tmp_path / "wide.csv"
    _write(wide, path, sep=";")
    pd.testing.assert_frame_equal(read_table(path), wide)


def test_sniffer_falls_back_to_the_header_and_to_the_default():
    from titanicml.data.io import sniff_delimiter

    assert sniff_delimiter("a;b;c\n1,5;2,5;3\n") == ";"
    assert sniff_delimiter("only\n1\n2\n") == ","
    assert sniff_delimiter("only\n1\n2\n", default="\t") == "\t"
    assert sniff_delimiter('name,age\n"Smith; John",3\n"Doe; Jane",4\n') == ","


def test_folder_of_compressed_and_tab_files_is_concatenated(tmp_path):
    _write(SMALL.iloc[:6], tmp_path / "a.csv.gz", sep=";")
    _write(SMALL.iloc[6:], tmp_path / "b.tsv")
    (tmp_path / "notes.txt.gz").write_bytes(b"not a table")
    pd.testing.assert_frame_equal(read_table(tmp_path), SMALL)


def test_unsupported_compressed_suffix_names_both_suffixes(tmp_path):
    path = tmp_path / "notes.txt.gz"
    path.write_bytes(b"\x1f\x8b")
    with pytest.raises(DataFormatError, match=r"unsupported file type '\.txt\.gz'"):
        read_table(path)


def test_corrupt_gzip_is_refused_with_the_path(tmp_path):
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(DataFormatError, match=r"cannot read .*broken\.csv\.gz"):
        read_table(path)


def test_repeated_csv_header_names_are_refused_not_renamed(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("Age,Fare,Age,Survived\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(DataFormatError, match=r"repeated column names: 'Age' \(2 times\)"):
        read_table(path)


def test_repeated_dataframe_columns_are_refused_before_anything_else():
    frame = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=["Age", "Age", "Survived"])
    with pytest.raises(ColumnError, match=r"repeated column names: 'Age' \(2 times\)"):
        resolve_data(frame)
    with pytest.raises(ColumnError, match="repeated column names"):
        Trainer(target="Age", track=False).fit(frame)  # the target itself repeated


def test_cli_refuses_repeated_header_names_in_one_line(tmp_path, cli):
    path = tmp_path / "dupes.csv"
    rows = "\n".join(f"{i},{i % 7},{i % 3},{i % 2}" for i in range(40))
    path.write_text("Age,Fare,Age,Survived\n" + rows + "\n")
    out = cli("train", "--data", path, "--target", "Survived", "--time-budget", "5", cwd=tmp_path)
    assert out.returncode == 2
    assert "repeated column names: 'Age'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_one_column_frame_with_semicolons_says_the_delimiter_was_wrong():
    frame = pd.DataFrame({"Age;Fare;Survived": ["1;2;0", "3;4;1"]})
    with pytest.raises(ColumnError, match=r"single column, whose name holds semicolons"):
        prepare_target(frame, "Survived", "auto")


def test_target_of_mixed_types_is_refused_clearly():
    frame = pd.DataFrame({"x": range(6), "y": pd.Series([1, "a", 1, "a", 1, "a"], dtype=object)})
    with pytest.raises(TargetError, match=r"mixes values of types int, str"):
        prepare_target(frame, "y", "auto")


def _tiny_model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"Age": rng.normal(30, 10, 60).round(1), "Sex": rng.choice(["male", "female"], 60)}
    )
    frame["Survived"] = (frame["Sex"] == "female").astype(int)
    frame.loc[rng.random(60) < 0.2, "Survived"] = 1 - frame["Survived"]
    trainer = Trainer(
        target="Survived", time_budget=3, max_trials=2, estimators=["lgbm"], ensemble=False,
        track=False,
    )  # fmt: skip
    return trainer.fit(frame).model, frame.drop(columns="Survived")


@pytest.mark.parametrize(
    "name, sep", [("rows.csv.gz", ";"), ("rows.tsv", "\t"), ("rows.csv.zip", "|")]
)
def test_batch_scoring_reads_what_read_table_reads(tmp_path, name, sep):
    from titanicml.batch import score_file

    model, rows = _tiny_model()
    _write(rows, tmp_path / name, sep=sep)
    summary = score_file(model, tmp_path / name, tmp_path / "out.csv", chunk_size=17)
    assert summary.rows == len(rows)
    out = pd.read_csv(tmp_path / "out.csv")
    expected = model.predict_frame(rows)
    np.testing.assert_allclose(out["probability_1"], expected["probability_1"])


def test_batch_scoring_refuses_repeated_header_names(tmp_path):
    from titanicml.batch import score_file

    model, _ = _tiny_model()
    path = tmp_path / "rows.csv"
    path.write_text("Age,Sex,Age\n1,male,2\n")
    with pytest.raises(DataFormatError, match="repeated column names: 'Age'"):
        score_file(model, path, tmp_path / "out.csv")


def test_data_asset_of_a_compressed_semicolon_file(tmp_path):
    from titanicml.data.assets import load_asset, register_asset

    path = tmp_path / "passengers.csv.gz"
    _write(SMALL, path, sep=";")
    asset = register_asset("passengers", path, workspace=tmp_path / "ws")
    assert asset.n_rows == len(SMALL) and asset.n_columns == SMALL.shape[1]
    frame, _ = load_asset("passengers@latest", workspace=tmp_path / "ws")
    pd.testing.assert_frame_equal(frame, SMALL)


# --- Rows without a target (issue 9) ---------------------------------------------------


def _with_missing_target(share: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=100), "w": rng.choice(["a", "b"], 100)})
    frame["y"] = (frame["x"] > 0).astype(float)
    frame.loc[: int(share * 100) - 1, "y"] = np.nan
    return frame


def test_rows_dropped_for_a_missing_target_are_reported_in_result_checks_and_run(store):
    from mlflow import MlflowClient

    frame = _with_missing_target()
    result = Trainer(
        target="y", time_budget=4, max_trials=2, estimators=["lgbm"], ensemble=False,
        on_no_skill="warn", tracking_uri=store, experiment_name="dropped",
    ).fit(frame)  # fmt: skip
    assert result.rows_dropped == 20
    finding = result.data_checks[result.data_checks["check"] == "missing_target"]
    assert finding["status"].tolist() == ["fixed"]
    assert "20 rows (20 %) have no 'y'" in finding["message"].iloc[0]
    run = MlflowClient(store).get_run(result.run_id)
    assert run.data.metrics["rows_dropped"] == 20.0


def test_no_missing_target_finding_when_every_row_has_one():
    frame = _with_missing_target().dropna()
    result = Trainer(
        target="y", time_budget=3, max_trials=2, estimators=["lgbm"], ensemble=False,
        on_no_skill="warn", track=False,
    ).fit(frame)  # fmt: skip
    assert result.rows_dropped == 0
    assert "missing_target" not in set(result.data_checks["check"])


def test_cli_says_how_many_rows_had_no_target(tmp_path, cli):
    path = tmp_path / "data.csv"
    _with_missing_target().to_csv(path, index=False)
    out = cli(
        "train", "--data", path, "--target", "y", "--time-budget", "4", "--max-trials", "2",
        "--estimators", "lgbm", "--no-ensemble", "--on-no-skill", "warn", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Rows without a target: 20 of 100 left out of training" in out.stdout
    assert "missing_target" in out.stdout  # the data-check table shows the finding too


@pytest.mark.parametrize(
    "content",
    [
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.",  # a pickle
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\n\x00\x3e\x00",  # a program
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # a spreadsheet (zip)
    ],
    ids=["pickle", "program", "xlsx"],
)
def test_a_binary_file_named_csv_is_not_a_text_table(tmp_path, cli, content):
    path = tmp_path / "data.csv"
    path.write_bytes(content * 40)
    with pytest.raises(DataFormatError, match="is not a text table") as caught:
        read_table(path)
    assert "cannot read" not in str(caught.value)  # said once, not wrapped
    out = cli("train", "--data", path, "--target", "y", cwd=tmp_path)
    assert out.returncode == 2 and "is not a text table" in out.stderr
    assert "Traceback" not in out.stderr
