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
