"""The model registry: register, version, alias, resolve, load and export models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow.artifacts
import numpy as np
import pytest
from mlflow import MlflowClient

from titanicml import load_model
from titanicml.exceptions import ConfigError, ModelError, ModelIntegrityError
from titanicml.model.manifest import signing_public_key
from titanicml.registry import (
    REGISTRY_EXPERIMENT,
    ModelNotFoundError,
    ModelReference,
    delete_alias,
    export_model,
    get_model,
    list_models,
    list_versions,
    parse_model_reference,
    register_model,
    resolve_model_uri,
    set_alias,
)
from titanicml.registry.register import SIGNING_KEY_TAG

NAME = "titanic-model"


@pytest.fixture(scope="module")
def tiny_run(titanic, tmp_path_factory):
    """A short titanicml training tracked in a store of its own: (store folder, result)."""
    from titanicml import Trainer

    folder = tmp_path_factory.mktemp("registry-runs")
    trainer = Trainer(
        target="Survived",
        time_budget=3,
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        exclude=["Boat", "Body"],
    )
    return folder, trainer.fit(titanic)


@pytest.fixture
def run_in_store(tiny_run, store):
    """Copy the tiny run's store to this test's fresh ``store``; return the training result.

    The run's artifacts stay where they were logged (the experiment records their
    absolute location), so the copy is one file.
    """
    folder, result = tiny_run
    shutil.copyfile(folder / "mlflow.db", store.removeprefix("sqlite:///"))
    return result


@pytest.fixture
def same_workspace(monkeypatch) -> Path:
    """Keep the workspace that signed the session's models when a test changes directory."""
    from titanicml.config import workspace_dir

    home = workspace_dir()
    monkeypatch.setenv("TITANICML_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def registry(saved_model, tmp_path_factory):
    """A store, shared by the tests that only read it, holding ``titanic-model``.

    Versions 1 and 2 (from the saved directory), alias champion -> 1.
    """
    store = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    register_model(NAME, path=saved_model, tracking_uri=store, description="first")
    register_model(NAME, path=saved_model, tracking_uri=store, tags={"stage": "b"})
    set_alias(NAME, "champion", 1, tracking_uri=store)
    return store


# -- references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("titanic-model", ModelReference(NAME)),
        ("titanic-model@latest", ModelReference(NAME)),
        ("titanic-model@champion", ModelReference(NAME, alias="champion")),
        ("titanic-model:3", ModelReference(NAME, version=3)),
        ("titanic-model@3", ModelReference(NAME, version=3)),
        ("models:/titanic-model@champion", ModelReference(NAME, alias="champion")),
        ("models:/titanic-model/3", ModelReference(NAME, version=3)),
        ("models:/titanic-model/latest", ModelReference(NAME)),
        ("azureml:titanic-model:3", ModelReference(NAME, version=3)),
        ("azureml:titanic-model@latest", ModelReference(NAME)),
        ("azureml:titanic-model", ModelReference(NAME)),
        ("titanic.model_v2@staging-eu", ModelReference("titanic.model_v2", alias="staging-eu")),
    ],
)
def test_reference_spellings_parse(text, expected):
    assert parse_model_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("titanic-model:x", "version must be a number"),
        ("titanic-model:0", "version must be a number"),
        ("titanic-model@", "neither a version nor an alias"),
        ("titanic-model@1x", "neither a version nor an alias"),
        ("models:/titanic-model/Production", "stages"),
        ("models:/titanic-model", "not a registered model reference"),
        ("titanic model", "not a registered model reference"),
        ("./titanic-model", "not a registered model reference"),
    ],
)
def test_misspelled_references_are_refused(text, message):
    with pytest.raises(ModelError, match=message):
        parse_model_reference(text)


# -- registering ------------------------------------------------------------------------


def test_register_from_path_uploads_and_increments_versions(store, saved_model):
    first = register_model(NAME, path=saved_model, tracking_uri=store, description="first")
    second = register_model(NAME, path=str(saved_model), tracking_uri=store)
    assert (first.version, second.version) == (1, 2)
    assert first.run_id != second.run_id
    assert first.source == f"runs:/{first.run_id}/model"
    assert first.status == "READY" and first.description == "first"
    saved_meta = json.loads((saved_model / "titanicml" / "metadata.json").read_text())
    assert first.metrics == saved_meta["metrics"]
    assert first.metadata["target"] == "Survived"

    client = MlflowClient(store)
    run = client.get_run(first.run_id)
    assert client.get_experiment(run.info.experiment_id).name == REGISTRY_EXPERIMENT
    assert run.data.tags["titanicml.registered_from"] == str(saved_model.absolute())
    assert run.info.status == "FINISHED"
    assert client.get_model_version(NAME, "2").source == second.source

    assert [v.version for v in list_versions(NAME, tracking_uri=store)] == [1, 2]
    (summary,) = list_models(tracking_uri=store)
    assert (summary.name, summary.latest_version, summary.n_versions) == (NAME, 2, 2)
    assert summary.description == "first"


def test_register_from_run(store, run_in_store):
    model = register_model(
        "titanic-run", run_id=run_in_store.run_id, tracking_uri=store, tags={"team": "a"}
    )
    assert model.version == 1
    assert model.source == f"runs:/{run_in_store.run_id}/model"
    assert model.run_id == run_in_store.run_id
    assert model.metrics == pytest.approx(run_in_store.metrics, nan_ok=True)
    # The run's model was signed by this workspace: its key is recorded with the version.
    assert get_model("titanic-run", tracking_uri=store).tags == {
        "team": "a",
        SIGNING_KEY_TAG: signing_public_key(),
    }
    assert (
        register_model("titanic-run", run_id=run_in_store.run_id, tracking_uri=store).version == 2
    )


def test_unknown_run_or_run_without_model_is_refused(store, run_in_store):
    with pytest.raises(ModelError, match=r"no MLflow run 'deadbeef'"):
        register_model(NAME, run_id="deadbeef", tracking_uri=store)
    client = MlflowClient(store)
    empty = client.create_run(client.get_run(run_in_store.run_id).info.experiment_id)
    with pytest.raises(ModelError, match=r"has no model \(no model/MLmodel artifact\)"):
        register_model(NAME, run_id=empty.info.run_id, tracking_uri=store)
    assert list_models(tracking_uri=store) == []


def test_tampered_or_foreign_directory_is_refused(store, saved_model, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(saved_model, copy)
    with (copy / "artifacts" / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match=r"changed: artifacts/model.joblib"):
        register_model(NAME, path=copy, tracking_uri=store)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ModelError, match="no MLmodel file"):
        register_model(NAME, path=tmp_path / "plain", tracking_uri=store)
    with pytest.raises(ModelError, match="no model directory"):
        register_model(NAME, path=tmp_path / "absent", tracking_uri=store)
    assert list_models(tracking_uri=store) == []


def test_bad_register_arguments(store, saved_model):
    with pytest.raises(ConfigError, match="exactly one"):
        register_model(NAME, tracking_uri=store)
    with pytest.raises(ConfigError, match="exactly one"):
        register_model(NAME, run_id="x", path=saved_model, tracking_uri=store)
    with pytest.raises(ConfigError, match="invalid model name"):
        register_model("bad name", path=saved_model, tracking_uri=store)
    with pytest.raises(ConfigError, match="unknown model type 'triton_model'"):
        register_model(NAME, path=saved_model, tracking_uri=store, model_type="triton_model")
    with pytest.raises(ConfigError, match="--sample-input is for a pickle file"):
        register_model(NAME, path=saved_model, tracking_uri=store, sample_input="rows.csv")
    with pytest.raises(ConfigError, match="go with --path"):
        register_model(NAME, run_id="x", tracking_uri=store, model_type="mlflow_model")


def test_az_ml_model_types_of_a_model_directory(store, saved_model):
    # az ml's --type: a titanicml model directory is an MLflow model, and a custom one.
    first = register_model(NAME, path=saved_model, tracking_uri=store, model_type="mlflow_model")
    second = register_model(NAME, path=saved_model, tracking_uri=store, model_type="custom_model")
    assert (first.version, second.version) == (1, 2)
    assert "titanicml.source_sha256" not in second.tags


# -- aliases ----------------------------------------------------------------------------


def test_alias_set_move_delete(store, saved_model):
    for _ in range(2):
        register_model(NAME, path=saved_model, tracking_uri=store)
    set_alias(NAME, "champion", 1, tracking_uri=store)
    assert get_model(f"{NAME}@champion", tracking_uri=store).version == 1
    moved = set_alias(NAME, "champion", 2, tracking_uri=store)
    assert (moved.version, moved.aliases) == (2, ("champion",))
    assert get_model(f"{NAME}@champion", tracking_uri=store).version == 2
    assert get_model(f"{NAME}:1", tracking_uri=store).aliases == ()
    set_alias(NAME, "staging", 2, tracking_uri=store)
    (summary,) = list_models(tracking_uri=store)
    assert summary.aliases == {"champion": 2, "staging": 2}
    assert [v.aliases for v in list_versions(NAME, tracking_uri=store)] == [
        (),
        ("champion", "staging"),
    ]

    assert delete_alias(NAME, "champion", tracking_uri=store) == 2
    with pytest.raises(ModelNotFoundError, match=r"no alias 'champion'; its aliases are staging"):
        get_model(f"{NAME}@champion", tracking_uri=store)
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'"):
        delete_alias(NAME, "champion", tracking_uri=store)


@pytest.mark.parametrize("alias", ["latest", "Latest", "v3", "V12", "3", "-x", "bad alias", ""])
def test_invalid_aliases_are_refused(registry, alias):
    with pytest.raises(ConfigError):
        set_alias(NAME, alias, 1, tracking_uri=registry)


def test_alias_to_missing_version_or_model(registry):
    with pytest.raises(ModelNotFoundError, match=r"has no version 7; it has versions 1-2"):
        set_alias(NAME, "champion", 7, tracking_uri=registry)
    with pytest.raises(ModelNotFoundError, match="no registered model named 'other'"):
        set_alias("other", "champion", 1, tracking_uri=registry)


# -- resolving and loading --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "version"),
    [
        ("titanic-model", 2),
        ("titanic-model@latest", 2),
        ("titanic-model@champion", 1),
        ("titanic-model:1", 1),
        ("titanic-model@1", 1),
        ("models:/titanic-model@champion", 1),
        ("models:/titanic-model/2", 2),
        ("models:/titanic-model/latest", 2),
        ("azureml:titanic-model:1", 1),
        ("azureml:titanic-model@latest", 2),
    ],
)
def test_every_reference_spelling_resolves(registry, reference, version):
    assert resolve_model_uri(reference, tracking_uri=registry) == (
        f"models:/{NAME}/{version}",
        version,
    )
    assert get_model(reference, tracking_uri=registry).version == version


def test_version_records_the_signing_key_and_refuses_replaced_files(
    store, saved_model, tmp_path, monkeypatch
):
    import re
    from urllib.parse import urlparse

    from titanicml.model.signing import key_text, load_signing_key, sign_model_dir

    key = json.loads((saved_model / "MANIFEST.json").read_text())["public_key"]
    model = register_model(NAME, path=saved_model, tracking_uri=store)
    assert model.tags[SIGNING_KEY_TAG] == key
    # Someone with write access to the store re-signs the version's files with another
    # key, even one this workspace trusts: the version still names the key it had.
    artifacts = MlflowClient(store).get_run(model.run_id).info.artifact_uri
    files = Path(urlparse(artifacts).path) / "model"
    colleague = tmp_path / "colleague-keys"
    monkeypatch.setenv(
        "TITANICML_TRUSTED_KEYS", key_text(load_signing_key(colleague, create=True).public_key())
    )
    (files / "titanicml" / "metadata.json").write_text('{"target": "Survived"}')
    sign_model_dir(files, colleague)
    expected = rf"{NAME}:1 is signed by ed25519:.*registered signed by {re.escape(key)}"
    with pytest.raises(ModelIntegrityError, match=expected) as info:
        load_model(f"{NAME}:1", tracking_uri=store)
    assert "titanicml-models-" not in str(info.value), "named by its reference"
    with pytest.raises(ModelIntegrityError, match="register the model again"):
        export_model(f"{NAME}:1", tmp_path / "out", tracking_uri=store)
    assert not (tmp_path / "out").exists()


def test_resolved_uri_is_downloadable_by_mlflow(registry, tmp_path, monkeypatch):
    uri, version = resolve_model_uri(f"{NAME}@champion", tracking_uri=registry)
    assert (uri, version) == (f"models:/{NAME}/1", 1)
    # MLflow looks models:/ URIs up in the process-wide registry, whatever registry_uri= says.
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry)
    path = mlflow.artifacts.download_artifacts(
        uri, dst_path=str(tmp_path / "dl"), tracking_uri=registry, registry_uri=registry
    )
    assert (Path(path) / "MLmodel").is_file() and (Path(path) / "MANIFEST.json").is_file()


def test_load_registered_model_predicts_like_the_original(registry, titanic_result, titanic):
    expected = titanic_result.predict(titanic)
    model = load_model(f"{NAME}@champion", tracking_uri=registry)
    np.testing.assert_array_equal(model.predict(titanic), expected)
    again = load_model(f"azureml:{NAME}:2", tracking_uri=registry)
    np.testing.assert_array_equal(again.predict(titanic), expected)


def test_load_model_from_a_registered_run(store, run_in_store, titanic):
    register_model("titanic-run", run_id=run_in_store.run_id, tracking_uri=store)
    expected = run_in_store.predict(titanic)
    model = load_model("models:/titanic-run/1", tracking_uri=store)
    np.testing.assert_array_equal(model.predict(titanic), expected)
    by_run = load_model(f"runs:/{run_in_store.run_id}/model", tracking_uri=store)
    np.testing.assert_array_equal(by_run.predict(titanic), expected)


def test_changed_cached_download_is_fetched_again(registry, titanic):
    from titanicml.registry import local_model_dir

    root = local_model_dir(f"{NAME}:1", tracking_uri=registry)
    assert local_model_dir(f"{NAME}@champion", tracking_uri=registry) == root, "cached per version"
    with (root / "artifacts" / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    model = load_model(f"{NAME}:1", tracking_uri=registry)
    assert model.predict(titanic).shape == (len(titanic),)
    assert local_model_dir(f"{NAME}:1", tracking_uri=registry) != root


def test_unknown_name_version_alias(registry):
    with pytest.raises(ModelNotFoundError) as info:
        get_model("unknown-model", tracking_uri=registry)
    message = str(info.value)
    assert "no registered model named 'unknown-model'" in message
    assert f"registered: {NAME}" in message
    assert "titanicml model register --name unknown-model" in message
    with pytest.raises(ModelNotFoundError, match="did you mean 'titanic-model'"):
        get_model("Titanic-Model", tracking_uri=registry)
    with pytest.raises(ModelNotFoundError, match=r"has no version 9; it has versions 1-2"):
        resolve_model_uri(f"{NAME}:9", tracking_uri=registry)
    with pytest.raises(
        ModelNotFoundError, match=r"no alias 'prod'; its aliases are champion \(version 1\)"
    ):
        load_model(f"{NAME}@prod", tracking_uri=registry)
    with pytest.raises(LookupError):  # ModelNotFoundError is also a LookupError
        get_model(f"{NAME}:9", tracking_uri=registry)


def test_bare_name_is_a_directory_first_then_a_registered_model(
    registry, saved_model, tmp_path, monkeypatch, same_workspace
):
    monkeypatch.chdir(tmp_path)
    assert load_model(NAME, tracking_uri=registry).task == "binary"  # no such folder: registry
    shutil.copytree(saved_model, tmp_path / NAME)
    assert load_model(NAME, tracking_uri="sqlite:///absent/mlflow.db").task == "binary"
    with pytest.raises(ModelNotFoundError) as info:
        load_model("absent-model", tracking_uri=registry)
    assert "no model directory at" in str(info.value)
    assert "no registered model named 'absent-model'" in str(info.value)


def test_missing_store_is_not_created(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert list_models(tracking_uri=store) == []
    with pytest.raises(ModelNotFoundError, match="no MLflow store at"):
        get_model(NAME, tracking_uri=store)
    with pytest.raises(ModelNotFoundError, match="no MLflow store at"):
        load_model(f"{NAME}@champion", tracking_uri=store)
    assert not (tmp_path / "mlflow.db").exists()


# -- export -----------------------------------------------------------------------------


def test_export_copies_a_verified_model(registry, tmp_path, titanic, titanic_result):
    out = export_model(f"{NAME}@champion", tmp_path / "exported", tracking_uri=registry)
    assert out == tmp_path / "exported"
    assert not (out / "registered_model_meta").exists()
    np.testing.assert_array_equal(load_model(out).predict(titanic), titanic_result.predict(titanic))
    with pytest.raises(ModelError, match="already exists"):
        export_model(f"{NAME}:1", out, tracking_uri=registry)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "staging left"


# -- command line -----------------------------------------------------------------------


def test_cli_register_list_alias_show_export(store, saved_model, tmp_path, cli, same_workspace):
    uri = ("--tracking-uri", store)
    register_model(NAME, path=saved_model, tracking_uri=store)  # version 1, in-process: faster
    out = cli(
        "model", "register", "--name", NAME, "--path", str(saved_model),
        "--description", "second one", "--tag", "team=a", *uri,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"Registered model {NAME} version 2 from {saved_model}" in out.stdout

    out = cli("model", "alias", "set", NAME, "champion", "--version", "1", *uri)
    assert out.returncode == 0 and f"use it as {NAME}@champion" in out.stdout, out.stderr

    out = cli("model", "list", *uri)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith(NAME))
    assert row.split()[1:4] == ["2", "2", "champion:"]

    out = cli("model", "show", f"{NAME}@champion", "--json", *uri)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["version"], shown["aliases"], shown["uri"]) == (
        1,
        ["champion"],
        f"models:/{NAME}/1",
    )
    assert 0.5 < shown["metrics"]["accuracy"] <= 1

    out = cli("model", "show", f"azureml:{NAME}:2", *uri)
    assert out.returncode == 0, out.stderr
    assert f"{NAME}:2" in out.stdout and "second one" in out.stdout
    assert "team=a" in out.stdout and "accuracy" in out.stdout

    out = cli("model", "export", "--model", f"{NAME}@champion", "--output", "exp", *uri,
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "exp" / "MLmodel").is_file()

    out = cli("model", "alias", "delete", NAME, "champion", *uri)
    assert out.returncode == 0 and "pointed at version 1" in out.stdout, out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "titanic-model@nope"), "has no alias 'nope'"),
        (("show", "titanic-model:x"), "version must be a number"),
        (("alias", "set", "titanic-model", "latest", "--version", "1"), "reserved"),
        (("register", "--name", "m", "--run", "deadbeef"), "no MLflow run 'deadbeef'"),
    ],
)
def test_cli_mistakes_are_one_line(registry, args, message, cli):
    out = cli("model", *args, "--tracking-uri", registry)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("titanicml: error:") and message in lines[0]
    assert "Traceback" not in out.stderr


def test_cli_list_on_an_empty_store(tmp_path, cli):
    out = cli("model", "list", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert out.returncode == 0, out.stderr
    assert "No registered model" in out.stdout and "titanicml model register" in out.stdout


# --- Reading a SQLite registry without MLflow (issue 10 §5) ----------------------------


def test_the_sqlite_reader_answers_as_mlflow_does(registry):
    from mlflow import MlflowClient

    from titanicml.registry.sqlite_reader import SqliteRegistry, open_reader

    reader = open_reader(registry)
    assert isinstance(reader, SqliteRegistry)
    client = MlflowClient(registry, registry)
    mine, theirs = reader.get_registered_model(NAME), client.get_registered_model(NAME)
    assert mine.aliases == {k: int(v) for k, v in theirs.aliases.items()} == {"champion": 1}
    assert (mine.description, mine.last_updated_timestamp) == (
        theirs.description,
        theirs.last_updated_timestamp,
    )
    fields = ("name", "source", "run_id", "description", "creation_timestamp", "status")
    for number in (1, 2):
        a, b = reader.get_model_version(NAME, str(number)), client.get_model_version(NAME, number)
        assert int(a.version) == int(b.version) == number
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert a.tags == b.tags
    assert reader.get_model_version(NAME, "2").tags.get("stage") == "b"
    listed = [int(v.version) for v in reader.search_model_versions(filter_string=f"name='{NAME}'")]
    assert sorted(listed) == [1, 2]


def test_registry_reads_import_no_mlflow(registry):
    code = (
        "import sys\n"
        "from titanicml.registry import get_model, list_models, list_versions\n"
        f"model = get_model('{NAME}@champion', {registry!r})\n"
        "assert model.version == 1 and model.metrics['accuracy'] > 0.5, model\n"
        f"assert [m.name for m in list_models({registry!r})] == ['{NAME}']\n"
        f"assert [v.version for v in list_versions('{NAME}', {registry!r})] == [1, 2]\n"
        "try:\n"
        f"    get_model('nope', {registry!r})\n"
        "except LookupError as exc:\n"
        f"    assert 'registered: {NAME}' in str(exc), exc\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_an_unknown_schema_revision_is_read_through_mlflow(registry, tmp_path):
    import sqlite3

    from titanicml.registry import get_model
    from titanicml.registry.sqlite_reader import open_reader

    copy = tmp_path / "mlflow.db"
    shutil.copyfile(registry.removeprefix("sqlite:///"), copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("update alembic_version set version_num = 'from-the-future'")
    assert open_reader(f"sqlite:///{copy}") is None
    with pytest.raises(Exception, match=r"from-the-future|revision|migrat|schema"):
        get_model(f"{NAME}:1", f"sqlite:///{copy}")  # MLflow's own refusal, not a guess
