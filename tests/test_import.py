import subprocess
import sys

HEAVY = ("flaml", "mlflow", "sklearn", "azure", "lightgbm", "xgboost", "pandas")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_titanicml_loads_no_heavy_package():
    assert _loaded_after("import titanicml") == set()


def test_cli_parser_loads_no_heavy_package():
    assert _loaded_after("from titanicml.cli import build_parser; build_parser()") == set()


def test_lazy_exports_resolve():
    import titanicml

    assert titanicml.Trainer.__name__ == "Trainer"
    assert callable(titanicml.load_model)
    assert titanicml.datasets.load_titanic().shape == (1309, 14)
    assert "Trainer" in dir(titanicml)


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import titanicml

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        titanicml.Nope  # noqa: B018
