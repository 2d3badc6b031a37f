"""The helpers every layer shares: staged writes, the reference grammar, value checks."""

import os

import pytest

from titanicml._utils.references import ReferenceParts, looks_like_reference, split_reference
from titanicml._utils.staging import staged_path
from titanicml._utils.values import is_int, is_number
from titanicml.data.assets import parse_reference
from titanicml.registry import ModelReference, parse_model_reference


def test_a_staged_file_appears_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with staged_path(target, overwrite=True) as building:
        building.write_text("new\n")
        assert target.read_text() == "old\n", "nothing is visible before the block ends"
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failure_inside_the_block_leaves_the_old_target_and_no_staging(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "file").write_text("old")
    with pytest.raises(RuntimeError), staged_path(target, overwrite=True) as building:
        building.mkdir()
        (building / "file").write_text("new")
        raise RuntimeError("crash while writing")
    assert (target / "file").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_existing_target_is_refused_without_overwrite(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    with pytest.raises(FileExistsError), staged_path(target):
        pass


def test_a_failed_publication_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "file").write_text("old")
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # move aside, then publish: the publication fails
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk gone"), staged_path(target, overwrite=True) as b:
        b.mkdir()
        (b / "file").write_text("new")
    assert (target / "file").read_text() == "old"
    assert len(calls) == 3 and calls[2][1] == str(target), "the old folder was put back"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("titanic", ReferenceParts("", "titanic")),
        ("titanic@latest", ReferenceParts("", "titanic", label="latest")),
        ("titanic:3", ReferenceParts("", "titanic", version="3")),
        ("azureml:titanic@champion", ReferenceParts("azureml", "titanic", label="champion")),
        ("models:/titanic/3", ReferenceParts("models", "titanic", version="3")),
        ("models:/titanic@champion", ReferenceParts("models", "titanic", label="champion")),
        ("no spaces allowed", None),
        ("models:/titanic", None),
    ],
)
def test_one_grammar_splits_every_spelling(text, parts):
    assert split_reference(text) == parts


def test_data_assets_and_models_read_the_shared_spellings_alike():
    for text, version in (("titanic:3", 3), ("titanic@3", 3), ("azureml:titanic@latest", None)):
        assert parse_reference(text) == ("titanic", version)
        assert parse_model_reference(text) == ModelReference("titanic", version=version)
    # Aliases and models:/ URIs are the registry's alone.
    assert parse_model_reference("titanic@champion").alias == "champion"
    with pytest.raises(ValueError, match="not a data asset reference"):
        parse_reference("titanic@champion")
    with pytest.raises(ValueError, match="not a data asset reference"):
        parse_reference("models:/titanic/1")


def test_references_are_told_from_paths():
    assert looks_like_reference("titanic@latest") and looks_like_reference("azureml:x")
    assert not looks_like_reference("titanic") and not looks_like_reference("data/titanic.csv")


def test_value_checks_refuse_booleans_and_non_finite_numbers():
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(2.5) and is_number(2) and not is_number(False)
    assert not is_number(float("nan")) and not is_number(float("inf"))
