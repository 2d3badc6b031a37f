import hashlib
import json
import math
import multiprocessing
import os
import shutil
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from titanicml import Trainer
from titanicml.data import assets
from titanicml.data.assets import (
    AssetNotFoundError,
    get_asset,
    list_assets,
    list_versions,
    load_asset,
    register_asset,
)
from titanicml.data.profile import profile_frame, schema_of
from titanicml.data.resolve import resolve_data
from titanicml.datasets import titanic_path
from titanicml.exceptions import ConfigError, DataError, DataFormatError

NAME = "titanic-dataset"


@pytest.fixture(autouse=True)
def _no_home_from_the_environment(monkeypatch):
    monkeypatch.delenv("TITANICML_HOME", raising=False)


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version_folders(ws, name):
    folder = ws / "data" / name
    return (
        sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if folder.exists()
        else []
    )


def _changed_titanic(tmp_path, age=99.0):
    frame = pd.read_csv(titanic_path())
    frame.loc[0, "Age"] = age
    path = tmp_path / f"titanic-{age}.csv"
    frame.to_csv(path, index=False)
    return path


# -- registering ---------------------------------------------------------------------


def test_register_file_copies_it_with_its_metadata(ws):
    before = datetime.now().astimezone()
    asset = register_asset(NAME, titanic_path(), description="passengers", workspace=ws)
    assert (asset.name, asset.version, asset.type) == (NAME, 1, "uri_file")
    assert asset.reference == f"{NAME}@1"
    assert asset.path == ws / "data" / NAME / "1" / "titanic.csv"
    assert asset.path.read_bytes() == titanic_path().read_bytes()
    assert asset.sha256 == _sha256(titanic_path())
    assert (asset.n_rows, asset.n_columns) == (1309, 14)
    assert asset.schema[0] == {"name": "Survived", "dtype": "int64"}
    assert asset.source == str(titanic_path().absolute())
    assert asset.description == "passengers"
    created = datetime.fromisoformat(asset.created_at)
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created <= datetime.now().astimezone()

    stored = json.loads((asset.directory / "asset.json").read_text())
    assert stored == asset.to_dict()
    assert stored["profile"]["n_rows"] == 1309
    assert [c["name"] for c in stored["profile"]["columns"]] == [c["name"] for c in asset.schema]


def test_register_folder_copies_its_tables_only(ws, tmp_path):
    titanic = pd.read_csv(titanic_path())
    folder = tmp_path / "parts"
    folder.mkdir()
    titanic.iloc[:600].to_csv(folder / "a.csv", index=False)
    titanic.iloc[600:].to_parquet(folder / "b.parquet")
    (folder / "notes.txt").write_text("not data")

    asset = register_asset("titanic-parts", folder, workspace=ws)
    assert (asset.type, asset.version, asset.n_rows) == ("uri_folder", 1, 1309)
    assert sorted(p.name for p in asset.path.iterdir()) == ["a.csv", "b.parquet"]
    expected = hashlib.sha256(
        "".join(f"{n}\0{_sha256(folder / n)}\n" for n in ("a.csv", "b.parquet")).encode()
    ).hexdigest()
    assert asset.sha256 == expected

    frame, loaded = load_asset("titanic-parts@1", workspace=ws)
    assert loaded == asset and frame.shape == (1309, 14)
    # Same folder content again: the same version.
    assert register_asset("titanic-parts", folder, workspace=ws).version == 1
    (folder / "b.parquet").unlink()
    assert register_asset("titanic-parts", folder, workspace=ws).version == 2


def test_versions_count_up_and_same_content_returns_the_existing_version(ws, tmp_path):
    first = register_asset(NAME, titanic_path(), workspace=ws)
    copy = tmp_path / "elsewhere.csv"
    shutil.copyfile(titanic_path(), copy)
    again = register_asset(NAME, copy, description="a new description", workspace=ws)
    assert again == first and again.description is None
    assert _version_folders(ws, NAME) == ["1"]

    second = register_asset(NAME, _changed_titanic(tmp_path), workspace=ws)
    assert second.version == 2 and second.sha256 != first.sha256
    # Going back to the first content finds version 1, it does not make a version 3.
    assert register_asset(NAME, titanic_path(), workspace=ws).version == 1
    assert register_asset(NAME, _changed_titanic(tmp_path, age=5.0), workspace=ws).version == 3

    assert [a.version for a in list_versions(NAME, workspace=ws)] == [1, 2, 3]
    (latest,) = list_assets(workspace=ws)
    assert (latest.name, latest.version, latest.n_versions) == (NAME, 3, 3)
    assert (ws / "data" / NAME / "1" / "asset.json").read_text() == json.dumps(
        first.to_dict(), indent=1
    ) + "\n"


def test_list_assets_gives_the_latest_of_each_name(ws, tmp_path):
    assert list_assets(workspace=ws) == []
    register_asset("b-data", titanic_path(), workspace=ws)
    register_asset("a-data", titanic_path(), workspace=ws)
    register_asset("a-data", _changed_titanic(tmp_path), workspace=ws)
    listed = [(a.name, a.version, a.n_versions) for a in list_assets(workspace=ws)]
    assert listed == [("a-data", 2, 2), ("b-data", 1, 1)]


def test_workspace_comes_from_titanicml_home_then_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    register_asset("here", titanic_path())
    assert (tmp_path / ".titanicml" / "data" / "here" / "1" / "asset.json").is_file()
    monkeypatch.setenv("TITANICML_HOME", str(tmp_path / "home"))
    register_asset("there", titanic_path())
    assert [a.name for a in list_assets()] == ["there"]
    assert [a.name for a in list_assets(workspace=tmp_path / ".titanicml")] == ["here"]


@pytest.mark.parametrize(
    "reference, version",
    [
        (NAME, 2),
        (f"{NAME}@latest", 2),
        (f"{NAME}@1", 1),
        (f"{NAME}:1", 1),
        (f"{NAME}:2", 2),
        (f"azureml:{NAME}@latest", 2),
        (f"azureml:{NAME}:1", 1),
        (f"azureml:{NAME}", 2),
    ],
)
def test_references_in_every_spelling(reference, version, ws, tmp_path):
    register_asset(NAME, titanic_path(), workspace=ws)
    register_asset(NAME, _changed_titanic(tmp_path), workspace=ws)
    asset = get_asset(reference, workspace=ws)
    assert (asset.name, asset.version) == (NAME, version)
    frame, loaded = load_asset(reference, workspace=ws)
    assert loaded == asset
    assert frame.loc[0, "Age"] == (29.0 if version == 1 else 99.0)


def test_unknown_name_names_what_exists_and_the_fix(ws):
    with pytest.raises(AssetNotFoundError, match="none is registered yet"):
        get_asset("nothing", workspace=ws)
    register_asset(NAME, titanic_path(), workspace=ws)
    with pytest.raises(AssetNotFoundError) as caught:
        get_asset("titanic@latest", workspace=ws)
    message = str(caught.value)
    assert f"registered: {NAME}" in message
    assert "titanicml data create --name titanic --path PATH" in message
    with pytest.raises(AssetNotFoundError, match="did you mean 'titanic-dataset'"):
        get_asset("Titanic-Dataset", workspace=ws)
    with pytest.raises(AssetNotFoundError, match="registered: titanic-dataset"):
        list_versions("titanic", workspace=ws)
    assert isinstance(caught.value, DataError)


def test_unknown_version_names_the_versions(ws):
    register_asset(NAME, titanic_path(), workspace=ws)
    with pytest.raises(AssetNotFoundError, match=f"has no version 7; it has 1: use {NAME}@latest"):
        get_asset(f"azureml:{NAME}:7", workspace=ws)
    with pytest.raises(AssetNotFoundError, match="has no version 0"):
        load_asset(f"{NAME}@0", workspace=ws)


@pytest.mark.parametrize(
    "reference, message",
    [
        (f"{NAME}:latest", "must be a number; use titanic-dataset@latest"),
        (f"{NAME}@v2", "is not a data asset reference"),
        ("data/x@1", "is not a data asset reference"),
        ("azureml:", "is not a data asset reference"),
    ],
)
def test_misspelled_reference_says_how_to_write_one(reference, message, ws):
    register_asset(NAME, titanic_path(), workspace=ws)
    with pytest.raises(DataError, match=message):
        get_asset(reference, workspace=ws)


@pytest.mark.parametrize("name", ["", "-leading", ".hidden", "has space", "a/b", "x" * 256, "é"])
def test_bad_names_are_refused_before_anything_is_written(name, ws):
    with pytest.raises(ConfigError, match="invalid data asset name"):
        register_asset(name, titanic_path(), workspace=ws)
    assert not ws.exists()


def test_longest_valid_name_is_accepted(ws):
    name = "a" + "b_.-" * 63 + "yz"
    assert len(name) == 255
    assert register_asset(name, titanic_path(), workspace=ws).reference == f"{name}@1"


@pytest.mark.parametrize("content, message", [("", "is empty"), ("a,b,Survived\n", "no data rows")])
def test_empty_file_is_refused_naming_the_users_path(content, message, ws, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        register_asset("empty", path, workspace=ws)
    assert str(path) in str(caught.value) and ".staging" not in str(caught.value)
    assert list_assets(workspace=ws) == []
    assert list((ws / "data" / ".staging").iterdir()) == []


def test_missing_path_unsupported_file_and_wrong_type_are_refused(ws, tmp_path):
    with pytest.raises(DataFormatError, match="no such file or folder"):
        register_asset("x", tmp_path / "nope.csv", workspace=ws)
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match=r"unsupported file type '\.txt'"):
        register_asset("x", tmp_path / "data.txt", workspace=ws)
    with pytest.raises(ConfigError, match="is a file, not a uri_folder; use --type uri_file"):
        register_asset("x", titanic_path(), type="uri_folder", workspace=ws)
    with pytest.raises(ConfigError, match="is a folder, not a uri_file"):
        register_asset("x", tmp_path, type="uri_file", workspace=ws)
    with pytest.raises(ConfigError, match="unknown data asset type 'mltable'"):
        register_asset("x", titanic_path(), type="mltable", workspace=ws)
    empty_folder = tmp_path / "empty-folder"
    empty_folder.mkdir()
    with pytest.raises(DataFormatError, match=r"holds no \.csv or \.parquet file"):
        register_asset("x", empty_folder, workspace=ws)
    assert list_assets(workspace=ws) == []


def test_changed_stored_data_is_refused_on_load(ws):
    asset = register_asset(NAME, titanic_path(), workspace=ws)
    with asset.path.open("a") as handle:
        handle.write("1,1,Extra,male,30,0,0,1,1.0,,S,,,\n")
    with pytest.raises(DataError, match="was changed or removed after registration"):
        load_asset(NAME, workspace=ws)


# -- atomicity and concurrency -------------------------------------------------------


def _partial_copy(source, target):
    """Write half of a file, like a copy interrupted mid-way."""
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def test_failed_copy_leaves_no_version(ws, tmp_path, monkeypatch):
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in ("a", "b", "c"):
        shutil.copyfile(titanic_path(), folder / f"{part}.csv")
    copied = []

    def failing_copy(source, target):
        if len(copied) == 1:
            _partial_copy(source, target)
            raise OSError(28, "No space left on device")
        copied.append(source)
        shutil.copyfile(source, target)

    monkeypatch.setattr(assets, "_copy_file", failing_copy)
    with pytest.raises(OSError, match="No space left"):
        register_asset("parts", folder, workspace=ws)
    assert list_assets(workspace=ws) == []
    assert _version_folders(ws, "parts") == []
    assert list((ws / "data" / ".staging").iterdir()) == []
    with pytest.raises(AssetNotFoundError):
        get_asset("parts", workspace=ws)

    monkeypatch.undo()
    assert register_asset("parts", folder, workspace=ws).version == 1


def _crash_while_copying(workspace, path):
    """Child process: die (no cleanup, no exception handling) half-way through the copy."""
    from titanicml.data import assets

    def crash(source, target):
        _partial_copy(source, target)
        os._exit(17)

    assets._copy_file = crash
    assets.register_asset(NAME, path, workspace=workspace)


def test_crash_mid_copy_leaves_only_an_ignored_staging_folder(ws):
    process = multiprocessing.get_context("spawn").Process(
        target=_crash_while_copying, args=(ws, titanic_path())
    )
    process.start()
    process.join(120)
    assert process.exitcode == 17
    (leftover,) = (ws / "data" / ".staging").iterdir()
    assert 0 < sum(f.stat().st_size for f in leftover.rglob("*")) < titanic_path().stat().st_size
    assert list_assets(workspace=ws) == []
    with pytest.raises(AssetNotFoundError, match="none is registered yet"):
        get_asset(NAME, workspace=ws)

    asset = register_asset(NAME, titanic_path(), workspace=ws)
    assert asset.version == 1 and asset.sha256 == _sha256(titanic_path())


def _register_together(workspace, name, path, barrier, results):
    """Child process: stage the data, then meet the other process at the lock."""
    import filelock

    from titanicml.data import assets

    real_lock = filelock.FileLock

    def lock_after_barrier(*args, **kwargs):
        barrier.wait(60)  # both have staged and hashed: they now race for the version
        return real_lock(*args, **kwargs)

    filelock.FileLock = lock_after_barrier
    asset = assets.register_asset(name, path, workspace=workspace)
    results.put((asset.version, asset.sha256))


def _race(workspace, paths):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(paths)), ctx.Queue()
    processes = [
        ctx.Process(target=_register_together, args=(workspace, NAME, path, barrier, results))
        for path in paths
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    return [results.get(timeout=10) for _ in processes]


def test_concurrent_registration_of_the_same_content_makes_one_version(ws, tmp_path):
    copy = tmp_path / "copy.csv"
    shutil.copyfile(titanic_path(), copy)
    outcomes = _race(ws, [titanic_path(), copy])
    assert [version for version, _ in outcomes] == [1, 1]
    assert _version_folders(ws, NAME) == ["1"]
    assert [a.version for a in list_versions(NAME, workspace=ws)] == [1]


def test_concurrent_registration_of_different_content_makes_two_versions(ws, tmp_path):
    outcomes = _race(ws, [titanic_path(), _changed_titanic(tmp_path)])
    assert sorted(version for version, _ in outcomes) == [1, 2]
    assert len({sha for _, sha in outcomes}) == 2
    assert _version_folders(ws, NAME) == ["1", "2"]
    stored = {a.version: a.sha256 for a in list_versions(NAME, workspace=ws)}
    assert stored == dict(outcomes)


# -- using assets --------------------------------------------------------------------


def test_resolve_data_takes_a_reference(ws, tmp_path):
    asset = register_asset(NAME, titanic_path(), workspace=ws)
    frame, ref = resolve_data(f"azureml:{NAME}@latest", workspace=ws)
    assert frame.shape == (1309, 14)
    assert ref.asset == f"{NAME}@1"
    assert ref.source == f"azureml:{NAME}@latest"
    assert ref.sha256 == asset.sha256
    assert ref.to_params()["data_asset"] == f"{NAME}@1"
    with pytest.raises(AssetNotFoundError, match="titanicml data create"):
        resolve_data("other@latest", workspace=ws)


def test_an_existing_path_wins_over_a_reference(ws, tmp_path, monkeypatch):
    register_asset(NAME, titanic_path(), workspace=ws)
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{NAME}@1").write_text("x,y\n1,2\n")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        resolve_data(f"{NAME}@1", workspace=ws)
    # A missing file that only looks like a name stays a missing file.
    with pytest.raises(DataFormatError, match="no such file"):
        resolve_data("missing.csv", workspace=ws)


def test_trainer_fits_on_an_asset_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("TITANICML_HOME", str(tmp_path / "home"))
    asset = register_asset(NAME, titanic_path())
    trainer = Trainer(target="Survived", time_budget=3, exclude=["Boat", "Body"], track=False)
    result = trainer.fit(f"{NAME}@latest")
    assert result.data.asset == f"{NAME}@1"
    assert result.data.source == f"{NAME}@latest"
    assert result.data.sha256 == asset.sha256
    assert result.data.n_rows == 1309


def test_tracked_training_logs_the_asset(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("TITANICML_HOME", str(tmp_path / "home"))
    asset = register_asset(NAME, titanic_path())
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    trainer = Trainer(target="Survived", time_budget=3, exclude=["Boat", "Body"], tracking_uri=uri)
    result = trainer.fit(f"azureml:{NAME}:1")
    params = MlflowClient(uri).get_run(result.run_id).data.params
    assert params["data_asset"] == f"{NAME}@1"
    assert params["data_sha256"] == asset.sha256
    assert params["data_source"] == f"azureml:{NAME}:1"


# -- profile -------------------------------------------------------------------------


def test_profile_is_exact_and_json_round_trips():
    rng = np.random.default_rng(0)
    values = rng.normal(10, 3, size=1000)
    values[:10] = np.nan
    frame = pd.DataFrame(
        {
            "x": values,
            "n": np.arange(1000, dtype="int64") * 3,
            "c": ["a"] * 500 + ["b"] * 300 + [f"v{i}" for i in range(199)] + [None],
            "flag": [True, False] * 500,
            "empty": [np.nan] * 1000,
            "wild": [np.inf, -np.inf] + [1.0] * 998,
        }
    )
    profile = profile_frame(frame)
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile
    columns = {c["name"]: c for c in profile["columns"]}
    assert [c["name"] for c in profile["columns"]] == list(frame.columns)

    x = columns["x"]
    finite = values[~np.isnan(values)]
    assert (x["kind"], x["n_missing"], x["missing_fraction"]) == ("numeric", 10, 0.01)
    assert x["mean"] == float(finite.mean())
    assert x["std"] == float(finite.std(ddof=1))
    assert x["quantiles"]["p05"] == float(np.quantile(finite, 0.05))
    assert list(x["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    counts, edges = np.histogram(finite, bins=10)
    assert x["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
    assert sum(x["histogram"]["counts"]) == 990

    n = columns["n"]
    assert (n["min"], n["max"], n["n_unique"]) == (0, 2997, 1000)
    assert isinstance(n["max"], int)

    c = columns["c"]
    assert c["kind"] == "categorical" and c["n_missing"] == 1
    assert len(c["top_values"]) == 20
    assert c["top_values"][:2] == [
        {"value": "a", "count": 500, "fraction": 0.5},
        {"value": "b", "count": 300, "fraction": 0.3},
    ]
    assert c["top_values"][2]["value"] == "v0"  # ties ordered by value
    assert c["n_other"] == 999 - 500 - 300 - 18

    assert columns["flag"]["kind"] == "boolean"
    assert columns["flag"]["top_values"] == [
        {"value": False, "count": 500, "fraction": 0.5},
        {"value": True, "count": 500, "fraction": 0.5},
    ]
    empty = columns["empty"]
    assert (empty["n_missing"], empty["mean"], empty["histogram"]) == (1000, None, None)
    wild = columns["wild"]
    assert (wild["n_infinite"], wild["min"], wild["max"], wild["std"]) == (2, 1.0, 1.0, 0.0)
    assert not any(
        isinstance(v, float) and not math.isfinite(v) for v in wild["quantiles"].values()
    )


def test_schema_of_lists_names_and_dtypes():
    frame = pd.DataFrame({"a": [1], 2: ["x"]})
    assert schema_of(frame) == [
        {"name": "a", "dtype": "int64"},
        {"name": "2", "dtype": str(frame.dtypes[2])},
    ]


# -- command line --------------------------------------------------------------------


def test_cli_create_list_show(tmp_path, cli):
    workspace = str(tmp_path / "ws")
    out = cli(
        "data",
        "create",
        "--name",
        NAME,
        "--path",
        str(titanic_path()),
        "--description",
        "Titanic passengers",
        "--workspace",
        workspace,
    )
    assert out.returncode == 0, out.stderr
    assert f"Registered data asset {NAME} version 1" in out.stdout
    again = cli(
        "data", "create", "--name", NAME, "--path", str(titanic_path()), "--workspace", workspace
    )
    assert again.returncode == 0 and "already holds this content" in again.stdout
    assert [a.version for a in list_versions(NAME, workspace=workspace)] == [1]

    listing = cli("data", "list", "--workspace", workspace)
    assert listing.returncode == 0 and NAME in listing.stdout

    shown = cli("data", "show", f"azureml:{NAME}:1", "--workspace", workspace)
    assert shown.returncode == 0, shown.stderr
    assert f"{NAME}@1" in shown.stdout and _sha256(titanic_path()) in shown.stdout
    assert "Numeric columns" in shown.stdout and "male (843)" in shown.stdout

    as_json = cli("data", "show", NAME, "--json", "--workspace", workspace)
    assert json.loads(as_json.stdout) == get_asset(NAME, workspace=workspace).to_dict()


def test_cli_uses_titanicml_home_then_the_working_directory(tmp_path, cli):
    out = cli(
        "data",
        "create",
        "--name",
        "local-data",
        "--path",
        str(titanic_path()),
        cwd=tmp_path,
        env={"TITANICML_HOME": ""},
    )
    assert out.returncode == 0, out.stderr
    assert [a.name for a in list_assets(workspace=tmp_path / ".titanicml")] == ["local-data"]
    home = tmp_path / "home"
    out = cli(
        "data",
        "create",
        "--name",
        "home-data",
        "--path",
        str(titanic_path()),
        cwd=tmp_path,
        env={"TITANICML_HOME": str(home)},
    )
    assert out.returncode == 0, out.stderr
    assert [a.name for a in list_assets(workspace=home)] == ["home-data"]
    listed = cli("data", "list", cwd=tmp_path, env={"TITANICML_HOME": str(home)})
    assert "home-data" in listed.stdout and "local-data" not in listed.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["create", "--name", "x", "--path", "missing.csv"], "no such file or folder"),
        (["create", "--name", "bad name", "--path", "data.csv"], "invalid data asset name"),
        (["create", "--name", "x", "--path", "empty.csv"], "is empty"),
        (["create", "--name", "x", "--path", "data.csv", "--type", "mltable"], "invalid choice"),
        (["show", "nothing"], "no data asset named 'nothing'"),
        (["show", "x:latest"], "must be a number"),
        (["list", "--json"], "unrecognized arguments"),
    ],
)
def test_cli_user_errors_print_one_line_and_exit_2(args, message, tmp_path, cli):
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "empty.csv").write_text("")
    out = cli("data", *args, "--workspace", str(tmp_path / "ws"), cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert list_assets(workspace=tmp_path / "ws") == []


def test_cli_data_without_a_verb_is_a_usage_error(tmp_path, cli):
    out = cli("data", cwd=tmp_path)
    assert out.returncode == 2
    assert "the following arguments are required: COMMAND" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
