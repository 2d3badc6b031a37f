"""The package's shape: layers that import only downward, no cycles, no borrowed privates."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "titanicml"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """Every import of a module (module level, in functions, under TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            found += [(base, alias.name) for alias in node.names]
    return [(target, imported) for target, imported in found if target.startswith("titanicml")]


def _resolve(target: str, imported: str | None, modules: dict[str, Path]) -> str:
    candidate = f"{target}.{imported}" if imported else target
    while candidate not in modules and "." in candidate:
        candidate = candidate.rpartition(".")[0]
    return candidate


def _lint(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    pytest.importorskip("importlinter")
    from importlinter.cli import lint_imports

    status = lint_imports(config_filename=str(config), no_cache=True, no_logo=True)
    return status, capsys.readouterr().out


def test_layers_contract_holds(capsys):
    """The import-linter contract of pyproject.toml (docs/architecture.md draws it)."""
    status, report = _lint(ROOT / "pyproject.toml", capsys)
    assert status == 0, report
    assert "titanicml layers KEPT" in report


def test_the_contract_catches_an_upward_import(tmp_path, monkeypatch, capsys):
    """A lower layer importing a higher one breaks the contract (the check can fail)."""
    import shutil
    import sys

    copy = tmp_path / "titanicml"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec_file = copy / "spec.py"
    spec_file.write_text(spec_file.read_text() + "\n\ndef _upward():\n    import titanicml.cli\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the linter puts the working directory first on sys.path
    for name in [m for m in sys.modules if m == "titanicml" or m.startswith("titanicml.")]:
        monkeypatch.delitem(sys.modules, name)
    status, report = _lint(tmp_path / "pyproject.toml", capsys)
    assert status != 0
    assert "titanicml.spec is not allowed to import titanicml.cli" in report


def test_no_import_cycle_between_modules():
    modules = _modules()
    edges = {
        name: {
            dest
            for target, imported in _imports(name, path, modules)
            if (dest := _resolve(target, imported, modules)) not in (name, "titanicml")
        }
        for name, path in modules.items()
    }
    # A module is in a cycle if it can reach itself.
    in_cycles = []
    for start in edges:
        seen, stack = set(), list(edges[start])
        while stack:
            current = stack.pop()
            if current == start:
                in_cycles.append(start)
                break
            if current not in seen:
                seen.add(current)
                stack.extend(edges.get(current, ()))
    assert in_cycles == []


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    borrowed = [
        f"{name} takes {imported} from {_resolve(target, imported, modules)}"
        for name, path in modules.items()
        for target, imported in _imports(name, path, modules)
        if imported
        and imported.startswith("_")
        and not imported.startswith("__")
        and _resolve(target, imported, modules) != name
    ]
    assert borrowed == []


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
