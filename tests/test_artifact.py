import json

import mlflow.pyfunc
import numpy as np
import pytest
import yaml

from titanicml import load_model
from titanicml.exceptions import ModelError, ModelIntegrityError


def test_saved_directory_is_a_complete_mlflow_model(saved_model):
    mlmodel = yaml.safe_load((saved_model / "MLmodel").read_text())
    assert "python_function" in mlmodel["flavors"]
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert {c["name"] for c in inputs} >= {"Age", "Pclass", "Sex"}
    assert all(c["required"] is False for c in inputs)
    outputs = {c["name"] for c in json.loads(mlmodel["signature"]["outputs"])}
    assert outputs == {"prediction", "probability_0", "probability_1"}
    requirements = (saved_model / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "mlflow==" in requirements
    assert (saved_model / "input_example.json").exists()
    assert (saved_model / "code" / "titanicml" / "model" / "pyfunc.py").exists()
    meta = json.loads((saved_model / "titanicml" / "metadata.json").read_text())
    assert meta["target"] == "Survived" and meta["classes"] == [0, 1]
    manifest = json.loads((saved_model / "MANIFEST.json").read_text())
    assert "MLmodel" in manifest["sha256"] and "artifacts/model.joblib" in manifest["sha256"]
    # Signed (Ed25519) by the workspace that saved it; the entry script checks it with
    # cryptography, a pinned requirement.
    assert manifest["algorithm"] == "ed25519" and manifest["signature"]
    assert manifest["public_key"].startswith("ed25519:")
    assert "cryptography==" in requirements


def test_pyfunc_reload_gives_the_same_predictions_on_every_row(
    saved_model, titanic_result, titanic
):
    model = mlflow.pyfunc.load_model(str(saved_model))
    features = titanic.drop(columns=["Survived"])
    out = model.predict(features)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), titanic_result.predict(features))
    np.testing.assert_allclose(
        out[["probability_0", "probability_1"]].to_numpy(), titanic_result.predict_proba(features)
    )


def test_tampered_file_is_refused(saved_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved_model, copy)
    with (copy / "artifacts" / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match=r"changed: artifacts/model.joblib"):
        load_model(copy)
    with pytest.raises(Exception, match="does not match its manifest"):
        mlflow.pyfunc.load_model(str(copy))


def test_added_file_is_refused(saved_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved_model, copy)
    (copy / "code" / "titanicml" / "evil.py").write_text("print('hi')")
    with pytest.raises(ModelIntegrityError, match=r"added: code/titanicml/evil\.py"):
        load_model(copy)


def test_existing_path_is_not_overwritten_unless_asked(titanic_result, tmp_path):
    target = tmp_path / "m"
    titanic_result.save(target)
    with pytest.raises(ModelError, match="already exists"):
        titanic_result.save(target)
    titanic_result.save(target, overwrite=True)
    assert load_model(target).task == "binary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder left behind"


def test_failed_save_leaves_nothing(titanic_result, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("titanicml.model.manifest.write_manifest", broken)
    with pytest.raises(OSError, match="disk full"):
        titanic_result.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_not_a_model_directory(tmp_path):
    with pytest.raises(ModelError, match="no MLmodel"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="no model directory"):
        load_model(tmp_path / "absent")


def test_training_profile_ships_with_the_model(saved_model, titanic_result):
    profile = json.loads((saved_model / "titanicml" / "profile.json").read_text())
    assert profile == json.loads(json.dumps(titanic_result.profile))
    columns = {c["name"]: c for c in profile["columns"]}
    assert set(columns) == set(titanic_result.model.input_columns)
    assert columns["Age"]["n_missing"] == 263


def _snapshot(folder):
    """Every file of a folder with its bytes, and the folder's inode."""
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    return folder.stat().st_ino, files


def test_overwrite_keeps_the_old_model_when_publication_fails(
    titanic_result, titanic, tmp_path, monkeypatch
):
    import os

    from titanicml.model.artifact import save_model
    from titanicml.model.layout import load_model_dir

    target = tmp_path / "m"
    titanic_result.save(target)
    before = _snapshot(target)
    rename = os.rename
    calls = []

    def failing_rename(source, destination):
        # os.rename is the os module's: MLflow's own renames come through here too.
        source, destination = os.fspath(source), os.fspath(destination)
        if str(target) in (source, destination):
            # The rename that publishes the new folder: staging/<name> onto the target.
            publishing = destination == str(target) and os.path.basename(source) == target.name
            calls.append((source, destination, publishing))
            if publishing:
                raise OSError("rename failed")
        return rename(source, destination)

    monkeypatch.setattr("titanicml._utils.staging.os.rename", failing_rename)
    metadata = {**titanic_result.metadata(), "generation": "new"}
    with pytest.raises(OSError, match="rename failed"):
        save_model(titanic_result.model, target, metadata, overwrite=True)
    monkeypatch.undo()
    # Moved aside, publication refused, moved back: three renames, the old folder restored.
    assert [publishing for _, _, publishing in calls] == [False, True, False]
    assert calls[0][0] == calls[2][1] == str(target)
    assert _snapshot(target) == before, "the old model, byte for byte, in its own folder"
    meta = json.loads((target / "titanicml" / "metadata.json").read_text())
    assert "generation" not in meta
    model = load_model_dir(target)
    np.testing.assert_array_equal(model.predict(titanic), titanic_result.predict(titanic))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder left behind"


def test_failure_before_publication_leaves_the_old_model_untouched(
    titanic_result, tmp_path, monkeypatch
):
    target = tmp_path / "m"
    titanic_result.save(target)
    before = _snapshot(target)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("titanicml.model.manifest.write_manifest", broken)
    with pytest.raises(OSError, match="disk full"):
        titanic_result.save(target, overwrite=True)
    assert _snapshot(target) == before
    assert load_model(target).task == "binary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder left behind"
