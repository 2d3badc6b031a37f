"""A model never runs code it was not trusted with: every attack, in every load path.

Each attack copies the session's saved model and plants a payload that creates a
marker file. Every load path must refuse the copy with a clear error, and the
marker must never appear. ``test_the_attacks_work_without_the_checks`` shows that
each payload does run when the model is loaded without titanicml's checks.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import pickle
import py_compile
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from titanicml import load_model
from titanicml.exceptions import (
    ModelError,
    ModelIntegrityError,
    UnsafePickleError,
    UntrustedModelError,
)
from titanicml.model.layout import load_model_dir
from titanicml.model.manifest import trust_key, verify_manifest
from titanicml.model.signing import sign_model_dir
from titanicml.model.unpickle import load_pickled_model

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = "import pathlib; pathlib.Path({marker!r}).write_text('payload ran')\n"
_counter = itertools.count()


class Payload:
    """Unpickled, it runs ``exec(code)``: what a malicious model.joblib does."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def _plain_checksums(root: Path) -> None:
    """Rewrite MANIFEST.json as the unsigned checksum list titanicml wrote before signing."""
    from titanicml._utils.hashing import file_sha256

    files = {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "MANIFEST.json"
    }
    (root / "MANIFEST.json").write_text(json.dumps({"sha256": files}, indent=1))


def _evil_pickle(root: Path, marker: Path) -> None:
    (root / "artifacts" / "model.joblib").write_bytes(
        pickle.dumps(Payload(PAYLOAD.format(marker=str(marker))), protocol=4)
    )


def _edit_package_init(root: Path, marker: Path, keys: dict[str, Path]) -> None:
    """(a) code/titanicml/__init__.py runs the payload; the manifest is left as it was."""
    init = root / "code" / "titanicml" / "__init__.py"
    init.write_text(init.read_text() + PAYLOAD.format(marker=str(marker)))


def _unchecked_pyc(root: Path, marker: Path, keys: dict[str, Path]) -> None:
    """(b) an unchecked-hash .pyc of the package's __init__: Python runs it, not the source."""
    package = root / "code" / "titanicml"
    evil = root.parent / f"{root.name}-evil-init.py"
    evil.write_text((package / "__init__.py").read_text() + PAYLOAD.format(marker=str(marker)))
    py_compile.compile(
        str(evil),
        cfile=importlib.util.cache_from_source(str(package / "__init__.py")),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        doraise=True,
    )
    evil.unlink()


def _pickle_with_checksums(root: Path, marker: Path, keys: dict[str, Path]) -> None:
    """(c) a malicious model.joblib, and MANIFEST.json regenerated as a checksum list."""
    _evil_pickle(root, marker)
    _plain_checksums(root)


def _pickle_signed_by_stranger(root: Path, marker: Path, keys: dict[str, Path]) -> None:
    """(c) a malicious model.joblib, and MANIFEST.json signed again with the attacker's key."""
    _evil_pickle(root, marker)
    sign_model_dir(root, keys["attacker"])


def _pickle_signed_by_trusted_key(root: Path, marker: Path, keys: dict[str, Path]) -> None:
    """A malicious model.joblib signed with a trusted key (stolen, or its owner's own)."""
    _evil_pickle(root, marker)
    sign_model_dir(root, keys["workspace"])


# attack -> (how it is made, the error every path raises, what the message says)
ATTACKS = {
    "package-init": (_edit_package_init, ModelIntegrityError, r"changed: code/titanicml/__init__"),
    "unchecked-pyc": (
        _unchecked_pyc,
        ModelIntegrityError,
        r"added: code/titanicml/__pycache__/__init__\.cpython-\d+\.pyc",
    ),
    "pickle-checksums": (_pickle_with_checksums, UntrustedModelError, r"is not signed"),
    "pickle-stranger-key": (
        _pickle_signed_by_stranger,
        UntrustedModelError,
        r"which is not trusted here.*titanicml model trust-key",
    ),
    "pickle-trusted-key": (
        _pickle_signed_by_trusted_key,
        UnsafePickleError,
        r"refers to builtins\.exec, which titanicml does not unpickle",
    ),
}


class Lab(NamedTuple):
    workspace: Path  # TITANICML_HOME of the loading side: trusts the saved model's key
    copies: dict[str, Path]
    markers: dict[str, Path]
    good: Path


def _build(saved_model: Path, base: Path, name: str) -> Lab:
    workspace = base / "workspace"
    trust_key(saved_model, workspace)
    keys = {"attacker": base / "attacker" / "keys", "workspace": workspace / "keys"}
    copies, markers = {}, {}
    for attack, (make, _, _) in ATTACKS.items():
        copy = base / attack / name
        shutil.copytree(saved_model, copy, ignore=shutil.ignore_patterns("__pycache__"))
        markers[attack] = base / f"PAYLOAD-RAN-{attack}"
        make(copy, markers[attack], keys)
        copies[attack] = copy
    good = base / "good" / name
    shutil.copytree(saved_model, good, ignore=shutil.ignore_patterns("__pycache__"))
    return Lab(workspace, copies, markers, good)


@pytest.fixture(scope="module")
def lab(saved_model, tmp_path_factory) -> Lab:
    return _build(saved_model, tmp_path_factory.mktemp("attacks"), saved_model.name)


@pytest.fixture
def home(lab, monkeypatch) -> Path:
    """This test loads with the lab's workspace: it trusts the saved model's key only."""
    monkeypatch.setenv("TITANICML_HOME", str(lab.workspace))
    monkeypatch.delenv("TITANICML_TRUSTED_KEYS", raising=False)
    return lab.workspace


def _no_payload_ran(lab: Lab) -> None:
    ran = sorted(name for name, marker in lab.markers.items() if marker.exists())
    assert ran == [], f"payloads ran: {ran}"


def _import_score(path: Path):
    spec = importlib.util.spec_from_file_location(f"score_attack_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- in this process: titanicml.load_model, load_model_dir, score.py, the CLI --------


@pytest.mark.parametrize("attack", ATTACKS)
def test_load_model_refuses(attack, lab, home):
    _, error, message = ATTACKS[attack]
    with pytest.raises(error, match=message):
        load_model(lab.copies[attack])
    _no_payload_ran(lab)


@pytest.mark.parametrize("attack", ATTACKS)
def test_load_model_dir_refuses(attack, lab, home):
    _, error, message = ATTACKS[attack]
    with pytest.raises(error, match=message):
        load_model_dir(lab.copies[attack])
    _no_payload_ran(lab)


@pytest.mark.parametrize("attack", ATTACKS)
def test_score_py_init_refuses(attack, lab, home, monkeypatch):
    _, error, message = ATTACKS[attack]
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(lab.copies[attack]))
    score = _import_score(lab.copies[attack] / "score.py")
    with pytest.raises(error, match=message):
        score.init()
    _no_payload_ran(lab)
    with pytest.raises(RuntimeError, match="init"):
        score.run("{}")


@pytest.mark.parametrize("attack", ATTACKS)
def test_online_endpoint_serve_refuses_at_startup(attack, lab, home, cli, monkeypatch):
    def serving(*args, **kwargs):
        raise AssertionError("the endpoint started serving a refused model")

    monkeypatch.setattr("titanicml.serve.server.serve", serving)
    _, _, message = ATTACKS[attack]
    out = cli("online-endpoint", "serve", "--model", lab.copies[attack], "--auth", "none")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert re.search(message, out.stderr), out.stderr
    _no_payload_ran(lab)


@pytest.mark.parametrize("attack", ATTACKS)
def test_model_register_path_refuses(attack, lab, home, cli, tmp_path):
    _, error, message = ATTACKS[attack]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["model", "register", "--name", "m", "--path", lab.copies[attack], "--tracking-uri"]
    out = cli(*args, store)
    if error is UnsafePickleError:
        # Signed by a trusted key, every file as signed: registered (nothing is unpickled
        # to register), and refused by the allow-list when the version is loaded.
        assert out.returncode == 0, out.stderr
        with pytest.raises(UnsafePickleError, match=message):
            load_model("m:1", tracking_uri=store)
    else:
        assert out.returncode == 2
        assert len(out.stderr.strip().splitlines()) == 1
        assert re.search(message, out.stderr), out.stderr
        assert not (tmp_path / "mlflow.db").exists(), "nothing was registered, no store made"
    _no_payload_ran(lab)


def test_an_untouched_copy_loads_and_scores(lab, home, monkeypatch, titanic_result):
    row = [{"Age": 22, "Pclass": 3, "Sex": "male"}]
    expected = titanic_result.predict(row).tolist()
    assert load_model(lab.good).predict(row).tolist() == expected
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(lab.good))
    score = _import_score(lab.good / "score.py")
    score.init()
    assert score.run(json.dumps({"data": row}))["predictions"] == expected


# -- in fresh processes: mlflow.pyfunc.load_model and score.py, as deployments run them -----

MLFLOW_SCRIPT = """
import json, sys
{hide}
import mlflow.pyfunc
results = {{}}
for name, path in {targets!r}.items():
    try:
        mlflow.pyfunc.load_model(path)
        results[name] = "loaded"
    except BaseException as exc:
        results[name] = type(exc).__name__ + ": " + str(exc)
import titanicml
results["titanicml from"] = titanicml.__file__
print(json.dumps(results))
"""

SCORE_SCRIPT = """
import importlib.util, json, os, sys
{hide}
results = {{}}
for index, (name, path) in enumerate({targets!r}.items()):
    os.environ["AZUREML_MODEL_DIR"] = path
    spec = importlib.util.spec_from_file_location(f"score_{{index}}", path + "/score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.init()
        results[name] = "loaded"
    except BaseException as exc:
        results[name] = type(exc).__name__ + ": " + str(exc)
import titanicml
results["titanicml from"] = titanicml.__file__
print(json.dumps(results))
"""
# Where titanicml is not installed, as on Azure: the repository's folder off sys.path.
HIDE_TITANICML = (
    f"sys.path = [p for p in sys.path if p not in ('', {str(REPO)!r})]\n"
    "if importlib.util.find_spec('titanicml') is not None: sys.exit(77)\n"
)


def _run(script: str, lab: Lab, cwd: Path, installed: bool) -> dict:
    targets = {name: str(path) for name, path in lab.copies.items()}
    targets["good"] = str(lab.good)  # last: once loaded, titanicml is imported
    hide = "" if installed else "import importlib.util\n" + HIDE_TITANICML
    env = {**os.environ, "TITANICML_HOME": str(lab.workspace)}
    env.pop("TITANICML_TRUSTED_KEYS", None)
    out = subprocess.run(
        [sys.executable, "-c", script.format(hide=hide, targets=targets)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    if out.returncode == 77:
        pytest.skip("titanicml is in site-packages here; this check needs an editable install")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check(results: dict, lab: Lab) -> None:
    _no_payload_ran(lab)
    assert results["good"] == "loaded"
    for attack, (_, _, message) in ATTACKS.items():
        assert re.search(message, results[attack]), results[attack]
    # Imported from a verified model's code/ (the copy whose only change is its pickle,
    # or the good one), never from a refused one.
    origin = Path(results["titanicml from"])
    assert origin.parent.parent.name == "code", origin
    assert origin.parents[2] in (lab.good, lab.copies["pickle-trusted-key"]), origin


@pytest.mark.parametrize("installed", [True, False], ids=["installed", "not-installed"])
def test_mlflow_pyfunc_load_model_refuses(installed, lab, tmp_path):
    _check(_run(MLFLOW_SCRIPT, lab, tmp_path, installed), lab)


def test_score_py_init_refuses_where_titanicml_is_not_installed(lab, tmp_path):
    _check(_run(SCORE_SCRIPT, lab, tmp_path, installed=False), lab)


def test_the_attacks_work_without_the_checks(saved_model, tmp_path):
    """The payloads are real: imported or unpickled without titanicml's checks, each runs."""
    control = _build(saved_model, tmp_path, saved_model.name)
    script = "import sys, joblib\n"
    for attack in ("package-init", "unchecked-pyc"):
        code = str(control.copies[attack] / "code")
        script += (
            f"sys.path.insert(0, {code!r}); import titanicml; sys.path.remove({code!r})\n"
            "for m in [m for m in sys.modules if m.split('.')[0] == 'titanicml']:"
            " del sys.modules[m]\n"
        )
    for attack in ("pickle-checksums", "pickle-stranger-key", "pickle-trusted-key"):
        script += f"joblib.load({str(control.copies[attack] / 'artifacts' / 'model.joblib')!r})\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert sorted(n for n, m in control.markers.items() if m.exists()) == sorted(ATTACKS)


# -- trust, keys, old models ---------------------------------------------------------------


def test_a_stranger_key_loads_once_trusted_with_the_cli(lab, cli, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.delenv("TITANICML_TRUSTED_KEYS", raising=False)
    env = {"TITANICML_HOME": str(home)}
    out = cli("online-endpoint", "serve", "--model", lab.good, "--auth", "none", env=env)
    assert out.returncode == 2
    assert "is not trusted here" in out.stderr
    assert f"titanicml model trust-key {lab.good}" in out.stderr
    trusted = cli("model", "trust-key", lab.good)
    assert trusted.returncode == 0, trusted.stderr
    key = json.loads((lab.good / "MANIFEST.json").read_text())["public_key"]
    assert f"Trusted key {key}" in trusted.stdout
    assert load_model(lab.good).task == "binary"
    listed = cli("model", "trust-key", "--list")
    assert key in listed.stdout and "trusted" in listed.stdout
    verified = cli("model", "verify", "--model", lab.good)
    assert verified.returncode == 0 and "files match the signed manifest" in verified.stdout


def test_trusted_keys_from_the_environment(lab, tmp_path, monkeypatch):
    key = json.loads((lab.good / "MANIFEST.json").read_text())["public_key"]
    monkeypatch.setenv("TITANICML_HOME", str(tmp_path / "empty"))
    with pytest.raises(UntrustedModelError, match="not trusted here"):
        verify_manifest(lab.good)
    monkeypatch.setenv("TITANICML_TRUSTED_KEYS", f"ed25519:AAAA, {key}")
    with pytest.raises(ModelError, match="TITANICML_TRUSTED_KEYS"):
        verify_manifest(lab.good)  # a typo is an error, not a silently ignored key
    monkeypatch.setenv("TITANICML_TRUSTED_KEYS", key)
    assert verify_manifest(lab.good)["public_key"] == key


def test_trust_key_mistakes_are_one_line(cli, tmp_path):
    for source in ("ed25519:not-base64!", str(tmp_path / "absent")):
        out = cli("model", "trust-key", source, env={"TITANICML_HOME": str(tmp_path)})
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "keys" / "trusted").exists()


def test_a_model_saved_before_signing_is_refused_with_the_fix(lab, home, tmp_path, cli):
    old = tmp_path / "old-model"
    shutil.copytree(lab.good, old)
    _plain_checksums(old)
    with pytest.raises(UntrustedModelError, match=r"not signed.*re-export it with this titanicml"):
        load_model(old)
    out = cli("model", "trust-key", old)
    assert out.returncode == 2 and "not signed" in out.stderr
    with pytest.raises(UntrustedModelError):
        load_model(old)  # trust-key did not make it loadable


def test_signing_key_lives_in_the_workspace_readable_by_its_owner_only(titanic_result, tmp_path):
    from titanicml.model.artifact import save_model

    workspace = tmp_path / "ws"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TITANICML_HOME", str(workspace))
        root = save_model(titanic_result.model, tmp_path / "m", titanic_result.metadata())
        key_file = workspace / "keys" / "signing.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
        assert not [p for p in root.rglob("*") if p.name.endswith((".key", ".pem"))]
        assert b"PRIVATE KEY" not in b"".join(p.read_bytes() for p in root.rglob("*.json"))
        manifest = json.loads((root / "MANIFEST.json").read_text())
        assert verify_manifest(root)["public_key"] == manifest["public_key"]
        again = save_model(titanic_result.model, tmp_path / "m2", titanic_result.metadata())
        assert (
            json.loads((again / "MANIFEST.json").read_text())["public_key"]
            == (manifest["public_key"])
        ), "the key is made once and reused"


def test_changed_manifest_content_breaks_the_signature(lab, home, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(lab.good, copy)
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["sha256"]["MLmodel"] = "0" * 64
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=r"signature of .* does not match its content"):
        load_model(copy)


def test_python_written_bytecode_is_accepted_other_bytecode_is_not(lab, home, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(lab.good, copy)
    module = copy / "code" / "titanicml" / "model" / "layout.py"
    for source in (module, copy / "mlflow_entry.py", copy / "score.py"):
        py_compile.compile(str(source), doraise=True)  # what an import writes
    assert load_model(copy).task == "binary"
    # The same file name, with another module's code in it: refused.
    other = copy / "code" / "titanicml" / "model" / "payload.py"
    py_compile.compile(str(other), cfile=importlib.util.cache_from_source(str(module)))
    with pytest.raises(ModelIntegrityError, match=r"added: code/titanicml/model/__pycache__"):
        load_model(copy)
    # Its own code, but unchecked: Python would never look at the source again.
    py_compile.compile(str(module), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    with pytest.raises(ModelIntegrityError, match="what Python compiles from the signed source"):
        load_model(copy)


def test_links_and_unlisted_files_are_refused(lab, home, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(lab.good, copy)
    (copy / "code" / "sitecustomize.py").write_text("print('hi')")
    with pytest.raises(ModelIntegrityError, match=r"added: code/sitecustomize\.py"):
        load_model(copy)
    (copy / "code" / "sitecustomize.py").unlink()
    (copy / "code" / "titanicml" / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(ModelIntegrityError, match="symbolic link, code/titanicml/elsewhere"):
        load_model(copy)


# -- the allow-listed unpickler ----------------------------------------------------------


def _stack_global(module: str, name: str) -> bytes:
    """A protocol-4 pickle that resolves ``module.name`` and calls it with no argument."""

    def text(value: str) -> bytes:
        data = value.encode()
        return b"\x8c" + bytes([len(data)]) + data

    return b"\x80\x04" + text(module) + text(name) + b"\x93" + b")R."


REFUSED_GLOBALS = [
    ("os", "system"),
    ("builtins", "eval"),
    ("subprocess", "Popen"),
    ("numpy", "testing.os.system"),  # a walk from an allowed package to os
    ("numpy", "memmap"),  # writes files
    ("pandas", "read_pickle"),  # an allowed package's function
    ("pandas.io.pytables", "HDFStore"),  # an allowed package's I/O class
    ("catboost.core", "Pool"),  # reads the file its argument names
    ("catboost.widget", "MetricVisualizer"),  # a notebook widget reading training files
    ("titanicml.cli", "main"),
]


@pytest.mark.parametrize(("module", "name"), REFUSED_GLOBALS)
def test_unpickler_refuses_what_a_model_never_holds(module, name, tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(_stack_global(module, name))
    with pytest.raises(UnsafePickleError, match="which titanicml does not unpickle"):
        load_pickled_model(path)


@pytest.mark.parametrize(("module", "name"), REFUSED_GLOBALS)
def test_a_plain_pickle_to_register_goes_through_the_same_allow_list(module, name, tmp_path):
    from titanicml.model.pickled import read_pickle

    path = tmp_path / "model.pkl"
    path.write_bytes(_stack_global(module, name))
    with pytest.raises(UnsafePickleError, match=f"refers to {re.escape(f'{module}.{name}')},"):
        read_pickle(path)


def test_unpickler_refuses_a_payload_in_a_joblib_object_array(tmp_path):
    import joblib
    import numpy as np

    marker = tmp_path / "ran"
    array = np.empty(1, dtype=object)
    array[0] = Payload(PAYLOAD.format(marker=str(marker)))
    joblib.dump({"values": array}, tmp_path / "m.joblib")
    with pytest.raises(UnsafePickleError, match=r"builtins\.exec"):
        load_pickled_model(tmp_path / "m.joblib")
    assert not marker.exists()
    joblib.dump({"values": np.array(["a", None], dtype=object)}, tmp_path / "ok.joblib")
    assert load_pickled_model(tmp_path / "ok.joblib")["values"].tolist() == ["a", None]


def test_unpickler_loads_the_fitted_models(titanic_result, regression_result, titanic, tmp_path):
    import joblib
    import numpy as np

    regression, diabetes = regression_result
    for model, rows in (
        (titanic_result.model, titanic.drop(columns=["Survived"])),
        (regression.model, diabetes.drop(columns=["target"])),
    ):
        joblib.dump(model, tmp_path / "m.joblib")
        loaded = load_pickled_model(tmp_path / "m.joblib")
        assert type(loaded) is type(model)
        np.testing.assert_allclose(loaded.predict(rows), model.predict(rows))


def test_bytes_checked_are_the_bytes_unpickled(lab, tmp_path):
    manifest = json.loads((lab.good / "MANIFEST.json").read_text())
    expected = manifest["sha256"]["artifacts/model.joblib"]
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ModelIntegrityError, match="changed after the model's manifest"):
        load_pickled_model(path, expected)
